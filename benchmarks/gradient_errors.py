"""Largest finite-difference relative errors per kernel and for whole models (float64).

    python -m benchmarks.gradient_errors [--trials 20]

For each kernel: centred differences of ``Σ out ⊙ dout`` (random ``dout``)
against the hand-written backward, relative error ``‖a − n‖ / (‖a‖ + ‖n‖)``
(npvae.gradcheck), maximised over random inputs and both backends.  For whole
models: the random-direction check of the loss over random architectures.
Prints a table; the tests assert the bound (1e-7), this reports the values.
"""
from __future__ import annotations

import argparse

import numpy as np

import npvae
from npvae.gradcheck import kernel_index

K = kernel_index()
from npvae.gradcheck import check_kernel, directional_derivative, kink_margin, relative_error
from npvae.layers.activations import ACTIVATIONS


def kernel_error(forward, backward, inputs, wrt, rng):
    return max(check_kernel(forward, backward, inputs, wrt, rng).values())


def kernel_cases(rng):
    def away(a):
        return a + 0.1 * np.sign(a)

    cases = {}
    for act in ACTIVATIONS:
        cases[f"bias+{act}"] = (lambda a, b, act=act: K.bias_activation_forward(a, b, act),
                                K.bias_activation_backward,
                                [away(rng.standard_normal((6, 5)) * 2), rng.standard_normal(5) * 0.01],
                                {0: 0, 1: 1})
    x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    cases["dense(tanh)"] = (lambda x, W, b: K.dense_forward(x, W, b, "tanh"), K.dense_backward,
                            [x, W, b], {0: 0, 1: 1, 2: 2})
    mu, lv = rng.standard_normal((2, 6, 3))
    eps = rng.standard_normal((3, 6, 3))
    cases["reparameterize"] = (lambda m, l: K.reparameterize_forward(m, l, eps),
                               K.reparameterize_backward, [mu.copy(), lv.copy()], {0: 0, 1: 1})
    cases["kl_standard_normal"] = (K.kl_standard_normal_forward, K.kl_standard_normal_backward,
                                   [mu.copy(), lv.copy()], {0: 0, 1: 1})
    cases["kl_diagonal"] = (K.kl_diagonal_forward, K.kl_diagonal_backward,
                            list(rng.standard_normal((4, 6, 3))), {0: 0, 1: 1, 2: 2, 3: 3})
    cases["log_q"] = (lambda l: K.log_q_forward(l, eps), lambda d, c: (K.log_q_backward(d, c),),
                      [lv.copy()], {0: 0})
    cases["log_normal"] = (K.log_normal_forward, K.log_normal_backward,
                           [rng.standard_normal((3, 6, 3)), mu.copy(), lv.copy()],
                           {0: 0, 1: 1, 2: 2})
    logits = rng.standard_normal((2, 4, 7)) * 3
    xb = (rng.random((4, 7)) < 0.5).astype(float)
    cases["bernoulli"] = (lambda l: K.bernoulli_forward(l, xb),
                          lambda d, c: (K.bernoulli_backward(d, c),), [logits], {0: 0})
    xr = rng.standard_normal((4, 7))
    cases["gaussian"] = (lambda m, v: K.gaussian_forward(m, v, xr), K.gaussian_backward,
                         [rng.standard_normal((2, 4, 7)), rng.standard_normal(7) * 0.5],
                         {0: 0, 1: 1})
    xc = rng.integers(0, 6, (4, 7))
    cases["categorical"] = (lambda l: K.categorical_forward(l, xc),
                            lambda d, c: (K.categorical_backward(d, c),),
                            [rng.standard_normal((2, 4, 7, 6))], {0: 0})
    return cases


def model_error(rng, objective, likelihood, kind="vae"):
    """Random-direction relative error of one randomly drawn model (float64)."""
    depth = int(rng.integers(0, 4))
    D = int(rng.integers(1, 11))
    common = dict(activation=str(rng.choice(ACTIVATIONS)), likelihood=likelihood,
                  likelihood_params={"gaussian": {"variance": "per_output"},
                                     "categorical": {"n_levels": 4}}.get(likelihood),
                  n_samples=int(rng.integers(1, 5)), objective=objective,
                  k=int(rng.integers(1, 9)),
                  beta=float(rng.uniform(0.01, 4)) if objective == "elbo" else 1.0,
                  random_state=int(rng.integers(1 << 30)))
    widths = (int(rng.integers(1, 65)),) * depth
    if kind.startswith("hvae"):
        L = int(rng.integers(1, 5))
        m = npvae.HierarchicalVAE(latent_sizes=tuple(int(z) for z in rng.integers(1, 7, L)),
                                  hidden_sizes=tuple(int(w) for w in rng.integers(1, 17, 1)),
                                  inference=kind.split("-")[1], **common)
    else:
        m = npvae.VAE(n_latent=int(rng.integers(1, 17)), hidden_sizes=widths,
                      posterior="full" if kind == "vae-full" else "diagonal", **common)
    m.initialize(D)
    N = int(rng.integers(1, 6))
    X = {"bernoulli": (rng.random((N, D)) < 0.4) * 1.0, "gaussian": rng.standard_normal((N, D)),
         "categorical": rng.integers(0, 4, (N, D))}[likelihood]
    eps = m.draw_noise(N, random_state=int(rng.integers(1 << 30)))
    start = m.flat_params_.copy()
    for _ in range(50):   # a point clear of ReLU kinks (see npvae.gradcheck.kink_margin)
        for name, p in m.params_.items():
            if "_b" in name:
                p += rng.normal(0, 0.1, p.shape)
        if kink_margin(lambda: m.loss_and_grads(X, eps)) > 1e-3:
            break
        m.flat_params_[...] = start
    _, grads = m.loss_and_grads(X, eps)
    g = np.concatenate([grads[k].ravel() for k in m.params_])
    v = rng.standard_normal(g.size)
    v /= np.linalg.norm(v)
    num = directional_derivative(lambda: m.loss_and_grads(X, eps)[0], m.flat_params_, v, h=1e-5)
    return relative_error(g @ v, num)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=20)
    args = ap.parse_args(argv)
    print(f"{'kernel':<24} {'max relative error':>20}   (float64, {args.trials} trials x 2 backends)")
    for name in kernel_cases(np.random.default_rng(0)):
        worst = 0.0
        for trial in range(args.trials):
            for be in ("numpy", "numba"):
                with npvae.use_backend(be):
                    f, b, inputs, wrt = kernel_cases(np.random.default_rng(trial))[name]
                    worst = max(worst, kernel_error(f, b, inputs, wrt,
                                                    np.random.default_rng(trial + 1000)))
        print(f"{name:<24} {worst:>20.2e}")
    print(f"\n{'whole model (random direction)':<40} {'max relative error':>20}")
    for kind in ("vae", "vae-full", "hvae-independent", "hvae-markov"):
        for objective in ("elbo", "iwae"):
            for lik in ("bernoulli", "gaussian", "categorical"):
                rng = np.random.default_rng(7)
                errs = [model_error(rng, objective, lik, kind) for _ in range(args.trials)]
                print(f"{kind + ' ' + objective + ' ' + lik:<40} {max(errs):>20.2e}"
                      f"   (median {np.median(errs):.1e})")


if __name__ == "__main__":
    main()
