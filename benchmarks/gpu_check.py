"""One short run on a CUDA machine: rollouts at scale, train on the GPU, roll out on the CPU,
compare throughput. In this order (``--only`` runs one part):

- ``rollouts``: times the closed-loop rollouts of rnn, lstm and gru (defaults) on the GPU at
  batches 10^4, 10^5 and 10^6 (``--rollout-steps`` steps, numpy in and out as ``odernn
  evaluate`` calls it), in useful FLOPs per second against the GPU's float32 ``mm`` at the
  cell's shapes (``benchmarks/rollout.py``'s measure, which gives the CPU's table);
- ``tests``: runs the tests marked ``gpu`` (``make test-gpu``: the CUDA path of every family);
- ``train``: trains every family for a few epochs with ``device="cuda"``, loads each
  checkpoint on the CPU and on the GPU and checks that the two closed-loop rollouts agree
  within float32 tolerance;
- ``throughput``: prints training throughput (time steps per second, teacher-forced
  forward + backward + Adam step) of an LSTM with hidden 256 at batch 1024, on the GPU
  against the CPU.

    python benchmarks/gpu_check.py            # a few minutes on one GPU
    python benchmarks/gpu_check.py --only rollouts

Never part of the test suite; run it whenever a GPU is available. Without one it says so
and exits with status 0, having checked nothing.
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


def rollouts(batches: tuple[int, ...] = (10**4, 10**5, 10**6), steps: int = 50,
             repeats: int = 3) -> list[str]:
    """Closed-loop rollouts on CUDA in useful GFLOP/s against the GPU's ``mm`` at the cell's
    shapes (``benchmarks/rollout.py``'s functions)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from rollout import matmul_rate, rollout_time, setup, useful_flops

    data, layout, stats = setup(steps + 1)
    lines = [f"{'family':<6}{'batch':>9}{'matmul GF/s':>13}{'rollout GF/s':>14}{'% of mm':>9}"
             f"{'step us':>10}"]
    for family in ("rnn", "lstm", "gru"):
        model = build(family, layout, stats).to("cuda").eval()
        k, n = layout.n_inputs + model.hparams["hidden"], model.gates * model.hparams["hidden"]
        for batch in batches:
            mm = matmul_rate(batch, k, n, repeats, device="cuda")
            t = rollout_time(model, data, batch, steps, repeats, device="cuda")
            rate = useful_flops(model, layout) * batch * steps / t
            lines.append(f"{family:<6}{batch:>9}{mm / 1e9:>13.1f}{rate / 1e9:>14.1f}"
                         f"{100 * rate / mm:>9.1f}{1e6 * t / steps:>10.1f}")
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("tests", "train", "throughput", "rollouts"),
                        help="run one part only")
    parser.add_argument("--rollout-steps", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA GPU available: nothing to check")
        return
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    if args.only in (None, "rollouts"):
        print(f"closed-loop rollouts on the GPU, {args.rollout_steps} steps:", flush=True)
        rollouts(steps=args.rollout_steps)
    if args.only in (None, "tests"):
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu"],
                               env={**os.environ, "ODERNN_GPU_TESTS": "1"},
                               cwd=Path(__file__).resolve().parents[1], check=False)
        print(f"tests marked gpu: {'passed' if tests.returncode == 0 else 'FAILED'}",
              flush=True)
    if args.only in (None, "train"):
        with tempfile.TemporaryDirectory() as tmp:
            for line in cuda_vs_cpu(Path(tmp)):
                print(line, flush=True)
    if args.only in (None, "throughput"):
        gpu, cpu = throughput("cuda"), throughput("cpu", repeats=1)
        print(f"LSTM hidden 256, batch 1024, windows of 50: {gpu:,.0f} steps/s on GPU, "
              f"{cpu:,.0f} on CPU ({torch.get_num_threads()} threads): {gpu / cpu:.1f}x")


if __name__ == "__main__":
    main()
