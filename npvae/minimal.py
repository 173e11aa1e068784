"""The whole variational autoencoder on one page, in NumPy alone (docs/05-elbo.md).

Read this page, then see how the library generalises it.  A Bernoulli VAE with
one hidden ReLU layer in the encoder and one in the decoder: its parameters, the
loss (the negative ELBO), the loss's gradient written by hand, Adam, and a
training loop on MNIST (``python -m npvae.minimal``).  It imports NumPy and the
standard library only, and computes what ``npvae.VAE(n_latent=Z,
hidden_sizes=(H,), activation="relu", likelihood="bernoulli")`` computes: the
same parameter names, the same noise shape, the same numbers to round-off
(tests/test_minimal.py holds it to that).

Where the library generalises a step: any stack of layers and activations
(npvae/layers/dense.py), other posteriors and likelihoods (npvae/distributions/),
the ELBO's assembly and the IWAE bound (npvae/objectives.py), the networks and
the models (npvae/models/networks.py, vae.py), Adam and its relatives
(npvae/optim.py), compiled twins of the elementwise kernels (``*_numba.py``).

Shapes: ``N`` batch, ``D`` pixels, ``H`` hidden units, ``Z`` latent dimensions,
``S`` samples of ``z`` per example.  The book's notation: ``dy`` is ∂ℓ/∂y.
"""
import argparse
import gzip
import math
import os
import struct
import sys
import time

import numpy as np


# ---------------------------------------------------------------- parameters
def init_params(n_features, n_hidden=400, n_latent=20, seed=0, x_mean=None):
    """The parameters, named, shaped and drawn as ``npvae.VAE(random_state=seed)``
    draws them (docs/01-dense-layers.md#initialisation): He normal for the two ReLU
    layers, Glorot uniform for the three heads, biases zero.  With ``x_mean (D,)``,
    the probability of each pixel being 1, the decoder's output bias starts at its
    logit, as ``fit`` does (docs/01-dense-layers.md#output-bias-at-the-logit-of-the-data-mean).
    """
    rng = np.random.default_rng(seed)
    D, H, Z = n_features, n_hidden, n_latent

    def he(n_in, n_out):       # N(0, 2/In)                docs/01-dense-layers.md#he-normal
        return rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)

    def glorot(n_in, n_out):   # U(−r, r), r = √(6/(In+Out)) docs/01-dense-layers.md#glorot-uniform
        r = np.sqrt(6.0 / (n_in + n_out))
        return rng.uniform(-r, r, size=(n_in, n_out))

    P = {}                                   # the order of the draws is the library's
    P["enc_W0"], P["enc_b0"] = he(D, H), np.zeros(H)                   # x -> h
    P["enc_mu_W"], P["enc_mu_b"] = glorot(H, Z), np.zeros(Z)           # h -> μ
    P["enc_logvar_W"], P["enc_logvar_b"] = glorot(H, Z), np.zeros(Z)   # h -> λ = log σ²
    P["dec_W0"], P["dec_b0"] = he(Z, H), np.zeros(H)                   # z -> g
    P["dec_out_W"], P["dec_out_b"] = glorot(H, D), np.zeros(D)         # g -> logits η
    if x_mean is not None:
        p = np.clip(x_mean, 1e-3, 1 - 1e-3)
        P["dec_out_b"][...] = np.log(p) - np.log1p(-p)                  # logit(p)
    return P


def sigmoid(a):
    """σ(a) = 1/(1 + e^{−a}) = exp(−log(1 + e^{−a})), with no overflow for any ``a``
    (docs/04-likelihoods.md#stable-softplus)."""
    return np.exp(-np.logaddexp(0.0, -a))


# ------------------------------------------------------ the loss and its gradient
def loss_and_grads(params, x, eps, beta=1.0):
    """The negative β-ELBO averaged over the batch, and its gradient by hand.

    ``ℓ = −(1/N) Σ_n [(1/S) Σ_s log p(x_n|z_ns) − β KL(q(z|x_n) ‖ N(0, I))]``
    (docs/05-elbo.md#the-training-loss).

    Parameters: ``params`` as :func:`init_params` makes them; ``x (N, D)`` binary;
    ``eps (S, N, Z)`` standard normal noise (``npvae.VAE.draw_noise``'s shape);
    ``beta`` the KL's weight.  Returns ``(loss, grads)``, ``grads`` named as ``params``.
    """
    P = params
    S, N, Z = eps.shape
    # ---- forward: the six steps of docs/05-elbo.md#the-backward-pass
    # 1. encoder: a dense ReLU layer, then two heads (docs/01-dense-layers.md#forward-pass)
    a1 = x @ P["enc_W0"] + P["enc_b0"]                  # (N, H)     a = x W + b
    h = np.maximum(a1, 0.0)                             # (N, H)     h = max(a, 0)
    mu = h @ P["enc_mu_W"] + P["enc_mu_b"]              # (N, Z)     μ = h W_μ + b_μ
    logvar = h @ P["enc_logvar_W"] + P["enc_logvar_b"]  # (N, Z)     λ = h W_λ + b_λ
    # 2. reparameterisation (docs/02-reparameterisation.md#the-reparameterised-sample)
    sigma = np.exp(0.5 * logvar)                        # (N, Z)     σ = e^{λ/2}
    z = mu + sigma * eps                                # (S, N, Z)  z = μ + σ ⊙ ε
    # 3. decoder: the S·N samples as rows of one batch (docs/01-dense-layers.md#forward-pass)
    u = z.reshape(S * N, Z)                             # (SN, Z)
    a2 = u @ P["dec_W0"] + P["dec_b0"]                  # (SN, H)    a = u W + b
    g = np.maximum(a2, 0.0)                             # (SN, H)    g = max(a, 0)
    eta = (g @ P["dec_out_W"] + P["dec_out_b"]).reshape(S, N, -1)  # (S, N, D) logits η
    # 4. likelihood (docs/04-likelihoods.md#bernoulli-log-likelihood-on-logits)
    log_px = (x * eta - np.logaddexp(0.0, eta)).sum(axis=-1)  # (S, N) Σ_d x η − log(1 + e^η)
    # 5. KL to the prior (docs/03-kl-divergences.md#kl-to-the-standard-normal)
    var = np.exp(logvar)                                # (N, Z)     σ²
    kl = 0.5 * (mu * mu + var - 1.0 - logvar).sum(axis=-1)  # (N,) ½ Σ_j (μ² + σ² − 1 − λ)
    # 6. loss (docs/05-elbo.md#the-training-loss)
    loss = float(-np.mean(log_px.mean(axis=0) - beta * kl))  # ℓ = −mean_n [mean_s log p − β KL]

    # ---- backward: the same steps in reverse (docs/05-elbo.md#the-whole-pass)
    G = {}
    # 6. seeds (docs/05-elbo.md#seeds-of-the-backward-pass)
    dlog_px = np.full((S, N), -1.0 / (S * N))           # (S, N)     ∂ℓ/∂log p(x|z_s) = −1/(SN)
    dkl = np.full(N, beta / N)                          # (N,)       ∂ℓ/∂KL = β/N
    # 4. likelihood (docs/04-likelihoods.md#bernoulli-gradient)
    deta = dlog_px[..., None] * (x - sigmoid(eta))      # (S, N, D)  dη = d log p ⊙ (x − σ(η))
    deta = deta.reshape(S * N, -1)                      # (SN, D)
    # 3. decoder (docs/05-elbo.md#through-the-decoder-mlp): each layer's backward
    #   (docs/01-dense-layers.md#backward-of-the-affine-map, docs/01-dense-layers.md#relu)
    G["dec_out_W"] = g.T @ deta                         # (H, D)     dW = gᵀ dη
    G["dec_out_b"] = deta.sum(axis=0)                   # (D,)       db = Σ_rows dη
    dg = deta @ P["dec_out_W"].T                        # (SN, H)    dg = dη Wᵀ
    da2 = dg * (g > 0)                                  # (SN, H)    da = dg ⊙ [g > 0]
    G["dec_W0"] = u.T @ da2                             # (Z, H)     dW = uᵀ da
    G["dec_b0"] = da2.sum(axis=0)                       # (H,)       db = Σ_rows da
    dz = (da2 @ P["dec_W0"].T).reshape(S, N, Z)         # (S, N, Z)  dz = da Wᵀ
    # 2 and 5. μ and λ feed both z and the KL: the two adjoints add
    #   (docs/05-elbo.md#through-the-reparameterisation, docs/05-elbo.md#direct-gradient-of-the-kl)
    dmu = dz.sum(axis=0) + dkl[:, None] * mu            # (N, Z)     dμ = Σ_s dz + dKL μ
    dlogvar = ((dz * eps).sum(axis=0) * sigma / 2       # (N, Z)     dλ = Σ_s dz ⊙ ε ⊙ σ/2
               + dkl[:, None] * 0.5 * (var - 1))        #                 + dKL (σ² − 1)/2
    # 1. encoder: the two heads, then the ReLU layer (docs/05-elbo.md#through-the-encoder)
    G["enc_logvar_W"] = h.T @ dlogvar                   # (H, Z)     dW_λ = hᵀ dλ
    G["enc_logvar_b"] = dlogvar.sum(axis=0)             # (Z,)       db_λ = Σ_n dλ
    G["enc_mu_W"] = h.T @ dmu                           # (H, Z)     dW_μ = hᵀ dμ
    G["enc_mu_b"] = dmu.sum(axis=0)                     # (Z,)       db_μ = Σ_n dμ
    dh = dmu @ P["enc_mu_W"].T + dlogvar @ P["enc_logvar_W"].T  # (N, H) dh = dμ W_μᵀ + dλ W_λᵀ
    da1 = dh * (h > 0)                                  # (N, H)     da = dh ⊙ [h > 0]
    G["enc_W0"] = x.T @ da1                             # (D, H)     dW = xᵀ da  (x is data: no dx)
    G["enc_b0"] = da1.sum(axis=0)                       # (H,)       db = Σ_n da
    return loss, {name: G[name] for name in P}


# ---------------------------------------------------------------------- Adam
def adam_state():
    """Adam's state: the step count and the two moments of every parameter."""
    return {"t": 0, "m": {}, "v": {}}


def adam_step(params, grads, state, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step, in place, with the bias corrections folded into the step size
    (docs/11-optimisation.md#the-folded-update; Kingma & Ba 2015), as ``npvae.VAE.fit``
    steps: ``m ← β1 m + (1−β1) g``, ``v ← β2 v + (1−β2) g²``, ``θ ← θ − α_t m/(√v + ε̂)``."""
    state["t"] += 1
    c1, c2 = 1 - beta1 ** state["t"], 1 - beta2 ** state["t"]
    lr_t = learning_rate * math.sqrt(c2) / c1           # α_t = α √(1−β2ᵗ)/(1−β1ᵗ)
    eps_hat = eps * math.sqrt(c2)                       # ε̂ = ε √(1−β2ᵗ)
    for name, g in grads.items():
        m = state["m"].setdefault(name, np.zeros_like(g))
        v = state["v"].setdefault(name, np.zeros_like(g))
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        params[name] -= lr_t * m / (np.sqrt(v) + eps_hat)


# ------------------------------------------------------------------ training
def binarize(pixels, rng):
    """``x ~ Bernoulli(pixel/255)``, fresh each time (docs/12-data.md#dynamic-binarisation):
    ``u`` uniform on {0, …, 254}, ``x = [u < pixel]``."""
    return (rng.integers(0, 255, size=pixels.shape) < pixels).astype(np.float64)


def train(pixels, n_hidden=400, n_latent=20, epochs=10, batch_size=100,
          learning_rate=1e-3, seed=0, log=print):
    """Train on ``pixels (N, D)`` uint8 grey levels, binarised afresh every batch; one
    sample of ``z`` per example.  Returns the parameters; ``log`` gets one line a epoch."""
    rng = np.random.default_rng(seed)
    N, D = pixels.shape
    params = init_params(D, n_hidden, n_latent, seed, x_mean=pixels.mean(axis=0) / 255)
    state = adam_state()
    for epoch in range(1, epochs + 1):
        start_time, total = time.perf_counter(), 0.0
        order = rng.permutation(N)
        for start in range(0, N, batch_size):
            x = binarize(pixels[order[start:start + batch_size]], rng)         # (N', D)
            eps = rng.standard_normal((1, x.shape[0], n_latent))              # (1, N', Z)
            loss, grads = loss_and_grads(params, x, eps)
            if not np.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss} in epoch {epoch}")
            adam_step(params, grads, state, learning_rate)
            total += loss * x.shape[0]
        log(f"epoch {epoch}/{epochs}: train ELBO {-total / N:.2f} nats "
            f"({time.perf_counter() - start_time:.1f} s)")
    return params


def elbo(params, pixels, seed=1, batch_size=1000):
    """Mean one-sample ELBO in nats of ``pixels`` binarised once with ``seed``."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for start in range(0, pixels.shape[0], batch_size):
        x = binarize(pixels[start:start + batch_size], rng)
        eps = rng.standard_normal((1, x.shape[0], params["enc_mu_b"].shape[0]))
        total -= loss_and_grads(params, x, eps)[0] * x.shape[0]
    return total / pixels.shape[0]


# ----------------------------------------------------------------------- MNIST
MNIST_FILES = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")


def find_mnist(data_dir=None):
    """Paths of MNIST's training and test images, where ``npvae.data`` looks: ``data_dir``
    (or its ``mnist/``), ``$NPVAE_DATA/mnist``, ``$NPVAE_CACHE`` or ``~/.cache/npvae``
    ``/mnist``; None when they are not there (this file downloads nothing)."""
    cache = os.environ.get("NPVAE_CACHE") or os.path.expanduser("~/.cache/npvae")
    folders = [data_dir, os.path.join(data_dir, "mnist")] if data_dir else []
    if os.environ.get("NPVAE_DATA"):
        folders.append(os.path.join(os.path.expanduser(os.environ["NPVAE_DATA"]), "mnist"))
    folders.append(os.path.join(cache, "mnist"))
    for folder in folders:
        paths = [os.path.join(folder, name) for name in MNIST_FILES]
        if all(os.path.isfile(p) for p in paths):
            return paths
    return None


def read_idx_images(path):
    """The images of an IDX file (gzip) as ``(N, rows·cols)`` uint8: a big-endian header
    of magic 2051, ``N``, rows, cols, then the pixels in C order."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 16:
        raise ValueError(f"{path}: too short for an IDX image header")
    magic, n, rows, cols = struct.unpack(">4I", data[:16])
    if magic != 2051 or len(data) != 16 + n * rows * cols:
        raise ValueError(f"{path}: not an IDX image file (magic {magic}, {len(data)} bytes "
                         f"for {n}x{rows}x{cols} pixels)")
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, rows * cols)


def main(argv=None):
    """``python -m npvae.minimal``: train on MNIST, then report the test ELBO."""
    parser = argparse.ArgumentParser(prog="python -m npvae.minimal", description=main.__doc__)
    parser.add_argument("--data-dir", help="folder with MNIST's idx .gz files (or mnist/)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=400)
    parser.add_argument("--latent", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in ("epochs", "hidden", "latent", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error("--lr must be a finite number > 0")
    paths = find_mnist(args.data_dir)
    if paths is None:
        print("npvae.minimal: MNIST not found: put train-images-idx3-ubyte.gz and "
              "t10k-images-idx3-ubyte.gz in --data-dir, $NPVAE_DATA/mnist or "
              "~/.cache/npvae/mnist (npvae train downloads them there)", file=sys.stderr)
        return 2
    try:
        train_pixels, test_pixels = (read_idx_images(p) for p in paths)
    except (OSError, EOFError, ValueError) as exc:
        print(f"npvae.minimal: cannot read MNIST: {exc}", file=sys.stderr)
        return 2
    print(f"MNIST from {os.path.dirname(paths[0])}: {train_pixels.shape[0]} training images")
    try:
        params = train(train_pixels, args.hidden, args.latent, args.epochs, args.batch_size,
                       args.lr, args.seed, log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("npvae.minimal: interrupted", file=sys.stderr)
        return 130
    except FloatingPointError as exc:
        print(f"npvae.minimal: {exc}", file=sys.stderr)
        return 1
    print(f"test ELBO {elbo(params, test_pixels):.2f} nats (one sample, one binarisation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
