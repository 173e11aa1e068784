"""Encoder gradient estimators that drop the score term of ``log q``: STL and DReG
(docs/05-elbo.md#sticking-the-landing, docs/06-importance-weighting.md#doubly-reparameterised-gradients).

``log q_φ(z|x)`` at a reparameterised sample ``z = g(ε, φ)`` depends on the
encoder's parameters ``φ`` twice: through the sample ``z`` (the *path* term
``∂log q/∂z · ∂z/∂φ``) and directly, ``z`` held fixed (the *score* term
``∂log q/∂φ|_z``, whose expectation under ``q`` is zero).

* ``"standard"``: the exact gradient of the objective at the given noise.
* ``"stl"`` (Roeder, Wu & Duvenaud 2017, "sticking the landing"): the score
  term is dropped.  Unbiased for the ELBO; for the IWAE bound with ``K > 1``
  it is *biased* (the weights ``w̃_k`` depend on ``z_k``), see the book.
* ``"dreg"`` (Tucker, Lawson, Gu & Maddison 2019): for the IWAE bound, the
  score term is replaced by its reparameterised equivalent, which turns each
  sample's weight ``w̃_k`` on the encoder's path into ``w̃_k²``.  Unbiased.

The decoder's gradient is the same for all three.  In the hand-written backward
pass the change is in the seeds: the seed on ``log q``'s parameters (the
change-of-variables derivative :meth:`~npvae.distributions.posteriors.Posterior.log_q_backward`)
is zero, the seed on ``log q`` goes to ``z`` instead
(:meth:`~npvae.distributions.posteriors.Posterior.log_q_dz`, parameters held
fixed), and for DReG the gradient on each ``z_k`` is multiplied by ``w̃_k``.

Shapes: ``N`` examples, ``S`` samples (ELBO), ``K`` importance samples, ``Z`` latent.
"""
from __future__ import annotations

import numpy as np
from scipy.special import softmax

from .objectives import iwae_bound_backward

#: the values of ``VAE(gradient_estimator=...)``
GRADIENT_ESTIMATORS = ("standard", "stl", "dreg")


def check_gradient_estimator(name, objective):
    """A one-line ``ValueError`` for an unknown estimator, or DReG with the ELBO."""
    if not isinstance(name, str) or name not in GRADIENT_ESTIMATORS:
        raise ValueError(f"unknown gradient_estimator {name!r}; choose one of "
                         f"{GRADIENT_ESTIMATORS}")
    if name == "dreg" and objective != "iwae":
        raise ValueError("gradient_estimator='dreg' is for objective='iwae' (for the ELBO it "
                         "coincides with 'stl')")
    return name


def iwae_backward(model, log_w, cache):
    """The flat gradient of ``−(1/N) Σ_n L_K(x_n)`` by the model's ``gradient_estimator``
    (docs/06-importance-weighting.md#doubly-reparameterised-gradients).

    The seed ``∂loss/∂log w_k = −w̃_k/N`` (``w̃ = softmax_k log w``) is the
    decoder's for every estimator.  For ``"stl"`` and ``"dreg"`` the encoder
    receives it only along the path through ``z_k``, scaled per sample by
    ``path_scale``: ``1`` (STL) or ``w̃_k`` (DReG, so ``−w̃_k²/N`` in all).
    ``log_w (K, N)``; ``cache`` from the model's ``log_weights_forward``.
    """
    dlog_w = iwae_bound_backward(log_w, model.dtype_)                         # (K, N)
    estimator = model.gradient_estimator
    if estimator == "standard":
        return model.log_weights_backward(dlog_w, cache)
    if estimator == "dreg":
        path_scale = softmax(log_w, axis=0).astype(model.dtype_)              # w̃ (K, N)
    else:
        path_scale = np.ones_like(dlog_w)                                     # (K, N)
    return model.log_weights_backward(dlog_w, cache, path_scale)


def kl_path_backward(posterior, dkl, z, z_c):
    """STL's gradient on the samples of the Monte Carlo KL
    ``(1/S) Σ_s [log q(z_s|x) − log N(z_s; 0, I)]`` with ``q``'s parameters held
    fixed inside ``log q`` (docs/05-elbo.md#sticking-the-landing):
    ``dz_s = (dkl/S) (∂log q/∂z_s + z_s)``, since ``−∂log N(z; 0, I)/∂z = z``.

    ``dkl (N,)`` the seed on the KL, ``z (S, N, Z)`` and its cache ``z_c`` from the
    posterior's ``sample_forward``.  Returns ``dz (S, N, Z)``.
    """
    S = z.shape[0]
    d = np.broadcast_to(dkl / S, (S,) + dkl.shape)                            # (S, N)
    return posterior.log_q_dz(d, z_c) + d[..., None] * z
