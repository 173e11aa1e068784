"""The figures of a run folder (``<out>/figures/*.png``), written by
``npvae train`` and ``npvae plot``.

What the figures show and say:

* data (the inputs above their reconstructions, the end points of the
  interpolations) as the stored grey levels ``pixel / 255``, also where the model
  saw binarised images (the figure then says so);
* ``manifold.png``: Kingma & Welling's figure 4 only when the decoder reads a 2-D
  latent with an ``N(0, I)`` prior; otherwise a 2-D slice, titled as one; a
  hierarchical VAE's decoder reads ``z_1``, its bottom level;
* ``latent.png``: one panel per level for a hierarchical VAE;
* ``samples.png`` of a conditional VAE: one row per class, named at its left;
* ``pseudo_inputs.png`` with ``--prior vamp``: the learned pseudo-inputs as images
  (docs/17-vampprior.md).

:mod:`npvae.plots` (and so matplotlib) is imported only when figures are written.
"""
from __future__ import annotations

import os

import numpy as np

from .common import display, is_conditional, split_x

#: the row name of inputs shown as grey levels to a model that saw binarised ones
GREY_INPUT_LABEL = "input (grey levels;\nthe model saw\nbinarised ones)"
_GREY_NOTE = "inputs A and B in grey levels; the model saw binarised ones"
#: data sets whose stored images are binary already (nothing to show in grey)
_BINARY_SETS = ("binarized_mnist", "synthetic")
_N_SHOWN = 2000


#: posteriors whose codes are one-hot or on a simplex: no Φ⁻¹ grid of them
_NO_GRID = ("concrete", "kumaraswamy", "dirichlet")


def write_figures(model, ds, out, seed=0):
    """Every figure of a run into ``<out>/figures``; returns the paths."""
    from .. import plots

    fig_dir = os.path.join(out, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    shape = tuple(ds.image_shape)
    x = split_x(ds, "test", model, stop=_N_SHOWN)
    labels = ds.y_test[:_N_SHOWN] if ds.y_test is not None else None
    shown, grey = _shown_inputs(ds, len(x))
    if is_conditional(model):
        return _write_conditional_figures(model, x, shown, grey, labels, shape, fig_dir, seed)
    paths = []
    rec = display(model, model.reconstruct(x[:20]))
    paths.append(plots.plot_reconstructions(
        shown[:20], rec, shape, os.path.join(fig_dir, "reconstructions.png"), n=20,
        title="test inputs (top) and reconstructions (bottom)",
        input_label=GREY_INPUT_LABEL if grey else "input"))
    drawn = ("$z_L \\sim p(z_L)$, …, $z_1 \\sim p(z_1 | z_2)$" if _hierarchical(model)
             else "$z \\sim p(z)$")
    paths.append(plots.plot_samples(display(model, model.sample(100, random_state=seed)),
                                    shape, os.path.join(fig_dir, "samples.png"),
                                    title=f"samples from the prior: decoder means at {drawn}"))
    if getattr(model, "prior", "standard") == "vamp":
        u = model.pseudo_inputs()
        paths.append(plots.plot_samples(
            display(model, u[:100]), shape, os.path.join(fig_dir, "pseudo_inputs.png"),
            title=f"the VampPrior's learned pseudo-inputs $u_k$ ({min(len(u), 100)} of {len(u)})",
            what="pseudo-inputs"))
    if model.history_:
        paths.append(plots.plot_training_curves(model.history_,
                                                os.path.join(fig_dir, "training_curves.png"),
                                                k=getattr(model, "k", None)))
    levels = _posterior_means(model, x)                 # [(N, Z)], or [(N, Z_l)] per level
    latent_path = os.path.join(fig_dir, "latent.png")
    if len(levels) > 1:
        paths.append(plots.plot_latent_levels(levels, labels, latent_path,
                                              title="posterior means of test examples"))
    else:
        paths.append(plots.plot_latent_scatter(levels[0], labels, latent_path,
                                               title="posterior means of test examples"))
    z = levels[0]                       # what the decoder reads: z, or a hierarchy's z_1
    decode = lambda zz: display(model, model._decode_means(zz))
    if z.shape[1] >= 2 and getattr(model, "posterior", "") not in _NO_GRID:  # no Φ⁻¹ grid of codes
        paths.append(_manifold(plots, decode, z, model, len(levels), shape, fig_dir))
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(x), size=(4, 2), replace=False)
    what = " of $z_1$ (the level the decoder reads)" if _hierarchical(model) else ""
    title = f"interpolation between the posterior means{what} of two test inputs"
    paths.append(plots.plot_interpolation(decode, z[pairs[:, 0]], z[pairs[:, 1]], shape,
                                          os.path.join(fig_dir, "interpolation.png"),
                                          n_steps=10, x_start=shown[pairs[:, 0]],
                                          x_end=shown[pairs[:, 1]],
                                          title=title + (f"\n{_GREY_NOTE}" if grey else "")))
    return [str(p) for p in paths]


def _manifold(plots, decode, z, model, n_levels, shape, fig_dir):
    """``manifold.png``: the decoder over a Φ⁻¹ grid of the two latent dimensions whose
    test posterior means vary most (all of them when the latent is 2-D)."""
    n_latent = z.shape[1]
    dims = tuple(int(d) for d in np.sort(np.argsort(np.var(z, axis=0))[::-1][:2]))
    hierarchical = _hierarchical(model)
    vamp = getattr(model, "prior", "standard") == "vamp"
    notes = []
    if n_latent > 2:
        notes.append(f"dimensions {dims[0]} and {dims[1]}: the two whose test posterior "
                     "means vary most")
    where = {}
    if hierarchical or vamp:
        if hierarchical:
            notes.append(f"the decoder reads $z_1$ only, level 1 of {n_levels}")
        # z₁'s prior p(z₁|z₂), or the VampPrior, is not N(0, I): put the grid where the
        # test codes are
        center = z.mean(axis=0)                                 # (Z,)
        scale = np.maximum(z[:, list(dims)].std(axis=0), 1e-6)  # (2,)
        where = dict(center=center, scale=scale, center_name="the test codes' mean")
        notes.append("m, s: mean and standard deviation of the test posterior means; "
                     + ("the prior of $z_1$ is p($z_1$ | $z_2$)" if hierarchical
                        else "the prior is the VampPrior") + ", not N(0, I)")
    return plots.plot_manifold(decode, shape, os.path.join(fig_dir, "manifold.png"), n=20,
                               n_latent=n_latent, latent_dims=dims,
                               latent_name="$z_1$" if hierarchical else "z",
                               standard_prior=n_levels == 1 and not vamp, note="\n".join(notes) or None,
                               **where)


def _hierarchical(model):
    return type(model).__name__ == "HierarchicalVAE"


def _posterior_means(model, x, *condition):
    """The posterior means of ``x``: ``[(N, Z)]``, or one ``(N, Z_l)`` per level of a
    hierarchical VAE (bottom first)."""
    if _hierarchical(model):
        return list(model.encode(x)[0])
    return [model.transform(x, *condition)]


def _shown_inputs(ds, n):
    """The first ``n`` test images as shown in the figures, and whether they are grey
    levels of images that the model saw binarised: ``pixel / 255`` of the stored
    images, reloaded without binarisation when the loader binarised them."""
    x = ds.x_test[:n]
    if ds.binarization == "none" or ds.name in _BINARY_SETS:
        return x / 255.0, False
    grey = _grey_test_images(ds, n)
    if grey is None:
        return x / 255.0, False
    return grey / 255.0, True


def _grey_test_images(ds, n):
    """The stored grey levels of the first ``n`` test images of a binarised data set,
    or None when they cannot be loaded (never downloads) or do not match."""
    from .. import data

    folder = ds.source.split(", ")[0] if os.path.isdir(ds.source.split(", ")[0]) else None
    try:
        raw = data.load_dataset(ds.name, data_dir=folder, binarization="none",
                                download=False, validation_size=None)
    except Exception:  # noqa: BLE001 - a figure falls back to the binarised inputs
        return None
    grey, binary = raw.x_test[:n], ds.x_test[:n]
    # the same examples: a pixel that is on after binarisation was not black
    if grey.shape != binary.shape or np.any((binary > 0) & (grey == 0)):
        return None
    return grey


def _write_conditional_figures(model, x, shown, grey, labels, shape, fig_dir, seed):
    """Figures of a conditional VAE: reconstructions, one row of samples per class,
    curves, latent scatter, interpolation at a fixed label."""
    from .. import plots

    paths = [plots.plot_reconstructions(
        shown[:20], display(model, model.reconstruct(x[:20], labels[:20])), shape,
        os.path.join(fig_dir, "reconstructions.png"), n=20,
        title="test inputs (top) and reconstructions given their labels (bottom)",
        input_label=GREY_INPUT_LABEL if grey else "input")]
    classes = model.classes_
    per_class = np.repeat(classes, 10)
    paths.append(plots.plot_samples(
        display(model, model.sample(len(per_class), per_class, random_state=seed)), shape,
        os.path.join(fig_dir, "samples.png"), n_cols=10, row_labels=list(classes),
        row_title="class given to the decoder",
        title="samples by class: each row generated given its label, z ~ p(z)"))
    if model.history_:
        paths.append(plots.plot_training_curves(model.history_,
                                                os.path.join(fig_dir, "training_curves.png"),
                                                k=getattr(model, "k", None)))
    z = model.transform(x, labels)
    paths.append(plots.plot_latent_scatter(z, labels, os.path.join(fig_dir, "latent.png"),
                                           title="posterior means given the labels"))
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(x), size=(4, 2), replace=False)
    label = classes[0]
    paths.append(plots.plot_interpolation(
        lambda zz: display(model, model._decode_means(zz, model._onehot(label, len(zz)))),
        z[pairs[:, 0]],
        z[pairs[:, 1]], shape, os.path.join(fig_dir, "interpolation.png"), n_steps=10,
        title=f"interpolation between codes, decoded as label {label}"))
    return [str(p) for p in paths]
