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
