"""Planar flows (Rezende & Mohamed 2015), amortised: the encoder outputs each flow's
``u, w, b`` per example (docs/18-normalising-flows.md#planar-flows).

``VAE(posterior="planar", posterior_params={"n_flows": F})``.  One step

    z' = z + û tanh(wᵀz + b),    log |det ∂z'/∂z| = log (1 + tanh'(wᵀz + b) wᵀû),

with ``û = u + (m(wᵀu) − wᵀu) w/‖w‖²``, ``m(α) = −1 + softplus(α)``, so that
``wᵀû = m(wᵀu) > −1`` and the step is invertible.  The determinant is computed as
``t² + (1 − t²) ρ`` with ``t = tanh(wᵀz + b)`` and ``ρ = 1 + wᵀû = softplus(wᵀu)``:
positive, and without the cancellation of ``1 + (1 − t²)(−1 + softplus(wᵀu))``.
Where ``w = 0`` (an all-zero input at initialisation) the correction is 0, ``û = u``
and ``ρ = 1``: the step is then ``z + u tanh(b)``, determinant 1.

Head layout ``(N, Z + F(2Z + 1))``: ``λ``, then flow by flow ``u (Z), w (Z), b (1)``.

Shapes: ``u, w (N, Z)``, ``b, ρ (N,)``; ``z (S, N, Z)``, log-determinants ``(S, N)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from .flows import FlowPosterior, flow_options
from .posteriors import POSTERIORS


# ------------------------------------------------------------------- the kernels
def planar_constraint_forward(u, w):
    """``û = u + (m(α) − α) w/‖w‖²`` with ``α = wᵀu``, ``m(α) − α = −1 + softplus(−α)``,
    and ``ρ = 1 + wᵀû = softplus(α)`` (docs/18-normalising-flows.md#the-invertibility-constraint).

    Returns ``((u_hat (N, Z), rho (N,)), cache)``; where ``w = 0``: ``û = u``, ``ρ = 1``.
    """
    alpha = np.einsum("nz,nz->n", w, u)                                       # (N,)
    norm2 = np.einsum("nz,nz->n", w, w)                                       # (N,)
    nz = norm2 > 0
    safe = np.where(nz, norm2, 1.0)
    c = np.where(nz, (np.logaddexp(0.0, -alpha) - 1.0) / safe, 0.0)           # (N,)
    u_hat = u + c[:, None] * w                                                # (N, Z)
    rho = np.where(nz, np.logaddexp(0.0, alpha), 1.0)                         # (N,)
    return (u_hat, rho.astype(u.dtype, copy=False)), (u, w, alpha, safe, nz, c)


def planar_constraint_backward(dout, cache):
    """``(du, dw)`` from ``(dû (N, Z), dρ (N,))``:  with ``dc = dûᵀw``,
    ``dα = dc (σ(α) − 1)/‖w‖² + dρ σ(α)``, ``d‖w‖² = −dc c/‖w‖²``;
    ``du = dû + dα w``, ``dw = c dû + dα u + 2 d‖w‖² w`` (0 where ``w = 0``)."""
    du_hat, drho = dout
    u, w, alpha, norm2, nz, c = cache
    dc = np.einsum("nz,nz->n", du_hat, w)                                     # (N,)
    s = expit(alpha)
    dalpha = np.where(nz, dc * (s - 1.0) / norm2 + drho * s, 0.0)             # (N,)
    dnorm2 = np.where(nz, -dc * c / norm2, 0.0)
    du = du_hat + dalpha[:, None] * w
    dw = c[:, None] * du_hat + dalpha[:, None] * u + 2.0 * dnorm2[:, None] * w
    return du, dw


def planar_step_forward(z, u_hat, w, b, rho):
    """``z' = z + û t``, ``t = tanh(wᵀz + b)``, and ``log det = log(t² + (1 − t²) ρ)``
    (docs/18-normalising-flows.md#planar-flows).

    ``z (S, N, Z)``, ``u_hat, w (N, Z)``, ``b, rho (N,)``.  Returns
    ``((z' (S, N, Z), logdet (S, N)), cache)``.
    """
    t = np.tanh(np.einsum("snz,nz->sn", z, w) + b)                           # (S, N)
    z_new = z + t[..., None] * u_hat
    det = t * t + (1.0 - t * t) * rho                                         # (S, N), > 0
    return (z_new, np.log(det)), (z, u_hat, w, t, rho, det)


def planar_step_backward(dout, cache):
    """``(dz, dû, dw, db, dρ)`` from ``(dz' (S, N, Z), dlogdet (S, N))``, the per-example
    parameters' gradients summed over the samples (docs/18-normalising-flows.md#the-backward-of-a-planar-step)."""
    dz_new, dlogdet = dout
    z, u_hat, w, t, rho, det = cache
    h1 = 1.0 - t * t                                                          # tanh'(a)
    ddet = dlogdet / det                                                      # (S, N)
    dt = np.einsum("snz,nz->sn", dz_new, u_hat) + ddet * 2.0 * t * (1.0 - rho)
    da = dt * h1                                                              # (S, N)
    dz = dz_new + da[..., None] * w
    du_hat = np.einsum("sn,snz->nz", t, dz_new)
    dw = np.einsum("sn,snz->nz", da, z)
    return dz, du_hat, dw, da.sum(axis=0), (ddet * h1).sum(axis=0)


# ------------------------------------------------------------------ the posterior
class PlanarPosterior(FlowPosterior):
    """``F`` planar flows after the diagonal Gaussian, amortised (docs/18-normalising-flows.md).
    ``posterior_params``: ``n_flows`` ``F`` in ``[1, 1000]`` (default 4)."""

    name = "planar"
    head = "planar"

    def __init__(self, params=None):
        self.n_flows = flow_options(self.name, params, {"n_flows": 4})["n_flows"]

    def flow_head_size(self, Z):
        return self.n_flows * (2 * Z + 1)

    def _split(self, extra, f, Z):
        block = extra[:, f * (2 * Z + 1):(f + 1) * (2 * Z + 1)]
        return block[:, :Z], block[:, Z:2 * Z], block[:, 2 * Z]

    def _flows_forward(self, z, extra):
        Z, caches, logdet = z.shape[-1], [], 0.0
        for f in range(self.n_flows):
            u, w, b = self._split(extra, f, Z)
            (u_hat, rho), c_c = planar_constraint_forward(u, w)
            (z, ld), s_c = planar_step_forward(z, u_hat, w, b, rho)
            logdet = logdet + ld
            caches.append((c_c, s_c))
        return z, logdet, (caches, extra.shape)

    def _flows_backward(self, dz, dlogdet, cache):
        caches, shape = cache
        Z = dz.shape[-1]
        dextra = np.empty(shape, dtype=dz.dtype)
        for f in reversed(range(self.n_flows)):
            c_c, s_c = caches[f]
            dz, du_hat, dw_step, db, drho = planar_step_backward((dz, dlogdet), s_c)
            du, dw = planar_constraint_backward((du_hat, drho), c_c)
            block = dextra[:, f * (2 * Z + 1):(f + 1) * (2 * Z + 1)]
            block[:, :Z], block[:, Z:2 * Z], block[:, 2 * Z] = du, dw + dw_step, db
        return dz, dextra


POSTERIORS["planar"] = PlanarPosterior          # VAE(posterior="planar")
