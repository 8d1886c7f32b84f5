"""The evaluator's chaos stage: exponents and trust horizon of the test set, every method's
steady-state statistics, and what the report shows on chaotic data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from odernn.assess.chaos import ChaosSettings
from odernn.assess.evaluate import evaluate
from odernn.assess.report import write_report
from odernn.assess.statistics import STATISTICS
from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.errors import SpecError

FAST = dict(integrators=("euler", "rk4"), work_precision=False, progress=False)


def dataset(name: str, n: int = 6, n_steps: int = 1000):
    return simulate_trajectories(load_spec(name).with_overrides(n=n, n_steps=n_steps))


@pytest.fixture(scope="module")
def chaotic():
    return evaluate(dataset("duffing-chaos"), {}, **FAST)


def test_chaotic_estimates_not_converged_are_counted(monkeypatch):
    """Of four estimates, two chaotic (one of them with halves apart), one periodic whose
    halves are apart, one periodic converged: one chaotic estimate not converged."""
    from odernn.assess import chaos
    from odernn.assess.lyapunov import LyapunovEstimate

    lam = np.array([0.2, 0.15, -0.1, -0.2])
    change = np.array([0.0, 0.1, 0.1, 0.0])
    estimate = LyapunovEstimate(lam, lam - change / 2, lam + change / 2, np.ones(4),
                                np.full(4, 0.05), "benettin", 1, 2, 1)
    monkeypatch.setattr(chaos, "lyapunov_exponents", lambda test: estimate)
    out = chaos.characterise(dataset("duffing-chaos", n=4, n_steps=50), "data",
                             chaos.ChaosSettings(trust=False), 1, 0.1, lambda s: None)
    lyap = out["lyapunov"]
    assert (lyap["n_chaotic"], lyap["n_converged"], lyap["n_chaotic_unconverged"]) == (2, 2, 1)


def test_a_chaotic_set_is_found_chaotic_and_scored_in_lyapunov_times(chaotic):
    chaos = chaotic.chaos
    assert chaos["chaotic"] and chaos["lyapunov"]["n_chaotic"] == 6
    from odernn.assess.report_chaos import _exponent_text

    lyap = chaos["lyapunov"]
    assert lyap["n_converged"] == 6 and lyap["n_chaotic_unconverged"] == 0
    assert "6 of 6 estimates converged (their two halves agree)." in _exponent_text(chaotic)
    some = dataclasses.replace(chaotic, chaos={**chaos, "lyapunov": {
        **lyap, "n_converged": 4, "n_chaotic_unconverged": 2}})
    assert ("4 of 6 estimates converged (their two halves agree), 2 of the 6 chaotic ones "
            "not.") in _exponent_text(some)
    assert 0.1 < chaos["lyapunov"]["median"] < 0.2  # docs/datasets.md: about 0.15
    lam = np.sort(chaos["lyapunov"]["exponent"])  # six, all finite: p10 the 1st, p90 the 6th
    assert lam[0] < lam[-1]
    assert (chaos["lyapunov"]["p10"], chaos["lyapunov"]["p90"]) == (lam[0], lam[-1])
    assert chaos["trust_horizon"]["median"] > 0
    rk4, euler = chaotic.metrics["rk4"], chaotic.metrics["euler"]
    # RK4 at dt 0.05 stays on the trajectory for several Lyapunov times, forward Euler for
    # about one (measured: 7.4 and 0.7 on the full test set, 1.2 on these six)
    assert rk4["valid_lyapunov_median"] > 3 > 1.5 > euler["valid_lyapunov_median"]
    assert rk4["x2_mean_rel_error"] < 1e-2 and rk4["w1_x"] < 1e-2 < euler["w1_x"]
    assert set(STATISTICS) <= set(rk4)
    assert "chaotic" in chaotic.resonance["skipped"]


def test_a_periodic_nonlinear_set_has_negative_exponents_and_statistics():
    ev = evaluate(dataset("duffing-test"), {}, resonance=False, **FAST)
    assert not ev.chaos["chaotic"] and ev.chaos["lyapunov"]["median"] < 0
    rk4 = ev.metrics["rk4"]
    assert np.isnan(rk4["valid_lyapunov_median"]) and rk4["n_chaotic"] == 0
    assert rk4["x2_max_rel_error"] < 1e-4 and rk4["spectrum_error_x"] < 1e-3


def test_the_linear_oscillator_runs_no_estimate_but_gets_statistics():
    ev = evaluate(dataset("test", n=4, n_steps=200), {}, resonance=False, **FAST)
    assert "closed form" in ev.chaos["lyapunov"]["skipped"]
    assert "closed form" in ev.chaos["trust_horizon"]["skipped"]
    assert ev.metrics["rk4"]["w1_x"] < 1e-4
    assert not {"valid_lyapunov_median", "n_chaotic"} & set(ev.metrics["rk4"])  # unknown


def test_a_short_set_skips_the_statistics_and_a_long_transient_is_refused():
    short = dataset("test", n=2, n_steps=12)
    ev = evaluate(short, {}, resonance=False, **FAST)
    assert "16 are needed" in ev.chaos["statistics"] and "w1_x" not in ev.metrics["rk4"]
    with pytest.raises(SpecError, match="transient"):
        evaluate(short, {}, resonance=False, chaos=ChaosSettings(transient=0.5), **FAST)
    with pytest.raises(SpecError, match="transient"):
        ChaosSettings(transient=-1.0)
    assert evaluate(short, {}, resonance=False, chaos=False, **FAST).chaos is None


def test_the_report_shows_the_error_in_lyapunov_times(chaotic, tmp_path):
    out = write_report(chaotic, tmp_path / "report")
    text = (out / "report.md").read_text()
    assert "## Predictability and statistics" in text and "The test set is chaotic" in text
    assert (out / "error-vs-lyapunov-time.png").exists()
    assert not (out / "error-vs-time.png").exists()
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["chaos"]["chaotic"] is True and len(doc["chaos"]["lyapunov"]["exponent"]) == 6
    assert set(STATISTICS) <= set(doc["metric_definitions"])


def test_imported_linear_data_are_not_said_to_have_an_exact_reference():
    """Data of the linear oscillator whose forcing is known at its samples alone (imported):
    the reference is the data, and the skipped estimates said "the reference is exact"."""
    data = dataset("test", n=3, n_steps=200)
    imported = dataclasses.replace(data, attrs={**data.attrs, "forcing": "samples"})
    ev = evaluate(imported, {}, resonance=False, **FAST)
    for estimate in ("lyapunov", "trust_horizon"):
        assert "closed form" in ev.chaos[estimate]["skipped"]
        assert "exact" not in ev.chaos[estimate]["skipped"]


def test_data_of_no_known_system_gets_statistics_but_no_estimates():
    data = dataset("duffing-test", n=3, n_steps=200)
    external = dataclasses.replace(data, attrs={**data.attrs, "system": "external"})
    ev = evaluate(external, {}, progress=False)
    assert "no known equation" in ev.chaos["lyapunov"]["skipped"]
    assert "no known equation" in ev.chaos["trust_horizon"]["skipped"]
    assert "no known equation" in ev.bifurcation["skipped"]
    assert ev.metrics["data"]["w1_x"] == 0.0 and list(ev.methods) == ["data"]


def test_a_pendulums_statistics_are_taken_on_the_circle():
    """The evaluator scores a pendulum's angle on the circle: a method that follows the
    trajectory but counts one turn more from the middle on (x + 2 pi) has the attractor
    exactly; its valid time ends where the turn comes (docs/metrics.md, "Chaotic data")."""
    from odernn.learn.models.base import Rollout

    test = dataset("pendulum-test", n=4, n_steps=400)
    turns = 2 * np.pi * np.array([[0], [3], [-2], [5]])  # the same states, on the circle
    test = dataclasses.replace(test, x=test.x + turns)

    class Turned:
        family, target = "turned", "state"

        def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
            n, length = F.shape  # the evaluator's first, untimed call is short
            x = test.x[:n, :length].copy()
            x[:, 200:] += 2 * np.pi
            return Rollout(x, test.v[:n, :length].copy(), np.full(n, -1))

    ev = evaluate(test, {"turned": Turned()}, resonance=False, bifurcation=False,
                  chaos=ChaosSettings(lyapunov=False, trust=False), **FAST)
    turned = ev.metrics["turned"]
    for key in ("x2_max_rel_error", "x2_mean_rel_error", "w1_x", "spectrum_error_x"):
        assert turned[key] < 1e-9, key
    assert turned["valid_time_median"] == pytest.approx(test.t[200] - test.t[0])
    from odernn.assess.metrics import reference_scale, wrap_angle

    scale = ev.info["settings"]["error_scale"]["x"]  # the circle's std: whole turns aside
    assert scale == reference_scale(wrap_angle(test.x)) < reference_scale(test.x) / 5
    assert turned["nrmse_x"] == pytest.approx(2 * np.pi * np.sqrt(200 / 399) / scale, rel=1e-9)


def test_a_trust_horizon_whose_solver_gives_up_is_skipped(monkeypatch):
    """The trust horizon compares two SciPy solutions, which give up on a stiff set
    (``StiffProblem``): the estimate is skipped with the reason, and the evaluation goes on
    (it ended in one line, nothing written)."""
    from odernn.assess import chaos
    from odernn.errors import StiffProblem

    def stiff(*args, **kwargs):
        raise StiffProblem("scipy: ... the problem is stiff for this method")

    monkeypatch.setattr(chaos, "data_trust_horizon", stiff)
    ev = evaluate(dataset("duffing-test"), {}, resonance=False, **FAST)
    assert "stiff for its solver" in ev.chaos["trust_horizon"]["skipped"]
    assert ev.chaos["lyapunov"]["median"] < 0
