"""Demo 13: planar flows bending a Gaussian onto 2-D energies
(docs/18-normalising-flows.md; Rezende & Mohamed 2015, figure 3).

Rezende & Mohamed's test densities ``p(z) ∝ exp(−U(z))`` (their table 1: ``U₁`` the
ring, ``U₂`` the sine, here times a broad Gaussian along ``z₁`` so that it has a
normaliser), fitted by a diagonal Gaussian (``F = 0``) and by ``F`` planar
steps after it, with npvae's own posterior kernels
(:class:`npvae.distributions.planar.PlanarPosterior`) and no encoder: one ``μ, λ`` and
one ``(u, w, b)`` per step, trained by Adam on the reverse KL
``E_q[log q(z) + U(z)] = KL(q ‖ p) − log Z``.

* ``planar_flows.png``: one row per energy; the target ``exp(−U)``, then histograms of
  samples of ``q`` for each ``F``, titled with ``KL(q ‖ p)`` in nats (``log Z`` by a
  sum over a fine grid, the expectation over 20,000 samples).

The printed numbers are those KLs. Run: ``python demos/13_normalising_flows.py
[--fast] [--out DIR]``.
"""
from __future__ import annotations

import os
import sys

import numpy as np
from scipy.special import logsumexp, softmax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "13_normalising_flows"
LIMIT = 4.0                                   # the square [−4, 4]² of the figures


# ------------------------------------------------------------------ the energies
def ring(z):
    """``U₁``: ``½((‖z‖ − 2)/0.4)² − log(e^{−½((z₁−2)/0.6)²} + e^{−½((z₁+2)/0.6)²})`` and its
    gradient ``(·, 2)``."""
    z1 = z[..., 0]
    r = np.sqrt(np.sum(z * z, axis=-1)) + 1e-12
    a = np.stack([-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2], axis=-1)
    u = 0.5 * ((r - 2) / 0.4) ** 2 - logsumexp(a, axis=-1)
    grad = ((r - 2) / 0.16 / r)[..., None] * z
    p = softmax(a, axis=-1)
    grad[..., 0] += p[..., 0] * (z1 - 2) / 0.36 + p[..., 1] * (z1 + 2) / 0.36
    return u, grad


def sine(z):
    """``U₂ = ½((z₂ − sin(π z₁/2))/0.4)²`` plus ``½ (z₁/2)²`` and its gradient: ``e^{−U₂}``
    alone is constant along ``z₁`` and has no normaliser (no KL), so a broad Gaussian
    envelope (standard deviation 2) along ``z₁`` is added."""
    w1 = np.sin(np.pi * z[..., 0] / 2)
    d = (z[..., 1] - w1) / 0.16
    grad = np.stack([-d * (np.pi / 2) * np.cos(np.pi * z[..., 0] / 2) + z[..., 0] / 4, d],
                    axis=-1)
    return 0.5 * (z[..., 1] - w1) ** 2 / 0.16 + z[..., 0] ** 2 / 8, grad


ENERGIES = {"ring U1": ring, "sine U2 (enveloped)": sine}


def log_normaliser(energy, n=801):
    """``log Z = log ∫ e^{−U}`` by a sum over an ``n × n`` grid of ``[−6, 6]²``."""
    g = np.linspace(-6, 6, n)
    zz = np.stack(np.meshgrid(g, g), axis=-1)
    return float(logsumexp(-energy(zz)[0]) + 2 * np.log(g[1] - g[0]))


# ---------------------------------------------------------------------- the fit
def fit(energy, n_flows, steps, n_samples, rng):
    """The base ``μ, λ`` and the flows' ``(u, w, b)`` minimising ``E_q[log q + U]``; returns
    the posterior and its parameters ``(μ (1, 2), scale_params (1, ·))``."""
    from npvae.distributions.planar import PlanarPosterior
    from npvae.distributions.posteriors import DiagonalGaussian
    from npvae.optim import Adam

    post = PlanarPosterior({"n_flows": n_flows}) if n_flows else DiagonalGaussian()
    theta = np.zeros(2 + post.head_size(2))                         # μ, λ, then the flows
    theta[:2] = rng.normal(0, 0.1, 2)           # not exactly on the ring's symmetric point
    theta[4:] = rng.normal(0, 0.1, theta.size - 4)
    adam = Adam(learning_rate=1e-2)
    state = adam.init_state(theta.size, theta.dtype)
    for step in range(steps):
        mu, scale_params = theta[None, :2], theta[None, 2:]
        eps = rng.standard_normal((n_samples, 1, 2))
        z, z_c = post.sample_forward(mu, scale_params, eps)         # (S, 1, 2)
        _, q_c = post.log_q_mu_forward(mu, scale_params, eps)       # (S, 1)
        dz = energy(z)[1] / n_samples                               # ∂U/∂z, averaged
        dmu, dhead = post.sample_backward(dz, z_c)
        dmu_q, dhead_q = post.log_q_mu_backward(np.full((n_samples, 1), 1 / n_samples), q_c)
        g = np.concatenate([(dmu + dmu_q).ravel(), (dhead + dhead_q).ravel()])
        lr = 1e-2 if step < steps // 2 else 3e-3
        adam.step(theta, g, state, learning_rate=lr)
    return post, theta[None, :2], theta[None, 2:]


def kl_and_samples(post, mu, scale_params, energy, log_z, rng, n=20000):
    """``KL(q ‖ p) = E_q[log q + U] + log Z`` over ``n`` samples, and the samples ``(n, 2)``."""
    eps = rng.standard_normal((n, 1, 2))
    z = post.sample_forward(mu, scale_params, eps)[0]
    log_q = post.log_q_mu_forward(mu, scale_params, eps)[0]
    return float(np.mean(log_q[:, 0] + energy(z)[0][:, 0]) + log_z), z[:, 0]


def main(argv=None):
    args = C.parse_args(NAME, __doc__, argv, uses_data=False)
    with C.demo_session(args):
        rng = np.random.default_rng(args.seed)
        flows = (0, 2, 8) if args.fast else (0, 2, 8, 16)
        steps = 300 if args.fast else 2000
        fig = C.new_figure((2.4 * (len(flows) + 1), 2.4 * len(ENERGIES)))
        axes = fig.subplots(len(ENERGIES), len(flows) + 1, squeeze=False)
        g = np.linspace(-LIMIT, LIMIT, 200)
        grid = np.stack(np.meshgrid(g, g), axis=-1)
        results = {}
        for row, (label, energy) in enumerate(ENERGIES.items()):
            log_z = log_normaliser(energy)
            axes[row, 0].imshow(np.exp(-energy(grid)[0]), origin="lower", cmap="viridis",
                                extent=(-LIMIT, LIMIT, -LIMIT, LIMIT))
            axes[row, 0].set_title(f"target exp(-U), {label}", fontsize="small")
            for col, F in enumerate(flows, start=1):
                post, mu, scale_params = fit(energy, F, steps, 64, rng)
                kl, z = kl_and_samples(post, mu, scale_params, energy, log_z, rng)
                results[f"KL {label.split()[0]} F={F}"] = kl
                axes[row, col].hist2d(z[:, 0], z[:, 1], bins=100, cmap="viridis",
                                      range=[[-LIMIT, LIMIT], [-LIMIT, LIMIT]])
                what = "diagonal Gaussian" if F == 0 else f"{F} planar flows"
                axes[row, col].set_title(f"{what}\nKL(q||p) = {kl:.3f} nats", fontsize="small")
            for ax in axes[row]:
                ax.set_aspect("equal")
                ax.set_xticks([])
                ax.set_yticks([])
        C.save_figure(fig, args, "planar_flows.png")
        results = C.report(args, results, f"KL(q || p) in nats after {steps} Adam steps, "
                                          "S = 64 samples a step")
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
