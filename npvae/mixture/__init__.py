"""Gaussian mixtures fitted three ways on one ELBO (docs/13-em-and-variance-reduction.md).

* :mod:`.em`: the pure functions: log joint ``log π_c + log N(x; μ_c, Σ_c)``,
  E-step (exact posterior, or the best point mass), M-step in closed form,
  the ELBO for a given ``q`` and ``log p(x)``;
* :mod:`.coordinate_ascent`: :class:`GaussianMixtureEM`, coordinate ascent on the ELBO
  in scikit-learn style, with ``q`` the exact posterior (EM) or restricted to
  point masses (hard / classification EM), recording the ELBO after every step;
* :mod:`.amortised`: an encoder network ``x -> q(c|x)`` trained by gradient
  ascent on the same ELBO (hand-written softmax backward), alternated with the
  closed-form M-step.

Shapes: ``N`` examples, ``D`` data dimension, ``C`` mixture components (the
classes of the discrete latent ``c``), ``H`` hidden width of the encoder.
"""
from .amortised import (AmortisedEncoder, amortised_elbo_backward, amortised_elbo_forward,
                        fit_amortised)
from .em import (Mixture, e_step, gaussian_log_density, log_joint, log_marginal, m_step,
                 mixture_elbo, point_mass_e_step)
from .coordinate_ascent import GaussianMixtureEM

__all__ = ["AmortisedEncoder", "GaussianMixtureEM", "Mixture", "amortised_elbo_backward",
           "amortised_elbo_forward", "e_step", "fit_amortised", "gaussian_log_density",
           "log_joint", "log_marginal", "m_step", "mixture_elbo", "point_mass_e_step"]
