"""Observation models ``p(x|z)`` used by the VAEs (MATH §4).

Each class is a stateless description: what the decoder must output, which
extra parameters it learns (stored in the model's ``params_``), how to check
and convert data, and the log-likelihood forward/backward built from the
kernels of :mod:`npvae.kernels.likelihoods`.  To add a likelihood, write its
kernels there and a class here, then register it in :data:`LIKELIHOODS`.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit, softmax

from .kernels import likelihoods as K


class Bernoulli:
    """Bernoulli on logits for binary data (MATH §4).

    ``allow_nonbinary=True`` accepts ``x ∈ [0, 1]``; the result is then *not*
    a normalised likelihood (it is a cross-entropy), and must not be reported
    as a bound on ``log p(x)``.
    """

    name = "bernoulli"

    def __init__(self, allow_nonbinary=False):
        self.allow_nonbinary = allow_nonbinary

    def output_shape(self, n_features):
        return (n_features,)

    def param_shapes(self, n_features):
        return {}

    def init_params(self, params):
        pass

    def check_data(self, X, name="X"):
        if self.allow_nonbinary:
            if X.min() < 0 or X.max() > 1:
                raise ValueError(f"{name} must lie in [0, 1] for the Bernoulli likelihood")
        elif not np.all((X == 0) | (X == 1)):
            bad = X[(X != 0) & (X != 1)].ravel()[:3]
            raise ValueError(
                f"{name} is not binary (found values such as {bad.tolist()}): the Bernoulli "
                "likelihood is defined for x in {{0, 1}}; binarise the data, or pass "
                "allow_nonbinary=True to accept [0, 1] (then not a normalised likelihood)")

    def convert(self, X, dtype):
        return np.asarray(X, dtype=dtype)

    def log_prob_forward(self, out, x, params):
        return K.bernoulli_forward(out, x)

    def log_prob_backward(self, dlog_p, cache):
        return K.bernoulli_backward(dlog_p, cache), {}

    def mean(self, out, params):
        """``E[x|z] = sigmoid(η)``."""
        return expit(out)

    def output_bias(self, X):
        """Logit of the training-set pixel mean (Burda et al. 2016; MATH §1)."""
        p = np.clip(np.mean(X, axis=0, dtype=np.float64), 1e-3, 1 - 1e-3)
        return logit(p)


class Gaussian:
    """Gaussian on real data with mean from the decoder (MATH §4).

    ``variance``: ``"fixed"`` (``log σx² = logvar`` is a hyperparameter),
    ``"scalar"`` (one learned log-variance) or ``"per_output"`` (one per
    dimension ``D``), learned as ``params_["obs_logvar"]`` and started at
    ``logvar``.
    """

    name = "gaussian"
    VARIANCES = ("fixed", "scalar", "per_output")

    def __init__(self, variance="fixed", logvar=0.0):
        if variance not in self.VARIANCES:
            raise ValueError(f"unknown obs_variance {variance!r}; choose one of {self.VARIANCES}")
        self.variance = variance
        self.logvar = float(logvar)

    def output_shape(self, n_features):
        return (n_features,)

    def param_shapes(self, n_features):
        if self.variance == "scalar":
            return {"obs_logvar": ()}
        if self.variance == "per_output":
            return {"obs_logvar": (n_features,)}
        return {}

    def init_params(self, params):
        if "obs_logvar" in params:
            params["obs_logvar"][...] = self.logvar

    def check_data(self, X, name="X"):
        pass

    def convert(self, X, dtype):
        return np.asarray(X, dtype=dtype)

    def _logvar(self, params, dtype):
        return params["obs_logvar"] if "obs_logvar" in params else np.asarray(self.logvar, dtype)

    def log_prob_forward(self, out, x, params):
        return K.gaussian_forward(out, self._logvar(params, out.dtype), x)

    def log_prob_backward(self, dlog_p, cache):
        dmean, dlogvar = K.gaussian_backward(dlog_p, cache)
        return dmean, ({"obs_logvar": dlogvar} if self.variance != "fixed" else {})

    def mean(self, out, params):
        return out.copy()

    def output_bias(self, X):
        return np.mean(X, axis=0, dtype=np.float64)


class Categorical:
    """Categorical over ``V`` intensity levels per dimension (MATH §4), for 8-bit images.

    The decoder outputs ``D · V`` logits per example, read as ``(D, V)``.
    """

    name = "categorical"

    def __init__(self, n_levels=256):
        self.n_levels = int(n_levels)
        if self.n_levels < 2:
            raise ValueError(f"n_levels must be >= 2, got {n_levels}")

    def output_shape(self, n_features):
        return (n_features, self.n_levels)

    def param_shapes(self, n_features):
        return {}

    def init_params(self, params):
        pass

    def check_data(self, X, name="X"):
        if np.any(X != np.round(X)) or X.min() < 0 or X.max() >= self.n_levels:
            raise ValueError(f"{name} must hold integers in [0, {self.n_levels}) for the "
                             f"categorical likelihood over {self.n_levels} levels")

    def convert(self, X, dtype):
        return np.asarray(X).astype(np.intp)

    def log_prob_forward(self, out, x, params):
        return K.categorical_forward(out, x)

    def log_prob_backward(self, dlog_p, cache):
        return K.categorical_backward(dlog_p, cache), {}

    def mean(self, out, params):
        """The expected level ``Σ_v v · softmax(η)_v``, in data units ``[0, V)``."""
        return softmax(out, axis=-1) @ np.arange(self.n_levels, dtype=out.dtype)

    def output_bias(self, X):
        return None


LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": Gaussian, "categorical": Categorical}


def make_likelihood(name, *, obs_variance="fixed", obs_logvar=0.0, n_levels=256,
                    allow_nonbinary=False):
    """Build the likelihood object named by a model's constructor arguments."""
    if name == "bernoulli":
        return Bernoulli(allow_nonbinary=allow_nonbinary)
    if name == "gaussian":
        return Gaussian(variance=obs_variance, logvar=obs_logvar)
    if name == "categorical":
        return Categorical(n_levels=n_levels)
    raise ValueError(f"unknown likelihood {name!r}; choose one of {tuple(LIKELIHOODS)}")
