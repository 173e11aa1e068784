import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import npvae

# CI is deterministic (derandomize): a green run stays green.  Locally set
# HYPOTHESIS_PROFILE=dev for fresh random examples.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=50, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=["numpy", "numba"])
def backend(request):
    """Run the test once per compute backend."""
    with npvae.use_backend(request.param):
        yield request.param


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def data_dir():
    path = os.environ.get("NPVAE_DATA")
    return path if path and os.path.isdir(path) else None


def pytest_collection_modifyitems(config, items):
    if data_dir():
        return
    skip = pytest.mark.skip(reason="NPVAE_DATA is not set to the shared data folder")
    for item in items:
        if item.get_closest_marker("data") is not None:
            item.add_marker(skip)


# ------------------------------------------------------------------ figures
def describe_figure(fig):
    """What a matplotlib figure says and holds, as plain data: its title and, per
    panel (colour bars left out), title, axis labels, y tick labels, line labels
    and styles, texts, and the shape of a drawn image."""
    panels = []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        legend = ax.get_legend()
        panels.append({
            "title": ax.get_title(),
            "xlabel": ax.get_xlabel(),
            "ylabel": ax.get_ylabel(),
            "yticklabels": [t.get_text() for t in ax.get_yticklabels()],
            "lines": [(line.get_label(), line.get_linestyle(), line.get_marker())
                      for line in ax.get_lines()],
            "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
            "texts": [t.get_text() for t in ax.texts],
            "ylim": ax.get_ylim(),
            "images": [im.get_array().shape for im in ax.get_images()],
            "image_data": [np.asarray(im.get_array()) for im in ax.get_images()],
            "n_separator_lines": sum(len(c.get_segments()) for c in ax.collections
                                     if hasattr(c, "get_segments")),
        })
    title = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return {"suptitle": title, "panels": panels}


@pytest.fixture
def drawn(monkeypatch):
    """``{file name: describe_figure(figure)}`` of every figure that npvae.plots
    saves while the test runs (captured just before the file is written)."""
    from pathlib import Path

    from npvae.plots import curves, images, latent, manifold

    seen = {}
    for module in (curves, images, latent, manifold):
        def spy(fig, path, dpi, _save=module.save):
            seen[Path(path).name] = describe_figure(fig)
            return _save(fig, path, dpi)

        monkeypatch.setattr(module, "save", spy)
    return seen
