"""scikit-learn's estimator conventions, without importing scikit-learn.

:class:`EstimatorMixin` gives a model what ``BaseEstimator``, ``TransformerMixin``
and ``ClassNamePrefixFeaturesOutMixin`` give a scikit-learn transformer:
``get_params``/``set_params`` from the constructor's signature, a repr of the
settings that differ from their defaults, ``fit_transform``, ``set_output``,
``get_feature_names_out`` and the estimator tags.  ``check_estimator`` passes
(tests/test_sklearn.py).

Why not inherit from scikit-learn: importing ``sklearn.base`` imports SciPy's
statistics, joblib and (when installed) pandas — about 90 MiB of memory and a
second of start-up for every ``npvae`` command, none of which training needs.
Here scikit-learn is imported only where its own public machinery does the work
(tags, feature-name checks, the global output setting, the ``NotFittedError``
raised), that is when the caller already uses scikit-learn or pandas; nothing
private of scikit-learn's is used, so its upgrades cannot break this module.
"""
from __future__ import annotations

import functools
import inspect
import sys

import numpy as np

from .._exclusive import LOCK


class _NotFittedError(ValueError, AttributeError):
    """scikit-learn's ``NotFittedError`` where scikit-learn cannot be imported."""


_NotFittedError.__name__ = _NotFittedError.__qualname__ = "NotFittedError"


def not_fitted_error(message):
    """scikit-learn's ``NotFittedError`` (a ``ValueError`` and an ``AttributeError``); an
    exception of that name and those bases where scikit-learn cannot be imported."""
    try:
        from sklearn.exceptions import NotFittedError
    except ImportError:
        return _NotFittedError(message)
    return NotFittedError(message)


def _wrap_output(method):
    """``transform``/``fit_transform`` returning a DataFrame when ``set_output`` (or
    scikit-learn's global ``transform_output``) asks for one.  Without scikit-learn
    imported neither can have been set, and the array is returned as it is."""
    @functools.wraps(method)
    def wrapped(self, X, *args, **kwargs):
        out = method(self, X, *args, **kwargs)
        container = _output_container(self)
        if container == "default":
            return out
        names = self.get_feature_names_out()                       # (C,) object
        if container == "pandas":
            import pandas as pd

            index = X.index if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(out, index=index, columns=names)
        import polars as pl

        return pl.DataFrame(out, schema=names.tolist(), orient="row")
    return wrapped


_CONTAINERS = ("default", "pandas", "polars")


def _output_container(estimator):
    """The container ``transform`` returns: the estimator's ``set_output`` choice where
    one was made, else scikit-learn's global ``transform_output`` (public
    ``sklearn.get_config``), else ``"default"``."""
    config = estimator.__dict__.get("_sklearn_output_config", {})
    if "transform" in config:
        return config["transform"]
    if "sklearn" not in sys.modules:
        return "default"
    import sklearn

    container = sklearn.get_config().get("transform_output", "default")
    if container not in _CONTAINERS:
        raise ValueError(f"transform_output must be one of {_CONTAINERS}, got {container!r}")
    return container


class EstimatorMixin:
    """The scikit-learn estimator and transformer protocol (see the module's docstring).

    A subclass takes its settings as keyword arguments of ``__init__`` stored under
    the same names, defines ``_n_features_out`` once fitted, and ``transform``.

    One estimator is not for concurrent use: what changes it (``fit``, ``partial_fit``,
    ``training.train``, ``loss_and_grads``) holds a lock, and a second thread that
    calls any of its methods meanwhile gets a one-line ``RuntimeError`` instead of
    parameters mixed from two fits (:mod:`npvae._exclusive`).  Use one estimator per
    thread (``sklearn.base.clone`` or ``copy.deepcopy``).
    """

    _sklearn_auto_wrap_output_keys = {"transform"}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in ("transform", "fit_transform"):
            if name in cls.__dict__:
                setattr(cls, name, _wrap_output(cls.__dict__[name]))

    # -------------------------------------------------------------- settings
    def _keep_settings(self, settings):
        """Store every ``__init__`` argument unchanged under its own name, scikit-learn's
        rule (``get_params`` reads them back; nothing is checked before ``fit``).
        ``settings``: the ``__init__``'s ``locals()``, taken before anything else."""
        for name, value in settings.items():
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    @classmethod
    def _get_param_names(cls):
        """The constructor's keyword arguments, sorted (scikit-learn's order)."""
        params = inspect.signature(cls.__init__).parameters.values()
        names = [p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD]
        if any(p.kind == p.VAR_POSITIONAL for p in params):
            raise TypeError(f"{cls.__name__}.__init__ may not take *args (scikit-learn's "
                            "convention: every setting a named keyword)")
        return sorted(names)

    def get_params(self, deep=True):
        """The constructor's settings as a dict (``deep`` is accepted for scikit-learn;
        no setting here is itself an estimator)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params):
        """Change settings by name; returns ``self``.  They are validated when next used
        (scikit-learn's convention), never here."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {self!r}. "
                                 f"Valid parameters are: {valid!r}.")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {name: p.default for name, p in
                    inspect.signature(type(self).__init__).parameters.items()}
        changed = []
        for name, value in self.get_params(deep=False).items():
            default = defaults.get(name, inspect.Parameter.empty)
            if not _same(value, default):
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != LOCK}

    def __setstate__(self, state):
        state.pop("_sklearn_version", None)        # written by pickles of earlier versions
        self.__dict__.update(state)

    # ------------------------------------------------------------ transformer
    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, **fit_params).transform(X)``."""
        if y is None:
            return self.fit(X, **fit_params).transform(X)
        return self.fit(X, y, **fit_params).transform(X)

    def set_output(self, *, transform=None):
        """Output container of ``transform`` and ``fit_transform``: ``"default"`` (arrays),
        ``"pandas"`` or ``"polars"``; None leaves it unchanged.  Returns ``self``."""
        if transform is not None:
            if transform not in _CONTAINERS:
                raise ValueError(f"set_output: transform must be one of {_CONTAINERS}, "
                                 f"got {transform!r}")
            self.__dict__.setdefault("_sklearn_output_config", {})["transform"] = transform
        return self

    def get_feature_names_out(self, input_features=None):
        """Names of ``transform``'s columns: the lowercased class name and the column
        index (``vae0``, ``vae1``, …), as scikit-learn's decompositions name theirs.
        ``input_features``, when given, must match the features seen in ``fit``."""
        if not self.__sklearn_is_fitted__():
            raise not_fitted_error(f"This {type(self).__name__} instance is not fitted yet. "
                                   "Call 'fit' with appropriate arguments before using "
                                   "this estimator.")
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)       # (D,)
            seen = getattr(self, "feature_names_in_", None)
            if seen is not None and not np.array_equal(given, seen):
                raise ValueError("input_features is not equal to feature_names_in_")
            if len(given) != self.n_features_in_:
                raise ValueError(f"input_features should have length equal to number of "
                                 f"features ({self.n_features_in_}), got {len(given)}")
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self._n_features_out)], dtype=object)

    def __sklearn_is_fitted__(self):
        """scikit-learn's rule (``check_is_fitted``): an attribute ending in ``_`` is set."""
        return any(k.endswith("_") and not k.startswith("__") for k in vars(self))

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, TargetTags, Tags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(), input_tags=InputTags())


def _same(a, b):
    """Whether a setting equals its default (arrays and NaN included)."""
    if a is b:
        return True
    try:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            return bool(np.array_equal(a, b))
        if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
            return True
        return bool(a == b) and type(a) is type(b)
    except (TypeError, ValueError):
        return False
