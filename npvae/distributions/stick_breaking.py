"""Stick-breaking latents with Kumaraswamy stick fractions (Nalisnick & Smyth 2017;
docs/19-simplex-latents.md#kumaraswamy-stick-breaking).

``VAE(posterior="kumaraswamy", n_latent=T, posterior_params={"prior_alpha": α₀,
"series_terms": M})``: ``T`` stick weights ``π (N, T)`` on the simplex, the decoder's
input, broken from ``T − 1`` fractions ``v_k ∈ (0, 1)``:

``π_k = v_k Π_{j<k} (1 − v_j)`` for ``k < T``, ``π_T = Π_{j<T} (1 − v_j)``.

* Posterior: ``v_k ~ Kumaraswamy(a_k, b_k)`` independent, the encoder's one head
  ``(N, 2(T − 1))`` holds ``a``'s then ``b``'s pre-activations ``(â, b̂)``,
  ``a = softplus(â) + MIN_SHAPE`` (likewise ``b``).
* Noise: uniforms ``u (S, N, T − 1)``, ``v = (1 − u^{1/b})^{1/a}`` (the inverse CDF,
  :func:`npvae.distributions.samplers.kumaraswamy_sample_forward`).
* Prior: ``v_k ~ Beta(1, α₀)`` independent (the truncated GEM(α₀)).
* KL: ``Σ_k KL(Kumaraswamy(a_k, b_k) ‖ Beta(1, α₀))`` by Nalisnick & Smyth's series
  truncated after ``M`` terms (docs/19-simplex-latents.md#the-kl-series-and-its-truncation:
  its error, measured against scipy's quadrature, is a lower bias when ``α₀ > 1``).
* Evaluation: the same samples; ``log q(v|x)`` from the noise, ``log p(v) =
  (T − 1) log α₀ + (α₀ − 1) log π_T`` from the weights (``Σ_k log(1 − v_k) = log π_T``).
"""
from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, polygamma

from .posteriors import POSTERIORS
from .samplers import kumaraswamy_sample_backward, kumaraswamy_sample_forward
from .uniform_noise import UniformNoisePosterior, integer, number, softplus_forward

#: the options of ``posterior_params`` and their defaults
DEFAULTS = {"prior_alpha": 5.0, "series_terms": 10}
#: the floor added to ``softplus`` for both Kumaraswamy shapes
MIN_SHAPE = 1e-3


def stick_products(head, tail):
    """``π_k = head_k Π_{j<k} tail_j`` (``k < T``), ``π_T = Π_{j<T} tail_j``: ``(..., T)``
    from ``(..., T − 1)``; with ``head = v``, ``tail = 1 − v`` the stick-breaking map.
    Returns ``(π, r)`` with ``r_k = Π_{j<k} tail_j`` ``(..., T)``, the stick left before ``k``."""
    r = np.concatenate([np.ones(tail.shape[:-1] + (1,), tail.dtype), np.cumprod(tail, axis=-1)],
                       axis=-1)                                              # (..., T)
    pi = r.copy()
    pi[..., :-1] *= head
    return pi, r


def stick_breaking_backward(dpi, v, r):
    """``dv (..., T − 1)`` of ``Σ dπ ⊙ π(v)``, without dividing by ``1 − v``
    (docs/19-simplex-latents.md#the-stick-breaking-backward):
    ``c_T = dπ_T``, ``c_k = dπ_k v_k + (1 − v_k) c_{k+1}``, ``dv_k = r_k (dπ_k − c_{k+1})``."""
    T = dpi.shape[-1]
    dv = np.empty_like(v)
    c = dpi[..., T - 1].copy()                                              # c_{k+1}
    for k in range(T - 2, -1, -1):
        dv[..., k] = r[..., k] * (dpi[..., k] - c)
        c = dpi[..., k] * v[..., k] + (1 - v[..., k]) * c
    return dv


def kumaraswamy_beta_kl_forward(a, b, alpha0, M):
    """``KL(Kumaraswamy(a, b) ‖ Beta(1, α₀))`` elementwise (Nalisnick & Smyth 2017, eq. 12
    with ``α = 1``, ``β = α₀``), the series truncated after ``M`` terms:

    ``(1 − 1/a)(−γ − ψ(b) − 1/b) + log(ab) − log α₀ − (b − 1)/b
    + (α₀ − 1) b Σ_{m=1}^{M} B(m/a, b)/(m + ab)``,

    the last sum being ``−E_q[log(1 − v)] = Σ_m E_q[v^m]/m`` truncated.  Returns ``(kl, cache)``."""
    m = np.arange(1, M + 1, dtype=np.float64)                                # (M,)
    am, bm = a[..., None], b[..., None]
    terms = np.exp(np.log(bm) + betaln(m / am, bm)) / (m + am * bm)          # (..., M)
    series = terms.sum(axis=-1)
    head = -np.euler_gamma - digamma(b) - 1 / b
    kl = ((1 - 1 / a) * head + np.log(a * b) - np.log(alpha0) - (b - 1) / b
          + (alpha0 - 1) * series)
    return kl, (a, b, alpha0, m, terms, head)


def kumaraswamy_beta_kl_backward(dkl, cache):
    """``(da, db)`` of the truncated series KL (docs/19-simplex-latents.md#the-kl-series-and-its-truncation):
    with ``t_m = b B(m/a, b)/(m + ab)``,
    ``∂ log t_m/∂a = −(m/a²)(ψ(m/a) − ψ(m/a + b)) − b/(m + ab)``,
    ``∂ log t_m/∂b = 1/b + ψ(b) − ψ(m/a + b) − a/(m + ab)``;
    ``∂/∂a`` of the rest ``= head/a² + 1/a``,
    ``∂/∂b = (1 − 1/a)(−ψ'(b) + 1/b²) + 1/b − 1/b²``."""
    a, b, alpha0, m, terms, head = cache
    am, bm = a[..., None], b[..., None]
    ma = m / am
    psi_sum = digamma(ma + bm)
    dlog_da = -(ma / am) * (digamma(ma) - psi_sum) - bm / (m + am * bm)
    dlog_db = 1 / bm + digamma(bm) - psi_sum - am / (m + am * bm)
    da = head / a ** 2 + 1 / a + (alpha0 - 1) * (terms * dlog_da).sum(axis=-1)
    db = ((1 - 1 / a) * (-polygamma(1, b) + 1 / b ** 2) + 1 / b - 1 / b ** 2
          + (alpha0 - 1) * (terms * dlog_db).sum(axis=-1))
    return dkl * da, dkl * db


class KumaraswamyStickBreaking(UniformNoisePosterior):
    """``T`` stick-breaking weights from ``T − 1`` Kumaraswamy fractions, a GEM(α₀)
    prior (docs/19-simplex-latents.md#kumaraswamy-stick-breaking).  ``posterior_params``:
    ``prior_alpha`` ``α₀ > 0``, ``series_terms`` ``M`` (the KL series' truncation)."""

    name = "kumaraswamy"
    head = "ab"
    closed_form_kl = True
    DEFAULTS = DEFAULTS

    def __init__(self, params=None):
        p = self.read_params(params)
        self.alpha0 = number(p, "prior_alpha", 0.0, False)
        self.series_terms = integer(p, "series_terms", 1, 10 ** 4)

    def head_size(self, T):
        if T < 2:
            raise ValueError(f"posterior='kumaraswamy' needs n_latent >= 2 stick weights, got {T}")
        return 2 * (T - 1)

    def noise_width(self, T):
        return T - 1

    def shapes(self, pre_ab):
        """``(a, b, σ(â), σ(b̂))`` ``(N, T − 1)`` each, from the encoder's head
        ``pre_ab = (â, b̂)`` ``(N, 2(T − 1))``, the shapes before the softplus."""
        n = pre_ab.shape[-1] // 2
        a, da = softplus_forward(pre_ab[..., :n], MIN_SHAPE)
        b, db = softplus_forward(pre_ab[..., n:], MIN_SHAPE)
        return a, b, da, db

    # ------------------------------------------------------------- sampling
    def sample_forward(self, mu, pre_ab, u):
        """``π (S, N, T)`` at ``v = (1 − u^{1/b})^{1/a}``; ``mu`` is None (no mean head)."""
        a, b, sa, sb = self.shapes(pre_ab)
        v, k_c = kumaraswamy_sample_forward(a, b, u)                         # (S, N, T − 1)
        one_minus_v = -np.expm1(k_c[4] / a)                                  # 1 − w^{1/a}
        pi, r = stick_products(v, one_minus_v)                               # (S, N, T)
        return pi.astype(pre_ab.dtype, copy=False), (k_c, v, r, sa, sb)

    def sample_backward(self, dpi, cache):
        """``(0, dpre_ab)``: the stick-breaking VJP, the Kumaraswamy's inverse-CDF path,
        softplus'."""
        k_c, v, r, sa, sb = cache
        g = kumaraswamy_sample_backward(stick_breaking_backward(dpi, v, r), k_c)
        return 0, np.concatenate([g["a"] * sa, g["b"] * sb], axis=-1).astype(dpi.dtype, copy=False)

    # ------------------------------------------------------------------ KL
    def kl_forward(self, mu, pre_ab):
        """``Σ_k KL(Kumaraswamy(a_k, b_k) ‖ Beta(1, α₀))`` ``(N,)``, the series truncated."""
        a, b, sa, sb = self.shapes(pre_ab)
        kl, c = kumaraswamy_beta_kl_forward(a, b, self.alpha0, self.series_terms)
        return kl.sum(axis=-1).astype(pre_ab.dtype, copy=False), (c, sa, sb)

    def kl_backward(self, dkl, cache):
        c, sa, sb = cache
        da, db = kumaraswamy_beta_kl_backward(dkl[:, None], c)
        return 0, np.concatenate([da * sa, db * sb], axis=-1).astype(dkl.dtype, copy=False)

    # ------------------------------------------------------------- densities
    def log_q_forward(self, pre_ab, u):
        """``log q(v|x) = Σ_k log a + log b + (1 − 1/a) log w + (b − 1) t`` ``(S, N)`` with
        ``t = log u / b``, ``w = 1 − eᵗ`` (so ``v^a = w``, ``1 − v^a = eᵗ``): from the noise,
        exact where ``v`` rounds to 0 or 1."""
        a, b, sa, sb = self.shapes(pre_ab)
        _, (a, b, t, w, log_w, v) = kumaraswamy_sample_forward(a, b, u)
        log_q = np.log(a) + np.log(b) + (1 - 1 / a) * log_w + (b - 1) * t
        return log_q.sum(axis=-1), (a, b, t, w, log_w, sa, sb)

    def log_q_backward(self, dlog_q, cache):
        """``dpre_ab`` of ``log q`` at the reparameterised sample (``u`` fixed):
        ``∂/∂a = 1/a + log w/a²``, ``∂/∂b = 1/b + t/b + (1 − 1/a)(eᵗ/w)(t/b)``."""
        a, b, t, w, log_w, sa, sb = cache
        d = dlog_q[..., None]
        da = (d * (1 / a + log_w / a ** 2)).sum(axis=0)
        db = (d * (1 / b + t / b + (1 - 1 / a) * (np.exp(t) / w) * (t / b))).sum(axis=0)
        return np.concatenate([da * sa, db * sb], axis=-1)

    def log_prior_forward(self, pi):
        """``log p(v) = (T − 1) log α₀ + (α₀ − 1) log π_T`` ``(S, N)`` (``π_T`` floored at the
        dtype's smallest normal number where it underflowed)."""
        last = np.maximum(pi[..., -1], np.finfo(pi.dtype).tiny)
        T = pi.shape[-1]
        return (T - 1) * np.log(self.alpha0) + (self.alpha0 - 1) * np.log(last), (pi.shape, last)

    def log_prior_backward(self, dlog_p, cache):
        shape, last = cache
        dpi = np.zeros(shape, dtype=dlog_p.dtype)
        dpi[..., -1] = dlog_p * (self.alpha0 - 1) / last
        return (dpi,)

    def prior_sample(self, rng, n, T, dtype):
        """``n`` weight vectors ``(n, T)``: ``v_k ~ Beta(1, α₀)`` broken into sticks."""
        v = rng.beta(1.0, self.alpha0, (n, T - 1))
        return stick_products(v, 1 - v)[0].astype(dtype)

    # ----------------------------------------------------------- summaries
    def moments(self, pre_ab, power):
        """``E_q[v^power]`` ``(N, T − 1)``: ``b B(1 + power/a, b)``."""
        a, b, _, _ = self.shapes(pre_ab)
        return np.exp(np.log(b) + betaln(1 + power / a, b))

    def mean(self, mu, pre_ab):
        """``E_q[π_k] = E[v_k] Π_{j<k} (1 − E[v_j])`` ``(N, T)`` (the fractions are independent)."""
        ev = self.moments(pre_ab, 1)
        return stick_products(ev, 1 - ev)[0]

    def marginal_logvar(self, pre_ab, T=None):
        """``log Var_q[π_k]``, ``E[π_k²] = E[v_k²] Π_{j<k} E[(1 − v_j)²]``."""
        ev, ev2 = self.moments(pre_ab, 1), self.moments(pre_ab, 2)
        second = stick_products(ev2, 1 - 2 * ev + ev2)[0]
        var = second - stick_products(ev, 1 - ev)[0] ** 2
        return np.log(np.maximum(var, np.finfo(pre_ab.dtype).tiny))


POSTERIORS["kumaraswamy"] = KumaraswamyStickBreaking        # VAE(posterior="kumaraswamy")
