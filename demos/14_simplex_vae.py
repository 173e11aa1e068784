"""Demo 13: latents on the simplex: Kumaraswamy stick-breaking (Nalisnick & Smyth 2017)
and Dirichlet codes by implicit reparameterisation (Figurnov, Mohamed & Mnih 2018),
beside a Gaussian VAE of the same size and schedule (docs/19-simplex-latents.md).

Three models with one hidden layer and ``T = K = Z`` latent columns:
``VAE(posterior="diagonal")``, ``VAE(posterior="kumaraswamy")`` with a GEM(α₀ = 5)
prior and ``VAE(posterior="dirichlet")`` with a Dirichlet(α₀ = 1) prior.

* ``sticks.png``: the stick-breaking VAE's posterior mean weights ``E_q[π]`` averaged
  per digit (left), and per digit the number of sticks that hold 95% of each test
  image's expected weight (right): how many sticks a digit uses.
* ``dirichlet.png``: the Dirichlet VAE's posterior mean codes ``α/Σα`` averaged per
  digit (left) and, per component ``k``, the share of test images whose largest
  coordinate is ``k`` (right).
* ``corners.png``: images decoded from points near the simplex's corners: for the
  stick-breaking VAE the first sticks each holding the weight, for the Dirichlet
  VAE the corners ``e_k`` of its most used components.

The printed numbers: each model's test ELBO and importance-sampled ``log p(x)``
(nats, ± s.e.), and how much the stick-breaking KL grows when its series runs to
1,000 terms instead of the model's 10 (the ELBO's optimism from the truncation).

Run: ``python demos/14_simplex_vae.py [--fast] [--out DIR]``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "14_simplex_vae"
KINDS = {"gaussian": ("diagonal", None), "stick-breaking": ("kumaraswamy", {"prior_alpha": 5.0}),
         "dirichlet": ("dirichlet", {"prior_alpha": 1.0})}


def sticks_for(weights, mass=0.95):
    """Per row, the fewest weights (largest first) whose sum reaches ``mass``."""
    w = -np.sort(-weights, axis=-1)
    return (np.cumsum(w, axis=-1) < mass).sum(-1) + 1


def per_digit(values, y):
    return np.stack([values[y == d].mean(0) for d in range(10)])


def heatmap(fig, ax, matrix, title, xlabel):
    im = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_yticks(range(10))
    ax.set_ylabel("digit")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize="small")
    fig.colorbar(im, ax=ax, shrink=0.8)


def main(argv=None):
    import npvae
    from npvae.distributions.stick_breaking import KumaraswamyStickBreaking

    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        data = C.load_data(args)
        Z = C.pick(args, data, 10, 50, 20)
        hidden = C.pick(args, data, (64,), (500,), (128,))
        epochs = C.pick(args, data, 10, 5, 100)
        models = {}
        for label, (posterior, params) in KINDS.items():
            models[label] = npvae.VAE(n_latent=Z, hidden_sizes=hidden, posterior=posterior,
                                      posterior_params=params, dtype="float32",
                                      random_state=args.seed)
            C.train_model(models[label], data, epochs, 100, 1e-3)
            print(f"[{NAME}] {label}: {data.n_features}-{'-'.join(map(str, hidden))}-{Z} in "
                  f"{models[label].train_seconds_:.1f} s, {epochs} epochs")

        x, y = data.test_float(), data.y_test
        sb, dr = models["stick-breaking"], models["dirichlet"]
        pi, code = sb.transform(x), dr.transform(x)                          # (N, Z) each
        used = sticks_for(pi)
        fig = C.new_figure((11, 4))
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
        heatmap(fig, ax1, per_digit(pi, y), f"stick-breaking VAE: mean E_q[π_k] per digit "
                f"({data.label})", "stick k")
        ax2.boxplot([used[y == d] for d in range(10)], positions=range(10))
        ax2.set_xlabel("digit")
        ax2.set_ylabel("sticks holding 95% of E_q[π]")
        ax2.set_title(f"sticks used (all digits: median {np.median(used):.0f} of {Z})",
                      fontsize="small")
        C.save_figure(fig, args, "sticks.png")

        top = code.argmax(-1)
        share = np.stack([np.bincount(top[y == d], minlength=Z) / max(1, (y == d).sum())
                          for d in range(10)])
        fig = C.new_figure((11, 4))
        ax1, ax2 = fig.subplots(1, 2)
        heatmap(fig, ax1, per_digit(code, y), "Dirichlet VAE: mean α_k/Σα per digit", "component k")
        heatmap(fig, ax2, share, "share of a digit's images whose largest coordinate is k",
                "component k")
        C.save_figure(fig, args, "dirichlet.png")

        n_show = min(Z, 10)
        eye = np.eye(Z, dtype=np.float32)
        near = lambda k: 0.9 * eye[k] + 0.1 / Z                              # inside the simplex
        sb_corners = np.stack([near(k) for k in range(n_show)])
        busiest = np.argsort(-np.bincount(top, minlength=Z))[:n_show]
        dr_corners = np.stack([near(k) for k in busiest])
        images = np.concatenate([sb._decode_means(sb_corners), dr._decode_means(dr_corners)])
        fig = C.new_figure((n_show * 0.9 + 1, 3))
        ax = fig.subplots(1, 1)
        C.show_images(ax, images, data.image_shape, n_show)
        ax.set_title(f"top: stick-breaking VAE, weight 0.9 on stick 1..{n_show}; bottom: "
                     f"Dirichlet VAE, 0.9 on its {n_show} most used components\n(the rest "
                     f"spread evenly; {data.label})", fontsize="small")
        C.save_figure(fig, args, "corners.png")

        n_is, n_ll = C.pick(args, data, (50, len(x)), (100, 1000), (1000, len(x)))
        sem = lambda v: v.std(ddof=1) / np.sqrt(len(v))
        results = {}
        for label, m in models.items():
            elbo = m.score_samples(x)
            ll = m.log_likelihood(x[:n_ll], n_importance=n_is, random_state=args.seed)
            results.update({f"{label}: test ELBO": elbo.mean(), f"{label}: test ELBO s.e.":
                            sem(elbo), f"{label}: test log p(x), K={n_is}, first {n_ll} images":
                            ll.mean(), f"{label}: test log p(x) s.e.": sem(ll),
                            f"{label}: train seconds": m.train_seconds_})
        results["stick-breaking: median sticks holding 95%"] = float(np.median(used))
        # the KL series' truncation (docs/19-simplex-latents.md#the-kl-series-and-its-truncation):
        # the model's M = 10 terms against 1,000 on the same posteriors
        pre_ab = sb._encoder_heads(x[:n_ll])[1].astype(np.float64)
        long = KumaraswamyStickBreaking({**sb.posterior_params, "series_terms": 1000})
        gap = long.kl_forward(None, pre_ab)[0] - sb._post.kl_forward(None, pre_ab)[0]
        results[f"stick-breaking: KL(M=1000) - KL(M=10), first {n_ll} images"] = gap.mean()
        results = C.report(args, results, "test set: nats per image")
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
