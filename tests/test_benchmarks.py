"""The benchmark tools' own behaviour (not speed: benchmarks print, they never judge)."""
import os

import pytest

from benchmarks import contention, epoch_throughput, throughput


def test_quick_run_does_not_touch_the_committed_results():
    args = throughput.resolve_args(throughput.build_parser().parse_args(["--quick"]))
    assert os.path.normpath(args.out) != os.path.normpath(throughput.RESULTS)
    assert args.out.startswith("runs")                       # ignored by git
    args = throughput.resolve_args(
        throughput.build_parser().parse_args(["--quick", "--update-results"]))
    assert os.path.normpath(args.out) == os.path.normpath(throughput.RESULTS)


def test_busy_cores_spin_on_the_last_cpus_and_stop():
    cpus = sorted(os.sched_getaffinity(0))
    with contention.busy_cores(1) as pids:
        (pid,) = pids
        assert os.sched_getaffinity(pid) == {cpus[-1]}
        with open(f"/proc/{pid}/stat") as f:
            assert f.read().split()[2] in "RS"                 # alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ValueError, match="--busy-cores"):
        contention.spinner_cpus(len(cpus) + 1)


def test_chart_plots_ratios_on_a_linear_axis(tmp_path):
    rows = [{"model": "vae", "dtype": "float32", "threads": 1, "batch": b,
             "ratios": {"npvae/torch": 3.3, "npvae/jax": 1.1}, "load": {}} for b in (16, 128)]
    import matplotlib.pyplot as plt
    seen = {}
    savefig = plt.Figure.savefig

    def spy(fig, *args, **kwargs):            # look at the axes before they are closed
        seen["scales"] = [ax.get_yscale() for ax in fig.axes if ax.has_data()]
        seen["heights"] = sorted(round(p.get_height(), 2) for ax in fig.axes
                                 for p in ax.patches)
        return savefig(fig, *args, **kwargs)

    plt.Figure.savefig = spy
    try:
        path = throughput.bar_chart({"throughput": rows}, str(tmp_path / "c.png"))
    finally:
        plt.Figure.savefig = savefig
    assert os.path.getsize(path) > 1000
    assert seen["scales"] == ["linear"]
    assert seen["heights"] == [1.1, 1.1, 3.3, 3.3]            # the ratios themselves


def test_an_epoch_is_at_most_max_steps_batches():
    """Batch 1 over 60,000 examples took minutes per configuration and round (a quiet
    run paused the machine's other work that long): an epoch is at most max_steps."""
    assert epoch_throughput.epoch_examples(1, 60000, 5000) == 5000
    assert epoch_throughput.epoch_examples(16, 60000, 5000) == 60000
    assert epoch_throughput.epoch_examples(1024, 60000, 5000) == 60000
    assert epoch_throughput.epoch_examples(128, 60000, 0) == 128


def test_merged_single_batch_runs_draw_with_a_gap_where_a_row_has_no_pytorch(tmp_path):
    """Batch 1 runs without PyTorch (its two threads ran at ~2 examples/s there): the
    figure took its configurations from the first row only, so PyTorch vanished from
    every batch; now it is drawn where measured and the batch-1 gap has no label."""
    import json

    def run(batch, configs, busy):
        rates = {c: 1000.0 * (i + 1) for i, c in enumerate(configs)}
        return {"cpu": "test CPU", "busy_cores": busy, "examples": 100, "data": "x",
                "results": [{"batch": batch, "examples_per_second": rates, "examples": 100,
                             "ratios": {f"{c}/npvae:1": rates[c] / 1000.0 for c in configs
                                        if c != "npvae:1"}}]}

    paths = {}
    for busy in (0, 1):
        parts = []
        for batch, configs in ((1, ["npvae:auto", "npvae:1", "jax:2"]),
                               (16, ["npvae:auto", "npvae:1", "jax:2", "torch:2"])):
            path = tmp_path / f"b{busy}_{batch}.json"
            path.write_text(json.dumps(run(batch, configs, busy)))
            parts.append(str(path))
        paths[busy] = str(tmp_path / f"merged{busy}.json")
        merged = epoch_throughput.merge(parts[::-1], paths[busy])
        assert [r["batch"] for r in merged["results"]] == [1, 16]
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = {}
    real_savefig = plt.Figure.savefig

    def keep(fig, *a, **k):
        ax = fig.axes[0]
        drawn["labels"] = ax.get_legend_handles_labels()[1]
        drawn["texts"] = [t.get_text() for t in ax.texts]
        return real_savefig(fig, *a, **k)

    plt.Figure.savefig = keep
    try:
        epoch_throughput.figure(paths[0], paths[1], str(tmp_path / "f.png"))
    finally:
        plt.Figure.savefig = real_savefig
    assert any("torch" in label for label in drawn["labels"])
    assert "nan" not in " ".join(drawn["texts"])
    assert os.path.getsize(tmp_path / "f.png") > 0


def test_simplex_summary_tables_the_scored_models_beside_the_papers(tmp_path, capsys):
    """``benchmarks.simplex_latents summarise``: one row per scored run folder (a folder
    without scores is left out), the gap to the published number, and a figure."""
    import json

    from benchmarks import simplex_latents

    history = [{"epoch": e, "val_elbo": -120.0 + e} for e in range(1, 6)]
    for name, nll in (("gaussian", 95.0), ("stick", 100.5)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
        (folder / "evaluation-test.json").write_text(json.dumps(
            {"elbo": -nll - 7, "elbo_se": 0.3, "nll": nll, "nll_se": 0.25,
             "n_importance": 1000, "parameters": "run/best.npz, ... (epoch 4)"}))
    (tmp_path / "dirichlet").mkdir()                        # trained, not yet scored
    figure = tmp_path / "simplex.png"
    assert simplex_latents.main(["summarise", "--run-dir", str(tmp_path),
                                 "--figure", str(figure)]) == 0
    out = capsys.readouterr().out
    assert "| Gaussian VAE, Z = 50 | 5 (4) | −102.00 ± 0.30 | 95.00 ± 0.25 (1000) | 93.93 | +1.07 |" in out
    assert "+2.49" in out and "Dirichlet" not in out
    assert figure.stat().st_size > 10_000
    with pytest.raises(SystemExit):
        simplex_latents.main(["run", "--models", "gaussian,nope"])


def test_flow_posteriors_time_the_steps_and_train_the_diagonal_to_equal_cost(tmp_path,
                                                                            monkeypatch):
    """``benchmarks.flow_posteriors run``: the step times side by side (the diagonal's ratio
    is 1), each model trained to ``--epochs``, then the diagonal model trained on to each
    flow's cost and scored in ``diagonal/at-<epochs>``; a second ``run`` reuses the times."""
    import json

    from benchmarks import flow_posteriors as fp

    times = fp.step_times(["diagonal", "planar", "iaf"], 3, 1, steps=2, rounds=2, batch=4)
    assert times["diagonal"]["ratio_to_diagonal"] == 1.0
    assert all(t["seconds_per_step"] > 0 for t in times.values())
    calls = []
    monkeypatch.setattr(fp, "train_and_score", lambda *a: calls.append(a))
    (tmp_path / "step-times.json").write_text(json.dumps(
        {"diagonal": {"seconds_per_step": 1.0, "ratio_to_diagonal": 1.0},
         "planar": {"seconds_per_step": 1.3, "ratio_to_diagonal": 1.26},
         "iaf": {"seconds_per_step": 1.1, "ratio_to_diagonal": 1.1}}))
    assert fp.main(["run", "--run-dir", str(tmp_path), "--epochs", "10", "--k-eval", "7"]) == 0
    assert [(c[1], c[2]) for c in calls] == [("diagonal", 10), ("planar", 10), ("iaf", 10),
                                             ("diagonal", 11), ("diagonal", 13)]
    assert calls[1][4][-4:] == ["--posterior", "planar", "--n-flows", "10"]
    assert calls[3][5] == str(tmp_path / "diagonal" / "at-11")
    with pytest.raises(SystemExit):
        fp.main(["run", "--models", "diagonal,nope"])


def test_flow_posteriors_summary(tmp_path, capsys):
    import json

    from benchmarks import flow_posteriors as fp

    (tmp_path / "step-times.json").write_text(json.dumps(
        {"diagonal": {"seconds_per_step": 1.0, "ratio_to_diagonal": 1.0},
         "planar": {"seconds_per_step": 1.3, "ratio_to_diagonal": 1.26}}))
    for folder, nll in (("diagonal", 90.0), ("planar", 89.0), ("diagonal/at-13", 89.5)):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "evaluation-test.json").write_text(json.dumps(
            {"elbo": -nll - 5, "elbo_se": 0.3, "nll": nll, "nll_se": 0.25, "n_importance": 5000,
             "parameters": "x/best.npz, the best validation ELBO's (epoch 9)",
             "active_units": [20]}))
    assert fp.main(["summarise", "--run-dir", str(tmp_path), "--epochs", "10"]) == 0
    out = capsys.readouterr().out
    assert "| planar | 10 (9 kept) | 1.26 | −94.00 ± 0.30 | 89.00 ± 0.25 (5000) | [20] |" in out
    assert "| diagonal at planar's cost | 13 (9 kept) | 1.00 |" in out
