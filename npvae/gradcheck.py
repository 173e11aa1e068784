"""Finite-difference gradient checks, for the tests and for anyone adding a kernel.

Relative error is measured as ``‖a − n‖₂ / (‖a‖₂ + ‖n‖₂)`` between the
analytic gradient ``a`` and the centred difference ``n``
(``(f(x + h) − f(x − h)) / 2h``), which is meaningful even where some entries
are zero.  Run checks in float64.
"""
from __future__ import annotations

import numpy as np


def relative_error(a, n):
    """``‖a − n‖ / (‖a‖ + ‖n‖)``; 0 when both are zero."""
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(n)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - n) / denom)


def numerical_gradient(f, x, h=1e-6):
    """Centred differences of the scalar function ``f()`` with respect to the
    array ``x``, perturbed in place entry by entry (``x`` is restored)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat = x.reshape(-1)
    g = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f()
        flat[i] = old - h
        fm = f()
        flat[i] = old
        g[i] = (fp - fm) / (2 * h)
    return grad


def directional_derivative(f, x, v, h=1e-6):
    """``(f(x + h v) − f(x − h v)) / 2h`` for the scalar ``f()`` of the array ``x`` (restored)."""
    old = x.copy()
    x += h * v
    fp = f()
    x[...] = old - h * v
    fm = f()
    x[...] = old
    return (fp - fm) / (2 * h)


def kink_margin(fn):
    """Run ``fn()`` and return the smallest ``|a|`` over the pre-activations of
    ReLU-type units (relu, leaky relu) in it: their derivative jumps at ``a = 0``,
    so a finite difference whose step crosses 0 measures nothing.  ``inf`` when
    there are none."""
    from .backend import get_backend
    from .layers.activations import bias_activation_forward as kernel

    get_backend()                        # binds kernel.impl, which the spy then stands in for
    margin = [np.inf]
    original = kernel.impl

    def spy(a, b, name, out=None):
        if name in ("relu", "leaky_relu") and a.size:
            pre = a if b is None else a + b
            margin[0] = min(margin[0], float(np.min(np.abs(pre))))
        return original(a, b, name, out)

    kernel.impl = spy                    # every dense layer and the VAE's written-out step
    try:
        fn()
    finally:
        kernel.impl = original
    return margin[0]


def check_kernel(forward, backward, inputs, wrt, rng):
    """Relative errors of a kernel pair against centred differences.

    ``forward(*inputs) -> (out, cache)``; ``backward(dout, cache)`` returns the
    gradients (a tuple, or one array).  The scalar checked is ``Σ out ⊙ dout``
    for a random upstream gradient ``dout``; ``wrt`` maps an input's index to
    the index of its gradient in backward's output.  Returns ``{input index:
    relative error}``.
    """
    out, cache = forward(*inputs)
    dout = rng.standard_normal(np.shape(out))
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    errors = {}
    for i, j in wrt.items():
        num = numerical_gradient(lambda: float(np.sum(forward(*inputs)[0] * dout)), inputs[i])
        errors[i] = relative_error(grads[j], num)
    return errors


def kernel_index():
    """Every kernel of the library in one namespace (``dense_forward``,
    ``bernoulli_backward``, …), for tests, error reports and profilers that
    iterate over all of them.  Each kernel still has its one home; this only
    collects them."""
    from types import SimpleNamespace

    from .distributions import diagonal_gaussian, full_gaussian
    from .distributions.likelihoods import bernoulli, categorical
    from .distributions.likelihoods import gaussian as gaussian_likelihood
    from .layers import activations, dense, input_gradient

    found = {}
    for module in (activations, dense, input_gradient, diagonal_gaussian, full_gaussian, bernoulli,
                   categorical,
                   gaussian_likelihood):
        found.update({k: v for k, v in vars(module).items()
                      if k.endswith(("_forward", "_backward")) or k in (
                          "init_weight", "glorot_uniform", "he_normal", "ACTIVATIONS",
                          "LOG_2PI", "n_cholesky_entries", "activation_value",
                          "activation_derivative")})
    return SimpleNamespace(**found)
