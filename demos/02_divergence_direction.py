"""Demo 2: the direction of the KL divergence (docs/10-divergences-and-laplace.md).

Part 1: a Gaussian ``q = N(μ, e^r)`` fitted to a bimodal mixture ``p``.

* Forward ``KL(p ‖ q)`` is minimised by moment matching: the maximum-likelihood
  mean and variance of samples of ``p`` (and, exactly, the mixture's mean and
  variance).  ``q`` covers both modes and puts its mass between them.
* Reverse ``KL(q ‖ p) = E_q[log q − log p]`` is minimised by stochastic
  gradients (docs/10-divergences-and-laplace.md#gradients-of-the-reverse-kl),
  with the score function
  ``E_q[∇_θ log q · (log q − log p + 1)]``, ``∇_μ log q = (x − μ) e^{−r}``,
  ``∇_r log q = ½ (x − μ)² e^{−r} − ½``, and pathwise, ``x = μ + e^{r/2} ε``:
  ``∇_μ = −∂_x log p(x)``, ``∇_r = −∂_x log p(x) · ε e^{r/2} / 2 − ½``.
  The optimisation paths are drawn in ``(μ, r = log σ²)`` over the contours of
  ``KL(q ‖ p)`` (computed by Gauss–Hermite quadrature): the reverse fit locks
  onto one mode; which one depends on the start.

Part 2: a factorised ``q(z_1) q(z_2)`` fitted to a correlated Gaussian
``N(m, Λ⁻¹)``, both ways, in closed form
(docs/10-divergences-and-laplace.md#a-factorised-gaussian-fitted-to-a-correlated-gaussian):
reverse KL gives means ``m`` and variances ``1/Λ_jj`` (too narrow), forward KL
the marginal variances ``(Λ⁻¹)_jj`` (too wide).  Both closed forms are checked
against a numerical minimisation of the Gaussian KL
(docs/03-kl-divergences.md#kl-between-two-diagonal-gaussians, with full
covariances) over the factorised family.

Run: ``python demos/02_divergence_direction.py [--fast] [--out DIR]``.
The figures go to ``runs/demos/02_divergence_direction/`` in the repository
(git-ignored) unless ``--out DIR`` is given.
"""
from __future__ import annotations

import os
import sys

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "02_divergence_direction"

# the bimodal target: weights, means, standard deviations
W = np.array([0.6, 0.4])
M = np.array([-2.0, 2.5])
SD = np.array([0.8, 0.6])


def log_p(x):
    """``log p(x)`` of the mixture, any shape."""
    x = np.asarray(x)[..., None]
    comp = np.log(W) - 0.5 * np.log(2 * np.pi) - np.log(SD) - 0.5 * ((x - M) / SD) ** 2
    return logsumexp(comp, axis=-1)


def dlog_p(x):
    """``∂ log p / ∂x``: the responsibilities times each component's score."""
    x = np.asarray(x)[..., None]
    comp = np.log(W) - np.log(SD) - 0.5 * ((x - M) / SD) ** 2
    resp = np.exp(comp - logsumexp(comp, axis=-1, keepdims=True))
    return np.sum(resp * (M - x) / SD ** 2, axis=-1)


def log_q(x, mu, r):
    return -0.5 * (np.log(2 * np.pi) + r + (x - mu) ** 2 * np.exp(-r))


_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(120)     # ∫ f(ε) N(ε) dε ≈ Σ w f(x)/√(2π)
_GH_W = _GH_W / np.sqrt(2 * np.pi)


def reverse_kl(mu, r):
    """``KL(q ‖ p)`` by Gauss–Hermite quadrature; ``mu, r`` broadcastable arrays."""
    mu, r = np.broadcast_arrays(np.asarray(mu, float), np.asarray(r, float))
    x = mu[..., None] + np.exp(0.5 * r)[..., None] * _GH_X                # (..., nodes)
    entropy = 0.5 * (np.log(2 * np.pi * np.e) + r)
    return -entropy - np.sum(_GH_W * log_p(x), axis=-1)


def forward_kl(mu, r, n=200_000, seed=1):
    """``KL(p ‖ q)`` by Monte Carlo on a fixed sample of ``p`` (up to the entropy of p)."""
    x = sample_p(n, np.random.default_rng(seed))
    return float(np.mean(log_p(x) - log_q(x, mu, r)))


def sample_p(n, rng):
    k = rng.choice(len(W), size=n, p=W)
    return M[k] + SD[k] * rng.standard_normal(n)


def sgd_path(estimator, start, steps, S, lr, rng):
    """Plain SGD on ``(μ, r)`` minimising ``KL(q ‖ p)``; returns the path ``(steps+1, 2)``."""
    theta = np.array(start, float)
    path = [theta.copy()]
    for t in range(steps):
        mu, r = theta
        eps = rng.standard_normal(S)
        x = mu + np.exp(0.5 * r) * eps
        if estimator == "score":
            f = log_q(x, mu, r) - log_p(x) + 1.0                           # (S,)
            g_mu = np.mean((x - mu) * np.exp(-r) * f)
            g_r = np.mean((0.5 * (x - mu) ** 2 * np.exp(-r) - 0.5) * f)
        else:
            d = dlog_p(x)
            g_mu = np.mean(-d)
            g_r = np.mean(-d * eps * np.exp(0.5 * r) / 2) - 0.5
        theta = theta - lr * np.array([g_mu, g_r])
        path.append(theta.copy())
    return np.array(path)


def mixture_part(args, rng):
    fast = args.fast
    # forward KL: moment matching, from samples (maximum likelihood) and exactly
    xs = sample_p(2_000 if fast else 100_000, rng)
    mu_f, var_f = xs.mean(), xs.var()                     # ML estimates (ddof=0)
    mu_exact = np.sum(W * M)
    var_exact = np.sum(W * (SD ** 2 + M ** 2)) - mu_exact ** 2

    # reverse KL: the two local minima, deterministically (quadrature + BFGS)
    minima = []
    for start in ((-2.0, 0.0), (2.5, 0.0)):
        res = minimize(lambda th: float(reverse_kl(th[0], th[1])), start, method="BFGS")
        minima.append(res.x)
    minima = np.array(minima)

    # stochastic paths
    steps = 150 if fast else 600
    S, lr = 10, 0.05
    starts = [(0.5, 2.4), (1.6, 0.4)]
    paths = {}
    for i, start in enumerate(starts):
        paths[("pathwise", i)] = sgd_path("pathwise", start, steps, S, lr, rng)
        paths[("score", i)] = sgd_path("score", start, steps, S, lr, rng)

    fig = C.new_figure((13, 4.8))
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.15])
    x = np.linspace(-5.5, 5.5, 600)
    ax1.fill_between(x, np.exp(log_p(x)), color="0.8", label="p: the bimodal mixture")
    ax1.plot(x, np.exp(log_q(x, mu_f, np.log(var_f))), color="C0", lw=2,
             label=f"forward KL(p‖q): moment matching (μ = {mu_f:.2f}, σ² = {var_f:.2f})")
    for k, (mu_r, r_r) in enumerate(minima):
        ax1.plot(x, np.exp(log_q(x, mu_r, r_r)), color="C3", lw=2, ls="-" if k == 0 else "--",
                 label=f"reverse KL(q‖p), {'left' if k == 0 else 'right'} local minimum "
                       f"(KL(q‖p) = {reverse_kl(mu_r, r_r):.2f})")
    ax1.set_xlabel("x")
    ax1.set_ylabel("density")
    ax1.set_ylim(0, 0.95)
    ax1.legend(fontsize="small", loc="upper left")
    ax1.set_title("Gaussian fits to a mixture of two Gaussians", fontsize="medium")

    n_mu, n_r = (110, 90) if fast else (220, 180)
    gm, gr = np.meshgrid(np.linspace(-3.6, 3.6, n_mu), np.linspace(-2.0, 3.2, n_r))
    kl = reverse_kl(gm, gr)
    levels = [0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.7, 2.0, 2.5, 3.0, 4.0, 5.0]
    cs = ax2.contourf(gm, gr, kl, levels=levels, cmap="Greys_r", extend="max", alpha=0.85)
    ax2.contour(gm, gr, kl, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
    cb = fig.colorbar(cs, ax=ax2, label="KL(q ‖ p), nats", pad=0.01)
    cb.set_ticks(levels[::2])
    styles = {"pathwise": dict(color="C0", lw=1.4), "score": dict(color="C1", lw=0.9)}
    for (est, i), path in paths.items():
        label = None
        if i == 0:
            label = (f"pathwise SGD ({S} draws/step)" if est == "pathwise"
                     else f"score-function SGD ({S} draws/step)")
        ax2.plot(path[:, 0], path[:, 1], alpha=0.95, label=label, **styles[est])
        ax2.plot(*path[-1], "o", color=styles[est]["color"], ms=5, mec="k", mew=0.6)
    for i, s in enumerate(starts):
        ax2.plot(*s, "k^", ms=7, label="starts" if i == 0 else None)
    ax2.plot(minima[:, 0], minima[:, 1], "r*", ms=13, mec="w", label="local minima (quadrature)")
    ax2.plot(mu_f, np.log(var_f), "P", color="C0", ms=10, mec="w",
             label="forward-KL fit (moment matching)")
    ax2.set_xlabel("μ")
    ax2.set_ylabel("r = log σ²")
    ax2.set_xlim(gm.min(), gm.max())
    ax2.set_ylim(gr.min(), gr.max())
    ax2.legend(fontsize="x-small", loc="lower left", ncols=2, framealpha=0.9)
    ax2.set_title(f"Reverse-KL optimisation paths: SGD, learning rate {lr}, {steps} steps",
                  fontsize="medium")
    fig.suptitle("Divergence direction: forward KL covers both modes, reverse KL locks onto "
                 "one (npvae book, chapter 10)")
    C.save_figure(fig, args, "mixture_fit.png")

    n_fwd = 20_000 if fast else 200_000
    res = {
        "mixture: forward fit mu (samples)": mu_f,
        "mixture: forward fit var (samples)": var_f,
        "mixture: forward fit mu (exact)": mu_exact,
        "mixture: forward fit var (exact)": var_exact,
        "mixture: reverse KL at the forward fit": reverse_kl(mu_f, np.log(var_f)),
        "mixture: forward KL(p||q) at the forward fit": forward_kl(mu_f, np.log(var_f), n_fwd),
    }
    for k, name in enumerate(("left", "right")):
        res[f"mixture: reverse {name} minimum mu"] = minima[k, 0]
        res[f"mixture: reverse {name} minimum var"] = np.exp(minima[k, 1])
        res[f"mixture: reverse {name} minimum KL(q||p)"] = reverse_kl(*minima[k])
        res[f"mixture: forward KL(p||q) at the {name} reverse fit"] = forward_kl(*minima[k], n_fwd)
    for (est, i), path in paths.items():
        res[f"mixture: {est} SGD from start {i}: final mu"] = path[-1, 0]
        res[f"mixture: {est} SGD from start {i}: final var"] = np.exp(path[-1, 1])
        # jitter of the last quarter of the path: the noise of each estimator at convergence
        tail = path[-len(path) // 4:]
        res[f"mixture: {est} SGD from start {i}: sd of mu, last quarter"] = tail[:, 0].std()
    return C.report(args, res, "part 1: Gaussian fitted to a bimodal mixture")


# ---------------------------------------------------------------- part 2
def kl_gauss(m0, S0, m1, S1):
    """``KL(N(m0, S0) ‖ N(m1, S1))`` for full covariances
    (docs/03-kl-divergences.md#kl-between-two-diagonal-gaussians, generalised)."""
    d = len(m0)
    S1inv = np.linalg.inv(S1)
    diff = m1 - m0
    return 0.5 * (np.trace(S1inv @ S0) + diff @ S1inv @ diff - d
                  + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1])


def ellipse(ax, mean, cov, n_sd, **kw):
    t = np.linspace(0, 2 * np.pi, 200)
    L = np.linalg.cholesky(cov)
    pts = mean[:, None] + n_sd * L @ np.stack([np.cos(t), np.sin(t)])
    return ax.plot(pts[0], pts[1], **kw)


def factorised_part(args):
    m = np.array([0.5, -0.3])
    Sigma = np.array([[1.0, 0.9], [0.9, 1.0]])
    Lam = np.linalg.inv(Sigma)
    var_rev = 1.0 / np.diag(Lam)                # reverse KL: 1/Λ_jj (too narrow)
    var_fwd = np.diag(Sigma)                    # forward KL: (Λ⁻¹)_jj (too wide)
    q_rev, q_fwd = np.diag(var_rev), np.diag(var_fwd)

    # numerical check over the factorised family, θ = (m1, m2, log v1, log v2)
    def unpack(th):
        return th[:2], np.diag(np.exp(th[2:]))
    num_rev = minimize(lambda th: kl_gauss(*unpack(th), m, Sigma), np.zeros(4), method="BFGS").x
    num_fwd = minimize(lambda th: kl_gauss(m, Sigma, *unpack(th)), np.zeros(4), method="BFGS").x

    fig = C.new_figure((10, 4.9))
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, (q, colour, title) in zip(axes, (
            (q_rev, "C3", "reverse KL(q‖p): variances "
                          rf"$1/\Lambda_{{jj}}$ = {var_rev[0]:.2f}"),
            (q_fwd, "C0", "forward KL(p‖q): variances "
                          rf"$(\Lambda^{{-1}})_{{jj}}$ = {var_fwd[0]:.2f}"))):
        for n_sd, ls in ((1, "-"), (2, "--")):
            ellipse(ax, m, Sigma, n_sd, color="k", lw=1.5, ls=ls)
            ellipse(ax, m, q, n_sd, color=colour, lw=2, ls=ls)
        ax.plot(*m, "k+", ms=10)
        ax.set_aspect("equal")
        ax.set_xlabel("z₁")
        ax.set_title(title, fontsize="medium")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("z₂")
    from matplotlib.lines import Line2D
    fig.legend(handles=[
        Line2D([], [], color="k", lw=1.5, label="p = N(m, Λ⁻¹)"),
        Line2D([], [], color="C3", lw=2, label="factorised q, reverse KL"),
        Line2D([], [], color="C0", lw=2, label="factorised q, forward KL"),
        Line2D([], [], color="0.4", lw=1.5, ls="-", label="1 sd"),
        Line2D([], [], color="0.4", lw=1.5, ls="--", label="2 sd")],
        loc="outside lower center", ncols=5, fontsize="small")
    fig.suptitle(f"Factorised Gaussian fitted to a correlated Gaussian (ρ = {Sigma[0, 1]}), "
                 "closed forms (npvae book, chapter 10)")
    C.save_figure(fig, args, "factorised_fit.png")

    res = {
        "factorised: correlation rho": Sigma[0, 1],
        "factorised: reverse q variance (1/Lambda_jj)": var_rev[0],
        "factorised: forward q variance (Sigma_jj)": var_fwd[0],
        "factorised: KL(q_rev || p)": kl_gauss(m, q_rev, m, Sigma),
        "factorised: KL(p || q_fwd)": kl_gauss(m, Sigma, m, q_fwd),
        "factorised: KL(q_fwd || p)": kl_gauss(m, q_fwd, m, Sigma),
        "factorised: KL(p || q_rev)": kl_gauss(m, Sigma, m, q_rev),
        "factorised: max |closed form - numerical| reverse": max(
            np.abs(num_rev[:2] - m).max(), np.abs(np.exp(num_rev[2:]) - var_rev).max()),
        "factorised: max |closed form - numerical| forward": max(
            np.abs(num_fwd[:2] - m).max(), np.abs(np.exp(num_fwd[2:]) - var_fwd).max()),
    }
    return C.report(args, res, "part 2: factorised Gaussian fitted to a correlated Gaussian")


def main(argv=None):
    args = C.parse_args(NAME, __doc__, argv, uses_data=False)
    with C.demo_session(args):
        rng = np.random.default_rng(args.seed)
        results = mixture_part(args, rng)
        results.update(factorised_part(args))
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
