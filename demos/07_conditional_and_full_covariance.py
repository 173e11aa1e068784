"""Demo 7: a conditional VAE generating every digit on demand
(docs/08-conditional-vae.md), and the correlations of a full-covariance
posterior (docs/03-kl-divergences.md#the-full-covariance-posterior).

Part 1 (needs ``npvae.ConditionalVAE``; skipped with a message otherwise):
a conditional VAE, ``q(z|x, c)``, ``p(x|z, c)``, ``p(z|c) = N(0, I)``, the
one-hot label ``c`` concatenated to the encoder's and the decoder's inputs
(docs/08-conditional-vae.md#the-label-as-an-extra-input-block).
``conditional_samples.png`` has one row per digit and one column per latent
draw: every row decodes the *same* ten ``z ~ N(0, I)`` with its own
label, so a column shows one "style" (slant, thickness) written as every digit;
the label carries the class, ``z`` the rest.  The latent is kept small
(``Z = 4``) so that the class has to come from the label: with ``Z = 8`` and
the same 5 epochs some columns let ``z`` override the label (ELBO-argmax
accuracy 87% against 91% with ``Z = 4``, MNIST).  As a check that the label is
used, each test image is classified by the label that gives it the highest
ELBO (a lower bound on ``log p(x|c)``).

Part 2: a VAE with a full-covariance Gaussian posterior
``q(z|x) = N(μ(x), L Lᵀ)`` and a 2-D latent (``VAE(posterior="full")``,
docs/03-kl-divergences.md#parameterisation-by-a-cholesky-factor).
``full_covariance.png`` draws the posterior means of test images
coloured by digit and, for a few of them, the 1- and 2-σ ellipses of
``Σ = L Lᵀ`` from ``encode_cholesky``: a diagonal posterior could only draw
axis-aligned ellipses; here each is tilted by the correlation
``ρ = Σ_12 / √(Σ_11 Σ_22)`` the encoder predicts for that image.  The
ellipses are small next to the spread of the means, so the middle panel
enlarges a few of them; the right panel is the histogram of ``ρ`` over the
test set.

Run: ``python demos/07_conditional_and_full_covariance.py [--fast] [--out DIR]``.
The figures go to ``runs/demos/07_conditional_and_full_covariance/`` in the repository
(git-ignored) unless ``--out DIR`` is given.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "07_conditional_and_full_covariance"


# ------------------------------------------------------------- part 1
def conditional_part(args, data):
    import npvae

    if not hasattr(npvae, "ConditionalVAE"):
        print(f"[{NAME}] SKIPPED part 1: this npvae has no ConditionalVAE "
              "(npvae.ConditionalVAE is missing); the full-covariance part still runs")
        return {}
    fast = args.fast
    classes = np.unique(data.y_train)
    model = npvae.ConditionalVAE(n_latent=4, hidden_sizes=(64,) if fast else (256,),
                                 dtype="float32", random_state=args.seed,
                                 classes=[int(c) for c in classes])
    epochs = C.pick(args, data, 25, 5, 50)
    import time
    t0 = time.perf_counter()
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=100,
              learning_rate=1e-3, batch_transform=C.binarize_dynamic)
    seconds = time.perf_counter() - t0
    print(f"[{NAME}] trained a ConditionalVAE (Z={model.n_latent}) in {seconds:.1f} s "
          f"({epochs} epochs)")

    n_cols = 10
    rows = [model.sample(n_cols, int(c), random_state=args.seed) for c in classes]  # same z
    fig = C.new_figure((7.2, 7.6))
    ax = fig.add_subplot()
    C.show_images(ax, np.concatenate(rows), data.image_shape, n_cols)
    H, W = data.image_shape
    ax.set_yticks(np.arange(len(classes)) * (H + 1) + H / 2, [str(c) for c in classes])
    ax.set_ylabel("label c given to the decoder")
    ax.set_xticks(np.arange(n_cols) * (W + 1) + W / 2, [str(j + 1) for j in range(n_cols)])
    ax.set_xlabel("latent draw z ~ N(0, I), the same in every row")
    fig.suptitle(f"Conditional VAE (Z = {model.n_latent}): every digit on demand, {data.label}")
    C.save_figure(fig, args, "conditional_samples.png")

    n_eval = min(len(data.x_test), 300 if fast else 1000)
    x = data.test_float(n_eval)
    y = data.y_test[:n_eval]
    elbo = np.stack([model.score_samples(x, np.full(n_eval, c), random_state=args.seed)
                     for c in classes])                                   # (C, n)
    predicted = classes[np.argmax(elbo, axis=0)]
    true_idx = np.searchsorted(classes, y)
    margin = elbo[true_idx, np.arange(n_eval)] - np.max(
        np.where(np.arange(len(classes))[:, None] == true_idx, -np.inf, elbo), axis=0)
    return C.report(args, {
        "cvae: test ELBO with the true label (bound on log p(x|c))":
            elbo[true_idx, np.arange(n_eval)].mean(),
        "cvae: accuracy of argmax_c ELBO(x, c)": np.mean(predicted == y),
        "cvae: median ELBO margin of the true label over the best other, nats": np.median(margin),
        "cvae: train seconds": seconds,
    }, f"part 1: conditional VAE, first {n_eval} test images")


# ------------------------------------------------------------- part 2
def ellipse_points(mean, L, n_sd, n=100):
    t = np.linspace(0, 2 * np.pi, n)
    return mean[:, None] + n_sd * (L @ np.stack([np.cos(t), np.sin(t)]))    # (2, n)


def full_covariance_part(args, data):
    import npvae

    fast = args.fast
    model = npvae.VAE(n_latent=2, hidden_sizes=(64,) if fast else (256,), posterior="full",
                      dtype="float32", random_state=args.seed)
    epochs = C.pick(args, data, 25, 5, 50)
    C.train_model(model, data, epochs)
    print(f"[{NAME}] trained a full-covariance 2-D VAE in {model.train_seconds_:.1f} s "
          f"({epochs} epochs)")
    n_scatter = min(len(data.x_test), 5000)
    x = data.test_float(n_scatter)
    y = data.y_test[:n_scatter]
    mu, L = model.encode_cholesky(x)
    mu, L = mu.astype(np.float64), L.astype(np.float64)
    Sigma = L @ np.transpose(L, (0, 2, 1))                                     # (N, 2, 2)
    sd = np.sqrt(np.stack([Sigma[:, 0, 0], Sigma[:, 1, 1]], axis=1))
    rho = Sigma[:, 0, 1] / (sd[:, 0] * sd[:, 1])

    rng = np.random.default_rng(args.seed)
    # a few test points: one per digit, away from the edges of the cloud
    centre = np.median(mu, axis=0)
    r = np.linalg.norm(mu - centre, axis=1)
    pick = []
    for digit in np.unique(y):
        cand = np.flatnonzero((y == digit) & (r < np.quantile(r, 0.8)))
        if len(cand):
            pick.append(int(rng.choice(cand)))
    pick = np.array(pick)

    colours = np.array(C.digit_colours())
    fig = C.new_figure((15, 5.4))
    ax1, ax2, ax3 = fig.subplots(1, 3, width_ratios=[1.25, 1, 0.8])
    C.scatter_by_label(ax1, mu, y, alpha=0.35, legend=False)
    for i in pick:
        for n_sd, ls in ((1, "-"), (2, "--")):
            e = ellipse_points(mu[i], L[i], n_sd)
            ax1.plot(e[0], e[1], color="k", lw=1.0, ls=ls)
        ax1.plot(*mu[i], "o", color=colours[y[i] % 10], mec="k", ms=5)
    ax1.set_aspect("equal", adjustable="box")
    ax1.set_xlabel("μ₁")
    ax1.set_ylabel("μ₂")
    ax1.set_title(f"posterior means of {n_scatter} test images; 1σ (solid) and 2σ (dashed)\n"
                  f"ellipses of Σ = L Lᵀ for {len(pick)} of them (black)", fontsize="medium")
    ax1.grid(True, alpha=0.3)
    from matplotlib.lines import Line2D
    ax1.legend(handles=[Line2D([], [], ls="", marker="o", ms=5, color=colours[k], label=str(k))
                        for k in np.unique(y)], title="digit", fontsize="x-small", ncols=2,
               loc="best")

    # enlarged: each picked posterior drawn around its own mean, scaled to a common frame
    n_pick = len(pick)
    n_c = int(np.ceil(np.sqrt(n_pick)))
    spacing = 5.0
    for k, i in enumerate(pick):
        ox, oy = spacing * (k % n_c), -1.25 * spacing * (k // n_c)
        scale = 1.0 / max(sd[i].max(), 1e-12)           # 1 marginal sd -> 1 unit of the frame
        for n_sd, ls in ((1, "-"), (2, "--")):
            e = ellipse_points(np.zeros(2), L[i] * scale, n_sd)
            ax2.plot(ox + e[0], oy + e[1], color=colours[y[i] % 10], lw=1.5, ls=ls)
        ax2.text(ox, oy - 2.35, f"digit {y[i]}: ρ = {rho[i]:+.2f}\nσ = ({sd[i, 0]:.3f}, "
                 f"{sd[i, 1]:.3f})", ha="center", va="top", fontsize="x-small")
        ax2.plot(ox, oy, "k+", ms=6)
    ax2.set_aspect("equal")
    ax2.set_xlim(-spacing / 2, spacing * (n_c - 0.5))
    ax2.set_ylim(-1.25 * spacing * (np.ceil(n_pick / n_c) - 1) - 3.6, spacing / 2)
    ax2.set_axis_off()
    ax2.set_title("the same ellipses enlarged, each scaled by its\nlargest marginal sd "
                  "(axes keep their ratio)", fontsize="medium")

    ax3.hist(rho, bins=40, range=(-1, 1), color="0.5")
    ax3.axvline(0, color="k", lw=0.8)
    ax3.set_xlabel("posterior correlation ρ")
    ax3.set_ylabel("test images")
    ax3.set_title(f"ρ over the test set: mean |ρ| = {np.abs(rho).mean():.2f}", fontsize="medium")
    fig.suptitle(f"Full-covariance posterior q(z|x) = N(μ, L Lᵀ), 2-D latent, {data.label} "
                 "(npvae book, chapter 3)")
    C.save_figure(fig, args, "full_covariance.png")

    elbo = model.score(x, random_state=args.seed)
    return C.report(args, {
        "full: test ELBO": elbo,
        "full: mean |rho|": np.abs(rho).mean(),
        "full: fraction |rho| > 0.5": np.mean(np.abs(rho) > 0.5),
        "full: fraction rho < 0": np.mean(rho < 0),
        "full: fraction rho < -0.5": np.mean(rho < -0.5),
        "full: median posterior sd (dim 1)": np.median(sd[:, 0]),
        "full: median posterior sd (dim 2)": np.median(sd[:, 1]),
        "full: sd of the means (dim 1)": mu[:, 0].std(),
        "full: sd of the means (dim 2)": mu[:, 1].std(),
        "full: active units (of 2)": model.active_units(x)[0],
        "full: train seconds": model.train_seconds_,
    }, f"part 2: full-covariance posterior, {n_scatter} test images")


def main(argv=None):
    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        data = C.load_data(args)
        results = conditional_part(args, data)
        results.update(full_covariance_part(args, data))
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
