"""Demo 1: score-function against pathwise (reparameterisation) gradients
(docs/02-reparameterisation.md#two-gradient-estimators).

Part 1, the worked example of docs/02-reparameterisation.md#the-example-of-e-x-squared:
``min_φ E_{N(φ,1)}[x²]``, true gradient ``2φ``.  Score function (REINFORCE):
``x² (x − φ)``; pathwise: ``2(φ + ε)``.
With ``x = φ + ε`` their per-sample variances are, in closed form,
``Var_score = φ⁴ + 14 φ² + 15`` and ``Var_path = 4``; an ``S``-sample average
divides both by ``S``.  The figure shows the empirical variance over repeated
estimates against ``S`` (10 to 100,000, log-log) with these lines, and the
estimates themselves around ``2φ``.

Part 2, a VAE encoder on real data: the gradient of the ELBO's reconstruction
term ``E_{q(z|x)}[log p(x|z)]`` with respect to the bias of the encoder's mean
head ``b_μ`` (for one image, ``∂μ/∂b_μ = I``, so this is the gradient with
respect to ``μ(x)``):

* pathwise: ``−∂loss/∂b_μ`` from the model's own ``loss_and_grads`` with the
  KL switched off (``beta=0``), one noise draw per call, many calls;
* score function: ``log p(x|z) ∇_μ log q(z|x)`` with
  ``∇_μ log q = (z − μ)/σ² = ε/σ``
  (docs/02-reparameterisation.md#score-function-estimator), ``log p(x|z)`` from
  ``elbo_terms`` on the same kind of draws;
* and, for comparison, the score function with a constant baseline
  ``b = E_q[log p(x|z)]`` (estimated on separate draws): same expectation,
  since ``E_q[∇ log q] = 0``, smaller variance.

Run: ``python demos/01_gradient_estimators.py [--fast] [--out DIR]``.
The figures go to ``runs/demos/01_gradient_estimators/`` in the repository
(git-ignored) unless ``--out DIR`` is given.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "01_gradient_estimators"


# ------------------------------------------------------------ part 1: toy
def toy_estimates(phi, S, R, rng):
    """``R`` independent ``S``-sample estimates of ``∇_φ E_{N(φ,1)}[x²]`` by each estimator.

    Returns ``(score (R,), path (R,))``; both use the same draws ``ε``.
    """
    score, path = np.empty(R), np.empty(R)
    block = max(1, 2_000_000 // S)                   # bound the memory of one draw
    for r0 in range(0, R, block):
        eps = rng.standard_normal((min(block, R - r0), S))     # (r, S)
        x = phi + eps
        score[r0:r0 + len(eps)] = np.mean(x ** 2 * (x - phi), axis=1)   # x² ∇_φ log q
        path[r0:r0 + len(eps)] = np.mean(2.0 * (phi + eps), axis=1)     # ∇_φ (φ + ε)²
    return score, path


def toy_part(args, rng):
    fast = args.fast
    S_values = np.unique(np.round(np.logspace(1, 4 if fast else 5, 5 if fast else 9)).astype(int))
    R = 60 if fast else 300
    phis = (0.5, 2.0)
    var = {phi: {"score": [], "path": []} for phi in phis}
    spread = {"score": [], "path": []}                     # φ = 2: mean and sd of the estimates
    for phi in phis:
        for S in S_values:
            score, path = toy_estimates(phi, int(S), R, rng)
            var[phi]["score"].append(score.var(ddof=1))
            var[phi]["path"].append(path.var(ddof=1))
            if phi == phis[-1]:
                spread["score"].append((score.mean(), score.std(ddof=1)))
                spread["path"].append((path.mean(), path.std(ddof=1)))

    fig = C.new_figure((11.5, 4.6))
    ax1, ax2 = fig.subplots(1, 2)
    styles = {0.5: dict(ls="--"), 2.0: dict(ls="-")}
    for phi in phis:
        th_score = (phi ** 4 + 14 * phi ** 2 + 15) / S_values
        th_path = 4.0 / S_values
        ax1.plot(S_values, th_score, color="C3", lw=1.2, **styles[phi])
        ax1.plot(S_values, th_path, color="C0", lw=1.2, **styles[phi])
        ax1.plot(S_values, var[phi]["score"], "o", color="C3", ms=5,
                 mfc="white" if phi == 0.5 else "C3")
        ax1.plot(S_values, var[phi]["path"], "s", color="C0", ms=5,
                 mfc="white" if phi == 0.5 else "C0")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color="C3", marker="o", label="score function  x²(x − φ)"),
               Line2D([], [], color="C0", marker="s", label="pathwise  2(φ + ε)"),
               Line2D([], [], color="0.3", ls="-", marker="o", label="φ = 2 (filled)"),
               Line2D([], [], color="0.3", ls="--", marker="o", mfc="white",
                      label="φ = 0.5 (open)")]
    ax1.legend(handles=handles, fontsize="small", loc="lower left")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("samples per estimate S")
    ax1.set_ylabel("variance of the estimate")
    ax1.set_title(f"Variance over {R} repeats; lines: (φ⁴+14φ²+15)/S and 4/S", fontsize="medium")
    ax1.grid(True, which="both", alpha=0.3)

    phi = phis[-1]
    for key, colour, label, shift in (("score", "C3", "score function", 0.94),
                                      ("path", "C0", "pathwise", 1.06)):
        m, s = np.array(spread[key]).T
        ax2.errorbar(S_values * shift, m, yerr=s, color=colour, marker="o" if key == "score"
                     else "s", ms=4, capsize=3, lw=1.2, label=f"{label}: mean ± 1 sd")
    ax2.axhline(2 * phi, color="k", lw=1, ls=":", label=f"true gradient 2φ = {2 * phi:g}")
    ax2.set_xscale("log")
    ax2.set_xlabel("samples per estimate S")
    ax2.set_ylabel("estimate of ∇φ E[x²]")
    ax2.set_title(f"The estimates at φ = {phi:g}", fontsize="medium")
    ax2.legend(fontsize="small")
    ax2.grid(True, which="both", alpha=0.3)
    fig.suptitle("Minimise E[x²] over φ, x ~ N(φ, 1): score function against pathwise gradient "
                 "(npvae book, chapter 2)")
    C.save_figure(fig, args, "toy_variance.png")

    res = {}
    for phi in phis:
        # per-sample variance: S times the variance of S-sample estimates, averaged over S
        emp_score = np.mean(np.array(var[phi]["score"]) * S_values)
        emp_path = np.mean(np.array(var[phi]["path"]) * S_values)
        res[f"toy phi={phi:g}: per-sample var score, theory"] = phi ** 4 + 14 * phi ** 2 + 15
        res[f"toy phi={phi:g}: per-sample var score, measured"] = emp_score
        res[f"toy phi={phi:g}: per-sample var pathwise, theory"] = 4.0
        res[f"toy phi={phi:g}: per-sample var pathwise, measured"] = emp_path
    m, s = spread["score"][-1]
    res[f"toy phi=2: score estimate at S={S_values[-1]}"] = m
    m, s = spread["path"][-1]
    res[f"toy phi=2: pathwise estimate at S={S_values[-1]}"] = m
    return C.report(args, res, "part 1: E_{N(phi,1)}[x^2], true gradient 2 phi")


# ---------------------------------------------------------- part 2: a VAE
def vae_part(args, data, rng):
    import npvae
    from npvae.score_function import vae_encoder_draws, vae_pathwise_gradients

    fast = args.fast
    Z = 4 if fast else 10
    model = npvae.VAE(n_latent=Z, hidden_sizes=(64,) if fast else (256,), dtype="float64",
                      random_state=args.seed)
    C.train_model(model, data, epochs=C.pick(args, data, 15, 3, 40), batch_size=100,
                  learning_rate=1e-3)
    x_test = data.test_float(dtype=np.float64)
    elbo = model.score(x_test, random_state=args.seed)
    print(f"[{NAME}] trained a {data.n_features}-{model.hidden_sizes[0]}-{Z} VAE in "
          f"{model.train_seconds_:.1f} s; test ELBO {elbo:.2f} nats")

    x = x_test[[int(rng.integers(len(x_test)))]]                    # (1, D), one image

    # pathwise: one reparameterised draw per call of the model's own backward (β = 0
    # leaves only the reconstruction term); score function: log p(x|z) (z − μ)/σ²
    # = log p(x|z) ε/σ from many cheap forward passes (npvae/score_function.py)
    n_path = 600 if fast else 4000
    path = vae_pathwise_gradients(model, x, rng.standard_normal((n_path, 1, Z)))   # (n, Z)
    n_score = 20_000 if fast else 100_000
    log_px, score_mu = vae_encoder_draws(model, x, rng.standard_normal((n_score, Z)))
    score = log_px[:, None] * score_mu                                 # (n, Z)
    # constant baseline from separate draws (the first half estimates b, the second half uses it)
    half = n_score // 2
    baseline = log_px[:half].mean()
    score_b = (log_px[half:, None] - baseline) * score_mu[half:]

    est = {"pathwise": path, "score function": score, "score fn. + baseline": score_b}
    means = {k: v.mean(axis=0) for k, v in est.items()}
    sds = {k: v.std(axis=0, ddof=1) for k, v in est.items()}
    ses = {k: sds[k] / np.sqrt(len(v)) for k, v in est.items()}
    colours = {"pathwise": "C0", "score function": "C3", "score fn. + baseline": "C1"}

    fig = C.new_figure((12.5, 4.7))
    gs = fig.add_gridspec(1, 3, width_ratios=[0.55, 2.2, 2.2])
    ax0, ax1, ax2 = (fig.add_subplot(gs[0, i]) for i in range(3))
    C.show_images(ax0, x, data.image_shape, 1, "the image x")
    j = np.arange(Z)
    for k, (name, m) in enumerate(means.items()):
        off = (k - 1) * 0.25
        ax1.errorbar(j + off, m, yerr=2 * ses[name], fmt="o", ms=4, capsize=3,
                     color=colours[name], label=f"{name} ({len(est[name]):,} draws)")
    handles, labels = ax1.get_legend_handles_labels()
    ax1.axhline(0, color="0.5", lw=0.8)
    ax1.set_xticks(j)
    ax1.set_xlabel("latent unit j")
    ax1.set_ylabel(r"$\partial\,\mathrm{E}_q[\log p(x|z)]\;/\;\partial b_{\mu,j}$")
    ax1.set_title("Mean of the estimates ± 2 standard errors", fontsize="medium")
    ax1.grid(True, alpha=0.3)
    width = 0.27
    for k, name in enumerate(est):
        ax2.bar(j + (k - 1) * width, sds[name] ** 2, width=width, color=colours[name],
                label=name)
    ax2.set_yscale("log")
    ax2.set_xticks(j)
    ax2.set_xlabel("latent unit j")
    ax2.set_ylabel("per-draw variance")
    ax2.set_title("Variance of one-draw estimates (log scale)", fontsize="medium")
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize="small")
    ax2.grid(True, axis="y", which="both", alpha=0.3)
    fig.suptitle(f"Gradient of the reconstruction term w.r.t. the encoder's mean bias, "
                 f"one {data.label} test image (npvae book, chapter 2)")
    C.save_figure(fig, args, "vae_encoder_gradient.png")

    ratio = sds["score function"] ** 2 / sds["pathwise"] ** 2
    ratio_b = sds["score fn. + baseline"] ** 2 / sds["pathwise"] ** 2
    # agreement of the means: the largest gap in units of the combined standard error
    z_gap = np.abs(means["score function"] - means["pathwise"]) / np.hypot(
        ses["score function"], ses["pathwise"])
    z_gap_b = np.abs(means["score fn. + baseline"] - means["pathwise"]) / np.hypot(
        ses["score fn. + baseline"], ses["pathwise"])
    top = int(np.argmax(np.abs(means["pathwise"])))
    res = {
        "vae: test ELBO (nats)": elbo,
        "vae: mean log p(x|z) of the image": log_px.mean(),
        f"vae: gradient unit {top} pathwise": means["pathwise"][top],
        f"vae: gradient unit {top} score function": means["score function"][top],
        f"vae: gradient unit {top} score fn. + baseline": means["score fn. + baseline"][top],
        "vae: median var ratio score/pathwise": np.median(ratio),
        "vae: min var ratio score/pathwise": ratio.min(),
        "vae: median var ratio (score+baseline)/pathwise": np.median(ratio_b),
        "vae: max |score - pathwise| / SE": z_gap.max(),
        "vae: max |score+baseline - pathwise| / SE": z_gap_b.max(),
    }
    return C.report(args, res, "part 2: VAE encoder, gradient of E_q log p(x|z) w.r.t. b_mu")


def main(argv=None):
    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        rng = np.random.default_rng(args.seed)
        results = toy_part(args, rng)
        data = C.load_data(args)
        results.update(vae_part(args, data, rng))
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
