"""Observation models ``p(x|z)`` (docs/04-likelihoods.md).

Each likelihood is one module here: its kernels (a readable NumPy reference,
compiled twins in :mod:`.kernels_numba` where they are on the hot path) and a
class that implements the contract :class:`~.base.Likelihood`.  To add one,
write that module and add a line to :data:`LIKELIHOODS`.
"""
from __future__ import annotations

from .base import Likelihood
from .bernoulli import Bernoulli
from .beta import Beta
from .categorical import Categorical
from .gaussian import Gaussian

#: the registry: ``VAE(likelihood=name, likelihood_params={...})``
LIKELIHOODS = {
    "bernoulli": Bernoulli,
    "gaussian": Gaussian,
    "categorical": Categorical,
    "beta": Beta,
}


def make_likelihood(name, params=None) -> Likelihood:
    """The likelihood registered as ``name``, built with the options ``params`` (a dict)."""
    if not isinstance(name, str) or name not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose one of {tuple(LIKELIHOODS)}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValueError(f"likelihood_params must be a dict of options, got {params!r}")
    try:
        return LIKELIHOODS[name](**params)
    except TypeError as exc:
        raise ValueError(f"likelihood_params {params!r} do not fit the {name} likelihood "
                         f"({exc})") from None


__all__ = ["LIKELIHOODS", "Likelihood", "make_likelihood", "Bernoulli", "Gaussian",
           "Categorical", "Beta"]
