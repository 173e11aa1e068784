"""The contract of an observation model ``p(x|z)``: :class:`Likelihood`.

A likelihood is a stateless description of how the decoder's output ``out``
parameterises a distribution over the data ``x``.  The models use nothing
else, so a new likelihood is one module in this package (the class and its
forward/backward kernels), one line in the registry
(:data:`npvae.distributions.likelihoods.LIKELIHOODS`) and its tests.  The
mathematics: docs/04-likelihoods.md.

Shapes: decoder outputs carry a leading sample axis, ``out (S, N, *output_shape(D))``;
the data ``x (N, D)`` broadcasts over ``S``; log-likelihoods are ``(S, N)``.
"""
from __future__ import annotations

import abc

import numpy as np


class Likelihood(abc.ABC):
    """What a likelihood must provide.

    Options are the constructor's keyword arguments (kept as attributes of
    the same names); a model is given them as ``likelihood_params``, and
    :meth:`options` returns them, so that a checkpoint can rebuild the object.
    """

    #: the registry name (``VAE(likelihood=name)``)
    name: str = ""

    def options(self) -> dict:
        """The constructor's keyword arguments, as given (JSON-able values)."""
        return {}

    # ------------------------------------------------------------ the decoder
    @abc.abstractmethod
    def output_shape(self, n_features: int) -> tuple:
        """Shape of the decoder's output per example: ``(D,)``, or ``(D, V)``, …"""

    def param_shapes(self, n_features: int) -> dict:
        """Learned parameters of the likelihood itself (name → shape), stored in
        the model's ``params_`` beside the networks' weights."""
        return {}

    def init_params(self, params: dict) -> None:
        """Initial values of :meth:`param_shapes`' parameters, written in place."""

    def output_bias(self, X) -> np.ndarray | None:
        """A starting value for the decoder's output bias from training data, or None."""
        return None

    # --------------------------------------------------------------- the data
    @abc.abstractmethod
    def check_data(self, X, name: str = "X") -> None:
        """Raise ``ValueError`` naming the problem if ``X (N, D)`` is outside the support."""

    def convert(self, X, dtype) -> np.ndarray:
        """``X`` in the form the kernels take (the model's float dtype by default)."""
        return np.asarray(X, dtype=dtype)

    def encoder_input(self, x, dtype) -> np.ndarray:
        """What the encoder reads of the data ``x`` (as :meth:`convert` made it): ``x``
        itself by default, on a scale a network can take."""
        return x

    # ---------------------------------------------------------- the mathematics
    @abc.abstractmethod
    def log_prob_forward(self, out, x, params):
        """``log p(x|z)`` per sample and example: returns ``(log_p (S, N), cache)``."""

    @abc.abstractmethod
    def log_prob_backward(self, dlog_p, cache):
        """Given ``dlog_p (S, N)``, returns ``(dout, {param name: gradient})``:
        ``dout`` shaped like the decoder output, one gradient per learned parameter."""

    @abc.abstractmethod
    def mean(self, out, params) -> np.ndarray:
        """``E[x|z]`` ``(..., D)`` in data units, for samples and reconstructions."""

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({opts})"
