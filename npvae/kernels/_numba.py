"""Numba kernels with the same contracts as the NumPy references.

Each public function here mirrors one in :mod:`activations`,
:mod:`gaussian` or :mod:`likelihoods` (same arguments, same return values,
same cache layout), so the two backends are interchangeable and the tests run
both.  Loops are nopython, compiled once and cached on disk
(``cache=True``).  No ``fastmath``: the results must match the reference to
1e-12 in float64.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .activations import ACTIVATION_CODES, LEAKY_SLOPE

_LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------- activations
@njit(cache=True, inline="always")
def _act(a, code):
    if code == 0:      # identity
        return a
    if code == 1:      # relu
        return a if a > 0 else 0.0 * a
    if code == 2:      # leaky relu
        return a if a > 0 else LEAKY_SLOPE * a
    if code == 3:      # tanh
        return math.tanh(a)
    if code == 4:      # sigmoid, stable on both sides
        if a >= 0:
            return 1.0 / (1.0 + math.exp(-a))
        e = math.exp(a)
        return e / (1.0 + e)
    # softplus: max(a, 0) + log1p(exp(-|a|))
    return max(a, 0.0) + math.log1p(math.exp(-abs(a)))


@njit(cache=True, inline="always")
def _dact(a, h, code):
    if code == 0:
        return 1.0
    if code == 1:
        return 1.0 if a > 0 else 0.0
    if code == 2:
        return 1.0 if a > 0 else LEAKY_SLOPE
    if code == 3:
        return 1.0 - h * h
    if code == 4:
        return h * (1.0 - h)
    # softplus' = sigmoid
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


@njit(cache=True)
def _bias_act_fwd(a, b, has_bias, code, pre, h):
    n, m = a.shape
    for i in range(n):
        for j in range(m):
            v = a[i, j] + b[j] if has_bias else a[i, j]
            pre[i, j] = v
            h[i, j] = _act(v, code)


@njit(cache=True)
def _bias_act_bwd(dh, pre, h, code, has_bias, da, db):
    n, m = dh.shape
    for j in range(m):
        db[j] = 0.0
    for i in range(n):
        for j in range(m):
            g = dh[i, j] * _dact(pre[i, j], h[i, j], code)
            da[i, j] = g
            if has_bias:
                db[j] += g


def bias_activation_forward(a, b, name):
    has_bias = b is not None
    bias = b if has_bias else np.zeros(a.shape[1], a.dtype)
    pre = np.empty_like(a)
    h = np.empty_like(a)
    _bias_act_fwd(a, bias, has_bias, ACTIVATION_CODES[name], pre, h)
    return h, (pre, h, name, has_bias)


def bias_activation_backward(dh, cache):
    pre, h, name, has_bias = cache
    da = np.empty_like(pre)
    db = np.empty(pre.shape[1], pre.dtype)
    _bias_act_bwd(dh, pre, h, ACTIVATION_CODES[name], has_bias, da, db)
    return da, (db if has_bias else None)


# ---------------------------------------------------------------- Gaussian
@njit(cache=True)
def _reparam_fwd(mu, logvar, eps, sigma, z):
    S, N, Z = eps.shape
    for n in range(N):
        for j in range(Z):
            sigma[n, j] = math.exp(0.5 * logvar[n, j])
    for s in range(S):
        for n in range(N):
            for j in range(Z):
                z[s, n, j] = mu[n, j] + sigma[n, j] * eps[s, n, j]


@njit(cache=True)
def _reparam_bwd(dz, sigma, eps, dmu, dlogvar):
    S, N, Z = dz.shape
    for n in range(N):
        for j in range(Z):
            a = 0.0
            b = 0.0
            for s in range(S):
                a += dz[s, n, j]
                b += dz[s, n, j] * eps[s, n, j]
            dmu[n, j] = a
            dlogvar[n, j] = b * sigma[n, j] / 2


def reparameterize_forward(mu, logvar, eps):
    sigma = np.empty_like(mu)
    z = np.empty(eps.shape, mu.dtype)
    _reparam_fwd(mu, logvar, eps, sigma, z)
    return z, (sigma, eps)


def reparameterize_backward(dz, cache):
    sigma, eps = cache
    dmu = np.empty_like(sigma)
    dlogvar = np.empty_like(sigma)
    _reparam_bwd(dz, sigma, eps, dmu, dlogvar)
    return dmu, dlogvar


@njit(cache=True)
def _kl_std_fwd(mu, logvar, var, kl):
    N, Z = mu.shape
    for n in range(N):
        acc = 0.0
        for j in range(Z):
            v = math.exp(logvar[n, j])
            var[n, j] = v
            acc += mu[n, j] * mu[n, j] + v - 1.0 - logvar[n, j]
        kl[n] = 0.5 * acc


@njit(cache=True)
def _kl_std_bwd(dkl, mu, var, dmu, dlogvar):
    N, Z = mu.shape
    for n in range(N):
        for j in range(Z):
            dmu[n, j] = dkl[n] * mu[n, j]
            dlogvar[n, j] = dkl[n] * 0.5 * (var[n, j] - 1.0)


def kl_standard_normal_forward(mu, logvar):
    var = np.empty_like(mu)
    kl = np.empty(mu.shape[0], mu.dtype)
    _kl_std_fwd(mu, logvar, var, kl)
    return kl, (mu, var)


def kl_standard_normal_backward(dkl, cache):
    mu, var = cache
    dmu = np.empty_like(mu)
    dlogvar = np.empty_like(mu)
    _kl_std_bwd(dkl, mu, var, dmu, dlogvar)
    return dmu, dlogvar


@njit(cache=True)
def _kl_diag_fwd(mu_q, lv_q, mu_p, lv_p, var_q, inv_var_p, diff, kl):
    R, Z = mu_q.shape
    for r in range(R):
        acc = 0.0
        for j in range(Z):
            vq = math.exp(lv_q[r, j])
            ivp = math.exp(-lv_p[r, j])
            d = mu_q[r, j] - mu_p[r, j]
            var_q[r, j] = vq
            inv_var_p[r, j] = ivp
            diff[r, j] = d
            acc += lv_p[r, j] - lv_q[r, j] + (vq + d * d) * ivp - 1.0
        kl[r] = 0.5 * acc


@njit(cache=True)
def _kl_diag_bwd(dkl, var_q, inv_var_p, diff, dmu_q, dlv_q, dmu_p, dlv_p):
    R, Z = var_q.shape
    for r in range(R):
        for j in range(Z):
            g = dkl[r] * diff[r, j] * inv_var_p[r, j]
            dmu_q[r, j] = g
            dmu_p[r, j] = -g
            dlv_q[r, j] = dkl[r] * 0.5 * (var_q[r, j] * inv_var_p[r, j] - 1.0)
            dlv_p[r, j] = dkl[r] * 0.5 * (1.0 - (var_q[r, j] + diff[r, j] * diff[r, j]) * inv_var_p[r, j])


def kl_diagonal_forward(mu_q, logvar_q, mu_p, logvar_p):
    shape = mu_q.shape
    Z = shape[-1]
    flat = [np.ascontiguousarray(a).reshape(-1, Z) for a in (mu_q, logvar_q, mu_p, logvar_p)]
    var_q = np.empty_like(flat[0])
    inv_var_p = np.empty_like(flat[0])
    diff = np.empty_like(flat[0])
    kl = np.empty(flat[0].shape[0], mu_q.dtype)
    _kl_diag_fwd(*flat, var_q, inv_var_p, diff, kl)
    return kl.reshape(shape[:-1]), (var_q, inv_var_p, diff, shape)


def kl_diagonal_backward(dkl, cache):
    var_q, inv_var_p, diff, shape = cache
    outs = [np.empty_like(var_q) for _ in range(4)]
    _kl_diag_bwd(np.ascontiguousarray(dkl).reshape(-1), var_q, inv_var_p, diff, *outs)
    dmu_q, dlv_q, dmu_p, dlv_p = (o.reshape(shape) for o in outs)
    return dmu_q, dlv_q, dmu_p, dlv_p


# ---------------------------------------------------------------- likelihoods
@njit(cache=True)
def _bernoulli_fwd(logits, x, log_p):
    S, N, D = logits.shape
    for s in range(S):
        for n in range(N):
            acc = 0.0
            for d in range(D):
                eta = logits[s, n, d]
                acc += max(eta, 0.0) - x[n, d] * eta + math.log1p(math.exp(-abs(eta)))
            log_p[s, n] = -acc


@njit(cache=True)
def _bernoulli_bwd(dlog_p, logits, x, dlogits):
    S, N, D = logits.shape
    for s in range(S):
        for n in range(N):
            g = dlog_p[s, n]
            for d in range(D):
                eta = logits[s, n, d]
                if eta >= 0:
                    sig = 1.0 / (1.0 + math.exp(-eta))
                else:
                    e = math.exp(eta)
                    sig = e / (1.0 + e)
                dlogits[s, n, d] = g * (x[n, d] - sig)


def bernoulli_forward(logits, x):
    log_p = np.empty(logits.shape[:2], logits.dtype)
    _bernoulli_fwd(logits, x, log_p)
    return log_p, (logits, x)


def bernoulli_backward(dlog_p, cache):
    logits, x = cache
    dlogits = np.empty_like(logits)
    _bernoulli_bwd(dlog_p, logits, x, dlogits)
    return dlogits


@njit(cache=True)
def _gaussian_fwd(mean, lv, x, diff, inv_var, log_p):
    S, N, D = mean.shape
    const = 0.0
    for d in range(D):
        inv_var[d] = math.exp(-lv[d])
        const += _LOG_2PI + lv[d]
    for s in range(S):
        for n in range(N):
            acc = 0.0
            for d in range(D):
                r = x[n, d] - mean[s, n, d]
                diff[s, n, d] = r
                acc += r * r * inv_var[d]
            log_p[s, n] = -0.5 * (const + acc)


@njit(cache=True)
def _gaussian_bwd(dlog_p, diff, inv_var, dmean, dlv):
    S, N, D = diff.shape
    for d in range(D):
        dlv[d] = 0.0
    for s in range(S):
        for n in range(N):
            g = dlog_p[s, n]
            for d in range(D):
                r = diff[s, n, d]
                dmean[s, n, d] = g * r * inv_var[d]
                dlv[d] += g * 0.5 * (r * r * inv_var[d] - 1.0)


def gaussian_forward(mean, logvar_x, x):
    D = mean.shape[-1]
    lv = np.ascontiguousarray(np.broadcast_to(logvar_x, (D,)))
    diff = np.empty_like(mean)
    inv_var = np.empty(D, mean.dtype)
    log_p = np.empty(mean.shape[:2], mean.dtype)
    _gaussian_fwd(mean, lv, x, diff, inv_var, log_p)
    return log_p, (diff, inv_var, logvar_x.shape)


def gaussian_backward(dlog_p, cache):
    diff, inv_var, logvar_shape = cache
    dmean = np.empty_like(diff)
    dlv = np.empty(diff.shape[-1], diff.dtype)
    _gaussian_bwd(dlog_p, diff, inv_var, dmean, dlv)
    if logvar_shape == ():
        return dmean, np.asarray(dlv.sum(), diff.dtype)
    return dmean, dlv


@njit(cache=True)
def _categorical_fwd(logits, x, log_p):
    S, N, D, V = logits.shape
    for s in range(S):
        for n in range(N):
            acc = 0.0
            for d in range(D):
                m = logits[s, n, d, 0]
                for v in range(1, V):
                    m = max(m, logits[s, n, d, v])
                tot = 0.0
                for v in range(V):
                    tot += math.exp(logits[s, n, d, v] - m)
                acc += logits[s, n, d, x[n, d]] - m - math.log(tot)
            log_p[s, n] = acc


@njit(cache=True)
def _categorical_bwd(dlog_p, logits, x, dlogits):
    S, N, D, V = logits.shape
    for s in range(S):
        for n in range(N):
            g = dlog_p[s, n]
            for d in range(D):
                m = logits[s, n, d, 0]
                for v in range(1, V):
                    m = max(m, logits[s, n, d, v])
                tot = 0.0
                for v in range(V):
                    e = math.exp(logits[s, n, d, v] - m)
                    dlogits[s, n, d, v] = e
                    tot += e
                for v in range(V):
                    dlogits[s, n, d, v] = -g * dlogits[s, n, d, v] / tot
                dlogits[s, n, d, x[n, d]] += g


def categorical_forward(logits, x):
    log_p = np.empty(logits.shape[:2], logits.dtype)
    _categorical_fwd(logits, x, log_p)
    return log_p, (logits, x)


def categorical_backward(dlog_p, cache):
    logits, x = cache
    dlogits = np.empty_like(logits)
    _categorical_bwd(dlog_p, logits, x, dlogits)
    return dlogits
