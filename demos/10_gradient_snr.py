"""Demo 10: the signal-to-noise ratio of the IWAE gradient, standard against STL and DReG
(docs/06-importance-weighting.md#doubly-reparameterised-gradients; Rainforth et al. 2018,
"Tighter variational bounds are not necessarily better"; Tucker et al. 2019).

Part 1: on a partially trained VAE, for ``K`` importance samples, many noise
draws of the gradient of ``−L_K`` on one fixed minibatch; per parameter the
signal-to-noise ratio ``SNR = |mean g| / sd g`` over the draws, and its
median over the encoder's parameters (and over the decoder's, which are the
same for the three estimators).  Rainforth et al. show that the standard
encoder SNR falls like ``1/√K`` while the decoder's rises like ``√K``; DReG's
encoder SNR rises with ``K``; STL's rises too, but STL is biased for ``K > 1``.
A parameter whose true gradient is zero has an SNR estimate near
``√(2/π)/√R`` from ``R`` draws: the dotted floor.  Those rates are asymptotic: they
need ``K`` large against the spread of the weights, where the effective sample size
grows in proportion to ``K``; the third panel shows how many of the ``K`` samples
count, Kish's ``(Σ_k w_k)² / Σ_k w_k²`` of the importance weights.

Part 2: the same VAE architecture trained with IWAE (``K`` fixed) by each
estimator for a few epochs, then the test negative log-likelihood
``−log p̂(x)`` by importance sampling (``model.log_likelihood``).  In full mode
on a subset of MNIST (the sizes are printed); in fast mode on the digits.

Part 3: part 1 for a two-level hierarchical VAE with markov inference, whose
STL and DReG also carry the path through the upper encoder's input
(docs/07-hierarchical-vae.md#sticking-the-landing-with-several-levels).

Run: ``python demos/10_gradient_snr.py [--fast] [--out DIR]``.
"""
from __future__ import annotations

import os
import sys

import numpy as np
from scipy.special import logsumexp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "10_gradient_snr"
ESTIMATORS = ("standard", "stl", "dreg")
LABELS = {"standard": "IWAE (standard)", "stl": "STL", "dreg": "DReG"}
COLOURS = {"standard": "C3", "stl": "C1", "dreg": "C0"}


def flat(grads, names):
    return np.concatenate([grads[n].ravel() for n in names])


def effective_sample_size(log_w):
    """Kish's effective sample size of each column's importance weights,
    ``(Σ_k w_k)² / Σ_k w_k²`` from ``log_w (K, N)``: ``(N,)``, between 1 and K."""
    return np.exp(2 * logsumexp(log_w, axis=0) - logsumexp(2 * log_w, axis=0))


def measure_snr(model, X, Ks, R, seed):
    """Median SNR ``|mean g| / sd g`` over ``R`` noise draws, per ``K`` and estimator,
    over the encoders' parameters and over the rest (decoder, priors); and the
    effective sample size of the ``K`` weights, averaged over the images and draws."""
    names = list(model.layout_.shapes)
    sizes = [int(np.prod(model.layout_.shapes[n])) for n in names]
    enc = np.repeat([n.startswith("enc") for n in names], sizes)
    rng = np.random.default_rng(seed)
    snr = {e: {"encoder": [], "decoder": []} for e in ESTIMATORS}
    ess = []
    for K in Ks:
        draws = {e: np.empty((R, enc.size)) for e in ESTIMATORS}
        ess_draws = np.empty((R, len(X)))                                   # (R, N)
        for r in range(R):
            eps = model.draw_noise(len(X), n_samples=K, random_state=rng)   # shared by the three
            ess_draws[r] = effective_sample_size(model.log_weights(X, eps))
            for e in ESTIMATORS:
                model.set_params(objective="iwae", k=K, gradient_estimator=e)
                draws[e][r] = flat(model.loss_and_grads(X, eps)[1], names)
        for e in ESTIMATORS:
            m, s = np.abs(draws[e].mean(axis=0)), draws[e].std(axis=0, ddof=1)
            ok = s > 0
            snr[e]["encoder"].append(np.median(m[ok & enc] / s[ok & enc]))
            snr[e]["decoder"].append(np.median(m[ok & ~enc] / s[ok & ~enc]))
        ess.append(float(ess_draws.mean()))
    return snr, np.array(ess)


def plot_snr(args, snr, ess, Ks, R, title, filename, generative="decoder"):
    """Encoder SNR against K per estimator (left), the generative side's (middle), the
    effective sample size of the weights (right)."""
    floor = np.sqrt(2 / np.pi) / np.sqrt(R)
    fig = C.new_figure((16.5, 4.6))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for e in ESTIMATORS:
        ax1.plot(Ks, snr[e]["encoder"], "o-", color=COLOURS[e], label=LABELS[e])
    a = snr["standard"]["encoder"][0]
    ax1.plot(Ks, a / np.sqrt(Ks), ":", color="0.4", lw=1, label="∝ 1/√K and ∝ √K from K = 1")
    ax1.plot(Ks, a * np.sqrt(Ks), ":", color="0.4", lw=1)
    ax2.plot(Ks, snr["standard"]["decoder"], "s-", color="C2",
             label="all three estimators (identical)")
    b = snr["standard"]["decoder"][0]
    ax2.plot(Ks, b * np.sqrt(Ks), ":", color="0.4", lw=1, label="∝ √K from K = 1")
    for ax, what in ((ax1, "encoder"), (ax2, generative)):
        ax.axhline(floor, color="k", ls="--", lw=0.8,
                   label=f"floor of a zero-mean gradient, R = {R} draws")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("importance samples K")
        ax.set_ylabel(f"median SNR over {what} parameters")
        ax.set_title(f"{what.capitalize()}: |mean g| / sd g over {R} draws", fontsize="medium")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    ax3.plot(Ks, ess, "o-", color="C4", label="mean over the images and draws")
    ax3.plot(Ks, Ks, ":", color="0.4", lw=1, label="ESS = K (equal weights)")
    ax3.set_xscale("log")
    ax3.set_yscale("log")
    ax3.set_xlabel("importance samples K")
    ax3.set_ylabel("effective sample size (Σw)² / Σw²")
    ax3.set_title("How many of the K samples count", fontsize="medium")
    ax3.grid(True, which="both", alpha=0.3)
    ax3.legend(fontsize="small")
    fig.suptitle(title)
    C.save_figure(fig, args, filename)
    res = {}
    for e in ESTIMATORS:
        for K, v in zip(Ks, snr[e]["encoder"]):
            res[f"snr encoder {e} K={K}"] = v
    for K, v in zip(Ks, snr["standard"]["decoder"]):
        res[f"snr {generative} K={K}"] = v
    res["snr floor"] = floor
    for K, v in zip(Ks, ess):
        res[f"ess K={K}"] = v
    return res


def trained_snr(args, data, model, what, seed):
    """Train ``model`` for a few epochs of the ELBO, then :func:`measure_snr` on a fixed
    batch of 8 images; returns ``(snr, ess, Ks, R)``."""
    epochs = C.pick(args, data, 3, 2, 20)
    C.train_model(model, data, epochs=epochs, batch_size=100, learning_rate=1e-3)
    print(f"[{NAME}] partially trained {what} (ELBO, {epochs} epochs on "
          f"{len(data.x_train)} images, {model.train_seconds_:.1f} s)")
    X = data.train_binary(8, seed=args.seed, dtype=np.float64)             # (8, D) fixed batch
    Ks = (1, 3, 10, 30) if args.fast else (1, 5, 10, 50, 100)
    R = 60 if args.fast else 250
    snr, ess = measure_snr(model, X, Ks, R, seed)
    return snr, ess, np.array(Ks), R


def snr_part(args, data):
    """Median SNR over encoder / decoder parameters against K for each estimator."""
    import npvae

    hidden, Z = ((32,), 4) if args.fast else ((200,), 20)
    model = npvae.VAE(n_latent=Z, hidden_sizes=hidden, dtype="float64", random_state=args.seed)
    snr, ess, Ks, R = trained_snr(args, data, model,
                             f"a {data.n_features}-{hidden[0]}-{Z} VAE", args.seed + 1)
    res = plot_snr(args, snr, ess, Ks, R,
                   f"SNR of the IWAE gradient on a partially trained VAE, 8 {data.label} "
                   "images (npvae book, chapter 6)", "gradient_snr.png")
    return C.report(args, res, "part 1: median SNR against K")


def snr_hierarchical_part(args, data):
    """Part 1 for a two-level hierarchical VAE with markov inference (chapter 7)."""
    import npvae

    hidden, sizes = ((32,), (4, 2)) if args.fast else ((200,), (20, 10))
    model = npvae.HierarchicalVAE(latent_sizes=sizes, hidden_sizes=hidden, inference="markov",
                                  dtype="float64", random_state=args.seed)
    snr, ess, Ks, R = trained_snr(args, data, model, f"a two-level markov VAE, latent {sizes[0]} "
                             f"+ {sizes[1]}", args.seed + 2)
    res = plot_snr(args, snr, ess, Ks, R,
                   f"SNR of the IWAE gradient on a partially trained two-level VAE (markov "
                   f"inference), 8 {data.label} images (npvae book, chapter 7)",
                   "gradient_snr_hierarchical.png", generative="decoder and prior")
    return C.report(args, {f"hvae {k}": v for k, v in res.items()},
                    "part 3: median SNR against K, two-level VAE")


def nll_part(args, data):
    """Train with each estimator (IWAE, K fixed), then the test NLL."""
    import npvae

    fast = args.fast
    hidden, Z = ((32,), 4) if fast else ((200,), 20)
    K = 5 if fast else 10
    epochs = C.pick(args, data, 3, 10, 60)
    n_importance = 200 if fast else 1000
    x_test = data.test_float(n=None if fast else 1000, dtype=np.float32)
    curves, nll, per_image, seconds = {}, {}, {}, {}
    for e in ESTIMATORS:
        model = npvae.VAE(n_latent=Z, hidden_sizes=hidden, objective="iwae", k=K,
                          gradient_estimator=e, dtype="float32", random_state=args.seed)
        C.train_model(model, data, epochs=epochs, batch_size=100, learning_rate=1e-3)
        curves[e] = [h["train_iwae"] for h in model.history_]
        per_image[e] = -model.log_likelihood(x_test, n_importance=n_importance,
                                             random_state=args.seed).astype(np.float64)
        nll[e] = float(per_image[e].mean())
        seconds[e] = model.train_seconds_
        print(f"[{NAME}] {LABELS[e]}: {epochs} epochs in {seconds[e]:.1f} s, "
              f"test NLL {nll[e]:.2f} nats")
    what = (f"{data.n_features}-{hidden[0]}-{Z} VAE, IWAE K = {K}, {epochs} epochs on "
            f"{len(data.x_train)} {data.label} images; NLL on {len(x_test)} test images, "
            f"{n_importance} importance samples")
    print(f"[{NAME}] {what}")
    gap = {}                                       # paired over the same test images
    for e in ESTIMATORS[1:]:
        diff = per_image[e] - per_image["standard"]
        gap[e] = (diff.mean(), diff.std(ddof=1) / np.sqrt(len(diff)))

    fig = C.new_figure((11.5, 4.4))
    ax1, ax2 = fig.subplots(1, 2)
    for e in ESTIMATORS:
        ax1.plot(np.arange(1, epochs + 1), curves[e], color=COLOURS[e], label=LABELS[e])
    ax1.xaxis.get_major_locator().set_params(integer=True)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel(f"training bound L_{K} (nats per image)")
    ax1.set_title("Training IWAE bound", fontsize="medium")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize="small")
    for i, e in enumerate(ESTIMATORS):
        ax2.plot(i, nll[e], "o", ms=9, color=COLOURS[e])
        ax2.annotate(f"{nll[e]:.2f}", (i, nll[e]), xytext=(0, 9), textcoords="offset points",
                     ha="center", fontsize="small")
    lo, hi = min(nll.values()), max(nll.values())
    pad = max(0.3, 0.6 * (hi - lo))
    ax2.set_ylim(lo - pad, hi + pad)
    ax2.set_xlim(-0.6, 2.6)
    ax2.set_xticks(range(3), [LABELS[e] for e in ESTIMATORS])
    ax2.set_ylabel("test NLL −log p̂(x) (nats per image, lower is better)")
    ax2.set_title(f"Test NLL, K = {n_importance} importance samples", fontsize="medium")
    ax2.set_xlabel("minus standard, paired over the test images: " + ", ".join(
        f"{LABELS[e]} {d:+.2f} ± {se:.2f}" for e, (d, se) in gap.items()), fontsize="small")
    ax2.grid(True, axis="y", alpha=0.3)
    fig.suptitle(what, fontsize="medium")
    C.save_figure(fig, args, "test_nll.png")
    res = {f"test NLL {e}": nll[e] for e in ESTIMATORS}
    for e, (d, se) in gap.items():
        res[f"test NLL {e} - standard"] = d
        res[f"test NLL {e} - standard, SE over images"] = se
    res.update({f"train seconds {e}": seconds[e] for e in ESTIMATORS})
    return C.report(args, res, f"part 2: test NLL after training with IWAE K={K}")


def main(argv=None):
    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        data = C.load_data(args, n_train=None if args.fast else 10000)
        results = snr_part(args, data)
        results.update(nll_part(args, data))
        results.update(snr_hierarchical_part(args, data))
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
