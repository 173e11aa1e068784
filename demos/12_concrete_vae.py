"""Demo 12: categorical latents through the Concrete / Gumbel-softmax relaxation
(docs/15-discrete-latents.md; Jang, Gu & Poole 2017).

A VAE with ``M`` categorical variables of ``K = 10`` classes
(``VAE(posterior="concrete")``), trained on the relaxed objective with the
temperature annealed ``τ_e = max(0.5, exp(−r e))``, scored with hard one-hot codes.

* ``switching.png``: test images encoded to their most probable code, then one
  categorical variable (the one whose argmax clusters the digits best) switched
  through its ``K`` classes and decoded: each column is one class of that
  variable, the other ``M − 1`` variables unchanged.
* ``clustering.png``: the unsupervised clustering accuracy of each variable's
  posterior ``argmax`` (classes matched to digits one to one by the Hungarian
  algorithm, ``scipy.optimize.linear_sum_assignment``; chance is about 0.1).

The printed numbers: the test ELBO with hard samples and the importance-sampled
``log p(x)`` of the discrete model (docs/15-discrete-latents.md#evaluation), in
nats, beside Jang et al.'s negative ELBO for their 20 × 10 categorical VAE.

Run: ``python demos/12_concrete_vae.py [--fast] [--out DIR]``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "12_concrete_vae"


def clustering_accuracy(classes, labels, K):
    """Accuracy of ``classes`` as a clustering of ``labels`` under the best one-to-one
    matching of classes to labels (Hungarian algorithm)."""
    from scipy.optimize import linear_sum_assignment

    n_labels = int(labels.max()) + 1
    counts = np.zeros((K, max(K, n_labels)))
    np.add.at(counts, (classes, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    return counts[rows, cols].sum() / len(labels)


def main(argv=None):
    import npvae

    args = C.parse_args(NAME, __doc__, argv)
    with C.demo_session(args):
        data = C.load_data(args)
        K = 10
        M = C.pick(args, data, 4, 20, 8)
        hidden = C.pick(args, data, (64,), (512, 256), (128,))
        epochs = C.pick(args, data, 10, 5, 100)
        rate = C.pick(args, data, 0.3, 0.3, 0.03)
        model = npvae.VAE(n_latent=M, hidden_sizes=hidden, posterior="concrete", dtype="float32",
                          posterior_params={"n_categories": K, "temperature": 1.0,
                                            "anneal_rate": rate, "min_temperature": 0.5},
                          random_state=args.seed)
        C.train_model(model, data, epochs, 100, 1e-3)
        tau = model._post.temperature_at(model.n_iter_)
        print(f"[{NAME}] trained {data.n_features}-{'-'.join(map(str, hidden))}-({M}x{K}) in "
              f"{model.train_seconds_:.1f} s, {epochs} epochs, final temperature {tau:.3f}")

        x, y = data.test_float(), data.y_test
        pi = model.transform(x).reshape(len(x), M, K)
        classes = pi.argmax(-1)                                             # (N, M)
        acc = np.array([clustering_accuracy(classes[:, m], y, K) for m in range(M)])
        best = int(acc.argmax())

        # switching the best variable through its classes, the rest at the argmax code
        rows = [int(np.flatnonzero(y == d)[0]) for d in range(10) if np.any(y == d)][:8]
        codes = np.eye(K, dtype=np.float32)[classes[rows]]                  # (R, M, K)
        grid = np.repeat(codes[:, None], K, axis=1)                         # (R, K, M, K)
        grid[:, :, best] = np.eye(K, dtype=np.float32)
        images = model._decode_means(grid.reshape(-1, M * K))
        fig = C.new_figure((K * 0.9 + 1.2, len(rows) * 0.9 + 1.2))
        ax = fig.subplots(1, 1)
        C.show_images(ax, np.concatenate([np.concatenate([x[r:r + 1], images[i * K:(i + 1) * K]])
                                          for i, r in enumerate(rows)]), data.image_shape, K + 1)
        ax.set_title(f"left: a test image; then its argmax code with variable {best + 1} of {M} "
                     f"set to class 1..{K}\n({data.label}; that variable's clustering accuracy "
                     f"{acc[best]:.2f})", fontsize="small")
        C.save_figure(fig, args, "switching.png")

        fig = C.new_figure((7, 3.5))
        ax = fig.subplots(1, 1)
        ax.bar(np.arange(1, M + 1), acc, color="C0")
        ax.axhline(0.1, color="k", ls="--", lw=1, label="chance (10 digits)")
        ax.set_xlabel("categorical variable m")
        ax.set_ylabel("clustering accuracy of argmax π_m")
        ax.set_title(f"unsupervised clustering of {len(x)} test digits by each variable "
                     f"({data.label})", fontsize="medium")
        ax.legend(fontsize="small")
        C.save_figure(fig, args, "clustering.png")

        elbo = model.score_samples(x)
        n_is, n_ll = C.pick(args, data, (50, len(x)), (100, 1000), (1000, len(x)))
        ll = model.log_likelihood(x[:n_ll], n_importance=n_is, random_state=args.seed)
        sem = lambda v: v.std(ddof=1) / np.sqrt(len(v))
        results = C.report(args, {
            "test ELBO (hard one-hot codes)": elbo.mean(),
            "test ELBO s.e.": sem(elbo),
            f"test log p(x), K={n_is} importance samples, first {n_ll} images": ll.mean(),
            "test log p(x) s.e.": sem(ll),
            "Jang et al. 2017 negative ELBO, 20x10 categorical (their table 2)": 105.0,
            "final temperature": tau,
            "best variable clustering accuracy": acc[best],
            "mean variable clustering accuracy": acc.mean(),
            "train seconds": model.train_seconds_,
        }, "test set: nats per image")
    return C.check_finite(results)


if __name__ == "__main__":
    C.run_script(main)
