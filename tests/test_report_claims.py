"""The numbers and words the report and metrics.json give each method are that method's own.

On small real evaluations (tests/test_evaluate.py's surrogates, the peers fitted on a second
test set): metrics.json's metrics and error curves of every method, the Peers and Seeds
tables, and the summary's sentences (the step range, the same-information comparison, the
most accurate surrogate, its speed-up, its valid time and its resonance error) and the
resonance figure's "too short" warning. Where a sentence depends on a measured wall time or
a sweep too costly here, the evaluation is given controlled numbers for it.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from conftest import dev_extra
from test_evaluate import ExactMap, Exploding, Zeros, make_test_set

from odernn import jsonio
from odernn.assess.document import fmt, fmt_at_least
from odernn.assess.evaluate import evaluate
from odernn.assess.figures import method_colors
from odernn.assess.report import _summary
from odernn.assess.report_findings import (
    best_by_class_sentences,
    findings,
    same_information_sentences,
    skip_sentences,
    valid_median,
)
from odernn.assess.report_peers import peers_section
from odernn.assess.report_resonance import resonance_section
from odernn.assess.report_seeds import seeds_section
from odernn.assess.resonance import ResonanceSettings
from odernn.assess.results import Evaluation, seed_spread

QUIET = {"work_precision": False, "chaos": False, "bifurcation": False, "progress": False}


@pytest.fixture(scope="module")
def ev() -> Evaluation:
    """Three surrogates (exact-map the most accurate, zeros, boom diverged on one trajectory),
    the two peers, the same-information integrators and a settled resonance sweep."""
    dev_extra("pysindy")  # the peer SINDy
    return evaluate(make_test_set(n=6, n_steps=120),
                    {"exact-map": ExactMap(), "zeros": Zeros(), "boom": Exploding([2])},
                    integrators=("rk4", "rk4-sampled", "rk4-sampled-causal"),
                    resonance=ResonanceSettings(n_omega=4),
                    train_data=make_test_set(n=8, n_steps=120, seed=1), **QUIET)


@pytest.fixture(scope="module")
def ranked() -> Evaluation:
    """zeros: finite NRMSE x, large median; boom (one of 4 diverged) and half (two): NRMSE x
    inf, boom's median tiny."""
    return evaluate(make_test_set(n=4, n_steps=80),
                    {"zeros": Zeros(), "boom": Exploding([0]), "half": Exploding([0, 1])},
                    integrators=(), resonance=False, **QUIET)


def test_metrics_json_gives_every_method_its_own_metrics(ev: Evaluation) -> None:
    """A wrong version wrote another method's metrics under a peer's name: metrics.json said
    dmdc scored what sindy scored."""
    doc = json.loads(jsonio.dumps(ev.to_json()))
    assert {m.kind for m in ev.methods.values()} == {"reference", "integrator", "surrogate",
                                                       "peer"}
    assert ev.method_names("peer") == ["sindy", "dmdc"]
    errors = [m["nrmse_x"] for m in ev.metrics.values() if m["nrmse_x"] > 0]
    assert len(set(errors)) == len(errors)  # no two methods alike: a swap would show
    for name in ev.methods:
        assert doc["methods"][name]["metrics"] == jsonio.plain(ev.metrics[name]), name
    assert doc["methods"]["dmdc"]["metrics"]["nrmse_x"] == ev.metrics["dmdc"]["nrmse_x"]
    assert doc["methods"]["boom"]["metrics"]["nrmse_x"] == "inf"


def test_steps_per_second_count_every_trajectorys_steps(ev: Evaluation) -> None:
    """N (T - 1) trajectory steps over the method's wall time (6 trajectories of 120)."""
    for name in ("exact-map", "zeros", "rk4"):
        m = ev.metrics[name]
        assert m["steps_per_s"] == pytest.approx(6 * 119 / m["wall_time_s"], rel=1e-12)


def test_metrics_json_error_curves_are_each_of_their_own_variable(ev: Evaluation) -> None:
    """A wrong version wrote the 90th percentile of v's error as x's in error_vs_time."""
    doc = json.loads(jsonio.dumps(ev.to_json()))
    keep = doc["error_vs_time"]["step"]
    assert len(keep) == 120 and keep[:2] == [0, 1]
    for name in ("exact-map", "zeros", "dmdc"):
        m, curves = ev.methods[name], doc["error_vs_time"]["methods"][name]
        assert not np.allclose(m.error_x[1][1:], m.error_v[1][1:])  # tell x from v
        for key, curve in (("x_median", m.error_x[0]), ("x_p90", m.error_x[1]),
                           ("v_median", m.error_v[0]), ("v_p90", m.error_v[1])):
            assert curves[key] == jsonio.plain(curve[keep]), (name, key)


def test_peers_table_gives_each_peer_its_own_test_error(ev: Evaluation) -> None:
    """A wrong version showed the first peer's NRMSE x (test) on every peer's row."""
    table = peers_section(ev).tables[0]
    column = table.columns.index("NRMSE x (test)")
    got = {row[0]: row[column] for row in table.rows}
    assert got == {"sindy": ev.metrics["sindy"]["nrmse_x"],
                   "dmdc": ev.metrics["dmdc"]["nrmse_x"]}
    assert fmt(got["sindy"]) != fmt(got["dmdc"])


def test_seeds_table_divides_the_ensemble_by_its_median_seed(ev: Evaluation) -> None:
    """A wrong version gave median seed / ensemble under "ensemble / median seed": an ensemble
    2.2 times worse than its median member read as twice as good."""
    members = {"seed-0": ev.metrics["dmdc"], "seed-1": ev.metrics["sindy"],
               "seed-2": ev.metrics["boom"]}
    zeros = dataclasses.replace(ev.methods["zeros"], seeds=seed_spread(members))
    grouped = dataclasses.replace(ev, methods={**ev.methods, "zeros": zeros})
    table = seeds_section(grouped).tables[0]
    row = next(r for r in table.rows if r[0] == "zeros")
    median = ev.metrics["sindy"]["nrmse_x"]
    assert row[table.columns.index("NRMSE x, median seed")] == median
    ratio = row[table.columns.index("ensemble / median seed")]
    assert ratio == pytest.approx(ev.metrics["zeros"]["nrmse_x"] / median, rel=1e-12)
    assert ratio > 1.5
    assert row[table.columns.index("seeds with a divergence")] == 1


def test_a_diverged_surrogate_is_far_less_accurate_than_a_finite_baseline(
        ev: Evaluation) -> None:
    """A wrong version called boom, diverged while the same-information integrator stayed
    finite, "far more accurate" than it."""
    same = ev.info["same_information"]
    assert same["baseline"] == "rk4-sampled-causal" and math.isfinite(same["nrmse_x"])
    line = next(s for s in same_information_sentences(ev) if s.startswith("- **boom**"))
    assert line.startswith("- **boom**: diverged on 1 trajectory (NRMSE x ∞), far less "
                           "accurate and ")
    assert line.endswith(" than rk4-sampled-causal.")


@pytest.mark.parametrize(("speedup", "pace"), [(4.0, "4x faster"), (0.4, "2.5x slower")])
def test_the_speedup_sentence_says_faster_or_slower_by_a_factor_above_one(
        ev: Evaluation, speedup: float, pace: str) -> None:
    """A wrong version said a surrogate 4 times faster than the cheapest as accurate
    integrator setting was "4x slower", and one 2.5 times slower "0.4x faster"."""
    wp = {"speedup": {"exact-map": {"speedup": speedup, "over": "rk4 dt x 2"}}}
    lines = findings(dataclasses.replace(ev, work_precision=wp))
    assert (f"- exact-map is {pace} than the cheapest integrator setting at least as accurate "
            "(rk4 dt x 2).") in lines


@pytest.mark.parametrize(("off", "said"), [(0.9e-6, False), (1.1e-6, True)])
def test_stored_data_off_the_exact_solution_is_said_above_a_millionth_of_the_scale(
        ev: Evaluation, off: float, said: bool) -> None:
    """The test set as stored (an integrator's) against the exact solution the errors are
    measured from: said where it differs by more than 1e-6 of x's error scale."""
    scale = ev.info["settings"]["error_scale"]["x"]
    info = {**ev.info, "data": {**ev.info["data"],
                                "stored_vs_exact_rmse": {"x": off * scale, "v": 0.0}}}
    lines = findings(dataclasses.replace(ev, info=info))
    assert any("differ from the exact solution by RMSE x " f"{fmt(off * scale)}" in line
               for line in lines) is said


def test_the_resonance_finding_gives_the_worst_amplitude_error(ev: Evaluation) -> None:
    """A wrong version gave the median amplitude error over the drives where the sentence says
    "worst over the sweep"."""
    r = ev.resonance["methods"]["exact-map"]
    worst = fmt(100 * r["amplitude_rel_error_max"])
    assert worst != fmt(100 * r["amplitude_rel_error_median"])
    line = next(s for s in findings(ev) if s.startswith("- Resonance:"))
    assert line.startswith(f"- Resonance: exact-map's steady-state amplitude is within {worst}% "
                           f"of the analytic curve and its phase within {fmt(r['lag_error_max'])} "
                           "rad, worst over the sweep's 8 drives")
    response = {**ev.resonance, "kind": "frequency-response", "n_drives": 8,
                "methods": {"exact-map": {**r, "n_scored": 6}}}
    line = next(s for s in findings(dataclasses.replace(ev, resonance=response))
                if s.startswith("- Frequency response:"))
    assert line == (f"- Frequency response: exact-map's steady-state amplitude is within "
                    f"{worst}% of the integrator's and its phase within "
                    f"{fmt(r['lag_error_max'])} rad, worst over the 6 drives whose reference is "
                    "periodic (2 left out).")


def test_the_resonance_figure_warns_only_of_a_sweep_too_short(ev: Evaluation) -> None:
    """A wrong version warned that the settled sweep was too short for its transients to
    decay, and said nothing of one that was."""
    res = ev.resonance
    assert res["transient_left"] <= res["transient_tol"] == 1e-3
    colors = method_colors(ev)
    settled = resonance_section(ev, colors).figures[0].caption
    assert "too short" not in settled
    short = dataclasses.replace(ev, resonance={**res, "transient_left": 0.05})
    caption = resonance_section(short, colors).figures[0].caption
    assert ("The sweep is too short for its transients to decay (they are left at 5.0e-02 of "
            "their start, against 1e-03 asked)") in caption


def test_the_most_accurate_surrogate_is_ranked_by_nrmse_x_first(ranked: Evaluation) -> None:
    """A wrong version ranked by the median per-trajectory NRMSE x alone and named boom, whose
    pooled NRMSE x is infinite, the most accurate surrogate instead of zeros."""
    m = ranked.metrics
    assert m["zeros"]["nrmse_x"] < m["boom"]["nrmse_x"] == math.inf
    assert m["boom"]["median_nrmse_x"] < m["zeros"]["median_nrmse_x"]  # the keys disagree
    line = next(s for s in findings(ranked) if s.startswith("- Most accurate surrogate:"))
    assert line.startswith(f"- Most accurate surrogate: **zeros**, NRMSE x "
                           f"{fmt(m['zeros']['nrmse_x'])} (median per trajectory "
                           f"{fmt(m['zeros']['median_nrmse_x'])}), valid for a median t = ")
    assert line.endswith("; 0 of 4 trajectories diverged.")


def test_a_median_valid_time_with_half_or_more_censored_is_a_lower_bound(
        ranked: Evaluation) -> None:
    """A wrong version said "= t" whenever any trajectory was not valid to the end: with 3
    (or 2) of 4 valid to the end the median is censored, a lower bound, not a measurement."""
    m = ranked.metrics
    assert (m["boom"]["valid_time_censored"], m["half"]["valid_time_censored"]) == (3, 2)
    for name, censored in (("boom", 3), ("half", 2)):
        assert valid_median(m[name], 4) == (
            f">= {fmt_at_least(m[name]['valid_time_median'])} ({censored} of 4 trajectories "
            "stayed within the threshold to the end)")
    assert m["zeros"]["valid_time_censored"] == 0
    assert valid_median(m["zeros"], 4) == f"= {fmt(m['zeros']['valid_time_median'])}"
    assert valid_median({"valid_time_censored": 2, "valid_time_median": 1.5}, 5) == "= 1.5"


def test_the_summary_gives_the_step_range_after_the_warm_up() -> None:
    """A wrong version said every error is over steps 1...59 when a surrogate's 10 warm-up
    steps put the start of every error at step 10."""
    test = make_test_set(n=3, n_steps=60)
    blind = ExactMap(parameters=(), warmup_steps=10)
    blind.hidden_eta = test.params["eta"]
    ev = evaluate(test, {"blind": blind}, integrators=(), resonance=False, **QUIET)
    assert ev.start == 10
    text = _summary(ev, {}).text
    assert ("Every error is against the exact solution over steps 10...59, pooled over "
            "trajectories") in text


def test_a_seed_groups_headlines_say_it_is_a_joint_loop_and_give_its_median_seed(
        ev: Evaluation) -> None:
    """A demo's "most accurate, data only: esn (4.51e-06)" was a joint loop of 3 seeds against
    single peers, each of its seeds less accurate than both peers: the headlines now say so
    and give the median seed's NRMSE x (a single run of it would score about that)."""
    members = {"seed-0": ev.metrics["exact-map"], "seed-1": ev.metrics["sindy"],
               "seed-2": ev.metrics["zeros"]}
    group = dataclasses.replace(ev.methods["exact-map"], seeds=seed_spread(members))
    grouped = dataclasses.replace(ev, methods={**ev.methods, "exact-map": group})
    words = (f"; the joint loop of 3 seeds, whose median seed has "
             f"{fmt(ev.metrics['sindy']['nrmse_x'])}")
    assert words in best_by_class_sentences(grouped)[0]
    assert "data only: **exact-map**" in best_by_class_sentences(grouped)[0]
    lines = findings(grouped)
    assert any(s.startswith("- Most accurate surrogate: **exact-map**") and words in s
               for s in lines)
    assert any(s.startswith("- **exact-map** (the joint loop of 3 seeds): ") for s in lines)
    assert not any(words in s for s in findings(ev))  # single runs: nothing added


def test_surrogates_that_started_as_their_skips_fit_and_ended_behind_dmdc_are_named(
        ev: Evaluation) -> None:
    """On the linear oscillator the gradient families start as the least-squares fit of their
    linear skip; a demo's rnn, lstm and gru ended 1.05 to 6 times less accurate than that
    start, and behind DMDc (a linear map of the same regressors), unsaid. Only surrogates that
    started so and ended behind dmdc are named."""
    assert ev.metrics["zeros"]["nrmse_x"] > ev.metrics["dmdc"]["nrmse_x"]
    assert ev.metrics["exact-map"]["nrmse_x"] <= ev.metrics["dmdc"]["nrmse_x"]
    assert not skip_sentences(ev)  # none started as its skip's fit

    def started(name):
        m = ev.methods[name]
        return dataclasses.replace(m, settings={**m.settings, "starts_as_skip": True})

    marked = dataclasses.replace(ev, methods={**ev.methods, "zeros": started("zeros"),
                                              "exact-map": started("exact-map")})
    (line,) = skip_sentences(marked)
    assert line.startswith("- **zeros** started training as the least-squares fit")
    assert f"NRMSE x {fmt(ev.metrics['dmdc']['nrmse_x'])}, lower than its" in line
    assert "exact-map" not in line and line in findings(marked)


def test_what_a_surrogate_started_from_is_recorded_for_it_and_its_ensemble() -> None:
    from types import SimpleNamespace

    from odernn.assess.closed_loop import surrogate_settings

    def model(start):
        return SimpleNamespace(family="rnn", target="state", parameter_inputs=("eta",),
                               hparams={"start_as_skip": start})

    rollout = SimpleNamespace(warmup=0)
    assert surrogate_settings(model(True), rollout)["starts_as_skip"] is True
    assert surrogate_settings(model(False), rollout)["starts_as_skip"] is False
    group = SimpleNamespace(family="rnn", target="state", parameter_inputs=("eta",),
                            members={"seed-0": model(True), "seed-1": model(True)})
    assert surrogate_settings(group, rollout)["starts_as_skip"] is True
    esn = SimpleNamespace(family="esn", target="state", hparams={"units": 10})
    assert surrogate_settings(esn, rollout)["starts_as_skip"] is False


def test_a_frequency_responses_unscored_drives_are_named() -> None:
    """A Duffing demo scored the surrogates over "the drives whose reference is periodic (2
    left out)": the two were the hysteresis loop's jumps, where three surrogates dropped to
    the lower branch early. The summary names them."""
    from odernn.assess.report_findings import _unscored_words

    res = {"integrator": {"periodic": [True, False, True, False]},
           "omega": [1.0, 1.4647, 1.5, 1.3383], "direction": ["up", "up", "down", "down"],
           "parameter": "eta", "level": [0.2122] * 4}
    assert _unscored_words(res) == (
        "; the reference is not periodic at omega 1.46 (up, eta 0.212), omega 1.34 (down, eta "
        "0.212), which these errors do not cover: the figure shows them")
    assert _unscored_words(res, shown=1).count("omega") == 1
    assert "and 1 more" in _unscored_words(res, shown=1)
    assert _unscored_words({**res, "integrator": {"periodic": [True] * 4}}) == ""
