"""The whole pipeline on built-in defaults: simulate, train, evaluate, report.

``odernn demo`` calls :func:`run_demo`. The demo trains with a smaller budget
than the benchmark defaults (``benchmarks/surrogates.py``), so that it
finishes in minutes on a laptop; the report says so. Every stage is the same
library call a user would make by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from odernn import jsonio
from odernn.checks import check_choice, counted, did_you_mean
from odernn.demo_dir import demo_output, finish
from odernn.errors import SpecError
from odernn.learn.families import FAMILIES as ALL_FAMILIES
from odernn.progress import Progress, reporter

"""A file naming a directory as the demo's own, which a later demo may replace."""

FAMILIES = ("rnn", "lstm", "gru", "esn")

DEMO_BUDGET: dict[str, dict[str, Any]] = {
    "rnn": {"epochs": 24},
    "lstm": {"epochs": 12},
    "gru": {"epochs": 12},
    "esn": {},
}
"""Training options of the demo budget, per family (the rest are the family defaults): about
the same fraction of each family's default epochs, 0.3 to 0.6."""

QUICK: dict[str, Any] = {"n_train": 12, "n_test": 4, "n_steps": 120, "epochs": 1, "hidden": 8,
                         "units": 40, "window": 20, "horizon": 10, "horizon_start": 5}
"""A tiny run for the test suite: the same pipeline in seconds."""
SEEDS = 3
"""Seeds per family by default: a seed group, so that the report shows each surrogate's median
and spread over its seeds and their ensemble (three: the fewest whose median drops a runaway
member)."""
QUICK_TRAINING = ("epochs", "hidden", "units", "window", "horizon", "horizon_start")
"""The training options among :data:`QUICK` (the rest size the datasets)."""
QUICK_SWEEPS: dict[str, dict[str, Any]] = {
    "resonance": {"n_omega": 4, "max_steps": 400, "periods": 2, "fit_periods": 1},
    "bifurcation": {"n_amplitudes": 4, "transient": 4, "periods": 8, "max_period": 4,
                    "initial_states": 1},
}
"""With ``quick``, the evaluation's sweeps shrunk to a few drives: the stages run, in seconds
(the frequency response of a system without a closed form steps every drive in turn)."""


@dataclass
class DemoResult:
    """Where everything went, how long each stage took, and the headline metrics."""

    out: Path
    stages: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    presets: list[dict[str, Any]] = field(default_factory=list)

    @property
    def report(self) -> Path:
        return self.out / "report" / "report.html"


def run_demo(out: Path, *, models: Sequence[str] = FAMILIES, n_train: int | None = None,
             n_test: int | None = None, epochs: int | None = None, hidden: int | None = None,
             units: int | None = None, device: str = "auto", quick: bool = False,
             overwrite: bool = False, say: Callable[[str], None] = print,
             progress: bool | Progress = True, system: str = "oscillator",
             data: Path | None = None, test: Path | None = None,
             seeds: int = SEEDS) -> DemoResult:
    """Simulate ``train`` and ``test``, train ``models``, evaluate them, write the report.

    ``system`` picks the built-in pair ``train``/``test`` (the linear oscillator) or
    ``SYSTEM-train``/``SYSTEM-test``; ``n_train``/``n_test`` shrink the datasets,
    ``epochs``/``hidden``/``units`` override the demo budget; ``quick`` is a tiny run for
    tests. ``data`` and ``test`` (both or neither) are the user's files instead of the
    simulated pair (imported ones too; :func:`~odernn.data.trajectories.check_pair`).
    ``seeds`` > 1 trains each family that many times (a seed group: the report shows the
    spread over seeds and the seeds' joint closed loop); 1 trains one model per family.
    """
    from odernn.data.spec import load_spec
    from odernn.data.systems import get_system
    from odernn.learn.config import TrainConfig
    from odernn.learn.seeds import member_seeds
    from odernn.learn.training import resolve_device

    unknown = [m for m in models if m not in FAMILIES]
    if unknown or not models:
        hint = did_you_mean(unknown[0], FAMILIES) if unknown else ""
        other = " (the demo trains these four families; odernn train takes the others)" \
            if unknown and unknown[0] in ALL_FAMILIES else ""
        raise SpecError(f"--models: unknown {', '.join(unknown) or '(none given)'}{hint}; "
                        f"allowed: {', '.join(FAMILIES)}{other}")
    for option, value in (("--n-train", n_train), ("--n-test", n_test)):
        if value is not None and value < 1:
            raise SpecError(f"{option} must be >= 1, got {value}")
    if (data is None) != (test is None):
        raise SpecError("--data and --test go together: the training and the test file")
    if data is not None:
        given = [o for o, v in (("--n-train", n_train), ("--n-test", n_test),
                                ("--system", system != "oscillator")) if v]
        if given:
            raise SpecError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                            "the simulated data, not to --data and --test (the files say their "
                            "system and size)")
    # every option is checked before the output directory is touched
    sizes = {"train": n_train or (QUICK["n_train"] if quick else None),
             "test": n_test or (QUICK["n_test"] if quick else None)}
    get_system(system)  # one line with a "did you mean" for an unknown system
    prefix = "" if system == "oscillator" else f"{system}-"
    specs = {name: load_spec(prefix + name).with_overrides(
        n=n, n_steps=QUICK["n_steps"] if quick else None) for name, n in sizes.items()}
    budgets = {family: _budget(family, epochs, hidden, units, device, quick) for family in models}
    configs = {family: TrainConfig.from_dict({"model": family, **options},
                                             where=f"demo {family} options")
               for family, options in budgets.items()}
    resolve_device(device)
    member_seeds(0, seeds)  # one line for a bad count
    out = Path(out)
    check = partial(_check_evaluation, models=len(models), seeds=seeds)
    if data is None:
        test_set = specs["test"]
        check(test_set.n, test_set.n_steps, test_set.system, test_set.K)
    files = {} if data is None else _read_pair(Path(data), Path(test), check)
    with demo_output(out, overwrite, inputs=[p for p in (data, test) if p is not None]):
        return _demo(out, specs, configs, budgets, say, reporter(progress), files, seeds,
                     quick)


def _check_evaluation(n: int, n_steps: int, system: str, harmonics: int, models: int,
                      seeds: int) -> None:
    """Refuse, before anything is simulated or trained, a test set (``n`` trajectories of
    ``n_steps`` points of ``system``, its forcing of ``harmonics``) whose evaluation would pass
    the memory budget (it was refused only after the training, its work lost)."""
    from odernn.assess.evaluate import DEFAULT_INTEGRATORS
    from odernn.assess.inputs import check_evaluation

    check_evaluation(n, n_steps, system, len(DEFAULT_INTEGRATORS),
                     [seeds if seeds > 1 else 0] * models, peers=True,
                     advice="give a smaller test set (--n-test, or --test), or fewer "
                            "--models or --seeds", harmonics=harmonics)


def _read_pair(data: Path, test: Path, check: Callable[[int, int, str, int], None]
               ) -> dict[str, Any]:
    """The user's training and test files, read and checked as a pair (one line if not);
    ``check(n, n_steps, system, harmonics)`` is given the test file's size, system and
    forcing first, from its header and first row, before either file is read."""
    from odernn.assess.inputs import harmonics
    from odernn.data.store import open_trajectories, read_trajectories
    from odernn.data.trajectories import check_pair

    with open_trajectories(test) as f:
        first = f.read(slice(0, 1))
        check(f.n, f.n_steps, first.system, harmonics(first))
        pair = {"train": read_trajectories(data), "test": f.read()}
    check_pair(pair["train"], pair["test"], f"--data {data}", f"--test {test}")
    return {"paths": {"train": data, "test": test}, **pair}


def _demo(out: Path, specs: dict[str, Any], configs: dict[str, Any],
          budgets: dict[str, dict[str, Any]], say: Callable[[str], None],
          progress: Progress, files: dict[str, Any], seeds: int = 1,
          quick: bool = False) -> DemoResult:
    """The stages of :func:`run_demo`, writing into ``out``: simulate ``specs`` (or take the
    user's ``files``), train ``configs`` (whose demo options are ``budgets``), evaluate,
    report."""
    from odernn.assess.bifurcation import BifurcationSettings
    from odernn.assess.evaluate import evaluate, load_runs
    from odernn.assess.report import write_report
    from odernn.assess.resonance import ResonanceSettings
    from odernn.data.simulate import simulate
    from odernn.data.store import read_trajectories
    from odernn.learn.seeds import train_seeds
    from odernn.learn.training import train

    result = DemoResult(out)

    start = time.perf_counter()
    data = {k: files[k] for k in ("train", "test") if k in files}
    paths = files.get("paths", {name: out / f"{name}.h5" for name in specs})
    for name, spec in specs.items() if not data else ():
        simulate(spec, out / f"{name}.h5", progress=progress)
        data[name] = read_trajectories(out / f"{name}.h5")
        say(f"simulated {name}: {counted(data[name].n, 'trajectory', 'trajectories')} x "
            f"{data[name].n_steps} points")
    result.stages["simulate" if not files else "read data"] = time.perf_counter() - start

    runs = {}
    for family in configs:
        start = time.perf_counter()
        say(f"training {family} ({', '.join(f'{k}={v}' for k, v in budgets[family].items())})"
            " ...")
        path = out / "runs" / family
        done = (train_seeds(data["train"], configs[family], path, seeds, progress=progress)
                if seeds > 1 else {"": train(data["train"], configs[family], path,
                                             progress=progress)})
        if len(done) < seeds or any(r.status == "interrupted" for r in done.values()):
            raise KeyboardInterrupt
        runs[family] = path
        result.stages[f"train {family}"] = time.perf_counter() - start
        errors = ", ".join(f"{r.best_val_nrmse:.3g}" for r in done.values())
        say(f"trained {family}: {next(iter(done.values())).message}; closed-loop validation "
            f"NRMSE(x) {errors} in {result.stages[f'train {family}']:.0f} s")

    start = time.perf_counter()
    sweeps = {} if not quick else {
        "resonance": ResonanceSettings(**QUICK_SWEEPS["resonance"]),
        "bifurcation": BifurcationSettings(**QUICK_SWEEPS["bifurcation"])}
    evaluation = evaluate(data["test"], load_runs(runs), data_path=paths["test"],
                          train_data=data["train"], train_path=paths["train"],
                          progress=progress, **sweeps)
    result.stages["evaluate"] = time.perf_counter() - start
    result.metrics = evaluation.metrics

    start = time.perf_counter()
    section = _budget_section(budgets, result.stages, seeds)
    write_report(evaluation, out / "report", runs=runs, title="odernn demo report",
                 extra_sections=[section])
    result.stages["report"] = time.perf_counter() - start
    finish(out, result.stages)
    return result


def _budget(family: str, epochs: int | None, hidden: int | None, units: int | None,
            device: str, quick: bool) -> dict[str, Any]:
    """The demo's training options for ``family``: its budget, then the caller's overrides
    (each only where the family takes it)."""
    from odernn.learn.config import takes

    options: dict[str, Any] = {**DEMO_BUDGET[family], "device": device}
    if quick:
        options.update({k: v for k, v in QUICK.items() if k in QUICK_TRAINING
                        and takes(family, k)})
    given = {"epochs": epochs, "hidden": hidden, "units": units}
    options.update({k: v for k, v in given.items() if v is not None and takes(family, k)})
    return options


def _budget_section(budgets: dict[str, dict[str, Any]], stages: dict[str, float], seeds: int):
    from odernn.assess.document import Section, Table

    rows = [[f, ", ".join(f"{k}={v}" for k, v in options.items())]
            for f, options in budgets.items()]
    timing = [[stage, seconds] for stage, seconds in stages.items()]
    return Section(
        "Demo budget",
        "This report comes from `odernn demo`, which trains with a **demo budget**: fewer "
        "epochs than the gradient families' defaults (a family without options below keeps "
        "its own), so that the whole pipeline runs in minutes on a laptop CPU. Those "
        "families may be less accurate here than trained with their defaults (`odernn "
        "train`; `benchmarks/surrogates.py` measures them so). "
        + (f"Each family was trained {seeds} times, with seeds 0 to {seeds - 1} (the Seeds "
           "section); the training times below are the sum over its seeds." if seeds > 1 else
           "Each family was trained once (`--seeds 1`), so the report cannot say how much of "
           "its error is the seed's luck."),
        tables=[Table(["model", "training options (the rest: `odernn models` defaults)"], rows,
                      swatches=False),
                Table(["stage", "seconds"], timing, caption="Wall time of each stage.",
                      swatches=False)],
    )


def run_preset_demo(out: Path, preset: str, *, seed: int = 0, quick: bool = False,
                    overwrite: bool = False, say: Callable[[str], None] = print) -> DemoResult:
    """The notes' ``sine`` or ``noisy-sine`` example: every variant side by side, in a report.

    See :mod:`odernn.notes.notes_examples` for the variants (the notes' scripts as written, the
    Keras ``(step, 1)`` layout, and our improved recipe).
    """
    from odernn.checks import check_seed
    from odernn.notes.notes_examples import VARIANTS

    check_choice(preset, VARIANTS, "--preset")
    check_seed(seed, "--seed")
    out = Path(out)
    with demo_output(out, overwrite):
        return _preset_demo(out, preset, seed, quick, say)


def _preset_demo(out: Path, preset: str, seed: int, quick: bool,
                 say: Callable[[str], None]) -> DemoResult:
    """The stages of :func:`run_preset_demo`, writing into ``out``."""
    from odernn import __version__
    from odernn.assess.document import write_document
    from odernn.notes.notes_examples import VARIANTS, preset_section, preset_table, run_preset

    result = DemoResult(out)
    runs = []
    for variant in VARIANTS[preset]:
        start = time.perf_counter()
        say(f"{preset}: running the {variant} variant ...")
        runs.append(run_preset(preset, variant, seed=seed, quick=quick))
        result.stages[f"{preset} {variant}"] = time.perf_counter() - start
    result.presets = preset_table(runs)
    start = time.perf_counter()
    meta = f"odernn {__version__} · the lecture notes' {preset} example, seed {seed}"
    files = {"presets.json": jsonio.dumps(result.presets, indent=1) + "\n"}
    write_document(out / "report", f"odernn demo: the notes' {preset} example", meta,
                   [preset_section(runs)], files=files)
    result.stages["report"] = time.perf_counter() - start
    finish(out, result.stages)
    return result
