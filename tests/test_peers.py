"""The peers (odernn.assess.peers): DMDc and SINDy fitted on a training file, in the evaluator.

- DMDc on the linear oscillator driven by forcing *linear between its samples*: the exact
  one-step map is then linear in (x_k, v_k, F_k, F_{k+1}) (the expm of the system augmented
  with F and its slope), so the least-squares fit must return it to rounding;
- SINDy on Duffing data recovers the equation, the cubic term included, and beats DMDc
  (a linear model) in closed loop;
- the threshold and the rank are chosen on held-out training trajectories;
- evaluate fits both and writes them to metrics.json and the report; without pysindy,
  DMDc still runs and SINDy is skipped with a note.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys

import numpy as np
import pytest
from conftest import dev_extra
from scipy.linalg import expm

from odernn.assess import dmdc, peers
from odernn.assess.evaluate import evaluate
from odernn.assess.metrics import nrmse, reference_scale
from odernn.assess.report import write_report
from odernn.data.integrators import integrate
from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.data.stepping import causal_midpoint
from odernn.data.store import read_trajectories
from odernn.data.trajectories import Trajectories
from odernn.errors import DataError, SpecError
from odernn.learn.windows import fingerprint

DT = 0.05
QUICK = {"work_precision": False, "resonance": False, "chaos": False, "bifurcation": False,
         "progress": False}


@pytest.fixture(scope="module")
def pysindy():
    """pysindy (:func:`conftest.dev_extra`: never a skip in CI)."""
    return dev_extra("pysindy")


def exact_map(eta: float, dt: float = DT) -> tuple[np.ndarray, np.ndarray]:
    """``A (2, 2)``, ``B (2, 2)`` of ``z_{k+1} = A z_k + B (F_k, F_{k+1})`` for
    ``x'' + eta x' + x = F`` with F linear between samples."""
    aug = np.array([[0.0, 1.0, 0.0, 0.0], [-1.0, -eta, 1.0, 0.0],
                    [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    M = expm(aug * dt)
    slope = M[:2, 3] / dt  # F' = (F_{k+1} - F_k) / dt
    return M[:2, :2], np.column_stack([M[:2, 2] - slope, slope])


def linear_set(n: int, n_steps: int, eta: float, seed: int) -> Trajectories:
    """Trajectories of the exact map under random forcing samples (piecewise linear F)."""
    rng = np.random.default_rng(seed)
    A, B = exact_map(eta)
    F = rng.normal(0.0, 1.0, (n, n_steps))
    z = np.empty((n, n_steps, 2))
    z[:, 0] = rng.uniform(-1, 1, (n, 2))
    for k in range(n_steps - 1):
        z[:, k + 1] = z[:, k] @ A.T + np.column_stack([F[:, k], F[:, k + 1]]) @ B.T
    params = {"eta": np.full(n, eta), "x0": z[:, 0, 0], "v0": z[:, 0, 1]}
    return Trajectories(DT * np.arange(n_steps), z[..., 0], z[..., 1], F, params,
                        {"system": "oscillator", "forcing": "samples"})


def test_dmdc_recovers_the_exact_linear_map():
    eta = 0.3
    train = linear_set(6, 200, eta, seed=1)
    test = linear_set(4, 400, eta, seed=2)
    assert peers.varying_parameters(train) == ()  # eta fixed: no parameter products
    full = dmdc.fit_dmdc(train, ())[-1]  # every rank: the plain least squares
    A, B = exact_map(eta)
    G = np.asarray(full.settings["matrix"])  # rows: x_{k+1}, v_{k+1}
    assert full.settings["inputs"] == ["x_k", "v_k", "F_k-1", "F_k", "F_k+1", "1"]
    assert full.settings["fit_samples"] == 6 * 199  # every transition, the last included
    zero = np.zeros((2, 1))  # F_{k-1} and 1 have no part in this map
    np.testing.assert_allclose(G, np.column_stack([A, zero, B, zero]), atol=1e-10)
    low = dmdc.fit_dmdc(train, (), (3,))[0]  # a validation error: x's over x's spread, step 1 on
    r = low.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    own = np.sqrt(np.mean((r.x[:, 1:] - test.x[:, 1:]) ** 2)) / np.std(test.x[:, 1:])
    assert 1e-6 < own < 10 and peers.validation_error(low, test) == pytest.approx(own, rel=1e-9)
    fitted = peers.fit_peers(train, sindy=False).peers["dmdc"]
    assert fitted.settings["rank"] >= 4  # a lower rank drops part of the exact map
    r = fitted.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    assert nrmse(r.x, test.x) < 1e-8


def test_dmdc_gets_the_samples_a_surrogate_gets():
    """A surrogate of the linear oscillator reads F_{k-1} beside F_k and F_{k+1}, and the
    products of the damping up to degree 2; DMDc given only F_k, F_{k+1} and first-order
    terms (before 6 December 2026) was bound to the forcing's linear interpolation, the
    error of rk4-sampled, 30 times that of the same least squares given F_{k-1}. Now it
    reaches rk4-sampled-causal's accuracy (the same samples, the true equation); no sample
    later than F_{k+1} enters a step."""
    train, test = oscillator("train", 48), oscillator("test", 12)
    assert peers.varying_parameters(train) == ("eta",)
    fitted = peers.fit_peers(train, sindy=False).peers["dmdc"]
    assert fitted.settings["parameter_degree"] == 2
    assert "eta eta F_k-1" in fitted.settings["inputs"]
    r = fitted.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    error = nrmse(r.x, test.x)
    errors = {name: nrmse(integrate(name, test.oscillator(), test.x[:, 0], test.v[:, 0],
                                    test.t)[0], test.x)
              for name in ("rk4-sampled", "rk4-sampled-causal")}
    assert error < 5 * errors["rk4-sampled-causal"] and error < errors["rk4-sampled"] / 10
    z = np.column_stack([test.x[:, 5], test.v[:, 5]])
    p = peers.parameter_matrix(test.params, fitted.parameters, test.n)
    later = test.F.copy()
    later[:, 7:] += 1.0  # every sample after F_{k+1}, k = 5
    np.testing.assert_array_equal(fitted.step(z, later, 5, p), fitted.step(z, test.F, 5, p))
    assert not np.array_equal(fitted.step(z, later, 6, p), fitted.step(z, test.F, 6, p))


def duffing(name: str, n: int, n_steps: int = 300) -> Trajectories:
    return simulate_trajectories(load_spec(name).with_overrides(n=n, n_steps=n_steps,
                                                                integrator="rk4"))


@pytest.fixture(scope="module")
def duffing_pair() -> tuple[Trajectories, Trajectories]:
    """12 training and 6 test Duffing trajectories (eta and beta vary, alpha = 1)."""
    return duffing("duffing-train", 12), duffing("duffing-test", 6)


@pytest.fixture(scope="module")
def duffing_fit(pysindy, duffing_pair) -> peers.PeerFit:
    return peers.fit_peers(duffing_pair[0])


def test_sindy_recovers_duffing_and_beats_dmdc(duffing_pair, duffing_fit):
    train, test = duffing_pair
    assert peers.varying_parameters(train) == ("eta", "beta")
    small = peers.fit_sindy(train, ("eta", "beta"), threshold=1e-3)
    cubic = small.settings["coefficients"]["v'"]["x^3 beta"]  # v' = ... - beta x^3
    assert cubic == pytest.approx(-1.0, rel=0.03)
    assert small.settings["coefficients"]["v'"]["v eta"] == pytest.approx(-1.0, rel=0.03)
    fit = duffing_fit
    scale = reference_scale(test.x)
    errors = {}
    for name, peer in fit.peers.items():
        r = peer.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
        errors[name] = nrmse(r.x, test.x, scale=scale)
    # F at the half step from the causal cubic: the identified equation's error, not the
    # interpolation's (rk4-sampled's, 1.6e-3 on the full sets, which the peer scored before)
    rk4_sampled = integrate("rk4-sampled", test.oscillator(), test.x[:, 0], test.v[:, 0],
                            test.t)[0]
    assert errors["sindy"] < nrmse(rk4_sampled, test.x, scale=scale) / 10
    assert errors["sindy"] < errors["dmdc"] / 10
    # the equation's terms, and on these few short trajectories (the threshold chosen on
    # validation) small ones beside them that fit the derivatives' finite-difference error
    eq = fit.peers["sindy"].settings["coefficients"]
    true = {"x'": {"v": 1.0}, "v'": {"x": -1.0, "F": 1.0, "v eta": -1.0, "x^3 beta": -1.0}}
    for lhs, terms in true.items():
        assert set(terms) <= set(eq[lhs])
        for term, c in eq[lhs].items():
            assert c == pytest.approx(terms[term], rel=1e-2) if term in terms else abs(c) < 1e-2


def test_settings_are_chosen_on_held_out_trajectories(duffing_pair, duffing_fit):
    train, _ = duffing_pair
    part, val = peers.split(train)
    x = {tuple(row) for row in np.asarray(train.x)[:, :3]}
    assert val.n == round(peers.VAL_FRACTION * train.n) and part.n + val.n == train.n
    assert {tuple(r) for r in part.x[:, :3]} | {tuple(r) for r in val.x[:, :3]} == x
    assert not {tuple(r) for r in part.x[:, :3]} & {tuple(r) for r in val.x[:, :3]}
    sindy, dmdc = duffing_fit.peers["sindy"].settings, duffing_fit.peers["dmdc"].settings
    tried = sindy["validation"]
    assert [c["threshold"] for c in tried] == list(peers.SINDY_THRESHOLDS)
    assert all(np.isfinite(c["val_nrmse_x"]) for c in tried)
    best = min(c["val_nrmse_x"] for c in tried)
    chosen = next(c for c in tried if c["threshold"] == sindy["threshold"])
    assert chosen["val_nrmse_x"] <= best * (1 + peers.TOLERANCE)
    assert all(c["val_nrmse_x"] > best * (1 + peers.TOLERANCE)
               for c in tried if c["threshold"] > sindy["threshold"])  # the sparsest that fits
    assert [c["rank"] for c in dmdc["validation"]] == list(range(1, dmdc["full_rank"] + 1))
    assert dmdc["rank"] in {c["rank"] for c in dmdc["validation"]}
    # chosen on the held-out part, then refitted on every training trajectory
    from odernn.assess.dmdc import fit_dmdc

    names = duffing_fit.peers["dmdc"].parameters
    refits = {"sindy": peers.fit_sindy(train, names, sindy["threshold"]),
              "dmdc": fit_dmdc(train, names, (dmdc["rank"],))[0]}
    x0, v0, F = train.x[:, 0], train.v[:, 0], train.F[:, :50]
    for name, refit in refits.items():
        np.testing.assert_array_equal(
            duffing_fit.peers[name].rollout(x0, v0, F, train.params).x,
            refit.rollout(x0, v0, F, train.params).x, err_msg=name)


def test_choose_prefers_the_simpler_candidate_within_the_tolerance():
    tried = [{"threshold": 0.01, "val_nrmse_x": 1.00}, {"threshold": 0.1, "val_nrmse_x": 1.05},
             {"threshold": 1.0, "val_nrmse_x": 2.0}, {"threshold": 3.0, "val_nrmse_x": np.inf}]
    assert peers._choose(tried, "threshold", prefer_larger=True)["threshold"] == 0.1
    ranks = [{"rank": 1, "val_nrmse_x": np.inf}, {"rank": 2, "val_nrmse_x": 0.5},
             {"rank": 3, "val_nrmse_x": 0.48}]
    assert peers._choose(ranks, "rank", prefer_larger=False)["rank"] == 2


def causal_midpoints(F: np.ndarray) -> np.ndarray:
    """Every step's half-step forcing of samples ``F (N, T)``, ``(N, T - 1)``."""
    return np.stack([causal_midpoint(F, k) for k in range(F.shape[1] - 1)], axis=1)


def test_the_half_step_forcing_is_causal_and_fourth_order():
    """Each half step's F from the samples up to F_{k+1}: a later sample changes nothing
    before it, a cubic is reproduced exactly from k = 2 on, and the error falls as dt^4."""
    t = np.linspace(0.0, 3.0, 31)
    cubic = 1.0 - t + 0.5 * t**2 - 0.2 * t**3
    half = causal_midpoints(cubic[None])[0]
    mid = t[:-1] + 0.05
    np.testing.assert_allclose(half[2:], (1.0 - mid + 0.5 * mid**2 - 0.2 * mid**3)[2:],
                               atol=1e-13)
    later = cubic.copy()
    later[10] += 1.0
    np.testing.assert_array_equal(causal_midpoints(later[None])[0][:9], half[:9])
    errors = []
    for n in (101, 201):
        t = np.linspace(0.0, 2.0, n)
        errors.append(np.abs(causal_midpoints(np.sin(3 * t)[None])[0][2:]
                             - np.sin(3 * (t[:-1] + 0.5 * (t[1] - t[0]))[2:])).max())
    assert 14 < errors[0] / errors[1] < 18  # 2^4


def test_a_diverging_peer_is_reported_diverged():
    train = linear_set(4, 50, 0.3, seed=3)
    fitted = dmdc.fit_dmdc(train, ())[-1]
    blowup = peers.Peer("blowup", "", {}, (), lambda z, F, k, p: 10.0 * z, fitted.mean,
                        fitted.std)
    r = blowup.rollout(train.x[:, 0], train.v[:, 0], train.F, train.params)
    assert np.all(r.diverged_at > 0) and np.all(np.isinf(r.x[:, -1]))
    k = int(r.diverged_at[0])
    assert np.isfinite(r.x[0, k - 1]) and np.isinf(r.x[0, k])
    # step k is the first whose state is beyond the rule; the one before it is kept
    from odernn.learn.models.stepper import beyond

    z0 = np.column_stack([train.x[:, 0], train.v[:, 0]])
    first = next(j for j in range(1, 50) if beyond(10.0 ** j * z0, fitted.mean, fitted.std)[0])
    assert k == first
    assert r.x[0, k - 1] == pytest.approx(10.0 ** (k - 1) * train.x[0, 0], rel=1e-12)


def oscillator(name: str, n: int) -> Trajectories:
    return simulate_trajectories(load_spec(name).with_overrides(n=n, n_steps=200))


def test_evaluate_writes_the_peers(pysindy, tmp_path):
    train, test = oscillator("train", 8), oscillator("test", 4)
    ev = evaluate(test, {}, train_data=train, train_path="train.h5", **QUICK)
    assert ev.method_names("peer") == ["sindy", "dmdc"]
    out = write_report(ev, tmp_path / "report")
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["peers"]["fitted"] == ["sindy", "dmdc"] and doc["peers"]["skipped"] == {}
    assert doc["peers"]["training_data"] == "train.h5"
    for name in ("sindy", "dmdc"):
        method = doc["methods"][name]
        assert method["kind"] == "peer" and method["settings"]["parameters"] == ["eta"]
        assert float(method["metrics"]["nrmse_x"]) < 0.05
    assert set(doc["methods"]["sindy"]["settings"]["coefficients"]["v'"]) == {"x", "F", "v eta"}
    md = (out / "report.md").read_text()
    assert "## Peers" in md and "| sindy | peer |" in md
    assert "Most accurate per information class: knows the equation: **" in md
    assert "; data only: **sindy**" in md and "knows an approximate model" not in md
    assert ev.best_by_class()["data only"] == "sindy"


def test_without_pysindy_dmdc_runs_and_sindy_is_noted(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pysindy", None)  # import pysindy raises ImportError
    assert not peers.have_pysindy()
    train, test = oscillator("train", 6), oscillator("test", 3)
    ev = evaluate(test, {}, train_data=train, **QUICK)
    assert ev.method_names("peer") == ["dmdc"]
    out = write_report(ev, tmp_path / "report")
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["peers"]["skipped"] == {"sindy": peers.MISSING}
    md = (out / "report.md").read_text()
    assert "Peer sindy not run: pysindy is not installed" in md
    assert "odernn[peers]" in md


class NoEta:
    """A surrogate given no parameter (trained with eta withheld): it rolls out zeros."""

    family, target, parameter_inputs = "no-eta", "state", ()

    def rollout(self, x0, v0, F, params=None, warmup=None):
        from odernn.learn.models.base import Rollout

        return Rollout(np.zeros_like(F), np.zeros_like(F), np.full(F.shape[0], -1))


def test_a_parameter_withheld_from_the_surrogates_is_withheld_from_the_peers():
    """The peers were given every varying parameter whatever the surrogates took: beside a
    surrogate trained with --no-eta they had eta, and the report said they had its
    information."""
    train, test = oscillator("train", 6), oscillator("test", 3)
    ev = evaluate(test, {"no-eta": NoEta()}, train_data=train, **QUICK)
    assert ev.methods["dmdc"].settings["parameters"] == []
    assert peers.given_to_all({"a": NoEta(), "b": type("Eta", (), {
        "parameter_inputs": ("eta",)})()}) == ()  # the least information of them all
    assert peers.given_to_all({}) is None  # no surrogate: every varying parameter


def test_peers_need_the_training_file_and_a_matching_one():
    train, test = oscillator("train", 4), oscillator("test", 3)
    ev = evaluate(test, {}, **QUICK)
    assert ev.method_names("peer") == [] and "no training file" in ev.peers["not_run"]
    off = evaluate(test, {}, train_data=train, peers=False, **QUICK)
    assert off.method_names("peer") == [] and "turned off" in off.peers["not_run"]
    with pytest.raises(SpecError, match="training file"):
        evaluate(test, {}, peers=True, **QUICK)
    other = Trajectories(train.t[::2], train.x[:, ::2], train.v[:, ::2], train.F[:, ::2],
                         train.params, train.attrs)
    with pytest.raises(DataError, match=r"test set has step dt = 0\.05 but the training file "
                                        r"dt = 0\.1"):
        evaluate(test, {}, train_data=other, **QUICK)


def test_cli_evaluate_with_train(pysindy, tmp_path, capsys):
    from odernn.cli.app import main
    from odernn.data.simulate import simulate

    files = {}
    for name, n in (("train", 6), ("test", 3)):
        files[name] = simulate(load_spec(name).with_overrides(n=n, n_steps=120,
                                                               integrator="rk4"),
                               tmp_path / f"{name}.h5", progress=False)
    code = main(["evaluate", "--data", str(files["test"]), "--train", str(files["train"]),
                 "-o", str(tmp_path / "report"), "--no-work-precision", "--no-resonance",
                 "--no-chaos", "--no-bifurcation", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "sindy" in out and "dmdc" in out
    doc = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert doc["peers"]["training_data"] == str(files["train"])
    code = main(["evaluate", "--data", str(files["test"]), "--train", str(files["train"]),
                 "-o", str(tmp_path / "off"), "--no-peers", "--no-work-precision",
                 "--no-resonance", "--no-chaos", "--no-bifurcation", "--quiet"])
    doc = json.loads((tmp_path / "off" / "metrics.json").read_text())
    assert code == 0 and doc["peers"]["fitted"] == [] and "--no-peers" in doc["peers"]["not_run"]


def test_cli_evaluate_refuses_a_training_file_the_runs_were_not_trained_on(pysindy, tmp_path,
                                                                          capsys):
    """The report says the peers were fitted on the surrogates' training file; nothing
    checked it. A run records its training data's sha256: another file is refused."""
    from odernn.cli.app import main
    from odernn.data.simulate import simulate

    files = {}
    for name, spec, seed in (("train", "train", 0), ("other", "train", 5), ("test", "test", 1)):
        files[name] = simulate(load_spec(spec).with_overrides(n=6, n_steps=120, seed=seed,
                                                              integrator="rk4"),
                               tmp_path / f"{name}.h5", progress=False)
    assert main(["train", str(files["train"]), "-m", "esn", "--units", "20", "-o",
                 str(tmp_path / "run"), "-q"]) == 0
    args = ["evaluate", str(tmp_path / "run"), "--data", str(files["test"]),
            "--no-work-precision", "--no-resonance", "--no-chaos", "--no-bifurcation", "-q"]
    capsys.readouterr()
    code = main([*args, "--train", str(files["other"]), "-o", str(tmp_path / "wrong")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "is not the data surrogate run was trained on" in err
    assert not (tmp_path / "wrong").exists()
    assert main([*args, "--train", str(files["train"]), "-o", str(tmp_path / "right")]) == 0
    # the report records the command that wrote it and the test data's content digest, as a
    # run records its training data's (neither was recorded)
    doc = json.loads((tmp_path / "right" / "metrics.json").read_text())
    assert doc["command"] == shlex.join(["odernn", *args, "--train", str(files["train"]), "-o",
                                         str(tmp_path / "right")])
    assert doc["data"]["sha256"] == fingerprint(read_trajectories(files["test"]))["sha256"]
    assert f"Written by `{doc['command']}`" in (tmp_path / "right" / "report.md").read_text()
    # a run named like a peer keeps its own row beside the peer's, as dmdc-2
    shutil.copytree(tmp_path / "run", tmp_path / "named" / "dmdc")
    assert main(["evaluate", str(tmp_path / "named" / "dmdc"), *args[2:], "--train",
                 str(files["train"]), "-o", str(tmp_path / "named-report")]) == 0
    methods = json.loads((tmp_path / "named-report" / "metrics.json").read_text())["methods"]
    assert (methods["dmdc"]["kind"], methods["dmdc-2"]["kind"]) == ("peer", "surrogate")


def test_a_test_set_a_surrogate_has_seen_is_said_to_be_in_sample(tmp_path):
    """A run scored on the data it was trained on, or validated on (which chose its epoch or
    ridge), was reported as tested, without a word: the report and a warning now say so,
    from the data fingerprints its checkpoint records; the peers' training file is checked
    against them in Python too (only the command line checked it)."""
    import warnings

    from odernn.learn.config import TrainConfig
    from odernn.learn.models import load_surrogate
    from odernn.learn.training import train as fit

    train = simulate_trajectories(load_spec("train").with_overrides(n=8, n_steps=150))
    val = simulate_trajectories(load_spec("test").with_overrides(n=4, n_steps=150))
    test = simulate_trajectories(load_spec("test").with_overrides(n=4, n_steps=150, seed=9))
    fit(train, TrainConfig(model="esn", units=30), tmp_path / "run", val=val, progress=False)
    model = load_surrogate(tmp_path / "run")
    for data, verb in ((train, "trained"), (val, "validated")):
        with pytest.warns(UserWarning, match=f"is the data surrogate esn was {verb} on"):
            ev = evaluate(data, {"esn": model}, **QUICK)
        assert ev.info["in_sample"] == {"esn": verb}
        report = write_report(ev, tmp_path / f"report-{verb}")
        summary = report.joinpath("report.md").read_text()
        assert f"**Not a test of esn**: the test set is the data it was {verb} on" in summary
        assert json.loads(report.joinpath("metrics.json").read_text())["in_sample"] == {
            "esn": verb}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate(test, {"esn": model}, **QUICK).info["in_sample"] == {}
    with pytest.raises(DataError, match="is not the data surrogate esn was trained on"):
        evaluate(test, {"esn": model}, train_data=val, **QUICK)


def test_dmdc_reads_three_samples_a_step_not_a_row_each():
    """Its regression took each sample's whole forcing row (the review's 3.3 GB for 4
    trajectories of 20 000 steps, unchecked by the budget): three samples a row suffice."""
    from test_store import TracedPeak

    data = simulate_trajectories(load_spec("train").with_overrides(n=2, n_steps=5000))
    with TracedPeak() as traced:
        dmdc.fit_dmdc(data, ("eta",), (18,))
    assert traced.peak < 40 << 20, f"{traced.peak / 2**20:.0f} MiB"  # 400 MB copied before
