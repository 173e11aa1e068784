"""The input-gradient of an MLP and its backward with respect to the weights
(docs/14-fisher-autoencoder.md#the-input-gradient-of-an-mlp).

A score such as ``∇_z log p(x|z) = J_g(z)ᵀ v`` is a vector–Jacobian product of
an MLP ``y = g(u)`` with a seed ``v`` on its output: the ordinary backward pass,
run on the input instead of the weights.  A loss that contains it needs the
derivative of that backward pass with respect to the weights — a second-order
backward pass, written here by hand.  Four pure kernels:

* :func:`mlp_jet_forward` — ``y = g(u)``, keeping ``f'(a_i)`` and ``f''(a_i)``;
* :func:`input_gradient_forward` — ``r = J_g(u)ᵀ v`` from that cache;
* :func:`input_gradient_backward` — given ``dr``: ``dv``, the extra gradients
  ``ā_i`` on the pre-activations and ``W̄_i`` on the weights;
* :func:`mlp_jet_backward` — the backward of the forward pass, with the ``ā_i``
  added at every layer.

Layers ``i = 0 … L−1``: ``a_i = h_i W_i + b_i``, ``h_{i+1} = f_i(a_i)``,
``h_0 = u``, ``y = h_L``.  Shapes: ``u (R, In)``, ``W_i (In_i, Out_i)``,
``y, v (R, Out)``, ``r (R, In)``; ``R`` rows (``N`` or ``S·N``).
"""
from __future__ import annotations

import numpy as np

from .activations import activation_derivative, activation_value, check_activation


def activation_second_derivative(h, name):
    """``f''(a)`` from the output ``h = f(a)`` alone
    (docs/14-fisher-autoencoder.md#second-derivatives-of-the-activations):
    tanh ``−2h(1 − h²)``; sigmoid ``h(1 − h)(1 − 2h)``; softplus ``s(1 − s)`` with
    ``s = 1 − e^{−h}``; identity, relu and leaky relu ``0`` (almost everywhere)."""
    check_activation(name)
    if name == "tanh":
        return -2.0 * h * (1 - h * h)
    if name == "sigmoid":
        return h * (1 - h) * (1 - 2 * h)
    if name == "softplus":
        s = -np.expm1(-h)                      # σ(a) = 1 − e^{−softplus(a)}
        return s * (1 - s)
    return None                                # piecewise linear: f'' = 0


def mlp_jet_forward(u, weights, activations):
    """``y = g(u)`` through dense layers ``h_{i+1} = f_i(h_i W_i + b_i)``, keeping each
    layer's input ``h_i`` and ``f_i'(a_i)``, ``f_i''(a_i)``
    (docs/14-fisher-autoencoder.md#the-input-gradient-of-an-mlp).

    Parameters
    ----------
    u : (R, In)
    weights : list of ``(W_i (In_i, Out_i), b_i (Out_i,))``.
    activations : one activation name per layer.

    Returns ``(y (R, Out), cache)``.
    """
    if len(weights) != len(activations):
        raise ValueError("one activation per layer is needed")
    inputs, d1, d2 = [], [], []
    h = u
    for (W, b), act in zip(weights, activations):
        inputs.append(h)
        a = h @ W + b                                    # (R, Out_i)
        h = activation_value(a, act)                     # (R, Out_i)
        d1.append(activation_derivative(h, act))         # f'(a_i)   (R, Out_i)
        d2.append(activation_second_derivative(h, act))  # f''(a_i)  (R, Out_i) or None
    return h, (inputs, [W for W, _ in weights], d1, d2)


def mlp_jet_backward(dy, cache, da_extra=None, need_du=True):
    """Backward of :func:`mlp_jet_forward`, with extra gradients ``ā_i`` on the
    pre-activations (from :func:`input_gradient_backward`)
    (docs/14-fisher-autoencoder.md#the-backward-of-the-forward-pass).

    ``da_i = dh_{i+1} ⊙ f_i'(a_i) + ā_i``, ``dW_i = h_iᵀ da_i``, ``db_i = Σ_r da_i``,
    ``dh_i = da_i W_iᵀ``.  ``dy (R, Out)`` may be None (no gradient on ``y``).

    Returns ``(du (R, In) or None, [(dW_i, db_i), ...])`` in layer order.
    """
    inputs, Ws, d1, _ = cache
    L = len(Ws)
    da_extra = da_extra if da_extra is not None else [None] * L
    grads = [None] * L
    dh = dy
    for i in range(L - 1, -1, -1):
        da = dh * d1[i] if dh is not None else None      # (R, Out_i)
        if da_extra[i] is not None:
            da = da_extra[i] if da is None else da + da_extra[i]
        if da is None:
            da = np.zeros((inputs[i].shape[0], Ws[i].shape[1]), dtype=inputs[i].dtype)
        grads[i] = (inputs[i].T @ da, da.sum(axis=0))    # (In_i, Out_i), (Out_i,)
        dh = da @ Ws[i].T if (i > 0 or need_du) else None   # (R, In_i)
    return dh, grads


def input_gradient_forward(v, cache):
    """``r = J_g(u)ᵀ v = ∇_u (v · g(u))`` with ``v`` held fixed
    (docs/14-fisher-autoencoder.md#the-input-gradient-of-an-mlp).

    From the top: ``t_L = v``; ``e_i = t_{i+1} ⊙ f_i'(a_i)``, ``t_i = e_i W_iᵀ``;
    ``r = t_0``.  ``v (R, Out)``; ``cache`` from :func:`mlp_jet_forward`.

    Returns ``(r (R, In), cache)``.
    """
    _, Ws, d1, _ = cache
    L = len(Ws)
    es, ts = [None] * L, [None] * (L + 1)
    t = v
    for i in range(L - 1, -1, -1):
        ts[i + 1] = t                                    # (R, Out_i)
        es[i] = t * d1[i]                                # (R, Out_i)
        t = es[i] @ Ws[i].T                              # (R, In_i)
    return t, (cache, es, ts)


def input_gradient_backward(dr, cache):
    """Backward of :func:`input_gradient_forward` with respect to ``v``, the weights
    and the pre-activations (docs/14-fisher-autoencoder.md#the-second-order-backward-pass).

    From the bottom, with ``t̄_0 = dr``, for ``i = 0 … L−1``:
    ``ē_i = t̄_i W_i``, ``W̄_i = t̄_iᵀ e_i``, ``t̄_{i+1} = ē_i ⊙ f_i'(a_i)``,
    ``ā_i = ē_i ⊙ t_{i+1} ⊙ f_i''(a_i)``; then ``dv = t̄_L``.

    Returns ``(dv (R, Out), da_extra [ā_i (R, Out_i) or None], dW_extra [W̄_i (In_i, Out_i)])``;
    ``ā_i`` goes to :func:`mlp_jet_backward`, ``W̄_i`` adds to its ``dW_i``.
    """
    (_, Ws, d1, d2), es, ts = cache
    L = len(Ws)
    da_extra, dW_extra = [None] * L, [None] * L
    tbar = dr                                            # (R, In)
    for i in range(L):
        ebar = tbar @ Ws[i]                              # (R, Out_i)
        dW_extra[i] = tbar.T @ es[i]                     # (In_i, Out_i)
        if d2[i] is not None:
            da_extra[i] = ebar * ts[i + 1] * d2[i]       # (R, Out_i)
        tbar = ebar * d1[i]                              # (R, Out_i)
    return tbar, da_extra, dW_extra
