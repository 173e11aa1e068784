"""What the posteriors driven by uniform noise share (docs/15-discrete-latents.md,
docs/19-simplex-latents.md): the Concrete (Gumbel noise), the Kumaraswamy
stick-breaking (inverse CDF) and the Dirichlet (Gamma inverse CDFs) posteriors.

* :class:`UniformNoisePosterior`: noise uniform in the open interval ``(0, 1)``
  (``draw_noise``, the keyed evaluation noise ``u = Φ(ε)``, the values check), the
  ``posterior_params`` read against the class's ``DEFAULTS``, no mean head.
* :func:`number`, :func:`integer`: one option of ``posterior_params``, checked;
  :func:`softplus_forward`: a positive parameter from an encoder head.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import expit, ndtr

from .posteriors import Posterior, posterior_options


def number(params, key, minimum, inclusive):
    """``params[key]`` as a float, finite and above ``minimum`` (or equal, ``inclusive``)."""
    value = params[key]
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
        raise ValueError(f"posterior_params[{key!r}] must be a finite number "
                         f"{'>=' if inclusive else '>'} {minimum}, got {value!r}")
    return float(value)


def integer(params, key, low, high):
    """``params[key]`` as an int in ``[low, high]``."""
    value = params[key]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"posterior_params[{key!r}] must be an integer in [{low}, {high}], "
                         f"got {value!r}")
    return int(value)


def softplus_forward(x, floor):
    """A positive parameter from a head: ``floor + log(1 + eˣ)`` (stable) and its derivative ``σ(x)``."""
    return floor + np.logaddexp(0, x), expit(x)


class UniformNoisePosterior(Posterior):
    """A posterior whose sample is a function of uniforms ``u ∈ (0, 1)``; its encoder has
    one head (no mean head).  Subclasses set ``DEFAULTS``, the options of ``posterior_params``."""

    has_mean = False
    DEFAULTS: dict = {}

    def read_params(self, params):
        """``posterior_params`` over ``DEFAULTS``: a dict of known keys, or None."""
        return posterior_options(self.name, params, self.DEFAULTS)

    def draw_noise(self, rng, shape, dtype):
        """Uniforms in the open interval ``(0, 1)`` (a drawn 0 becomes the dtype's
        smallest normal number)."""
        u = rng.random(shape, dtype=dtype)
        u[u == 0] = np.finfo(dtype).tiny
        return u

    def noise_from_normal(self, eps):
        """``u = Φ(ε)`` (the keyed evaluation noise is standard normal), kept inside ``(0, 1)``."""
        dtype = eps.dtype
        u = ndtr(eps.astype(np.float64))
        return np.clip(u, np.finfo(dtype).tiny, 1 - np.finfo(dtype).epsneg).astype(dtype)

    def check_noise(self, u, name="eps"):
        if not np.all((u > 0) & (u < 1)):
            raise ValueError(f"{name} must hold uniforms strictly inside (0, 1) for "
                             f"posterior={self.name!r}, got values in [{u.min()!r}, {u.max()!r}]")
        return u
