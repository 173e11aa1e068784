"""The figures of a run folder (``<out>/figures/*.png``), written by
``npvae train`` and ``npvae plot``.

:mod:`npvae.plots` (and so matplotlib) is imported only when figures are written.
"""
from __future__ import annotations

import os

import numpy as np

from .common import _conditional, _display, _split_x


def write_figures(model, ds, out, seed=0):
    """Every figure of a run into ``<out>/figures``; returns the paths."""
    from .. import plots

    fig_dir = os.path.join(out, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    shape = tuple(ds.image_shape)
    x = _split_x(ds, "test", model)[:2000]
    labels = ds.y_test[:2000] if ds.y_test is not None else None
    paths = []
    if _conditional(model):
        return _write_conditional_figures(model, x, labels, shape, fig_dir, seed)
    rec = _display(model, model.reconstruct(x[:20]))
    paths.append(plots.plot_reconstructions(x[:20], rec, shape,
                                            os.path.join(fig_dir, "reconstructions.png"),
                                            n=20, title="test inputs (top) and "
                                                        "reconstructions (bottom)"))
    paths.append(plots.plot_samples(_display(model, model.sample(100, random_state=seed)),
                                    shape, os.path.join(fig_dir, "samples.png"),
                                    title="samples from the prior"))
    if model.history_:
        paths.append(plots.plot_training_curves(model.history_,
                                                os.path.join(fig_dir, "training_curves.png")))
    z = model.transform(x)
    paths.append(plots.plot_latent_scatter(z, labels, os.path.join(fig_dir, "latent.png"),
                                           title="posterior means of test examples"))
    n_latent = z.shape[1]
    decode = lambda zz: _display(model, model._decode_means(zz))
    if n_latent >= 2:
        # the two latent dimensions the encoder uses most (largest variance of the means)
        dims = tuple(int(d) for d in np.sort(np.argsort(np.var(z, axis=0))[::-1][:2]))
        paths.append(plots.plot_manifold(decode, shape, os.path.join(fig_dir, "manifold.png"),
                                         n=20, n_latent=n_latent, latent_dims=dims))
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(x), size=(4, 2), replace=False)
    paths.append(plots.plot_interpolation(decode, z[pairs[:, 0]], z[pairs[:, 1]], shape,
                                          os.path.join(fig_dir, "interpolation.png"),
                                          n_steps=10, x_start=x[pairs[:, 0]],
                                          x_end=x[pairs[:, 1]]))
    return [str(p) for p in paths]


def _write_conditional_figures(model, x, labels, shape, fig_dir, seed):
    """Figures of a conditional VAE: reconstructions, one row of samples per class,
    curves, latent scatter, interpolation at a fixed label."""
    from .. import plots

    paths = [plots.plot_reconstructions(
        x[:20], _display(model, model.reconstruct(x[:20], labels[:20])), shape,
        os.path.join(fig_dir, "reconstructions.png"), n=20,
        title="test inputs (top) and reconstructions given their labels (bottom)")]
    classes = model.classes_
    per_class = np.repeat(classes, 10)
    paths.append(plots.plot_samples(
        _display(model, model.sample(len(per_class), per_class, random_state=seed)), shape,
        os.path.join(fig_dir, "samples.png"),
        title="samples by class: row k generates label k (docs/08-conditional-vae.md)"))
    if model.history_:
        paths.append(plots.plot_training_curves(model.history_,
                                                os.path.join(fig_dir, "training_curves.png")))
    z = model.transform(x, labels)
    paths.append(plots.plot_latent_scatter(z, labels, os.path.join(fig_dir, "latent.png"),
                                           title="posterior means given the labels"))
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(x), size=(4, 2), replace=False)
    label = classes[0]
    paths.append(plots.plot_interpolation(
        lambda zz: _display(model, model._decode_means(zz, model._onehot(label, len(zz)))),
        z[pairs[:, 0]],
        z[pairs[:, 1]], shape, os.path.join(fig_dir, "interpolation.png"), n_steps=10,
        title=f"interpolation between codes, decoded as label {label}"))
    return [str(p) for p in paths]
