"""Demo 9: variance reduction for the score-function estimator
(docs/13-em-and-variance-reduction.md#variance-reduction-for-the-score-function).

Part 1, ``min_φ E_{N(φ,1)}[x²]`` at ``φ = 2`` (true gradient ``2φ``): the score
function ``x²(x − φ)`` alone, with a running-mean baseline (an exponential average
of earlier steps' values, ρ = 0.9), with the leave-one-out baseline (the mean of the
other ``S − 1`` draws), with the optimal scalar control variate (the oracle
coefficient ``a* = φ² + 3``, and its leave-one-out estimate from the draws), against
the pathwise ``2(φ + ε)``: the variance of ``S``-draw estimates over many repeats,
against ``S``, with the closed forms of :func:`npvae.score_function.x_squared_variance`.

Part 2, the same estimators for a VAE encoder (the machinery of demo 1: the
gradient of ``E_q[log p(x|z)]`` in the encoder's mean bias for one test image, the
pathwise one from the model's own backward), against ``S``.

Run: ``python demos/09_variance_reduction.py [--fast] [--out DIR]``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "09_variance_reduction"
PHI = 2.0
DECAY = 0.9
LABELS = {"score": "score function, no baseline", "running_mean": "running-mean baseline",
          "leave_one_out": "leave-one-out baseline", "optimal": "optimal control variate (a*)",
          "optimal_loo": "optimal c.v., leave-one-out â", "pathwise": "pathwise"}
COLOURS = {"score": "C3", "running_mean": "C1", "leave_one_out": "C2", "optimal": "C4",
           "optimal_loo": "C6", "pathwise": "C0"}


def estimates(f, score, method, oracle=None):
    """``R`` estimates from ``f (R, S)``, ``score (R, S, P)``, one per row, ``(R, P)``
    (rows are consecutive steps for the running mean). ``oracle``: a known optimal
    coefficient ``(P,)`` or number."""
    from npvae.score_function import (RunningMeanBaseline, leave_one_out_baseline,
                                  optimal_coefficient, score_function_gradient)

    if method == "score":
        return score_function_gradient(f, score)
    if method == "optimal":
        return score_function_gradient(f, score, np.reshape(oracle, (1, 1, -1)))
    if method == "leave_one_out":
        return score_function_gradient(f, score, leave_one_out_baseline(f))
    if method == "optimal_loo":
        return score_function_gradient(f, score, optimal_coefficient(f, score, True))
    if method == "running_mean":
        running, b = RunningMeanBaseline(DECAY), np.empty(len(f))
        for r, row in enumerate(f):
            b[r] = running.value                                      # before seeing row r
            running.update(row)
        warm = min(50, len(f) // 4)                                   # the baseline's warm-up
        out = score_function_gradient(f, score, np.broadcast_to(b[:, None], f.shape))
        return out[warm:]
    raise ValueError(method)


# ------------------------------------------------------------ part 1: toy
def toy_part(args, rng):
    from npvae.score_function import x_squared_variance

    S_values = np.array([1, 2, 5, 10, 20, 50, 100])
    R = 2000 if args.fast else 20_000
    methods = ["score", "running_mean", "leave_one_out", "optimal", "optimal_loo"]
    var = {m: np.full(len(S_values), np.nan) for m in methods + ["pathwise"]}
    for i, S in enumerate(S_values):
        eps = rng.standard_normal((R, S))                             # (R, S)
        f, score = (PHI + eps) ** 2, eps[..., None]                   # (R, S), (R, S, 1)
        var["pathwise"][i] = np.mean(2 * (PHI + eps), axis=1).var(ddof=1)
        for m in methods:
            if S == 1 and m in ("leave_one_out", "optimal_loo"):
                continue                                              # needs other draws
            var[m][i] = estimates(f, score, m, oracle=PHI ** 2 + 3)[:, 0].var(ddof=1)

    theory = {m: x_squared_variance(PHI, S_values.astype(float).clip(2 if m == "leave_one_out"
                                                                    else 1), m, DECAY)
              for m in ["score", "running_mean", "leave_one_out", "optimal", "pathwise"]}
    theory["leave_one_out"] = np.where(S_values >= 2, theory["leave_one_out"], np.nan)
    fig = C.new_figure((13, 5.0))
    ax1, ax2 = fig.subplots(1, 2)
    for m in methods + ["pathwise"]:
        kw = dict(color=COLOURS[m], ms=5, ls="none", marker="s" if m == "pathwise" else "o")
        ax1.plot(S_values, var[m], label=LABELS[m], **kw)
        ax2.plot(S_values, var[m] / var["pathwise"], **kw)
        if m in theory:
            ax1.plot(S_values, theory[m], color=COLOURS[m], lw=1)
            ax2.plot(S_values, theory[m] / theory["pathwise"], color=COLOURS[m], lw=1)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("draws per estimate S")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel("variance of the S-draw estimate")
    ax1.set_title(f"Variance over {R:,} repeats (markers); closed forms (lines)",
                  fontsize="medium")
    ax1.legend(fontsize="small", loc="lower left")
    ax2.set_ylabel("variance / pathwise variance")
    ax2.set_title("Ratio to the pathwise estimator: (φ⁴+14φ²+15)/4, (8φ²+10)/4, (8φ²+6)/4",
                  fontsize="medium")
    fig.suptitle(f"∇φ E[x²], x ~ N(φ, 1), φ = {PHI:g}: baselines and control variates against "
                 f"the pathwise gradient (npvae book, chapter 13)")
    C.save_figure(fig, args, "x_squared_variance.png")

    res = {}
    for m in methods:
        for S in (1, 10, 100):
            i = _reported_index(S_values, m, S)
            tag = f"S={S_values[i]}"
            res[f"toy {m} {tag}: var ratio to pathwise, measured"] = var[m][i] / var["pathwise"][i]
            if m in theory:
                res[f"toy {m} {tag}: var ratio to pathwise, theory"] = (
                    theory[m][i] / theory["pathwise"][i])
    return C.report(args, res, f"part 1: E[x^2] at phi = {PHI:g}")


# ---------------------------------------------------------- part 2: a VAE
def vae_part(args, data, rng):
    import npvae
    from npvae.score_function import optimal_coefficient, vae_encoder_draws, vae_pathwise_gradients

    fast = args.fast
    Z = 4 if fast else 10
    model = npvae.VAE(n_latent=Z, hidden_sizes=(64,) if fast else (256,), dtype="float64",
                      random_state=args.seed)
    C.train_model(model, data, epochs=C.pick(args, data, 15, 3, 40), batch_size=100,
                  learning_rate=1e-3)
    x_test = data.test_float(dtype=np.float64)
    x = x_test[[int(rng.integers(len(x_test)))]]                      # (1, D)
    n_pool = 20_000 if fast else 100_000
    log_px, score = vae_encoder_draws(model, x, rng.standard_normal((n_pool, Z)))
    # the oracle's stand-in: the optimal coefficient from separate draws
    a_sep = optimal_coefficient(*vae_encoder_draws(model, x, rng.standard_normal((n_pool, Z))))
    S_values = np.array([1, 2, 5, 10, 20, 50, 100])
    R_path = 200 if fast else 1000
    methods = ["score", "running_mean", "leave_one_out", "optimal", "optimal_loo"]
    ratio = {m: np.full(len(S_values), np.nan) for m in methods}
    var_path = np.empty((len(S_values), Z))
    for i, S in enumerate(S_values):
        R = n_pool // S
        f, sc = log_px[:R * S].reshape(R, S), score[:R * S].reshape(R, S, Z)
        path = vae_pathwise_gradients(model, x, rng.standard_normal((R_path, S, Z)))
        var_path[i] = path.var(axis=0, ddof=1)                        # (Z,)
        for m in methods:
            if S == 1 and m in ("leave_one_out", "optimal_loo"):
                continue
            est = estimates(f, sc, m, oracle=a_sep[0])                # (R, Z)
            ratio[m][i] = np.median(est.var(axis=0, ddof=1) / var_path[i])

    fig = C.new_figure((12.5, 5.0))
    ax1, ax2 = fig.subplots(1, 2)
    for m in methods:
        ax1.plot(S_values, ratio[m], color=COLOURS[m], marker="o", ms=5, label=LABELS[m]
                 .replace("(a*)", "(â, separate draws)"))
    ax1.axhline(1.0, color=COLOURS["pathwise"], lw=1.2, label="pathwise")
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xlabel("draws per estimate S")
    ax1.set_ylabel("variance / pathwise variance (median over units)")
    ax1.set_title("Variance ratio to the pathwise gradient", fontsize="medium")
    ax1.legend(fontsize="small")
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(S_values, np.median(var_path, axis=1), "s-", color=COLOURS["pathwise"],
             label="pathwise: median over units")
    ax2.plot(S_values, np.median(var_path[0]) / S_values, "k:", lw=1, label="S = 1 value / S")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("draws per estimate S")
    ax2.set_ylabel("variance of the S-draw pathwise estimate")
    ax2.set_title(f"The pathwise reference ({R_path} estimates per S)", fontsize="medium")
    ax2.legend(fontsize="small")
    ax2.grid(True, which="both", alpha=0.3)
    fig.suptitle(f"∇ of E_q log p(x|z) in the encoder's mean bias, one {data.label} test image, "
                 f"Z = {Z} (npvae book, chapter 13)")
    C.save_figure(fig, args, "vae_variance.png")

    res = {}
    for m in methods:
        for S in (1, 10, 100):
            i = _reported_index(S_values, m, S)
            res[f"vae {m} S={S_values[i]}: median var ratio to pathwise"] = ratio[m][i]
    return C.report(args, res, "part 2: VAE encoder, gradient of E_q log p(x|z) w.r.t. b_mu")


def _reported_index(S_values, method, S):
    """Index of ``S`` in ``S_values``; the leave-one-out estimators need two draws, so
    they report ``S = 2`` where ``S = 1`` is asked."""
    if S == 1 and method in ("leave_one_out", "optimal_loo"):
        S = 2
    return int(np.searchsorted(S_values, S))


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
