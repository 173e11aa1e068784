"""``npvae sweep FILE.toml --out DIR``: every run of a sweep file (:mod:`.sweep_file`)
trained on a Dask cluster, each an ordinary run folder ``DIR/<grid values>``.

Without ``--scheduler`` a local cluster of worker processes runs them, as many
workers as the cores allow at the runs' thread count (one run per worker at a
time: workers x threads per run <= cores); with ``--scheduler tcp://HOST:8786``
they go to a running Dask cluster, whose workers must see DIR at the same path
(a shared file system) and find the data themselves (``NPVAE_DATA`` or the cache).

Each run is ``npvae train`` called in the worker's process (:func:`run_one`): a new
run, or ``--resume`` of the checkpoint a killed worker or an interrupted sweep left
(its last completed epoch); a run whose folder holds its results with the same
settings is not run again.  Results: ``DIR/results.csv``, ``DIR/summary.md`` and
``DIR/summary.png`` (:mod:`npvae.sweep`).  A run that fails is a ``failed`` row
with its one-line error; the others go on, and the command exits 1.
"""
from __future__ import annotations

import json
import os
import time
import uuid

from .common import CLIError, holds_run, one_line, say
from .evaluate import cmd_evaluate
from .resume import _same, flag
from .sweep_file import _train_parser, load_sweep, to_argv
from .train import cmd_train

MISSING_DASK = ('npvae sweep runs on Dask, which is not installed: pip install -e '
                '".[distributed]" (or pip install "dask[distributed]")')


# ----------------------------------------------------------------------- one run
def _read_json(path):
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def finished_row(run_dir, settings, n_importance=0):
    """The results of the run in ``run_dir`` when it is finished with these settings
    (and holds its importance-sampled NLL when ``n_importance`` asks for one), else None:
    ``{"test_elbo", "test_elbo_se", "nll", "train_seconds"}``."""
    config = _read_json(os.path.join(run_dir, "config.json"))
    results_path = os.path.join(run_dir, "results.json")
    results = _read_json(results_path)
    if config is None or results is None:
        return None
    args = _train_parser().parse_args(to_argv(settings))      # the values config.json holds
    if not all(_same(k, getattr(args, k), config.get(k)) for k in settings if k != "threads"):
        return None
    if not (results.get("epochs") == config.get("epochs") or results.get("early_stopped")):
        return None
    row = {"test_elbo": results.get("elbo"), "test_elbo_se": results.get("elbo_se"),
           "train_seconds": results.get("train_seconds")}
    if n_importance:
        path = os.path.join(run_dir, "evaluation-test.json")
        evaluation = _read_json(path)
        if (evaluation is None or evaluation.get("n_importance") != n_importance
                or os.path.getmtime(path) < os.path.getmtime(results_path)):
            return None
        row["nll"] = evaluation.get("nll")
    return row


def _failure(exc):
    """A failed run's error in one line, as ``npvae train`` would print it."""
    if isinstance(exc, CLIError):
        return one_line(exc)
    if isinstance(exc, (ValueError, OSError)):
        return f"error: {one_line(exc)}"
    return f"internal error: {type(exc).__name__}: {one_line(exc)}"


def _evaluate(run_dir, settings, n_importance):
    """``npvae evaluate`` of the parameters the run's test ELBO was measured on (the
    last epoch's, or the best one's after early stopping): evaluation-test.json."""
    results = _read_json(os.path.join(run_dir, "results.json")) or {}
    name = "best.npz" if results.get("early_stopped") else "checkpoint.npz"
    argv = ["evaluate", "--out", run_dir, "--checkpoint", os.path.join(run_dir, name),
            "--n-importance", str(n_importance),
            f"--threads={settings.get('threads') or 1}"]
    from .parser import build_parser

    cmd_evaluate(build_parser().parse_args(argv))
    return _read_json(os.path.join(run_dir, "evaluation-test.json")) or {}


def run_one(run_dir, settings, n_importance=0):
    """Train (or continue) one run of a sweep in this process: ``npvae train --out
    run_dir`` with the run's settings, ``--resume`` when a checkpoint is there (a
    folder holding only the settings of a run that never finished an epoch is
    started again).  Returns ``{"status", "test_elbo", ..., "error"}``; never raises
    for a failed run (Ctrl-C and SIGTERM excepted)."""
    try:
        row = finished_row(run_dir, settings, n_importance)
        if row is None:
            extra = {"out": run_dir, "quiet": True}
            if os.path.isfile(os.path.join(run_dir, "checkpoint.npz")):
                extra["resume"] = True
            elif holds_run(run_dir):
                extra["overwrite"] = True
            args = _train_parser().parse_args(
                to_argv(settings) + [f"--out={run_dir}"] + [flag(k) for k in extra
                                                            if k != "out"])
            args.explicit_ = set(settings) | set(extra)
            cmd_train(args)
            row = finished_row(run_dir, settings)
            if row is None:           # finished before its results were written
                evaluation = _evaluate(run_dir, settings, n_importance)
                row = {"test_elbo": evaluation.get("elbo"),
                       "test_elbo_se": evaluation.get("elbo_se"), "train_seconds": None,
                       "nll": evaluation.get("nll")}
            elif n_importance:
                row["nll"] = _evaluate(run_dir, settings, n_importance).get("nll")
        return {**row, "status": "done", "error": ""}
    except Exception as exc:         # noqa: BLE001 (a failed run is a row, not a crash)
        return {"status": "failed", "error": _failure(exc)}


# ----------------------------------------------------------------------- the cluster
def _distributed():
    try:
        import distributed
    except ImportError:
        raise CLIError(MISSING_DASK) from None
    return distributed


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                 # pragma: no cover (macOS, Windows)
        return os.cpu_count() or 1


def _dashboard(client):
    try:
        import bokeh  # noqa: F401 (only whether the dashboard can be served)
    except ImportError:
        return "dashboard: not served (it needs bokeh: pip install bokeh)"
    return f"dashboard: {client.dashboard_link}"


def connect(scheduler, workers, threads, n_runs):
    """``(client, cluster, description)``: a Client of the scheduler at ``scheduler``,
    or of a new local cluster of processes (``cluster`` then, to close)."""
    distributed = _distributed()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise CLIError(f"--scheduler {scheduler}: cannot connect ({one_line(exc)})") \
                from None
        n = len(client.scheduler_info().get("workers", {}))
        return client, None, f"the Dask cluster at {scheduler} ({n} workers now)"
    import logging

    cores = _cores()
    n = workers or max(1, cores // threads)
    if n * threads > cores:
        say(f"npvae sweep: note: --workers {n} x {threads} threads per run is more than "
             f"the {cores} cores; runs will share them")
    n = min(n, n_runs)
    try:
        import bokeh  # noqa: F401
        dashboard = ":0"
    except ImportError:
        dashboard = None
    cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=dashboard,
                                       silence_logs=logging.ERROR)
    return (distributed.Client(cluster), cluster,
            f"a local cluster of {n} worker processes, one run each at {threads} "
            f"thread{'s' if threads > 1 else ''} ({cores} cores: workers x threads <= cores)")


# ----------------------------------------------------------------------- the command
def _row(run, run_dir, result):
    return {**run.values, "seed": run.settings.get("seed", 0), **result, "run_dir": run_dir}


def _progress(rows, total, running, failed, name, result):
    done = sum(r["status"] == "done" for r in rows.values())
    what = (f"test ELBO {result['test_elbo']:.3f}" if result["status"] == "done"
            and result.get("test_elbo") is not None else f"failed: {result.get('error')}")
    say(f"sweep: {done}/{total} done, {running} running, {failed} failed; {name}: {what}")


def _run_all(client, runs, out, n_importance, rows):
    """Submit the runs, collect their rows as they end (a task lost with its worker is
    scheduled again by Dask; a run it had started resumes from its checkpoint)."""
    distributed = _distributed()
    token = uuid.uuid4().hex[:8]
    futures = {client.submit(run_one, os.path.abspath(os.path.join(out, run.name)),
                             run.settings, n_importance, key=f"npvae-{run.name}-{token}",
                             pure=False): run for run in runs}
    failed = sum(r["status"] == "failed" for r in rows.values())
    try:
        for left, future in enumerate(distributed.as_completed(futures), 1):
            run = futures[future]
            try:
                result = future.result()
            except Exception as exc:      # noqa: BLE001 (a lost task: e.g. KilledWorker)
                result = {"status": "failed", "error": _failure(exc)}
            rows[run.name] = _row(run, os.path.join(out, run.name), result)
            failed += result["status"] == "failed"
            slots = sum(client.nthreads().values())
            _progress(rows, len(rows) + len(futures) - left, min(slots, len(futures) - left),
                      failed, run.name, result)
    except BaseException:
        client.cancel(list(futures))
        raise


def cmd_sweep(args):
    from .. import sweep

    runs, n_importance = load_sweep(args.file)
    _distributed()                              # a missing Dask: before any folder
    out = args.out
    os.makedirs(out, exist_ok=True)
    keys = list(runs[0].values)
    rows, todo = {}, []
    for run in runs:
        run_dir = os.path.join(out, run.name)
        result = finished_row(run_dir, run.settings, n_importance)
        if result is None:
            todo.append(run)
        else:
            rows[run.name] = _row(run, run_dir, {**result, "status": "done", "error": ""})
    say(f"sweep: {len(runs)} runs in {out}/ ({len(rows)} finished already, {len(todo)} to run)")
    t0 = time.perf_counter()
    title = f"sweep {os.path.basename(args.file)}"

    def write(final_rows):
        path = sweep.write_csv(final_rows, keys, os.path.join(out, "results.csv"),
                               nll=bool(n_importance))
        sweep.write_summary([r for r in final_rows], keys, out, title, nll=bool(n_importance),
                            wall_seconds=time.perf_counter() - t0)
        return path

    if todo:
        threads = max(int(run.settings.get("threads") or 1) for run in todo)
        client, cluster, where = connect(args.scheduler, args.workers, threads, len(todo))
        try:
            say(f"sweep: running on {where}; {_dashboard(client)}")
            _run_all(client, todo, out, n_importance, rows)
        except KeyboardInterrupt:
            write([rows[r.name] for r in runs if r.name in rows])
            raise KeyboardInterrupt(f"{len(rows)} of {len(runs)} runs in {out}/results.csv; "
                                    "run the same command again to continue the others "
                                    "from their last epoch") from None
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    path = write([rows[r.name] for r in runs])
    failed = [r for r in rows.values() if r["status"] == "failed"]
    say(f"sweep: {len(rows) - len(failed)} done, {len(failed)} failed in "
         f"{time.perf_counter() - t0:.1f} s; wrote {path}, {out}/summary.md, {out}/summary.png")
    return 1 if failed else 0
