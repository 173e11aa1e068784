"""Self-describing checkpoints: one ``.npz`` read with ``allow_pickle=False``.

Contents: format version, model class and constructor parameters (JSON),
the flat parameter vector with its layout, optimiser name and state arrays,
the noise generator's state, epoch count, training history and free-form
run metadata (JSON).  Written atomically: a temporary file in the same folder,
flushed to disk, then renamed over the target.

This module is the file format and imports no model; :func:`npvae.load` (in
:mod:`npvae.models.registry`, beside the models) finds the class a file names.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from ._archive import CheckpointError, read as _read
from ._atomic import atomic_file

FORMAT_VERSION = 2


def _json_array(obj):
    return np.array(json.dumps(obj, default=_json_default))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} in a checkpoint")


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


def save(model, path, metadata=None, compress=False):
    """Write ``model`` (parameters, optimiser and RNG state, history) to ``path`` atomically.

    ``metadata`` is any JSON-able dict (the run's data set, trainer settings…).
    ``compress=True`` deflates the archive (``np.savez_compressed``): the history of
    a long run, stored as text, shrinks about twentyfold, float32 parameters hardly
    at all; worth it for a file that is shipped, not for one rewritten every epoch.
    :func:`load` reads either.  Returns the path.
    """
    if not hasattr(model, "params_"):
        raise ValueError("cannot save a model without parameters; call initialize or fit first")
    model.check_fitted()          # settings still describe the parameters (set_params)
    arrays = {
        "format_version": np.array(2 if compress else 1),
        "model_class": np.array(type(model).__name__),
        "model_params": _json_array(model.get_params()),
        "n_features_in": np.array(model.n_features_in_),
        "layout": _json_array(model.layout_.shapes),
        # compressed: byte planes (Z, P) uint8, little-endian — sign/exponent bytes
        # deflate better apart from the mantissas (two-level Burda file: 2.11 -> 1.95 MB)
        **({"flat_params_bytes": _byte_planes(model.flat_params_)} if compress
           else {"flat_params": model.flat_params_}),
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
    with atomic_file(path, "wb", suffix=".npz") as f:
        (np.savez_compressed if compress else np.savez)(f, **arrays)
    return path


def _byte_planes(flat):
    """``flat (P,)`` as its bytes, one plane per byte position: ``(itemsize, P)`` uint8."""
    little = flat.astype(flat.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(little.view(np.uint8).reshape(flat.size, -1).T)


def _from_byte_planes(planes, expected, path):
    """Inverse of :func:`_byte_planes`, checked against the model's ``expected`` array."""
    shape = (expected.dtype.itemsize, expected.size)
    if planes.dtype != np.uint8 or planes.shape != shape:
        raise CheckpointError(f"{path}: parameter bytes are {planes.dtype} {planes.shape}, the "
                              f"model needs uint8 {shape}")
    little = np.ascontiguousarray(planes.T).view(expected.dtype.newbyteorder("<")).reshape(-1)
    return little.astype(expected.dtype)


def _check_sizes(data, size, dtype, path):
    """The parameter-sized members' headers against the ``size`` parameters of ``dtype``
    that the stored settings describe: checked before the model allocates them and
    before any of them is read."""
    key = "flat_params_bytes" if "flat_params_bytes" in data else "flat_params"
    want = (((dtype.itemsize, size), np.dtype(np.uint8)) if key == "flat_params_bytes"
            else ((size,), dtype))
    _field(data, key, path)
    got = data.headers[key][1:]
    if got != want:
        raise CheckpointError(f"{path}: the stored settings describe {size:,} {dtype} "
                              f"parameters, but {key!r} holds {got[1]} {got[0]}")
    for key in data.headers:
        if key.startswith("optimizer_") and math.prod(data.shape(key)) > size:
            raise CheckpointError(f"{path}: optimiser state {key[10:]!r} holds "
                                  f"{data.shape(key)}, more than the {size:,} parameters")


def _field(data, key, path):
    if key not in data:
        raise CheckpointError(f"{path}: not an npvae checkpoint (missing {key!r})")
    return data[key]


def _json_field(data, key, path, kind):
    """A JSON field of type ``kind`` (dict or list)."""
    raw = _field(data, key, path)
    if raw.shape != () or raw.dtype.kind != "U":
        raise CheckpointError(f"{path}: field {key!r} is damaged (not a JSON string)")
    try:
        value = json.loads(str(raw))
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: field {key!r} is damaged ({exc})") from None
    if not isinstance(value, kind):
        raise CheckpointError(f"{path}: field {key!r} is damaged (not a {kind.__name__})")
    return value


def _int_field(data, key, path, minimum=0):
    raw = _field(data, key, path)
    if raw.shape != () or raw.dtype.kind not in "iu" or int(raw) < minimum:
        raise CheckpointError(f"{path}: field {key!r} is damaged (not an integer >= {minimum})")
    return int(raw)


def read_metadata(path):
    """The run metadata dict stored in a checkpoint."""
    with _read(path) as data:
        return _json_field(data, "metadata", path, dict) if "metadata" in data else {}


def _check_version(data, path):
    version = _int_field(data, "format_version", path, minimum=1)
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is newer than this "
                              f"npvae supports ({FORMAT_VERSION}); upgrade npvae to read it")


def build(path, models):
    """Rebuild the model saved at ``path`` (parameters, optimiser and RNG state, history)
    from its class in ``models`` (class name -> class).  :func:`npvae.load` passes the
    registry of :mod:`npvae.models.registry`; this module imports no model.

    Every field is checked against the model it describes (names, shapes, dtypes,
    types) before anything is used, so a damaged or crafted file raises
    :class:`CheckpointError` and never reaches the compiled kernels; declared sizes are
    checked against the stored arrays' headers before anything is allocated.
    """
    with _read(path) as data:
        return _load(data, path, models)


def _load(data, path, models):
    _check_version(data, path)
    raw_name = _field(data, "model_class", path)
    name = str(raw_name) if raw_name.shape == () else None
    if name not in models:
        raise CheckpointError(f"{path}: unknown model class {name!r}; known: {sorted(models)}")
    params = _upgrade_params(_json_field(data, "model_params", path, dict))
    for key, value in params.items():           # JSON turns tuples into lists
        if isinstance(value, list):
            params[key] = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    n_features = _int_field(data, "n_features_in", path, minimum=1)
    try:
        model = models[name](**params)
        layout = model._planned_layout(n_features)       # nothing allocated yet
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the stored model settings are invalid ({exc})") from None
    _check_layout(data, layout, path, model.dtype_)
    model.initialize(n_features)
    _restore(model, data, path)
    return model


def restore(model, path):
    """Load the state saved at ``path`` into an existing ``model`` of the same architecture.

    Raises :class:`CheckpointError` naming the differences when the
    architectures differ.
    """
    with _read(path) as data:
        _check_version(data, path)
        if str(_field(data, "model_class", path)) != type(model).__name__:
            raise CheckpointError(f"{path}: holds a {data['model_class']}, not a "
                                  f"{type(model).__name__}")
        if not hasattr(model, "params_"):
            n_features = _int_field(data, "n_features_in", path, minimum=1)
            _check_layout(data, model._planned_layout(n_features), path, model.dtype_)
            model.initialize(n_features)
        model.check_fitted()
        _check_layout(data, model.layout_, path, model.dtype_)
        _restore(model, data, path)
        return model


def _check_layout(data, layout, path, dtype):
    """The stored layout against the model's ``layout`` (names and shapes, a readable
    difference), then the parameter-sized members' headers (:func:`_check_sizes`)."""
    shapes = _json_field(data, "layout", path, dict)
    try:
        stored = {k: tuple(int(n) for n in v) for k, v in shapes.items()}
    except (TypeError, ValueError):
        raise CheckpointError(f"{path}: field 'layout' is damaged") from None
    if stored != layout.shapes:
        raise CheckpointError(f"{path}: architecture differs from the model's: "
                              + layout.describe_difference(shapes))
    _check_sizes(data, layout.size, dtype, path)


def _restore(model, data, path):
    """Check every stored field against ``model`` (its layout already checked by
    :func:`_check_layout`), then copy them in (nothing is changed unless every check
    passes)."""
    expected = model.flat_params_
    flat = (_from_byte_planes(_field(data, "flat_params_bytes", path), expected, path)
            if "flat_params_bytes" in data else _field(data, "flat_params", path))
    if flat.dtype != expected.dtype or flat.shape != expected.shape:
        raise CheckpointError(f"{path}: parameters are {flat.dtype} {flat.shape}, the model "
                              f"needs {expected.dtype} {expected.shape}")
    if not np.all(np.isfinite(flat)):
        raise CheckpointError(f"{path}: the stored parameters are not all finite")
    rng_state = _json_field(data, "rng_state", path, dict)
    epoch = _int_field(data, "epoch", path)
    history = _json_field(data, "history", path, list)
    if not all(isinstance(h, dict) for h in history):
        raise CheckpointError(f"{path}: field 'history' is damaged (not a list of records)")
    optimizer_state = _optimizer_state(model, data, path)
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = rng_state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise CheckpointError(f"{path}: field 'rng_state' is damaged ({exc})") from None
    expected[...] = flat
    model.rng_.bit_generator.state = rng.bit_generator.state
    model.n_iter_ = epoch
    model.history_ = history
    model.optimizer_state_ = optimizer_state


def _optimizer_state(model, data, path):
    """The stored optimiser state, each array with exactly the names, shapes and dtypes
    the model's optimiser creates (the update writes into them without checks)."""
    from .optim import make_optimizer

    keys = _json_field(data, "optimizer_keys", path, list)
    if not keys:
        return None
    template = make_optimizer(model.optimizer, 1.0).init_state(model.layout_.size, model.dtype_)
    if sorted(map(str, keys)) != sorted(template):
        raise CheckpointError(f"{path}: optimiser state {sorted(map(str, keys))} does not fit "
                              f"the model's {model.optimizer} ({sorted(template)})")
    state = {}
    for key, like in template.items():
        value = _field(data, f"optimizer_{key}", path)
        if value.shape != like.shape or value.dtype != like.dtype:
            raise CheckpointError(f"{path}: optimiser state {key!r} is {value.dtype} "
                                  f"{value.shape}, the model needs {like.dtype} {like.shape}")
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: optimiser state {key!r} is not all finite")
        state[key] = value.copy()
    if int(state["t"]) < 0 or (model.optimizer == "adam" and np.any(state["v"] < 0)):
        raise CheckpointError(f"{path}: optimiser state is damaged (negative step or moment)")
    return state
