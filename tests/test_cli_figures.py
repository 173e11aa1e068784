"""What the figures of a run say: titles, panels, row names, the inputs shown.

Tiny runs; the figures are read through the ``drawn`` fixture (conftest), which
captures each figure's texts and panels just before it is saved.
"""
import numpy as np
import pytest

from npvae import data
from npvae.cli import main
from npvae.cli.figures import GREY_INPUT_LABEL, _shown_inputs

TINY = ["--epochs", "2", "--hidden", "16", "--max-examples", "300", "--batch-size", "50",
        "--quiet", "--dtype", "float64"]
SYNTHETIC = ["--dataset", "synthetic", *TINY]


def train(tmp_path, *extra):
    out = str(tmp_path / "run")
    assert main(["train", *extra, "--out", out]) == 0
    return out


def test_a_2d_latent_draws_kingma_wellings_manifold(tmp_path, drawn):
    train(tmp_path, *SYNTHETIC, "--latent", "2")
    manifold = drawn["manifold.png"]
    assert "fig. 4" in manifold["suptitle"] and "whole 2-D latent space" in manifold["suptitle"]
    assert "slice" not in manifold["suptitle"]
    assert "decoder means at $z \\sim p(z)$" in drawn["samples.png"]["suptitle"]
    assert [p["title"] for p in drawn["training_curves.png"]["panels"]][1].startswith(
        "reconstruction")
    assert len(drawn["training_curves.png"]["panels"]) == 3
    # binary data: the inputs are what the model saw, and the figure says nothing more
    assert drawn["reconstructions.png"]["panels"][0]["yticklabels"][0] == "input"
    assert "grey" not in drawn["interpolation.png"]["suptitle"]


def test_a_larger_latent_draws_a_slice_and_says_so(tmp_path, drawn):
    train(tmp_path, *SYNTHETIC, "--latent", "5")
    manifold = drawn["manifold.png"]
    assert "2-D slice of the 5-D latent space" in manifold["suptitle"]
    assert "the others at 0" in manifold["suptitle"] and "fig. 4" not in manifold["suptitle"]
    assert "vary most" in manifold["panels"][0]["title"]
    assert len(drawn["latent.png"]["panels"]) == 1


def test_hierarchical_figures_per_level(tmp_path, drawn):
    train(tmp_path, *SYNTHETIC, "--model", "hvae", "--latent", "3,2", "--hidden", "16;8")
    latent = drawn["latent.png"]["panels"]
    assert len(latent) == 2  # one scatter per level, not a PCA of both together
    assert "level 1" in latent[0]["title"] and "PCA" in latent[0]["title"]
    assert "3-D" in latent[0]["title"]
    assert "level 2" in latent[1]["title"] and "PCA" not in latent[1]["title"]
    kl = drawn["training_curves.png"]["panels"][2]
    for level in (1, 2):
        assert sum(label.startswith(f"level {level},") for label, _, _ in kl["lines"]) == 1
    manifold = drawn["manifold.png"]
    assert "z_1" in manifold["suptitle"] and "3-D" in manifold["suptitle"]
    assert "fig. 4" not in manifold["suptitle"]
    assert "decoder reads $z_1$" in manifold["panels"][0]["title"]
    assert "the others at the test codes' mean" in manifold["suptitle"]
    assert "z_1" in drawn["interpolation.png"]["suptitle"]
    assert "p(z_1 | z_2)" in drawn["samples.png"]["suptitle"]  # ancestral sampling


def test_hierarchical_2d_bottom_level_is_not_called_figure_4(tmp_path, drawn):
    train(tmp_path, *SYNTHETIC, "--model", "hvae", "--latent", "2,2", "--hidden", "16;8")
    manifold = drawn["manifold.png"]
    assert "whole 2-D latent space $z_1$" in manifold["suptitle"]
    assert "fig. 4" not in manifold["suptitle"]
    assert "not N(0, I)" in manifold["panels"][0]["title"]
    assert "N(m, s²)" in manifold["panels"][0]["title"]    # the grid is where the codes are


def test_conditional_samples_name_each_row_by_class(tmp_path, drawn):
    train(tmp_path, *SYNTHETIC, "--model", "cvae", "--latent", "2")
    samples = drawn["samples.png"]["panels"][0]
    assert samples["yticklabels"] == ["0", "1", "2", "3"]  # synthetic: classes 0..3
    assert "class" in samples["ylabel"]
    assert samples["images"] == [(4 * 16, 10 * 16)]  # one row of ten per class


def test_digits_figures_show_grey_levels_and_say_so(tmp_path, drawn):
    train(tmp_path, "--dataset", "digits", *TINY, "--latent", "3")
    rec = drawn["reconstructions.png"]["panels"][0]
    assert rec["yticklabels"][0] == GREY_INPUT_LABEL
    assert "grey levels" in GREY_INPUT_LABEL and "binarised" in GREY_INPUT_LABEL
    grid = rec["image_data"][0]
    inputs = grid[:8]  # the first row of tiles: inputs
    assert np.any((inputs > 0.01) & (inputs < 0.99))  # grey, not 0/1
    assert "grey levels" in drawn["interpolation.png"]["suptitle"]
    assert drawn["manifold.png"]["panels"][0]["images"] == [(20 * 8, 20 * 8)]


def test_shown_inputs_are_the_stored_grey_levels():
    binarised = data.load_dataset("digits")                      # dynamic: test set 0/255
    grey = data.load_dataset("digits", binarization="none")
    shown, is_grey = _shown_inputs(binarised, 50)
    assert is_grey
    np.testing.assert_array_equal(shown, grey.x_test[:50] / 255.0)
    shown, is_grey = _shown_inputs(grey, 50)                     # nothing was binarised
    assert not is_grey
    np.testing.assert_array_equal(shown, grey.x_test[:50] / 255.0)
    synthetic = data.load_dataset("synthetic")                   # binary data: as stored
    shown, is_grey = _shown_inputs(synthetic, 10)
    assert not is_grey and set(np.unique(shown)) <= {0.0, 1.0}


@pytest.mark.data
def test_frey_faces_upright_and_tall_in_every_figure(tmp_path, drawn):
    train(tmp_path, "--dataset", "frey", *TINY, "--latent", "2")
    shapes = {name: drawn[name]["panels"][0]["images"][0]
              for name in ("reconstructions.png", "samples.png", "manifold.png",
                           "interpolation.png")}
    assert shapes["samples.png"] == (10 * 28, 10 * 20)
    assert shapes["manifold.png"] == (20 * 28, 20 * 20)
    assert shapes["interpolation.png"] == (4 * 28, 20)  # the column of inputs A
    assert "fig. 4" in drawn["manifold.png"]["suptitle"]
    assert drawn["reconstructions.png"]["panels"][0]["yticklabels"][0] == "input"
    # the inputs shown are the stored faces, row-major 28 x 20, not transposed
    frey = data.load_dataset("frey")
    np.testing.assert_allclose(drawn["reconstructions.png"]["panels"][0]["image_data"][0][:28, :20],
                               frey.x_test[0].reshape(28, 20) / 255.0)
