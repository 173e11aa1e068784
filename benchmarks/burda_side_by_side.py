"""Burda et al.'s one-level VAE trained by npvae and by PyTorch, side by side.

    NPVAE_DATA=/path/to/data python -m benchmarks.burda_side_by_side --epochs 100

The same 784-200-200-50 tanh VAE (Bernoulli likelihood, one sample), from the
same initial parameters (npvae's initialisation copied into ``torch.nn.Linear``),
on dynamically binarised MNIST (all 60,000 training images, batch 100), with
the first ``--epochs`` epochs of Burda et al.'s schedule (learning rate
1e-3·10^(−i/7) in stage i of 3^i epochs, Adam ε = 1e-4).  Each framework
draws its own binarisation and noise.  Both trained models are then scored by
one evaluator — npvae's importance-sampled ``log_likelihood`` with K samples,
the PyTorch weights copied back into an npvae model — on the same test images
with the same noise, so the difference of the two NLLs is paired per image.

Prints the wall time of each training run, the two NLLs ± s.e., and the paired
difference ± s.e.; writes ``--out`` (JSON).  Needs PyTorch (optional).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import npvae
from npvae.data import convert_batch, load_dataset
from npvae.training import learning_rate_at, train

from .reference_models import import_torch

#: npvae parameter name -> (torch layer name, is weight)
LAYERS = ("enc_W0", "enc_W1", "enc_mu_W", "enc_logvar_W", "dec_W0", "dec_W1", "dec_out_W")


def make_model(seed, dtype="float32"):
    return npvae.VAE(n_latent=50, hidden_sizes=(200, 200), activation="tanh",
                     likelihood="bernoulli", dtype=dtype, random_state=seed)


def build_torch(torch, params):
    """The same network in PyTorch, initialised from ``params`` (npvae's, ``(In, Out)``)."""
    nn = torch.nn

    class BurdaVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.ModuleDict()
            for name in LAYERS:
                W = params[name]
                layer = nn.Linear(W.shape[0], W.shape[1])
                with torch.no_grad():
                    layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                    layer.bias.copy_(torch.from_numpy(params[name.replace("_W", "_b")]))
                self.lin[name] = layer

        def forward(self, x, eps):
            L = self.lin
            h = torch.tanh(L["enc_W1"](torch.tanh(L["enc_W0"](x))))
            mu, logvar = L["enc_mu_W"](h), L["enc_logvar_W"](h)
            z = mu + torch.exp(0.5 * logvar) * eps
            g = torch.tanh(L["dec_W1"](torch.tanh(L["dec_W0"](z))))
            logits = L["dec_out_W"](g)
            rec = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = 0.5 * torch.sum(mu * mu + torch.exp(logvar) - 1.0 - logvar)
            return (rec + kl) / x.shape[0]

    return BurdaVAE()


def torch_params(module):
    out = {}
    for name, layer in module.lin.items():
        out[name] = layer.weight.detach().numpy().T.copy()
        out[name.replace("_W", "_b")] = layer.bias.detach().numpy().copy()
    return out


def train_torch(torch, params, x_train, epochs, batch_size, seed):
    module = build_torch(torch, params)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-4)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = learning_rate_at(epoch, 1e-3, "burda")
        order = rng.permutation(len(x_train))
        total = 0.0
        for s in range(0, len(x_train), batch_size):
            xb = convert_batch(x_train[order[s:s + batch_size]], "dynamic", "float32", rng)
            eps = rng.standard_normal((xb.shape[0], 50), dtype=np.float32)
            loss = module(torch.from_numpy(xb), torch.from_numpy(eps))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss) * xb.shape[0]
        print(f"torch epoch {epoch + 1}/{epochs}  train ELBO {-total / len(x_train):.3f}  "
              f"{time.perf_counter() - t0:.0f}s", flush=True)
    return module, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--n-test", type=int, default=2000, help="test images scored (10000 = all)")
    ap.add_argument("--k-eval", type=int, default=5000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/burda_side_by_side.json")
    args = ap.parse_args(argv)
    torch = import_torch()
    torch.set_num_threads(args.threads)
    npvae.set_num_threads(args.threads)
    ds = load_dataset("mnist", binarization="dynamic")
    x_test = ds.as_float("test", "float32")[:args.n_test]

    m = make_model(args.seed)
    m.initialize(ds.n_features)
    m._set_output_bias(convert_batch(ds.x_train[:10000], "none", "float64"))
    start = {k: v.copy() for k, v in m.params_.items()}
    t0 = time.perf_counter()
    train(m, ds.x_train, epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3,
          lr_schedule="burda", optimizer_options={"eps": 1e-4}, progress=True,
          batch_transform=lambda xb, rng: convert_batch(xb, "dynamic", "float32", rng))
    npvae_seconds = time.perf_counter() - t0

    module, torch_seconds = train_torch(torch, start, ds.x_train, args.epochs, args.batch_size,
                                        args.seed + 1)
    mt = make_model(args.seed)
    mt.initialize(ds.n_features)
    for k, v in torch_params(module).items():
        mt.params_[k][...] = v

    nll_np = -m.log_likelihood(x_test, n_importance=args.k_eval, random_state=1)
    nll_t = -mt.log_likelihood(x_test, n_importance=args.k_eval, random_state=1)
    se = lambda a: float(a.std(ddof=1) / np.sqrt(len(a)))  # noqa: E731
    diff = nll_np - nll_t
    row = {"epochs": args.epochs, "batch_size": args.batch_size, "threads": args.threads,
           "n_test": len(x_test), "k_eval": args.k_eval,
           "npvae": {"nll": float(nll_np.mean()), "se": se(nll_np), "train_seconds": npvae_seconds},
           "torch": {"nll": float(nll_t.mean()), "se": se(nll_t), "train_seconds": torch_seconds,
                     "version": torch.__version__},
           "npvae_minus_torch": {"nll": float(diff.mean()), "se": se(diff)}}
    print(json.dumps(row, indent=1))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(row, f, indent=1)


if __name__ == "__main__":
    main()
