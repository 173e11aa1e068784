"""Inverse autoregressive flow (Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling
2016) with MADE-masked layers (Germain et al. 2015) (docs/18-normalising-flows.md#inverse-autoregressive-flow).

``VAE(posterior="iaf", posterior_params={"n_flows": F, "hidden_size": H,
"context_size": C})``.  The encoder's head outputs ``λ`` and a context ``h (N, C)``;
step ``t`` computes, with one masked hidden layer of width ``H``,

    a = z (W ⊙ M₁) + h V + b,   g = tanh(a),
    m = g (W_m ⊙ M₂) + b_m,     s = g (W_s ⊙ M₂) + b_s,   σ = sigmoid(s),
    z' = σ ⊙ z + (1 − σ) ⊙ m,   log |det ∂z'/∂z| = Σ_j log σ_j,

the numerically stable LSTM-type update of the paper.  The masks make ``m_j`` and
``s_j`` depend on ``z_i`` only for ``d(i) < d(j)`` in an ordering ``d``, so the Jacobian
is triangular with diagonal ``σ``; the ordering is reversed from one step to the next.
The steps' weights are the model's parameters, shared by all examples:
``iaf{t}_W (Z, H)``, ``iaf{t}_V (C, H)``, ``iaf{t}_b (H,)``, ``iaf{t}_Wm``, ``iaf{t}_Ws (H, Z)``,
``iaf{t}_bm``, ``iaf{t}_bs (Z,)`` in ``params_`` (saved, loaded and checkpointed with
the rest; masked entries stay at 0 and get no gradient).

Shapes: ``z (R, Z)`` with ``R = S·N`` rows, ``h (R, C)``, ``g (R, H)``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..layers.dense import glorot_uniform
from .flows import FlowPosterior, flow_options
from .posteriors import POSTERIORS

#: the gate's initial bias: σ = sigmoid(1.5) ≈ 0.82 at the start, a step near the identity
GATE_BIAS = 1.5
#: the parameters of step ``t``, in the order of ``iaf_step_forward``'s arguments
STEP_PARAMS = ("W", "V", "b", "Wm", "bm", "Ws", "bs")


# ---------------------------------------------------------------------- MADE masks
def made_masks(Z, H, reverse=False):
    """``(M₁ (Z, H), M₂ (H, Z))`` of a one-hidden-layer MADE: inputs take degrees
    ``d = 1 … Z`` (``Z … 1`` when ``reverse``), hidden unit ``k`` the degree
    ``1 + k mod (Z − 1)`` (0 when ``Z = 1``: it sees the context alone);
    ``M₁[i, k] = [d_k ≥ d_i]``, ``M₂[k, j] = [d_j > d_k]``, so output ``j`` sees input
    ``i`` only where ``d_i < d_j`` (docs/18-normalising-flows.md#made-masks)."""
    d_in = np.arange(1, Z + 1)
    if reverse:
        d_in = d_in[::-1]
    d_hidden = np.zeros(H, dtype=int) if Z == 1 else 1 + np.arange(H) % (Z - 1)
    return ((d_hidden[None, :] >= d_in[:, None]).astype(float),
            (d_in[None, :] > d_hidden[:, None]).astype(float))


# ---------------------------------------------------------------------- the kernels
def iaf_step_forward(z, h, W, V, b, Wm, bm, Ws, bs, masks):
    """One IAF step on ``z (R, Z)`` with context ``h (R, C)``: returns
    ``((z' (R, Z), logdet (R,)), cache)`` (docs/18-normalising-flows.md#inverse-autoregressive-flow)."""
    M1, M2 = masks
    W1, Wm2, Ws2 = W * M1, Wm * M2, Ws * M2
    g = np.tanh(z @ W1 + h @ V + b)                                           # (R, H)
    m = g @ Wm2 + bm                                                          # (R, Z)
    s = g @ Ws2 + bs
    sig = expit(s)
    z_new = sig * z + (1.0 - sig) * m
    logdet = -np.logaddexp(0.0, -s).sum(axis=-1)                              # Σ log σ(s)
    return (z_new, logdet), (z, h, g, m, sig, W1, V, Wm2, Ws2, masks)


def iaf_step_backward(dout, cache):
    """From ``(dz' (R, Z), dlogdet (R,))``: ``(dz, dh, {name: gradient})`` with the weights'
    gradients masked (docs/18-normalising-flows.md#the-backward-of-an-iaf-step)::

        dm = dz' ⊙ (1 − σ),  ds = dz' ⊙ (z − m) ⊙ σ(1 − σ) + dlogdet (1 − σ),
        dz = dz' ⊙ σ + da (W ⊙ M₁)ᵀ,  da = (dm (W_m ⊙ M₂)ᵀ + ds (W_s ⊙ M₂)ᵀ) ⊙ (1 − g²).
    """
    dz_new, dlogdet = dout
    z, h, g, m, sig, W1, V, Wm2, Ws2, (M1, M2) = cache
    dm = dz_new * (1.0 - sig)                                                 # (R, Z)
    ds = (dz_new * (z - m) * sig + dlogdet[:, None]) * (1.0 - sig)
    da = (dm @ Wm2.T + ds @ Ws2.T) * (1.0 - g * g)                            # (R, H)
    dz = dz_new * sig + da @ W1.T
    grads = {"W": (z.T @ da) * M1, "V": h.T @ da, "b": da.sum(axis=0),
             "Wm": (g.T @ dm) * M2, "bm": dm.sum(axis=0),
             "Ws": (g.T @ ds) * M2, "bs": ds.sum(axis=0)}
    return dz, da @ V.T, grads


# ------------------------------------------------------------------ the posterior
class IAFPosterior(FlowPosterior):
    """``F`` IAF steps after the diagonal Gaussian (docs/18-normalising-flows.md).
    ``posterior_params``: ``n_flows`` ``F`` (default 2), ``hidden_size`` ``H`` (default
    ``2Z``), ``context_size`` ``C`` (default ``Z``), each in ``[1, 1000]``."""

    name = "iaf"
    head = "iaf"

    def __init__(self, params=None):
        p = flow_options(self.name, params, {"n_flows": 2, "hidden_size": None,
                                             "context_size": None})
        self.n_flows, self.hidden_size, self.context_size = (
            p["n_flows"], p["hidden_size"], p["context_size"])
        self._P = self._G = None

    def _sizes(self, Z):
        return self.hidden_size or 2 * Z, self.context_size or Z

    def flow_head_size(self, Z):
        return self._sizes(Z)[1]

    def param_shapes(self, Z):
        H, C = self._sizes(Z)
        shapes = {}
        for t in range(self.n_flows):
            shapes.update({f"iaf{t}_W": (Z, H), f"iaf{t}_V": (C, H), f"iaf{t}_b": (H,),
                           f"iaf{t}_Wm": (H, Z), f"iaf{t}_bm": (Z,), f"iaf{t}_Ws": (H, Z),
                           f"iaf{t}_bs": (Z,)})
        return shapes

    def init_params(self, P, rng):
        """Glorot weights (masked entries 0), zero biases but the gate's ``GATE_BIAS``."""
        Z, H = P["iaf0_W"].shape
        for t in range(self.n_flows):
            M1, M2 = made_masks(Z, H, reverse=t % 2 == 1)
            for name, mask in (("W", M1), ("V", None), ("Wm", M2), ("Ws", M2)):
                W = P[f"iaf{t}_{name}"]
                W[...] = glorot_uniform(*W.shape, rng, W.dtype) * (1 if mask is None else mask)
            P[f"iaf{t}_b"][...] = P[f"iaf{t}_bm"][...] = 0
            P[f"iaf{t}_bs"][...] = GATE_BIAS

    def bind(self, P, G):
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        out._P, out._G = P, G
        for name in self.param_shapes(P["iaf0_W"].shape[0]):
            G[name][...] = 0
        return out

    def _flows_forward(self, z, h):
        if self._P is None:
            raise ValueError("posterior='iaf' needs the model's parameters (bind)")
        S, N, Z = z.shape
        P, C = self._P, h.shape[1]
        H = P["iaf0_W"].shape[1]
        zr = z.reshape(S * N, Z)                                              # (R, Z)
        hr = np.broadcast_to(h, (S, N, C)).reshape(S * N, C)                  # (R, C)
        logdet, caches = 0.0, []
        for t in range(self.n_flows):
            masks = tuple(m.astype(z.dtype) for m in made_masks(Z, H, reverse=t % 2 == 1))
            (zr, ld), c = iaf_step_forward(zr, hr, *(P[f"iaf{t}_{k}"] for k in STEP_PARAMS),
                                           masks)
            logdet = logdet + ld
            caches.append(c)
        return zr.reshape(S, N, Z), np.reshape(logdet, (S, N)), (caches, self._G, (S, N, C))

    def _flows_backward(self, dz, dlogdet, cache):
        caches, G, (S, N, C) = cache
        Z = dz.shape[-1]
        dzr, dl = dz.reshape(S * N, Z), dlogdet.reshape(S * N)
        dh = np.zeros((S * N, C), dtype=dz.dtype)
        for t in reversed(range(self.n_flows)):
            dzr, dh_t, grads = iaf_step_backward((dzr, dl), caches[t])
            dh += dh_t
            for k, g in grads.items():
                G[f"iaf{t}_{k}"] += g
        return dzr.reshape(S, N, Z), dh.reshape(S, N, C).sum(axis=0)


POSTERIORS["iaf"] = IAFPosterior                # VAE(posterior="iaf")
