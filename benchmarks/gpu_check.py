"""One short run on a CUDA machine: rollouts at scale, train on the GPU, roll out on the CPU,
compare throughput. In this order (``--only`` runs one part):

- ``rollouts``: times the closed-loop rollouts of rnn, lstm and gru (defaults) on the GPU at
  batches 10^4, 10^5 and 10^6 (``--rollout-steps`` steps, numpy in and out as ``odernn
  evaluate`` calls it), in useful FLOPs per second against the GPU's float32 ``mm`` at the
  cell's shapes (``benchmarks/rollout.py``'s measure, which gives the CPU's table), and the
  same closed loop with its inputs and outputs left on the GPU;
- ``tests``: runs the tests marked ``gpu`` (``make test-gpu``: the CUDA path of every family);
- ``train``: trains every family (its defaults) with ``device="cuda"`` and on the CPU
  (the time of each), loads each CUDA checkpoint on the CPU and on the GPU and checks that
  the two closed-loop rollouts agree within float32 tolerance; and the cost of bfloat16 in
  accuracy: NRMSE(x) against the exact solution of the gradient families' closed loop on
  the GPU in float32 and under ``torch.autocast(bfloat16)`` (both through the autograd
  modules' step, which autocast covers; the rollout's in-place inference step does not take
  it);
- ``throughput``: prints training throughput (time steps per second, teacher-forced
  forward + backward + Adam step) of an LSTM with hidden 256 at batch 1024, on the GPU in
  float32 and under bfloat16 autocast, against the CPU.

    python benchmarks/gpu_check.py            # a few minutes on one GPU
    python benchmarks/gpu_check.py --only rollouts
    python benchmarks/gpu_check.py --dry-run  # the script itself, on the CPU (a minute)

Run it whenever a GPU is available. Without one it says so and exits with status 0, having
checked nothing. ``--dry-run`` runs every part on the CPU at toy sizes (one epoch, batches of
64; the tests marked ``gpu`` with the CPU in the GPU's place, ``ODERNN_GPU_TESTS=cpu``): its
figures mean nothing, but a GPU's minutes are not spent on a script or a test that fails
(``tests/test_architecture.py`` runs it so).
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

from odernn.assess.metrics import nrmse
from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.learn.config import TrainConfig
from odernn.learn.models import build, load_surrogate
from odernn.learn.models.layout import Layout
from odernn.learn.models.surrogate import joint_closed_loop
from odernn.learn.training import train
from odernn.learn.windows import compute_stats, to_tensors

FAMILIES = ("rnn", "lstm", "gru", "esn")


def data(n: int, n_steps: int, name: str = "train"):
    spec = load_spec(name).with_overrides(integrator="exact", n=n, n_steps=n_steps)
    return simulate_trajectories(spec)


def cuda_vs_cpu(workdir: Path, gpu: str = "cuda", dry_run: bool = False) -> list[str]:
    """Train each family on the GPU and on the CPU; a CPU rollout of the GPU checkpoint must
    match the GPU one. The gradient families' accuracy in float32 and under bfloat16
    autocast. ``dry_run``: 16 short trajectories, one epoch."""
    n, steps, extra = (16, 60, {"epochs": 1}) if dry_run else (128, 400, {})
    train_set, test = data(n, steps), data(n // 4, steps, "test")
    lines = []
    for family in FAMILIES:
        elapsed, val, outs = {}, {}, {}
        for role, device in (("gpu", gpu), ("cpu", "cpu")):
            config = TrainConfig.from_dict({"model": family, "device": device,
                                            **({} if family == "esn" else extra)})
            t0 = time.perf_counter()
            result = train(train_set, config, workdir / f"{family}-{role}", progress=False)
            elapsed[role] = time.perf_counter() - t0
            val[role] = f"{result.best_val_nrmse:.2e} ({result.status})"
        for role, device in (("gpu", gpu), ("cpu", "cpu")):  # the GPU's checkpoint on both
            model = load_surrogate(workdir / f"{family}-gpu", device=device)
            outs[role] = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params["eta"])
        scale = np.std(test.x[:, 1:])
        gap = float(np.max(np.abs(outs["gpu"].x - outs["cpu"].x)) / scale)
        ok = gap < 1e-3 and outs["cpu"].n_diverged == outs["gpu"].n_diverged
        lines.append(f"{family:5s} trained on {gpu} in {elapsed['gpu']:6.1f} s, val NRMSE(x) "
                     f"{val['gpu']}; on the CPU in {elapsed['cpu']:6.1f} s, {val['cpu']}; "
                     f"CPU vs {gpu} rollout max |dx|/std {gap:.1e} "
                     f"{'ok' if ok else 'MISMATCH'}")
        if family != "esn":
            fp32, bf16 = (nrmse(x, test.x) for x in autocast_rollouts(model.to(gpu), test))
            lines.append(f"      closed loop on {gpu}, NRMSE(x): float32 {fp32:.3e}, bfloat16 "
                         f"autocast {bf16:.3e} ({bf16 / fp32:.2f}x)")
    return lines


def autocast_rollouts(model, test) -> list[np.ndarray]:
    """``x`` of the closed loop through the modules' step (autograd on: the path autocast
    covers), in float32 and under bfloat16 autocast."""
    z0, e, observed = model._rollout_tensors(test.x[:, 0], test.v[:, 0], test.F,
                                             test.params["eta"], None, None)
    xs = []
    for bf16 in (False, True):
        with torch.enable_grad(), torch.autocast(model.device.type, torch.bfloat16,
                                                 enabled=bf16):
            z = joint_closed_loop((model,), z0, e, observed)
        xs.append(model._rollout_of(z.detach().float(), 0).x)
    return xs


def throughput(device: str, batch: int = 1024, hidden: int = 256, window: int = 50,
               repeats: int = 5, bf16: bool = False) -> float:
    """Teacher-forced training steps per second (time steps x batch) of an LSTM (``bf16``:
    its forward under bfloat16 autocast)."""
    d = data(64, window + 1)
    layout = Layout(dt=d.dt)
    model = build("lstm", layout, compute_stats(d, layout), hidden=hidden).to(device)
    t = to_tensors(d, layout, device)
    rows = torch.arange(batch, device=device) % t.n
    w = t.windows(rows, torch.zeros(batch, dtype=torch.long, device=device), window)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        with torch.autocast(device, torch.bfloat16, enabled=bf16):
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
             repeats: int = 3, gpu: str = "cuda") -> list[str]:
    """Closed-loop rollouts on CUDA in useful GFLOP/s against the GPU's ``mm`` at the cell's
    shapes (``benchmarks/rollout.py``'s functions)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from rollout import (
        check_in_range,
        in_range,
        matmul_rate,
        median_times,
        rollout_call,
        setup,
        useful_flops,
    )

    data, layout, stats = setup(steps + 1)
    lines = [f"{'family':<6}{'batch':>9}{'matmul GF/s':>13}{'rollout GF/s':>14}{'% of mm':>9}"
             f"{'step us':>10}{'on GPU GF/s':>13}{'% of mm':>9}{'step us':>10}"]
    print(lines[0], flush=True)
    for family in ("rnn", "lstm", "gru"):
        model = in_range(family, layout, stats, data).to(gpu)  # the loop in range
        check_in_range(model, data, min(batches), steps)  # trajectories repeat mod 256
        k, n = layout.n_inputs + model.hparams["hidden"], model.gates * model.hparams["hidden"]
        for batch in batches:
            mm = matmul_rate(batch, k, n, repeats, device=gpu)
            t = median_times({"numpy": rollout_call(model, data, batch, steps),
                              "gpu": resident_call(model, data, batch, steps)}, repeats, gpu)
            row = f"{family:<6}{batch:>9}{mm / 1e9:>13.1f}"
            for name in ("numpy", "gpu"):
                rate = useful_flops(model, layout) * batch * steps / t[name]
                row += (f"{rate / 1e9:>{14 if name == 'numpy' else 13}.1f}"
                        f"{100 * rate / mm:>9.1f}{1e6 * t[name] / steps:>10.1f}")
            lines.append(row)
            print(lines[-1], flush=True)
    return lines


def resident_call(model, data, batch: int, steps: int):
    """The same closed loop with its inputs and outputs left on the GPU (no numpy in or out,
    no float64 copy, no divergence marking): what the GPU's kernels take alone."""
    from rollout import rollout_tensors

    z0, e = rollout_tensors(model, data, batch, steps)

    def run() -> None:
        with torch.inference_mode():  # as the rollout runs it
            joint_closed_loop((model,), z0, e)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=("tests", "train", "throughput", "rollouts"),
                        help="run one part only")
    parser.add_argument("--rollout-steps", type=int, default=50)
    parser.add_argument("--dry-run", action="store_true",
                        help="every part on the CPU at toy sizes (the tests marked gpu too)")
    args = parser.parse_args()
    gpu = "cpu" if args.dry_run else "cuda"
    if args.dry_run:
        print(f"dry run on the CPU (toy sizes, figures mean nothing), torch {torch.__version__}")
    elif not torch.cuda.is_available():
        print("no CUDA GPU available: nothing to check")
        return
    else:
        print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    if args.only in (None, "rollouts"):
        print(f"closed-loop rollouts on {gpu}, {args.rollout_steps} steps:", flush=True)
        rollouts(**({"batches": (64,), "repeats": 1} if args.dry_run else {}),
                 steps=args.rollout_steps, gpu=gpu)
    if args.only in (None, "tests"):
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu",
                                "-p", "no:cacheprovider", "tests/test_gpu.py"],
                               env={**os.environ,
                                    "ODERNN_GPU_TESTS": "1" if gpu == "cuda" else "cpu"},
                               cwd=Path(__file__).resolve().parents[1], check=False)
        print(f"tests marked gpu: {'passed' if tests.returncode == 0 else 'FAILED'}",
              flush=True)
    if args.only in (None, "train"):
        with tempfile.TemporaryDirectory() as tmp:
            for line in cuda_vs_cpu(Path(tmp), gpu, args.dry_run):
                print(line, flush=True)
    if args.only in (None, "throughput"):
        size = {"batch": 64, "hidden": 16, "window": 10, "repeats": 1} if args.dry_run else {}
        on_gpu, cpu = throughput(gpu, **size), throughput("cpu", **{"repeats": 1, **size})
        try:
            bf16 = throughput(gpu, bf16=True, **size)
            autocast = f"{bf16:,.0f} under bfloat16 autocast ({bf16 / on_gpu:.2f}x)"
        except RuntimeError as e:  # the dry run on a CPU whose oneDNN has no bfloat16 LSTM
            if gpu == "cuda":  # (without AVX-512 it has none); on the GPU a failure to report
                raise
            autocast = f"no bfloat16 autocast on this CPU ({str(e).splitlines()[0][:80]})"
        print(f"LSTM hidden {size.get('hidden', 256)}, batch {size.get('batch', 1024)}, "
              f"windows of {size.get('window', 50)}: {on_gpu:,.0f} steps/s on {gpu}, "
              f"{autocast}, {cpu:,.0f} on CPU ({torch.get_num_threads()} threads): GPU/CPU "
              f"{on_gpu / cpu:.1f}x")


if __name__ == "__main__":
    main()
