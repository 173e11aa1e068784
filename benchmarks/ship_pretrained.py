"""Copy a model trained by ``burda_table1 --schedule burda`` (or ``ladder_vae``) into
``pretrained/``.

    python -m benchmarks.ship_pretrained --model vae-2 --run-dir runs/burda \\
        --results runs/burda/vae-2.json
    python -m benchmarks.ship_pretrained --model ladder --run-dir runs/ladder \\
        --results runs/ladder/ladder.json

reads ``RUN_DIR/<model>/final.npz`` (float32, no optimiser state) and the row that
``burda_table1 --out`` (``ladder_vae``: its ``ladder.json``) wrote, and writes

- ``pretrained/<file>.npz``: the model, its data metadata and training settings,
  deflated; the training history with its floats kept to 7 significant digits (a
  float32 run's averages carry no more; the full digits of 3,280 epochs were an
  eighth of the one-level file);
- ``pretrained/<file>.json``: the model card (architecture, schedule, test scores,
  training time, the commands that train and evaluate it, the file's SHA-256);
- its line in ``pretrained/SHA256SUMS`` (``sha256sum -c SHA256SUMS`` checks it).

The parameters are not touched: the shipped file scores exactly as the run did.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import npvae
from npvae import checkpoint
from npvae.data.files import sha256_file

from . import ladder_vae
from .burda_table1 import PUBLISHED

REPO = Path(__file__).resolve().parent.parent

#: file name and model card entries of each row of Burda et al.'s Table 1 that ships
MODELS = {
    "vae-1": ("burda-vae-1level", "VAE, one stochastic level, 784-200-200-50 tanh, Bernoulli decoder",
              "VAE k=1, one stochastic layer"),
    "vae-2": ("burda-vae-2level", "VAE, two stochastic levels (markov inference, latent sizes "
              "100 + 50), 784-200-200-100-100-100-50 tanh, Bernoulli decoder",
              "VAE k=1, two stochastic layers"),
    "iwae5-1": ("burda-iwae5-1level", "IWAE k=5, one stochastic level, 784-200-200-50 tanh, "
                "Bernoulli decoder", "IWAE k=5, one stochastic layer"),
    "ladder": ("ladder-vae-mnist", "Ladder VAE, five stochastic levels 64-32-16-8-4 over "
               "batch-normalised MLPs 512-256-128-64-32, leaky rectifiers, Bernoulli decoder",
               "MNIST, the Ladder VAE (without the importance-weighted fine-tuning)"),
}


def rounded(history, digits=7):
    """``history`` with every float kept to ``digits`` significant digits."""
    def r(v):
        return float(f"{v:.{digits}g}") if isinstance(v, float) else v
    return [{k: r(v) for k, v in entry.items()} for entry in history]


def ship(model_name, run_dir, results, out_dir=REPO / "pretrained", machine=None):
    """Write the pretrained file, its card and its SHA256SUMS line; return the card."""
    stem, description, reference = MODELS[model_name]
    table = json.loads(Path(results).read_text())
    rows = [r for r in table.get("rows", [table.get("row")]) if r and r["model"] == model_name]
    if not rows:
        raise SystemExit(f"{results}: no row for {model_name}")
    row, settings = rows[0], table["settings"]
    src = Path(run_dir) / model_name / "final.npz"
    model = npvae.load(src)
    if model.optimizer_state_ is not None or model.n_iter_ != row["epochs"]:
        raise SystemExit(f"{src}: not the final model of that row")
    model.history_ = rounded(model.history_)
    out_dir = Path(out_dir)
    out_dir.mkdir(exist_ok=True)
    dst = out_dir / f"{stem}.npz"
    npvae.save(model, dst, checkpoint.read_metadata(src), compress=True)
    digest = sha256_file(dst)
    sums = out_dir / "SHA256SUMS"
    lines = [ln for ln in (sums.read_text().splitlines() if sums.exists() else [])
             if ln.strip() and not ln.endswith(dst.name)]
    sums.write_text("\n".join(sorted(lines + [f"{digest}  {dst.name}"],
                                     key=lambda ln: ln.split()[-1])) + "\n")
    card = {
        "model": description + ", float32",
        "reference": f"Burda, Grosse & Salakhutdinov (2016), Table 1, {reference}",
        "data": "MNIST, dynamic binarisation (training images binarised afresh every epoch); "
                "test set binarised once with seed 0",
        "schedule": "3,280 epochs in stages i = 0..7 of 3^i epochs at learning rate "
                    "1e-3 * 10^(-i/7); Adam beta1 0.9, beta2 0.999, eps 1e-4; batch "
                    f"{settings.get('batch_size')} (the paper: 20)",
        "epochs": row["epochs"],
        "train_seconds": round(row["train_seconds"], 1),
        "train_machine": machine or f"{os.cpu_count()}-core machine, {settings['threads']} threads",
        "n_test": settings["n_test"],
        "seed": 0,
        "n_importance": settings["k_eval"],
        "test_nll": row["test_nll"],
        "test_nll_se": row["test_nll_se"],
        "test_elbo": row["test_elbo"],
        "active_units": row["active_units"],
        "published_nll": PUBLISHED.get(model_name),
        "sha256": digest,
        "command": f"NPVAE_DATA=/path/to/data python -m benchmarks.burda_table1 --models "
                   f"{model_name} --schedule burda --run-dir runs/burda --n-test "
                   f"{settings['n_test']} --threads {settings['threads']}",
        "evaluate_command": f"npvae evaluate --checkpoint pretrained/{dst.name} "
                            f"--n-importance {settings['k_eval']} --seed 0",
    }
    if model_name == "ladder":
        card.update(
            reference=f"{ladder_vae.REFERENCE}, {reference}",
            schedule=f"{settings['epochs']} epochs, Adam at learning rate "
                     f"{settings['learning_rate']:g}, batch {settings['batch_size']}, the KL "
                     f"weight rising linearly from 0 to 1 over {settings['warmup_epochs']:g} "
                     "epochs",
            published_nll=ladder_vae.PUBLISHED,
            command=f"NPVAE_DATA=/path/to/data python -m benchmarks.ladder_vae --run-dir "
                    f"runs/ladder --n-test {settings['n_test']} --threads {settings['threads']}")
    (out_dir / f"{stem}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=sorted(MODELS), required=True)
    ap.add_argument("--run-dir", required=True, help="burda_table1's --run-dir")
    ap.add_argument("--results", required=True, help="burda_table1's --out of that run")
    ap.add_argument("--out-dir", default=str(REPO / "pretrained"))
    ap.add_argument("--machine", default=None, help="what trained it, for the card")
    args = ap.parse_args(argv)
    card = ship(args.model, args.run_dir, args.results, args.out_dir, args.machine)
    size = (Path(args.out_dir) / f"{MODELS[args.model][0]}.npz").stat().st_size
    print(f"wrote {args.out_dir}/{MODELS[args.model][0]}.npz ({size / 1e6:.2f} MB, "
          f"sha256 {card['sha256']}) and its card")


if __name__ == "__main__":
    main()
