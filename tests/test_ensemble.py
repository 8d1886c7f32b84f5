"""The ensemble of a seed group is its members' joint closed loop: one member is that member to
the bit, the loop is the members stepped from the median of their predictions (the public
step API); on a small seed group it is no worse than its median member in the pointwise errors
and divergences the evaluator reports per seed (``benchmarks/ensembles.py`` measures every
per-seed metric at full size) nor, by construction, in its steady-state statistics (the median
of its members' estimates), and on chaos its joint loop keeps the amplitude that the mean of
the members' trajectories loses."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import odernn
from odernn.assess.chaos import ChaosSettings
from odernn.assess.results import SEED_METRICS
from odernn.data.simulate import simulate_trajectories
from odernn.data.spec import load_spec
from odernn.learn.models.ensemble import Ensemble


@pytest.mark.parametrize("options", [
    {"model": "esn", "units": 30},
    {"model": "gru", "hidden": 8, "epochs": 1, "val_every": 1},
    {"model": "ffn", "epochs": 1, "val_every": 1},  # a warm-up of observed steps
], ids=["esn", "gru", "ffn"])
def test_an_ensemble_of_one_is_that_member_exactly(small_linear_sets, options):
    train, test = small_linear_sets
    model, _ = odernn.fit(train, **options)
    k = model.warmup_steps
    warmup = (test.x[:, :k], test.v[:, :k]) if k else None
    args = (test.x[:, 0], test.v[:, 0], test.F, test.params, warmup)
    alone, joint = model.rollout(*args), Ensemble({"only": model}).rollout(*args)
    assert np.array_equal(joint.x, alone.x) and np.array_equal(joint.v, alone.v)
    assert np.array_equal(joint.diverged_at, alone.diverged_at) and joint.warmup == alone.warmup
    assert np.array_equal(joint.info["members"]["only"].x, alone.x)
    bare = Ensemble({"only": model}).rollout(*args, members=False)  # what evaluate times
    assert np.array_equal(bare.x, alone.x) and "members" not in bare.info
    added = Ensemble({"only": model}).rollout(*args, joint=bare)  # evaluate's members, after
    assert added.x is bare.x and np.array_equal(added.info["members"]["only"].x, alone.x)


def median(values: list[np.ndarray]) -> np.ndarray:
    """The median of each element; for an even count the mean of the two middle values."""
    k = len(values)
    return np.sort(np.stack(values), axis=0)[(k - 1) // 2:k // 2 + 1].mean(axis=0)


@pytest.mark.parametrize("seeds", [2, 3, 4, 5])
def test_the_joint_loop_steps_every_member_from_the_median(small_linear_sets, seeds):
    train, test = small_linear_sets
    ensemble, _ = odernn.fit_seeds(train, model="esn", units=30, seeds=seeds, seed=5)
    reduce = median
    steppers = [m.stepper(test.x[:, 0], test.v[:, 0], test.params)
                for m in ensemble.members.values()]
    x, v = [test.x[:, 0]], [test.v[:, 0]]
    for i in range(test.n_steps - 1):
        nxt = [s.step(test.F[:, i], test.F[:, i + 1]) for s in steppers]
        x.append(reduce([p[0] for p in nxt]))
        v.append(reduce([p[1] for p in nxt]))
        for s in steppers:  # every member carries the joint state, each its own hidden state
            s.observe(x[-1], v[-1])
    joint = ensemble.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    # the same loop; the rollout reduces in float32, the steps here in float64
    assert np.allclose(joint.x, np.stack(x, axis=1), rtol=0, atol=1e-5)
    assert np.allclose(joint.v, np.stack(v, axis=1), rtol=0, atol=1e-5)
    runs = joint.info["members"]
    assert not np.allclose(joint.x, np.mean([r.x for r in runs.values()], axis=0), atol=1e-5)


@pytest.mark.parametrize("seeds", [1, 3])
def test_the_ensembles_stepper_gives_its_rollout_to_the_last_bit(small_linear_sets, seeds):
    """Also across a pickle midway."""
    train, test = small_linear_sets
    ensemble, _ = odernn.fit_seeds(train, model="gru", hidden=8, epochs=1, val_every=1,
                                   seeds=seeds, seed=2)
    stepper = ensemble.stepper(test.x[:, 0], test.v[:, 0], test.params)
    steps = [stepper.step(test.F[:, i], test.F[:, i + 1]) for i in range(10)]
    stepper = pickle.loads(pickle.dumps(stepper))  # saved midway: every member's state with it
    steps += [stepper.step(test.F[:, i], test.F[:, i + 1]) for i in range(10, test.n_steps - 1)]
    joint = ensemble.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    assert np.array_equal(joint.x[:, 1:], np.stack([x for x, _ in steps], axis=1))
    assert np.array_equal(joint.v[:, 1:], np.stack([v for _, v in steps], axis=1))
    assert np.array_equal(stepper.diverged_at, joint.diverged_at)
    assert stepper.steps == test.n_steps - 1 and len(stepper.models) == seeds


POINTWISE = ("nrmse_x", "median_nrmse_x", "nrmse_v", "n_diverged")
"""The per-seed metrics held against the median member: the pointwise errors and divergences,
on periodic data (past the predictable time of chaos a pointwise error is not guaranteed
either: ``benchmarks/ensembles.py``, case ``drives``)."""


def test_a_seed_group_is_no_worse_than_its_median_member():
    train = simulate_trajectories(load_spec("duffing-train").with_overrides(n=32, n_steps=300))
    test = simulate_trajectories(load_spec("duffing-test").with_overrides(n=16, n_steps=300))
    ensemble, _ = odernn.fit_seeds(train, model="esn", units=100, seeds=3)
    ev = odernn.evaluate(test, {"esn": ensemble}, integrators=(), work_precision=False,
                         resonance=False, bifurcation=False, progress=False,
                         chaos=ChaosSettings(lyapunov=False, trust=False))
    own, seeds = ev.methods["esn"].metrics, ev.methods["esn"].seeds
    assert set(seeds["median"]) == set(SEED_METRICS) - {"valid_lyapunov_median"}
    assert "valid_lyapunov_median" not in own  # no exponents estimated: no valid time in them
    for key in POINTWISE:
        assert own[key] <= seeds["median"][key], key
    # the steady-state statistics are the median of the members' estimates: never farther off
    # than the median member's, by construction
    for key in ("x2_max_rel_error", "x2_mean_rel_error"):
        assert own[key] <= seeds["median"][key] * (1 + 1e-12), key
    # and the report's table of them says which of its columns are the members' median
    from odernn.assess.report_chaos import chaos_section
    caption = chaos_section(ev).tables[0].caption
    assert "A seed group's (esn) max x² and mean x² errors are the median" in caption


def test_on_chaos_the_ensemble_keeps_the_amplitude_the_trajectory_mean_loses():
    """The failure of the mean of the members' trajectories, which lose their phase: the steady
    state's mean x^2 shrinks; the joint loop's stays the reference's, within its members'."""
    train = simulate_trajectories(load_spec("duffing-chaos-train").with_overrides(
        n=32, n_steps=600))
    test = simulate_trajectories(load_spec("duffing-chaos").with_overrides(n=16, n_steps=600))
    ensemble, _ = odernn.fit_seeds(train, model="esn", units=200, seeds=3)
    joint = ensemble.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params)
    runs = list(joint.info["members"].values())
    k = test.n_steps // 2

    def mean_x2(x: np.ndarray) -> float:
        return float(np.mean(x[:, k:] ** 2))

    ref = mean_x2(test.x)
    assert joint.n_diverged == 0
    assert abs(mean_x2(joint.x) - ref) <= 0.1 * ref
    assert abs(mean_x2(joint.x) - ref) <= max(abs(mean_x2(r.x) - ref) for r in runs)
    assert mean_x2(np.mean([r.x for r in runs], axis=0)) < 0.6 * ref


def test_loading_a_seed_groups_directory_gives_its_ensemble(small_linear_sets, tmp_path):
    from odernn.learn.config import TrainConfig
    from odernn.learn.seeds import train_seeds

    train, test = small_linear_sets
    train_seeds(train, TrainConfig(model="esn", units=30), tmp_path / "g", 2, progress=False)
    ensemble = odernn.load_surrogate(tmp_path / "g")
    assert isinstance(ensemble, Ensemble) and list(ensemble.members) == ["seed-0", "seed-1"]
    member = odernn.load_surrogate(tmp_path / "g" / "seed-1")  # a member's run, alone
    args = (test.x[:, 0], test.v[:, 0], test.F, test.params)
    assert np.array_equal(ensemble.rollout(*args).info["members"]["seed-1"].x,
                          member.rollout(*args).x)
