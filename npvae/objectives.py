"""The objectives, assembled from the model's log-densities (docs/05-elbo.md,
docs/06-importance-weighting.md).

Everything here works on arrays the models computed — log-likelihoods, KL
terms, importance log-weights — and returns the loss with the *seeds* of the
backward pass: the gradient of the loss with respect to each of those arrays.
The models then run their networks backward from the seeds.

Shapes: ``N`` examples, ``S`` Monte Carlo samples, ``K`` importance samples.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
from scipy.special import logsumexp, softmax

from .distributions.diagonal_gaussian import log_normal_backward, log_normal_forward


# ----------------------------------------------------------------- the ELBO
def elbo_loss(log_px, kls, beta, dtype):
    """The negative β-ELBO, averaged over examples, and its seeds (docs/05-elbo.md).

    ``loss = −(1/N) Σ_n [(1/S) Σ_s log p(x_n|z_ns) − β Σ_l KL_l,n]``

    Parameters
    ----------
    log_px : (S, N) ``log p(x|z_s)``.
    kls : list of (N,) KL terms (one per stochastic level).
    beta : weight of the KL terms.

    Returns ``(loss, terms, dlog_px (S, N), dkl (N,))`` with the seeds
    ``∂loss/∂log p(x_n|z_ns) = −1/(SN)`` and ``∂loss/∂KL_l,n = β/N``; ``terms``
    holds ``reconstruction``, ``kl`` (and ``kl_1 … kl_L`` for several levels) and
    ``elbo = reconstruction − kl`` per example (β not applied).
    """
    S, N = log_px.shape
    reconstruction = log_px.mean(axis=0)                                     # (N,)
    kl = kls[0] if len(kls) == 1 else np.sum(kls, axis=0)                    # (N,)
    loss = float(-np.mean(reconstruction - beta * kl))
    terms = {"reconstruction": reconstruction}
    if len(kls) > 1:
        terms.update({f"kl_{l + 1}": k for l, k in enumerate(kls)})
    terms.update({"kl": kl, "elbo": reconstruction - kl})
    dlog_px = np.full((S, N), -1.0 / (S * N), dtype=dtype)
    dkl = np.full(N, beta / N, dtype=dtype)
    return loss, terms, dlog_px, dkl


def monte_carlo_kl_forward(posterior, mu, scale_params, z, eps, log_prior=None):
    """``KL(q ‖ p) ≈ (1/S) Σ_s [log q(z_s|x) − log p(z_s)]`` ``(N,)`` for a posterior
    without a closed form (a flow: docs/18-normalising-flows.md) or a prior without one
    (docs/05-elbo.md, docs/17-vampprior.md#the-kl-by-monte-carlo).  ``log_prior(z) ->
    (log_p (S, N), cache)``; ``N(0, I)`` by default.  Returns ``(kl, cache)``."""
    log_q, q_c = posterior.log_q_mu_forward(mu, scale_params, eps)           # (S, N)
    log_p, p_c = (log_prior or _log_standard_normal)(z)                      # (S, N)
    return (log_q - log_p).mean(axis=0), (q_c, p_c, z.shape[0])


def monte_carlo_kl_backward(posterior, dkl, cache, log_prior_backward=None):
    """Returns ``(dz (S, N, Z), dmu, dscale_params)``: the pathwise part through the samples
    and the direct part through ``log q``'s parameters (``dmu`` 0 unless ``log q`` depends
    on ``μ``).
    ``log_prior_backward(dlog_p, cache) -> dz`` pairs with the forward's ``log_prior``."""
    q_c, p_c, S = cache
    d = np.broadcast_to(dkl / S, (S,) + dkl.shape)                           # (S, N)
    dmu, dscale_params = posterior.log_q_mu_backward(d, q_c)
    dz_p = (log_prior_backward or _log_standard_normal_dz)(-d, p_c)          # via −log p(z)
    return dz_p, dmu, dscale_params


def _log_standard_normal(z):
    return log_normal_forward(z, 0.0, 0.0)


def _log_standard_normal_dz(dlog_p, cache):
    return log_normal_backward(dlog_p, cache)[0]


# --------------------------------------------------------- the IWAE bound
def iwae_bound_forward(log_w):
    """``L_K(x_n) = log (1/K) Σ_k w_k = logsumexp_k log w_k − log K`` ``(N,)``
    from log-weights ``(K, N)`` (docs/06-importance-weighting.md).

    Returns ``(bound (N,), cache)`` in the log-weights' dtype.
    """
    K = log_w.shape[0]
    bound = logsumexp(log_w, axis=0) - log_w.dtype.type(math.log(K))         # (N,)
    return bound, log_w


def iwae_bound_backward(cache, dtype):
    """Seed of the loss ``−(1/N) Σ_n L_K(x_n)``: ``∂loss/∂log w_k,n = −w̃_k,n / N``
    with the normalised weights ``w̃ = softmax_k(log w)`` (docs/06-importance-weighting.md)."""
    log_w = cache
    N = log_w.shape[1]
    return (-softmax(log_w, axis=0) / N).astype(dtype)                       # (K, N)


def log_likelihood_estimate(log_weights, draw_noise, n_examples, n_importance, max_rows,
                            dtype=np.float64):
    """``log p̂(x) = logsumexp_k log w_k − log K`` per example ``(N,)`` in ``dtype``
    (docs/06-importance-weighting.md).

    ``log_weights(rows, eps) -> (K', n)`` evaluates the model's log-weights for the
    examples ``rows`` (a slice) at the noise ``eps``; ``draw_noise(K', n) -> eps``.
    At most ``max_rows`` (examples × samples) rows are decoded at a time, so memory
    stays bounded for any ``K``; the partial sums are combined with ``logaddexp``.
    """
    K = n_importance
    k_chunk = min(K, max_rows)
    n_chunk = max(1, max_rows // k_chunk)
    dtype = np.dtype(dtype)
    out = np.empty(n_examples, dtype=dtype)
    for start in range(0, n_examples, n_chunk):
        rows = slice(start, min(start + n_chunk, n_examples))
        n = rows.stop - rows.start
        total = np.full(n, -np.inf, dtype=dtype)
        for k0 in range(0, K, k_chunk):
            log_w = log_weights(rows, draw_noise(min(k_chunk, K - k0), n))
            total = np.logaddexp(total, logsumexp(log_w, axis=0))
        out[rows] = total - math.log(K)
    return out


def active_units(means, threshold=0.01):
    """Active latent units (Burda et al. 2016): unit ``u`` is active when
    ``Cov_x(E_q[u|x]) > threshold``.  ``means``: one ``(N, Z_l)`` array of posterior
    means per level; returns a list of counts (docs/06-importance-weighting.md)."""
    return [int(np.sum(np.var(m.astype(np.float64), axis=0) > threshold)) for m in means]


def example_keyed_noise(X, widths, n_samples, dtype, seed=0):
    """Standard normal noise for scoring the examples ``X (N, D)``: example ``n``'s
    ``S × ΣZ_l`` draws come from a generator keyed by its own bytes (and ``seed``).
    A score is then a deterministic function of the example alone — the same for any
    order, subset or chunking of the data — while different examples get independent
    noise (one draw shared by all would make a mean score that of a single ``z``).
    Returns one ``(S, N, Z_l)`` array per width in ``widths``."""
    rows = np.ascontiguousarray(X)
    eps = np.empty((X.shape[0], n_samples, sum(widths)), dtype=dtype)          # (N, S, ΣZ)
    for i in range(X.shape[0]):
        key = int.from_bytes(hashlib.blake2b(rows[i].tobytes(), digest_size=16).digest(),
                             "little")
        rng = np.random.Generator(np.random.Philox(key=key + seed))
        eps[i] = rng.standard_normal((n_samples, eps.shape[2]), dtype=dtype)
    split = np.split(eps.transpose(1, 0, 2), np.cumsum(widths)[:-1], axis=2)  # (S, N, Z_l)
    return [np.ascontiguousarray(e) for e in split]
