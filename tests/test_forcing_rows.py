"""The forcing's rows as the fixed-step integrators read them (:class:`ForcingRows`): any
slice holds the bits of the whole evaluation, and a harmonic forcing on a long uniform grid
is never evaluated into a whole ``(T, N)`` table."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from fuzzing import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st

from odernn.data.forcing import ForcingRows, GridForcing, HarmonicForcing, SampledForcing
from odernn.data.integrators import integrate
from odernn.data.systems import Oscillator


def harmonic(n: int, K: int, seed: int = 3) -> HarmonicForcing:
    rng = np.random.default_rng(seed)
    return HarmonicForcing(rng.uniform(0, 1, (n, K)), rng.uniform(0.3, 3, (n, K)),
                           rng.uniform(0, 6, (n, K)))


def slices(T: int, seed: int) -> list[tuple[int, int]]:
    """Random consecutive slices covering ``0 .. T - 1``, some of one row, some long."""
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.concatenate(([0, T], rng.integers(0, T, 12), [1, 31, 32, 33])))
    cuts = cuts[cuts <= T]
    return list(zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True))


GRIDS = {
    "uniform": np.linspace(0.0, 40.0, 1001),
    "uniform-short": np.linspace(0.0, 4.0, 100),  # below the separable form's length
    "uniform-far": 1.7e9 + 0.05 * np.arange(700),
    "non-uniform": np.cumsum(np.random.default_rng(1).uniform(0.01, 0.1, 600)),
}


@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize("K", [0, 1, 3, 40])
@pytest.mark.parametrize("n", [1, 7])
def test_any_slice_holds_the_bits_of_the_whole_evaluation(grid, K, n):
    t = GRIDS[grid]
    forcing = harmonic(n, K)
    whole = forcing(t).T
    rows = ForcingRows.of(forcing, t)
    for seed in range(3):
        for start, stop in slices(t.size, seed):
            got = rows(start, stop)
            assert got.shape == (stop - start, n) and got.dtype == np.float64
            assert got.flags.c_contiguous
            assert got.tobytes() == whole[start:stop].tobytes()


def test_a_table_on_its_grid_is_read_off_and_elsewhere_its_base_is_evaluated():
    t = GRIDS["uniform"]
    base = harmonic(4, 2)
    table = base(t)
    grid = GridForcing(base, t, table)
    assert np.shares_memory(ForcingRows.of(grid, t)(0, t.size), table)
    half = t[:-1] + (t[1] - t[0]) / 2
    assert ForcingRows.of(grid, half)(5, 77).tobytes() == base(half).T[5:77].tobytes()
    sampled = SampledForcing(t, table)
    assert ForcingRows.of(sampled, half)(0, 9).tobytes() == sampled(half).T[:9].tobytes()
    big_endian = GridForcing(base, t, table.astype(">f8"))
    native = ForcingRows.of(big_endian, t)(0, 3)
    assert native.dtype == np.dtype("=f8") and np.array_equal(native, table.T[:3])


def test_a_uniform_grids_rows_take_a_fraction_of_the_whole_table():
    """The separable tables and one slice's buffer only: a whole (T, N) table would be
    T N 8 bytes."""
    T, n = 4096, 256
    t = np.linspace(0.0, 200.0, T)
    forcing = harmonic(n, 1)
    tracemalloc.start()
    try:
        rows = ForcingRows.of(forcing, t)
        for start in range(0, T, 128):
            rows(start, start + 128)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.15 * T * n * 8


@pytest.mark.parametrize("name, arrays", [("euler", 2), ("semi-implicit-euler", 2),
                                          ("rk4", 2)])
def test_an_integrators_memory_is_its_outputs_and_no_forcing_table(name, arrays):
    """Forward Euler and RK4 under a harmonic forcing hold ``x, v (T, N)`` and not the
    forcing on the grid (nor RK4's at the half steps)."""
    T, n = 4096, 256
    t = np.linspace(0.0, 200.0, T)
    system = Oscillator.linear(np.full(n, 0.1), harmonic(n, 1))
    x0 = np.zeros(n)
    integrate(name, system, x0, x0, t)  # compiled and cached before the count
    tracemalloc.start()
    try:
        integrate(name, system, x0, x0, t)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert arrays * T * n * 8 <= peak < (arrays + 0.5) * T * n * 8  # before: 3 and 4 arrays


@settings(max_examples=examples(60), deadline=None)
@given(K=st.integers(0, 5), n=st.integers(1, 6), T=st.integers(2, 700),
       t0=st.floats(-1e6, 1e6), dt=st.floats(1e-4, 1.0), seed=st.integers(0, 2**32 - 1))
@example(K=1, n=1, T=128, t0=0.0, dt=0.05, seed=0)  # the shortest grid in separable form
@example(K=5, n=2, T=300, t0=-3.0, dt=0.1, seed=1)  # tables larger than the whole table
def test_random_forcings_grids_and_slices_keep_the_bits(K, n, T, t0, dt, seed):
    rng = np.random.default_rng(seed)
    forcing = HarmonicForcing(rng.uniform(-10, 10, (n, K)), rng.uniform(0, 100, (n, K)),
                              rng.uniform(-10, 10, (n, K)))
    t = t0 + dt * np.arange(T)
    whole = forcing(t).T
    rows = ForcingRows.of(forcing, t)
    for start, stop in slices(T, seed):
        assert rows(start, stop).tobytes() == whole[start:stop].tobytes()


@pytest.mark.parametrize("group", [1, 3, 1 << 18])
def test_many_harmonics_at_few_points_are_taken_together_to_the_same_bits(monkeypatch, group):
    """Off the separable path the harmonics of a few time points are evaluated several at a
    time (a file of 2e6 harmonics took minutes one at a time), and still summed one after
    another: the bits of one harmonic at a time, whatever the group."""
    from odernn.data import forcing as module

    f = harmonic(3, 700)
    t = np.sort(np.random.default_rng(0).uniform(0, 20, 40))
    expected = np.zeros((3, t.size))
    for k in range(700):  # the sum as it always was: a harmonic at a time, in order
        arg = np.multiply.outer(t, f.omega[:, k]) + f.phase[:, k]
        expected += (np.cos(arg) * f.amplitude[:, k]).T
    monkeypatch.setattr(module, "GROUP_VALUES", group)
    np.testing.assert_array_equal(f(t), expected)


def test_a_file_of_many_harmonics_is_checked_in_short_interruptible_blocks(tmp_path,
                                                                          monkeypatch):
    """A file's check recomputes its forcing block by block, a Ctrl-C honoured between
    blocks; blocks were sized by bytes alone, so one trajectory of 2e6 harmonics was one
    block of minutes (SIGTERM took 116 s). Each block now holds at most CHECK_COSINES."""
    from odernn.data import store
    from odernn.data.simulate import simulate
    from odernn.data.spec import load_spec

    spec = load_spec("random-forcing").with_overrides(n=3, K=40, n_steps=200)
    simulate(spec, tmp_path / "d.h5")
    seen = []
    real = store.check_consistency
    monkeypatch.setattr(store, "check_consistency", lambda data, *a, **k: seen.append(
        (data.x.shape, data.params["amplitude"].shape[1])) or real(data, *a, **k))
    for cap, whole_rows in ((40 * 150, False), (40 * 200 * 2, True)):
        seen.clear()
        monkeypatch.setattr(store, "CHECK_COSINES", cap)
        with store.TrajectoryFile(tmp_path / "d.h5") as f:
            f.check_parts()
        assert all(rows * points * K <= cap for (rows, points), K in seen), seen
        assert sum(rows * points for (rows, points), _ in seen) == 3 * 200  # every value
        # fewer rows first: whole rows keep the forcing's separable tables (4x faster)
        assert all(points == 200 for (_, points), _ in seen) == whole_rows and len(seen) > 1
