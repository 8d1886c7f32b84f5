"""One short run on a CUDA machine: train on the GPU, roll out on the CPU, compare throughput.

0. runs the tests marked ``gpu`` (``make test-gpu``: the CUDA path of every family);
1. trains every family for a few epochs with ``device="cuda"``;
2. loads each CUDA-trained checkpoint on the CPU and on the GPU and checks that
   the two closed-loop rollouts agree within float32 tolerance;
3. prints training throughput (time steps per second, teacher-forced
   forward + backward + Adam step) of an LSTM with hidden 256 at batch 1024,
   on the GPU against the CPU.

    python benchmarks/gpu_check.py            # about a minute on one GPU

Never part of the test suite; run it whenever a GPU is available.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.learn.config import TrainConfig
from odernn.learn.models import build, load_surrogate
from odernn.learn.models.layout import Layout
from odernn.learn.training import train
from odernn.learn.windows import compute_stats, to_tensors

SHORT = {"rnn": {"epochs": 3}, "lstm": {"epochs": 3}, "gru": {"epochs": 3}, "esn": {}}


def data(n: int, n_steps: int, name: str = "train"):
    spec = load_spec(name).with_overrides(integrator="exact", n=n, n_steps=n_steps)
    return simulate_trajectories(spec)


def cuda_vs_cpu(workdir: Path) -> list[str]:
    """Train each family on CUDA; a CPU rollout of the checkpoint must match the GPU one."""
    train_set, test = data(128, 400), data(32, 400, "test")
    lines = []
    for family, options in SHORT.items():
        config = TrainConfig.from_dict({"model": family, "device": "cuda", **options})
        t0 = time.perf_counter()
        result = train(train_set, config, workdir / family, progress=False)
        elapsed = time.perf_counter() - t0
        outs = {}
        for device in ("cuda", "cpu"):
            model = load_surrogate(workdir / family, device=device)
            outs[device] = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params["eta"])
        scale = np.std(test.x[:, 1:])
        gap = float(np.max(np.abs(outs["cuda"].x - outs["cpu"].x)) / scale)
        ok = gap < 1e-3 and outs["cpu"].n_diverged == outs["cuda"].n_diverged
        lines.append(f"{family:5s} trained on cuda in {elapsed:6.1f} s ({result.status}), "
                     f"val NRMSE(x) {result.best_val_nrmse:.2e}; CPU vs CUDA rollout max "
                     f"|dx|/std {gap:.1e} {'ok' if ok else 'MISMATCH'}")
    return lines


def throughput(device: str, batch: int = 1024, hidden: int = 256, window: int = 50,
               repeats: int = 5) -> float:
    """Teacher-forced training steps per second (time steps x batch) of an LSTM."""
    d = data(64, window + 1)
    layout = Layout(dt=d.dt)
    model = build("lstm", layout, compute_stats(d, layout), hidden=hidden).to(device)
    t = to_tensors(d, layout, device)
    rows = torch.arange(batch, device=device) % t.n
    w = t.windows(rows, torch.zeros(batch, dtype=torch.long, device=device), window)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        y, y_true = model.teacher_forced(w.z, w.e)
        torch.mean(torch.square(y - y_true)).backward()
        opt.step()

    step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return repeats * batch * window / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU available: nothing to check")
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu"],
                           env={**os.environ, "ODERNN_GPU_TESTS": "1"},
                           cwd=Path(__file__).resolve().parents[1], check=False)
    print(f"tests marked gpu: {'passed' if tests.returncode == 0 else 'FAILED'}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for line in cuda_vs_cpu(Path(tmp)):
            print(line, flush=True)
    gpu, cpu = throughput("cuda"), throughput("cpu", repeats=1)
    print(f"LSTM hidden 256, batch 1024, windows of 50: {gpu:,.0f} steps/s on GPU, "
          f"{cpu:,.0f} on CPU ({torch.get_num_threads()} threads): {gpu / cpu:.1f}x")


if __name__ == "__main__":
    main()
