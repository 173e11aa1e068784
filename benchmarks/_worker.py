"""A benchmark worker: one framework at one thread count, driven over a pipe.

``python -m benchmarks._worker FRAMEWORK --threads N [--pin]`` starts a
process that imports only its own framework (``npvae``, ``torch`` or
``jax``), fixes its thread count once, and then answers JSON requests, one per
line on stdin, with one JSON line each on stdout:

``{"cmd": "info"}``
    versions, thread settings, BLAS / OpenMP pools.
``{"cmd": "setup", "model": M, "dtype": T, "batch": B, "data": PATH, "warmup": s}``
    build the model from the shared initial parameters and data in ``PATH``
    (an ``.npz`` written by :mod:`benchmarks.throughput`), report the loss at
    the initial parameters on the shared noise (a check that the frameworks
    compute the same thing), time the first step (JIT compile for JAX) and
    the second, then warm up for ``warmup`` seconds.
``{"cmd": "measure", "min_time": s, "min_steps": k}``
    training steps until ``min_time`` has passed (at least ``k`` steps);
    returns ``steps``, ``seconds`` and ``examples_per_second``.
``{"cmd": "gemm", "min_time": s}`` (npvae worker only)
    the step's own matrix products alone, replayed with ``np.matmul`` at
    exactly the step's shapes and memory layouts (the roofline's ceiling).
``{"cmd": "peak_gemm", "dtype": T, "n": n, "min_time": s}`` (npvae worker)
    GFLOP/s of one square ``n × n`` product: the BLAS's best case.
``{"cmd": "profile", "steps": k}`` (npvae worker only)
    :func:`benchmarks.profile_step.profile_steps` on the current model.
``{"cmd": "quit"}``

Every framework runs in a worker of its own so that thread pools, OpenMP
runtimes and JIT state never share a process, and so that JAX, whose thread
count is fixed when it starts, can be given one per thread count.  With
``--pin`` the process is bound to the first ``N`` CPUs before the framework is
imported (``os.sched_setaffinity``); for JAX at ``N = 1`` the parent also sets
``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"``.
Errors are returned as ``{"error": ...}`` or ``{"skipped": ...}`` lines; the
worker keeps serving.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

# the OpenBLAS core type must be chosen before NumPy loads OpenBLAS (npvae/_blas.py)
from npvae._blas import select_openblas_kernels

select_openblas_kernels()

import numpy as np  # noqa: E402

from . import reference_models as R  # noqa: E402

N_NOISE = 4  # pre-drawn noise arrays, cycled through the timed steps


def _timed_loop(run_one, sync, min_time, min_steps):
    """Run ``run_one(i)`` until ``min_time`` s and ``min_steps`` steps; ``sync()`` at the end."""
    n = 0
    t0 = time.perf_counter()
    while True:
        run_one(n)
        n += 1
        if n >= min_steps and time.perf_counter() - t0 >= min_time:
            break
    sync()
    return n, time.perf_counter() - t0


class Bench:
    """One framework's model, optimiser, data and noise for one configuration."""

    name = "?"

    def __init__(self, threads):
        self.threads = threads
        self.batch = None

    # subclasses: build(spec, params, dtype, x, noise) -> initial loss, step(i), sync()
    def setup(self, model, dtype, batch, data, warmup):
        spec = R.get_spec(model)
        with np.load(data) as f:
            x = f["x"][:batch].astype(dtype)
            noise = [f[f"noise_{model}_{l}"][:batch].astype(dtype)
                     for l in range(len(spec.latent_sizes))]
            params = {layer.name: (f[f"params_{model}_{layer.name}_W"].astype(dtype),
                                   f[f"params_{model}_{layer.name}_b"].astype(dtype))
                      for layer in spec.layers}
        self.batch = batch
        info = {"framework": self.name, "model": model, "dtype": dtype, "batch": batch}
        info.update(self.build(spec, model, params, dtype, x, noise) or {})
        t0 = time.perf_counter()
        self.step(0)
        self.sync()
        info["first_step_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.step(1)
        self.sync()
        info["second_step_seconds"] = time.perf_counter() - t0
        n, seconds = _timed_loop(self.step, self.sync, warmup, 3)
        info["warmup_steps"], info["warmup_seconds"] = n, seconds
        return info

    def measure(self, min_time, min_steps=3):
        n, seconds = _timed_loop(self.step, self.sync, min_time, min_steps)
        return {"steps": n, "seconds": seconds, "examples_per_second": n * self.batch / seconds}

    def sync(self):
        pass


class NpvaeBench(Bench):
    """``npvae.training.train_step`` with ``npvae.optim.Adam(1e-3)``."""

    name = "npvae"

    def __init__(self, threads):
        super().__init__(threads)
        import npvae
        from npvae._allocator import keep_freed_memory

        npvae.set_num_threads(threads)
        keep_freed_memory()        # as npvae.training.train does
        self.npvae = npvae

    def info(self):
        import numba
        import threadpoolctl

        return {"numba_threads": numba.get_num_threads(),
                "numba_config_threads": numba.config.NUMBA_NUM_THREADS,
                "npvae_backend": self.npvae.get_backend(),
                "threadpool_info": threadpoolctl.threadpool_info()}

    def make_model(self, model, dtype):
        npvae = self.npvae
        common = dict(activation="relu", likelihood="bernoulli", dtype=dtype, random_state=0)
        if model == "vae":
            return npvae.VAE(n_latent=20, hidden_sizes=(400,), **common).initialize(784)
        if not hasattr(npvae, "HierarchicalVAE"):
            raise R.FrameworkUnavailable("skipped: npvae.HierarchicalVAE does not exist yet")
        return npvae.HierarchicalVAE(latent_sizes=(20, 10), hidden_sizes=((400,), (200,)),
                                     **common).initialize(784)

    def build(self, spec, model, params, dtype, x, noise):
        from npvae.optim import Adam
        from npvae.training import train_step

        self.model = m = self.make_model(model, dtype)
        self.train_step, self.optimizer = train_step, Adam(R.ADAM["learning_rate"])
        self.x = x
        # the shared initial parameters (identical to npvae's own random_state=0 init
        # for the VAE, see throughput.shared_data) and the shared noise for the loss check
        for layer in spec.layers:
            w, b = R.NPVAE_NAMES[model][layer.name]
            m.params_[w][...], m.params_[b][...] = params[layer.name]
        shared = [e[None] for e in noise]
        shared = shared[0] if model == "vae" else shared
        initial_loss = float(m.loss_and_grads(x, shared)[0])
        self.eps = [m.draw_noise(self.batch) for _ in range(N_NOISE)]
        # the step's layers as npvae lays them out: every 2-D parameter is a weight
        n_features = m.n_features_in_
        self.layers = [(name, s[0], s[1], s[0] == n_features)
                       for name, s in m.layout_.shapes.items() if len(s) == 2]
        self._prepare_gemms(dtype)
        return {"initial_loss": initial_loss, "n_params": int(m.layout_.size),
                "gemms": [[label, list(shape)] for label, shape in
                          R.step_gemms(self.layers, self.batch)],
                "flops_per_example": R.step_flops(self.layers, 1)}

    def step(self, i):
        self.train_step(self.model, self.x, self.eps[i % N_NOISE], self.optimizer)

    # ------------------------------------------------------------- GEMMs
    def _prepare_gemms(self, dtype):
        """Operands of every matrix product of the step, in the layouts of
        ``npvae.layers.dense``: ``x @ W``, ``np.matmul(x.T, da, out=dW)`` (a
        transposed view, written into a gradient buffer) and ``da @ W.T``."""
        rng = np.random.default_rng(0)
        N = self.batch
        self.gemm_ops = []
        for _, n_in, n_out, reads_data in self.layers:
            x = rng.standard_normal((N, n_in)).astype(dtype)
            W = rng.standard_normal((n_in, n_out)).astype(dtype)
            da = rng.standard_normal((N, n_out)).astype(dtype)
            self.gemm_ops.append((x, W, None))
            self.gemm_ops.append((x.T, da, np.empty((n_in, n_out), dtype)))
            if not reads_data:
                self.gemm_ops.append((da, W.T, None))

    def gemm(self, min_time, min_steps=3):
        ops = self.gemm_ops

        def one(_):
            for a, b, out in ops:
                np.matmul(a, b, out=out)

        n, seconds = _timed_loop(one, lambda: None, min_time, min_steps)
        flops = R.step_flops(self.layers, self.batch)
        return {"steps": n, "seconds": seconds, "examples_per_second": n * self.batch / seconds,
                "gflops": n * flops / seconds / 1e9}

    @staticmethod
    def peak_gemm(dtype, n, min_time):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        a @ b
        k, seconds = _timed_loop(lambda _: a @ b, lambda: None, min_time, 3)
        return {"n": n, "dtype": dtype, "gflops": k * 2 * n ** 3 / seconds / 1e9}

    def profile(self, steps):
        from .profile_step import profile_steps

        return profile_steps(self.model, self.x, self.eps, self.optimizer, steps)


class TorchBench(Bench):
    """PyTorch eager: ``nn.Linear`` layers, ``torch.optim.Adam``."""

    name = "torch"

    def __init__(self, threads):
        super().__init__(threads)
        self.torch = R.import_torch()
        self.torch.set_num_threads(threads)

    def info(self):
        torch = self.torch
        return {"torch_threads": torch.get_num_threads(),
                "torch_interop_threads": torch.get_num_interop_threads(),
                "parallel_info": torch.__config__.parallel_info()}

    def build(self, spec, model, params, dtype, x, noise):
        torch = self.torch
        self.module, _, self._step = R.build_torch(spec, params, dtype)
        self.x = torch.from_numpy(x)
        shared = [torch.from_numpy(e) for e in noise]
        with torch.no_grad():
            initial_loss = float(self.module(self.x, shared))
        rng = np.random.default_rng(1)
        self.noise = [[torch.from_numpy(e) for e in R.draw_noise(spec, self.batch, rng, dtype)]
                      for _ in range(N_NOISE)]
        return {"initial_loss": initial_loss,
                "n_params": sum(p.numel() for p in self.module.parameters())}

    def step(self, i):
        self._step(self.x, self.noise[i % N_NOISE])


class JaxBench(Bench):
    """JAX: the whole step (loss, gradient, Adam) under one ``jax.jit``."""

    name = "jax"

    def __init__(self, threads):
        super().__init__(threads)
        self.jax, self.jnp = R.import_jax()
        self.jax.config.update("jax_enable_x64", True)   # float64 runs; float32 stays float32

    def info(self):
        jax = self.jax
        return {"jax_devices": [str(d) for d in jax.devices()],
                "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
                "cpu_affinity": sorted(os.sched_getaffinity(0))}

    def build(self, spec, model, params, dtype, x, noise):
        jnp = self.jnp
        self.state, self._step = R.build_jax(spec, params, dtype)
        self.x = jnp.asarray(x)
        initial_loss = float(R.jax_loss_fn(spec)(self.state[0], self.x,
                                                  [jnp.asarray(e) for e in noise]))
        rng = np.random.default_rng(1)
        self.noise = [[jnp.asarray(e) for e in R.draw_noise(spec, self.batch, rng, dtype)]
                      for _ in range(N_NOISE)]
        self.loss = None
        return {"initial_loss": initial_loss, "loss_dtype": str(self.x.dtype)}

    def step(self, i):
        self.state, self.loss = self._step(self.state, self.x, self.noise[i % N_NOISE])

    def sync(self):
        self.jax.block_until_ready((self.state, self.loss))


BENCHES = {"npvae": NpvaeBench, "torch": TorchBench, "jax": JaxBench}


def serve(bench, inp, out):
    """Answer requests from ``inp`` on ``out`` until ``quit`` or end of input."""
    for line in inp:
        if not line.strip():
            continue
        req = json.loads(line)
        cmd = req.pop("cmd")
        if cmd == "quit":
            break
        try:
            if cmd == "info":
                reply = bench.info()
            elif cmd == "setup":
                reply = bench.setup(**req)
            elif cmd in ("measure", "gemm", "peak_gemm", "profile"):
                reply = getattr(bench, cmd)(**req)
            else:
                reply = {"error": f"unknown command {cmd!r}"}
        except R.FrameworkUnavailable as exc:
            reply = {"skipped": str(exc)}
        except Exception as exc:  # report and keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc()}
        out.write(json.dumps(reply, default=str) + "\n")
        out.flush()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("framework", choices=tuple(BENCHES))
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--pin", action="store_true",
                        help="bind the process to the first THREADS CPUs it may use")
    args = parser.parse_args(argv)
    # the protocol owns the real stdout; anything printed goes to stderr
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    if args.pin and hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:args.threads]
        os.sched_setaffinity(0, cpus)
    try:
        bench = BENCHES[args.framework](args.threads)
    except R.FrameworkUnavailable as exc:
        out.write(json.dumps({"skipped": str(exc)}) + "\n")
        out.flush()
        return 0
    out.write(json.dumps({"ready": args.framework, "pid": os.getpid(),
                          "cpu_affinity": sorted(os.sched_getaffinity(0))}) + "\n")
    out.flush()
    serve(bench, sys.stdin, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
