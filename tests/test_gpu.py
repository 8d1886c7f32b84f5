"""The CUDA path of every family: train on the GPU, roll out on the GPU and on the CPU.

Marked ``gpu``: left out of the default run (no GPU on the CPU machines and CI), run by
``make test-gpu`` or ``benchmarks/gpu_check.py`` on a machine with CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from odernn.cli.app import main
from odernn.data.simulate import simulate, simulate_trajectories
from odernn.data.spec import load_spec
from odernn.learn.models import REGISTRY, load_surrogate

pytestmark = pytest.mark.gpu

SHORT = {"esn": ["--units", "200"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available on this machine")
    path = tmp_path_factory.mktemp("gpu") / "train.h5"
    spec = load_spec("train").with_overrides(n=32, n_steps=200, integrator="exact")
    simulate(spec, path)
    test = simulate_trajectories(load_spec("test").with_overrides(n=8, n_steps=200,
                                                                   integrator="exact"))
    return path, test


@pytest.mark.parametrize("family", sorted(REGISTRY))
def test_trained_on_cuda_rolls_out_alike_on_both_devices(family, data, tmp_path):
    path, test = data
    run = tmp_path / family
    extra = SHORT.get(family, ["--epochs", "2", "--hidden", "16"])
    assert main(["train", str(path), "-m", family, "-o", str(run), "--device", "cuda", "-q",
                 *extra]) == 0
    rollouts = []
    for device in ("cuda", "cpu"):
        model = load_surrogate(run, device)
        r = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params["eta"])
        assert r.n_diverged == 0
        rollouts.append(r.x)
    scale = np.abs(rollouts[1]).max()
    np.testing.assert_allclose(rollouts[0], rollouts[1], atol=1e-4 * scale)
