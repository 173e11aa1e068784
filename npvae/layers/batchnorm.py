"""Batch normalisation (Ioffe & Szegedy 2015) as a pure kernel pair
(docs/16-ladder-vae.md#batch-normalisation).

Training mode normalises each column by the batch's own statistics::

    m = (1/N) Σ_n a_n,  v = (1/N) Σ_n (a_n − m)²,  â = (a − m)/√(v + ε),  y = γ ⊙ â + β

and its backward couples the rows through ``m`` and ``v``::

    dβ = Σ_n dy,   dγ = Σ_n dy ⊙ â,   dâ = dy ⊙ γ,
    da = (1/(N √(v + ε))) (N dâ − Σ_n dâ − â ⊙ Σ_n dâ ⊙ â)

Evaluation mode uses fixed statistics ``(m, v)`` (running averages kept by the
model): ``y`` is then an affine map of each row alone, ``da = dy ⊙ γ/√(v + ε)``.

Shapes: ``a (N, H)``, ``gamma, beta, m, v (H,)``.
"""
from __future__ import annotations

import numpy as np

#: added to the variance before the square root
BN_EPS = 1e-5
#: weight of the newest batch in the running averages (PyTorch's default)
BN_MOMENTUM = 0.1


def batchnorm_forward(a, gamma, beta, stats=None, eps=BN_EPS):
    """``y = γ ⊙ (a − m)/√(v + ε) + β`` (docs/16-ladder-vae.md#batch-normalisation).

    ``stats=None``: training mode, ``(m, v)`` the batch's mean and biased variance;
    ``stats=(m, v)``: evaluation mode with those statistics.  Returns
    ``(y (N, H), cache)``; ``cache[-1]`` holds the ``(m, v)`` used.
    """
    training = stats is None
    if training:
        m = a.mean(axis=0)                                   # (H,)
        centred = a - m                                      # (N, H)
        v = np.mean(centred * centred, axis=0)               # (H,) biased
    else:
        m, v = stats
        centred = a - m
    inv_std = 1.0 / np.sqrt(v + eps)                         # (H,)
    a_hat = centred * inv_std                                # (N, H)
    y = a_hat * gamma + beta                                 # (N, H)
    return y, (a_hat, inv_std, gamma, training, (m, v))


def batchnorm_backward(dy, cache):
    """Returns ``(da (N, H), dgamma (H,), dbeta (H,))``
    (docs/16-ladder-vae.md#backward-of-batch-normalisation)."""
    a_hat, inv_std, gamma, training, _ = cache
    dbeta = dy.sum(axis=0)                                   # (H,)
    dgamma = (dy * a_hat).sum(axis=0)                        # (H,)
    d_hat = dy * gamma                                       # (N, H)
    if not training:
        return d_hat * inv_std, dgamma, dbeta
    N = dy.shape[0]
    da = (inv_std / N) * (N * d_hat - d_hat.sum(axis=0)
                          - a_hat * (d_hat * a_hat).sum(axis=0))
    return da, dgamma, dbeta


def update_running(running_mean, running_var, m, v, n, momentum=BN_MOMENTUM):
    """In place: ``r ← (1 − μ) r + μ s`` for the mean and for the unbiased variance
    ``v · n/(n − 1)`` of a batch of ``n`` rows (docs/16-ladder-vae.md#running-statistics)."""
    unbiased = v * (n / (n - 1)) if n > 1 else v
    running_mean *= 1 - momentum
    running_mean += momentum * m
    running_var *= 1 - momentum
    running_var += momentum * unbiased
