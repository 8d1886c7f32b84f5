"""The report's Peers section: what SINDy and DMDc were fitted on, the settings the validation
trajectories chose, and SINDy's identified equation (:mod:`odernn.assess.peers`)."""

from __future__ import annotations

from odernn.assess.document import Section, Table
from odernn.assess.peers import SINDY_STEPPING, TOLERANCE, VAL_FRACTION
from odernn.assess.results import Evaluation

TEXT = (
    "Two classical models learnt from the surrogates' training file, with a surrogate's "
    "information: the initial state, the forcing samples F_i, and the parameters that vary "
    "across the training trajectories and that every surrogate here takes (the table says "
    "which), each constant along its trajectory. **sindy**: sparse "
    "identification with control (pysindy): a polynomial ODE for (x, v) in (x, v, F and the "
    "parameters), fitted to 4th-order finite differences by sequentially thresholded least "
    f"squares and {SINDY_STEPPING}. **dmdc**: DMD with "
    "control, a linear map of the regressors of the surrogates' linear skip: z = (x, v), the "
    "samples F_{k-1}, F_k, F_{k+1}, the varying parameters' monomials (to degree 2 on a "
    "linear system) times each of those, the monomials alone and 1, by least squares with a "
    "truncated SVD. "
    f"SINDy's threshold and DMDc's rank are chosen on {VAL_FRACTION:.0%} of the training "
    "trajectories, held out whole and rolled out in closed loop from their initial states: "
    "the simplest candidate (larger threshold, lower rank) whose NRMSE of x is within "
    f"{TOLERANCE:.0%} of the lowest; the model is then fitted on every training trajectory.")


def peers_section(ev: Evaluation) -> Section:
    """The Peers section; it says why when no peer ran."""
    info = ev.peers or {}
    peers = ev.method_names("peer")
    notes = [f"- {name} was not run: {why}." for name, why in info.get("skipped", {}).items()]
    if info.get("not_run"):
        notes.append(f"- No peer was run: {info['not_run']}.")
    text = TEXT + ("\n\n" + "\n".join(notes) if notes else "")
    if not peers:
        return Section("Peers", text)
    rows = []
    for name in peers:
        s = ev.methods[name].settings
        chosen = (f"threshold {s['threshold']:g}, {s['n_terms']} terms" if "threshold" in s
                  else f"rank {s['rank']} of {s['full_rank']}")
        rows.append([name, chosen, ", ".join(s.get("parameters", [])) or "none",
                     s.get("fit_samples"), s.get("fit_time_s"),
                     ev.metrics[name]["nrmse_x"]])
    table = Table(["peer", "chosen on validation", "parameters given", "samples fitted",
                   "fit time [s]", "NRMSE x (test)"], rows,
                  f"Training file: `{info.get('training_data') or '(in memory)'}`. Fit time: "
                  "the whole selection and the final fit; the rollout's time is in the "
                  "accuracy tables.")
    validation = [Table(["threshold" if "threshold" in s else "rank",
                         *(["terms"] if "threshold" in s else []), "validation NRMSE x"],
                        [[c.get("threshold", c.get("rank")),
                          *([c["n_terms"]] if "threshold" in s else []), c["val_nrmse_x"]]
                         for c in s["validation"]],
                        f"{name}: every candidate on the validation trajectories.",
                        swatches=False)
                  for name in peers if "validation" in (s := ev.methods[name].settings)]
    equations = [(f"{name}: identified equation",
                  "\n".join(f"{lhs} = {rhs}" for lhs, rhs in s["equations"].items()))
                 for name in peers if "equations" in (s := ev.methods[name].settings)]
    return Section("Peers", text, [table, *validation], (), equations)
