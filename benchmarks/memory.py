"""Peak memory of one MNIST epoch: ``npvae train`` against the PyTorch reference.

Each program runs in a subprocess of its own; its peak resident set size is
read from the ``rusage`` that ``os.wait4`` returns for exactly that child
(``ru_maxrss``, KiB on Linux), so one run's peak never leaks into another's
figure.  The same is done for a bare ``import`` of each stack, which shows how
much of the peak is the framework itself rather than the training.

Used by ``python -m benchmarks.throughput --memory``; needs ``NPVAE_DATA``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_child(argv, env=None):
    """Run ``argv``; returns ``{"returncode", "peak_rss_mib", "seconds", "stdout", "stderr"}``."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=ROOT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return {"argv": argv, "returncode": proc.returncode,
                "peak_rss_mib": usage.ru_maxrss / 1024, "seconds": seconds,
                "stdout": out.read()[-4000:], "stderr": err.read()[-4000:]}


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_memory(threads=1, epochs=1):
    """Both one-epoch runs and both bare imports; returns a JSON-able dict."""
    if not os.environ.get("NPVAE_DATA"):
        return {"skipped": "skipped: --memory needs NPVAE_DATA (the folder holding mnist/)"}
    py = sys.executable
    env = _env()
    result = {"threads": threads, "epochs": epochs}
    with tempfile.TemporaryDirectory() as run_dir:
        result["npvae"] = run_child(
            [py, "-m", "npvae", "train", "--dataset", "mnist", "--epochs", str(epochs),
             "--out", run_dir, "--quiet", "--no-figures", "--threads", str(threads)], env)
    result["torch"] = run_child([py, "-m", "benchmarks.torch_mnist_epoch", "--epochs",
                                 str(epochs), "--threads", str(threads)], env)
    result["npvae_import"] = run_child(
        [py, "-c", "import npvae, npvae.cli, npvae.training, npvae.data"], env)
    result["torch_import"] = run_child([py, "-c", "import torch"], env)
    for key in ("npvae", "torch"):
        r = result[key]
        if r["returncode"] != 0:
            r["error"] = f"exit code {r['returncode']}: {r['stderr'][-500:]}"
    torch_out = result["torch"]["stdout"].strip().splitlines()
    if torch_out and torch_out[-1].startswith("{"):
        result["torch"]["report"] = json.loads(torch_out[-1])
        if "skipped" in result["torch"]["report"]:
            result["torch"]["skipped"] = result["torch"]["report"]["skipped"]
    ok = all(result[k]["returncode"] == 0 and "skipped" not in result[k]
             for k in ("npvae", "torch"))
    if ok:
        result["ratio_npvae_over_torch"] = (result["npvae"]["peak_rss_mib"]
                                            / result["torch"]["peak_rss_mib"])
    return result


def memory_markdown(result):
    """A Markdown table of :func:`run_memory`'s result."""
    if "skipped" in result:
        return result["skipped"] + "\n"
    lines = [f"Peak RSS of one MNIST epoch ({result['epochs']} epoch, batch 100, float32, "
             f"{result['threads']} thread(s)):", "",
             "| program | peak RSS (MiB) | a bare import alone (MiB) | wall time (s) |",
             "|---|---:|---:|---:|"]
    for key, label in (("npvae", "npvae train --dataset mnist"),
                       ("torch", "PyTorch reference (benchmarks.torch_mnist_epoch)")):
        r = result[key]
        if r.get("error") or r.get("skipped"):
            lines.append(f"| {label} | {r.get('skipped') or r['error'][:80]} | | |")
            continue
        lines.append(f"| {label} | {r['peak_rss_mib']:.0f} | "
                     f"{result[key + '_import']['peak_rss_mib']:.0f} | {r['seconds']:.1f} |")
    if "ratio_npvae_over_torch" in result:
        lines += ["", f"npvae / PyTorch peak RSS: **{result['ratio_npvae_over_torch']:.2f}**"]
    return "\n".join(lines) + "\n"
