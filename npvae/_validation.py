"""Input checks shared by the models: clear ``ValueError``s naming the problem."""
from __future__ import annotations

import os

import numpy as np

DTYPES = ("float32", "float64")


def check_dtype(dtype):
    try:
        name = np.dtype(dtype).name
    except (TypeError, ValueError):
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return np.dtype(name)


def check_data(X, n_features=None, name="X", dtype=None):
    """A finite, non-empty, real numeric 2-D array ``(N, D)``; returns it as an ndarray
    (converted to ``dtype`` when given, and finite *after* the conversion)."""
    if hasattr(X, "tocsr") or hasattr(X, "toarray"):
        raise ValueError(f"{name} is a sparse matrix; npvae takes dense arrays "
                         f"({name}.toarray())")
    if isinstance(X, np.ma.MaskedArray):     # np.asarray would drop the mask in silence
        raise ValueError(f"{name} is a masked array, which npvae does not support: its mask "
                         f"would be ignored; pass {name}.filled(value) or drop the masked rows")
    X = np.asarray(X)
    if X.dtype == object:          # numbers held as objects; anything else raises TypeError
        X = X.astype(np.float64)
    if np.iscomplexobj(X):
        raise ValueError(f"Complex data not supported: {name} is complex, npvae models "
                         "real data")
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D with shape (N, D), got shape {X.shape}"
                         + ("; Reshape your data: X.reshape(1, -1) for one example"
                            if X.ndim == 1 else ""))
    if X.shape[0] == 0 or X.shape[1] == 0:
        what = "sample" if X.shape[0] == 0 else "feature"
        raise ValueError(f"{name} is empty: 0 {what}(s) (shape={X.shape}) while a minimum of "
                         "1 is required.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, but the model expects "
                         f"{n_features} (n_features_in_)")
    if dtype is not None:
        return check_finite_after_cast(X, dtype, name)
    if np.issubdtype(X.dtype, np.floating) and not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or inf")
    return X


def check_finite_after_cast(X, dtype, name="X"):
    """``X`` as ``dtype`` when it is a float dtype, finite there (1e39 is finite in
    float64 and inf in float32); integer data is returned as it is."""
    if not np.issubdtype(X.dtype, np.floating) and X.dtype != bool:
        return X
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(X, dtype=dtype)
    if not np.all(np.isfinite(out)):
        finite_before = np.issubdtype(X.dtype, np.floating) and np.all(np.isfinite(X))
        raise ValueError(f"{name} contains NaN or inf"
                         + (f" once converted to {np.dtype(dtype).name} (values beyond "
                            f"±{np.finfo(dtype).max:.3g})" if finite_before else ""))
    return out


def check_noise(eps, shape_tail, dtype, name="eps"):
    """Noise ``(S, *shape_tail)`` of finite values, converted to ``dtype``."""
    eps = np.asarray(eps)
    expected = ("S",) + tuple(shape_tail)
    if eps.ndim != len(expected) or tuple(eps.shape[1:]) != tuple(shape_tail) or eps.shape[0] < 1:
        raise ValueError(f"{name} must have shape {expected} (S samples, N examples, Z latents), "
                         f"got {eps.shape}")
    if not np.all(np.isfinite(eps)):
        raise ValueError(f"{name} contains NaN or inf")
    return np.asarray(eps, dtype=dtype)


def memory_limit():
    """The generous bound of :func:`check_fits_in_memory`: this machine's physical
    memory in bytes (1 TiB where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 ** 40


def _bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024
    return ""


def check_fits_in_memory(n_values, itemsize, what):
    """Refuse, before allocating, ``n_values`` values of ``itemsize`` bytes that could
    never fit in this machine's memory (a one-line ``ValueError`` instead of a
    ``MemoryError`` traceback, or an allocation that the system kills later)."""
    n_bytes, limit = int(n_values) * int(itemsize), memory_limit()
    if n_bytes > limit:
        raise ValueError(f"{what} would take {_bytes(n_bytes)}, more than this machine's "
                         f"memory ({_bytes(limit)}); choose smaller sizes")
    return n_bytes


def check_positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_latent_sizes(sizes):
    """``[Z_1, …, Z_L]`` of a hierarchical VAE, validated."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (tuple, list)):
        raise ValueError("latent_sizes must be a tuple of positive ints (Z_1, ..., Z_L), "
                         f"bottom level first; got {sizes!r}")
    if len(sizes) == 0:
        raise ValueError("latent_sizes is empty: a HierarchicalVAE needs at least one "
                         "stochastic level")
    return [check_positive_int(z, f"latent_sizes[{l}] (Z_{l + 1})")
            for l, z in enumerate(sizes)]


def check_level_widths(hidden, n_levels):
    """``hidden_sizes`` of a hierarchical VAE as one list of widths per level, validated."""
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, (tuple, list)):
        raise ValueError("hidden_sizes must be a tuple of ints (the same widths at every "
                         "level) or a tuple of one tuple of ints per level; got "
                         f"{hidden!r}")
    nested = [isinstance(h, (tuple, list)) for h in hidden]
    if any(nested) and not all(nested):
        raise ValueError("hidden_sizes mixes ints and tuples; give either a tuple of ints "
                         "(the same widths at every level) or one tuple of ints per "
                         f"level; got {hidden!r}")
    if any(nested):
        if len(hidden) != n_levels:
            raise ValueError(f"hidden_sizes has {len(hidden)} per-level tuples but "
                             f"latent_sizes has {n_levels} levels; give one tuple of "
                             "widths per level, or a tuple of ints for the same widths at "
                             "every level")
        per_level = [list(h) for h in hidden]
    else:
        per_level = [list(hidden) for _ in range(n_levels)]
    for l, widths in enumerate(per_level):
        for w in widths:
            check_positive_int(w, f"hidden layer width (level {l + 1})")
    return per_level


def check_noise_levels(eps, n_examples, sizes, dtype):
    """Noise of a hierarchical VAE: a list of ``L`` finite arrays ``(S, N, Z_l)`` with one
    ``S``, converted to ``dtype``."""
    L = len(sizes)
    expected = ", ".join(f"(S, {n_examples}, {Z})" for Z in sizes)
    if not isinstance(eps, (list, tuple)):
        raise ValueError(f"eps must be a list of {L} arrays, one per stochastic level, of "
                         f"shapes [{expected}]; got a {type(eps).__name__}")
    if len(eps) != L:
        raise ValueError(f"eps must hold one array per stochastic level ({L}), of shapes "
                         f"[{expected}]; got {len(eps)} arrays")
    out = [check_noise(e, (n_examples, Z), dtype, name=f"eps[{l}] (level {l + 1})")
           for l, (e, Z) in enumerate(zip(eps, sizes))]
    samples = [e.shape[0] for e in out]
    if len(set(samples)) > 1:
        raise ValueError("every level's eps must have the same number of samples S; got "
                         + ", ".join(f"level {l + 1}: {s}" for l, s in enumerate(samples)))
    return out


def check_number(value, name, minimum=0.0, inclusive=False, allow_none=False):
    """A finite real number above ``minimum`` (or at it when ``inclusive``); None passes
    when ``allow_none``."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if ok:
        value = float(value)
        ok = np.isfinite(value) and (value >= minimum if inclusive else value > minimum)
    if not ok:
        bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def check_training(epochs, batch_size, learning_rate, lr_decay, kl_warmup_epochs, clip_norm,
                   patience):
    """The trainer's settings: a clear error before any step instead of a division by
    zero, gradient ascent or a silent no-op."""
    check_positive_int(epochs, "epochs", minimum=0)
    check_positive_int(batch_size, "batch_size")
    check_number(learning_rate, "learning_rate")
    check_number(lr_decay, "lr_decay")
    check_number(kl_warmup_epochs, "kl_warmup_epochs", inclusive=True)
    check_number(clip_norm, "clip_norm", allow_none=True)
    if patience is not None:
        check_positive_int(patience, "patience")


def check_widths(widths, name):
    """Hidden-layer widths: a tuple or list of positive ints (possibly empty)."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (tuple, list)):
        raise ValueError(f"{name} must be a tuple of positive ints, got {widths!r}")
    return [check_positive_int(w, f"{name} (a hidden layer width)") for w in widths]


def check_features(model, X, reset, dtype=None):
    """``X`` checked by :func:`npvae._validation.check_data` (clear one-line messages),
    then its number of features (and column names) against the model's: for an array
    by :func:`check_n_features`; for a data frame, or a model
    fitted on one, by scikit-learn's ``validate_data`` (which knows their names)."""
    checked = check_data(X, dtype=dtype)
    if isinstance(X, (np.ndarray, list, tuple)) and not hasattr(model, "feature_names_in_"):
        check_n_features(model, checked, reset)
    else:
        try:
            from sklearn.utils.validation import validate_data
        except ImportError:         # names are scikit-learn's convention: the count only
            check_n_features(model, checked, reset)
            return checked
        validate_data(model, X, reset=reset, skip_check_array=True)    # names and n_features
    return checked


def check_n_features(model, X, reset):
    """scikit-learn's ``n_features_in_`` convention for an array ``X`` ``(N, D)``:
    set on ``reset``, else ``D`` must match it (the message is scikit-learn's)."""
    n_features = X.shape[1]
    if reset:
        model.n_features_in_ = n_features
    elif hasattr(model, "n_features_in_") and n_features != model.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {type(model).__name__} is "
                         f"expecting {model.n_features_in_} features as input.")


def check_finite(values, what):
    """``values`` if every entry is finite, else a one-line ``ValueError``: for outputs
    such as decoded means, where NaN or inf is never an answer (parameters near 1e20,
    or latents near float32's limit, overflow the decoder)."""
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} is not finite (NaN or inf) for some rows: the computation "
                         "overflowed (parameters or inputs far too large, e.g. near 1e20)")
    return values


def check_defined(values, what):
    """``values`` unless one is NaN: then a ``ValueError``.  NaN appears only when the
    floating-point computation broke down (e.g. ``inf − inf`` for inputs around
    1e39); −inf is kept, it is a log-density that underflowed."""
    if np.any(np.isnan(values)):
        raise ValueError(f"{what} is undefined (NaN) for some rows: the computation "
                         "overflowed for these inputs (are they on the scale of the "
                         "training data?)")
    return values
