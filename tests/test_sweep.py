"""``npvae sweep`` (issue 30): the sweep file refused in one line before anything runs,
a failing run recorded while the others finish, and a real Dask cluster (a
``dask scheduler`` and two ``dask worker`` processes) that loses a worker mid-sweep
and still gives every row, with the test ELBOs of the same sweep on a local cluster."""
from __future__ import annotations

import csv
import glob
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from npvae.cli import main
from npvae.cli.sweep import finished_row, run_one
from npvae.cli.sweep_file import load_sweep

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
SMALL = """
[base]
dataset = "digits"
epochs = 3
hidden = [200, 200]
latent = [8]
batch_size = 20
objective = "iwae"
no_figures = true
"""
#: 2 settings x 2 seeds
GRID = "[grid]\nk = [2, 3]\nseed = [0, 1]\n"


def _write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _refused(tmp_path, capsys, text):
    out = tmp_path / "out"
    code = main(["sweep", _write(tmp_path, text), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("npvae sweep: error: "), err
    assert not out.exists()                 # refused before anything ran or was written
    return err


# ----------------------------------------------------------------------- the sweep file
def test_a_good_file_expands_into_named_runs(tmp_path):
    runs, k = load_sweep(_write(tmp_path, SMALL + GRID))
    assert [r.name for r in runs] == ["k=2_seed=0", "k=2_seed=1", "k=3_seed=0", "k=3_seed=1"]
    assert k == 0 and runs[0].settings["threads"] == 1     # repeatable runs by default
    assert "--hidden=200,200" in runs[0].argv and "--no-figures" in runs[0].argv


@pytest.mark.parametrize("text, words", [
    (SMALL + "epochz = 3\n" + GRID, "unknown key 'epochz'"),
    (SMALL + "[grid]\nseed = [0]\n[grids]\nk = [1]\n", "unknown table or key 'grids'"),
    (SMALL + "out = 'x'\n" + GRID, "unknown key 'out'"),
    (SMALL, "[grid] is empty"),
    (SMALL + "[grid]\n", "[grid] is empty"),
    (SMALL + "[grid]\nseed = []\n", "seed is an empty list"),
    (SMALL + "[grid]\nseed = 3\n", "seed must be a list"),
    (SMALL + "[grid]\nepochs = [2]\n", "epochs is in [base] too"),
    (SMALL.replace("epochs = 3", "epochs = 'three'") + GRID, "epochs must be an integer"),
    (SMALL.replace("epochs = 3", "epochs = 2.5") + GRID, "epochs must be an integer"),
    (SMALL.replace("no_figures = true", "no_figures = 1") + GRID, "no_figures must be true or"),
    (SMALL.replace("latent = [8]", "latent = ['8']") + GRID, "latent must be an integer or"),
    (SMALL + "lr = '0.001'\n" + GRID, "lr must be a number"),
    (SMALL + "k = 2\n[grid]\nseed = [0, 0]\n", "gives the run seed=0 twice"),
    # values that `npvae train` refuses: its parser, its checks, the model's
    (SMALL + GRID.replace("[2, 3]", "[2, 0]"), "argument --k: must be an integer >= 1"),
    (SMALL + GRID.replace("[2, 3]", "[1, 3]"), "--objective iwae needs --k K"),
    (SMALL + "lr = -1.0\n" + GRID, "argument --lr"),
    (SMALL.replace("digits", "nope") + GRID, "unknown data set 'nope'"),
    (SMALL + "model = 'fisher'\n" + GRID, "--model fisher has its own objective"),
    (SMALL + "beta = 2.0\n" + GRID, "the IWAE bound (objective='iwae') needs beta=1"),
    (SMALL + "gaussian_variance = 'scalar'\n" + GRID, "applies to --likelihood gaussian only"),
    (SMALL + "[evaluate]\nn_importance = -1\n" + GRID, "n_importance must be an integer"),
    ("[base\n", "is not valid TOML"),
])
def test_a_bad_file_is_refused_in_one_line_before_anything_runs(tmp_path, capsys, text, words):
    err = _refused(tmp_path, capsys, text)
    assert words in err and "k=2_seed=0" not in os.listdir(tmp_path)


_INT_KEYS = ["epochs", "batch_size", "seed", "k", "samples"]
_ACTIONS = {}


@given(key=st.sampled_from(_INT_KEYS),
       value=st.one_of(st.text(max_size=5), st.booleans(),
                       st.floats(allow_nan=False, allow_infinity=False).filter(
                           lambda v: v != int(v)) | st.just(0.5),
                       st.lists(st.integers(0, 5), max_size=2)))
def test_any_wrong_type_for_an_integer_setting_is_refused(tmp_path_factory, key, value):
    from npvae.cli.common import CLIError
    from npvae.cli.sweep_file import _actions, _check_type

    actions = _ACTIONS.setdefault("train", _actions())
    with pytest.raises(CLIError, match=f"{key} must be an integer"):
        _check_type("sweep.toml: [base]", key, value, actions)


def test_a_sweep_without_dask_says_how_to_install_it(tmp_path):
    path = _write(tmp_path, SMALL + GRID)
    code = ("import sys; sys.modules['distributed'] = None; from npvae.cli import main; "
            f"sys.exit(main(['sweep', {path!r}, '--out', {str(tmp_path / 'out')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and 'pip install -e ".[distributed]"' in proc.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------- failing runs
def test_a_run_that_fails_is_a_row_with_its_one_line_error(tmp_path):
    # the validation split is larger than the 1,500 training digits: found only with the data
    row = run_one(str(tmp_path / "run"), {"dataset": "digits", "epochs": 1, "threads": 1,
                                          "validation_size": 5000, "no_figures": True})
    assert row["status"] == "failed" and "--validation-size" in row["error"]
    assert "\n" not in row["error"]


def test_a_failing_run_is_recorded_and_the_others_finish(tmp_path):
    pytest.importorskip("distributed")
    text = SMALL.replace("epochs = 3", "epochs = 1").replace("[200, 200]", "[16]") + \
        "k = 2\n[grid]\nvalidation_size = [0.1, 5000]\n"
    out = tmp_path / "out"
    code = main(["sweep", _write(tmp_path, text), "--out", str(out), "--workers", "1"])
    assert code == 1                           # a run failed: the command says so
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["status"] for r in rows] == ["done", "failed"]
    assert float(rows[0]["test_elbo"]) < 0 and "--validation-size" in rows[1]["error"]
    assert (out / "summary.md").exists() and (out / "summary.png").exists()
    # started again, the finished run would be skipped and the failed one tried again
    done, failed = load_sweep(_write(tmp_path, text))[0]
    assert finished_row(rows[0]["run_dir"], done.settings)["test_elbo"] == pytest.approx(
        float(rows[0]["test_elbo"]), rel=1e-12)
    assert finished_row(rows[1]["run_dir"], failed.settings) is None


# ----------------------------------------------------------------------- a real cluster
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask(*args, log):
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + args[0],
                             *args[1:]], env=ENV, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


@pytest.fixture
def cluster(tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (no nanny:
    a worker's PID is the process that trains), killed at the end."""
    pytest.importorskip("distributed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "dask.log", "w")
    procs = [_dask("scheduler", "--host", "127.0.0.1", "--port", str(port),
                   "--dashboard-address", ":0", log=log)]
    try:
        procs += [_dask("worker", address, "--nthreads", "1", "--no-nanny", "--host",
                        "127.0.0.1", "--name", f"w{i}", log=log) for i in range(2)]
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address, procs[1:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def _elbos(out):
    rows = list(csv.DictReader(open(Path(out) / "results.csv")))
    return {Path(r["run_dir"]).name: (r["status"], r["test_elbo"]) for r in rows}


@pytest.mark.slow
def test_a_sweep_survives_a_killed_worker_with_the_local_clusters_numbers(tmp_path, cluster):
    address, workers = cluster
    path = _write(tmp_path, SMALL + GRID)
    remote = tmp_path / "remote"
    sweep = subprocess.Popen([sys.executable, "-m", "npvae", "sweep", path, "--out",
                              str(remote), "--scheduler", address], env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        from distributed import Client

        with Client(address, timeout="60s") as client:
            pids = client.run(os.getpid)               # {worker address: PID}
            victim = None
            while victim is None and sweep.poll() is None:
                # a run that has saved an epoch and not finished: kill the worker training it
                busy = {k: a for a, keys in client.processing().items() for k in keys}
                for key, addr in busy.items():
                    run = remote / str(key).split("-")[1]
                    if (run / "checkpoint.npz").exists() and not (run / "results.json").exists():
                        victim = pids[addr]
                        break
                time.sleep(0.02)
        assert victim in {w.pid for w in workers}, "the sweep ended before a worker was killed"
        os.kill(victim, signal.SIGKILL)
        output, _ = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, output
    remote_rows = _elbos(remote)
    assert len(remote_rows) == 4 and {s for s, _ in remote_rows.values()} == {"done"}
    local = tmp_path / "local"
    proc = subprocess.run([sys.executable, "-m", "npvae", "sweep", path, "--out", str(local),
                           "--workers", "2"], env=ENV, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _elbos(local) == remote_rows         # each run deterministic given seed and threads

@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(
    os.path.dirname(__file__), os.pardir, "benchmarks", "sweeps", "*.toml"))))
def test_every_shipped_sweep_file_loads(path):
    """The sweep files in benchmarks/sweeps pass the checks a sweep makes before it runs."""
    from npvae.cli.sweep_file import load_sweep
    runs, n_importance = load_sweep(path)
    assert runs and len({run.name for run in runs}) == len(runs)
    assert all("seed" in run.settings for run in runs)          # a spread over seeds
