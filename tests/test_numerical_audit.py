"""What the numerical audit of issue 32 found: float32 kept through the importance
weights, the full-covariance STL/DReG path gradient where L's diagonal underflows,
fastmath's expm1(-0.0) and log1p domain, and the float32 full-covariance KL."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import npvae
from npvae.distributions.full_gaussian import (kl_full_standard_normal_forward, log_q_full_dz,
                                               reparameterize_full_forward)
from npvae.distributions.diagonal_gaussian import log_normal_forward

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _binary(n, d, seed=0):
    return (np.random.default_rng(seed).uniform(size=(n, d)) > 0.5).astype(np.float32)


def test_log_normal_of_python_zeros_keeps_float32():
    z = np.ones((2, 3, 4), np.float32)
    log_p, (diff, inv_var, _, _) = log_normal_forward(z, 0.0, 0.0)
    assert log_p.dtype == np.float32 and inv_var.dtype == np.float32


@pytest.mark.parametrize("make", [
    lambda: npvae.VAE(n_latent=3, hidden_sizes=(4,), objective="iwae", k=3),
    lambda: npvae.VAE(n_latent=3, hidden_sizes=(4,), posterior="full", objective="iwae", k=3),
    lambda: npvae.HierarchicalVAE(latent_sizes=(3, 2), hidden_sizes=(4,), objective="iwae",
                                  k=3),
], ids=["vae", "full", "hvae"])
def test_float32_models_keep_float32_log_weights_and_gradients(make):
    m = make().set_params(dtype="float32", random_state=0).initialize(5)
    X = _binary(2, 5)
    eps = m.draw_noise(2, random_state=0)
    assert m.log_weights(X, eps).dtype == np.float32
    loss, grads = m.loss_and_grads(X, eps)
    assert np.isfinite(loss)
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}


def test_conditional_float32_log_weights():
    m = npvae.ConditionalVAE(n_latent=3, hidden_sizes=(4,), dtype="float32", classes=[0, 1],
                             random_state=0).initialize(5)
    assert m.log_weights(_binary(2, 5), [0, 1], m.draw_noise(2, random_state=0)).dtype \
        == np.float32


def test_full_covariance_path_gradient_with_an_underflowed_diagonal_is_one_line():
    rng = np.random.default_rng(0)
    Z = 3
    L = np.tril(rng.normal(size=(2, Z, Z))).astype(np.float32)
    L[:, np.arange(Z), np.arange(Z)] = np.exp(np.float32(-50.0))
    L[1, 2, 2] = np.exp(np.float32(-110.0))            # s < -103: 0 in float32
    assert L[1, 2, 2] == 0
    eps = rng.normal(size=(4, 2, Z)).astype(np.float32)
    _, cache = reparameterize_full_forward(np.zeros((2, Z), np.float32), L, eps)
    with pytest.raises(FloatingPointError) as info:
        log_q_full_dz(np.ones((4, 2), np.float32), cache)
    message = str(info.value)
    assert "\n" not in message and "L[2,2]" in message and "example 1" in message
    assert "standard" in message
    # where the diagonal is positive the result is unchanged and finite
    L[:, np.arange(Z), np.arange(Z)] = 1.0
    _, cache = reparameterize_full_forward(np.zeros((2, Z), np.float32), L, eps)
    assert np.all(np.isfinite(log_q_full_dz(np.ones((4, 2), np.float32), cache)))


def test_float32_full_kl_overflows_only_where_the_kl_does():
    # three diagonal entries of L with L² = 1.67e38: tr Σ = 5e38 overflows float32, the
    # KL = ½ tr Σ − Σ s − Z/2 ≈ 2.5e38 does not
    Z = 3
    s = np.full((1, Z), 44.0, np.float32)
    L = np.zeros((1, Z, Z), np.float32)
    L[:, np.arange(Z), np.arange(Z)] = np.exp(s)
    mu = np.zeros((1, Z), np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.einsum("nij,nij->n", L, L)[0])      # the trace alone
    kl, _ = kl_full_standard_normal_forward(mu, L, s)
    expected = 0.5 * (Z * np.exp(88.0) - Z - 2 * Z * 44.0)
    assert kl.dtype == np.float32 and np.isfinite(kl[0])
    assert kl[0] == pytest.approx(expected, rel=1e-6)
    # and the ordinary values are unchanged (float64 against the textbook formula)
    rng = np.random.default_rng(1)
    L = np.tril(rng.normal(size=(4, Z, Z)))
    s = rng.normal(size=(4, Z))
    L[:, np.arange(Z), np.arange(Z)] = np.exp(s)
    mu = rng.normal(size=(4, Z))
    kl, _ = kl_full_standard_normal_forward(mu, L, s)
    ref = 0.5 * ((L ** 2).sum((1, 2)) + (mu ** 2).sum(1) - Z - 2 * s.sum(1))
    np.testing.assert_allclose(kl, ref, rtol=1e-13)


def test_fastmath_expm1_keeps_the_sign_of_zero():
    from numba import njit

    from npvae import fastmath

    @njit
    def expm1(x):
        return fastmath.expm1(x)

    assert np.signbit(expm1(np.float32(-0.0)))
    assert not np.signbit(expm1(np.float32(0.0)))
    assert expm1(np.float32(-1.0)) == pytest.approx(np.expm1(-1.0), rel=1e-6)


def test_fastmath_log1p_asserts_its_domain_in_a_debug_build(tmp_path):
    code = """
import numpy as np
from numba import njit
from npvae import fastmath

@njit
def log1p(y):
    return fastmath.log1p(y)

print(log1p(np.float32(0.5)))
try:
    log1p(np.float32(2.0))
except AssertionError as exc:
    print("asserted:", exc)
"""
    env = dict(os.environ, PYTHONPATH=ROOT, NPVAE_FASTMATH_CHECKS="1",
               NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "asserted: fastmath._log1p32: y outside [0, 1]" in proc.stdout
    from npvae import fastmath

    assert "no range reduction" in fastmath._log1p32.py_func.__doc__
