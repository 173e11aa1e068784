"""Demo 11: the Fisher autoencoder against the VAE (docs/14-fisher-autoencoder.md).

Two models with the same networks — encoder ``q(z|x) = N(μ(x), diag e^{λ(x)})``
and a Gaussian decoder ``p(x|z) = N(g(z), σ² I)`` with the same fixed ``σ²``,
tanh hidden units — trained on the same grey-level images (pixels / 255, not
binarised) with the same budget: epochs, batch size, learning rate, Adam, seed.

* The VAE maximises the ELBO (docs/05-elbo.md).
* The Fisher autoencoder minimises the Fisher divergence between the joints
  ``p(x, z)`` and ``p_data(x) q(z|x)`` (docs/14-fisher-autoencoder.md).

Both are then judged by what neither objective is: the reconstruction error
``‖x − g(μ(x))‖²`` of test images, the importance-sampled negative
log-likelihood ``−log p̂(x)`` under each model's own Gaussian decoder
(``K`` samples from its encoder, docs/06-importance-weighting.md; a density on
``[0, 1]^D`` in nats per image — comparable between the two models because
they share ``σ²``), and samples ``g(z)``, ``z ~ N(0, I)``.  Each model's
training objective is also evaluated on the other (the Fisher loss of the VAE,
the ELBO of the Fisher autoencoder).

Run: ``python demos/11_fisher_autoencoder.py [--fast] [--out DIR]``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "11_fisher_autoencoder"


def grey_levels(data):
    """Train and test images as grey levels in ``[0, 1]`` (the demo data's test set is
    binarised; the Gaussian decoder models grey levels, so the test set is reloaded)."""
    from npvae.data import load_dataset

    ds = load_dataset(data.name, download=False, binarization="none")
    x_train = data.x_train.astype(np.float64) / 255.0
    x_test = ds.x_test[:len(data.x_test)].astype(np.float64) / 255.0
    return x_train, x_test


def fisher_loss_of(model, settings, X, seed):
    """The Fisher loss (docs/14-fisher-autoencoder.md#a-tractable-objective) of any model
    with these networks: its parameters copied into a FisherAutoencoder."""
    import npvae

    probe = npvae.FisherAutoencoder(**settings).initialize(X.shape[1])
    probe.flat_params_[...] = model.flat_params_
    return probe.elbo_terms(X, probe.draw_noise(len(X), random_state=seed))["fisher"].mean()


def main(argv=None):
    import npvae

    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        data = C.load_data(args)
        x_train, x_test = grey_levels(data)
        epochs = C.pick(args, data, 8, 10, 60)
        hidden = (64,) if args.fast else (200,)
        n_latent = 8 if args.fast else 16
        logvar = -4.0                          # σ² = e^{-4} ≈ 0.018, σ ≈ 0.14 grey levels
        n_eval = min(len(x_test), 1000)
        K = 100 if args.fast else 1000
        common = dict(n_latent=n_latent, hidden_sizes=hidden, activation="tanh",
                      batch_size=100, learning_rate=1e-3, epochs=epochs, dtype="float64",
                      random_state=args.seed)
        fae_settings = dict(common, decoder_logvar=logvar)
        models = {
            "VAE": npvae.VAE(likelihood="gaussian",
                             likelihood_params={"variance": "fixed", "logvar": logvar},
                             **common),
            "Fisher AE": npvae.FisherAutoencoder(**fae_settings),
        }
        seconds = {}
        for name, m in models.items():
            import time
            t0 = time.perf_counter()
            m.fit(x_train)
            seconds[name] = time.perf_counter() - t0
        print(f"[{NAME}] trained each model for {epochs} epochs on {len(x_train)} images "
              f"({data.n_features}-{hidden[0]}-{n_latent}, tanh, σ² = e^{logvar:g}): "
              + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))

        x = x_test[:n_eval]
        rec = {k: m.reconstruct(x) for k, m in models.items()}
        mse = {k: ((r - x) ** 2).sum(axis=1).mean() for k, r in rec.items()}
        nll = {k: -m.log_likelihood(x, n_importance=K, random_state=args.seed).mean()
               for k, m in models.items()}
        elbo = {k: m.score(x) for k, m in models.items()}
        fisher = {k: fisher_loss_of(m, fae_settings, x, args.seed) for k, m in models.items()}
        rng = np.random.default_rng(args.seed)
        z = rng.standard_normal((64, n_latent))
        samples = {k: m._decode_means(z) for k, m in models.items()}
        sample_sd = {k: s.std(axis=0).mean() for k, s in samples.items()}
        active = {k: m.active_units(x)[0] for k, m in models.items()}
        kl = {k: m.elbo_terms(x, m.draw_noise(len(x), random_state=args.seed))["kl"].mean()
              for k, m in models.items()}

        fig = C.new_figure((13, 8))
        axes = fig.subplots(2, 3)
        show = x[:32]
        C.show_images(axes[0, 0], show, data.image_shape, 8, "test images")
        for j, k in enumerate(models):
            C.show_images(axes[0, j + 1], rec[k][:32], data.image_shape, 8,
                          f"{k}: reconstructions g(μ(x))\nsum of squared errors "
                          f"{mse[k]:.2f} per image")
            C.show_images(axes[1, j + 1], samples[k], data.image_shape, 8,
                          f"{k}: 64 samples g(z), z ~ N(0, I)\n(the same 64 z; "
                          f"-log p̂(x) = {nll[k]:.1f} nats)")
        ax = axes[1, 0]
        for k, m in models.items():
            ax.plot([h["epoch"] for h in m.history_], [h["train_elbo"] for h in m.history_],
                    "o-", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_ylabel("train ELBO (nats per image)")
        ax.set_title("train ELBO per epoch\n(the VAE's objective; monitored for the Fisher AE)",
                     fontsize="medium")
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.suptitle(f"VAE against Fisher autoencoder, same networks and budget, {data.label} "
                     f"grey levels, Gaussian decoder σ² = e^{logvar:g}")
        C.save_figure(fig, args, "fisher_vs_vae.png")

        results = {}
        for k in models:
            results.update({
                f"{k}: test reconstruction error, sum of squares per image": mse[k],
                f"{k}: test reconstruction error, mean square per pixel": mse[k] / x.shape[1],
                f"{k}: test NLL -log p(x), IS K={K} (nats per image, lower is better)": nll[k],
                f"{k}: test KL(q(z|x) || p(z)) (nats per image)": kl[k],
                f"{k}: test ELBO (nats per image)": elbo[k],
                f"{k}: test Fisher loss (Fisher divergence - const)": fisher[k],
                f"{k}: active latent units": active[k],
                f"{k}: samples, mean per-pixel sd across samples": sample_sd[k],
                f"{k}: train seconds": seconds[k],
            })
        results = C.report(args, results, f"{n_eval} test images, grey levels in [0, 1]")
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
