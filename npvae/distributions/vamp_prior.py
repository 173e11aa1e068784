"""The VampPrior (Tomczak & Welling 2018): ``p(z) = (1/K) Σ_k q(z | u_k)``, a mixture of
the encoder's diagonal Gaussian posteriors at ``K`` learned pseudo-inputs ``u_k``
(docs/17-vampprior.md).

The kernels here are pure functions of arrays: the mixture's log-density and its
backward (:func:`vamp_log_prior_forward` / :func:`vamp_log_prior_backward`), the
pseudo-inputs' clipping to the data's range (:func:`hardtanh_forward` /
:func:`hardtanh_backward`) and a draw from the mixture with the noise passed in
(:func:`vamp_sample`).  :class:`VampPrior` holds the options (``prior_params``) and
the parameter ``prior_u (K, D)``; the models run the encoder at the pseudo-inputs
(:mod:`npvae.models.vamp`).

Shapes: ``z (S, N, Z)``; component means and log-variances ``mu_u, logvar_u (K, Z)``;
pseudo-inputs ``u (K, D)``; responsibilities ``r (S, N, K)``.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from ._checks import options
from .diagonal_gaussian import LOG_2PI

#: the options of ``prior_params`` and their defaults
DEFAULTS = {"n_pseudo_inputs": 500, "hardtanh": True, "init_mean": 0.05, "init_std": 0.01}
#: the priors ``VAE(prior=...)`` and ``HierarchicalVAE(prior=...)`` take
PRIORS = ("standard", "vamp")


# ----------------------------------------------------------------- the kernels
def vamp_log_prior_forward(z, mu_u, logvar_u):
    """``log p(z) = logsumexp_k a_k − log K`` with ``a_k = log N(z; μ_k, diag e^{λ_k})``
    (docs/17-vampprior.md#the-log-density).

    ``Σ_j (z_j − μ_kj)² e^{−λ_kj}`` is expanded into three matrix products, so nothing of
    size ``S·N·K·Z`` is formed.  Returns ``(log_p (S, N), cache)``.
    """
    S, N, Z = z.shape
    K = mu_u.shape[0]
    zz = z.reshape(S * N, Z)                                                 # (R, Z)
    w = np.exp(-logvar_u)                                                    # (K, Z)
    mw = mu_u * w                                                            # (K, Z)
    quad = (zz * zz) @ w.T - 2 * (zz @ mw.T) + (mu_u * mw).sum(axis=1)       # (R, K)
    a = -0.5 * (Z * LOG_2PI + logvar_u.sum(axis=1) + quad)                   # (R, K)
    lse = logsumexp(a, axis=1)                                               # (R,)
    log_p = (lse - math.log(K)).reshape(S, N).astype(z.dtype, copy=False)
    return log_p, (zz, mu_u, w, mw, a, lse, z.shape)


def vamp_log_prior_backward(dlog_p, cache):
    """``(dz (S, N, Z), dmu_u (K, Z), dlogvar_u (K, Z))`` from the responsibilities
    ``r_k = softmax_k a_k``: with ``g_k = dlog_p · r_k`` (docs/17-vampprior.md#the-backward),

    ``dz = Σ_k g_k (μ_k − z) e^{−λ_k}``, ``dμ_k = Σ g_k (z − μ_k) e^{−λ_k}``,
    ``dλ_k = ½ Σ g_k ((z − μ_k)² e^{−λ_k} − 1)``, the sums over the ``S·N`` samples.
    """
    zz, mu_u, w, mw, a, lse, shape = cache
    r = np.exp(a - lse[:, None])                                             # (R, K): softmax_k a
    g = dlog_p.reshape(-1, 1) * r                                            # (R, K)
    dz = g @ mw - zz * (g @ w)                                               # (R, Z)
    gsum = g.sum(axis=0)[:, None]                                            # (K, 1)
    gz = g.T @ zz                                                            # (K, Z)
    dmu = w * gz - mw * gsum                                                 # (K, Z)
    gzz = g.T @ (zz * zz)                                                    # (K, Z)
    dlogvar = 0.5 * (w * gzz - 2 * mw * gz + mu_u * mw * gsum - gsum)        # (K, Z)
    return dz.reshape(shape), dmu, dlogvar


def hardtanh_forward(v, enabled=True):
    """Pseudo-inputs ``u = min(max(v, 0), 1)`` ``(K, D)`` from the parameter ``v``: the
    pixel range of the images the encoder reads (Tomczak & Welling's ``hardtanh``);
    ``u = v`` when not ``enabled``.  Returns ``(u, cache)``."""
    if not enabled:
        return v, None
    return np.clip(v, 0, 1), (v > 0) & (v < 1)


def hardtanh_backward(du, cache):
    """``dv = du`` where ``0 < v < 1``, else 0 (the clipped entries do not move ``u``)."""
    return du if cache is None else du * cache


def vamp_sample(mu_u, logvar_u, k, eps):
    """Draws of the mixture: component ``k (n,)`` (drawn uniformly by the caller), then
    ``z = μ_k + e^{λ_k/2} ε`` ``(n, Z)`` with ``ε (n, Z)`` standard normal."""
    return mu_u[k] + np.exp(0.5 * logvar_u[k]) * eps


# ----------------------------------------------------------------- the options
def _number(params, key, low, high=math.inf):
    value = params[key]
    ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
          and math.isfinite(value) and low <= value <= high)
    if not ok:
        raise ValueError(f"prior_params[{key!r}] must be a finite number in [{low}, {high}], "
                         f"got {value!r}")
    return float(value)


class VampPrior:
    """The options of ``prior="vamp"`` (``prior_params``): ``n_pseudo_inputs`` ``K``
    (1 to 100,000; 500 in the paper on MNIST), ``hardtanh`` (clip the pseudo-inputs to
    ``[0, 1]``, the range of binary and grey-level images; False for real-valued data),
    ``init_mean`` and ``init_std`` of the normal draw that initialises them."""

    name = "vamp"

    def __init__(self, params=None):
        p = options(params, DEFAULTS, "prior_params", "prior='vamp'")
        K = p["n_pseudo_inputs"]
        if not isinstance(K, (int, np.integer)) or isinstance(K, bool) or not 1 <= K <= 100_000:
            raise ValueError("prior_params['n_pseudo_inputs'] must be an integer in "
                             f"[1, 100000], got {K!r}")
        if not isinstance(p["hardtanh"], (bool, np.bool_)):
            raise ValueError(f"prior_params['hardtanh'] must be True or False, got "
                             f"{p['hardtanh']!r}")
        self.K = int(K)
        self.hardtanh = bool(p["hardtanh"])
        self.init_mean = _number(p, "init_mean", -1e3, 1e3)
        self.init_std = _number(p, "init_std", 0.0, 1e3)

    def param_shapes(self, n_features):
        """``{"prior_u": (K, D)}``: the pseudo-inputs, before the clipping."""
        return {"prior_u": (self.K, n_features)}

    def init_params(self, P, rng, dtype):
        """``prior_u ~ N(init_mean, init_std²)``, drawn after every other parameter."""
        P["prior_u"][...] = rng.normal(self.init_mean, self.init_std,
                                       P["prior_u"].shape).astype(dtype)


def make_prior(name, params):
    """``None`` for the standard normal prior, else the :class:`VampPrior` of ``params``."""
    if not isinstance(name, str) or name not in PRIORS:
        raise ValueError(f"unknown prior {name!r}; choose one of {PRIORS}")
    if name == "standard":
        if params:
            raise ValueError(f"prior='standard' takes no prior_params, got {params!r}")
        return None
    return VampPrior(params)
