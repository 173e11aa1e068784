"""Probability distributions with hand-written gradients.

* :mod:`.diagonal_gaussian` (reference) and :mod:`.diagonal_gaussian_numba` (compiled): the
  diagonal Gaussian — reparameterisation, log-densities, closed-form KLs
  (docs/02-reparameterisation.md, docs/03-kl-divergences.md);
* :mod:`.full_gaussian`: the full-covariance Gaussian through its Cholesky factor;
* :mod:`.posteriors`: the :class:`~.posteriors.Posterior` contract and the two
  Gaussian posteriors the models use;
* :mod:`.likelihoods`: the :class:`~.likelihoods.Likelihood` contract and the
  observation models ``p(x|z)`` (docs/04-likelihoods.md);
* :mod:`.samplers` and :mod:`.implicit`: reparameterisable Gumbel,
  Kumaraswamy, Concrete, Gamma and Dirichlet samplers
  (docs/09-reparameterisable-distributions.md), re-exported here.
"""
from .implicit import *  # noqa: F401,F403
from .implicit import __all__ as _implicit_all
from .samplers import *  # noqa: F401,F403
from .samplers import __all__ as _samplers_all

__all__ = list(_samplers_all) + list(_implicit_all)
