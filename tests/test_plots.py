"""Tests of npvae.plots: files written, PNG validity, layout, inputs checked.

Shape legend (docs/README.md): N batch, D data dimension, Z latent dimension;
P pairs of interpolation end points, T interpolation steps.
"""

from __future__ import annotations

import ast
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from scipy.special import ndtri

from npvae import plots as F
from npvae.plots import latent

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DPI = 50  # small files keep the tests fast
SHAPE = (8, 8)  # (H, W)
D = SHAPE[0] * SHAPE[1]


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def check_png(path, written, aspect=None):
    """Assert a valid, non-uniform PNG; return its (height, width) in pixels.

    aspect : (lo, hi) bounds on width / height, or None.
    """
    path = Path(path)
    assert Path(written) == path
    assert path.is_file()
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    img = mpimg.imread(path)  # (rows, cols, 4) floats in [0, 1]
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    pixels = img[..., :3].reshape(-1, 3)
    assert np.unique(pixels, axis=0).shape[0] > 1, "the image is uniform"
    h, w = img.shape[:2]
    if aspect is not None:
        lo, hi = aspect
        assert lo <= w / h <= hi, f"aspect {w / h:.2f} outside [{lo}, {hi}]"
    # nothing (text, colour bar, legend) is cut off at the border of the figure
    ring = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])[:, :3]
    assert ring.min() > 0.9, "something is drawn at the very edge of the figure"
    return h, w


def images(n, rng, shape=SHAPE):
    return rng.uniform(0.0, 1.0, size=(n, shape[0] * shape[1]))  # (N, D)


def make_decode(n_latent, d=D, seed=0):
    """A smooth deterministic decoder z (M, Z) -> means (M, D) in (0, 1)."""
    w = np.random.default_rng(seed).normal(size=(n_latent, d))
    calls = []

    def decode(z):
        z = np.asarray(z)
        calls.append(z.copy())
        return 1.0 / (1.0 + np.exp(-(z @ w)))

    decode.calls = calls
    return decode


def make_history(n_epochs=6, with_val=True):
    hist = []
    for e in range(1, n_epochs + 1):
        row = {
            "epoch": e,
            "train_elbo": -200.0 + 80 * (1 - math.exp(-e / 3)),
            "train_reconstruction": -180.0 + 90 * (1 - math.exp(-e / 3)),
            "train_kl": 20.0 + 10 * (1 - math.exp(-e / 3)),
        }
        if with_val:
            # validation only every other epoch: None and NaN in between
            odd = e % 2 == 1
            row["val_elbo"] = None if odd else row["train_elbo"] - 3
            row["val_reconstruction"] = float("nan") if odd else row["train_reconstruction"] - 4
            row["val_kl"] = None if odd else row["train_kl"] + 1
        hist.append(row)
    return hist


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------------
# module hygiene
# ----------------------------------------------------------------------------


def test_package_uses_no_pyplot_and_no_model_code():
    """Modules of npvae.plots import each other (level-1 relative imports) and
    nothing else of npvae."""
    modules = sorted(Path(F.__file__).parent.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "_canvas.py", "images.py"}
    for module in modules:
        tree = ast.parse(module.read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add(("." * node.level) + (node.module or ""))
        assert not any("pyplot" in m or "pylab" in m for m in imported), (module.name, imported)
        outside = [m for m in imported
                   if m.startswith("..") or m.startswith("npvae")]
        assert not outside, (module.name, outside)


# ----------------------------------------------------------------------------
# image_grid
# ----------------------------------------------------------------------------


def test_image_grid_layout_and_separators():
    imgs = np.stack([np.full(6, k, dtype=float) for k in (0.1, 0.2, 0.3)])  # (3, 6)
    g = F.image_grid(imgs, (2, 3), n_cols=2, pad_value=-1.0)
    assert g.shape == (2 * 2 + 1, 2 * 3 + 1)
    np.testing.assert_array_equal(g[0:2, 0:3], 0.1)
    np.testing.assert_array_equal(g[0:2, 4:7], 0.2)
    np.testing.assert_array_equal(g[3:5, 0:3], 0.3)
    np.testing.assert_array_equal(g[2, :], -1.0)  # horizontal separator
    np.testing.assert_array_equal(g[:, 3], -1.0)  # vertical separator
    np.testing.assert_array_equal(g[3:5, 4:7], -1.0)  # empty cell


def test_image_grid_row_major_reshape_and_3d_input(rng):
    imgs = rng.uniform(size=(5, 12))  # (N, D), image_shape (3, 4)
    g = F.image_grid(imgs, (3, 4), n_cols=5)
    assert g.shape == (3, 5 * 4 + 4)
    np.testing.assert_array_equal(g[:, 5:9], imgs[1].reshape(3, 4))
    np.testing.assert_array_equal(F.image_grid(imgs.reshape(5, 3, 4), (3, 4), 5), g)
    single_col = F.image_grid(imgs, (3, 4), n_cols=1)
    assert single_col.shape == (5 * 3 + 4, 4)
    assert F.image_grid(imgs, (3, 4), n_cols=1, pad_value=1.0)[3, 0] == 1.0


@pytest.mark.parametrize(
    "imgs, shape, n_cols, match",
    [
        (np.zeros((4, 10)), (3, 3), 2, "prod"),
        (np.zeros((4, 9)), (3, 3, 1), 2, "image_shape"),
        (np.zeros((4, 9)), (0, 9), 2, "image_shape"),
        (np.zeros((4, 9)), (3.5, 3), 2, "image_shape"),
        (np.zeros((4, 9)), (3, 3), 0, "n_cols"),
        (np.zeros((4, 9)), (3, 3), 1.5, "n_cols"),
        (np.zeros((0, 9)), (3, 3), 2, "N = 0"),
        (np.zeros(9), (3, 3), 2, "shape"),
        (np.full((2, 9), np.nan), (3, 3), 2, "NaN"),
        (np.array([["a"] * 9]), (3, 3), 2, "numeric"),
    ],
)
def test_image_grid_errors(imgs, shape, n_cols, match):
    with pytest.raises(ValueError, match=match):
        F.image_grid(imgs, shape, n_cols)


def test_image_grid_pad_sets_the_separator_width():
    imgs = np.stack([np.full(6, k, dtype=float) for k in (0.1, 0.2, 0.3)])  # (3, 6)
    touching = F.image_grid(imgs, (2, 3), n_cols=2, pad=0)
    assert touching.shape == (2 * 2, 2 * 3)
    np.testing.assert_array_equal(touching[0:2, 3:6], 0.2)
    np.testing.assert_array_equal(touching[2:4, 0:3], 0.3)
    wide = F.image_grid(imgs, (2, 3), n_cols=2, pad=2, pad_value=-1.0)
    assert wide.shape == (2 * 2 + 2, 2 * 3 + 2)
    np.testing.assert_array_equal(wide[2:4, :], -1.0)
    with pytest.raises(ValueError, match="pad"):
        F.image_grid(imgs, (2, 3), n_cols=2, pad=-1)


@pytest.mark.parametrize("shape", [(8, 8), (28, 20)])
def test_grids_of_small_images_have_thin_separator_lines(tmp_path, rng, drawn, shape):
    """Tiles touch in the drawn image (no separator pixels, which would be an
    eighth of an 8x8 digit); thin lines are drawn between them instead."""
    F.plot_samples(images(12, rng, shape), shape, tmp_path / "s.png", n_cols=4, dpi=DPI)
    panel = drawn["s.png"]["panels"][0]
    assert panel["images"] == [(3 * shape[0], 4 * shape[1])]
    assert panel["n_separator_lines"] == (4 - 1) + (3 - 1)
    F.plot_manifold(make_decode(2, d=shape[0] * shape[1]), shape, tmp_path / "m.png", n=5,
                    dpi=DPI)
    assert drawn["m.png"]["panels"][0]["images"] == [(5 * shape[0], 5 * shape[1])]


def test_non_square_images_are_drawn_upright_and_unstretched(tmp_path, drawn):
    """Frey faces are 28 x 20 (H x W): every tile of every figure is 28 rows of 20
    pixels, its first row at the top."""
    shape = (28, 20)
    face = np.zeros(shape)
    face[:5] = 1.0  # a bright band at the top of the image
    x = np.tile(face.ravel(), (6, 1))  # (N, D)
    F.plot_samples(x, shape, tmp_path / "s.png", n_cols=3, dpi=DPI)
    F.plot_reconstructions(x, x, shape, tmp_path / "r.png", n=6, dpi=DPI)
    F.plot_manifold(lambda z: np.tile(face.ravel(), (len(z), 1)), shape, tmp_path / "m.png",
                    n=3, dpi=DPI)
    F.plot_interpolation(lambda z: np.tile(face.ravel(), (len(z), 1)), np.zeros(2),
                         np.ones(2), shape, tmp_path / "i.png", n_steps=3,
                         x_start=x[0], x_end=x[1], dpi=DPI)
    for name, rows in [("s.png", 2), ("r.png", 2), ("m.png", 3), ("i.png", 1)]:
        for data in drawn[name]["panels"][0]["image_data"] + drawn[name]["panels"][-1]["image_data"]:
            tile = data[:28, :20]
            np.testing.assert_array_equal(tile, face, err_msg=name)
    assert drawn["m.png"]["panels"][0]["images"] == [(3 * 28, 3 * 20)]


# ----------------------------------------------------------------------------
# plot_reconstructions
# ----------------------------------------------------------------------------


def test_plot_reconstructions(tmp_path, rng):
    x = images(12, rng)
    path = tmp_path / "new" / "folder" / "rec.png"  # folders are created
    written = F.plot_reconstructions(x, 1 - x, SHAPE, path, dpi=DPI)
    assert isinstance(written, Path)
    h10, w10 = check_png(path, written, aspect=(3.0, 7.0))  # one wide pair of rows

    path20 = tmp_path / "rec20.png"
    x20 = images(20, rng)
    h20, w20 = check_png(
        path20, F.plot_reconstructions(x20, x20, SHAPE, path20, n=20, dpi=DPI), aspect=(1.5, 3.5)
    )
    assert abs(w20 - w10) <= 2  # still 10 per row ...
    assert h20 > 1.5 * h10  # ... in two pairs of rows

    path15 = tmp_path / "rec15.png"  # incomplete last pair
    check_png(path15, F.plot_reconstructions(x20, x20, SHAPE, path15, n=15, dpi=DPI))

    path3 = tmp_path / "rec3.png"  # fewer than 10 examples, (N, H, W) input
    x3 = x[:3].reshape(3, *SHAPE)
    check_png(path3, F.plot_reconstructions(x3, x3, SHAPE, path3, n=3, dpi=DPI))


@pytest.mark.parametrize(
    "x, x_rec, shape, n, match",
    [
        (np.zeros((5, D)), np.zeros((4, D)), SHAPE, 3, "same shape"),
        (np.zeros((5, D)), np.zeros((5, D)), (7, 8), 3, "prod"),
        (np.zeros((5, D)), np.zeros((5, D)), SHAPE, 6, "exceeds"),
        (np.zeros((5, D)), np.zeros((5, D)), SHAPE, 0, "n must be"),
        (np.zeros((5, D, 1)), np.zeros((5, D, 1)), SHAPE, 3, "shape"),
    ],
)
def test_plot_reconstructions_errors(tmp_path, x, x_rec, shape, n, match):
    with pytest.raises(ValueError, match=match):
        F.plot_reconstructions(x, x_rec, shape, tmp_path / "r.png", n=n, dpi=DPI)
    assert not (tmp_path / "r.png").exists()


# ----------------------------------------------------------------------------
# plot_samples
# ----------------------------------------------------------------------------


def test_plot_samples(tmp_path, rng):
    path = tmp_path / "samples.png"
    check_png(path, F.plot_samples(images(16, rng), SHAPE, path, dpi=DPI), aspect=(0.8, 1.4))
    wide = tmp_path / "samples_wide.png"
    check_png(
        wide, F.plot_samples(images(16, rng), SHAPE, wide, n_cols=8, dpi=DPI), aspect=(1.4, 4.0)
    )
    # values slightly outside [0, 1] are shown clipped, not rejected
    odd = tmp_path / "samples_odd.png"
    check_png(odd, F.plot_samples(images(5, rng) * 1.2 - 0.1, SHAPE, odd, dpi=DPI))


def test_plot_samples_errors(tmp_path):
    with pytest.raises(ValueError, match="prod"):
        F.plot_samples(np.zeros((4, D + 1)), SHAPE, tmp_path / "s.png")
    with pytest.raises(ValueError, match="NaN"):
        F.plot_samples(np.full((4, D), np.inf), SHAPE, tmp_path / "s.png")
    with pytest.raises(ValueError, match="n_cols"):
        F.plot_samples(np.zeros((4, D)), SHAPE, tmp_path / "s.png", n_cols=0)


def test_plot_reconstructions_names_the_input_rows(tmp_path, rng, drawn):
    x = images(20, rng)
    F.plot_reconstructions(x, x, SHAPE, tmp_path / "r.png", n=20, dpi=DPI)
    assert drawn["r.png"]["panels"][0]["yticklabels"] == ["input", "reconstruction"] * 2
    label = "input (grey levels;\nthe model saw\nbinarised ones)"
    F.plot_reconstructions(x, x, SHAPE, tmp_path / "g.png", n=10, input_label=label, dpi=DPI)
    assert drawn["g.png"]["panels"][0]["yticklabels"] == [label, "reconstruction"]


def test_plot_samples_labels_each_row(tmp_path, rng, drawn):
    path = tmp_path / "by_class.png"
    written = F.plot_samples(images(30, rng), SHAPE, path, n_cols=10,
                             row_labels=["cat", 7, "dog"], row_title="class", dpi=DPI)
    check_png(path, written)
    panel = drawn["by_class.png"]["panels"][0]
    assert panel["yticklabels"] == ["cat", "7", "dog"]
    assert panel["ylabel"] == "class"
    F.plot_samples(images(30, rng), SHAPE, tmp_path / "plain.png", n_cols=10, dpi=DPI)
    assert drawn["plain.png"]["panels"][0]["yticklabels"] == []
    with pytest.raises(ValueError, match="3 rows"):
        F.plot_samples(images(30, rng), SHAPE, tmp_path / "x.png", n_cols=10,
                       row_labels=[0, 1])


def test_plot_samples_says_what_its_tiles_are(tmp_path, rng, drawn):
    """A VampPrior's pseudo-inputs drawn by plot_samples are not labelled "samples"."""
    F.plot_samples(images(16, rng), SHAPE, tmp_path / "s.png", dpi=DPI)
    F.plot_samples(images(16, rng), SHAPE, tmp_path / "u.png", what="pseudo-inputs", dpi=DPI)
    assert drawn["s.png"]["panels"][0]["xlabel"] == "16 samples"
    assert drawn["u.png"]["panels"][0]["xlabel"] == "16 pseudo-inputs"


# ----------------------------------------------------------------------------
# plot_training_curves
# ----------------------------------------------------------------------------


def test_plot_training_curves(tmp_path):
    path = tmp_path / "curves.png"
    check_png(path, F.plot_training_curves(make_history(), path, dpi=DPI), aspect=(2.8, 3.6))
    # only the required keys; validation entirely absent
    no_val = tmp_path / "curves_noval.png"
    check_png(no_val, F.plot_training_curves(make_history(with_val=False), no_val, dpi=DPI))
    # a single epoch, numpy scalars, epochs out of order
    hist = [{k: np.float32(v) for k, v in make_history(1)[0].items() if v is not None}]
    one = tmp_path / "curves_one.png"
    check_png(one, F.plot_training_curves(hist, one, dpi=DPI))
    shuffled = tmp_path / "curves_shuffled.png"
    check_png(shuffled, F.plot_training_curves(make_history()[::-1], shuffled, dpi=DPI))


def test_plot_training_curves_errors(tmp_path):
    p = tmp_path / "c.png"
    with pytest.raises(ValueError, match="empty"):
        F.plot_training_curves([], p)
    with pytest.raises(ValueError, match="list of dicts"):
        F.plot_training_curves({"epoch": [1], "train_elbo": [1.0]}, p)
    bad = make_history()
    del bad[2]["train_kl"]
    with pytest.raises(ValueError, match="train_kl"):
        F.plot_training_curves(bad, p)
    bad = make_history()
    bad[1]["train_elbo"] = "high"
    with pytest.raises(ValueError, match="number"):
        F.plot_training_curves(bad, p)
    bad = make_history()
    bad[0]["epoch"] = None
    with pytest.raises(ValueError, match="epoch"):
        F.plot_training_curves(bad, p)
    assert not p.exists()


def test_training_curves_give_each_term_its_own_panel(tmp_path, drawn):
    F.plot_training_curves(make_history(), tmp_path / "c.png", dpi=DPI)
    panels = drawn["c.png"]["panels"]  # no twin axes: exactly three panels
    assert len(panels) == 3
    elbo, rec, kl = panels
    assert "ELBO" in elbo["title"]
    assert "reconstruction" in rec["title"] and "KL" in kl["title"]
    for panel in panels:  # train solid, validation dashed
        styles = {label: style for label, style, _ in panel["lines"]}
        assert styles["train"] == "-" and styles["validation"] == "--"
    assert any(m == "*" and label.startswith("best validation")
               for label, _, m in elbo["lines"])
    assert not any(m == "*" for panel in (rec, kl) for _, _, m in panel["lines"])


def hierarchical_history(n_epochs=5, levels=2):
    hist = make_history(n_epochs)
    for row in hist:
        for l in range(1, levels + 1):
            row[f"train_kl_{l}"] = row["train_kl"] / 2 ** l
            row[f"val_kl_{l}"] = None if row["val_kl"] is None else row["val_kl"] / 2 ** l
    return hist


@pytest.mark.parametrize("levels", [2, 3])
def test_training_curves_draw_the_kl_of_each_level(tmp_path, drawn, levels):
    path = tmp_path / "h.png"
    check_png(path, F.plot_training_curves(hierarchical_history(levels=levels), path, dpi=DPI))
    panels = drawn["h.png"]["panels"]
    assert len(panels) == 3
    kl = panels[2]
    assert "per level" in kl["title"]
    for l in range(1, levels + 1):
        ours = [(label, style) for label, style, _ in kl["lines"]
                if label.startswith(f"level {l},")]
        assert len(ours) == 1 and ours[0][1] == "-"
    # per level: a train and a validation curve, plus the total's two and the
    # two legend entries for the line styles
    assert len(kl["lines"]) == 2 * levels + 2 + 2
    assert any("total" in label for label in kl["legend"])
    # a plain VAE's history has no per-level curves
    F.plot_training_curves(make_history(), tmp_path / "v.png", dpi=DPI)
    assert not any("level" in label for label, _, _ in drawn["v.png"]["panels"][2]["lines"])


def test_training_curves_of_an_iwae_show_the_bound_it_trained(tmp_path, drawn):
    """A model trained on L_K: its bound beside the ELBO in the first panel, and the
    star on the best validation L_K (the epoch best.npz keeps), not the best ELBO."""
    hist = make_history(8)
    for row in hist:
        row["train_iwae"] = row["train_elbo"] + 2.5
        if row["val_elbo"] is not None:
            row["val_iwae"] = row["val_elbo"] + 2.5 - (9 if row["epoch"] == 8 else 0)
    F.plot_training_curves(hist, tmp_path / "c.png", k=5, dpi=DPI)
    elbo = drawn["c.png"]["panels"][0]
    styles = {label: style for label, style, _ in elbo["lines"]}
    assert styles["train $\\mathcal{L}_{5}$ (the bound trained)"] == "-"
    assert styles["validation $\\mathcal{L}_{5}$"] == "--"
    assert styles["train ELBO"] == "-" and "L}_{5}" in elbo["title"]
    star = [label for label, _, m in elbo["lines"] if m == "*"]
    # validation L_5 peaks at epoch 6 (epoch 8's was made worse); the ELBO at epoch 8
    assert star == [f"best validation $\\mathcal{{L}}_{{5}}$: {hist[5]['val_iwae']:.2f} (epoch 6)"]
    F.plot_training_curves(make_history(), tmp_path / "v.png", k=5, dpi=DPI)   # no L_K: as before
    assert not any("mathcal" in label for label, _, _ in drawn["v.png"]["panels"][0]["lines"])
    for row in hist:                      # L_K trained but never validated: the ELBO's star
        row.pop("val_iwae", None)
    F.plot_training_curves(hist, tmp_path / "e.png", k=5, dpi=DPI)
    star = [label for label, _, m in drawn["e.png"]["panels"][0]["lines"] if m == "*"]
    assert star == [f"best validation ELBO: {hist[7]['val_elbo']:.2f} (epoch 8)"]
    for bad in (0, 2.5, True, "5"):
        with pytest.raises(ValueError, match="k must be (an integer )?>= 1"):
            F.plot_training_curves(hist, tmp_path / "b.png", k=bad, dpi=DPI)


def test_training_curves_without_validation_do_not_explain_a_dashed_line(tmp_path, drawn):
    """A run with no validation split (Burda et al.'s schedule trains on all 60,000):
    the per-level KL panel keys no line style it does not draw."""
    hist = hierarchical_history()
    for row in hist:
        for key in [k for k in row if k.startswith("val_")]:
            row[key] = None
    F.plot_training_curves(hist, tmp_path / "h.png", dpi=DPI)
    kl = drawn["h.png"]["panels"][2]
    assert not any("validation" in label for label in kl["legend"])
    assert not any(style == "--" for _, style, _ in kl["lines"])


def test_training_curves_leave_a_far_off_first_epoch_off_the_axis(tmp_path, drawn):
    hist = make_history(12)
    hist[0]["train_elbo"] = -40000.0  # a Gaussian model's first epoch
    F.plot_training_curves(hist, tmp_path / "c.png", dpi=DPI)
    elbo = drawn["c.png"]["panels"][0]
    assert elbo["ylim"][0] > -1000
    assert any("off the axis" in t and "epoch 1" in t for t in elbo["texts"])
    assert not drawn["c.png"]["panels"][2]["texts"]  # the KL panel shows everything


# ----------------------------------------------------------------------------
# plot_latent_scatter and latent_projection
# ----------------------------------------------------------------------------


def clustered_latents(rng, n=300, n_lat=2, n_classes=10):
    labels = rng.integers(0, n_classes, size=n)  # (N,)
    centres = rng.normal(scale=3.0, size=(n_classes, n_lat))
    return centres[labels] + rng.normal(size=(n, n_lat)), labels  # (N, Z), (N,)


def test_latent_projection_identity_for_two_dims(rng):
    z = rng.normal(size=(50, 2))
    coords, xlabel, ylabel = F.latent_projection(z)
    np.testing.assert_array_equal(coords, z)
    assert "PCA" not in xlabel and "PCA" not in ylabel
    assert "latent dim 0" in xlabel and "latent dim 1" in ylabel


def test_latent_projection_uses_pca_above_two_dims(rng):
    from sklearn.decomposition import PCA

    z = rng.normal(size=(200, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    coords, xlabel, ylabel = F.latent_projection(z)
    ref = PCA(n_components=2, svd_solver="full").fit(z)
    np.testing.assert_allclose(coords, ref.transform(z), atol=1e-10)
    for label, ratio in zip((xlabel, ylabel), ref.explained_variance_ratio_):
        assert "PCA" in label and "5-D" in label
        assert f"{ratio:.1%}" in label and "variance" in label
    with pytest.raises(ValueError, match="N = 2"):
        F.latent_projection(z[:1])
    with pytest.raises(ValueError, match="Z >= 2"):
        F.latent_projection(z[:, :1])


def test_plot_latent_scatter_takes_pca_path_only_above_two_dims(tmp_path, rng, monkeypatch):
    seen = []
    original = latent.latent_projection

    def spy(z):
        out = original(z)
        seen.append((np.shape(z), out[1], out[2]))
        return out

    monkeypatch.setattr(latent, "latent_projection", spy)  # looked up in its own module
    z5, labels = clustered_latents(rng, n_lat=5)
    p5 = tmp_path / "z5.png"
    check_png(p5, F.plot_latent_scatter(z5, labels, p5, dpi=DPI), aspect=(1.0, 1.6))
    z2, _ = clustered_latents(rng, n_lat=2)
    p2 = tmp_path / "z2.png"
    check_png(p2, F.plot_latent_scatter(z2, labels, p2, dpi=DPI), aspect=(1.0, 1.6))
    assert [s[0] for s in seen] == [(300, 5), (300, 2)]
    assert "PCA" in seen[0][1] and "PCA" in seen[0][2]
    assert "PCA" not in seen[1][1] and "PCA" not in seen[1][2]


@pytest.mark.parametrize("n_lat", [1, 2, 3])
@pytest.mark.parametrize("labelled", [True, False])
def test_plot_latent_scatter_variants(tmp_path, rng, n_lat, labelled):
    z, labels = clustered_latents(rng, n_lat=n_lat)
    path = tmp_path / f"latent_{n_lat}_{labelled}.png"
    written = F.plot_latent_scatter(z, labels if labelled else None, path, dpi=DPI)
    check_png(path, written, aspect=(1.0, 1.6))


def test_plot_latent_scatter_many_and_string_classes(tmp_path, rng):
    z, labels = clustered_latents(rng, n_classes=15)  # colour bar instead of a legend
    p = tmp_path / "many.png"
    check_png(p, F.plot_latent_scatter(z, labels, p, dpi=DPI))
    names = np.array(["cat", "dog", "bird"])[labels % 3]
    p = tmp_path / "strings.png"
    check_png(p, F.plot_latent_scatter(z, names, p, dpi=DPI))


def test_plot_latent_scatter_errors(tmp_path, rng):
    p = tmp_path / "l.png"
    z = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match=r"z\[:, None\]"):
        F.plot_latent_scatter(z[:, 0], None, p)
    with pytest.raises(ValueError, match="labels"):
        F.plot_latent_scatter(z, np.zeros(9), p)
    with pytest.raises(ValueError, match="argmax"):
        F.plot_latent_scatter(z, np.eye(10)[:, :3], p)
    with pytest.raises(ValueError, match="NaN"):
        F.plot_latent_scatter(np.full((10, 2), np.nan), None, p)
    with pytest.raises(ValueError, match="N = 2"):
        F.plot_latent_scatter(rng.normal(size=(1, 4)), None, p)
    assert not p.exists()


def test_plot_latent_levels_draws_one_panel_per_level(tmp_path, rng, drawn):
    z1, labels = clustered_latents(rng, n_lat=4)
    z2, _ = clustered_latents(rng, n_lat=2)
    z3 = rng.normal(size=(300, 1))
    path = tmp_path / "levels.png"
    check_png(path, F.plot_latent_levels([z1, z2, z3], labels, path, dpi=DPI))
    panels = drawn["levels.png"]["panels"]
    assert len(panels) == 3
    assert "level 1" in panels[0]["title"] and "PCA" in panels[0]["title"]
    assert "4-D" in panels[0]["title"] and "z_{1}" in panels[0]["title"]
    assert "PCA" in panels[0]["xlabel"] and "PCA" in panels[0]["ylabel"]
    assert "level 2" in panels[1]["title"] and "PCA" not in panels[1]["title"]
    assert "PCA" not in panels[1]["xlabel"]
    assert "level 3" in panels[2]["title"]
    # one legend of the classes, at the last 2-D panel (the 1-D strip plot names
    # the classes on its y axis)
    assert [bool(p["legend"]) for p in panels] == [False, True, False]
    assert panels[2]["yticklabels"][:3] == ["0", "1", "2"]
    assert "N = 300" in drawn["levels.png"]["suptitle"]


def test_plot_latent_levels_each_level_its_own_pca(tmp_path, rng, monkeypatch):
    seen = []
    original = latent.latent_projection

    def spy(z):
        seen.append(np.shape(z))
        return original(z)

    monkeypatch.setattr(latent, "latent_projection", spy)
    z1, z2 = rng.normal(size=(50, 5)), rng.normal(size=(50, 3))
    F.plot_latent_levels([z1, z2], None, tmp_path / "l.png", names=["a", "b"], dpi=DPI)
    assert seen == [(50, 5), (50, 3)]  # never the 8-D concatenation


def test_plot_latent_levels_errors(tmp_path, rng):
    p = tmp_path / "l.png"
    z = rng.normal(size=(10, 2))
    with pytest.raises(ValueError, match="non-empty"):
        F.plot_latent_levels([], None, p)
    with pytest.raises(ValueError, match="same N"):
        F.plot_latent_levels([z, z[:5]], None, p)
    with pytest.raises(ValueError, match="names"):
        F.plot_latent_levels([z, z], None, p, names=["only one"])
    with pytest.raises(ValueError, match="labels"):
        F.plot_latent_levels([z, z], np.zeros(3), p)
    assert not p.exists()


# ----------------------------------------------------------------------------
# plot_manifold
# ----------------------------------------------------------------------------


def test_plot_manifold_decodes_the_ndtri_grid(tmp_path):
    n = 7
    decode = make_decode(2)
    path = tmp_path / "manifold.png"
    check_png(path, F.plot_manifold(decode, SHAPE, path, n=n, dpi=DPI), aspect=(0.85, 1.3))
    assert len(decode.calls) == 1  # one batched call
    z = decode.calls[0]
    assert z.shape == (n * n, 2)
    grid = ndtri(np.linspace(0.05, 0.95, n))
    assert z.min() == pytest.approx(ndtri(0.05)) and z.max() == pytest.approx(ndtri(0.95))
    for j in range(2):
        np.testing.assert_allclose(np.unique(z[:, j]), grid, atol=1e-12)
    # reading order: dim 0 grows along a row, dim 1 decreases down the rows
    np.testing.assert_allclose(z[0], [grid[0], grid[-1]])
    np.testing.assert_allclose(z[n - 1], [grid[-1], grid[-1]])
    np.testing.assert_allclose(z[-1], [grid[-1], grid[0]])


def test_plot_manifold_fixes_other_dims_at_zero(tmp_path):
    n = 5
    decode = make_decode(4)
    path = tmp_path / "manifold4.png"
    written = F.plot_manifold(
        decode, SHAPE, path, n=n, latent_dims=(3, 1), n_latent=4,
        quantiles=(0.1, 0.9), dpi=DPI,
    )
    check_png(path, written)
    z = decode.calls[0]
    assert z.shape == (n * n, 4)
    np.testing.assert_array_equal(z[:, [0, 2]], 0.0)
    grid = ndtri(np.linspace(0.1, 0.9, n))
    np.testing.assert_allclose(z[:n, 3], grid)  # first row: latent dim 3 varies
    np.testing.assert_allclose(z[:n, 1], grid[-1])  # at the top value of dim 1


def test_plot_manifold_moves_the_grid_to_center_and_scale(tmp_path, drawn):
    """Where the codes are not N(0, I): z = m + s Φ⁻¹(u) in the plotted dimensions,
    m in the others; the ticks give those z and the title says where the slice is."""
    n = 5
    decode = make_decode(3)
    m, s = np.array([0.5, -2.0, 3.0]), (2.0, 0.25)
    F.plot_manifold(decode, SHAPE, tmp_path / "mc.png", n=n, latent_dims=(2, 0), n_latent=3,
                    center=m, scale=s, center_name="the codes' mean", dpi=DPI)
    z = decode.calls[0]
    grid = ndtri(np.linspace(0.05, 0.95, n))
    np.testing.assert_array_equal(z[:, 1], -2.0)
    np.testing.assert_allclose(z[:n, 2], 3.0 + 2.0 * grid)       # first row: dim 2 varies
    np.testing.assert_allclose(z[::n, 0], 0.5 + 0.25 * grid[::-1])  # first column: dim 0
    fig = drawn["mc.png"]
    assert "the others at the codes' mean" in fig["suptitle"]
    assert "N(m, s²)" in fig["panels"][0]["title"]
    for bad, match in [(dict(center=[0.0, 1.0]), "center"), (dict(center=[0, np.nan, 0]), "center"),
                       (dict(scale=(1.0, 0.0)), "scale"), (dict(scale=1.0), "scale")]:
        with pytest.raises(ValueError, match=match):
            F.plot_manifold(decode, SHAPE, tmp_path / "x.png", n_latent=3, **bad)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n=1), "n must be"),
        (dict(n_latent=1, latent_dims=(0, 0)), "n_latent >= 2"),
        (dict(latent_dims=(0, 0)), "distinct"),
        (dict(latent_dims=(0, 2)), "distinct"),
        (dict(latent_dims=(0,)), "pair"),
        (dict(quantiles=(0.0, 0.9)), "quantiles"),
        (dict(quantiles=(0.9, 0.1)), "quantiles"),
    ],
)
def test_plot_manifold_argument_errors(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.plot_manifold(make_decode(2), SHAPE, tmp_path / "m.png", **kwargs)


def test_plot_manifold_decode_errors(tmp_path):
    p = tmp_path / "m.png"
    with pytest.raises(ValueError, match="callable"):
        F.plot_manifold(np.zeros((4, D)), SHAPE, p, n=2)
    with pytest.raises(ValueError, match=r"\(M, D\)"):
        F.plot_manifold(lambda z: np.zeros((len(z), D + 1)), SHAPE, p, n=3)
    with pytest.raises(ValueError, match=r"\(M, D\)"):
        F.plot_manifold(lambda z: np.zeros((2, D)), SHAPE, p, n=3)
    with pytest.raises(ValueError, match="NaN"):
        F.plot_manifold(lambda z: np.full((len(z), D), np.nan), SHAPE, p, n=3)
    assert not p.exists()


def test_manifold_title_cites_kingma_welling_only_for_a_2d_standard_latent():
    assert "fig. 4" in F.manifold_title(2)
    assert "whole 2-D latent space" in F.manifold_title(2)
    sliced = F.manifold_title(20, (3, 7))
    assert "2-D slice of the 20-D latent space" in sliced
    assert "dimensions 3 and 7" in sliced and "the others at 0" in sliced
    assert "fig. 4" not in sliced
    bottom = F.manifold_title(4, (0, 2), latent_name="$z_1$", standard_prior=False)
    assert "4-D" in bottom and "z_1" in bottom and "fig. 4" not in bottom
    assert "fig. 4" not in F.manifold_title(2, latent_name="$z_1$", standard_prior=False)


def test_plot_manifold_titles_itself_honestly(tmp_path, drawn):
    F.plot_manifold(make_decode(2), SHAPE, tmp_path / "two.png", n=4, dpi=DPI)
    two = drawn["two.png"]
    assert two["suptitle"] == F.manifold_title(2) and "fig. 4" in two["suptitle"]
    assert "Phi^{-1}(u)" in two["panels"][0]["title"]
    F.plot_manifold(make_decode(20), SHAPE, tmp_path / "many.png", n=4, n_latent=20,
                    latent_dims=(8, 9), note="why these two", dpi=DPI)
    many = drawn["many.png"]
    assert "2-D slice of the 20-D latent space" in many["suptitle"]
    assert "dimensions 8 and 9" in many["suptitle"] and "fig. 4" not in many["suptitle"]
    assert "why these two" in many["panels"][0]["title"]
    assert many["panels"][0]["xlabel"] == "z dim 8" and many["panels"][0]["ylabel"] == "z dim 9"
    F.plot_manifold(make_decode(2), SHAPE, tmp_path / "h.png", n=4, latent_name="$z_1$",
                    standard_prior=False, dpi=DPI)
    h = drawn["h.png"]
    assert "z_1" in h["suptitle"] and "fig. 4" not in h["suptitle"]
    assert "not N(0, I)" in h["panels"][0]["title"]
    assert "z_1" in h["panels"][0]["xlabel"]
    F.plot_manifold(make_decode(2), SHAPE, tmp_path / "own.png", n=4, title="mine", dpi=DPI)
    assert drawn["own.png"]["suptitle"] == "mine"


def test_plot_manifold_ticks_give_z_at_a_few_tiles(tmp_path, drawn):
    F.plot_manifold(make_decode(2), SHAPE, tmp_path / "m.png", n=5, dpi=DPI)
    labels = drawn["m.png"]["panels"][0]["yticklabels"]
    grid = ndtri(np.linspace(0.05, 0.95, 5))
    assert labels[0] == f"{grid[-1]:.2f}" and labels[-1] == f"{grid[0]:.2f}"  # top is high


# ----------------------------------------------------------------------------
# plot_interpolation
# ----------------------------------------------------------------------------


def test_plot_interpolation_single_pair(tmp_path, rng):
    z_a, z_b = rng.normal(size=3), rng.normal(size=3)  # (Z,)
    decode = make_decode(3)
    path = tmp_path / "interp.png"
    written = F.plot_interpolation(decode, z_a, z_b, SHAPE, path, n_steps=6, dpi=DPI)
    check_png(path, written, aspect=(3.5, 9.0))
    z = decode.calls[0]  # (T, Z)
    t = np.linspace(0, 1, 6)[:, None]
    np.testing.assert_allclose(z, (1 - t) * z_a + t * z_b)


def test_plot_interpolation_pairs_with_inputs(tmp_path, rng):
    p_, z_dim, steps = 3, 4, 7
    z_a, z_b = rng.normal(size=(p_, z_dim)), rng.normal(size=(p_, z_dim))  # (P, Z)
    decode = make_decode(z_dim)
    path = tmp_path / "interp_pairs.png"
    written = F.plot_interpolation(
        decode, z_a, z_b, SHAPE, path, n_steps=steps,
        x_start=images(p_, rng), x_end=images(p_, rng).reshape(p_, *SHAPE), dpi=DPI,
    )
    check_png(path, written, aspect=(2.0, 5.0))
    z = decode.calls[0].reshape(p_, steps, z_dim)  # (P, T, Z)
    np.testing.assert_allclose(z[:, 0], z_a)
    np.testing.assert_allclose(z[:, -1], z_b)
    np.testing.assert_allclose(z[1, 3], 0.5 * (z_a[1] + z_b[1]))

    one = tmp_path / "interp_one_input.png"  # (Z,) end points with (D,) inputs
    check_png(one, F.plot_interpolation(
        make_decode(z_dim), z_a[0], z_b[0], SHAPE, one, x_start=images(1, rng)[0],
        x_end=images(1, rng)[0], dpi=DPI))


def test_plot_interpolation_errors(tmp_path, rng):
    p = tmp_path / "i.png"
    dec = make_decode(3)
    z = rng.normal(size=(2, 3))
    with pytest.raises(ValueError, match="same shape"):
        F.plot_interpolation(dec, z, z[0], SHAPE, p)
    with pytest.raises(ValueError, match=r"\(Z,\) or \(P, Z\)"):
        F.plot_interpolation(dec, z[None], z[None], SHAPE, p)
    with pytest.raises(ValueError, match="both"):
        F.plot_interpolation(dec, z, z, SHAPE, p, x_start=images(2, rng))
    with pytest.raises(ValueError, match="one input per pair"):
        F.plot_interpolation(dec, z, z, SHAPE, p, x_start=images(3, rng), x_end=images(3, rng))
    with pytest.raises(ValueError, match="prod"):
        F.plot_interpolation(dec, z, z, SHAPE, p, x_start=np.zeros((2, 5)), x_end=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="n_steps"):
        F.plot_interpolation(dec, z, z, SHAPE, p, n_steps=1)
    with pytest.raises(ValueError, match=r"\(M, D\)"):
        F.plot_interpolation(lambda q: np.zeros((len(q), 3)), z, z, SHAPE, p)
    assert not p.exists()


# ----------------------------------------------------------------------------
# paths, dpi, threads
# ----------------------------------------------------------------------------


def test_dpi_sets_the_pixel_size(tmp_path, rng):
    x = images(9, rng)
    h1, w1 = check_png(tmp_path / "a.png", F.plot_samples(x, SHAPE, tmp_path / "a.png", dpi=40))
    h2, w2 = check_png(tmp_path / "b.png", F.plot_samples(x, SHAPE, tmp_path / "b.png", dpi=80))
    assert abs(h2 - 2 * h1) <= 2 and abs(w2 - 2 * w1) <= 2
    with pytest.raises(ValueError, match="dpi"):
        F.plot_samples(x, SHAPE, tmp_path / "c.png", dpi=0)


def test_path_suffix_handling(tmp_path, rng):
    x = images(4, rng)
    written = F.plot_samples(x, SHAPE, str(tmp_path / "no_suffix"), dpi=DPI)
    assert written == tmp_path / "no_suffix.png"
    check_png(written, written)
    with pytest.raises(ValueError, match=r"\.png"):
        F.plot_samples(x, SHAPE, tmp_path / "fig.jpg", dpi=DPI)
    (tmp_path / "adir.png").mkdir()
    with pytest.raises(ValueError, match="directory"):
        F.plot_samples(x, SHAPE, tmp_path / "adir.png", dpi=DPI)


def test_figures_can_be_drawn_from_several_threads(tmp_path, rng):
    x = images(16, rng)
    z, labels = clustered_latents(rng)
    jobs = [
        lambda: F.plot_samples(x, SHAPE, tmp_path / "t_samples.png", dpi=DPI),
        lambda: F.plot_reconstructions(x, x, SHAPE, tmp_path / "t_rec.png", dpi=DPI),
        lambda: F.plot_latent_scatter(z, labels, tmp_path / "t_lat.png", dpi=DPI),
        lambda: F.plot_training_curves(make_history(), tmp_path / "t_curves.png", dpi=DPI),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        written = list(pool.map(lambda job: job(), jobs))
    for path in written:
        check_png(path, path)


def test_every_figure_function_documents_dpi_and_the_path_returned():
    """The shared end of the figure docstrings lives once in ``_canvas`` (issue 27:
    duplicates): ``{png}`` is filled in, never shown."""
    import inspect
    for name in F.__all__:
        obj = getattr(F, name)
        if inspect.isfunction(obj) and obj.__doc__ and "dpi" in inspect.signature(obj).parameters:
            assert "{png}" not in obj.__doc__, name
            if name.startswith("plot_") and name != "plot_sweep":
                assert "Resolution of the PNG." in obj.__doc__ and "pathlib.Path" in obj.__doc__, name
