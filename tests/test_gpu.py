"""The CUDA path of every family and command: train on the GPU (in memory, streamed, as a
hybrid, resumed, as a seed group), roll out and step on the GPU and on the CPU, evaluate,
export, demo.

Marked ``gpu``: left out of the default run (no GPU on the CPU machines and CI), run by
``make test-gpu`` or ``benchmarks/gpu_check.py`` on a machine with CUDA.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from test_models import interrupt_at

from odernn.cli.app import main
from odernn.data.filerows import FileRows
from odernn.data.simulate import simulate, simulate_trajectories
from odernn.data.spec import load_spec
from odernn.data.store import read_trajectories
from odernn.learn.config import TrainConfig
from odernn.learn.models import REGISTRY, load_surrogate
from odernn.learn.training import train

EXPLICIT = os.environ.get("ODERNN_GPU_TESTS") in ("1", "cpu")
"""``make test-gpu`` (or ``benchmarks/gpu_check.py``): a GPU is expected, and its absence fails
every test loudly; elsewhere (``pytest -m gpu`` on a CPU machine) they skip."""
GPU = "cpu" if os.environ.get("ODERNN_GPU_TESTS") == "cpu" else "cuda"
"""The device under test: ``ODERNN_GPU_TESTS=cpu`` (``make test-gpu-rehearsal``) runs these tests
with the CPU in the GPU's place, so that a test's own mistake is found before a GPU's
minutes are spent on it; what they compare across devices then holds trivially."""

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not (EXPLICIT or torch.cuda.is_available()),
                                                  reason="CUDA is not available here")]

SHORT = {"esn": ["--units", "200"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
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
    assert main(["train", str(path), "-m", family, "-o", str(run), "--device", GPU, "-q",
                 *extra]) == 0
    rollouts = []
    for device in (GPU, "cpu"):
        model = load_surrogate(run, device)
        r = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params["eta"])
        assert r.n_diverged == 0
        rollouts.append(r.x)
        stepper = model.stepper(test.x[:, 0], test.v[:, 0], test.params["eta"])
        x = [stepper.step(test.F[:, i], test.F[:, i + 1])[0] for i in range(test.n_steps - 1)]
        np.testing.assert_array_equal(np.stack(x, axis=1), r.x[:, 1:])  # on either device
    scale = np.abs(rollouts[1]).max()
    np.testing.assert_allclose(rollouts[0], rollouts[1], atol=1e-4 * scale)


def test_a_cuda_trained_run_is_evaluated_and_exported(data, tmp_path):
    """The commands after ``train`` take a run trained on the GPU: a seed group is evaluated
    (on the CPU) into a report, and a member exports to ONNX."""
    path, _ = data
    test = tmp_path / "test.h5"
    simulate(load_spec("test").with_overrides(n=8, n_steps=200, integrator="exact"), test)
    group = tmp_path / "gru"
    assert main(["train", str(path), "-m", "gru", "-o", str(group), "--device", GPU, "-q",
                 "--epochs", "2", "--hidden", "16", "--seeds", "2"]) == 0
    report = tmp_path / "report"
    assert main(["evaluate", str(group), "--data", str(test), "-o", str(report), "-q",
                 "--no-work-precision", "--no-resonance"]) == 0
    assert (report / "report.html").is_file()
    member = sorted(p for p in group.iterdir() if p.is_dir())[0]
    assert main(["export", str(member), "-o", str(tmp_path / "gru.onnx")]) == 0


@pytest.mark.parametrize("family", ["lstm", "esn"])
def test_a_hybrid_trains_on_cuda_and_rolls_out_alike_on_both_devices(family, data, tmp_path):
    """The prior's one-step prediction is computed on the model's device."""
    path, test = data
    run = tmp_path / family
    extra = SHORT.get(family, ["--epochs", "2", "--hidden", "16"])
    assert main(["train", str(path), "-m", family, "-o", str(run), "--device", GPU, "-q",
                 "--prior", "linear", *extra]) == 0
    x = [load_surrogate(run, device).rollout(test.x[:, 0], test.v[:, 0], test.F,
                                             test.params["eta"]).x for device in (GPU, "cpu")]
    np.testing.assert_allclose(x[0], x[1], atol=1e-4 * np.abs(x[1]).max())


@pytest.mark.parametrize("family", ["lstm", "esn"])
def test_streamed_training_on_cuda_follows_in_memory_training_on_cuda(family, data):
    path, _ = data
    options = {"units": 200} if family == "esn" else {"epochs": 2, "hidden": 16}
    cfg = TrainConfig.from_dict({"model": family, "device": GPU, "val_fraction": 0.25,
                                 **options})
    one = train(read_trajectories(path), cfg, None, progress=False)
    two = train(FileRows(path), cfg, None, progress=False)
    assert one.status == two.status == "ok"
    assert math.isclose(two.best_val_nrmse, one.best_val_nrmse, rel_tol=1e-2)


def test_an_interrupted_cuda_run_resumes(data, tmp_path):
    path, _ = data
    cfg = TrainConfig.from_dict({"model": "gru", "device": GPU, "epochs": 3, "hidden": 16,
                                 "val_fraction": 0.25, "batch_size": 4})
    cut = train(read_trajectories(path), cfg, tmp_path / "run", progress=interrupt_at(2, 2))
    assert cut.status == "interrupted"
    done = train(read_trajectories(path), cfg, tmp_path / "run", resume=True, progress=False)
    assert done.status == "ok" and load_surrogate(tmp_path / "run", GPU) is not None


@pytest.mark.parametrize("system", ["oscillator", "duffing"])
def test_the_quick_demo_runs_on_cuda(system, tmp_path):
    assert main(["demo", "--quick", "--device", GPU, "--system", system, "-q",
                 "-o", str(tmp_path / "demo")]) == 0
    assert (tmp_path / "demo" / "report" / "report.html").is_file()
