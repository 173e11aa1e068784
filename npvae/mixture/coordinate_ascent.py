"""EM as coordinate ascent on the ELBO, in scikit-learn style
(docs/13-em-and-variance-reduction.md#em-as-coordinate-ascent).

Each iteration is an E-step (maximise the ELBO over ``q`` in its family) then an
M-step (maximise it over ``θ``); both steps can only raise the ELBO.  With
``q_family="exact"`` this is EM, and the ELBO after each E-step equals
``log p(x; θ)``; with ``q_family="point_mass"`` (hard, or classification, EM) ``q``
is restricted to one component per example and a gap remains.
"""
from __future__ import annotations

import numpy as np

from .em import Mixture, check_mixture, e_step, log_marginal, m_step, mixture_elbo, \
    point_mass_e_step

Q_FAMILIES = ("exact", "point_mass")


class GaussianMixtureEM:
    """A full-covariance Gaussian mixture fitted by coordinate ascent on the ELBO.

    Parameters
    ----------
    n_components : C.
    q_family : ``"exact"`` (EM) or ``"point_mass"`` (hard EM).
    max_iter, tol : stop after ``max_iter`` iterations, or when the mean ELBO after
        an M-step rose by less than ``tol`` nats per example.
    reg_covar : added to the diagonal of every covariance (as scikit-learn's
        ``GaussianMixture``; the same default).
    weights_init (C,), means_init (C, D), covariances_init (C, D, D) : the
        starting ``θ``; missing parts default to uniform weights, ``C`` distinct
        examples drawn with ``random_state``, and the data covariance.

    Attributes after ``fit``: ``weights_``, ``means_``, ``covariances_``,
    ``n_iter_``, ``converged_``, ``history_`` (lists, one entry per iteration:
    ``elbo_e`` after the E-step, ``elbo_m`` after the M-step, ``log_px`` at the
    ``θ`` the E-step saw; all means over the examples, in nats).
    """

    def __init__(self, n_components=3, q_family="exact", max_iter=100, tol=1e-6,
                 reg_covar=1e-6, weights_init=None, means_init=None, covariances_init=None,
                 random_state=None):
        self.n_components = n_components
        self.q_family = q_family
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.weights_init = weights_init
        self.means_init = means_init
        self.covariances_init = covariances_init
        self.random_state = random_state

    def _initial_mixture(self, x):
        C, (N, D) = self.n_components, x.shape
        rng = np.random.default_rng(self.random_state)
        w = np.full(C, 1.0 / C) if self.weights_init is None else self.weights_init
        mu = x[rng.choice(N, C, replace=False)] if self.means_init is None else self.means_init
        if self.covariances_init is None:
            cov = np.cov(x.T, bias=True).reshape(D, D) + self.reg_covar * np.eye(D)
            cov = np.broadcast_to(cov, (C, D, D)).copy()
        else:
            cov = self.covariances_init
        return check_mixture(x, Mixture(w, mu, cov))

    def fit(self, X, y=None):
        if self.q_family not in Q_FAMILIES:
            raise ValueError(f"q_family must be one of {Q_FAMILIES}, got {self.q_family!r}")
        if not (isinstance(self.n_components, (int, np.integer)) and self.n_components >= 1):
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")
        if self.max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")
        x, mixture = self._initial_mixture(np.asarray(X, dtype=np.float64))
        if x.shape[0] < self.n_components:
            raise ValueError(f"{x.shape[0]} examples cannot fit {self.n_components} components")
        history = {"elbo_e": [], "elbo_m": [], "log_px": []}
        self.converged_ = False
        for it in range(1, self.max_iter + 1):
            if self.q_family == "exact":
                q, log_px = e_step(x, mixture)                        # (N, C), (N,)
            else:
                q, log_px = point_mass_e_step(x, mixture), log_marginal(x, mixture)
            history["log_px"].append(log_px.mean())
            history["elbo_e"].append(mixture_elbo(x, q, mixture).mean())
            mixture = m_step(x, q, self.reg_covar)
            history["elbo_m"].append(mixture_elbo(x, q, mixture).mean())
            if it > 1 and abs(history["elbo_m"][-1] - history["elbo_m"][-2]) < self.tol:
                self.converged_ = True
                break
        self.weights_, self.means_, self.covariances_ = mixture
        self.n_iter_ = it
        self.history_ = {k: np.array(v) for k, v in history.items()}
        return self

    @property
    def mixture_(self):
        return Mixture(self.weights_, self.means_, self.covariances_)

    def _check(self, X):
        if not hasattr(self, "weights_"):
            raise ValueError("this GaussianMixtureEM is not fitted yet; call fit(X) first")
        return check_mixture(X, self.mixture_)[0]

    def predict_proba(self, X):
        """``p(c|x)`` under the fitted mixture, ``(N, C)``."""
        return e_step(self._check(X), self.mixture_)[0]

    def predict(self, X):
        return np.argmax(self.predict_proba(X), axis=1)

    def score_samples(self, X):
        """``log p(x_n)``, ``(N,)``."""
        return log_marginal(self._check(X), self.mixture_)

    def score(self, X, y=None):
        """Mean ``log p(x)`` per example (nats), as scikit-learn's ``GaussianMixture.score``."""
        return float(self.score_samples(X).mean())
