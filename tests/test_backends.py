"""The NumPy reference and the Numba kernels agree (float64: 1e-12 relative; float32: 1e-5)."""
import numpy as np
import pytest

import npvae
from npvae.gradcheck import kernel_index

K = kernel_index()
from npvae.layers.activations import ACTIVATIONS
from npvae.optim import adam_update

TOL = {np.float64: 1e-12, np.float32: 1e-5}


def both(fn, *args):
    out = {}
    for be in ("numpy", "numba"):
        with npvae.use_backend(be):
            out[be] = fn(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])
    return out["numpy"], out["numba"]


def flatten(x):
    if isinstance(x, (tuple, list)):
        return [a for item in x for a in flatten(item)]
    if isinstance(x, dict):
        return [a for k in sorted(x) for a in flatten(x[k])]
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return [np.asarray(x)]
    return []


def assert_same(a, b, dtype):
    fa, fb = flatten(a), flatten(b)
    assert len(fa) == len(fb)
    for x, y in zip(fa, fb):
        if x.dtype.kind == "f" and x.ndim > 0:
            assert x.dtype == y.dtype == dtype, (x.dtype, y.dtype)
        # relative to each entry, and to the array's scale for entries that
        # are themselves rounding residue (e.g. tanh' = 1 - h² near saturation)
        tol = TOL[dtype]
        np.testing.assert_allclose(y, x, rtol=tol, atol=tol * float(np.max(np.abs(x))))


DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_bias_activation(dtype, activation, rng):
    a = rng.standard_normal((7, 5)).astype(dtype) * 3
    b = rng.standard_normal(5).astype(dtype)
    dh = rng.standard_normal((7, 5)).astype(dtype)

    def run(a, b, dh):
        h, c = K.bias_activation_forward(a, b, activation)
        return h, K.bias_activation_backward(dh, c)

    assert_same(*both(run, a, b, dh), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gaussian_kernels(dtype, rng):
    mu, lv = rng.standard_normal((2, 6, 3)).astype(dtype)
    mp, lp = rng.standard_normal((2, 6, 3)).astype(dtype)
    eps = rng.standard_normal((4, 6, 3)).astype(dtype)
    dz = rng.standard_normal((4, 6, 3)).astype(dtype)
    dkl = rng.standard_normal(6).astype(dtype)

    def run(mu, lv, mp, lp, eps, dz, dkl):
        z, cz = K.reparameterize_forward(mu, lv, eps)
        kl, ck = K.kl_standard_normal_forward(mu, lv)
        kd, cd = K.kl_diagonal_forward(mu, lv, mp, lp)
        return (z, K.reparameterize_backward(dz, cz), kl, K.kl_standard_normal_backward(dkl, ck),
                kd, K.kl_diagonal_backward(dkl, cd))

    assert_same(*both(run, mu, lv, mp, lp, eps, dz, dkl), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_likelihood_kernels(dtype, rng):
    logits = (rng.standard_normal((2, 5, 9)) * 4).astype(dtype)
    xb = (rng.random((5, 9)) < 0.4).astype(dtype)
    xr = rng.standard_normal((5, 9)).astype(dtype)
    lv_scalar = np.array(0.3, dtype)
    lv_vec = rng.standard_normal(9).astype(dtype) * 0.3
    cat_logits = rng.standard_normal((2, 5, 9, 6)).astype(dtype)
    xc = rng.integers(0, 6, (5, 9))
    d = rng.standard_normal((2, 5)).astype(dtype)

    def run(logits, xb, xr, lv_scalar, lv_vec, cat_logits, d):
        out = []
        lp, c = K.bernoulli_forward(logits, xb)
        out += [lp, K.bernoulli_backward(d, c)]
        for lv in (lv_scalar, lv_vec):
            lp, c = K.gaussian_forward(logits, lv, xr)
            out += [lp, K.gaussian_backward(d, c)]
        lp, c = K.categorical_forward(cat_logits, xc)
        out += [lp, K.categorical_backward(d, c)]
        return out

    assert_same(*both(run, logits, xb, xr, lv_scalar, lv_vec, cat_logits, d), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam(dtype, rng):
    theta, g = rng.standard_normal((2, 50)).astype(dtype)
    m = rng.standard_normal(50).astype(dtype) * 0.1
    v = rng.random(50).astype(dtype) * 0.1

    def run(theta, g, m, v):
        adam_update(theta, g, m, v, 3, 1e-3)
        return theta, m, v

    assert_same(*both(run, theta, g, m, v), dtype)


def test_compiled_adam_stays_a_parfor():
    """On one Numba thread too: as a plain loop LLVM left it scalar, 7x slower
    (docs/11-optimisation.md#threads); the pool experiment of issue 26 turned it into one."""
    pytest.importorskip("numba")
    from npvae import optim_numba

    assert optim_numba._adam_kernel.targetoptions.get("parallel")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "categorical"])
def test_whole_model(dtype, likelihood, rng):
    X = {"bernoulli": (rng.random((8, 12)) < 0.5) * 1.0,
         "gaussian": rng.standard_normal((8, 12)),
         "categorical": rng.integers(0, 5, (8, 12))}[likelihood]
    m = npvae.VAE(n_latent=3, hidden_sizes=(7, 5), activation="softplus", likelihood=likelihood,
                  likelihood_params={"gaussian": {"variance": "per_output"},
                                     "categorical": {"n_levels": 5}}.get(likelihood),
                  n_samples=2, dtype=dtype,
                  random_state=0).initialize(12)
    eps = m.draw_noise(8, random_state=1)
    a, b = both(lambda: m.loss_and_grads(X, eps))
    assert_same(a, b, np.dtype(dtype).type)


# the prange kernels switch on at this many elements: compare them with NumPy there too
from npvae.layers.activations_numba import PARALLEL_MIN_ELEMENTS  # noqa: E402

LARGE = (PARALLEL_MIN_ELEMENTS // 100 + 7, 100)          # rows × columns ≥ the threshold


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_parallel_bias_activation(dtype, activation, rng):
    a = rng.standard_normal(LARGE).astype(dtype) * 3
    assert a.size >= PARALLEL_MIN_ELEMENTS
    b = rng.standard_normal(LARGE[1]).astype(dtype)
    dh = rng.standard_normal(LARGE).astype(dtype)

    def run(a, b, dh):
        h, c = K.bias_activation_forward(a, b, activation)
        return h, K.bias_activation_backward(dh, c)

    assert_same(*both(run, a, b, dh), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_bernoulli(dtype, rng):
    logits = (rng.standard_normal((2,) + LARGE) * 4).astype(dtype)          # (S, N, D)
    x = (rng.random(LARGE) < 0.5).astype(dtype)
    dlog_p = rng.standard_normal(logits.shape[:2]).astype(dtype)
    assert logits.size >= PARALLEL_MIN_ELEMENTS

    def run(logits, x, dlog_p):
        lp, c = K.bernoulli_forward(logits, x)
        return lp, K.bernoulli_backward(dlog_p, c)

    assert_same(*both(run, logits, x, dlog_p), dtype)
