"""Demo 8: the ELBO three ways on one Gaussian mixture
(docs/13-em-and-variance-reduction.md#em-as-coordinate-ascent).

A 3-component full-covariance Gaussian mixture fitted to overlapping 2-D clusters,
from the same starting ``θ``, by three ascents of the same ELBO
``Σ_c q(c|x) (log p(x, c) − log q(c|x)) = log p(x) − KL(q ‖ p(c|x))``:

* **EM**: the E-step sets ``q`` to the exact posterior, so the bound touches
  ``log p(x; θ)``; the M-step maximises it over ``θ`` in closed form.  Checked
  against scikit-learn's ``GaussianMixture`` from the same start.
* **Point-mass VI (hard EM)**: the same coordinate ascent with ``q(c|x_n)``
  restricted to one component per example: the bound never reaches ``log p(x)``
  (the approximation gap), and the fitted ``θ`` is biased.
* **Amortised**: ``q(c|x) = softmax(MLP_φ(x))``, one network for all examples,
  trained by Adam on the ELBO (hand-written softmax backward), alternated with the
  M-step: the remaining gap is the amortisation gap.  Two encoders: linear logits
  (softmax regression; the exact posterior's logits are quadratic in ``x`` when the
  covariances differ, so it cannot match it) and one tanh layer of 16 units.

Run: ``python demos/08_elbo_three_ways.py [--fast] [--out DIR]``.
"""
from __future__ import annotations

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NAME = "08_elbo_three_ways"

TRUE_MEANS = np.array([[0.0, 0.0], [2.6, 0.8], [0.8, 2.8]])
TRUE_COVS = np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.3, 0.0], [0.0, 1.6]],
                      [[0.6, -0.3], [-0.3, 0.5]]])
TRUE_WEIGHTS = np.array([0.4, 0.4, 0.2])


def make_data(n, rng):
    """``n`` draws of the true mixture, ``(n, 2)``, and their components ``(n,)``."""
    c = rng.choice(3, size=n, p=TRUE_WEIGHTS)
    L = np.linalg.cholesky(TRUE_COVS)                                 # (3, 2, 2)
    x = TRUE_MEANS[c] + np.einsum("nij,nj->ni", L[c], rng.standard_normal((n, 2)))
    return x, c


def ellipse(ax, mean, cov, **kw):
    """The 2-sd ellipse of ``N(mean, cov)``."""
    vals, vecs = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, 100)
    pts = mean + 2 * (vecs @ (np.sqrt(vals)[:, None] * np.array([np.cos(t), np.sin(t)]))).T
    return ax.plot(pts[:, 0], pts[:, 1], **kw)[0]


def fit_all(args, x, rng):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    from npvae.mixture import AmortisedEncoder, GaussianMixtureEM, Mixture, fit_amortised

    n_iter, steps = (15, 10) if args.fast else (80, 25)
    cov = np.cov(x.T, bias=True)
    init = Mixture(np.full(3, 1 / 3), x[rng.choice(len(x), 3, replace=False)],
                   np.broadcast_to(cov, (3, 2, 2)).copy())
    kw = dict(weights_init=init.weights, means_init=init.means, covariances_init=init.covariances)
    em = GaussianMixtureEM(3, max_iter=n_iter, tol=0.0, **kw).fit(x)
    hard = GaussianMixtureEM(3, q_family="point_mass", max_iter=n_iter, tol=0.0, **kw).fit(x)
    amortised = {}
    for label, hidden in (("linear", ()), ("MLP", (16,))):
        enc = AmortisedEncoder(2, 3, hidden_sizes=hidden, random_state=args.seed)
        mix, hist = fit_amortised(x, init, enc, n_iter=n_iter, encoder_steps=steps,
                                  learning_rate=0.02)
        amortised[label] = (mix, hist, enc)
    sk_kw = dict(covariance_type="full", weights_init=init.weights, means_init=init.means,
                 precisions_init=np.linalg.inv(init.covariances), tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk_same = GaussianMixture(3, max_iter=n_iter, **sk_kw).fit(x)      # same iterations
    # both to convergence (change of the mean bound below 1e-12 nats): the fixed point
    sk_kw["tol"] = 1e-12
    sk_conv = GaussianMixture(3, max_iter=300 if args.fast else 3000, **sk_kw).fit(x)
    em_conv = GaussianMixtureEM(3, max_iter=300 if args.fast else 3000, tol=1e-12, **kw).fit(x)
    return em, hard, amortised, sk_same, (sk_conv, em_conv)


def main(argv=None):
    args = C.parse_args(NAME, __doc__, argv, uses_data=False)
    with C.demo_session(args):
        from npvae.mixture import Mixture, log_marginal, mixture_elbo

        rng = np.random.default_rng(args.seed)
        x, labels = make_data(300 if args.fast else 1000, rng)
        em, hard, amortised, sk_same, (sk_conv, em_conv) = fit_all(args, x, rng)
        T = em.n_iter_
        log_p_max = sk_conv.score(x)

        # ---------------------------------------------------------- figure
        fig = C.new_figure((16, 5.2))
        ax1, ax2, ax3 = fig.subplots(1, 3, width_ratios=[1.2, 1.0, 1.0])
        t = np.arange(T)
        traces = {"EM (exact q)": (em.history_, "C0"),
                  "point-mass VI (hard EM)": (hard.history_, "C1"),
                  "amortised, linear encoder": (amortised["linear"][1], "C2"),
                  "amortised, MLP encoder (H = 16)": (amortised["MLP"][1], "C4")}
        t_zoom = min(T, 12)
        for name, (h, col) in traces.items():
            if "elbo_steps" in h:
                steps = len(h["elbo_steps"]) // T
                pos = (t[:, None] + 0.5 * np.arange(1, steps + 1) / steps).ravel()
                ax1.plot(pos, h["elbo_steps"], color=col, lw=0.7, alpha=0.5)
            xs = np.ravel(np.column_stack([t + 0.5, t + 1.0]))              # q-step, M-step
            ys = np.ravel(np.column_stack([h["elbo_e"], h["elbo_m"]]))
            ax1.plot(xs, ys, color=col, lw=1.4, marker="o", ms=3, label=f"{name}: ELBO")
            ax1.plot(t + 0.5, h["log_px"], color=col, ls="none", marker="_", ms=14, mew=2,
                     label="bars: log p(x; θ_t), θ_t the q-step's" if name.startswith("EM")
                     else None)
        ax1.axhline(log_p_max, color="k", ls=":", lw=1,
                    label=f"max log p(x) (scikit-learn, converged) = {log_p_max:.4f}")
        lo = min(h["elbo_e"][1] for h, _ in traces.values())
        ax1.set_xlim(0, t_zoom)
        ax1.set_ylim(lo - 0.01, log_p_max + 0.01)
        ax1.set_xlabel("iteration t  (q-step ends at t + ½, M-step at t + 1)")
        ax1.set_ylabel("mean ELBO and log p(x; θ) (nats per example)")
        ax1.set_title(f"First {t_zoom} iterations: EM's E-step lifts the ELBO onto the bar",
                      fontsize="medium")
        ax1.legend(fontsize="x-small", loc="lower right")
        ax1.grid(True, alpha=0.3)

        for name, (h, col) in traces.items():
            gap = np.maximum(h["log_px"] - h["elbo_e"], 0.0)
            ax2.plot(t + 0.5, gap, color=col, marker="o", ms=2.5, lw=1.2, label=name)
        ax2.set_yscale("symlog", linthresh=1e-4)
        ax2.set_ylim(-1e-5, 1.0)
        ax2.set_xlabel("iteration t")
        ax2.set_ylabel("log p(x; θ_t) − ELBO after the q-step (nats)")
        ax2.set_title(f"The gap, mean KL(q ‖ p(c|x)), over all {T} iterations",
                      fontsize="medium")
        ax2.legend(fontsize="x-small", loc="center right")
        ax2.grid(True, which="both", alpha=0.3)

        post = em.predict_proba(x)                                    # (N, 3)
        rgb = np.array([[0.12, 0.47, 0.71], [0.84, 0.15, 0.16], [0.17, 0.63, 0.17]])
        ax3.scatter(x[:, 0], x[:, 1], c=np.clip(post @ rgb, 0, 1), s=6, alpha=0.6,
                    linewidths=0)
        styles = [("true components", Mixture(TRUE_WEIGHTS, TRUE_MEANS, TRUE_COVS),
                   dict(color="0.4", lw=2.5, alpha=0.45)),
                  ("EM", em.mixture_, dict(color="k", lw=1.3)),
                  ("point-mass VI", hard.mixture_, dict(color="C1", lw=1.3, ls="--")),
                  ("amortised, linear", amortised["linear"][0],
                   dict(color="C2", lw=1.3, ls=":"))]
        for label, mix, st in styles:
            for c in range(3):
                line = ellipse(ax3, mix.means[c], mix.covariances[c], **st)
            line.set_label(label)
        ax3.set_aspect("equal")
        ax3.set_xlabel("x₁")
        ax3.set_ylabel("x₂")
        ax3.set_title("Fitted mixtures (2-sd ellipses); colour: EM's p(c|x)", fontsize="medium")
        ax3.legend(fontsize="x-small", loc="upper right")
        fig.suptitle(f"One Gaussian mixture (C = 3, N = {len(x)}), the same start, three "
                     f"ascents of one ELBO (npvae book, chapter 13)")
        C.save_figure(fig, args, "elbo_three_ways.png")

        res = {
            "iterations": T,
            "EM vs sklearn, same iterations: max |means diff|":
                np.abs(em.means_ - sk_same.means_).max(),
            "EM vs sklearn, same iterations: max |covariances diff|":
                np.abs(em.covariances_ - sk_same.covariances_).max(),
            "EM vs sklearn, same iterations: max |weights diff|":
                np.abs(em.weights_ - sk_same.weights_).max(),
            "EM vs sklearn, both converged: max |means diff|":
                np.abs(em_conv.means_ - sk_conv.means_).max(),
            "EM vs sklearn, both converged: max |covariances diff|":
                np.abs(em_conv.covariances_ - sk_conv.covariances_).max(),
            "EM vs sklearn, both converged: iterations EM": em_conv.n_iter_,
            "EM vs sklearn, both converged: iterations sklearn": sk_conv.n_iter_,
            "max log p(x) (sklearn, converged)": log_p_max,
            "EM: final ELBO (after M-step)": em.history_["elbo_m"][-1],
            "EM: final log p(x)": em.score(x),
            "EM: max |ELBO - log p(x)| after E-steps":
                np.abs(em.history_["elbo_e"] - em.history_["log_px"]).max(),
            "point-mass VI: final ELBO": hard.history_["elbo_m"][-1],
            "point-mass VI: final log p(x)": hard.score(x),
            "point-mass VI: final gap (approximation)":
                hard.score(x) - mixture_elbo(x, np.eye(3)[hard.predict(x)], hard.mixture_).mean(),
            "EM: accuracy vs true components (best label map)": _accuracy(em.predict(x),
                                                                         labels),
        }
        for label, (mix, hist, enc) in amortised.items():
            elbo_enc = mixture_elbo(x, np.exp(enc.log_q(x)), mix).mean()
            lp = log_marginal(x, mix).mean()
            res[f"amortised {label}: final ELBO"] = elbo_enc
            res[f"amortised {label}: final log p(x)"] = lp
            res[f"amortised {label}: amortisation gap"] = lp - elbo_enc
        res = C.report(args, res, "the ELBO three ways (nats per example)")
    return C.check_finite(res)


def _accuracy(pred, labels):
    from itertools import permutations
    return max(np.mean(np.array(p)[pred] == labels) for p in permutations(range(3)))


if __name__ == "__main__":
    C.run_script(main)
