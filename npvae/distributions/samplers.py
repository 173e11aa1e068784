"""Explicitly reparameterised samplers beyond the Gaussian: Gumbel, Kumaraswamy
and the Concrete (Gumbel-softmax) relaxation of a categorical
(docs/09-reparameterisable-distributions.md).

Every distribution here is sampled by an explicit, differentiable map of noise
that the caller draws and passes in (an inverse CDF, or the softmax of
Gumbel-perturbed logits; as for the Gaussian, docs/02-reparameterisation.md),
so a Monte Carlo objective is a deterministic function of the parameters for
fixed noise, and its pathwise gradient ``E_u[∂f/∂x · ∂x/∂θ]``
(docs/09-reparameterisable-distributions.md) is a backward pass through that map:

* ``sample(*params, u) -> x``;
* ``sample_forward(*params, u) -> (x, cache)`` and
  ``sample_backward(dx, cache) -> {name: dθ}``, the vector-Jacobian product
  ``dθ = Σ dx ⊙ ∂x/∂θ``, summed over the axes along which ``θ`` was broadcast,
  so that each gradient has its parameter's shape;
* ``log_prob(*params, x)`` in closed form.

Noise is always uniform ``u ∈ (0, 1)`` with the sample's shape (``(..., K)`` for
the Concrete, one uniform per category); the parameters must broadcast to it.
The classes :class:`Gumbel`, :class:`Kumaraswamy` and :class:`Concrete` are
stateless namespaces over the module-level functions: parameters are always
passed in, e.g. ``x, cache = Kumaraswamy.sample_forward(a, b, u)``.  Every
pathwise derivative here is exact, in closed form.  The Gamma and the Dirichlet,
whose shape derivative needs implicit differentiation, are in :mod:`.implicit`.

Invalid input (non-positive parameters, noise outside ``(0, 1)``, shapes that do
not broadcast, points outside the support) raises ``ValueError``.
"""
from __future__ import annotations

import numpy as np
from scipy.special import gammaln, log_softmax, logsumexp, softmax

from ._checks import (as_float, check_dx, fits, open_unit, positive, simplex, uniform,
                      vector_noise, vector_param)
from .diagonal_gaussian import sum_to_shape

__all__ = ["gumbel_sample_forward", "gumbel_sample_backward", "gumbel_sample", "gumbel_log_prob",
           "kumaraswamy_sample_forward", "kumaraswamy_sample_backward", "kumaraswamy_sample",
           "kumaraswamy_log_prob", "kumaraswamy_cdf",
           "concrete_sample_forward", "concrete_sample_backward", "concrete_sample",
           "concrete_log_prob", "concrete_hard",
           "Gumbel", "Kumaraswamy", "Concrete", "GumbelSoftmax"]


# ------------------------------------------------------------------- Gumbel
def gumbel_sample_forward(loc, scale, u):
    """Gumbel by the inverse CDF: ``x = μ − β log(−log u)``
    (docs/09-reparameterisable-distributions.md; Gumbel 1954).

    ``loc μ``, ``scale β > 0`` broadcast to ``u``'s shape; returns
    ``(x (u.shape), cache)``.
    """
    loc = as_float(loc, "loc")
    scale = positive(scale, "scale")
    u = uniform(u)
    fits(loc, "loc", u.shape)
    fits(scale, "scale", u.shape)
    g = -np.log(-np.log(u))               # standard Gumbel, (u.shape)
    x = loc + scale * g                   # (u.shape)
    return x, (g, loc.shape, scale.shape)


def gumbel_sample_backward(dx, cache):
    """``∂x/∂μ = 1``, ``∂x/∂β = −log(−log u) = g``
    (docs/09-reparameterisable-distributions.md).

    Returns ``{"loc": dμ, "scale": dβ}`` in the parameters' shapes.
    """
    g, loc_shape, scale_shape = cache
    dx = check_dx(dx, g)
    return {"loc": sum_to_shape(dx, loc_shape), "scale": sum_to_shape(dx * g, scale_shape)}


def gumbel_sample(loc, scale, u):
    """``x = μ − β log(−log u)``; see :func:`gumbel_sample_forward`."""
    return gumbel_sample_forward(loc, scale, u)[0]


def gumbel_log_prob(loc, scale, x):
    """``log p(x) = −log β − z − e^{−z}``, ``z = (x − μ)/β`` (Gumbel 1954)."""
    loc = as_float(loc, "loc")
    scale = positive(scale, "scale")
    x = as_float(x, "x")
    z = (x - loc) / scale
    return -np.log(scale) - z - np.exp(-z)


# -------------------------------------------------------------- Kumaraswamy
def kumaraswamy_sample_forward(a, b, u):
    """Kumaraswamy(a, b) on (0, 1) by the inverse CDF ``x = (1 − u^{1/b})^{1/a}``
    (docs/09-reparameterisable-distributions.md;
    Kumaraswamy 1980; Nalisnick & Smyth 2017, §3).

    Computed in log space as ``w = 1 − u^{1/b} = −expm1(log u / b)`` and
    ``x = exp(log w / a)``, which keeps ``w`` accurate when ``u^{1/b}`` is near 1.
    ``a, b > 0`` broadcast to ``u``'s shape; returns ``(x (u.shape), cache)``.
    """
    a = positive(a, "a")
    b = positive(b, "b")
    u = uniform(u)
    fits(a, "a", u.shape)
    fits(b, "b", u.shape)
    t = np.log(u) / b                     # log u^{1/b} < 0, (u.shape)
    w = -np.expm1(t)                      # 1 − u^{1/b}
    log_w = np.log(w)
    x = np.exp(log_w / a)                 # (1 − u^{1/b})^{1/a}
    return x, (a, b, t, w, log_w, x)


def kumaraswamy_sample_backward(dx, cache):
    """Exact pathwise derivatives of ``x = w^{1/a}``, ``w = 1 − u^{1/b}``:

    ``∂x/∂a = −x log w / a²``,
    ``∂x/∂b = x u^{1/b} log u / (a w b²) = x (u^{1/b}/w) t / (a b)`` with
    ``t = log u / b`` (docs/09-reparameterisable-distributions.md).
    Returns ``{"a": da, "b": db}``.
    """
    a, b, t, w, log_w, x = cache
    dx = check_dx(dx, x)
    dx_da = -x * log_w / (a * a)
    dx_db = x * (np.exp(t) / w) * t / (a * b)
    return {"a": sum_to_shape(dx * dx_da, a.shape), "b": sum_to_shape(dx * dx_db, b.shape)}


def kumaraswamy_sample(a, b, u):
    """``x = (1 − u^{1/b})^{1/a}``; see :func:`kumaraswamy_sample_forward`."""
    return kumaraswamy_sample_forward(a, b, u)[0]


def kumaraswamy_log_prob(a, b, x):
    """``log p(x) = log a + log b + (a − 1) log x + (b − 1) log(1 − x^a)``
    (Kumaraswamy 1980), with ``log(1 − x^a) = log(−expm1(a log x))``.
    ``x`` must lie in (0, 1)."""
    a = positive(a, "a")
    b = positive(b, "b")
    x = open_unit(x)
    log_x = np.log(x)
    return np.log(a) + np.log(b) + (a - 1) * log_x + (b - 1) * np.log(-np.expm1(a * log_x))


def kumaraswamy_cdf(a, b, x):
    """``F(x) = 1 − (1 − x^a)^b`` (Kumaraswamy 1980), computed as
    ``−expm1(b log(−expm1(a log x)))``."""
    a = positive(a, "a")
    b = positive(b, "b")
    x = open_unit(x)
    return -np.expm1(b * np.log(-np.expm1(a * np.log(x))))


# ----------------------------------------------------- Gumbel-softmax/Concrete
def concrete_sample_forward(logits, temperature, u):
    """Gumbel-softmax / Concrete relaxation of a categorical
    (docs/09-reparameterisable-distributions.md; Maddison, Mnih & Teh 2017;
    Jang, Gu & Poole 2017):
    ``g = −log(−log u)``, ``y = softmax((logits + g) / τ)``.

    ``u (..., K)``; ``logits (..., K)`` broadcast to it; ``temperature τ > 0``
    a scalar or an array broadcast to the batch shape ``u.shape[:-1]``.
    Returns ``(y (..., K), cache)``.  For small ``τ`` entries of ``y`` can
    underflow to 0 (where :func:`concrete_log_prob` is undefined).
    """
    logits = as_float(logits, "logits")
    temperature = positive(temperature, "temperature")
    u = vector_noise(u)
    vector_param(logits, "logits", u.shape)
    fits(temperature, "temperature", u.shape[:-1])
    g = -np.log(-np.log(u))                             # (..., K)
    tau = temperature[..., None]                        # (..., 1)
    s = (logits + g) / tau                              # (..., K)
    y = softmax(s, axis=-1)                             # (..., K)
    return y, (y, s, tau, logits.shape, temperature.shape)


def concrete_sample_backward(dy, cache):
    """VJP of ``y = softmax(s)``, ``s = (logits + g)/τ`` (exact):

    ``ds = y ⊙ (dy − Σ_k dy_k y_k)``; ``∂s/∂logits = 1/τ`` so
    ``dlogits = ds / τ``; ``∂s_k/∂τ = −s_k / τ`` so ``dτ = −Σ_k ds_k s_k / τ``.
    Returns ``{"logits": dlogits, "temperature": dτ}`` in the parameters' shapes.
    """
    y, s, tau, logits_shape, temperature_shape = cache
    dy = check_dx(dy, y)
    ds = y * (dy - (dy * y).sum(axis=-1, keepdims=True))        # (..., K)
    dlogits = ds / tau
    dtau = -(ds * s).sum(axis=-1) / tau[..., 0]                  # (...)
    return {"logits": sum_to_shape(dlogits, logits_shape),
            "temperature": sum_to_shape(dtau, temperature_shape)}


def concrete_sample(logits, temperature, u):
    """``y = softmax((logits − log(−log u)) / τ)``; see :func:`concrete_sample_forward`."""
    return concrete_sample_forward(logits, temperature, u)[0]


def concrete_log_prob(logits, temperature, y):
    """The Concrete density (Maddison, Mnih & Teh 2017, eq. 2), on the open
    simplex (over the first ``K − 1`` coordinates), with ``log π = log_softmax(logits)``:

    ``log p(y) = log Γ(K) + (K − 1) log τ + Σ_k (log π_k − (τ + 1) log y_k)
    − K logsumexp_k(log π_k − τ log y_k)``.

    ``logits, y (..., K)`` broadcast; ``temperature`` broadcasts to the batch shape.
    """
    logits = as_float(logits, "logits")
    temperature = positive(temperature, "temperature")
    y = simplex(y, "y")
    K = y.shape[-1]
    if logits.ndim < 1 or logits.shape[-1] != K:
        raise ValueError(f"logits must have shape (..., {K}), got {logits.shape}")
    tau = temperature[..., None]
    log_pi = log_softmax(logits, axis=-1)
    log_y = np.log(y)
    return (gammaln(K) + (K - 1) * np.log(temperature)
            + (log_pi - (tau + 1) * log_y).sum(axis=-1)
            - K * logsumexp(log_pi - tau * log_y, axis=-1))


def concrete_hard(y):
    """One-hot ``argmax_k y_k`` along the last axis, for the straight-through
    Gumbel-softmax estimator (Jang, Gu & Poole 2017, §2.2; Bengio, Léonard &
    Courville 2013): use ``hard(y)`` in the forward pass and pass the upstream
    gradient to ``y`` unchanged (``dy = dhard``), then through
    :func:`concrete_sample_backward`.  The estimator is **biased**: ``hard`` is
    piecewise constant, its true derivative is 0, and the identity used in its
    place is not the gradient of any expectation the samples estimate.
    """
    y = as_float(y, "y")
    if y.ndim < 1 or y.shape[-1] < 1:
        raise ValueError(f"y must have shape (..., K), got {y.shape}")
    return (np.arange(y.shape[-1]) == y.argmax(axis=-1)[..., None]).astype(y.dtype)


# ------------------------------------------------------------------ classes
class Gumbel:
    """Gumbel(loc μ, scale β): ``sample(loc, scale, u)``, ``log_prob(loc, scale, x)``,
    ``sample_forward(loc, scale, u)``, ``sample_backward(dx, cache)``
    (docs/09-reparameterisable-distributions.md)."""

    params = ("loc", "scale")
    sample = staticmethod(gumbel_sample)
    sample_forward = staticmethod(gumbel_sample_forward)
    sample_backward = staticmethod(gumbel_sample_backward)
    log_prob = staticmethod(gumbel_log_prob)


class Kumaraswamy:
    """Kumaraswamy(a, b) on (0, 1): ``sample(a, b, u)``, ``log_prob(a, b, x)``,
    ``cdf(a, b, x)``, ``sample_forward``, ``sample_backward``
    (docs/09-reparameterisable-distributions.md)."""

    params = ("a", "b")
    sample = staticmethod(kumaraswamy_sample)
    sample_forward = staticmethod(kumaraswamy_sample_forward)
    sample_backward = staticmethod(kumaraswamy_sample_backward)
    log_prob = staticmethod(kumaraswamy_log_prob)
    cdf = staticmethod(kumaraswamy_cdf)


class Concrete:
    """Gumbel-softmax / Concrete(logits, temperature τ): ``sample(logits, τ, u)``,
    ``log_prob(logits, τ, y)``, ``sample_forward``, ``sample_backward``, and
    ``hard(y)`` for the (biased) straight-through estimator
    (docs/09-reparameterisable-distributions.md)."""

    params = ("logits", "temperature")
    sample = staticmethod(concrete_sample)
    sample_forward = staticmethod(concrete_sample_forward)
    sample_backward = staticmethod(concrete_sample_backward)
    log_prob = staticmethod(concrete_log_prob)
    hard = staticmethod(concrete_hard)


GumbelSoftmax = Concrete
