"""Demo 4: a plain autoencoder against a VAE, both with a 2-D latent space
(docs/02-reparameterisation.md, docs/03-kl-divergences.md, docs/05-elbo.md).

Same architecture, same data, same optimiser; the only differences are the
KL term and the noise.

* The plain autoencoder is the library's ``VAE`` with the KL term off
  (``beta=0``) *and* its noise set to zero: every training step is
  ``npvae.training.train_step(model, x, eps=0)``.  With ``ε = 0`` the
  reparameterised sample is ``z = μ + σ ⊙ 0 = μ(x)``
  (docs/02-reparameterisation.md#the-reparameterised-sample), so the encoder is
  deterministic and the loss is the reconstruction error ``−log p(x | μ(x))``
  alone; the log-variance head gets no gradient and is
  unused.  (``beta=0`` with the usual noise would instead train a "noisy"
  autoencoder whose variances shrink towards zero but never reach it; zeroing
  the noise is the exact plain autoencoder.)  It is decoded at its code
  ``μ(x)``.
* The VAE is trained on the ELBO (``beta=1``, one noise draw per example).

The figure shows the codes of test images coloured by digit, with the 1- and
2-σ circles of the prior ``N(0, I)``, and images decoded from ``z ~ N(0, I)``
by each decoder.  The KL term pulls the VAE's codes into the prior's region
and fills it, so prior samples decode to digits; the autoencoder's codes sit
wherever the reconstruction put them, so prior samples land in a small or
empty part of its code space.

Run: ``python demos/04_autoencoder_vs_vae.py [--fast] [--out DIR]``.
The figures go to ``runs/demos/04_autoencoder_vs_vae/`` in the repository
(git-ignored) unless ``--out DIR`` is given.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "04_autoencoder_vs_vae"


def train_autoencoder(model, data, epochs, batch_size, learning_rate):
    """Train ``model`` (a VAE with ``beta=0``) with zero noise: a deterministic autoencoder."""
    import time

    from npvae.optim import make_optimizer
    from npvae.training import train_step

    model.initialize(data.n_features)
    C.set_output_bias(model, data)
    opt = make_optimizer("adam", learning_rate)
    rng = model.rng_
    N = len(data.x_train)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(N)
        total = 0.0
        for start in range(0, N, batch_size):
            xb = C.binarize_dynamic(data.x_train[order[start:start + batch_size]], rng)
            eps = np.zeros((1, len(xb), model.n_latent), dtype=np.float32)   # z = μ(x)
            total += train_step(model, xb, eps, optimizer=opt)[0] * len(xb)
        model.history_.append({"epoch": epoch + 1, "train_loss": total / N})
    model.train_seconds_ = time.perf_counter() - t0
    return model


def recon_at_mean(model, x):
    """``log p(x | μ(x))`` per example: the ELBO's reconstruction term with ``ε = 0``."""
    eps = np.zeros((1, len(x), model.n_latent), dtype=np.float32)
    return model.elbo_terms(x, eps)["reconstruction"]


def main(argv=None):
    import npvae

    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        data = C.load_data(args)
        fast = args.fast
        hidden = (64,) if fast else (256,)
        epochs = C.pick(args, data, 30, 6, 60)
        common = dict(n_latent=2, hidden_sizes=hidden, activation="relu", dtype="float32",
                      random_state=args.seed)
        ae = train_autoencoder(npvae.VAE(beta=0.0, **common), data, epochs, 100, 1e-3)
        vae = C.train_model(npvae.VAE(beta=1.0, **common), data, epochs, 100, 1e-3)
        print(f"[{NAME}] trained the autoencoder in {ae.train_seconds_:.1f} s and the VAE in "
              f"{vae.train_seconds_:.1f} s ({epochs} epochs each, "
              f"{data.n_features}-{hidden[0]}-2)")

        n_scatter = min(len(data.x_test), 5000)
        x = data.test_float(n_scatter)
        y = data.y_test[:n_scatter]
        codes = {"autoencoder": ae.transform(x), "VAE": vae.transform(x)}
        rng = np.random.default_rng(args.seed)
        z_prior = rng.standard_normal((64, 2)).astype(np.float32)
        samples = {"autoencoder": ae._decode_means(z_prior), "VAE": vae._decode_means(z_prior)}

        fig = C.new_figure((11, 10.5))
        axes = fig.subplots(2, 2, height_ratios=[1, 1])
        t = np.linspace(0, 2 * np.pi, 200)
        for k, name in enumerate(("autoencoder", "VAE")):
            ax = axes[0, k]
            z = codes[name]
            C.scatter_by_label(ax, z, y, legend=(k == 1))
            for r, ls in ((1, "-"), (2, "--")):
                ax.plot(r * np.cos(t), r * np.sin(t), "k", ls=ls, lw=1.2,
                        label=f"N(0, I): {r} σ")
            ax.plot(z_prior[:, 0], z_prior[:, 1], "kx", ms=5, mew=1.2,
                    label="the 64 prior draws below")
            lo, hi = np.quantile(z, [0.005, 0.995], axis=0)
            pad = 0.1 * (hi - lo)
            ax.set_xlim(min(lo[0] - pad[0], -2.6), max(hi[0] + pad[0], 2.6))
            ax.set_ylim(min(lo[1] - pad[1], -2.6), max(hi[1] + pad[1], 2.6))
            ax.set_aspect("equal", adjustable="box")
            ax.set_xlabel("z₁")
            ax.set_ylabel("z₂")
            what = ("plain autoencoder (β = 0, ε = 0): codes μ(x)" if k == 0
                    else "VAE (β = 1): posterior means μ(x)")
            ax.set_title(f"{what}\n{n_scatter} test images", fontsize="medium")
            ax.grid(True, alpha=0.3)
            if k == 0:
                ax.legend(fontsize="x-small", loc="lower left")
            C.show_images(axes[1, k], samples[name], data.image_shape, 8,
                          f"{name}: 64 draws z ~ N(0, I), decoded (Bernoulli means)")
        fig.suptitle(f"Plain autoencoder against VAE, 2-D latent, {data.label}")
        C.save_figure(fig, args, "autoencoder_vs_vae.png")

        # numbers behind the figure
        pixel_sd = {k: float(np.mean(np.std(v, axis=0))) for k, v in samples.items()}
        inside = {k: float(np.mean(np.sum(v ** 2, axis=1) < 4.0)) for k, v in codes.items()}
        results = C.report(args, {
            "autoencoder: test log p(x|mu(x))": recon_at_mean(ae, x).mean(),
            "VAE: test log p(x|mu(x))": recon_at_mean(vae, x).mean(),
            "VAE: test ELBO": vae.score(x, random_state=args.seed),
            "VAE: test KL": vae.elbo_terms(x, vae.draw_noise(len(x), random_state=0))["kl"].mean(),
            "autoencoder: code sd dim 1": codes["autoencoder"][:, 0].std(),
            "autoencoder: code sd dim 2": codes["autoencoder"][:, 1].std(),
            "VAE: code sd dim 1": codes["VAE"][:, 0].std(),
            "VAE: code sd dim 2": codes["VAE"][:, 1].std(),
            "autoencoder: fraction of codes within 2 sigma of N(0,I)": inside["autoencoder"],
            "VAE: fraction of codes within 2 sigma of N(0,I)": inside["VAE"],
            "autoencoder: prior samples, mean per-pixel sd across samples": pixel_sd["autoencoder"],
            "VAE: prior samples, mean per-pixel sd across samples": pixel_sd["VAE"],
            "autoencoder: train seconds": ae.train_seconds_,
            "VAE: train seconds": vae.train_seconds_,
        }, "test set: log-likelihoods in nats per image")
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
