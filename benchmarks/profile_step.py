"""Where one npvae training step spends its time.

:func:`profile_steps` wraps npvae's kernel functions with timers, runs
``npvae.training.train_step`` a number of times, and unwraps them again.  Each
wrapper records *exclusive* time (its own time minus that of wrapped functions
it calls), so the categories add up to the step without double counting:

``matrix products``
    ``dense_forward`` / ``dense_backward`` less the bias + activation kernels
    they call: what is left is their ``np.matmul`` calls (``x @ W``,
    ``x.T @ da``, ``da @ W.T``) and a few Python statements.
``bias + activation``, ``reparameterisation``, ``KL``, ``likelihood``, ``log-densities``
    the elementwise kernels (Numba or NumPy, whichever backend is active),
    including the output arrays they allocate.
``optimiser (Adam)``
    ``npvae.optim.adam_update``.
``rest``
    everything else in the step: the MLP loops, the model's glue, the flat
    gradient buffer and its views, validation-free bookkeeping — Python overhead.

A function is wrapped wherever it is bound (``npvae.vae.dense_forward``,
``npvae.layers.dense.dense_forward``, …), found by identity in every loaded
``npvae`` module.  The wrappers cost about a microsecond per call, so the
profiled step is slightly slower than an unwrapped one; both are reported.
"""
from __future__ import annotations

import sys
import time

#: kernel function name -> category
CATEGORIES = {
    "dense_forward": "matrix products",
    "dense_backward": "matrix products",
    "bias_activation_forward": "bias + activation",
    "bias_activation_backward": "bias + activation",
    "reparameterize_forward": "reparameterisation",
    "reparameterize_backward": "reparameterisation",
    "kl_standard_normal_forward": "KL",
    "kl_standard_normal_backward": "KL",
    "kl_diagonal_forward": "KL",
    "kl_diagonal_backward": "KL",
    "bernoulli_forward": "likelihood",
    "bernoulli_backward": "likelihood",
    "gaussian_forward": "likelihood",
    "gaussian_backward": "likelihood",
    "categorical_forward": "likelihood",
    "categorical_backward": "likelihood",
    "log_normal_forward": "log-densities",
    "log_normal_backward": "log-densities",
    "log_q_forward": "log-densities",
    "log_q_backward": "log-densities",
    "adam_update": "optimiser (Adam)",
}
ORDER = ["matrix products", "bias + activation", "reparameterisation", "KL", "likelihood",
         "log-densities", "optimiser (Adam)", "rest"]


class _Timers:
    """Exclusive-time accounting for nested wrapped calls."""

    def __init__(self):
        self.exclusive = {}
        self.calls = {}
        self._stack = []

    def wrap(self, name, fn):
        def timed(*args, **kwargs):
            self._stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                children = self._stack.pop()
                self.exclusive[name] = self.exclusive.get(name, 0.0) + dt - children
                self.calls[name] = self.calls.get(name, 0) + 1
                if self._stack:
                    self._stack[-1] += dt
        timed.__wrapped__ = fn
        return timed


def _targets():
    """``{name: function}`` for every profiled npvae function that exists."""
    from npvae.gradcheck import kernel_index
    K = kernel_index()
    import npvae.optim as O

    found = {}
    for name in CATEGORIES:
        fn = getattr(K, name, None) or getattr(O, name, None)
        if fn is not None:
            found[name] = fn
    return found


def _install(timers):
    """Replace every binding of the target functions in loaded npvae modules;
    returns the list of ``(module, attribute, original)`` to restore."""
    targets = _targets()
    by_id = {id(fn): (name, fn) for name, fn in targets.items()}
    wrappers = {name: timers.wrap(name, fn) for name, fn in targets.items()}
    patched = []
    for mod_name, module in list(sys.modules.items()):
        if not (mod_name == "npvae" or mod_name.startswith("npvae.")) or module is None:
            continue
        for attr, value in list(vars(module).items()):
            hit = by_id.get(id(value))
            if hit is not None and hit[1] is value:
                setattr(module, attr, wrappers[hit[0]])
                patched.append((module, attr, value))
    return patched


def _restore(patched):
    for module, attr, original in patched:
        setattr(module, attr, original)


def profile_steps(model, x, eps_pool, optimizer, steps=50):
    """Time ``steps`` calls of ``train_step`` with the kernels wrapped.

    Returns a dict: ``step_seconds`` (mean profiled step), ``categories``
    (seconds per step by category, including ``rest``), ``functions``
    (seconds and calls per step by function), ``fractions`` (of the step) and
    ``patched_bindings`` (how many bindings were wrapped).
    """
    from npvae.training import train_step

    timers = _Timers()
    train_step(model, x, eps_pool[0], optimizer)           # warm, unwrapped
    patched = _install(timers)
    try:
        t0 = time.perf_counter()
        for i in range(steps):
            train_step(model, x, eps_pool[i % len(eps_pool)], optimizer)
        total = time.perf_counter() - t0
    finally:
        _restore(patched)
    per_step = total / steps
    categories = {c: 0.0 for c in ORDER}
    for name, seconds in timers.exclusive.items():
        categories[CATEGORIES[name]] += seconds / steps
    categories["rest"] = per_step - sum(v for k, v in categories.items() if k != "rest")
    functions = {name: {"seconds": timers.exclusive[name] / steps,
                        "calls": timers.calls[name] / steps} for name in timers.exclusive}
    return {"step_seconds": per_step, "steps": steps,
            "categories": categories,
            "fractions": {c: v / per_step for c, v in categories.items()},
            "functions": functions, "patched_bindings": len(patched)}
