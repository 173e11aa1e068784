"""Hostile input: random arrays, shapes, dtypes, hyperparameters, damaged checkpoint
fields and random bytes thrown at the public API and the loader.

Each case runs in a subprocess (tests/_hostile_worker.py, restarted after any
death), so a native crash or a hang fails the test and names the case instead of
taking the run down.  Every case must end in a clean Python exception
(ValueError, TypeError, TrainingDiverged) or a result without NaN (a log-density
may overflow to −inf for absurd data) — never a signal, a hang, or a raw
IndexError/KeyError/ZeroDivisionError from inside the library.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "_hostile_worker.py"
TIMEOUT = 120


class Worker:
    def __init__(self):
        self.proc = None

    def ask(self, case):
        if self.proc is None or self.proc.poll() is not None:
            env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
            self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, env=env)
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=TIMEOUT):
            self.proc.kill()
            self.proc = None
            pytest.fail(f"hang (> {TIMEOUT} s) on case {case}")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            err = self.proc.stderr.read()[-2000:]
            self.proc = None
            pytest.fail(f"the process died (exit {code}) on case {case}\n{err}")
        return json.loads(line)

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def worker():
    w = Worker()
    yield w
    w.close()


SPECIAL = [0, 1, -1, 0.5, 1e-300, 1e39, -1e39, 1e308, float("nan"), float("inf"),
           float("-inf"), 3, 255, 2 ** 40]
DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint8", "bool", "complex128",
          "object"]
values = st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(-10, 10)), min_size=1,
                  max_size=6)


def arrays(max_dims=3, max_side=9):
    return st.fixed_dictionaries({
        "dtype": st.sampled_from(DTYPES),
        "shape": st.lists(st.integers(0, max_side), min_size=0, max_size=max_dims),
        "fill": values})


def near_data(D=5):
    """Arrays that mostly look right: (N, 5) with odd values and dtypes."""
    return st.fixed_dictionaries({
        "dtype": st.one_of(st.sampled_from(["float64", "float32"]), st.sampled_from(DTYPES)),
        "shape": st.tuples(st.integers(0, 12), st.sampled_from([D, D, D, 4, 6, 0])).map(list),
        "fill": values})


odd = st.one_of(st.sampled_from([0, -1, -5, 0.0, 1.5, float("nan"), float("inf"), None, "x",
                                 True, 10 ** 9, [], [0], (3, -2), {"a": 1}]),
                st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=True))
VALID = {
    "n_samples": st.integers(1, 3), "beta": st.floats(0, 3), "k": st.integers(1, 4),
    "objective": st.sampled_from(["elbo", "iwae"]), "learning_rate": st.floats(1e-4, 1.0),
    "batch_size": st.integers(1, 30), "epochs": st.integers(0, 2),
    "dtype": st.sampled_from(["float32", "float64"]),
    "activation": st.sampled_from(["relu", "tanh", "softplus", "sigmoid", "leaky_relu"]),
    "likelihood": st.sampled_from(["gaussian", "bernoulli", "categorical", "beta"]),
    "likelihood_params": st.sampled_from([None, {"variance": "scalar"}, {"n_levels": 4},
                                          {"allow_nonbinary": True}]),
    "optimizer": st.sampled_from(["adam", "sgd"]),
    "hidden_sizes": st.sampled_from([(), (3,), (4, 2)]),
}
hyper = st.dictionaries(st.sampled_from(sorted(VALID)), odd, max_size=1).flatmap(
    lambda bad: st.fixed_dictionaries({}, optional=VALID).map(lambda ok: {**ok, **bad}))
models = st.sampled_from(["vae", "hvae"])
SETTINGS = settings(max_examples=int(os.environ.get("NPVAE_HOSTILE_EXAMPLES", 40)),
                    deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check(answer, case):
    assert not answer.get("raw"), f"raw {answer['error']}: {answer['message']} on case {case}"
    assert answer.get("result") != "nan", f"NaN result on case {case}"


@SETTINGS
@given(model=models, params=hyper, X=near_data(), epochs=st.one_of(st.integers(0, 2), odd),
       batch_size=st.one_of(st.integers(1, 30), odd),
       learning_rate=st.one_of(st.floats(1e-4, 10.0), odd))
def test_construct_and_fit(worker, model, params, X, epochs, batch_size, learning_rate):
    case = {"op": "construct_and_fit", "model": model, "params": params, "X": X,
            "epochs": epochs if isinstance(epochs, (int, float)) else 1,
            "batch_size": batch_size if isinstance(batch_size, (int, float)) else 8,
            "learning_rate": learning_rate if isinstance(learning_rate, (int, float)) else 1e-3}
    check(worker.ask(json.loads(json.dumps(case, default=str))), case)


@SETTINGS
@given(model=models, params=st.dictionaries(st.sampled_from(
    ["n_latent", "hidden_sizes", "latent_sizes", "dtype", "likelihood", "posterior",
     "inference", "likelihood_params", "decoder_hidden_sizes"]), odd, min_size=1, max_size=2))
def test_set_params_then_use(worker, model, params):
    case = {"op": "set_params_then_use", "model": model, "params": params}
    check(worker.ask(json.loads(json.dumps(case, default=str))), case)


@SETTINGS
@given(model=models, X=st.one_of(near_data(), arrays()), eps=arrays(),
       method=st.sampled_from(["loss_and_grads", "score_samples", "transform", "reconstruct",
                               "log_likelihood", "partial_fit", "score"]),
       check_input=st.booleans(), k=st.integers(-2, 5), max_rows=st.integers(-2, 50))
def test_public_methods(worker, model, X, eps, method, check_input, k, max_rows):
    case = {"op": "call", "model": model, "X": X, "eps": eps, "method": method,
            "check_input": check_input, "k": k, "max_rows": max_rows}
    check(worker.ask(json.loads(json.dumps(case, default=str))), case)


FIELDS = ["format_version", "model_class", "model_params", "n_features_in", "layout",
          "flat_params", "flat_params_bytes", "rng_state", "epoch", "history", "metadata", "optimizer_keys",
          "optimizer_m", "optimizer_v", "optimizer_t"]


@SETTINGS
@given(model=models, key=st.sampled_from(FIELDS), value=arrays(max_dims=2, max_side=40),
       how=st.sampled_from(["array", "json", "drop"]),
       text=st.one_of(st.text(max_size=30), st.sampled_from(
           ['{"m": 1}', "[]", "{}", '["m", "v"]', '["m", "v", "t"]', "null", "1e400",
            '{"layout": 1}', '{"enc_W0": [5, -4]}', '{"bit_generator": "PCG64"}'])))
def test_damaged_checkpoint_fields(worker, model, key, value, how, text):
    case = {"op": "checkpoint", "model": model, "key": key}
    if how == "json":
        case["json"] = text
    elif how == "drop":
        case["drop"] = True
    else:
        case["value"] = value
    check(worker.ask(json.loads(json.dumps(case, default=str))), case)


@SETTINGS
@given(data=st.binary(max_size=600))
def test_random_bytes_as_a_checkpoint(worker, data):
    case = {"op": "bytes", "data": base64.b64encode(data).decode()}
    answer = worker.ask(case)
    check(answer, case)
    assert answer.get("error") == "CheckpointError", answer


def test_an_optimiser_state_cut_short_is_refused(tmp_path):
    """The case that used to crash natively: Adam's moments shorter than the parameters."""
    import numpy as np

    import npvae
    from npvae.checkpoint import CheckpointError

    X = np.random.default_rng(0).standard_normal((24, 5))
    m = npvae.VAE(n_latent=2, hidden_sizes=(4,), likelihood="gaussian", epochs=1,
                  batch_size=8, random_state=0).fit(X)
    path = npvae.save(m, tmp_path / "m.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["optimizer_m"] = arrays["optimizer_m"][:3]
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="optimiser state 'm'"):
        npvae.load(path)


def test_train_step_refuses_what_would_reach_the_kernels_out_of_bounds():
    """train_step is public and runs without the public methods' checks: the shapes of
    x, eps and the optimiser state are still checked (the update writes without bounds)."""
    import numpy as np

    import npvae
    from npvae.optim import Adam
    from npvae.training import train_step

    for model in (npvae.VAE(n_latent=2, hidden_sizes=(3,), random_state=0),
                  npvae.HierarchicalVAE(latent_sizes=(2, 2), hidden_sizes=(3,), random_state=0)):
        m = model.initialize(4)
        x = np.zeros((5, 4))
        assert np.isfinite(train_step(m, x, m.draw_noise(5), Adam(1e-3))[0])
        with pytest.raises(ValueError, match="eps must have shape"):
            train_step(m, x, m.draw_noise(4), Adam(1e-3))
        with pytest.raises(ValueError, match="x must be"):
            train_step(m, np.zeros((5, 3)), m.draw_noise(5), Adam(1e-3))
        m.optimizer_state_["m"] = np.zeros(3)
        with pytest.raises(ValueError, match="optimizer_state_"):
            train_step(m, x, m.draw_noise(5), Adam(1e-3))
