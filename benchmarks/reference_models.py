"""The benchmarked models written in PyTorch (eager) and in JAX (one jitted step).

Both frameworks are optional: :func:`import_torch` and :func:`import_jax`
raise :class:`FrameworkUnavailable` ("skipped: torch not installed") when a
framework is absent, and nothing here imports either at module import time
(the npvae benchmark worker imports this module for the shapes only).

Models (float32 or float64, ReLU hidden layers, Bernoulli likelihood on
logits, one sample ``S = 1``, loss = negative ELBO averaged over the batch
and summed over pixels, every KL in closed form):

``vae`` (docs/01-dense-layers.md to docs/05-elbo.md)
    encoder ``784-400-(20 μ, 20 log σ²)``, ``z = μ + σ ε``, decoder
    ``20-400-784``.  The same network as ``npvae.VAE(n_latent=20,
    hidden_sizes=(400,), activation="relu", likelihood="bernoulli")``.

``hvae`` (docs/07-hierarchical-vae.md#independent-levels-on-a-deterministic-path,
"independent" inference)
    bottom-up deterministic path ``h1 = relu(x W + b)`` (784→400),
    ``h2 = relu(h1 W + b)`` (400→200); heads ``q(z1|x)`` from ``h1`` (20) and
    ``q(z2|x)`` from ``h2`` (10); ``p(z2) = N(0, I)``; ``p(z1|z2)`` by an MLP
    10→200→(20 μ, 20 log σ²); ``p(x|z1)`` by the decoder 20→400→784.
    Loss ``= [BCE(x, logits) + KL(q(z1|x) ‖ p(z1|z2)) + KL(q(z2|x) ‖ N(0, I))] / N``.

Initialisation is done once in NumPy (:func:`init_params`): He normal
``N(0, 2/In)`` for the ReLU layers, Glorot uniform for the Gaussian heads and
the output layer, zero biases (docs/01-dense-layers.md#initialisation).  Weights
are stored ``(In, Out)`` (``h = x W + b``); the PyTorch model copies them
transposed into ``nn.Linear``.  The noise ``ε`` is an argument of every loss, one ``(N, Z_l)``
array per stochastic level, so the three implementations compute the same
number from the same inputs (:func:`params_from_npvae` maps an npvae model's
parameters for that check).
"""
from __future__ import annotations

import dataclasses

import numpy as np

#: Adam hyperparameters shared by every implementation (docs/11-optimisation.md#adam)
ADAM = {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}


class FrameworkUnavailable(RuntimeError):
    """The optional framework is not installed; the message says 'skipped: …'."""


# ----------------------------------------------------------------- the specs
@dataclasses.dataclass(frozen=True)
class Layer:
    """One dense layer ``(In, Out)``: ``relu`` hidden or linear head; ``reads_data``
    marks a first layer whose input is the data (its backward needs no ``dx``)."""

    name: str
    n_in: int
    n_out: int
    relu: bool
    reads_data: bool = False


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A benchmarked architecture: its layers and its latent sizes (bottom first)."""

    name: str
    n_features: int
    layers: tuple
    latent_sizes: tuple

    def layer(self, name):
        return next(layer for layer in self.layers if layer.name == name)


def vae_spec(n_features=784, n_latent=20, hidden=400):
    """The 784-400-20 VAE: one hidden layer each way as in Kingma & Welling (2014),
    here 400 ReLU units and 20 latent dimensions, the network ``npvae train`` trains."""
    D, H, Z = n_features, hidden, n_latent
    return ModelSpec("vae", D, (
        Layer("enc0", D, H, relu=True, reads_data=True),
        Layer("enc_mu", H, Z, relu=False),
        Layer("enc_logvar", H, Z, relu=False),
        Layer("dec0", Z, H, relu=True),
        Layer("dec_out", H, D, relu=False),
    ), (Z,))


def hvae_spec(n_features=784, latent_sizes=(20, 10), hidden=(400, 200)):
    """The two-level hierarchical VAE with independent inference
    (docs/07-hierarchical-vae.md#independent-levels-on-a-deterministic-path)."""
    D, (Z1, Z2), (H1, H2) = n_features, latent_sizes, hidden
    return ModelSpec("hvae", D, (
        Layer("enc0", D, H1, relu=True, reads_data=True),   # h1 = f1(x)
        Layer("enc1", H1, H2, relu=True),                   # h2 = f2(h1)
        Layer("q1_mu", H1, Z1, relu=False),                 # q(z1|x) from h1
        Layer("q1_logvar", H1, Z1, relu=False),
        Layer("q2_mu", H2, Z2, relu=False),                 # q(z2|x) from h2
        Layer("q2_logvar", H2, Z2, relu=False),
        Layer("prior1_h", Z2, H2, relu=True),               # p(z1|z2)
        Layer("prior1_mu", H2, Z1, relu=False),
        Layer("prior1_logvar", H2, Z1, relu=False),
        Layer("dec0", Z1, H1, relu=True),                   # p(x|z1)
        Layer("dec_out", H1, D, relu=False),
    ), (Z1, Z2))


SPECS = {"vae": vae_spec, "hvae": hvae_spec}


def get_spec(name):
    """The :class:`ModelSpec` called ``name`` (``"vae"`` or ``"hvae"``)."""
    if name not in SPECS:
        raise ValueError(f"unknown model {name!r}; choose one of {tuple(SPECS)}")
    return SPECS[name]()


# ------------------------------------------------------- NumPy-side helpers
def init_params(spec, seed=0, dtype="float32"):
    """``{layer: (W (In, Out), b (Out,))}``: He normal for ReLU layers, Glorot
    uniform for the heads and the output layer, zero biases
    (docs/01-dense-layers.md#initialisation)."""
    rng = np.random.default_rng(seed)
    params = {}
    for layer in spec.layers:
        if layer.relu:
            W = rng.standard_normal((layer.n_in, layer.n_out)) * np.sqrt(2.0 / layer.n_in)
        else:
            r = np.sqrt(6.0 / (layer.n_in + layer.n_out))
            W = rng.uniform(-r, r, size=(layer.n_in, layer.n_out))
        params[layer.name] = (W.astype(dtype), np.zeros(layer.n_out, dtype))
    return params


def draw_noise(spec, batch, rng, dtype="float32"):
    """Standard normal noise: a list of ``(batch, Z_l)`` arrays, one per level."""
    return [rng.standard_normal((batch, z)).astype(dtype) for z in spec.latent_sizes]


#: npvae parameter names of each layer: ``npvae.VAE`` for :func:`vae_spec`,
#: ``npvae.HierarchicalVAE(latent_sizes=(20, 10), hidden_sizes=((400,), (200,)))``
#: for :func:`hvae_spec`
NPVAE_NAMES = {
    "vae": {"enc0": ("enc_W0", "enc_b0"), "enc_mu": ("enc_mu_W", "enc_mu_b"),
            "enc_logvar": ("enc_logvar_W", "enc_logvar_b"),
            "dec0": ("dec_W0", "dec_b0"), "dec_out": ("dec_out_W", "dec_out_b")},
    "hvae": {"enc0": ("enc1_W0", "enc1_b0"), "enc1": ("enc2_W0", "enc2_b0"),
             "q1_mu": ("enc1_mu_W", "enc1_mu_b"), "q1_logvar": ("enc1_logvar_W", "enc1_logvar_b"),
             "q2_mu": ("enc2_mu_W", "enc2_mu_b"), "q2_logvar": ("enc2_logvar_W", "enc2_logvar_b"),
             "prior1_h": ("prior1_W0", "prior1_b0"), "prior1_mu": ("prior1_mu_W", "prior1_mu_b"),
             "prior1_logvar": ("prior1_logvar_W", "prior1_logvar_b"),
             "dec0": ("dec_W0", "dec_b0"), "dec_out": ("dec_out_W", "dec_out_b")},
}


def params_from_npvae(model, spec):
    """An npvae model's parameters as this module's ``{layer: (W, b)}`` for ``spec``.

    Raises ``KeyError``/``ValueError`` when the model's names or shapes do not
    match ``spec`` (the caller then falls back to :func:`init_params`).
    """
    P = model.params_
    out = {}
    for layer in spec.layers:
        w, b = NPVAE_NAMES[spec.name][layer.name]
        if P[w].shape != (layer.n_in, layer.n_out):
            raise ValueError(f"{w} has shape {P[w].shape}, {spec.name} expects "
                             f"{(layer.n_in, layer.n_out)}")
        out[layer.name] = (P[w].copy(), P[b].copy())
    return out


# ------------------------------------------------------------------- PyTorch
def import_torch():
    """``torch``, or :class:`FrameworkUnavailable` when it is not installed."""
    try:
        import torch
    except ImportError as exc:
        raise FrameworkUnavailable(f"skipped: torch not installed ({exc})") from None
    return torch


def build_torch(spec, params, dtype="float32", learning_rate=ADAM["learning_rate"]):
    """The model as a ``torch.nn.Module`` with ``torch.optim.Adam``, and its step.

    Returns ``(module, optimizer, step)`` where ``step(x, noise)`` runs
    ``zero_grad``, the loss, ``backward`` and ``optimizer.step()`` and returns
    the loss tensor; ``module(x, noise)`` is the loss alone.
    """
    torch = import_torch()
    nn, F = torch.nn, torch.nn.functional
    tdtype = {"float32": torch.float32, "float64": torch.float64}[str(np.dtype(dtype))]

    class ReferenceModel(nn.Module):
        """``spec``'s layers as ``nn.Linear``; ``forward`` is the loss."""

        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleDict()
            for layer in spec.layers:
                lin = nn.Linear(layer.n_in, layer.n_out, dtype=tdtype)
                W, b = params[layer.name]
                with torch.no_grad():
                    lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                    lin.bias.copy_(torch.from_numpy(b))
                self.layers[layer.name] = lin

        def forward(self, x, noise):
            L = self.layers
            N = x.shape[0]
            if spec.name == "vae":
                (eps,) = noise
                h = F.relu(L["enc0"](x))
                mu, logvar = L["enc_mu"](h), L["enc_logvar"](h)
                z = mu + torch.exp(0.5 * logvar) * eps
                logits = L["dec_out"](F.relu(L["dec0"](z)))
                kl = 0.5 * torch.sum(mu * mu + torch.exp(logvar) - 1 - logvar)
            else:
                eps1, eps2 = noise
                h1 = F.relu(L["enc0"](x))
                h2 = F.relu(L["enc1"](h1))
                mu1, lv1 = L["q1_mu"](h1), L["q1_logvar"](h1)
                mu2, lv2 = L["q2_mu"](h2), L["q2_logvar"](h2)
                z1 = mu1 + torch.exp(0.5 * lv1) * eps1
                z2 = mu2 + torch.exp(0.5 * lv2) * eps2
                g = F.relu(L["prior1_h"](z2))
                mup, lvp = L["prior1_mu"](g), L["prior1_logvar"](g)
                logits = L["dec_out"](F.relu(L["dec0"](z1)))
                kl2 = 0.5 * torch.sum(mu2 * mu2 + torch.exp(lv2) - 1 - lv2)
                diff = mu1 - mup
                kl1 = 0.5 * torch.sum(lvp - lv1 + (torch.exp(lv1) + diff * diff)
                                      * torch.exp(-lvp) - 1)
                kl = kl1 + kl2
            bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            return (bce + kl) / N

    module = ReferenceModel()
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate,
                                 betas=(ADAM["beta1"], ADAM["beta2"]), eps=ADAM["eps"])

    def step(x, noise):
        optimizer.zero_grad(set_to_none=True)
        loss = module(x, noise)
        loss.backward()
        optimizer.step()
        return loss

    return module, optimizer, step


# ----------------------------------------------------------------------- JAX
def import_jax():
    """``(jax, jax.numpy)``, or :class:`FrameworkUnavailable` when JAX is not installed."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise FrameworkUnavailable(f"skipped: jax not installed ({exc})") from None
    return jax, jnp


def jax_loss_fn(spec):
    """``loss(params, x, noise)`` in ``jax.numpy`` for ``spec`` (params ``{layer: (W, b)}``)."""
    _, jnp = import_jax()

    def lin(p, x):
        W, b = p
        return x @ W + b

    def relu(a):
        return jnp.maximum(a, 0)

    def bce_sum(logits, x):
        # −log p(x|z) summed, stable form of docs/04-likelihoods.md#stable-softplus
        return jnp.sum(jnp.maximum(logits, 0) - x * logits + jnp.log1p(jnp.exp(-jnp.abs(logits))))

    def vae_loss(P, x, noise):
        (eps,) = noise
        h = relu(lin(P["enc0"], x))
        mu, logvar = lin(P["enc_mu"], h), lin(P["enc_logvar"], h)
        z = mu + jnp.exp(0.5 * logvar) * eps
        logits = lin(P["dec_out"], relu(lin(P["dec0"], z)))
        kl = 0.5 * jnp.sum(mu * mu + jnp.exp(logvar) - 1 - logvar)
        return (bce_sum(logits, x) + kl) / x.shape[0]

    def hvae_loss(P, x, noise):
        eps1, eps2 = noise
        h1 = relu(lin(P["enc0"], x))
        h2 = relu(lin(P["enc1"], h1))
        mu1, lv1 = lin(P["q1_mu"], h1), lin(P["q1_logvar"], h1)
        mu2, lv2 = lin(P["q2_mu"], h2), lin(P["q2_logvar"], h2)
        z1 = mu1 + jnp.exp(0.5 * lv1) * eps1
        z2 = mu2 + jnp.exp(0.5 * lv2) * eps2
        g = relu(lin(P["prior1_h"], z2))
        mup, lvp = lin(P["prior1_mu"], g), lin(P["prior1_logvar"], g)
        logits = lin(P["dec_out"], relu(lin(P["dec0"], z1)))
        kl2 = 0.5 * jnp.sum(mu2 * mu2 + jnp.exp(lv2) - 1 - lv2)
        diff = mu1 - mup
        kl1 = 0.5 * jnp.sum(lvp - lv1 + (jnp.exp(lv1) + diff * diff) * jnp.exp(-lvp) - 1)
        return (bce_sum(logits, x) + kl1 + kl2) / x.shape[0]

    return vae_loss if spec.name == "vae" else hvae_loss


def build_jax(spec, params, dtype="float32", learning_rate=ADAM["learning_rate"]):
    """The whole training step under one ``jax.jit``: loss, ``value_and_grad``
    and a hand-written Adam update (docs/11-optimisation.md#adam) in ``jax.numpy``.

    Returns ``(state, step)``: ``state = (params, (m, v, t))`` on the device and
    ``step(state, x, noise) -> (state, loss)``.  The state's buffers are
    donated, so each step updates them in place.  With ``float64`` the caller
    must have enabled ``jax_enable_x64`` before creating any array.
    """
    jax, jnp = import_jax()
    loss_fn = jax_loss_fn(spec)
    b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]
    tree = jax.tree_util

    def step(state, x, noise):
        P, (m, v, t) = state
        loss, g = jax.value_and_grad(loss_fn)(P, x, noise)
        t = t + 1
        m = tree.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
        v = tree.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t          # t has the parameters' dtype
        P = tree.tree_map(lambda p_, m_, v_: p_ - learning_rate * (m_ / c1)
                          / (jnp.sqrt(v_ / c2) + eps), P, m, v)
        return (P, (m, v, t)), loss

    P = {name: (jnp.asarray(W, dtype), jnp.asarray(b, dtype)) for name, (W, b) in params.items()}
    zeros = tree.tree_map(jnp.zeros_like, P)
    state = (P, (zeros, tree.tree_map(jnp.zeros_like, P), jnp.zeros((), dtype)))
    return state, jax.jit(step, donate_argnums=(0,))


# ------------------------------------------------------------- step FLOPs
def step_gemms(layers, batch):
    """The matrix products of one training step, ``[(label, (M, K, N)), ...]``.

    ``layers`` are ``(name, In, Out, reads_data)`` tuples.  Per layer
    (docs/01-dense-layers.md#forward-pass,
    docs/01-dense-layers.md#backward-of-the-affine-map): forward ``x W``
    ``(batch, In) @ (In, Out)``, ``dW = xᵀ da`` ``(In, batch) @ (batch, Out)``
    and, unless the layer reads the data, ``dx = da Wᵀ`` ``(batch, Out) @ (Out, In)``.
    """
    out = []
    for name, n_in, n_out, reads_data in layers:
        out.append((f"{name} fwd", (batch, n_in, n_out)))
        out.append((f"{name} dW", (n_in, batch, n_out)))
        if not reads_data:
            out.append((f"{name} dx", (batch, n_out, n_in)))
    return out


def spec_layers(spec):
    """``spec``'s layers as the tuples :func:`step_gemms` takes."""
    return [(layer.name, layer.n_in, layer.n_out, layer.reads_data) for layer in spec.layers]


def step_flops(layers, batch=1):
    """``Σ 2·M·K·N`` over :func:`step_gemms` (the VAE: 3.28 MFLOP per example)."""
    return sum(2 * M * K * N for _, (M, K, N) in step_gemms(layers, batch))
