"""Demo 3: the Laplace approximation against the variational Gaussian
(docs/10-divergences-and-laplace.md#the-laplace-approximation).

The target is Bishop's fig. 10.1, ``p(z) ∝ exp(−z²/2) sigmoid(20 z + 4)``, a
skewed density.  With ``a = 20 z + 4``:

* ``log p̃(z) = −z²/2 + log sigmoid(a)``,
  ``∂/∂z = −z + 20 sigmoid(−a)``, ``∂²/∂z² = −1 − 400 sigmoid(a) sigmoid(−a)``.
* Laplace: the mode ``z*`` by Newton's method, then the Gaussian with variance
  ``(−∂² log p/∂z²)^{−1}`` at ``z*``
  (docs/10-divergences-and-laplace.md#second-order-expansion-at-the-mode).
* Variational: ``q = N(μ, e^r)`` minimising the reverse ``KL(q ‖ p)``, by
  pathwise gradient descent with a *fixed* set of noise draws ``ε`` (common
  random numbers make the Monte Carlo objective a deterministic function of
  ``(μ, r)``, docs/02-reparameterisation.md#the-reparameterised-sample),
  ``z = μ + e^{r/2} ε``:
  ``∇_μ = −E[∂_z log p̃(z)]``, ``∇_r = −E[∂_z log p̃(z) ε e^{r/2}] / 2 − ½``;
  checked against a minimisation of the same KL by Gauss–Hermite quadrature.

The normalising constant, the true mean and variance and every KL are computed
by numerical integration on a fine grid.  The figure shows the three
densities and their negative logarithms.

Run: ``python demos/03_laplace_vs_variational.py [--fast] [--out DIR]``.
The figures go to ``runs/demos/03_laplace_vs_variational/`` in the repository
(git-ignored) unless ``--out DIR`` is given.
"""
from __future__ import annotations

import os
import sys

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "03_laplace_vs_variational"


def log_p_tilde(z):
    return -0.5 * z ** 2 + log_expit(20 * z + 4)


def dlog_p(z):
    return -z + 20 * expit(-(20 * z + 4))


def d2log_p(z):
    a = 20 * z + 4
    return -1.0 - 400 * expit(a) * expit(-a)


def newton_mode(z0=0.0, tol=1e-12, max_iter=50):
    """Newton's method on ``∂ log p̃ = 0``; returns ``(z*, iterations)``."""
    z, it = z0, []
    for _ in range(max_iter):
        step = dlog_p(z) / d2log_p(z)
        z -= step
        it.append(z)
        if abs(step) < tol:
            break
    return z, it


def log_normal(z, mu, var):
    return -0.5 * (np.log(2 * np.pi * var) + (z - mu) ** 2 / var)


_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(100)
_GH_W = _GH_W / np.sqrt(2 * np.pi)


def kl_quadrature(mu, r, log_Z):
    """``KL(N(μ, e^r) ‖ p)`` by Gauss–Hermite quadrature."""
    z = mu + np.exp(0.5 * r) * _GH_X
    return -0.5 * (np.log(2 * np.pi * np.e) + r) - np.sum(_GH_W * log_p_tilde(z)) + log_Z


def fixed_noise_descent(eps, mu0, r0, steps, lr):
    """Gradient descent on the Monte Carlo reverse KL with fixed ``eps``; returns
    ``(μ, r, trace of (μ, r))``.  Adam-free on purpose: plain gradient steps."""
    mu, r = mu0, r0
    trace = [(mu, r)]
    for _ in range(steps):
        s = np.exp(0.5 * r)
        z = mu + s * eps
        d = dlog_p(z)
        g_mu = -np.mean(d)
        g_r = -np.mean(d * eps) * s / 2 - 0.5
        mu, r = mu - lr * g_mu, r - lr * g_r
        trace.append((mu, r))
    return mu, r, np.array(trace)


def main(argv=None):
    args = C.parse_args(NAME, __doc__, argv, uses_data=False)
    with C.demo_session(args):
        rng = np.random.default_rng(args.seed)
        grid = np.linspace(-4, 6, 200_001)
        dz = grid[1] - grid[0]
        lp = log_p_tilde(grid)
        log_Z = np.log(np.sum(np.exp(lp)) * dz)
        p = np.exp(lp - log_Z)
        true_mean = np.sum(grid * p) * dz
        true_var = np.sum((grid - true_mean) ** 2 * p) * dz

        z_star, newton_iters = newton_mode(0.0)
        curvature = -d2log_p(z_star)
        var_laplace = 1.0 / curvature

        S = 1000 if args.fast else 20_000
        steps = 300 if args.fast else 2000
        eps = rng.standard_normal(S)
        mu_vi, r_vi, trace = fixed_noise_descent(eps, 0.0, 0.0, steps, lr=0.02)
        res_q = minimize(lambda th: kl_quadrature(th[0], th[1], log_Z), [0.0, 0.0],
                         method="BFGS")
        mu_q, r_q = res_q.x

        def kl_grid(mu, var):            # KL(q ‖ p) on the grid
            lq = log_normal(grid, mu, var)
            q = np.exp(lq)
            return np.sum(q * (lq - (lp - log_Z))) * dz

        def kl_grid_forward(mu, var):    # KL(p ‖ q) on the grid
            return np.sum(p * ((lp - log_Z) - log_normal(grid, mu, var))) * dz

        x = np.linspace(-2, 4, 1000)
        px = np.exp(log_p_tilde(x) - log_Z)
        fig = C.new_figure((12, 4.6))
        ax1, ax2 = fig.subplots(1, 2)
        curves = (
            (px, "0.55", "-", "p(z) ∝ exp(−z²/2) σ(20z + 4)", None),
            (np.exp(log_normal(x, z_star, var_laplace)), "C3", "-",
             f"Laplace: mode {z_star:.3f}, var {var_laplace:.4f}", None),
            (np.exp(log_normal(x, mu_vi, np.exp(r_vi))), "C0", "--",
             f"variational (reverse KL): mean {mu_vi:.3f}, var {np.exp(r_vi):.4f}", None),
        )
        for y, colour, ls, label, _ in curves:
            kw = dict(color=colour, ls=ls, lw=2.2 if colour != "0.55" else 0)
            if colour == "0.55":
                ax1.fill_between(x, y, color="0.8", label=label)
                ax2.plot(x, -np.log(np.maximum(y, 1e-300)), color="0.45", lw=2, label=label)
            else:
                ax1.plot(x, y, label=label, **kw)
                ax2.plot(x, -np.log(y), label=label, **kw)
        p_at_mean = np.exp(log_p_tilde(true_mean) - log_Z)
        ax1.plot([true_mean, true_mean], [0, p_at_mean], color="0.2", lw=1, ls=":",
                 label=f"true mean of p: {true_mean:.3f}")
        ax1.set_xlim(-2, 4)
        ax1.set_ylim(0, 1.4 * max(c[0].max() for c in curves))
        ax1.set_xlabel("z")
        ax1.set_ylabel("density")
        ax1.legend(fontsize="small", loc="upper right")
        ax1.set_title("Densities", fontsize="medium")
        ax2.set_xlim(-2, 4)
        ax2.set_ylim(0, 12)
        ax2.set_xlabel("z")
        ax2.set_ylabel("− log density")
        ax2.set_title("− log density of the same three curves (p normalised)",
                      fontsize="medium")
        for ax in (ax1, ax2):
            ax.grid(True, alpha=0.3)
        fig.suptitle("Laplace approximation against the variational Gaussian "
                     "(npvae book, chapter 10; Bishop 2006, fig. 10.1)")
        C.save_figure(fig, args, "laplace_vs_variational.png")

        results = C.report(args, {
            "log normaliser log Z": log_Z,
            "true mean": true_mean,
            "true variance": true_var,
            "Newton iterations": len(newton_iters),
            "Laplace mode z*": z_star,
            "curvature -d2 log p(z*)": curvature,
            "Laplace variance": var_laplace,
            "variational mean (fixed-noise descent)": mu_vi,
            "variational variance (fixed-noise descent)": np.exp(r_vi),
            "variational mean (quadrature)": mu_q,
            "variational variance (quadrature)": np.exp(r_q),
            "KL(q||p) Laplace": kl_grid(z_star, var_laplace),
            "KL(q||p) variational": kl_grid(mu_vi, np.exp(r_vi)),
            "KL(p||q) Laplace": kl_grid_forward(z_star, var_laplace),
            "KL(p||q) variational": kl_grid_forward(mu_vi, np.exp(r_vi)),
            "KL(q||p) moment matched N(true mean, true var)": kl_grid(true_mean, true_var),
        }, f"p(z) ∝ exp(-z²/2) sigmoid(20z+4); {S} fixed noise draws, {steps} steps")
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
