"""Reproducible random split of examples into a training and a held-out part.

Used for validation splits and for the fixed test splits of data sets that
have no official one.
"""

from __future__ import annotations

import math

import numpy as np

from .binarize import _as_generator


def train_validation_split(x: np.ndarray, y: np.ndarray | None, validation_size,
                           random_state=0):
    """Random split of examples into training and validation parts.

    Parameters
    ----------
    x : numpy.ndarray
        (N, D) data.
    y : numpy.ndarray or None
        (N,) labels.
    validation_size : int or float
        Number of validation examples, or a fraction in (0, 1) (rounded up).
    random_state : numpy.random.Generator or int
        The split is reproducible for a fixed seed.

    Returns
    -------
    tuple
        ``(x_train, y_train, x_valid, y_valid)``; each part keeps the original
        order of its examples. The ``y`` parts are None when ``y`` is None.
    """
    n = len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"x has {n} rows but y has {len(y)}")
    n_valid = _split_count(validation_size, n)
    order = _as_generator(random_state).permutation(n)  # (N,)
    valid, train = np.sort(order[:n_valid]), np.sort(order[n_valid:])
    pick = (lambda a, i: None if a is None else a[i])
    return x[train], pick(y, train), x[valid], pick(y, valid)


def _split_count(size, n: int) -> int:
    if isinstance(size, (bool, np.bool_)):
        raise TypeError("validation_size must be an int or a float, not bool")
    if isinstance(size, (float, np.floating)):
        if not 0.0 <= size < 1.0:
            raise ValueError(f"a fractional validation_size must be in [0, 1), not {size}")
        count = math.ceil(size * n)
    elif isinstance(size, (int, np.integer)):
        count = int(size)
    else:
        raise TypeError(f"validation_size must be an int or a float, not {type(size).__name__}")
    if not 0 <= count < n:
        raise ValueError(f"validation_size {size} leaves no training data out of {n} examples")
    return count
