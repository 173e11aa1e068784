"""Dense layers and the MLP that composes them (docs/01-dense-layers.md).

``a = x W + b``, ``h = f(a)``; backward ``da = dh ⊙ f'(a)``, ``dW = xᵀ da``,
``db = Σ_n da``, ``dx = da Wᵀ``.  Matrix products go through BLAS
(``np.matmul``) on every backend; the elementwise part is the fused
bias + activation kernel of :mod:`npvae.layers.activations`.
"""
from __future__ import annotations

import numpy as np

from .activations import bias_activation_backward, bias_activation_forward


def dense_forward(x, W, b, activation="identity"):
    """``h = f(x W + b)`` (docs/01-dense-layers.md#forward-pass).

    Parameters
    ----------
    x : (N, In)
    W : (In, Out)
    b : (Out,)
    activation : activation name.

    Returns ``(h (N, Out), cache)``.
    """
    a = x @ W                                         # (N, Out)
    h, act_cache = bias_activation_forward(a, b, activation, out=a)   # in place: a is ours
    return h, (x, W, act_cache)


def dense_backward(dh, cache, need_dx=True, dW_out=None, db_out=None):
    """Returns ``(dx (N, In) or None, dW (In, Out), db (Out,))`` (docs/01-dense-layers.md#backward-of-the-affine-map).

    ``need_dx=False`` skips the product ``da Wᵀ`` for a first layer, whose
    input is data.  ``dW_out``/``db_out`` optionally receive the gradients
    (e.g. views of a model's gradient buffer), so that nothing is copied.
    """
    x, W, act_cache = cache
    da, db = bias_activation_backward(dh, act_cache)  # (N, Out), (Out,)
    if x.shape[0] == 1:
        # one example: dW = xᵀ da is an outer product; OpenBLAS's GEMM with an
        # inner dimension of 1 is ~5x slower than this broadcast multiply
        dW = np.multiply(x[0][:, None], da[0][None, :], out=dW_out)   # (In, Out)
    else:
        dW = np.matmul(x.T, da, out=dW_out)           # (In, Out)
    if db_out is not None and db is not None:
        db_out[...] = db
        db = db_out
    dx = da @ W.T if need_dx else None                # (N, In)
    return dx, dW, db


def mlp_forward(x, weights, activations):
    """A stack of dense layers: ``h_{i+1} = f_i(h_i W_i + b_i)`` (docs/01-dense-layers.md#the-mlp-as-a-composition).

    Parameters
    ----------
    x : (N, In)
    weights : list of ``(W_i, b_i)`` pairs.
    activations : list of activation names, one per layer.

    Returns ``(h (N, Out), caches)``.
    """
    if len(weights) != len(activations):
        raise ValueError("one activation per layer is needed")
    caches = []
    h = x
    for (W, b), act in zip(weights, activations):
        h, cache = dense_forward(h, W, b, act)
        caches.append(cache)
    return h, caches


def mlp_backward(dh, caches, need_dx=True, outs=None):
    """Backward through :func:`mlp_forward`.

    ``outs`` optionally lists ``(dW_out, db_out)`` per layer to write into.
    Returns ``(dx or None, [(dW_i, db_i), ...])`` in layer order.
    """
    grads = [None] * len(caches)
    for i in range(len(caches) - 1, -1, -1):
        want_dx = need_dx or i > 0
        dW_out, db_out = outs[i] if outs is not None else (None, None)
        dh, dW, db = dense_backward(dh, caches[i], need_dx=want_dx, dW_out=dW_out,
                                    db_out=db_out)
        grads[i] = (dW, db)
    return (dh if need_dx else None), grads


def glorot_uniform(n_in, n_out, rng, dtype=np.float64):
    """Glorot & Bengio (2010) uniform: ``U(-r, r)``, ``r = sqrt(6 / (In + Out))`` (docs/01-dense-layers.md#glorot-uniform)."""
    r = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-r, r, size=(n_in, n_out)).astype(dtype)


def he_normal(n_in, n_out, rng, dtype=np.float64):
    """He et al. (2015) normal: ``N(0, 2 / In)`` (docs/01-dense-layers.md#he-normal), for ReLU layers."""
    return (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)


def init_weight(n_in, n_out, activation, rng, dtype=np.float64):
    """He for (leaky) ReLU layers, Glorot uniform for the others (docs/01-dense-layers.md#initialisation)."""
    if activation in ("relu", "leaky_relu"):
        return he_normal(n_in, n_out, rng, dtype)
    return glorot_uniform(n_in, n_out, rng, dtype)
