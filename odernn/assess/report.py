"""The evaluation report: ``metrics.json`` and the sections of ``report.html`` and ``report.md``.

:func:`write_report` turns an :class:`~odernn.assess.results.Evaluation` into a document
(:mod:`odernn.assess.document`): a summary, accuracy, the seeds' spread, trajectories,
work-precision, resonance, the bifurcation diagram, the training histories of the runs
(read through :mod:`odernn.learn.rundir`), the caller's own sections (``extra_sections``)
and the settings and provenance. The figures are drawn by :mod:`odernn.assess.figures`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from odernn import jsonio
from odernn.assess.document import (
    Figure,
    Section,
    Table,
    anchor,
    check_report_dir,
    write_document,
)
from odernn.assess.figures import (
    error_plot,
    loss_plot,
    method_colors,
    overlay_plot,
    phase_plot,
    work_precision_plot,
)
from odernn.assess.metrics import METRICS
from odernn.assess.report_bifurcation import bifurcation_sections
from odernn.assess.report_chaos import chaos_error_figure, chaos_section, chaotic
from odernn.assess.report_findings import best_by_class_sentences, findings
from odernn.assess.report_peers import peers_section
from odernn.assess.report_resonance import frequency_response_run, resonance_section
from odernn.assess.report_seeds import seeds_section
from odernn.assess.results import DATA, DATA_ONLY, Evaluation
from odernn.checks import path_of
from odernn.errors import SpecError
from odernn.learn.rundir import read_config, read_history
from odernn.learn.seeds import first_run, is_group

HEADERS: dict[str, str] = {
    "nrmse_x": "NRMSE x", "nrmse_v": "NRMSE v", "rmse_x": "RMSE x", "rmse_v": "RMSE v",
    "nrmse_x_first_tenth": "NRMSE x, first tenth", "nrmse_v_first_tenth": "NRMSE v, first tenth",
    "rmse_x_first_tenth": "RMSE x, first tenth", "rmse_v_first_tenth": "RMSE v, first tenth",
    "median_nrmse_x": "median NRMSE x", "median_nrmse_v": "median NRMSE v",
    "valid_time_median": "valid time, median", "valid_time_p10": "valid time, p10",
    "valid_time_censored": "valid to the end",
    "energy_balance": "energy balance", "n_diverged": "diverged",
    "wall_time_s": "wall time [s]", "steps_per_s": "steps/s", "speedup": "speed-up",
}
"""Column header of each metric in the report's tables."""


def reference_words(ev: Evaluation) -> str:
    """What every error is against, in words: the exact solution, or the stored test
    trajectories and why (an evaluation written before the reason was recorded: the
    system had no closed form, the one reason then)."""
    if ev.reference != DATA:
        return "the exact solution"
    reason = ev.info["settings"].get("reference_reason", "the system has no closed form")
    return f"the stored test trajectories ({reason})"


def write_report(
    evaluation: Evaluation,
    out_dir: str | Path,
    *,
    runs: Mapping[str, Path] | None = None,
    title: str = "odernn evaluation report",
    overwrite: bool = False,
    extra_sections: Sequence[Section] = (),
) -> Path:
    """Write the report directory ``out_dir`` atomically and return it. ``runs`` maps
    surrogate names to their run directories, for the loss curves and the training
    configurations; ``extra_sections`` come after the evaluator's sections. An existing
    ``out_dir`` is replaced only with ``overwrite`` and only if it is an odernn report (or
    empty)."""
    out = path_of(out_dir, "out_dir")
    if isinstance(extra_sections, Section) or not all(isinstance(s, Section)
                                                      for s in extra_sections):
        raise SpecError(f"extra_sections must be a sequence of Section, got "
                        f"{extra_sections!r:.60}")
    for name, path in (runs or {}).items():  # each an evaluated surrogate's run
        if name not in evaluation.method_names("surrogate"):
            raise SpecError(f"runs names {name!r}, which is no surrogate of this evaluation; "
                            f"its surrogates: {', '.join(evaluation.method_names('surrogate'))}")
        path_of(path, f"runs[{name!r}]")
    check_report_dir(out, overwrite)
    runs = {name: first_run(path) for name, path in (runs or {}).items()}  # a seed group: one
    colors = method_colors(evaluation)
    sections = [
        _summary(evaluation, colors),
        _accuracy(evaluation, colors),
        seeds_section(evaluation),
        _trajectories(evaluation, colors),
        peers_section(evaluation),
        _work_precision(evaluation, colors),
        resonance_section(evaluation, colors),
        chaos_section(evaluation),
        *bifurcation_sections(evaluation, colors),
        _training(runs, colors),
        *extra_sections,
        _provenance(evaluation, runs),
    ]
    sections = [s for s in sections if s is not None]
    meta = (f"odernn {evaluation.info['versions']['odernn']} · created "
            f"{evaluation.info['created']} · test set "
            f"{evaluation.info['data']['path'] or '(in memory)'}")
    metrics = jsonio.dumps(evaluation.to_json(), indent=1) + "\n"
    return write_document(out, title, meta, sections, colors=colors, overwrite=overwrite,
                          files={"metrics.json": metrics})


# -- the sections --------------------------------------------------------------------------

def _summary(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    data, settings = ev.info["data"], ev.info["settings"]
    surrogates = ev.method_names("surrogate")
    peers = ev.method_names("peer")
    integrators = [n for n in ev.method_names("reference", "integrator") if n != DATA]
    also = (f", {len(peers)} peer{'s' * (len(peers) != 1)} fitted on the same training file "
            f"({', '.join(peers)})" if peers else "")
    solvers = (f"{len(integrators)} integrator{'s' * (len(integrators) != 1)} "
               f"({', '.join(integrators)})" if integrators else "no integrator")
    n = data["n_trajectories"]
    what = (f"Compared {len(surrogates)} surrogate{'s' * (len(surrogates) != 1)} "
            f"({', '.join(surrogates) or 'none'}){also} with {solvers} on "
            f"{n} test trajector{'ies' if n != 1 else 'y'} of "
            f"{data['n_steps']} time points (dt = {data['dt']:g}, t up to {data['t_end']:g}), "
            f"system `{data['system']}`, forcing `{data['forcing']}`, "
            + ", ".join(f"{k} in [{lo:.3g}, {hi:.3g}]" for k, (lo, hi)
                        in data["parameter_ranges"].items())
            + f", from `{data['path'] or '(in memory)'}`. "
            f"Every error is against {reference_words(ev)} over "
            f"steps {ev.start}..."
            f"{data['n_steps'] - 1}, pooled over trajectories; NRMSE divides by the test set's "
            f"std (x: {settings['error_scale']['x']:.3g}, v: {settings['error_scale']['v']:.3g}).")
    keys = ("nrmse_x", "nrmse_v", "valid_time_median", "n_diverged", "wall_time_s", "speedup")
    resonance = (ev.resonance or {}).get("methods", {})
    table = Table(
        ["method", "kind", *(HEADERS[k] for k in keys), "resonance amplitude error, max"],
        [[n, m.kind, *(m.metrics.get(k) for k in keys),
          resonance.get(n, {}).get("amplitude_rel_error_max")] for n, m in ev.methods.items()],
        "Key numbers. Speed-up: over the cheapest integrator setting at least as accurate in "
        "NRMSE x (work-precision section). Resonance: relative error of the steady-state "
        "amplitude, worst over the sweep" + (
            " (frequency response: against the integrator, over the drives whose reference is "
            "periodic)" if frequency_response_run(ev) else
            " (against the analytic curve: the exact solution's own is the floor, the "
            "transient the sweep leaves; a method at that floor is as close as it can tell)")
        + ". Definitions at the end.")
    return Section("Summary", what + "\n\n" + "\n".join([*best_by_class_sentences(ev),
                                                        *findings(ev)]), [table])


def _accuracy(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    groups = [
        ("Error over the whole horizon and its first tenth.",
         ("nrmse_x", "nrmse_v", "rmse_x", "rmse_v", "nrmse_x_first_tenth",
          "nrmse_v_first_tenth", "rmse_x_first_tenth", "rmse_v_first_tenth")),
        ("Robustness and physics: per-trajectory medians (finite while fewer than half of "
         "the trajectories diverge), valid prediction time, energy balance, divergence count.",
         ("median_nrmse_x", "median_nrmse_v", "valid_time_median", "valid_time_p10",
          "valid_time_censored", "energy_balance", "n_diverged")),
        ("Speed: wall time to produce every test trajectory, and throughput.",
         ("wall_time_s", "steps_per_s", "speedup")),
    ]
    tables = [Table(["method", *(HEADERS[k] for k in keys)],
                    [[n, *(m.metrics.get(k) for k in keys)] for n, m in ev.methods.items()],
                    caption) for caption, keys in groups]
    figure = (chaos_error_figure(ev, colors) if chaotic(ev) else
              Figure("error-vs-time", "Error against time, divided by the test set's std: "
                     "median over trajectories (line) and 90th percentile (band). The "
                     "reference has no error and is not drawn.", error_plot(ev, colors)))
    ran = set(ev.method_names("integrator", "reference"))
    between = " and ".join(f"`{n}`" for n in ("rk4", "scipy") if n in ran)
    if not ran - {DATA}:  # settings' note: imported data of no known system
        forcing = ("No integrator ran: the test set's equation is not known. "
                   if "note" in ev.info["settings"] else "No integrator was asked for. ")
    elif ev.test.samples_only:
        forcing = ("The test set knows its forcing only at the samples F_i (imported data), so "
                   "every method sees it only there, as the surrogates do" + (
                       f": {between} interpolate linearly between them. " if between else ". "))
    else:
        forcing = ("The surrogates see the forcing only at the samples F_i, as do forward and "
                   "semi-implicit Euler and the `rk4-sampled*` integrators"
                   + (f"; {between} evaluate it between the samples too, which a surrogate "
                      "cannot. " if between else ". "))
    peers = ("The peers, fitted on the surrogates' training file, see what a surrogate sees "
             "(Peers section). " if ev.method_names("peer") else "")
    text = ("Each method produced all test trajectories from their initial states. "
            f"{forcing}{peers}The valid prediction time is the first time the "
            f"error in x exceeds {ev.info['settings']['valid_time_threshold']:g} of the test "
            "set's std; a trajectory whose error never does is valid to the end, and its "
            "valid time, the horizon, is a lower bound.")
    return Section("Accuracy", text, tables, [figure])


def _trajectories(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    surrogates = ev.method_names(*DATA_ONLY)
    if not surrogates:
        return Section("Trajectories", "No surrogates or peers were evaluated.")
    stems = [f"trajectories-{anchor(name) or 'surrogate'}" for name in surrogates]
    stems = [stem if stems.count(stem) == 1 else f"{stem}-{i}" for i, stem in enumerate(stems)]
    who = reference_words(ev)  # the stored data: no exact one
    figures = [Figure(stem, f"{name} against {who} on its best, median and worst "
                      "test trajectory, ranked by each trajectory's own NRMSE x (divided by "
                      "the test set's std; the median panel is the trajectory of rank N // 2, "
                      "so its NRMSE can differ from the table's median of the N).",
                      overlay_plot(ev, name, colors))
               for stem, name in zip(stems, surrogates, strict=True)]
    figures.append(Figure("phase-portraits", "Phase portraits (x, v) of each surrogate's and "
                          f"peer's median trajectory (its own: the panels show different "
                          f"trajectories), {who} in black, its start a dot.",
                          phase_plot(ev, colors)))
    return Section("Trajectories", "", (), figures)


def _work_precision(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    wp = ev.work_precision
    if wp is None:
        return Section("Work-precision", "The work-precision sweep was not run.")
    rows = [[p["method"], p["setting"], p["error"], p["wall_time_s"]] for p in wp["integrators"]]
    settings = Table(["method", "setting", "NRMSE x", "wall time [s]"], rows,
                     "Every integrator setting of the sweep.")
    speed = Table(["surrogate or peer", "NRMSE x", "wall time [s]", "speed-up", "over"],
                  [[n, wp["surrogates"][n]["error"], wp["surrogates"][n]["wall_time_s"],
                    s["speedup"], s.get("over", s.get("reason"))]
                   for n, s in wp["speedup"].items()],
                  "Speed-up over the cheapest integrator setting at least as accurate.")
    text = ("Error (NRMSE x) against wall time, as numerical analysts compare solvers: each "
            "fixed-step integrator over step sizes dt x "
            f"{', '.join(f'{f:g}' for f in wp['step_factors'])} (the `rk4-sampled*` "
            "integrators, given only the samples, at the whole factors >= 1: every k-th "
            "sample), SciPy over tolerances, each "
            "surrogate and peer a star. A surrogate's speed-up is measured against the cheapest "
            "integrator setting that is at least as accurate, not against SciPy at a tight "
            "tolerance (which would flatter any surrogate).")
    figure = Figure("work-precision", "Work-precision diagram, both axes logarithmic: each "
                    "line an integrator over its settings (a dot per step size or tolerance), "
                    "each star a surrogate or peer; lower left is better.",
                    work_precision_plot(ev, colors))
    return Section("Work-precision", text, [speed, settings], [figure])


def _training(runs: Mapping[str, Path], colors: Mapping[str, str]) -> Section:
    """Per-epoch histories as curves; others (an ESN's ridge candidates) as tables."""
    if not runs:
        return Section("Training", "No run directories were given, so no training history.")
    histories = {name: read_history(Path(run)) for name, run in runs.items()}
    curves = {name: h for name, h in histories.items() if len(h.get("epoch", ())) > 0}
    tables = [Table(list(h), [list(row) for row in zip(*h.values(), strict=True)],
                    f"{name}: training history (one row per candidate).", swatches=False)
              for name, h in histories.items() if h and name not in curves]
    missing = [name for name, h in histories.items() if not h]
    groups = [name for name, run in runs.items() if is_group(Path(run).parent)]
    text = ("From each run's history: the training loss (solid: the objective minimised, the "
            "one-step error in normalised units plus, from the epoch a closed-loop horizon "
            "starts, its closed-loop term, so it can rise as the horizon grows) and the "
            "validation loss (dashed: the one-step error on the validation set) per epoch, and "
            "the closed-loop validation error where the run recorded it."
            + (f" A seed group's history is its first member's ({', '.join(groups)})."
               if groups else "")
            + (f" No history in: {', '.join(missing)}." if missing else ""))
    figures = [Figure("loss-curves", "Training history against epoch; the y axes logarithmic.",
                      loss_plot(curves, colors))] if curves else []
    return Section("Training", text, tables, figures)


def _provenance(ev: Evaluation, runs: Mapping[str, Path]) -> Section:
    info = ev.info
    settings = _flatten(info["settings"])
    data = _flatten({k: v for k, v in info["data"].items() if k != "attrs"})
    attrs = info["data"]["attrs"]
    long = [(f"test set: {k}", v) for k, v in attrs.items() if isinstance(v, str) and "\n" in v]
    data.update({f"attrs.{k}": v for k, v in _flatten(attrs).items()
                 if not (isinstance(v, str) and "\n" in v)})
    configs = [(f"run {name}: config.json", jsonio.dumps(config, indent=2))
               for name, run in runs.items() if (config := read_config(Path(run))) is not None]
    runs_table = [Table(["run", "directory"], [[n, str(p)] for n, p in runs.items()],
                        "Run directories of the surrogates.")] if runs else []
    tables = [
        Table(["method", "kind", "description", "settings"],
              [[n, m.kind, m.description, m.settings or ""] for n, m in ev.methods.items()],
              "The methods compared."),
        Table(["metric", "column", "definition"],
              [[k, HEADERS[k], d] for k, d in METRICS.items()],
              "Metric definitions (docs/metrics.md has the full text)."),
        Table(["setting", "value"], list(settings.items()), "Evaluation settings.",
              swatches=False),
        Table(["data", "value"], list(data.items()), "The test set and its provenance.",
              swatches=False),
        *runs_table,
        Table(["package", "version"], list(info["versions"].items()), "Software versions.",
              swatches=False),
    ]
    text = f"Written by `{info['command']}`." if info.get("command") else ""
    return Section("Settings and provenance", text, tables, (), long + configs)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out

