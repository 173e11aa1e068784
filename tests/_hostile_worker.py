"""Runs hostile cases against npvae's public API, one JSON line in, one JSON line out.

Started as a subprocess by tests/test_hostile.py, so that a native crash (a
signal) or a hang ends this process, not the test run, and names the case.
Each answer is ``{"result": "finite" | "infinite" | "nan" | "loaded"}`` or
``{"error": "TypeName", "message": "..."}``.
"""
from __future__ import annotations

import base64
import io
import json
import os
import sys
import tempfile
import warnings

import numpy as np

import npvae
from npvae.training import TrainingDiverged

warnings.simplefilter("ignore")
CLEAN = (ValueError, TypeError, TrainingDiverged)
TMP = tempfile.mkdtemp(prefix="npvae-hostile-")


def array(spec):
    """An array from ``{"dtype", "shape", "fill"}``: fill is a list of values cycled,
    cast unsafely (wrapping integers, NaN to whatever the cast gives)."""
    dtype = np.dtype(spec["dtype"])
    n = int(np.prod(spec["shape"]))
    fill = list(spec["fill"]) or [0]
    if dtype == object:
        flat = np.resize(np.array(fill, dtype=object), n) if n else np.array([], dtype=object)
        return flat.reshape(spec["shape"])
    base = np.array(fill, dtype=complex if dtype.kind == "c" else np.float64)
    flat = np.resize(base, n) if n else base[:0]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flat.astype(dtype, casting="unsafe").reshape(spec["shape"])


def small_model(kind, **kw):
    base = dict(hidden_sizes=(4,), epochs=1, batch_size=8, random_state=0,
                likelihood="gaussian")
    base.update(kw)
    if kind == "hvae":
        return npvae.HierarchicalVAE(**{"latent_sizes": (3, 2), **base})
    return npvae.VAE(**{"n_latent": 3, **base})


def fitted(kind):
    X = np.random.default_rng(0).standard_normal((24, 5))
    return small_model(kind).fit(X), X


def outcome(value):
    """``finite``; ``infinite`` (a log-density that overflows to −inf for extreme data is
    an honest answer); ``nan`` (never acceptable)."""
    values = value if isinstance(value, (list, tuple)) else [value]
    arrays = [np.asarray(v) for v in values if v is not None]
    arrays = [a for a in arrays if a.dtype.kind in "fc"]
    if any(np.any(np.isnan(a)) for a in arrays):
        return "nan"
    return "finite" if all(np.all(np.isfinite(a)) for a in arrays) else "infinite"


def run(case):
    kind = case.get("model", "vae")
    op = case["op"]
    if op == "construct_and_fit":
        m = small_model(kind, **case["params"])
        X = array(case["X"])
        m.fit(X, epochs=case.get("epochs", 1), batch_size=case.get("batch_size", 8),
              learning_rate=case.get("learning_rate", 1e-3))
        return outcome(m.score_samples(X))
    if op == "set_params_then_use":
        m, X = fitted(kind)
        m.set_params(**case["params"])
        return outcome([m.score_samples(X), m.transform(X)])
    if op == "call":
        m, _ = fitted(kind)
        X = array(case["X"])
        method = case["method"]
        if method == "loss_and_grads":
            eps = array(case["eps"])
            if kind == "hvae":
                eps = [eps, array(case["eps"])]
            loss, grads = m.loss_and_grads(X, eps, check_input=case.get("check_input", True))
            return outcome([loss] + list(grads.values()))
        if method == "log_likelihood":
            return outcome(m.log_likelihood(X, n_importance=case.get("k", 3),
                                            max_rows=case.get("max_rows", 8192)))
        if method == "partial_fit":
            m.partial_fit(X)
            return outcome(m.flat_params_)
        return outcome(getattr(m, method)(X))
    if op == "checkpoint":
        m, X = fitted(kind)
        path = os.path.join(TMP, "c.npz")
        npvae.save(m, path)
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        key = case["key"]
        if case.get("json") is not None:
            arrays[key] = np.array(case["json"])
        elif case.get("drop"):
            arrays.pop(key, None)
        else:
            arrays[key] = array(case["value"])
        np.savez(path, **arrays)
        loaded = npvae.load(path)
        loaded.partial_fit(X)
        return outcome([loaded.score_samples(X), loaded.flat_params_])
    if op == "levels":
        return levels_case(case)
    if op == "sizes":                        # absurd sizes: refused before allocating
        m = small_model(kind, **case.get("params", {}))
        if case.get("n_features"):
            m.initialize(case["n_features"])
        else:
            m.fit(np.random.default_rng(0).standard_normal((8, 5)))
        if case.get("sample"):
            return outcome(m.sample(case["sample"]))
        return outcome(m.flat_params_)
    if op == "bytes":
        path = os.path.join(TMP, "b.npz")
        with open(path, "wb") as f:
            f.write(base64.b64decode(case["data"]))
        npvae.load(path)
        return "loaded"
    raise AssertionError(f"unknown op {op}")


def categorical_model(kind, V):
    kw = dict(hidden_sizes=(4,), likelihood="categorical", likelihood_params={"n_levels": V},
              epochs=1, batch_size=4, random_state=0)
    if kind == "hvae":
        return npvae.HierarchicalVAE(latent_sizes=(2, 2), **kw)
    if kind == "cvae":
        return npvae.ConditionalVAE(n_latent=2, **kw)
    return npvae.VAE(n_latent=2, **kw)


def levels_case(case):
    """Levels ``case["bad"]`` put into the data of a categorical model over ``V`` levels,
    through ``how``: ``loss_and_grads`` with ``check_input=False``, or a batch transform
    that is clean on the first batch and returns the bad levels afterwards (``fit``,
    ``train``)."""
    V, bad, how, kind = case["V"], case["bad"], case["how"], case["model"]
    npvae.set_backend(case.get("backend", "numba"))
    X = np.random.default_rng(0).integers(0, V, (12, 5))
    y = np.arange(12) % 2
    m = categorical_model(kind, V)
    fit = (lambda *a, **k: m.fit(X, y, *a, **k)) if kind == "cvae" else \
        (lambda *a, **k: m.fit(X, *a, **k))
    Xb = X.copy()
    Xb.flat[:len(bad)] = bad
    if how == "loss_and_grads":
        fit(epochs=1)
        eps = m.draw_noise(12)
        args = (Xb, y, eps) if kind == "cvae" else (Xb, eps)
        return outcome(list(m.loss_and_grads(*args, check_input=False)))
    calls = []

    def transform(xb, rng):                  # clean for the first batch, then the bad levels
        calls.append(1)
        if len(calls) <= 2:                  # the output-bias sample and the first batch
            return xb
        out = xb.copy()
        out.flat[:len(bad)] = bad
        return out
    if how == "fit":
        fit(epochs=2, batch_transform=transform)
    else:
        fit(epochs=1)
        calls.append(1)
        from npvae.training import train
        train(m, X, y if kind == "cvae" else None, epochs=2, batch_size=4,
              batch_transform=transform)
    return outcome(m.flat_params_)


def main():
    for line in sys.stdin:
        case = json.loads(line)
        try:
            answer = {"result": run(case)}
        except CLEAN as exc:
            answer = {"error": type(exc).__name__, "message": str(exc)[:300]}
        except Exception as exc:                       # a raw error: the test reports it
            answer = {"error": type(exc).__name__, "message": str(exc)[:300], "raw": True}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
