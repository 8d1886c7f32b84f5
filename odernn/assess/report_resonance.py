"""The report's resonance section: the linear oscillator's resonance check against the
analytic response, or a nonlinear system's frequency response against the integrator's
(:mod:`odernn.assess.resonance`, :mod:`odernn.assess.frequency_response`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odernn.assess.document import Figure, Section, Table, fmt
from odernn.assess.figures import frequency_response_plot, resonance_plot
from odernn.assess.results import Evaluation


def resonance_section(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    """The linear oscillator's resonance check against the analytic response, or a
    nonlinear system's frequency response against the integrator's."""
    res = ev.resonance
    if res is None:
        return Section("Resonance", "The resonance check was not run.")
    if "skipped" in res:
        return Section("Resonance", f"The resonance check was skipped: {res['skipped']}.")
    if frequency_response_run(ev):
        return _frequency_response(ev, colors)
    etas = ", ".join(f"{e:.3g}" for e in res["curve"]["eta"])
    text = (f"Driven from rest by F0 cos(omega t), F0 = {res['F0']:.3g}, at eta = {etas}, over "
            f"{len(set(res['omega']))} frequencies per eta in [{min(res['omega']):.3g}, "
            f"{max(res['omega']):.3g}] (inside the test set's ranges), for {res['n_steps']} steps "
            "so that transients (decaying as exp(-eta t / 2); overdamped, as their slower "
            f"mode) fall below "
            f"{res['transient_left']:.1e} of their start; amplitude and phase lag are fitted "
            "over whole periods at the end and compared with the analytic "
            "F0 / sqrt((1 - omega^2)^2 + (eta omega)^2).")
    keys = ("amplitude_rel_error_median", "amplitude_rel_error_max", "lag_error_median",
            "lag_error_max", "n_diverged")
    table = Table(["method", "amplitude rel. error, median", "amplitude rel. error, max",
                   "phase error [rad], median", "phase error [rad], max", "diverged"],
                  [[n, *(r[k] for k in keys)] for n, r in res["methods"].items()],
                  "Steady-state response against the analytic formula.")
    short = res["transient_left"] > res["transient_tol"]
    figure = Figure("resonance", "Steady-state amplitude (top, log scale) and phase lag "
                    "(bottom) against driving frequency; the analytic response is the black "
                    "line, the exact solution's fit the open circles."
                    + (f" The sweep is too short for its transients to decay (they are left at "
                       f"{res['transient_left']:.1e} of their start, against "
                       f"{res['transient_tol']:.0e} asked): the exact solution's own fit is off "
                       "the curve by that much, and so is every method's." if short else ""),
                    resonance_plot(ev, colors))
    return Section("Resonance", text, [table], [figure])


def frequency_response_run(ev: Evaluation) -> bool:
    """The evaluation's resonance is a nonlinear system's frequency response."""
    return (ev.resonance or {}).get("kind") == "frequency-response"


def _frequency_response(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    """A system without a closed form: the response against the integrator's."""
    res = ev.resonance
    fixed = ", ".join(f"{k} = {v:.3g}" for k, v in res["parameters"].items())
    how = ("swept up and then down in frequency by continuation (each drive starts from the "
           "previous drive's end state, the drive's phase continuous), so that coexisting "
           "responses show as a jump" if res["continuation"] else "each drive from rest")
    solver = res["reference_settings"]
    excluded = res["n_drives"] - res["n_periodic"]
    text = (f"The steady-state amplitude of `{res['system']}` against the drive frequency, "
            f"driven by F0 cos(omega t), F0 = {res['F0']:.3g}, at {res['parameter']} = "
            f"{', '.join(f'{v:.3g}' for v in res['levels'])}{' with ' + fixed if fixed else ''} "
            f"(the test set's quartiles and medians), over {len(set(res['omega']))} "
            f"frequencies in [{min(res['omega']):.3g}, {max(res['omega']):.3g}], {how}. Each "
            f"drive lasts {res['horizon']}. The reference is the integrator ({res['reference']} "
            f"{solver['method']}, rtol {solver['rtol']:g}), not a formula: this system has "
            "none. The first harmonic is fitted over whole periods at each drive's end. A "
            "response counts as periodic when its stroboscopic samples (the state once per "
            f"drive period over the fit window) spread by at most {res['periodic_tol']:g} of "
            f"its amplitude; {excluded} of {res['n_drives']} reference drives were not "
            "(quasi-periodic, subharmonic, chaotic, rotating or not yet settled: no sharp "
            "amplitude) "
            "and are left out of the errors.\n\n" + "\n".join(_response_shape(res)))
    keys = ("n_scored", "amplitude_rel_error_median", "amplitude_rel_error_max",
            "lag_error_median", "lag_error_max", "n_not_periodic", "n_diverged")
    table = Table(["method", "drives scored", "amplitude rel. error, median",
                   "amplitude rel. error, max", "phase error [rad], median",
                   "phase error [rad], max", "not periodic", "diverged"],
                  [[n, *(r[k] for k in keys)] for n, r in res["methods"].items()],
                  "Steady-state response against the integrator's, over the drives whose "
                  "reference is periodic; not periodic: of those, the drives where the "
                  "surrogate's own response is not.")
    figure = Figure("frequency-response", "Steady-state amplitude (top) and phase lag (bottom, "
                    "periodic drives) against drive frequency: the integrator in black (up "
                    "sweep solid, down sweep dashed with open markers), grey crosses where its "
                    "response is not periodic, each surrogate in its colour (up solid, down "
                    "dashed; its lag drawn within pi of the integrator's).",
                    frequency_response_plot(ev, colors))
    return Section("Frequency response", text, [table] if res["methods"] else [], [figure])


def _response_shape(res: Mapping[str, Any]) -> list[str]:
    """What the measured response shows, in words and numbers, a line per damping level."""
    system, out = res["system"], []
    if system == "duffing" and res["parameters"]["alpha"] <= 0:
        out.append(f"- Duffing with alpha = {res['parameters']['alpha']:.3g} <= 0 is a double "
                   "well: small responses inside one well soften, large ones across both "
                   "harden, and some drives are chaotic (not periodic, left out).")
    elif system == "duffing" and res["parameters"]["beta"] != 0:
        beta = res["parameters"]["beta"]
        kind, lean = ("hardening", "higher") if beta > 0 else ("softening", "lower")
        out.append(f"- Duffing with beta = {beta:.3g} is {kind}: the peak leans toward {lean} "
                   "omega, along the backbone omega^2 = alpha + 3/4 beta A^2 (dotted, first-"
                   "order harmonic balance); where two stable responses coexist the up and "
                   "down sweeps part and the response jumps.")
    elif system == "pendulum":
        out.append("- The pendulum softens (sin x < x): its peak leans toward lower omega, "
                   "along the backbone omega^2 = 1 - A^2/8 (dotted).")
    elif system == "van-der-pol":
        out.append("- Van der Pol oscillates by itself (a limit cycle of amplitude about 2 "
                   "near omega 1): a drive close to that frequency entrains it (locked: "
                   "periodic at the drive frequency), one farther off does not (quasi-periodic, "
                   "left out).")
    for s in res["shape"]:
        peak = s["peak"]
        shown = {d: (fmt(v["amplitude"]), fmt(v["omega"])) for d, v in peak.items()}
        if {*peak} == {"up", "down"} and shown["up"] == shown["down"]:
            peak = {"both": peak["up"]}  # the same to the digits shown
        word = {"rest": "the sweep from rest peaks", "both": "both sweeps peak"}
        edges = (min(res["omega"]), max(res["omega"]))
        peaks = "; ".join(f"{word.get(d, f'the {d} sweep peaks')} at A = {fmt(v['amplitude'])}, "
                          f"omega = {fmt(v['omega'])}"
                          + (" (the sweep's edge: no peak inside its range)"
                             if v["omega"] in edges else "")
                          for d, v in peak.items()) or "no periodic drive"
        w = s["periodic_omega"]
        periodic = f"{s['n_periodic']} drives periodic" + (
            f", omega {fmt(w[0])} to {fmt(w[1])}" if w else "")
        parted = ("" if not res["continuation"] else
                  "; up and down agree: no jump" if s["hysteresis"] is None else
                  f"; up and down part at omega {fmt(s['hysteresis'][0])}"
                  + (f" to {fmt(s['hysteresis'][1])}" if s["hysteresis"][1] > s["hysteresis"][0]
                     else "") + ": two stable responses, a jump")
        out.append(f"- {res['parameter']} = {s['level']:.3g}: {peaks}{parted}; {periodic}.")
    return out
