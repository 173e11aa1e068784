"""Demo 6: what each level of a hierarchical VAE encodes, and its KL per level
(docs/07-hierarchical-vae.md).

A two-level ``HierarchicalVAE`` with independent inference
(docs/07-hierarchical-vae.md#independent-levels-on-a-deterministic-path:
``q(z_1|x) q(z_2|x)`` from one bottom-up path) and the top-down generative
model ``p(z_2) = N(0, I)``, ``p(z_1|z_2) = N(μ^p_1(z_2), e^{λ^p_1(z_2)})``,
``p(x|z_1)``.  It is trained with KL warm-up (β from 0 to 1 over the first
epochs, docs/11-optimisation.md#kl-warm-up; Sønderby et al. 2016).

Figure 1, ``levels.png``: for a few test images, each row holds the image, its
reconstruction from the posterior means, and eight images generated with one
level resampled and the others kept:

* resample level 1: ``z_2 = μ_2(x)`` kept, ``z_1 ~ p(z_1 | z_2)``;
* resample level 2: ``z_2 ~ N(0, I)``, and level 1 kept through its
  *standardised residual* ``ε_1 = (μ_1(x) − μ^p_1(μ_2(x))) / σ^p_1(μ_2(x))``,
  i.e. ``z_1 = μ^p_1(z_2) + σ^p_1(z_2) ⊙ ε_1``.  (``p(x|z_1)`` reads only
  ``z_1``, so keeping ``z_1`` itself fixed would show the same image eight
  times; keeping its position *relative to its prior* is what "level 1 held
  fixed" means in the top-down model.)

The top level, resampled, changes what the lower level's prior proposes;
the lower level, resampled under a fixed top, varies around it.

Figure 2, ``kl_per_level.png``: the KL of each level on the test set,
``KL(q(z_2|x) ‖ N(0, I))`` and ``E_{q(z_2|x)} KL(q(z_1|x) ‖ p(z_1|z_2))``
(docs/07-hierarchical-vae.md#independent-inference-gives-closed-form-kl-terms,
from ``elbo_terms``), per latent unit and over training, and ancestral samples
(docs/07-hierarchical-vae.md#ancestral-sampling).

The demo uses the model's internal per-level method ``_prior_forward``
(read only) to evaluate ``p(z_1 | z_2)``.

Run: ``python demos/06_hierarchical_levels.py [--fast] [--out DIR]``.
The figures go to ``runs/demos/06_hierarchical_levels/`` in the repository
(git-ignored) unless ``--out DIR`` is given.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "06_hierarchical_levels"


def prior_1(model, z2):
    """``μ^p_1, σ^p_1`` of ``p(z_1 | z_2)`` for ``z2 (N, Z_2)``: ``(N, Z_1)`` each."""
    mu_p, logvar_p, _ = model._prior_forward(0, z2[None].astype(model._dtype))
    return mu_p[0], np.exp(0.5 * logvar_p[0])


def resample_level_1(model, mus, n, rng):
    """``z_2 = μ_2(x)`` kept, ``z_1 ~ p(z_1 | z_2)``: ``(N, n, D)`` decoded means."""
    mu_p, sd_p = prior_1(model, mus[1])                                  # (N, Z_1)
    eps = rng.standard_normal((mu_p.shape[0], n, mu_p.shape[1]))
    z1 = mu_p[:, None] + sd_p[:, None] * eps                              # (N, n, Z_1)
    return model._decode_means(z1.reshape(-1, z1.shape[-1]).astype(model._dtype)).reshape(
        mu_p.shape[0], n, -1)


def resample_level_2(model, mus, n, rng):
    """``z_2 ~ N(0, I)``, level 1 kept through its standardised residual ``ε_1``."""
    N = mus[0].shape[0]
    mu_p, sd_p = prior_1(model, mus[1])
    eps1 = (mus[0] - mu_p) / sd_p                                         # (N, Z_1)
    z2 = rng.standard_normal((N * n, mus[1].shape[1]))                    # (N·n, Z_2)
    mu_p2, sd_p2 = prior_1(model, z2)                                     # (N·n, Z_1)
    z1 = mu_p2 + sd_p2 * np.repeat(eps1, n, axis=0)
    return model._decode_means(z1.astype(model._dtype)).reshape(N, n, -1), eps1


def kl_units(model, x, n_samples, rng):
    """Per-unit KLs averaged over ``x``: level 2 to ``N(0, I)`` (closed form) and level 1
    to ``p(z_1|z_2)`` averaged over ``z_2 ~ q(z_2|x)``
    (docs/03-kl-divergences.md#kl-between-two-diagonal-gaussians,
    docs/07-hierarchical-vae.md#independent-inference-gives-closed-form-kl-terms)."""
    (mu1, mu2), (lv1, lv2) = model.encode(x)
    mu1, mu2, lv1, lv2 = (a.astype(np.float64) for a in (mu1, mu2, lv1, lv2))
    kl2 = 0.5 * (mu2 ** 2 + np.exp(lv2) - 1 - lv2)                      # (N, Z_2)
    kl1 = np.zeros_like(mu1)
    for _ in range(n_samples):
        z2 = mu2 + np.exp(0.5 * lv2) * rng.standard_normal(mu2.shape)
        mp, sp = prior_1(model, z2)
        mp, lvp = mp.astype(np.float64), 2 * np.log(sp.astype(np.float64))
        kl1 += 0.5 * (lvp - lv1 + (np.exp(lv1) + (mu1 - mp) ** 2) / np.exp(lvp) - 1)
    return kl1.mean(axis=0) / n_samples, kl2.mean(axis=0)


def main(argv=None):
    import npvae

    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        data = C.load_data(args)
        fast = args.fast
        sizes = (8, 2) if fast else (20, 5)
        hidden = ((64,), (32,)) if fast else ((256,), (128,))
        epochs, warmup = C.pick(args, data, (30, 10), (6, 2), (60, 20))
        model = npvae.HierarchicalVAE(latent_sizes=sizes, hidden_sizes=hidden,
                                      inference="independent", activation="relu",
                                      dtype="float32", random_state=args.seed)
        C.train_model(model, data, epochs, kl_warmup_epochs=warmup)
        print(f"[{NAME}] trained a two-level HierarchicalVAE, latent sizes {sizes}, hidden "
              f"{hidden}, in {model.train_seconds_:.1f} s ({epochs} epochs, KL warm-up over "
              f"{warmup})")
        rng = np.random.default_rng(args.seed)
        x_test = data.test_float()

        # ----------------------------------------------- figure 1
        n_img, n_res = 6, 8
        idx = []
        for digit in range(10):                 # one image per digit, the first n_img digits
            hits = np.flatnonzero(data.y_test == digit)
            if len(hits):
                idx.append(hits[0])
        idx = np.array(idx[:n_img])
        x = x_test[idx]
        mus, _ = model.encode(x)
        recon = model.reconstruct(x)
        r1 = resample_level_1(model, mus, n_res, rng)
        r2, eps1 = resample_level_2(model, mus, n_res, rng)
        fig = C.new_figure((13, 6.3 * n_img / (n_res + 2) + 1.1))
        axes = fig.subplots(1, 2)
        for ax, r, title in (
                (axes[0], r1, "resample level 1: z₂ = μ₂(x) kept, z₁ ~ p(z₁ | z₂)"),
                (axes[1], r2, "resample level 2: z₂ ~ N(0, I), level-1 residual ε₁ kept")):
            rows = np.concatenate([x[:, None], recon[:, None], r], axis=1)   # (n, 2+n_res, D)
            C.show_images(ax, rows.reshape(-1, rows.shape[-1]), data.image_shape, n_res + 2,
                          title)
            ax.set_xlabel("columns: image x, reconstruction from μ₁(x), then 8 draws")
        fig.suptitle(f"What each level of a two-level VAE encodes (Z₁ = {sizes[0]}, "
                     f"Z₂ = {sizes[1]}), {data.label}")
        C.save_figure(fig, args, "levels.png")

        # ----------------------------------------------- figure 2
        terms = model.elbo_terms(x_test, model.draw_noise(len(x_test), random_state=args.seed))
        kl1_u, kl2_u = kl_units(model, x_test, 4 if fast else 16, rng)
        active = model.active_units(x_test)
        hist = model.history_
        fig = C.new_figure((14, 4.3))
        gs = fig.add_gridspec(1, 3, width_ratios=[1.5, 1.1, 1.2])
        ax = fig.add_subplot(gs[0, 0])
        units = np.concatenate([np.sort(kl1_u)[::-1], np.sort(kl2_u)[::-1]])
        colours = ["C0"] * sizes[0] + ["C3"] * sizes[1]
        ax.bar(np.arange(len(units)), units, color=colours)
        ax.axvline(sizes[0] - 0.5, color="0.5", lw=0.8, ls=":")
        ax.set_xticks([sizes[0] / 2 - 0.5, sizes[0] + sizes[1] / 2 - 0.5],
                      [f"level 1 ({sizes[0]} units, sorted)", f"level 2 ({sizes[1]})"])
        ax.set_ylabel("KL per unit, nats")
        ax.set_title(f"Test set: level 1 {terms['kl_1'].mean():.1f} nats "
                     f"({active[0]} active), level 2 {terms['kl_2'].mean():.1f} "
                     f"({active[1]} active)", fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
        ax = fig.add_subplot(gs[0, 1])
        ep = [h["epoch"] for h in hist]
        ax.plot(ep, [h["train_kl_1"] for h in hist], "o-", color="C0", label="KL level 1")
        ax.plot(ep, [h["train_kl_2"] for h in hist], "s-", color="C3", label="KL level 2")
        ax2 = ax.twinx()
        ax2.plot(ep, [h["beta"] for h in hist], "k--", lw=1, label="β at epoch end")
        ax2.set_ylim(0, 1.1)
        ax2.set_ylabel("β (KL warm-up)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training KL, nats (epoch mean)")
        ax.set_ylim(0, 1.08 * max(max(h["train_kl_1"], h["train_kl_2"]) for h in hist))
        ax.set_title("KL per level during training", fontsize="medium")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize="small", loc="center right",
                  bbox_to_anchor=(1.0, 0.33))
        ax.grid(True, alpha=0.3)
        ax = fig.add_subplot(gs[0, 2])
        C.show_images(ax, model.sample(36, random_state=args.seed), data.image_shape, 6,
                      "ancestral samples z₂ → z₁ → x")
        fig.suptitle(f"KL per level of the two-level VAE, {data.label} (npvae book, chapter 7)")
        C.save_figure(fig, args, "kl_per_level.png")

        results = C.report(args, {
            "test ELBO": terms["elbo"].mean(),
            "test reconstruction": terms["reconstruction"].mean(),
            "test KL level 1 (to p(z1|z2))": terms["kl_1"].mean(),
            "test KL level 2 (to N(0,I))": terms["kl_2"].mean(),
            "sum of per-unit KLs level 1 (MC over z2)": kl1_u.sum(),
            "sum of per-unit KLs level 2": kl2_u.sum(),
            f"active units level 1 (of {sizes[0]})": active[0],
            f"active units level 2 (of {sizes[1]})": active[1],
            "pixel sd across level-1 resamples (mean)": r1.std(axis=1).mean(),
            "pixel sd across level-2 resamples (mean)": r2.std(axis=1).mean(),
            "|residual eps1| mean": np.abs(eps1).mean(),
            "train seconds": model.train_seconds_,
        }, "test set, nats per image")
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
