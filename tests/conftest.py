"""Test-wide settings: CPU only, headless plots, quiet progress, reproducible property tests.

Property tests run derandomised by default (``make test`` and CI): the same examples on every
machine and every run, so a commit that passes once passes everywhere. Every failing example
the randomised exploration ever found is pinned with ``@example`` beside its test.
``HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``) explores fresh random examples, ten times as many;
run it before each submission and pin what it finds.
"""

from __future__ import annotations

import os
import signal

import pytest
from hypothesis import settings

if os.environ.get("ODERNN_GPU_TESTS") != "1":  # the default run is CPU-only (make test-gpu)
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("MPLBACKEND", "Agg")

settings.register_profile("default", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# A test run started with SIGINT ignored (a background job of a shell without job control)
# would pass that on to every odernn process the tests start and signal, which then could not
# be interrupted as from a terminal: handled here, the children start with the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def dev_extra(module: str):
    """``module``, of an extra that the dev install brings: imported in CI (``CI=true``,
    which installs it, so that a missing one fails), skipped elsewhere where it is missing."""
    if os.environ.get("CI") == "true":
        import importlib

        return importlib.import_module(module)
    return pytest.importorskip(module)


def drawn_readout(model, seed: int = 0):
    """``model`` with its readout weights drawn (seeded, in place, of unit scale over the
    features they weigh): a gradient family's ``V`` starts at 0 for a linear system (the
    skip holds its linear map), an echo state network's ``W_out`` before its fit. Their
    outputs then do not depend on the cell, and two code paths compared through them would
    not see it."""
    import torch

    weight = model.W_out if model.family == "esn" else model.V
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weight.copy_(torch.randn(weight.shape, generator=g, dtype=weight.dtype)
                     / weight.shape[-1] ** 0.5)
    return model


@pytest.fixture(scope="session")
def small_linear_sets():
    """A small training and test set of the linear oscillator (exact solution): 24 and 6
    trajectories of 200 points, for tests that train a few quick models."""
    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import load_spec

    train = simulate_trajectories(load_spec("train").with_overrides(
        n=24, n_steps=200, integrator="exact"))
    test = simulate_trajectories(load_spec("test").with_overrides(
        n=6, n_steps=200, integrator="exact"))
    return train, test


@pytest.fixture
def data() -> tuple[dict, dict]:
    """A small trajectory file's arrays and parameters (``test_store.make_data``)."""
    from test_store import make_data

    return make_data()


@pytest.fixture
def good(tmp_path, data):
    """Those written as a valid trajectory file (``test_store.write``)."""
    from test_store import write

    return write(tmp_path / "data.h5", *data)
