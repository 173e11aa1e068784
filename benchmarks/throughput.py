"""Training throughput of npvae against PyTorch (eager) and JAX (jitted), side by side.

Run ``python -m benchmarks.throughput`` (``--help`` for the flags; ``--quick``
for a short run).  For every (model, dtype, threads, batch) it times one
training step — forward, backward and Adam — of npvae
(``npvae.training.train_step``), of the PyTorch reference and of the JAX
reference (:mod:`benchmarks.reference_models`), interleaved in rounds
(npvae, torch, jax, then the step's matrix products alone, again and again),
so that the machine's noise hits all of them alike.  It reports the median
examples/second of each and the median of the per-round ratios npvae/torch
and npvae/jax: on a shared, noisy machine only those side-by-side ratios
mean anything.

Also reported:

* JIT compile time: npvae's first ``train_step`` in a fresh interpreter with
  an empty Numba cache (cold) and with that cache filled (warm start), see
  :mod:`benchmarks.coldstart`; JAX's first jitted call per batch size;
* a roofline line per batch: the step's FLOPs from its layer shapes, the GEMM
  rate NumPy reaches at exactly those shapes and thread count, the ceiling
  this puts on examples/second, and the fraction of it npvae reaches;
* a profile of one npvae step (:mod:`benchmarks.profile_step`): matrix
  products vs each elementwise kernel vs Adam vs the rest;
* with ``--memory`` instead: peak RSS of ``npvae train --dataset mnist
  --epochs 1`` against the same epoch in PyTorch (:mod:`benchmarks.memory`).

Every framework runs in a worker process of its own per thread count
(:mod:`benchmarks._worker`): npvae with ``npvae.set_num_threads(n)`` (BLAS via
threadpoolctl, and Numba), PyTorch with ``torch.set_num_threads(n)``, JAX —
whose thread count cannot change inside a process — in a process bound to
``n`` CPUs (and with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` when ``n = 1``).  By default every worker is
bound to the first ``n`` CPUs (``--no-pin`` turns that off).

Results: ``<out>/throughput-<timestamp>.json`` (every measurement and the
metadata), ``latest.json``, ``latest.md`` (the tables printed at the end) and
a bar chart ``throughput-<timestamp>.png`` / ``latest.png``.  Nothing here
asserts anything about speed: benchmarks print, they don't judge.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

# npvae sets OMP_WAIT_POLICY=PASSIVE for itself when imported (npvae/backend.py);
# the PyTorch and JAX workers keep whatever this environment had.
_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")

from . import reference_models as R
from .contention import busy_cores, spinner_cpus

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: the committed results the README cites: written only with --update-results
RESULTS = os.path.join("benchmarks", "results")
FRAMEWORKS = ("npvae", "torch", "jax")
JAX_ONE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

#: environment variables that change what is measured, recorded with the results
ENV_SHOWN = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
             "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "XLA_FLAGS", "NPVAE_BACKEND", "NPVAE_DATA")
#: other processes' load (cores) above which a configuration is flagged as disturbed
BUSY_CORES = 0.25
#: what --quick changes, unless the flag is given explicitly
QUICK = {"batches": "16,1024", "dtypes": "float32", "threads": "1", "repeats": 3,
         "min_time": 0.1, "warmup": 0.1, "profile_batches": "1024"}
DEFAULTS = {"batches": "1,16,128,1024", "dtypes": "float32,float64", "threads": "1,2",
            "repeats": 5, "min_time": 0.5, "warmup": 0.3, "profile_batches": "1024,128"}


# ----------------------------------------------------------------- arguments
def _list(text, cast=str):
    return [cast(t.strip()) for t in str(text).split(",") if t.strip()]


def build_parser():
    p = argparse.ArgumentParser(prog="python -m benchmarks.throughput",
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", default=None, help=f"batch sizes (default {DEFAULTS['batches']})")
    p.add_argument("--dtypes", default=None, help=f"default {DEFAULTS['dtypes']}")
    p.add_argument("--threads", default=None,
                   help=f"thread counts, one setting for BLAS, Numba, torch and XLA "
                        f"(default {DEFAULTS['threads']})")
    p.add_argument("--models", default="vae,hvae", help="vae, hvae (default both)")
    p.add_argument("--frameworks", default="npvae,torch,jax",
                   help="npvae, torch, jax (absent frameworks are skipped with a message)")
    p.add_argument("--repeats", type=int, default=None,
                   help=f"rounds per configuration (default {DEFAULTS['repeats']})")
    p.add_argument("--min-time", type=float, default=None,
                   help=f"seconds per measurement (default {DEFAULTS['min_time']})")
    p.add_argument("--warmup", type=float, default=None,
                   help=f"seconds of warm-up steps after setup (default {DEFAULTS['warmup']})")
    p.add_argument("--profile-batches", default=None,
                   help="batches at which to profile the npvae step ('' for none; default "
                        f"{DEFAULTS['profile_batches']})")
    p.add_argument("--profile-steps", type=int, default=30)
    p.add_argument("--no-compile", action="store_true",
                   help="skip the cold/warm npvae start-up runs")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each configuration, wait up to SECONDS for other processes "
                        f"to use less than {BUSY_CORES} of a core (0: do not wait)")
    p.add_argument("--gap", type=float, default=0.25, metavar="SECONDS",
                   help="idle pause before each framework's turn, so that the threads of "
                        "the one timed before (OpenBLAS and OpenMP spin after their work) "
                        "are asleep when the next starts (default 0.25)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not bind each worker to the first THREADS CPUs")
    p.add_argument("--openblas-coretype", default=None, metavar="NAME",
                   help="set OPENBLAS_CORETYPE for the workers (e.g. SkylakeX, Haswell); "
                        "'auto' removes it so OpenBLAS picks kernels for this CPU itself "
                        "(default: inherit the environment)")
    p.add_argument("--quick", action="store_true",
                   help="a short run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    p.add_argument("--memory", action="store_true",
                   help="instead: peak RSS of one MNIST epoch, npvae train vs PyTorch "
                        "(needs NPVAE_DATA)")
    p.add_argument("--memory-threads", type=int, default=1)
    p.add_argument("--busy-cores", type=int, default=0, metavar="N",
                   help="keep N cores busy with spinning processes pinned to the last N CPUs "
                        "while the workers run, as another program on a user's machine would "
                        "(benchmarks/contention.py; default 0)")
    p.add_argument("--out", default=os.path.join("runs", "benchmarks"),
                   help="folder for the JSON, Markdown and PNG results (default runs/benchmarks, "
                        "which git ignores)")
    p.add_argument("--update-results", action="store_true",
                   help=f"write into {RESULTS} instead, replacing the committed latest.* that "
                        "the README cites")
    return p


def resolve_args(args):
    """Fill the flags left unset from :data:`QUICK` or :data:`DEFAULTS`."""
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.batches = _list(args.batches, int)
    args.dtypes = _list(args.dtypes)
    args.threads = _list(args.threads, int)
    args.models = _list(args.models)
    args.frameworks = _list(args.frameworks)
    args.profile_batches = _list(args.profile_batches, int)
    if args.update_results:
        args.out = RESULTS
    spinner_cpus(args.busy_cores)           # refuses a count this machine does not have
    for name, allowed in (("dtypes", ("float32", "float64")), ("models", tuple(R.SPECS)),
                          ("frameworks", FRAMEWORKS)):
        bad = [v for v in getattr(args, name) if v not in allowed]
        if bad:
            raise SystemExit(f"--{name}: unknown {bad}; choose from {allowed}")
    return args


# ------------------------------------------------------------------ metadata
def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info():
    """CPU model, cores, versions and the BLAS of this process."""
    cpu, flags = None, []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and cpu is None:
                    cpu = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    have = set(line.split(":", 1)[1].split())
                    flags = [f for f in ("avx", "avx2", "fma", "avx512f") if f in have]
    except OSError:
        pass
    import threadpoolctl

    return {
        "cpu_model": cpu or platform.processor(), "cpu_flags": flags,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(), "python": platform.python_version(),
        "versions": {n: _version(n) for n in ("npvae", "numpy", "numba", "scipy", "torch", "jax",
                                              "jaxlib", "threadpoolctl", "matplotlib")},
        "blas": threadpoolctl.threadpool_info(),
        "env": {k: os.environ.get(k) for k in ENV_SHOWN},
    }


def npvae_source():
    """Which npvae was measured: its commit, files changed since, and a hash of
    its sources (read-only git commands; the library changes often)."""
    import hashlib

    import npvae

    pkg = os.path.dirname(os.path.abspath(npvae.__file__))
    digest = hashlib.sha256()
    for folder, _, files in sorted(os.walk(pkg)):
        for name in sorted(files):
            if name.endswith(".py"):
                with open(os.path.join(folder, name), "rb") as f:
                    digest.update(name.encode() + f.read())
    out = {"path": pkg, "sources_sha256": digest.hexdigest()[:16]}

    def git(*cmd):
        proc = subprocess.run(["git", "--no-optional-locks", *cmd], cwd=pkg,
                              capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else None

    out["commit"] = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--", ".")
    out["uncommitted"] = changed.splitlines() if changed else []
    return out


def print_machine(meta):
    v = meta["versions"]
    print(f"machine: {meta['cpu_model']} ({', '.join(meta['cpu_flags'])}), "
          f"{meta['logical_cpus']} logical CPUs, {meta['usable_cpus']} usable; {meta['platform']}")
    print("versions: Python " + meta["python"] + ", "
          + ", ".join(f"{k} {val}" for k, val in v.items() if val))
    for pool in meta["blas"]:
        print(f"BLAS/OpenMP in this process: {pool.get('internal_api')} "
              f"{pool.get('version') or ''} ({pool.get('threading_layer', '')}, "
              f"{pool.get('architecture', '')}) {pool['num_threads']} threads, "
              f"{os.path.basename(pool['filepath'])}")
    env = {k: val for k, val in meta["env"].items() if val}
    src = meta.get("npvae_source", {})
    print(f"npvae: commit {src.get('commit')}, sources {src.get('sources_sha256')}"
          + (f", {len(src['uncommitted'])} uncommitted change(s)" if src.get("uncommitted")
             else ""))
    print("environment: " + (", ".join(f"{k}={val}" for k, val in env.items()) or "(no thread "
                              "variables set)"))


# ---------------------------------------------------------------- shared data
def shared_data(path, models, max_batch, seed=0):
    """Write the data every worker reads: a binary batch ``x``, noise per model
    and level, and each model's initial parameters (float64).

    ``x`` is MNIST's test set (binarised once, as npvae does) when NPVAE_DATA
    is set, else random binary pixels with MNIST's mean.  Initial parameters
    are npvae's own (``random_state=0``), so all three frameworks start from
    the same numbers; when the npvae model cannot be built they come from
    :func:`benchmarks.reference_models.init_params` (same scheme).
    """
    import npvae

    source = "random binary (set NPVAE_DATA for MNIST)"
    x = None
    if os.environ.get("NPVAE_DATA"):
        try:
            from npvae.data import load_dataset

            ds = load_dataset("mnist", download=False)
            x = (ds.x_test[:max_batch] > 0).astype(np.uint8)
            source = f"MNIST test set, first {len(x)} images, binarised ({ds.binarization})"
        except Exception as exc:  # fall back, and say why
            source = f"random binary (MNIST not loaded: {str(exc).splitlines()[0][:120]})"
    if x is None:
        x = (np.random.default_rng(seed).random((max_batch, 784)) < 0.13).astype(np.uint8)
    rng = np.random.default_rng(seed + 1)
    arrays = {"x": x}
    init = {}
    for name in models:
        spec = R.get_spec(name)
        for l, z in enumerate(spec.latent_sizes):
            arrays[f"noise_{name}_{l}"] = rng.standard_normal((max_batch, z))
        try:
            common = dict(activation="relu", likelihood="bernoulli", dtype="float64",
                          random_state=0)
            if name == "vae":
                model = npvae.VAE(n_latent=20, hidden_sizes=(400,), **common)
            else:
                model = npvae.HierarchicalVAE(latent_sizes=(20, 10),
                                              hidden_sizes=((400,), (200,)), **common)
            params = R.params_from_npvae(model.initialize(784), spec)
            init[name] = "npvae random_state=0"
        except Exception as exc:
            params = R.init_params(spec, seed, "float64")
            init[name] = f"reference_models.init_params ({type(exc).__name__}: {exc})"
        for layer, (W, b) in params.items():
            arrays[f"params_{name}_{layer}_W"], arrays[f"params_{name}_{layer}_b"] = W, b
    np.savez(path, **arrays)
    return {"x_source": source, "x_mean": float(x.mean()), "initial_parameters": init}


# ------------------------------------------------------------------- workers
def child_env(openblas_coretype=None):
    """The environment of every benchmark subprocess: this one, with the
    repository on ``PYTHONPATH`` and ``OPENBLAS_CORETYPE`` as asked."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("OMP_WAIT_POLICY", None)
    if _OMP_WAIT_POLICY is not None:
        env["OMP_WAIT_POLICY"] = _OMP_WAIT_POLICY
    if openblas_coretype == "auto":
        env.pop("OPENBLAS_CORETYPE", None)
    elif openblas_coretype:
        env["OPENBLAS_CORETYPE"] = openblas_coretype
    return env


class Worker:
    """A :mod:`benchmarks._worker` subprocess and its request/reply pipe."""

    def __init__(self, framework, threads, pin, log_dir, openblas_coretype=None):
        self.framework, self.threads = framework, threads
        env = child_env(openblas_coretype)
        if framework == "jax" and threads == 1:
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + JAX_ONE_THREAD_FLAGS).strip()
        self.xla_flags = env.get("XLA_FLAGS", "") if framework == "jax" else None
        self.log_path = os.path.join(log_dir, f"{framework}-{threads}.log")
        self._log = open(self.log_path, "w")
        argv = [sys.executable, "-m", "benchmarks._worker", framework, "--threads", str(threads)]
        if pin:
            argv.append("--pin")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, text=True, cwd=ROOT, env=env)
        hello = self._read()
        self.skipped = hello.get("skipped") or hello.get("error")
        self.hello = hello

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            self._log.flush()
            with open(self.log_path) as f:
                tail = f.read()[-1500:]
            return {"error": f"{self.framework} worker exited (code {self.proc.poll()}): {tail}"}
        return json.loads(line)

    def request(self, cmd, **kwargs):
        if self.proc.poll() is not None:
            return {"error": f"{self.framework} worker is not running"}
        self.proc.stdin.write(json.dumps(dict(cmd=cmd, **kwargs)) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# --------------------------------------------------------- the machine's load
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_ticks(pids):
    """CPU time (clock ticks, user + system) used so far by the processes ``pids``."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            total += int(rest[11]) + int(rest[12])        # utime + stime
        except (OSError, IndexError, ValueError):
            pass
    return total


class CpuMeter:
    """How busy the machine was with *other* processes during a measurement.

    Reads the whole machine's busy CPU time from ``/proc/stat`` and subtracts
    the CPU time of this process and of the given worker pids
    (``/proc/<pid>/stat``).  ``stop()`` returns the average number of cores
    that other processes kept busy, and the hypervisor's steal time, both in
    cores.  On a shared 2-core machine a value near 1 means that a 2-thread
    measurement ran on half the machine it asked for.  Returns ``{}`` where
    ``/proc`` is not available.
    """

    def __init__(self, pids):
        self.pids = [os.getpid()] + list(pids)
        self._start = None

    def _ours(self):
        return _process_ticks(self.pids)

    def _snapshot(self):
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6]                # user nice system irq softirq
        steal = v[7] if len(v) > 7 else 0
        return time.monotonic(), busy, steal, self._ours()

    def start(self):
        try:
            self._start = self._snapshot()
        except (OSError, ValueError, IndexError):
            self._start = None
        return self

    def stop(self):
        if self._start is None:
            return {}
        t1, busy1, steal1, ours1 = self._snapshot()
        t0, busy0, steal0, ours0 = self._start
        elapsed = max(t1 - t0, 1e-9) * _HZ
        return {"others_cores": max(0.0, (busy1 - busy0) - (ours1 - ours0)) / elapsed,
                "steal_cores": (steal1 - steal0) / elapsed}


# ------------------------------------------------------------------- timing
def _median(values):
    return statistics.median(values) if values else None


def _spread(values):
    """(max − min) / median of the rounds: how noisy a figure was."""
    if len(values) < 2:
        return None
    return (max(values) - min(values)) / statistics.median(values)


def wait_quiet(pids, max_seconds):
    """Sample the other processes' load each second until it drops below
    :data:`BUSY_CORES` or ``max_seconds`` pass; returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_seconds:
        meter = CpuMeter(pids).start()
        time.sleep(1.0)
        if meter.stop().get("others_cores", 0.0) <= BUSY_CORES:
            break
    return time.monotonic() - t0


def measure_config(workers, model, dtype, threads, batch, args, data_path):
    """Set up every worker for one configuration, then time it in rounds."""
    rec = {"model": model, "dtype": dtype, "threads": threads, "batch": batch,
           "frameworks": {}, "skipped": {}}
    if args.wait_quiet > 0:
        rec["waited_for_quiet_seconds"] = wait_quiet([w.proc.pid for w in workers.values()],
                                                     args.wait_quiet)
    active = []
    for fw, w in workers.items():
        if w.skipped:
            rec["skipped"][fw] = w.skipped
            continue
        reply = w.request("setup", model=model, dtype=dtype, batch=batch, data=data_path,
                          warmup=args.warmup)
        if "skipped" in reply or "error" in reply:
            rec["skipped"][fw] = reply.get("skipped") or reply["error"]
            continue
        rec["frameworks"][fw] = {"setup": reply, "rounds": []}
        active.append(fw)
    if "npvae" in active:
        setup = rec["frameworks"]["npvae"]["setup"]
        rec["flops_per_example"] = setup["flops_per_example"]
        rec["gemms"] = setup["gemms"]
        rec["gemm"] = {"rounds": []}
    else:
        rec["flops_per_example"] = R.step_flops(R.spec_layers(R.get_spec(model)), 1)
    meter = CpuMeter([w.proc.pid for w in workers.values()]).start()
    for _ in range(args.repeats):
        for fw in active:
            # the other workers should be idle now: one whose threads still spin after
            # its own turn takes cores from this one, and 'other load' cannot see it
            others = [w.proc.pid for name, w in workers.items() if name != fw]
            time.sleep(getattr(args, "gap", 0.0))
            t0, cpu0 = time.monotonic(), _process_ticks(others)
            m = workers[fw].request("measure", min_time=args.min_time, min_steps=3)
            if "error" in m:
                rec["skipped"][fw] = m["error"]
                continue
            rec["frameworks"][fw]["rounds"].append(m["examples_per_second"])
            busy = (_process_ticks(others) - cpu0) / _HZ / max(time.monotonic() - t0, 1e-9)
            rec["frameworks"][fw].setdefault("others_busy_cores", []).append(busy)
        if "npvae" in active:
            g = workers["npvae"].request("gemm", min_time=args.min_time, min_steps=3)
            if "error" not in g:
                rec["gemm"]["rounds"].append(g["examples_per_second"])
    rec["load"] = meter.stop()
    summarise(rec)
    return rec


def summarise(rec):
    """Medians, spreads, paired ratios and the roofline fraction of one configuration."""
    fws = rec["frameworks"]
    for fw, r in fws.items():
        r["examples_per_second"] = _median(r["rounds"])
        r["spread"] = _spread(r["rounds"])
    rec["ratios"] = {}
    base = fws.get("npvae", {}).get("rounds", [])
    for other in ("torch", "jax"):
        rounds = fws.get(other, {}).get("rounds", [])
        paired = [a / b for a, b in zip(base, rounds)]
        if paired:
            rec["ratios"][f"npvae/{other}"] = _median(paired)
    if "gemm" in rec and rec["gemm"]["rounds"]:
        g = rec["gemm"]
        g["examples_per_second"] = _median(g["rounds"])
        g["gflops"] = g["examples_per_second"] * rec["flops_per_example"] / 1e9
        paired = [a / b for a, b in zip(base, g["rounds"])]
        rec["roofline_fraction"] = _median(paired)
    losses = {fw: r["setup"].get("initial_loss") for fw, r in fws.items()}
    losses = {k: v for k, v in losses.items() if v is not None}
    if len(losses) > 1:
        ref = losses.get("npvae", next(iter(losses.values())))
        rec["initial_loss"] = losses
        rec["initial_loss_max_rel_diff"] = max(abs(v - ref) / abs(ref) for v in losses.values())


def compile_times(models, dtypes, threads, batch=128, openblas_coretype=None):
    """npvae's first step in fresh interpreters: empty Numba cache, then the same cache warm."""
    out = []
    env = child_env(openblas_coretype)
    for model in models:
        for dtype in dtypes:
            cache = tempfile.mkdtemp(prefix="npvae-numba-cache-")
            env["NUMBA_CACHE_DIR"] = cache
            row = {"model": model, "dtype": dtype, "batch": batch, "threads": threads}
            try:
                for label in ("cold", "warm"):
                    proc = subprocess.run(
                        [sys.executable, "-m", "benchmarks.coldstart", "--model", model,
                         "--dtype", dtype, "--batch", str(batch), "--threads", str(threads)],
                        capture_output=True, text=True, cwd=ROOT, env=env)
                    lines = proc.stdout.strip().splitlines()
                    if proc.returncode != 0 or not lines:
                        row[label] = {"error": proc.stderr[-800:]}
                        break
                    row[label] = json.loads(lines[-1])
                    if "skipped" in row[label]:
                        break
            finally:
                shutil.rmtree(cache, ignore_errors=True)
            out.append(row)
    return out


# ------------------------------------------------------------------- output
def _fmt_rate(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def _fmt_ratio(v):
    return "–" if v is None else f"{v:.2f}"


def markdown(results):
    """The Markdown tables: throughput, roofline, profile, compile, parity."""
    rows = results["throughput"]
    cfg = results["config"]
    L = [_header(results), ""]
    L.append(f"Training step (forward, backward, Adam), examples/s: median of "
             f"{cfg['repeats']} interleaved rounds of ≥ {cfg['min_time']} s each. "
             "Ratios: median of the per-round ratios (> 1: npvae faster).")
    L.append("")
    if cfg.get("busy_cores"):
        L.append(f"**Contended on purpose:** {cfg['busy_cores']} core(s) kept busy by spinning "
                 "processes pinned to the last CPUs during the whole run (`--busy-cores`); "
                 "they count in 'other load' below.")
        L.append("")
    L.append("Other load: CPU cores kept busy by other processes on the machine during "
             "the measurement (see README: with 2 threads on 2 cores, anything near 1 "
             "makes the figure a measure of contention, not of speed).")
    L.append("")
    L.append("| model | dtype | threads | batch | npvae | torch | jax | npvae/torch | npvae/jax "
             "| other load |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = r["frameworks"]
        load = r.get("load", {}).get("others_cores")
        L.append(f"| {r['model']} | {r['dtype']} | {r['threads']} | {r['batch']} | "
                 + " | ".join(_fmt_rate(f.get(fw, {}).get("examples_per_second"))
                              for fw in FRAMEWORKS)
                 + f" | {_fmt_ratio(r['ratios'].get('npvae/torch'))} | "
                 f"{_fmt_ratio(r['ratios'].get('npvae/jax'))} | "
                 f"{'–' if load is None else f'{load:.2f}'} |")
    busy = [r for r in rows if r.get("load", {}).get("others_cores", 0) > BUSY_CORES]
    if busy:
        L += ["", f"**Warning:** other processes kept more than {BUSY_CORES} of a core busy "
              f"during {len(busy)} of {len(rows)} configurations (up to "
              f"{max(r['load']['others_cores'] for r in busy):.2f} cores); their figures, "
              "multi-threaded ones above all, are unreliable. Re-run on a quiet machine."]
    skipped = sorted({f"{fw}: {msg}" for r in rows for fw, msg in r["skipped"].items()})
    if skipped:
        L.append("")
        L += [f"- {s.splitlines()[0][:200]}" for s in skipped]
    roof = [r for r in rows if r.get("gemm", {}).get("examples_per_second")]
    if roof:
        L += ["", "GEMM-only rate: the step's matrix products alone (np.matmul at the step's "
              "own shapes and layouts, same threads), as examples/s: what the step would "
              "reach if it did nothing else; fraction = npvae / GEMM-only rate (median of "
              "per-round ratios).", "",
              "| model | dtype | threads | batch | MFLOP/example | GEMM GFLOP/s at step shapes | "
              "GEMM-only ex/s | npvae ex/s | npvae GFLOP/s | fraction |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in roof:
            nv = r["frameworks"]["npvae"]["examples_per_second"]
            L.append(f"| {r['model']} | {r['dtype']} | {r['threads']} | {r['batch']} | "
                     f"{r['flops_per_example'] / 1e6:.2f} | {r['gemm']['gflops']:.1f} | "
                     f"{_fmt_rate(r['gemm']['examples_per_second'])} | {_fmt_rate(nv)} | "
                     f"{nv * r['flops_per_example'] / 1e9:.1f} | "
                     f"{r['roofline_fraction']:.0%} |")
    if any(r.get("roofline_fraction", 0) > 1 for r in roof):
        L += ["", "A fraction above 100% means npvae computed some products faster than "
              "np.matmul does at those shapes — at batch 1 it forms the outer product "
              "xᵀ·da by a broadcast multiply, where OpenBLAS's GEMM with an inner "
              "dimension of 1 is several times slower — so there the GEMM line is no "
              "ceiling."]
    peaks = results.get("peak_gemm", [])
    if peaks:
        L += ["", "BLAS best case, one square product: " + "; ".join(
            f"{p['dtype']} {p['threads']} thread(s) {p['n']}³: {p['gflops']:.0f} GFLOP/s"
            for p in peaks if "gflops" in p)]
    prof = results.get("profile", [])
    if prof:
        cats = ["matrix products", "bias + activation", "reparameterisation", "KL",
                "likelihood", "log-densities", "optimiser (Adam)", "rest"]
        L += ["", "Where an npvae step goes (exclusive time of the wrapped kernels; "
              "'rest' is Python overhead and glue; 'GEMM replay' is the same products timed "
              "alone, for comparison with 'matrix products'):", "",
              "| model | dtype | threads | batch | step ms (profiled) | GEMM replay ms | "
              + " | ".join(cats) + " |",
              "|---|---|---:|---:|---:|---:|" + "---:|" * len(cats)]
        for p in prof:
            if "fractions" not in p:
                continue
            replay = _gemm_replay_ms(rows, p)
            L.append(f"| {p['model']} | {p['dtype']} | {p['threads']} | {p['batch']} | "
                     f"{p['step_seconds'] * 1e3:.2f} | "
                     f"{'–' if replay is None else f'{replay:.2f}'} | "
                     + " | ".join(f"{p['fractions'][c]:.0%}" for c in cats) + " |")
        big = [p for p in prof if "fractions" in p and p["batch"] == 1024]
        if big:
            L += ["", "Share of the step in matrix products at batch 1024 (the higher, the "
                  "closer the step is to the BLAS roofline): " + "; ".join(
                      f"{p['model']} {p['dtype']} {p['threads']} thr: "
                      f"{p['fractions']['matrix products']:.0%}" for p in big)]
    comp = results.get("compile", [])
    jax_first = [(r, r["frameworks"]["jax"]["setup"]) for r in rows if "jax" in r["frameworks"]]
    if comp or jax_first:
        L += ["", "Start-up and JIT compile (seconds):", "",
              "| what | model | dtype | batch | import | first step | second step | "
              "steady step |", "|---|---|---|---:|---:|---:|---:|---:|"]
        for c in comp:
            for label in ("cold", "warm"):
                d = c.get(label)
                if not d or "first_step_seconds" not in d:
                    if d:
                        L.append(f"| npvae {label} | {c['model']} | {c['dtype']} | "
                                 f"{c['batch']} | {(d.get('skipped') or d.get('error', ''))[:60]}"
                                 " | | | |")
                    continue
                what = ("npvae, empty Numba cache (cold compile)" if label == "cold"
                        else "npvae, Numba cache warm")
                L.append(f"| {what} | {c['model']} | {c['dtype']} | {c['batch']} | "
                         f"{d['import_seconds']:.2f} | {d['first_step_seconds']:.3f} | "
                         f"{d['second_step_seconds']:.4f} | {d['steady_step_seconds']:.4f} |")
        for r, s in jax_first:
            if r["threads"] != rows[0]["threads"]:
                continue
            steady = r["batch"] / r["frameworks"]["jax"]["examples_per_second"]
            L.append(f"| jax first jitted call (trace + compile) | {r['model']} | {r['dtype']} | "
                     f"{r['batch']} | | {s['first_step_seconds']:.3f} | "
                     f"{s['second_step_seconds']:.4f} | {steady:.4f} |")
    par = [r for r in rows if "initial_loss_max_rel_diff" in r]
    if par:
        worst = max(par, key=lambda r: r["initial_loss_max_rel_diff"])
        L += ["", f"Same computation check: the loss at the shared initial parameters and "
              f"noise agrees across frameworks to a relative "
              f"{worst['initial_loss_max_rel_diff']:.1e} at worst "
              f"({worst['model']} {worst['dtype']} batch {worst['batch']})."]
    return "\n".join(L) + "\n"


def _header(results):
    """One line saying where and with what the numbers were measured."""
    meta = results["meta"]
    v = meta["versions"]
    arch = sorted({p.get("architecture") for w in results.get("workers", [])
                   for p in w.get("info", {}).get("threadpool_info", [])
                   if p.get("internal_api") == "openblas" and p.get("architecture")})
    coretype = results["config"].get("openblas_coretype") or meta["env"].get("OPENBLAS_CORETYPE")
    return (f"Measured {meta['timestamp'][:10]} on {meta['cpu_model']} "
            f"({meta['usable_cpus']} CPUs, shared), Python {meta['python']}, "
            f"numpy {v.get('numpy')}, numba {v.get('numba')}, torch {v.get('torch')}, "
            f"jax {v.get('jax')}, npvae at {meta.get('npvae_source', {}).get('commit')}"
            + ("+changes" if meta.get("npvae_source", {}).get("uncommitted") else "")
            + f"; npvae's OpenBLAS kernels: {'/'.join(arch) or '?'}"
            f" (OPENBLAS_CORETYPE={coretype or 'unset'}).")


def _gemm_replay_ms(rows, p):
    """Milliseconds per step of the replayed GEMMs of ``p``'s configuration."""
    for r in rows:
        if (r["model"], r["dtype"], r["threads"], r["batch"]) == \
                (p["model"], p["dtype"], p["threads"], p["batch"]):
            ceiling = r.get("gemm", {}).get("examples_per_second")
            return None if not ceiling else r["batch"] / ceiling * 1e3
    return None


def bar_chart(results, path):
    """npvae's speed as a ratio to PyTorch and to JAX by batch, on a linear axis (a log
    axis of examples/s made 3.3x look like 10x); one panel per model/dtype/threads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["throughput"]
    panels = []
    for r in rows:
        key = (r["model"], r["dtype"], r["threads"])
        if key not in panels:
            panels.append(key)
    if not panels:
        return None
    ncols = min(4, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False)
    colors = {"torch": "#ee4c2c", "jax": "#2ca02c"}
    width = 0.38
    drawn = False
    for ax, key in zip(axes.flat, panels):
        sub = [r for r in rows if (r["model"], r["dtype"], r["threads"]) == key]
        xs = np.arange(len(sub))
        for i, fw in enumerate(("torch", "jax")):
            vals = [r.get("ratios", {}).get(f"npvae/{fw}") or 0.0 for r in sub]
            if any(vals):
                bars = ax.bar(xs + (i - 0.5) * width, vals, width, label=f"npvae / {fw}",
                              color=colors[fw])
                ax.bar_label(bars, fmt="%.2f", fontsize=7)
                drawn = True
        ax.axhline(1.0, color="k", lw=1)
        ax.set_xticks(xs, [str(r["batch"]) for r in sub])
        ax.set_xlabel("batch size")
        ax.set_ylabel("speed ratio (> 1: npvae faster)")
        load = max((r.get("load", {}).get("others_cores", 0.0) for r in sub), default=0.0)
        busy = f"\nother load up to {load:.1f} cores" if load > BUSY_CORES else ""
        ax.set_title(f"{key[0]} {key[1]}, {key[2]} thread{'s' if key[2] > 1 else ''}{busy}",
                     fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if not drawn:
        plt.close(fig)
        return None
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle("Training step: npvae's examples/s over PyTorch's and JAX's "
                 "(median of per-round ratios)")
    fig.tight_layout()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
               ncol=len(labels), frameon=False)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def save(results, out_dir, stem, md):
    """Write ``<stem>-<timestamp>.json``, the ``latest`` copies and the chart."""
    os.makedirs(out_dir, exist_ok=True)
    stamp = results["meta"]["timestamp"].replace(":", "").replace("-", "")
    paths = {}
    prefix = "" if stem == "throughput" else stem + "-"
    paths["json"] = os.path.join(out_dir, f"{stem}-{stamp}.json")
    with open(paths["json"], "w") as f:
        json.dump(results, f, indent=1, default=str)
    shutil.copyfile(paths["json"], os.path.join(out_dir, f"{prefix}latest.json"))
    with open(os.path.join(out_dir, f"{prefix}latest.md"), "w") as f:
        f.write(md)
    if results.get("throughput"):
        try:
            png = bar_chart(results, os.path.join(out_dir, f"{stem}-{stamp}.png"))
            if png:
                shutil.copyfile(png, os.path.join(out_dir, "latest.png"))
                paths["png"] = png
        except Exception as exc:  # a chart failure must not lose the numbers
            print(f"chart not written: {type(exc).__name__}: {exc}")
    return paths


# --------------------------------------------------------------------- main
def run_throughput(args, results, log_dir):
    data_path = os.path.join(log_dir, "shared.npz")
    results["meta"]["data"] = shared_data(data_path, args.models, max(args.batches))
    print(f"data: {results['meta']['data']['x_source']}")
    for name, how in results["meta"]["data"]["initial_parameters"].items():
        print(f"initial parameters ({name}): {how}")
    results["throughput"], results["profile"], results["peak_gemm"] = [], [], []
    results["workers"] = []
    for threads in args.threads:
        workers = {}
        for fw in args.frameworks:
            w = Worker(fw, threads, not args.no_pin, log_dir, args.openblas_coretype)
            info = w.request("info") if not w.skipped else {}
            desc = {"framework": fw, "threads": threads, "hello": w.hello, "info": info,
                    "xla_flags": w.xla_flags, "skipped": w.skipped}
            results["workers"].append(desc)
            workers[fw] = w
            if w.skipped:
                print(f"[{fw}] {w.skipped.splitlines()[0][:300]}")
            else:
                print(f"[{fw} worker, {threads} thread(s)] " + _describe_worker(fw, info, w))
        try:
            if "npvae" in workers and not workers["npvae"].skipped:
                for dtype in args.dtypes:
                    p = workers["npvae"].request("peak_gemm", dtype=dtype, n=1024,
                                                 min_time=args.min_time)
                    p["threads"] = threads
                    results["peak_gemm"].append(p)
            for model in args.models:
                for dtype in args.dtypes:
                    for batch in args.batches:
                        rec = measure_config(workers, model, dtype, threads, batch, args,
                                             data_path)
                        results["throughput"].append(rec)
                        print(_progress_line(rec), flush=True)
                        if batch in args.profile_batches and "npvae" in rec["frameworks"]:
                            p = workers["npvae"].request("profile", steps=args.profile_steps)
                            p.update(model=model, dtype=dtype, threads=threads, batch=batch)
                            results["profile"].append(p)
                            if "fractions" in p:
                                print(f"    profile: matrix products "
                                      f"{p['fractions']['matrix products']:.0%} of "
                                      f"{p['step_seconds'] * 1e3:.2f} ms", flush=True)
        finally:
            for w in workers.values():
                w.close()
    if not args.no_compile and "npvae" in args.frameworks:
        print("npvae start-up: fresh interpreters, empty then warm Numba cache ...", flush=True)
        results["compile"] = compile_times(args.models, args.dtypes, args.threads[0],
                                           openblas_coretype=args.openblas_coretype)


def _describe_worker(fw, info, w):
    if fw == "npvae":
        pools = "; ".join(f"{p.get('internal_api')} {p.get('architecture') or ''} "
                          f"{p['num_threads']} thr" for p in info.get("threadpool_info", []))
        return (f"numba threads {info.get('numba_threads')}, backend "
                f"{info.get('npvae_backend')}, pools: {pools}, CPUs {w.hello.get('cpu_affinity')}")
    if fw == "torch":
        return (f"torch threads {info.get('torch_threads')} (interop "
                f"{info.get('torch_interop_threads')}), CPUs {w.hello.get('cpu_affinity')}")
    return f"XLA_FLAGS={info.get('XLA_FLAGS')!r}, CPUs {info.get('cpu_affinity')}"


def _progress_line(rec):
    f = rec["frameworks"]
    parts = [f"{fw} {_fmt_rate(f[fw]['examples_per_second'])}" for fw in FRAMEWORKS if fw in f]
    ratios = [f"{k} {v:.2f}" for k, v in rec["ratios"].items()]
    roof = (f", {rec['roofline_fraction']:.0%} of the GEMM-only rate"
            if rec.get("roofline_fraction") else "")
    load = rec.get("load", {}).get("others_cores")
    load = "" if load is None else f" [other load {load:.2f} cores" + (
        ", BUSY]" if load > BUSY_CORES else "]")
    return (f"{rec['model']} {rec['dtype']} threads={rec['threads']} batch={rec['batch']}: "
            + ", ".join(parts) + " ex/s" + (" | " + ", ".join(ratios) if ratios else "") + roof
            + load)


def main(argv=None):
    args = resolve_args(build_parser().parse_args(argv))
    meta = machine_info()
    meta["npvae_source"] = npvae_source()
    meta["timestamp"] = datetime.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    results = {"meta": meta, "config": {k: v for k, v in vars(args).items()}}
    print_machine(meta)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="npvae-bench-") as log_dir:
        if args.memory:
            from .memory import memory_markdown, run_memory

            print(f"memory: one MNIST epoch each, {args.memory_threads} thread(s) ...", flush=True)
            results["memory"] = run_memory(args.memory_threads)
            src = meta["npvae_source"]
            md = (f"Measured {meta['timestamp'][:10]} on {meta['cpu_model']}, npvae at "
                  f"{src.get('commit')}{'+changes' if src.get('uncommitted') else ''}, "
                  f"torch {meta['versions'].get('torch')}.\n\n"
                  + memory_markdown(results["memory"]))
            stem = "memory"
        else:
            print(f"threads {args.threads}; workers pinned: {not args.no_pin}; "
                  f"{args.repeats} rounds x {args.min_time}s; JAX: one worker per thread "
                  f"count ({JAX_ONE_THREAD_FLAGS!r} at 1 thread)", flush=True)
            if args.busy_cores:
                print(f"{args.busy_cores} core(s) kept busy by spinning processes on CPUs "
                      f"{spinner_cpus(args.busy_cores)}", flush=True)
            with busy_cores(args.busy_cores):
                run_throughput(args, results, log_dir)
            md = markdown(results)
            stem = "throughput"
    results["meta"]["seconds"] = time.perf_counter() - t0
    paths = save(results, args.out, stem, md)
    print()
    print(md)
    print("written: " + ", ".join(paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
