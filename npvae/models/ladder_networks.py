"""The Ladder VAE's networks: MLPs whose every hidden layer is
``h = f(BN(x W))`` (docs/16-ladder-vae.md#batch-normalisation; Sønderby et al. 2016).

* :func:`bn_mlp_forward` / :func:`bn_mlp_backward`: the stack of hidden layers.
  A hidden layer has no bias: batch normalisation's shift ``β`` is its bias.
* :class:`BNGaussianNetwork`: that MLP with two dense heads, ``μ`` and the variance's
  ``a`` with ``σ² = softplus(a) + σ²_min``, read out as ``λ = log σ²`` — each level's
  bottom-up network and each top-down network ``p(z_l | z_{l+1})``.
* :func:`softplus_logvar_forward`: that variance head.
* :class:`BNDecoder`: that MLP with a dense output layer and the likelihood.

Parameters of hidden layer ``i`` of the network ``p``: ``{p}_W{i} (In, H)``,
``{p}_bn{i}_gamma``, ``{p}_bn{i}_beta`` (trained) and ``{p}_bn{i}_mean``,
``{p}_bn{i}_var`` ``(H,)``, the running statistics, which live in the flat
parameter vector so that checkpoints carry them, with gradient zero (Adam leaves
an entry whose gradient is always zero where it is).

``training=True`` normalises by the batch's statistics and appends ``(p, i, m, v,
rows)`` to ``collect`` (the model folds them into the running averages after the
optimiser's step); ``training=False`` uses the running statistics, so that each
row's output depends on that row alone.

Shapes: ``x (R, In)`` with ``R = N`` or ``S·N`` rows, ``h (R, H)``, ``mu, logvar (R, Z)``.
"""
from __future__ import annotations

import numpy as np

from ..layers.activations import activation_backward, activation_forward
from ..layers.batchnorm import batchnorm_backward, batchnorm_forward
from ..distributions.uniform_noise import softplus_forward
from ..layers.dense import dense_backward, dense_forward
from .networks import Decoder

BN_FIELDS = ("gamma", "beta", "mean", "var")
#: the floor under every variance of the Ladder VAE's Gaussian heads: ``λ ≥ log 1e-4``
VAR_FLOOR = 1e-4


def softplus_logvar_forward(a, floor=VAR_FLOOR):
    """``σ² = softplus(a) + floor`` (Sønderby et al. 2016), returned as ``λ = log σ²``
    with ``∂λ/∂a = sigmoid(a)/σ²`` (in ``(0, 1)``) (docs/16-ladder-vae.md#the-variance-heads).

    ``a`` any shape; returns ``(λ, ∂λ/∂a)`` of its shape and dtype, finite for every finite
    ``a``: ``λ ≥ log floor``, so ``e^{−λ} ≤ 1/floor`` even in float32.
    """
    var, dvar = softplus_forward(a, floor)
    return np.log(var), dvar / var


def softplus_inverse(var, floor=VAR_FLOOR):
    """``a`` with ``softplus(a) + floor = var`` (``var > floor``): ``log(e^{var − floor} − 1)``."""
    t = var - floor
    return t + np.log(-np.expm1(-t))


def bn_mlp_shapes(prefix, width_in, hidden):
    """Shapes of the hidden layers; returns ``(shapes, width of the last hidden output)``."""
    shapes = {}
    for i, h in enumerate(hidden):
        shapes[f"{prefix}_W{i}"] = (width_in, h)
        for field in BN_FIELDS:
            shapes[f"{prefix}_bn{i}_{field}"] = (h,)
        width_in = h
    return shapes, width_in


def bn_mlp_forward(P, prefix, x, n_layers, activation, training, collect=None):
    """``h_{i+1} = f(BN_i(h_i W_i))``; returns ``(h (R, H), caches)``."""
    caches, h = [], x
    for i in range(n_layers):
        n = f"{prefix}_bn{i}_"
        W = P[f"{prefix}_W{i}"]
        a = h @ W                                                      # (R, H)
        stats = None if training else (P[n + "mean"], P[n + "var"])
        y, bn_c = batchnorm_forward(a, P[n + "gamma"], P[n + "beta"], stats)
        if training and collect is not None:
            collect.append((n, *bn_c[-1], a.shape[0]))
        out, act_c = activation_forward(y, activation)
        caches.append((h, W, bn_c, act_c))
        h = out
    return h, caches


def bn_mlp_backward(G, prefix, dh, caches, need_dx):
    """Backward of :func:`bn_mlp_forward`, writing into ``G`` (zeros for the running
    statistics); returns ``dx (R, In)`` when ``need_dx``, else None."""
    for i in range(len(caches) - 1, -1, -1):
        x, W, bn_c, act_c = caches[i]
        n = f"{prefix}_bn{i}_"
        dy = activation_backward(dh, act_c)                            # (R, H)
        da, G[n + "gamma"][...], G[n + "beta"][...] = batchnorm_backward(dy, bn_c)
        G[n + "mean"][...] = 0
        G[n + "var"][...] = 0
        np.matmul(x.T, da, out=G[f"{prefix}_W{i}"])                    # (In, H)
        dh = da @ W.T if (i > 0 or need_dx) else None                  # (R, In)
    return dh


class BNGaussianNetwork:
    """``h = MLP_BN(x)``, ``μ = h W_μ + b_μ``, ``λ = log(softplus(h W_σ + b_σ) + σ²_min)``
    (docs/16-ladder-vae.md#the-variance-heads); parameters ``{p}_mu_W/_b`` and
    ``{p}_var_W/_b``."""

    def __init__(self, prefix, hidden, activation):
        self.prefix, self.hidden, self.activation = prefix, list(hidden), activation

    def param_shapes(self, width_in, Z):
        shapes, width = bn_mlp_shapes(self.prefix, width_in, self.hidden)
        for head in ("mu", "var"):
            shapes[f"{self.prefix}_{head}_W"] = (width, Z)
            shapes[f"{self.prefix}_{head}_b"] = (Z,)
        return shapes

    def forward(self, P, x, training, collect=None):
        """Returns ``(h (R, H), mu (R, Z), logvar (R, Z), cache)``."""
        p = self.prefix
        h, mlp_c = bn_mlp_forward(P, p, x, len(self.hidden), self.activation, training, collect)
        mu, mu_c = dense_forward(h, P[f"{p}_mu_W"], P[f"{p}_mu_b"])
        a, lv_c = dense_forward(h, P[f"{p}_var_W"], P[f"{p}_var_b"])    # (R, Z)
        logvar, dlogvar_da = softplus_logvar_forward(a)
        return h, mu, logvar, (mlp_c, mu_c, (lv_c, dlogvar_da))

    def backward(self, G, dmu, dlogvar, cache, dh=None, need_dx=False):
        """Writes into ``G``; ``dh``: an extra gradient on ``h`` (the level above reads
        it).  Returns ``dx (R, In)`` when ``need_dx``, else None."""
        mlp_c, mu_c, (lv_c, dlogvar_da) = cache
        p = self.prefix
        dh_mu, _, _ = dense_backward(dmu, mu_c, True, G[f"{p}_mu_W"], G[f"{p}_mu_b"])
        dh_lv, _, _ = dense_backward(dlogvar * dlogvar_da, lv_c, True, G[f"{p}_var_W"],
                                     G[f"{p}_var_b"])
        d = dh_mu + dh_lv                                              # (R, H)
        if dh is not None:
            d += dh
        if not self.hidden:
            return d if need_dx else None
        return bn_mlp_backward(G, p, d, mlp_c, need_dx)


class BNDecoder(Decoder):
    """``p(x|z_1)``: ``MLP_BN(z_1)``, a dense output layer, the likelihood
    (docs/16-ladder-vae.md#the-model).  :class:`~npvae.models.networks.Decoder` with
    batch-normalised hidden layers: the same names (``dec_…``, ``dec_out_W``,
    ``dec_out_b``), so that the output bias starts from the data the same way."""

    hidden_shapes = staticmethod(bn_mlp_shapes)

    def _out(self, P, u, training, collect=None):
        h, mlp_c = bn_mlp_forward(P, "dec", u, len(self.hidden), self.activation, training,
                                  collect)
        out, out_c = dense_forward(h, P["dec_out_W"], P["dec_out_b"])
        return out, (mlp_c, out_c)

    def output(self, P, u, n_features):
        """The likelihood's parameters for ``u (M, Z_1)`` in evaluation mode."""
        out, _ = self._out(P, u, False)
        return out.reshape((u.shape[0],) + self.likelihood.output_shape(n_features))

    def forward(self, P, z, x, training, collect=None):
        """``log p(x|z_s)`` ``(S, N)`` for ``z (S, N, Z_1)``."""
        S, N, Z = z.shape
        out, c = self._out(P, z.reshape(S * N, Z), training, collect)
        out = out.reshape((S, N) + self.likelihood.output_shape(x.shape[1]))
        log_px, lik_c = self.likelihood.log_prob_forward(out, x, P)
        return log_px, (c, lik_c, z.shape)

    def backward(self, G, dlog_px, cache):
        """Writes into ``G``; returns ``dz (S, N, Z_1)``."""
        (mlp_c, out_c), lik_c, (S, N, Z) = cache
        dout, dlik = self.likelihood.log_prob_backward(dlog_px, lik_c)
        for name, g in dlik.items():
            G[name][...] = g
        dh, _, _ = dense_backward(dout.reshape(S * N, -1), out_c, True, G["dec_out_W"],
                                  G["dec_out_b"])
        if self.hidden:
            dh = bn_mlp_backward(G, "dec", dh, mlp_c, True)
        return dh.reshape(S, N, Z)
