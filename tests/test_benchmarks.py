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
