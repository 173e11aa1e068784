"""Demo 5: the VAE's 2-D manifold, interpolations, and the weight β of the KL
(docs/03-kl-divergences.md, docs/05-elbo.md, docs/06-importance-weighting.md).

Figure 1, ``manifold_and_interpolation.png``:

* left, the learned manifold of a VAE with a 2-D latent (Kingma & Welling
  2014, fig. 4): a grid of the unit square mapped through the inverse
  Gaussian CDF, ``z = Φ⁻¹(u)``, so that neighbouring tiles are equally
  probable under ``p(z) = N(0, I)``, each decoded to its Bernoulli means;
* right, straight lines ``z_t = (1 − t) μ(x_a) + t μ(x_b)`` between the
  posterior means of pairs of test images, decoded, in the ``β = 1`` VAE of
  figure 2.

Figure 2, ``beta_comparison.png``: the same VAE (``Z`` latent units)
trained with ``β = 0.5, 1, 4`` on the loss ``−(E_q log p(x|z) − β KL)``
(docs/05-elbo.md#weighting-the-kl; Higgins et al. 2017): reconstructions
(decoder means at the posterior mean), samples from the prior, and the KL per
latent unit, ``½ E_x(μ_j² + σ_j² − 1 − λ_j)``
(docs/03-kl-divergences.md#kl-to-the-standard-normal; bars), next to the
statistic of the active-unit test, ``Var_x μ_j = Cov_x E_q[u_j]``, against
its threshold 0.01 (docs/06-importance-weighting.md#active-units; Burda et
al. 2016; dots and dashed line, log scale).  A larger β buys a smaller KL
with worse reconstructions and fewer units that carry information; the
reported test ELBO is always the true bound (``β = 1``).

Run: ``python demos/05_manifold_and_beta.py [--fast] [--out DIR]``.
The figures go to ``runs/demos/05_manifold_and_beta/`` in the repository
(git-ignored) unless ``--out DIR`` is given.
"""
from __future__ import annotations

import os
import sys

import numpy as np
from scipy.special import ndtri

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "05_manifold_and_beta"
BETAS = (0.5, 1.0, 4.0)
#: threshold of the active-unit test Cov_x E_q[u] > ACTIVE (Burda et al. 2016)
ACTIVE = 0.01


def kl_per_unit(model, x):
    """Mean over ``x`` of ``KL(q(z_j|x) ‖ N(0, 1))`` per latent unit ``(Z,)``
    (docs/03-kl-divergences.md#kl-to-the-standard-normal)."""
    mu, logvar = model.encode(x)
    mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
    return np.mean(0.5 * (mu ** 2 + np.exp(logvar) - 1 - logvar), axis=0)


def pick_pairs(y, n_pairs, rng):
    """Index pairs of test images with different labels."""
    pairs = []
    while len(pairs) < n_pairs:
        a, b = rng.choice(len(y), 2, replace=False)
        if y[a] != y[b]:
            pairs.append((a, b))
    return np.array(pairs)


def main(argv=None):
    import npvae

    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        data = C.load_data(args)
        fast = args.fast
        hidden = (64,) if fast else (256,)
        Z = 6 if fast else 20
        ep_2d, ep_beta = C.pick(args, data, (25, 20), (5, 4), (60, 50))
        rng = np.random.default_rng(args.seed)
        x_test = data.test_float()
        H, W = data.image_shape

        vae2 = C.train_model(npvae.VAE(n_latent=2, hidden_sizes=hidden, dtype="float32",
                                       random_state=args.seed), data, ep_2d)
        models = {}
        for beta in BETAS:
            models[beta] = C.train_model(npvae.VAE(n_latent=Z, hidden_sizes=hidden, beta=beta,
                                                   dtype="float32", random_state=args.seed),
                                         data, ep_beta)
        print(f"[{NAME}] trained the 2-D VAE in {vae2.train_seconds_:.1f} s ({ep_2d} epochs) "
              f"and the Z={Z} VAEs with beta = {', '.join(map(str, BETAS))} in "
              + ", ".join(f"{m.train_seconds_:.1f}" for m in models.values())
              + f" s ({ep_beta} epochs each)")

        # ------------------------------------------------ figure 1
        n_grid = 13 if fast else 21              # odd: the middle tile is z = 0
        u = np.linspace(0.05, 0.95, n_grid)
        z1, z2 = np.meshgrid(ndtri(u), ndtri(u)[::-1])         # z₂ increases upwards
        grid_z = np.stack([z1.ravel(), z2.ravel()], axis=1).astype(np.float32)
        manifold = vae2._decode_means(grid_z)
        n_pairs, n_steps = (6, 6) if fast else (12, 10)
        pairs = pick_pairs(data.y_test, n_pairs, rng)
        m1 = models[1.0]
        mu = m1.transform(x_test)
        t = np.linspace(0, 1, n_steps)[:, None]
        rows = []
        for a, b in pairs:
            path = (1 - t) * mu[a] + t * mu[b]                  # (T, Z)
            rows.append(np.concatenate([x_test[[a]], m1._decode_means(path.astype(np.float32)),
                                        x_test[[b]]]))
        interp = np.concatenate(rows)                           # (P·(T+2), D)

        fig = C.new_figure((14, 7.2))
        # equal heights: the grid is square, the interpolations n_pairs x (n_steps + 2)
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, (n_steps + 2) / n_pairs])
        C.show_images(ax1, manifold, data.image_shape, n_grid,
                      "2-D VAE: decoded grid z = Φ⁻¹(u), u ∈ [0.05, 0.95]²")
        ticks = (np.arange(n_grid) * (W + 1) + W / 2)
        at = np.linspace(0, n_grid - 1, 5).round().astype(int)   # ends, middle, quarters
        def fmt(v):
            return f"{round(float(v), 2) + 0.0:.2f}"             # no "-0.00"
        ax1.set_xticks(ticks[at], [fmt(v) for v in ndtri(u)[at]], fontsize="small")
        ax1.set_yticks(ticks[at], [fmt(v) for v in ndtri(u)[::-1][at]], fontsize="small")
        ax1.set_xlabel("z₁")
        ax1.set_ylabel("z₂")
        C.show_images(ax2, interp, data.image_shape, n_steps + 2,
                      f"Z = {Z}, β = 1: decoded lines between two posterior means\n"
                      "(first and last columns: the test images)")
        fig.suptitle(f"The learned manifold and latent interpolations, {data.label}")
        C.save_figure(fig, args, "manifold_and_interpolation.png")

        # ------------------------------------------------ figure 2
        n_show = 8
        x_show = x_test[:n_show]
        fig = C.new_figure((13, 8.6))
        gs = fig.add_gridspec(3, len(BETAS), height_ratios=[1.15, 3.3, 2.4])
        res = {}
        kls = {}
        for k, (beta, m) in enumerate(models.items()):
            rec = m.reconstruct(x_show)
            C.show_images(fig.add_subplot(gs[0, k]), np.concatenate([x_show, rec]),
                          data.image_shape, n_show,
                          f"β = {beta:g}: test images (top), reconstructions")
            C.show_images(fig.add_subplot(gs[1, k]),
                          m.sample(48, random_state=args.seed), data.image_shape, n_show,
                          f"β = {beta:g}: 48 samples, z ~ N(0, I)")
            kl_u = kl_per_unit(m, x_test)
            kls[beta] = kl_u
            active = m.active_units(x_test, threshold=ACTIVE)[0]
            terms = m.elbo_terms(x_test, m.draw_noise(len(x_test), random_state=args.seed))
            res[f"beta={beta:g}: test ELBO (beta=1 bound)"] = terms["elbo"].mean()
            res[f"beta={beta:g}: test reconstruction E_q log p(x|z)"] = \
                terms["reconstruction"].mean()
            res[f"beta={beta:g}: test KL"] = terms["kl"].mean()
            res[f"beta={beta:g}: active units (of {Z})"] = active
        ymax = 1.08 * max(v.max() for v in kls.values())
        # the active-unit statistic Var_x μ_j (= Cov_x E_q[u] of m.active_units), per unit
        var_mus = {beta: np.var(m.transform(x_test).astype(np.float64), axis=0)
                   for beta, m in models.items()}
        v_all = np.concatenate(list(var_mus.values()))
        v_lo = min(ACTIVE / 10, 0.5 * max(v_all.min(), 1e-8))
        v_hi = 2.0 * max(v_all.max(), 10 * ACTIVE)
        for k, (beta, m) in enumerate(models.items()):
            ax = fig.add_subplot(gs[2, k])
            order = np.argsort(kls[beta])[::-1]
            units = np.arange(Z)
            bars = ax.bar(units, kls[beta][order], color="C0", label="KL per unit (left axis)")
            ax.set_ylim(0, ymax)
            if Z <= 12:
                ax.set_xticks(units, [str(j) for j in order], fontsize="small")
                ax.set_xlabel("latent unit (sorted by KL)")
            else:
                ax.set_xticks(np.arange(0, Z, 5), [str(r + 1) for r in range(0, Z, 5)])
                ax.set_xlabel("latent units, ranked by their KL")
            if k == 0:
                ax.set_ylabel("KL per unit, nats")
            axv = ax.twinx()
            dots, = axv.plot(units, var_mus[beta][order], "o", color="C1", ms=4.5,
                             label=r"$\mathrm{Var}_x\,\mu_j$ (right axis, log scale)")
            line = axv.axhline(ACTIVE, color="C1", ls="--", lw=1,
                               label=rf"active unit: $\mathrm{{Var}}_x\,\mu_j$ > {ACTIVE:g}")
            axv.set_yscale("log")
            axv.set_ylim(v_lo, v_hi)
            axv.tick_params(axis="y", colors="C1", labelsize="small")
            if k == len(models) - 1:
                axv.set_ylabel(r"$\mathrm{Var}_x\,\mu_j$ over the test set", color="C1")
            n_kl = int(np.sum(kls[beta] > 0.1))
            res[f"beta={beta:g}: units with KL > 0.1 nats"] = n_kl
            n_active = res[f"beta={beta:g}: active units (of {Z})"]
            ax.set_title(f"KL {kls[beta].sum():.1f} nats: {n_kl} units with KL > 0.1 nats,\n"
                         f"{n_active:.0f} active (orange dots above the dashed line)",
                         fontsize="medium")
            ax.grid(True, axis="y", alpha=0.3)
        fig.legend(handles=[bars, dots, line], loc="outside lower center", ncols=3,
                   fontsize="small")
        fig.suptitle(f"β-VAE with Z = {Z}, {data.label}: reconstructions, samples and the "
                     "KL per latent unit")
        C.save_figure(fig, args, "beta_comparison.png")

        res["2-D VAE: test ELBO"] = vae2.score(x_test, random_state=args.seed)
        res["2-D VAE: active units (of 2)"] = vae2.active_units(x_test)[0]
        results = C.report(args, res, "test set, nats per image")
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
