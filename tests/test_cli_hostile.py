"""Issue 31: hostile input to the command, each refused in one line with exit 2 (never a
hang, a traceback or an internal error): --config files and their values, damaged stored
settings and histories, FIFOs where files belong, huge data files, hostile flags and
environment; and the paths that were wrong rather than refused."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import npvae
import npvae.models  # noqa: F401
from npvae import checkpoint
from npvae.cli import main

FAST = ["--hidden", "16", "--latent", "2", "--batch-size", "50", "--quiet", "--no-figures"]
DIGITS = ["--dataset", "digits", "--epochs", "1", *FAST]


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out and "internal error" not in err, err
    if rc != 0:
        assert len(err.strip().splitlines()) == 1, err
    return rc, out, err


def _npvae(*argv, timeout=60, **env):
    proc = subprocess.run([sys.executable, "-m", "npvae", *argv], capture_output=True,
                          text=True, timeout=timeout,
                          env=dict(os.environ, MPLBACKEND="Agg", **env))
    assert "Traceback" not in proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "run")
    assert main(["train", *DIGITS, "--epochs", "2", "--out", out]) == 0
    return out


# ----------------------------------------------------------------------- --config
_BAD_VALUES = {"model": st.text(max_size=8).filter(lambda v: v not in
                                                  ("vae", "hvae", "cvae", "fisher")),
               "max_examples": st.integers(max_value=0), "threads": st.integers(max_value=0),
               "epochs": st.integers(max_value=-1), "batch_size": st.integers(max_value=0),
               "lr": st.sampled_from([0, -1e-3, "fast", 1e400, None]),
               "hidden": st.sampled_from([[-1], [0], "4,x", [[1], [-2]], [True]]),
               "latent": st.sampled_from([[], [0], 20.5, [[0]]]),
               "dtype": st.sampled_from(["float16", 32, None]),
               "validation_size": st.sampled_from([-1, 1.5, "x", True]),
               "quiet": st.sampled_from([1, "yes"])}


@given(st.sampled_from(sorted(_BAD_VALUES)).flatmap(
    lambda key: st.tuples(st.just(key), _BAD_VALUES[key])))
def test_config_values_are_checked_as_the_flags_are(tmp_path_factory, key_value):
    key, value = key_value
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(json.dumps({"dataset": "digits", "epochs": 1, "hidden": [4], key: value}))
    rc = main(["train", "--config", str(path), "--out", str(path.parent / "run")])
    assert rc == 2
    assert not (path.parent / "run").exists()


@pytest.mark.parametrize("text, words", [("{}", "holds no settings"),
                                         ('{"epochz": 3, "lrr": 1}', "unknown settings epochz"),
                                         ("[" * 100000, "not JSON"), ("[1]", "JSON object")])
def test_config_files_that_hold_no_run_are_refused(tmp_path, capsys, text, words):
    path = tmp_path / "config.json"
    path.write_text(text)
    rc, _, err = run(["train", "--config", str(path), "--out", str(tmp_path / "run")], capsys)
    assert rc == 2 and words in err


def test_a_recorded_config_runs_again(trained, tmp_path, capsys):
    out = str(tmp_path / "again")
    rc, _, err = run(["train", "--config", os.path.join(trained, "config.json"), "--out", out],
                     capsys)
    assert rc == 0, err
    assert json.load(open(os.path.join(out, "config.json")))["hidden"] == [16]


# ----------------------------------------------------------------------- damaged checkpoints
@pytest.mark.parametrize("damage", ["config", "history"])
def test_resume_of_damaged_settings_or_history_is_one_line(trained, tmp_path, capsys, damage):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(trained, out)
    path = str(out / "checkpoint.npz")
    model, meta = npvae.load(path), checkpoint.read_metadata(path)
    if damage == "config":
        meta["config"]["max_examples"] = "x"
    else:
        model.history_[0]["val_elbo"] = "x"
    checkpoint.save(model, path, meta)
    rc, _, err = run(["train", "--resume", "--epochs", "3", "--out", str(out)], capsys)
    assert rc == 2 and "damaged" in err


# ----------------------------------------------------------------------- FIFOs, huge files
@pytest.mark.parametrize("where", ["config", "checkpoint", "best"])
def test_a_fifo_where_a_file_belongs_is_refused_not_waited_on(trained, tmp_path, where):
    import shutil

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    if where == "config":
        argv = ["train", "--config", str(fifo), "--out", str(tmp_path / "x")]
    elif where == "checkpoint":
        argv = ["evaluate", "--checkpoint", str(fifo)]
    else:
        out = tmp_path / "run"
        shutil.copytree(trained, out)
        os.remove(out / "best.npz")
        os.mkfifo(out / "best.npz")
        argv = ["evaluate", "--out", str(out)]
    rc, _, err = _npvae(*argv)                # before: blocked until the timeout
    assert rc == 2 and "FIFO" in err and len(err.strip().splitlines()) == 1, err


def test_a_data_file_of_the_wrong_size_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from npvae import data
    from npvae.data import files

    def never(path):
        raise AssertionError("hashed a file of the wrong size")

    monkeypatch.setattr(files, "_hash_file", never)
    folder = tmp_path / "mnist"
    folder.mkdir()
    big = folder / "train-images-idx3-ubyte.gz"
    with open(big, "wb") as f:
        f.truncate(60 * 2**30)                  # 60 GB, sparse
    with pytest.raises(data.ChecksumError, match="size 64424509440 bytes"):
        files.resolve_file("mnist", big.name, data_dir=tmp_path, download=False)
    os.remove(big)
    os.mkfifo(big)
    with pytest.raises(OSError, match="FIFO"):
        files.resolve_file("mnist", big.name, data_dir=tmp_path, download=False)


# ----------------------------------------------------------------------- flags, environment
def test_negative_numbers_are_values_not_flags(tmp_path, capsys):
    from npvae.cli import build_parser

    args = build_parser().parse_args(["train", "--gaussian-logvar", "-1e3"])
    assert args.gaussian_logvar == -1000.0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--gaussian-logvar", "-1e400"])   # not finite


@pytest.mark.parametrize("size", ["-0", "-0.0", "-5"])
def test_a_negative_validation_size_is_refused(size, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--validation-size", size])
    assert exc.value.code == 2


def test_a_validation_split_that_leaves_little_to_train_is_refused(tmp_path, capsys):
    rc, _, err = run(["train", *DIGITS, "--validation-size", "0.9", "--out",
                      str(tmp_path / "run")], capsys)
    assert rc == 2 and "at most half" in err
    assert not (tmp_path / "run").exists()


def test_a_bad_numba_num_threads_is_one_line(tmp_path):
    rc, _, err = _npvae("train", *DIGITS, "--out", str(tmp_path / "run"),
                        NUMBA_NUM_THREADS="abc")
    assert rc == 2 and err.strip().splitlines() == [
        "npvae train: error: NUMBA_NUM_THREADS='abc' is not a whole number >= 1 (unset it, "
        "or use --threads N)"]


# ----------------------------------------------------------------------- wrong, not refused
def test_sample_says_the_paths_it_wrote(trained, tmp_path, capsys):
    target = str(tmp_path / "pics")
    rc, out, _ = run(["sample", "--out", trained, "-n", "4", "--output", target], capsys)
    assert rc == 0
    assert out.strip() == f"wrote {target}.png and {target}.npy"
    assert os.path.isfile(target + ".png") and np.load(target + ".npy").shape[0] == 4


def test_evaluate_the_train_split_of_a_dynamically_binarised_run(trained, capsys):
    rc, out, err = run(["evaluate", "--out", trained, "--split", "train",
                        "--max-examples", "200"], capsys)
    assert rc == 0, err
    assert "binarised once with seed 2" in out
    res = json.load(open(os.path.join(trained, "evaluation-train.json")))
    assert res["n_examples"] == 200 and np.isfinite(res["elbo"])


def test_training_curves_of_many_levels_draw_a_few(tmp_path, monkeypatch):
    from npvae.plots import curves

    drawn = []
    real = curves.save

    def keep(fig, path, dpi):
        drawn.append([(line.get_label()) for line in fig.axes[2].get_lines()])
        return real(fig, path, dpi)

    monkeypatch.setattr(curves, "save", keep)
    history = [{"epoch": e, "train_elbo": -100.0 + e, "train_reconstruction": -90.0,
                "train_kl": 10.0, **{f"train_kl_{l}": 1.0 / l for l in range(1, 2001)}}
               for e in (1, 2, 3)]
    curves.plot_training_curves(history, tmp_path / "c.png")
    labels = drawn[0]
    assert len(labels) <= curves.MAX_LEVELS_DRAWN + 5
    assert any("levels 21–2000 not drawn" in label for label in labels)


# ----------------------------------------------------------------------- internal errors
_DAMAGED_METADATA = {"data": [1], "data.validation_size": "x", "data.split_seed": "x",
                     "data.image_shape": "x", "data.binarization": 7,
                     "best_val_bound": [1]}


@given(st.sampled_from(sorted(_DAMAGED_METADATA)), st.sampled_from(["evaluate", "sample",
                                                                   "train"]))
def test_damaged_metadata_is_a_checkpoint_error_not_an_internal_one(trained, tmp_path_factory,
                                                                    field, command):
    import shutil

    out = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(trained, out)
    path = str(out / "checkpoint.npz")
    model, meta = npvae.load(path), checkpoint.read_metadata(path)
    key, _, sub = field.partition(".")
    if sub:
        meta[key][sub] = _DAMAGED_METADATA[field]
    else:
        meta[key] = _DAMAGED_METADATA[field]
    checkpoint.save(model, path, meta)
    shutil.copy(path, out / "best.npz")
    argv = {"evaluate": ["evaluate", "--max-examples", "20"], "sample": ["sample", "-n", "2"],
            "train": ["train", "--resume", "--epochs", "3", *FAST]}[command]
    assert main([*argv, "--out", str(out)]) == 2


@pytest.mark.parametrize("argv", [["train", *DIGITS, "--hidden", "100000000"],
                                  ["sample", "-n", "10000000000"]])
def test_sizes_beyond_memory_are_one_line_and_exit_2(trained, tmp_path, capsys, argv):
    out = str(tmp_path / "run") if argv[0] == "train" else trained
    rc, _, err = run([*argv, "--out", out], capsys)
    # refused before allocating (models/sizes.py) or, past that check, a MemoryError
    # caught by the command: either way one line that names memory
    assert rc == 2 and "memory" in err and len(err.strip().splitlines()) == 1, err
