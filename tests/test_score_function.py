"""Score-function estimators with baselines and control variates (npvae/score_function.py,
docs/13-em-and-variance-reduction.md#variance-reduction-for-the-score-function): unbiased
by averaging many draws, the leave-one-out baseline independent of its own draw, measured
variances against the closed forms of the E[x²] example, and the VAE helpers."""
from __future__ import annotations

import numpy as np
import pytest

from npvae.score_function import (RunningMeanBaseline, leave_one_out_baseline, optimal_coefficient,
                              score_function_gradient, vae_encoder_draws,
                              vae_pathwise_gradients, x_squared_variance)

PHI = 1.5


def x_squared_estimates(method, S, R, rng, phi=PHI, decay=0.9):
    """``R`` independent (or, for the running mean, consecutive) ``S``-draw estimates of
    ``∇_φ E_{N(φ,1)}[x²]`` with the library's functions, ``(R,)``."""
    out = np.empty(R)
    running = RunningMeanBaseline(decay)
    for r in range(R):
        eps = rng.standard_normal(S)                                   # (S,)
        f, score = (phi + eps) ** 2, eps[:, None]                     # (S,), (S, 1)
        if method == "pathwise":
            out[r] = np.mean(2 * (phi + eps))
            continue
        baseline = {"score": lambda: 0.0,
                    "mean_baseline": lambda: phi ** 2 + 1,
                    "optimal": lambda: phi ** 2 + 3,
                    "running_mean": lambda: running.value,
                    "leave_one_out": lambda: leave_one_out_baseline(f),
                    "optimal_loo": lambda: optimal_coefficient(f, score, leave_one_out=True),
                    "optimal_in_sample": lambda: optimal_coefficient(f, score)}[method]()
        out[r] = score_function_gradient(f, score, baseline)[0]
        running.update(f)
    if method == "running_mean":
        out = out[50:]                                                # the baseline's warm-up
    return out


METHODS = ["score", "mean_baseline", "optimal", "running_mean", "leave_one_out", "optimal_loo"]


@pytest.mark.parametrize("method", METHODS + ["pathwise"])
def test_unbiased(method, rng):
    est = x_squared_estimates(method, 4, 20_000, rng)
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - 2 * PHI) < 4 * se


def test_in_sample_optimal_coefficient_is_biased(rng):
    """Reusing the draws for the coefficient biases the estimate: why the leave-one-out."""
    est = x_squared_estimates("optimal_in_sample", 2, 40_000, rng)
    se = est.std(ddof=1) / np.sqrt(len(est))
    assert abs(est.mean() - 2 * PHI) > 6 * se


@pytest.mark.parametrize("method", ["pathwise", "score", "mean_baseline", "optimal",
                                    "running_mean", "leave_one_out"])
@pytest.mark.parametrize("S", [2, 10])
def test_measured_variance_matches_closed_form(method, S, rng):
    est = x_squared_estimates(method, S, 30_000, rng)
    theory = x_squared_variance(PHI, S, method)
    # relative sd of a sample variance: sqrt((κ − 1)/R), κ the kurtosis (below ~12 here)
    assert est.var(ddof=1) == pytest.approx(theory, rel=5 * np.sqrt(11 / len(est)))


def test_closed_forms_order_and_limits():
    S = np.array([2, 10, 100])
    v = {m: x_squared_variance(PHI, S, m) for m in
         ["pathwise", "score", "mean_baseline", "optimal", "running_mean", "leave_one_out"]}
    assert np.all(v["pathwise"] < v["optimal"]) and np.all(v["optimal"] < v["mean_baseline"])
    assert np.all(v["mean_baseline"] < v["running_mean"]) and np.all(v["mean_baseline"] < v["score"])
    # the leave-one-out baseline approaches the true mean as S grows
    assert v["leave_one_out"][-1] == pytest.approx(v["mean_baseline"][-1], rel=0.02)
    assert x_squared_variance(2.0, 1, "score") == 16 + 56 + 15


def test_leave_one_out_baseline_ignores_its_own_draw(rng):
    f = rng.standard_normal(6)
    b = leave_one_out_baseline(f)
    for s in range(6):
        g = f.copy()
        g[s] += 100.0
        assert leave_one_out_baseline(g)[s] == pytest.approx(b[s])     # unchanged: not f_s
        assert not np.isclose(leave_one_out_baseline(g)[(s + 1) % 6], b[(s + 1) % 6])
    np.testing.assert_allclose(b, [np.delete(f, s).mean() for s in range(6)])
    # the leave-one-out estimator is (1/(S−1)) Σ (f_s − f̄) score_s
    score = rng.standard_normal((6, 3))
    np.testing.assert_allclose(score_function_gradient(f, score, b),
                               ((f - f.mean())[:, None] * score).sum(0) / 5)


def test_optimal_coefficient_estimates_the_oracle(rng):
    eps = rng.standard_normal(400_000)
    a = optimal_coefficient((PHI + eps) ** 2, eps[:, None])
    assert a.shape == (1, 1) and a[0, 0] == pytest.approx(PHI ** 2 + 3, rel=0.01)
    loo = optimal_coefficient((PHI + eps[:5]) ** 2, eps[:5, None], leave_one_out=True)
    f, s2 = (PHI + eps[:5]) ** 2, eps[:5] ** 2
    assert loo[2, 0] == pytest.approx(np.delete(f * s2, 2).sum() / np.delete(s2, 2).sum())


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="S >= 2"):
        leave_one_out_baseline(np.ones(1))
    with pytest.raises(ValueError, match="same S"):
        score_function_gradient(np.ones(3), np.ones((4, 2)))
    with pytest.raises(ValueError, match="one value per draw"):
        score_function_gradient(np.ones(3), np.ones((3, 2)), baseline=np.ones(2))
    with pytest.raises(ValueError, match="does not broadcast"):
        score_function_gradient(np.ones(3), np.ones((3, 2)), baseline=np.ones((2, 2)))


def test_leading_axes_are_independent_estimates(rng):
    """``(R, S)`` draws give the ``R`` estimates one at a time would."""
    f, score = rng.standard_normal((4, 6)), rng.standard_normal((4, 6, 3))
    for kind in ("loo", "opt"):
        b = (leave_one_out_baseline(f) if kind == "loo"
             else optimal_coefficient(f, score, leave_one_out=True))
        got = score_function_gradient(f, score, b)                    # (4, 3)
        for r in range(4):
            b_r = (leave_one_out_baseline(f[r]) if kind == "loo"
                   else optimal_coefficient(f[r], score[r], leave_one_out=True))
            np.testing.assert_allclose(got[r], score_function_gradient(f[r], score[r], b_r))
    with pytest.raises(ValueError, match="estimator must be"):
        x_squared_variance(1.0, 10, "nope")
    with pytest.raises(ValueError, match="decay"):
        RunningMeanBaseline(1.0)


def test_vae_score_and_pathwise_agree(rng):
    """On a small VAE the score-function and pathwise estimates of the gradient of
    E_q log p(x|z) in the encoder's mean bias agree within their standard errors."""
    import npvae

    X = (rng.uniform(size=(50, 12)) < 0.4).astype(np.float64)
    model = npvae.VAE(n_latent=2, hidden_sizes=(8,), dtype="float64", random_state=0)
    model.fit(X, epochs=2, batch_size=25)
    x = X[:1]
    log_px, score = vae_encoder_draws(model, x, rng.standard_normal((20_000, 2)))
    b = leave_one_out_baseline(log_px)
    draws = (log_px - b)[:, None] * score * len(log_px) / (len(log_px) - 1)   # per-draw terms
    path = vae_pathwise_gradients(model, x, rng.standard_normal((200, 5, 2)))  # (200, Z)
    gap = np.abs(draws.mean(0) - path.mean(0))
    se = np.hypot(draws.std(0) / np.sqrt(len(draws)), path.std(0) / np.sqrt(len(path)))
    assert np.all(gap < 4 * se)
    assert model.beta == 1.0                                          # restored
