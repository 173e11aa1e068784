"""Self-describing checkpoints: one ``.npz`` read with ``allow_pickle=False``.

Contents: format version, model class and constructor parameters (JSON),
the flat parameter vector with its layout, optimiser name and state arrays,
the noise generator's state, epoch count, training history and free-form
run metadata (JSON).  Written atomically: a temporary file in the same folder,
flushed to disk, then renamed over the target.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def _json_array(obj):
    return np.array(json.dumps(obj, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} in a checkpoint")


#: model classes by name; every subclass of ``npvae.models.base.BaseVAE``
#: registers itself when it is defined, so this module never imports the models
MODELS = {}


def register_model(cls):
    """Make ``cls`` loadable from checkpoints that name it; returns ``cls``."""
    MODELS[cls.__name__] = cls
    return cls


#: constructor arguments of format-1 checkpoints written before the likelihood's
#: options moved into ``likelihood_params``: old name -> option name
_LEGACY_LIKELIHOOD_OPTIONS = {"obs_variance": "variance", "obs_logvar": "logvar",
                              "n_levels": "n_levels", "allow_nonbinary": "allow_nonbinary"}
_DEFAULTS = {"bernoulli": {"allow_nonbinary": False}, "gaussian": {"variance": "fixed",
             "logvar": 0.0}, "categorical": {"n_levels": 256}}


def _upgrade_params(params):
    """Constructor arguments of an older checkpoint in today's form."""
    if not any(k in params for k in _LEGACY_LIKELIHOOD_OPTIONS):
        return params
    options = {_LEGACY_LIKELIHOOD_OPTIONS[k]: params.pop(k)
               for k in list(params) if k in _LEGACY_LIKELIHOOD_OPTIONS}
    defaults = _DEFAULTS.get(params.get("likelihood"), {})
    kept = {k: v for k, v in options.items() if k in defaults and v != defaults[k]}
    params["likelihood_params"] = kept or None
    return params


def save(model, path, metadata=None):
    """Write ``model`` (parameters, optimiser and RNG state, history) to ``path`` atomically.

    ``metadata`` is any JSON-able dict (the run's data set, trainer settings…).
    Returns the path.
    """
    if not hasattr(model, "params_"):
        raise ValueError("cannot save a model without parameters; call initialize or fit first")
    model._check_fitted()          # settings still describe the parameters (set_params)
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "model_class": np.array(type(model).__name__),
        "model_params": _json_array(model.get_params()),
        "n_features_in": np.array(model.n_features_in_),
        "layout": _json_array(model.layout_.shapes),
        "flat_params": model.flat_params_,
        "rng_state": _json_array(model.rng_.bit_generator.state),
        "epoch": np.array(model.n_iter_),
        "history": _json_array(model.history_),
        "metadata": _json_array(metadata or {}),
    }
    state = model.optimizer_state_ or {}
    arrays["optimizer_keys"] = _json_array(sorted(state))
    for key, value in state.items():
        arrays[f"optimizer_{key}"] = np.asarray(value)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)      # mkstemp makes 0600; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _read(path):
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CheckpointError(f"{path}: not a readable npvae checkpoint ({exc})") from exc


def _field(data, key, path):
    if key not in data:
        raise CheckpointError(f"{path}: not an npvae checkpoint (missing {key!r})")
    return data[key]


def read_metadata(path):
    """The run metadata dict stored in a checkpoint."""
    data = _read(path)
    return json.loads(str(data["metadata"])) if "metadata" in data else {}


def load(path):
    """Rebuild the model saved at ``path`` (parameters, optimiser and RNG state, history)."""
    data = _read(path)
    version = int(_field(data, "format_version", path))
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than this "
                              f"npvae supports ({FORMAT_VERSION}); upgrade npvae to read it")
    name = str(_field(data, "model_class", path))
    if name not in MODELS:
        raise CheckpointError(f"{path}: unknown model class {name!r}")
    params = _upgrade_params(json.loads(str(_field(data, "model_params", path))))
    for key, value in params.items():           # JSON turns tuples into lists
        if isinstance(value, list):
            params[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    model = MODELS[name](**params)
    model.initialize(int(_field(data, "n_features_in", path)))
    _restore(model, data, path)
    return model


def restore(model, path):
    """Load the state saved at ``path`` into an existing ``model`` of the same architecture.

    Raises :class:`CheckpointError` naming the differences when the
    architectures differ.
    """
    data = _read(path)
    version = int(_field(data, "format_version", path))
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than this "
                              f"npvae supports ({FORMAT_VERSION})")
    if str(_field(data, "model_class", path)) != type(model).__name__:
        raise CheckpointError(f"{path}: holds a {data['model_class']}, not a "
                              f"{type(model).__name__}")
    if not hasattr(model, "params_"):
        model.initialize(int(_field(data, "n_features_in", path)))
    _restore(model, data, path)
    return model


def _restore(model, data, path):
    shapes = json.loads(str(_field(data, "layout", path)))
    if {k: tuple(v) for k, v in shapes.items()} != model.layout_.shapes:
        raise CheckpointError(f"{path}: architecture differs from the model's: "
                              + model.layout_.describe_difference(shapes))
    flat = _field(data, "flat_params", path)
    if flat.dtype != model.flat_params_.dtype:
        raise CheckpointError(f"{path}: parameters are {flat.dtype}, the model is "
                              f"{model.flat_params_.dtype}")
    model.flat_params_[...] = flat
    model.rng_.bit_generator.state = json.loads(str(_field(data, "rng_state", path)))
    model.n_iter_ = int(_field(data, "epoch", path))
    model.history_ = json.loads(str(_field(data, "history", path)))
    keys = json.loads(str(_field(data, "optimizer_keys", path)))
    model.optimizer_state_ = {k: _field(data, f"optimizer_{k}", path).copy() for k in keys} or None
