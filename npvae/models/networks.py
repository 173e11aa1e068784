"""The networks every model is built from (docs/01-dense-layers.md, docs/05-elbo.md).

* :class:`GaussianNetwork`: an MLP whose last hidden output ``h`` feeds two
  dense heads, the mean ``μ`` and the posterior's second head ``scale_params``
  (``λ = log σ²`` or the packed Cholesky factor ``L``: see
  :class:`~npvae.distributions.posteriors.Posterior`).  It is the VAE's encoder, each level's encoder of the
  hierarchical VAE and each of its prior networks ``p(z_l | z_{l+1})``.
* :class:`Decoder`: an MLP from ``z`` (joined with a condition ``c`` for the
  conditional VAE) to the likelihood's parameters, and the likelihood's
  ``log p(x|z)``.

Networks hold only their names and sizes; parameters live in the model's
``params_`` (views into one flat vector) and gradients are written into the
matching views ``G`` of the model's gradient vector, so nothing is copied.

Shapes: ``x (R, In)`` with ``R = N`` or ``S·N`` rows, ``h (R, H)``,
``mu (R, Z)``, ``scale_params (R, Z)`` or ``(R, Z(Z+1)/2)``; ``z (S, N, Z)``.
"""
from __future__ import annotations

import numpy as np

from ..layers.dense import dense_backward, dense_forward, mlp_backward, mlp_forward


def mlp_shapes(prefix, width_in, hidden):
    """Parameter shapes ``{prefix}_W{i} (In, H_i)``, ``{prefix}_b{i} (H_i,)`` of the hidden
    layers; returns ``(shapes, width of the last hidden output)``."""
    shapes = {}
    for i, h in enumerate(hidden):
        shapes[f"{prefix}_W{i}"], shapes[f"{prefix}_b{i}"] = (width_in, h), (h,)
        width_in = h
    return shapes, width_in


def grad_views(G, prefix, n_hidden, with_out):
    """``[(dW_i, db_i), ...]``: views of the gradient vector for an MLP's layers,
    for the matrix products to write into."""
    views = [(G[f"{prefix}_W{i}"], G[f"{prefix}_b{i}"]) for i in range(n_hidden)]
    if with_out:
        views.append((G[f"{prefix}_out_W"], G[f"{prefix}_out_b"]))
    return views


class GaussianNetwork:
    """``h = MLP(x)``, ``μ = h W_μ + b_μ``, ``scale_params = h W_head + b_head``
    (docs/01-dense-layers.md, docs/02-reparameterisation.md).

    Parameters are named ``{prefix}_W{i}``, ``{prefix}_b{i}`` (hidden layers),
    ``{prefix}_mu_W/_b`` and ``{prefix}_{posterior.head}_W/_b``.
    """

    def __init__(self, prefix, hidden, activation, posterior):
        self.prefix = prefix
        self.hidden = list(hidden)
        self.activation = activation
        self.posterior = posterior
        self.head = posterior.head

    def param_shapes(self, width_in, Z):
        shapes, width = mlp_shapes(self.prefix, width_in, self.hidden)
        p, head_size = self.prefix, self.posterior.head_size(Z)
        if self.posterior.has_mean:
            shapes[f"{p}_mu_W"], shapes[f"{p}_mu_b"] = (width, Z), (Z,)
        shapes[f"{p}_{self.head}_W"], shapes[f"{p}_{self.head}_b"] = (width, head_size), (head_size,)
        return shapes

    def forward(self, P, x):
        """Returns ``(h (R, H), mu (R, Z), scale_params (R, ·), cache)``; ``h = x`` without hidden
        layers; ``mu`` is None for a posterior without a mean head (the Concrete's)."""
        p = self.prefix
        weights = [(P[f"{p}_W{i}"], P[f"{p}_b{i}"]) for i in range(len(self.hidden))]
        h, mlp_c = mlp_forward(x, weights, [self.activation] * len(self.hidden))   # (R, H)
        mu, mu_c = (dense_forward(h, P[f"{p}_mu_W"], P[f"{p}_mu_b"])                # (R, Z)
                    if self.posterior.has_mean else (None, None))
        scale_params, scale_c = dense_forward(h, P[f"{p}_{self.head}_W"], P[f"{p}_{self.head}_b"])
        return h, mu, scale_params, (mlp_c, mu_c, scale_c)

    def backward(self, G, dmu, dscale_params, cache, dh=None, need_dx=False):
        """Backward of :meth:`forward`, writing the weight gradients into ``G``.

        ``dh (R, H)`` is an extra gradient on the output ``h`` (the next level of a
        bottom-up path reads it).  Returns ``dx (R, In)`` when ``need_dx``, else None.
        """
        mlp_c, mu_c, scale_c = cache
        p, n_hidden = self.prefix, len(self.hidden)
        need_dh = n_hidden > 0 or need_dx
        dh_scale, _, _ = dense_backward(dscale_params, scale_c, need_dh, G[f"{p}_{self.head}_W"],
                                       G[f"{p}_{self.head}_b"])
        if mu_c is not None:
            dh_mu, _, _ = dense_backward(dmu, mu_c, need_dh, G[f"{p}_mu_W"], G[f"{p}_mu_b"])
            if need_dh:
                dh_scale += dh_mu                                                  # (R, H)
        if not need_dh:
            return None
        dh_mu = dh_scale
        if dh is not None:
            dh_mu += dh
        if n_hidden == 0:
            return dh_mu
        dx, _ = mlp_backward(dh_mu, mlp_c, need_dx=need_dx,
                             outs=grad_views(G, p, n_hidden, with_out=False))
        return dx


class Decoder:
    """``p(x|z)``: an MLP from ``z`` (or ``z ⊕ c``) to the likelihood's parameters,
    then the likelihood (docs/04-likelihoods.md).

    Parameters ``dec_W{i}``, ``dec_b{i}``, ``dec_out_W``, ``dec_out_b`` and the
    likelihood's own (e.g. ``obs_logvar``).
    """

    prefix = "dec"
    hidden_shapes = staticmethod(mlp_shapes)     # the hidden layers' parameters

    def __init__(self, hidden, activation, likelihood):
        self.hidden = list(hidden)
        self.activation = activation
        self.likelihood = likelihood

    def param_shapes(self, width_in, n_features):
        shapes, width = self.hidden_shapes(self.prefix, width_in, self.hidden)
        n_out = int(np.prod(self.likelihood.output_shape(n_features)))
        shapes["dec_out_W"], shapes["dec_out_b"] = (width, n_out), (n_out,)
        shapes.update(self.likelihood.param_shapes(n_features))
        return shapes

    def _weights(self, P):
        hidden = [(P[f"dec_W{i}"], P[f"dec_b{i}"]) for i in range(len(self.hidden))]
        return hidden + [(P["dec_out_W"], P["dec_out_b"])]

    def _activations(self):
        return [self.activation] * len(self.hidden) + ["identity"]

    def output(self, P, u, n_features):
        """The likelihood's parameters for decoder inputs ``u (M, Z)`` (or ``(M, Z + C)``):
        ``(M, *output_shape)``."""
        out, _ = mlp_forward(u, self._weights(P), self._activations())
        return out.reshape((u.shape[0],) + self.likelihood.output_shape(n_features))

    def forward(self, P, z, x, condition=None):
        """``log p(x|z_s)`` ``(S, N)`` for ``z (S, N, Z)``, data ``x (N, D)`` and an optional
        condition ``c (N, C)`` joined to every sample's ``z``."""
        S, N, Z = z.shape
        u = z.reshape(S * N, Z)                                                    # (S·N, Z)
        if condition is not None:
            c = np.broadcast_to(condition, (S,) + condition.shape).reshape(S * N, -1)
            u = np.concatenate([u, c.astype(u.dtype, copy=False)], axis=1)         # (S·N, Z + C)
        out, dec_c = mlp_forward(u, self._weights(P), self._activations())
        out = out.reshape((S, N) + self.likelihood.output_shape(x.shape[1]))
        log_px, lik_c = self.likelihood.log_prob_forward(out, x, P)                # (S, N)
        return log_px, (dec_c, lik_c, z.shape)

    def backward(self, G, dlog_px, cache):
        """Backward of :meth:`forward`; writes into ``G`` and returns ``dz (S, N, Z)``
        (the condition's columns are data: their gradient is dropped)."""
        dec_c, lik_c, (S, N, Z) = cache
        dout, dlik = self.likelihood.log_prob_backward(dlog_px, lik_c)
        for name, g in dlik.items():
            G[name][...] = g
        du, _ = mlp_backward(dout.reshape(S * N, -1), dec_c,
                             outs=grad_views(G, self.prefix, len(self.hidden), with_out=True))
        return du[:, :Z].reshape(S, N, Z)
