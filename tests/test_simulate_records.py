"""What ``simulate`` promises and records: trajectory i's numbers from numpy's own stream
``SeedSequence(seed).spawn(N)[i]`` in a documented order, the same in any block or shard; the
file's provenance attributes; the in-memory result equal to the file's; progress counted to
the end; a closed form without forcing; parameters a reader refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_simulate import small

from odernn.cli.app import main
from odernn.data import simulate as sim
from odernn.data.simulate import (
    block_size,
    sample_parameters,
    shard_rows,
    simulate,
    simulate_block,
    simulate_trajectories,
)
from odernn.data.spec import load_spec
from odernn.data.spec_settings import with_settings
from odernn.data.store import read_trajectories
from odernn.data.trajectories import check_consistency
from odernn.errors import DataError, SpecError


def stream(seed: int, i: int, n: int) -> np.random.Generator:
    """Trajectory i's generator as the documentation states it, by numpy alone."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(n)[i])


def test_each_trajectorys_parameters_are_its_streams_uniforms_in_the_documented_order():
    """The system's parameters, x0, v0, then F0, omega, phase: one uniform each, in turn."""
    spec = with_settings(load_spec("train").with_overrides(n=3),  # train's phase is fixed
                         sets={"phase": [0.0, 6.28]})  # at 0: any uniform would draw it
    names = [*spec.parameters, "F0", "omega", "phase"]
    ranges = {**spec.parameters, **spec.forcing_parameters}
    drawn = sample_parameters(spec, 0, 3)
    for i in range(3):
        u = stream(spec.seed, i, 3).random(len(names))
        for j, name in enumerate(names):
            assert drawn[name][i] == ranges[name].draw(u[j]), (name, i)


def test_a_random_forcings_amplitudes_split_its_total_by_numpys_exponentials():
    """After the 3 + 2 K uniforms (parameters, K omegas, K phases): K exponentials, then the
    total's uniform; the amplitudes are the total split by the exponentials (Dirichlet(1))."""
    spec = small(family="random").with_overrides(n=4)
    K, names = spec.K, list(spec.parameters)
    fp, drawn = spec.forcing_parameters, sample_parameters(spec, 0, 4)
    for i in range(4):
        g = stream(spec.seed, i, 4)
        u = g.random(len(names) + 2 * K)
        np.testing.assert_array_equal(drawn["omega"][i], fp["omega"].draw(u[len(names):][:K]))
        weights = g.exponential(size=K)
        total = fp["amplitude_sum"].draw(g.random())
        np.testing.assert_array_equal(drawn["amplitude"][i], total * weights / weights.sum())


def test_a_series_noise_is_each_trajectorys_own_in_any_block():
    spec = load_spec("noisy-sine").with_overrides(n=6)
    whole = simulate_block(spec, 0, 6)[0]["x"]
    np.testing.assert_array_equal(simulate_block(spec, 2, 4)[0]["x"], whole[2:4])
    t = np.arange(spec.n_steps) * spec.dt
    noise = stream(spec.seed, 3, 6).random(spec.n_steps)
    np.testing.assert_array_equal(
        whole[3], np.sin(spec.series["frequency"] * t) + spec.series["noise"] * noise)


def test_the_closed_form_without_forcing_is_the_free_decay():
    spec = small("exact", family="none")
    data = simulate_trajectories(spec)
    eta, x0, v0 = (data.params[k][:, None] for k in ("eta", "x0", "v0"))
    a, w = eta / 2, np.sqrt(1 - eta**2 / 4)
    t = data.t[None]
    x = np.exp(-a * t) * (x0 * np.cos(w * t) + (v0 + a * x0) * np.sin(w * t) / w)
    np.testing.assert_allclose(data.x, x, rtol=0, atol=1e-13)
    assert not data.F.any()


def test_the_file_records_its_kind_integrator_options_and_block(tmp_path):
    spec = load_spec("train").with_overrides(n=8, n_steps=20)
    simulate(spec, tmp_path / "train.h5")
    attrs = read_trajectories(tmp_path / "train.h5").attrs
    assert attrs["kind"] == "oscillator" and int(attrs["block_size"]) == block_size(spec)
    assert json.loads(attrs["integrator_options"]) == dict(spec.integrator)
    assert json.loads(attrs["integrator_options"])["rtol"] == spec.integrator["rtol"] > 0
    simulate("sine", tmp_path / "sine.h5")
    assert read_trajectories(tmp_path / "sine.h5").attrs["kind"] == "series"
    assert main(["inspect", str(tmp_path / "sine.h5")]) == 0


def test_float32_in_memory_is_the_files_float32(tmp_path):
    spec = small("rk4").with_overrides(dtype="float32")
    data = simulate_trajectories(spec)
    simulate(spec, tmp_path / "f.h5")
    stored = read_trajectories(tmp_path / "f.h5")
    assert data.x.dtype == stored.x.dtype == np.float32
    for name in ("x", "v", "F"):
        np.testing.assert_array_equal(getattr(data, name), getattr(stored, name))


def test_progress_counts_every_blocks_trajectories_to_the_total(tmp_path, monkeypatch):
    monkeypatch.setattr(sim, "block_size", lambda spec: 5)  # 12 trajectories: 5 + 5 + 2
    events = []
    simulate(small("rk4"), tmp_path / "p.h5", progress=events.append)
    done = [e.done for e in events if e.stage == "block"]
    assert done == [5, 10, 12]


def test_a_shard_says_how_many_trajectories_it_wrote(tmp_path, capsys):
    assert main(["simulate", "test", "--n", "10", "--n-steps", "20", "--integrator", "rk4",
                 "--shard", "1/2", "-o", str(tmp_path / "s.h5")]) == 0
    out = capsys.readouterr().out
    assert "5 trajectories" in out and "10 trajectories" not in out


@pytest.mark.parametrize("shard", [(0, 2), (3, 2), (-1, 2)])
def test_a_shard_outside_1_to_n_is_refused_by_the_library_too(shard):
    with pytest.raises(SpecError, match=f"k must be in 1..{shard[1]}"):
        shard_rows(small(), shard)


def test_a_nan_parameter_is_refused_by_every_reader():
    data = simulate_trajectories(small())
    data.params["eta"][1] = np.nan
    with pytest.raises(DataError, match=r"here: params/eta\[1\] = nan"):
        check_consistency(data, "here")
