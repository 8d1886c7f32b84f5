"""The summary's sentences of the evaluation report: the most accurate method of each
information class, each surrogate against the integrator given the same information, and
the few findings a reader needs first (:mod:`odernn.assess.report`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from odernn.assess.document import fmt, fmt_at_least
from odernn.assess.report_resonance import frequency_response_run
from odernn.assess.results import REFERENCE, Evaluation, accuracy_key


def best_by_class_sentences(ev: Evaluation) -> list[str]:
    """The headline: the most accurate method (NRMSE x) of each information class that has
    one (:data:`~odernn.assess.results.INFORMATION_CLASSES`), and why a peer is missing."""
    best = ev.best_by_class()
    out = []
    if best:
        parts = [f"{label}: **{name}** (NRMSE x {fmt(ev.metrics[name]['nrmse_x'])}"
                 f"{seeds_words(ev, name)})" for label, name in best.items()]
        out.append("- Most accurate per information class: " + "; ".join(parts) + ".")
    info = ev.peers or {}
    if info.get("not_run"):
        out.append(f"- No peers (SINDy, DMDc): {info['not_run']}.")
    for name, why in info.get("skipped", {}).items():
        out.append(f"- Peer {name} not run: {why}.")
    return out


def seeds_words(ev: Evaluation, name: str) -> str:
    """``; the joint loop of 3 seeds, whose median seed has 5.9e-06`` for a seed group (a
    single run of it would score about as its median seed), else ``""``."""
    seeds = ev.methods[name].seeds
    if seeds is None:
        return ""
    return (f"; the joint loop of {seeds['n']} seeds, whose median seed has "
            f"{fmt(seeds['median']['nrmse_x'])}")


def skip_sentences(ev: Evaluation) -> list[str]:
    """Surrogates that started training as the least-squares fit of their linear skip and
    ended less accurate than DMDc, the peer that fits a linear map of the same regressors:
    their training lost accuracy such a fit has."""
    dmdc = ev.metrics.get("dmdc", {}).get("nrmse_x")
    behind = [n for n in ev.method_names("surrogate")
              if ev.methods[n].settings.get("starts_as_skip") and dmdc is not None
              and not ev.metrics[n]["nrmse_x"] <= dmdc]
    if not behind:
        return []
    return [f"- {', '.join(f'**{n}**' for n in behind)} started training as the least-squares "
            "fit of their linear skip, before their first gradient step; dmdc, a linear map "
            f"of the regressors of that skip (Peers), has NRMSE x {fmt(dmdc)}, lower than "
            f"{'theirs' if len(behind) > 1 else 'its'}: the training lost accuracy such a "
            "linear fit has."]


def same_information_sentences(ev: Evaluation) -> list[str]:
    """Each surrogate against the most accurate integrator given the forcing samples it has by
    each step (``causal``): how many times more or less accurate (NRMSE x) and faster or
    slower (wall time), from the measured numbers."""
    same = ev.info.get("same_information")
    surrogates = ev.method_names("surrogate")
    if not surrogates:
        return []
    if same is None:
        return ["- No integrator given only the forcing samples a surrogate has by each step "
                "(`rk4-sampled`, `rk4-sampled-causal`, or Euler's and `rk4` where the test "
                "set has nothing else) ran: no surrogate is compared with one that knows as much."]
    out = [f"- The most accurate integrator given only the samples F_i a surrogate has by "
           f"each step (none after F_i+1 for the step from t_i) is **{same['baseline']}** "
           f"({same['description']}): NRMSE x {fmt(same['nrmse_x'])}, wall time "
           f"{fmt(same['wall_time_s'])} s (best of "
           f"{', '.join(f'`{c}`' for c in same['candidates'])})."]
    for name in surrogates:
        s = same["surrogates"][name]
        error = s["nrmse_x"]
        if not math.isfinite(error):
            n = ev.metrics[name]["n_diverged"]
            what = (f"diverged on {n} trajector{'y' if n == 1 else 'ies'} (NRMSE x "
                    f"{fmt(error)})" if n else f"NRMSE x {fmt(error)}")
            if math.isfinite(same["nrmse_x"]):
                accuracy = f"{what}, {'far ' if n else ''}less accurate"
            else:  # the baseline's is infinite too: no ratio to give
                accuracy = (f"{what}; the baseline's NRMSE x is infinite too: not comparable "
                            "in accuracy,")
        else:
            words = _times(s["error_ratio"], "less accurate", "more accurate", "as accurate")
            accuracy = f"{words} (NRMSE x {fmt(error)} against {fmt(same['nrmse_x'])})"
        pace = (f"{_times(s['time_ratio'], 'slower', 'faster', 'as fast')} "
                f"({fmt(s['wall_time_s'])} s against {fmt(same['wall_time_s'])} s)")
        group = (f" (the joint loop of {ev.methods[name].seeds['n']} seeds)"
                 if ev.methods[name].seeds is not None else "")
        out.append(f"- **{name}**{group}: {accuracy} and {pace} than {same['baseline']}.")
    return out


def _times(ratio: float, above: str, below: str, equal: str) -> str:
    """``ratio`` (surrogate over baseline) in words: "3.2 times slower", "2 times faster"."""
    if math.isnan(ratio):
        return f"not comparable ({below} or {above})"
    if ratio == 1:
        return equal
    if ratio > 1:
        return f"{fmt(ratio)} times {above}"
    return f"{fmt(1 / ratio)} times {below}" if ratio > 0 else f"infinitely {below}"


def findings(ev: Evaluation) -> list[str]:
    """The few sentences a reader needs first."""
    out = [f"- **Not a test of {n}**: the test set is the data it was {verb} on (its scores "
           "are in-sample)." for n, verb in (ev.info.get("in_sample") or {}).items()]
    out += same_information_sentences(ev)
    out += skip_sentences(ev)
    surrogates = ev.method_names("surrogate")
    if surrogates:
        best = min(surrogates, key=lambda s: accuracy_key(ev.metrics[s]))
        m = ev.metrics[best]
        n = ev.info['data']['n_trajectories']
        out.append(f"- Most accurate surrogate: **{best}**, NRMSE x {fmt(m['nrmse_x'])} "
                   f"(median per trajectory {fmt(m['median_nrmse_x'])}"
                   f"{seeds_words(ev, best)}), valid for a median "
                   f"t {valid_median(m, n)}; {m['n_diverged']} of {n} trajectories diverged.")
        s = (ev.work_precision or {}).get("speedup", {}).get(best)
        if s and s["speedup"] is not None:
            ratio = s["speedup"]
            pace = f"{fmt(ratio)}x faster" if ratio >= 1 else f"{fmt(1 / ratio)}x slower"
            out.append(f"- {best} is {pace} than the cheapest integrator setting at least as "
                       f"accurate ({s['over']}).")
        elif s:
            out.append(f"- {best}: no speed-up to claim ({s['reason']}).")
        r = (ev.resonance or {}).get("methods", {}).get(best)
        if r and frequency_response_run(ev):
            left = ev.resonance["n_drives"] - r["n_scored"]
            out.append(f"- Frequency response: {best}'s steady-state amplitude is within "
                       f"{fmt(100 * r['amplitude_rel_error_max'])}% of the integrator's and its "
                       f"phase within {fmt(r['lag_error_max'])} rad, worst over the "
                       f"{r['n_scored']} drives whose reference is periodic ({left} left "
                       f"out{_unscored_words(ev.resonance)}).")
        elif r:
            floor = ev.resonance["methods"][REFERENCE]
            out.append(f"- Resonance: {best}'s steady-state amplitude is within "
                       f"{fmt(100 * r['amplitude_rel_error_max'])}% of the analytic curve and "
                       f"its phase within {fmt(r['lag_error_max'])} rad, worst over the sweep's "
                       f"{len(ev.resonance['eta'])} drives (the exact solution's own, the "
                       f"sweep's floor: {fmt(100 * floor['amplitude_rel_error_max'])}% and "
                       f"{fmt(floor['lag_error_max'])} rad).")
    warm = [n for n in surrogates if ev.methods[n].settings.get("warmup_steps")]
    if warm:
        out.append(f"- {', '.join(warm)} observed warm-up steps (a parameter withheld), so every "
                   f"method's error starts at step {ev.start}.")
    diverged = [name for name, m in ev.metrics.items() if m["n_diverged"]]
    if diverged:
        counts = ", ".join(f"{d} {ev.metrics[d]['n_diverged']}" for d in diverged)
        out.append(f"- Diverged trajectories (never dropped; aggregates that include them are "
                   f"∞): {counts}.")
    stored = ev.info["data"]["stored_vs_exact_rmse"]
    if stored is not None and max(stored.values()) > 1e-6 * ev.info["settings"]["error_scale"]["x"]:
        out.append(f"- The stored test trajectories differ from the exact solution by RMSE "
                   f"x {fmt(stored['x'])}, v {fmt(stored['v'])} (the simulator's integrator); "
                   "errors here are against the exact solution.")
    return out


def _unscored_words(res: Mapping[str, Any], shown: int = 4) -> str:
    """``: omega 1.46 (up, eta 0.212), ...; the figure shows them``: the drives a frequency
    response leaves out of its errors because the reference is not periodic there (a jump of
    the hysteresis loop, or chaos), where a surrogate's largest misses may lie."""
    drives = [k for k, ok in enumerate(res.get("integrator", {}).get("periodic", ())) if not ok]
    if not drives:
        return ""
    words = [f"omega {res['omega'][k]:.3g} ({res['direction'][k]}, {res['parameter']} "
             f"{res['level'][k]:.3g})" for k in drives[:shown]]
    more = f" and {len(drives) - shown} more" if len(drives) > shown else ""
    return (f"; the reference is not periodic at {', '.join(words)}{more}, which these errors "
            "do not cover: the figure shows them")


def valid_median(m: Mapping[str, Any], n: int) -> str:
    """``= t``, or ``>= t`` (a lower bound) where a middle value is censored (valid to the end)."""
    censored = m.get("valid_time_censored", 0)
    if 2 * censored < n:  # both middle values measured
        return f"= {fmt(m['valid_time_median'])}"
    return (f">= {fmt_at_least(m['valid_time_median'])} ({censored} of {n} trajectories "
            "stayed within the threshold to the end)")
