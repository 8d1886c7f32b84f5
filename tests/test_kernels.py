"""The compiled loops of :mod:`odernn.data.kernels`: a long run stepped in slices is the run
stepped at once, the slices cover every step once, and a place numba cannot cache in does
not stop odernn."""

from __future__ import annotations

import importlib

import numba
import numpy as np
import pytest

from odernn.data import kernels
from odernn.data.forcing import HarmonicForcing
from odernn.data.integrators import integrate
from odernn.data.systems import Oscillator


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("T", [2, 3, 4, 5, 17, 100])
@pytest.mark.parametrize("n", [1, 3, 50])
def test_row_slices_cover_every_step_once(monkeypatch, stride, T, n):
    monkeypatch.setattr(kernels, "ROWS_PER_CALL", 7)
    steps = [i for start, stop in kernels.row_slices(T, n, stride)
             for i in range(start, stop, stride)]
    assert steps == list(range(0, T - stride, stride))
    for start, stop in kernels.row_slices(T, n, stride):
        assert start % stride == 0 and stop > start
        assert (stop - start) * n <= max(7, stride * n)


@pytest.mark.parametrize("integrator", ["euler", "semi-implicit-euler", "rk4",
                                        "rk4-sampled-2dt"])
@pytest.mark.parametrize("name", ["oscillator", "duffing"])
def test_a_run_in_many_slices_is_the_run_at_once(monkeypatch, integrator, name):
    """Slicing a run into compiled calls (for interrupts) changes no bit."""
    rng = np.random.default_rng(5)
    n, t = 6, np.linspace(0.0, 10.0, 402)
    forcing = HarmonicForcing(rng.uniform(0, 1, (n, 1)), rng.uniform(0.5, 2, (n, 1)),
                              rng.uniform(0, 6, (n, 1)))
    params = {"eta": rng.uniform(0, 1, n), "alpha": rng.uniform(-1, 1, n),
              "beta": rng.uniform(0, 1, n)}
    system = Oscillator.of(name, params, forcing)
    x0, v0 = rng.standard_normal(n), rng.standard_normal(n)
    whole = integrate(integrator, system, x0, v0, t)
    monkeypatch.setattr(kernels, "ROWS_PER_CALL", 5 * n)  # 5 steps a call: 80 calls
    sliced = integrate(integrator, system, x0, v0, t)
    assert all(np.array_equal(a, b) for a, b in zip(whole, sliced, strict=True))


def test_no_place_to_cache_compiles_without_cache(monkeypatch):
    """Where numba finds no writable place for its cache (a read-only install, no home),
    its decorator raises RuntimeError: the loops are then compiled without a cache."""
    njit = numba.njit

    def refusing(*args, **options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f'")
        return njit(*args, **options)

    monkeypatch.setattr(numba, "njit", refusing)
    try:
        fresh = importlib.reload(kernels)
        F = np.ones((3, 2))
        x, v = np.zeros((3, 2)), np.zeros((3, 2))
        fresh.euler(fresh.LINEAR, F, x, v, np.ones((2, 2)), 0.5, False, 0, 2)
        assert np.array_equal(v[:, 0], [0.0, 0.5, 0.75])  # v' = F - v - x from rest
    finally:
        monkeypatch.undo()
        importlib.reload(kernels)


@pytest.mark.parametrize("harmonics", [0, 1, 3])
@pytest.mark.parametrize("integrator", ["euler", "rk4", "rk4-sampled-cubic", "exact"])
def test_one_trajectory_alone_is_itself_in_a_batch(integrator, harmonics):
    """A trajectory's result depends on its own parameters only. The closed form broke this
    for one trajectory under three harmonics (its coefficients filled through strided views,
    which numpy 2.4's in-place negative misreads): v was wrong by 0.69."""
    rng = np.random.default_rng(11)
    n, t = 4, 0.05 * np.arange(300)
    k = harmonics
    forcing = HarmonicForcing(rng.uniform(0, 1, (n, k)), rng.uniform(0.5, 2, (n, k)),
                              rng.uniform(0, 6, (n, k)))
    system = Oscillator.linear(rng.uniform(0.05, 0.5, n), forcing)
    x0, v0 = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    x, v = integrate(integrator, system, x0, v0, t)
    for i in range(n):
        xi, vi = integrate(integrator, system.take(slice(i, i + 1)), x0[i:i + 1], v0[i:i + 1], t)
        assert np.array_equal(xi[0], x[i]) and np.array_equal(vi[0], v[i])


def test_the_closed_form_at_rest_keeps_positive_zeros():
    """numpy's einsum summed from +0, so a sum of -0 terms was +0; the compiled sum does too
    (it gave -0 in 8 points of v: other bits in the file)."""
    system = Oscillator.linear(np.array([0.3, 5.0]), HarmonicForcing.none(2))
    x, v = integrate("exact", system, np.zeros(2), np.zeros(2), 0.1 * np.arange(400))
    assert not np.signbit(x).any() and not np.signbit(v).any()


def test_a_big_endian_forcing_table_is_integrated():
    """A GridForcing given a big-endian table (the compiled loops take native float64 only)."""
    from odernn.data.forcing import GridForcing

    t = 0.1 * np.arange(50)
    base = HarmonicForcing(np.ones((2, 1)), np.ones((2, 1)), np.zeros((2, 1)))
    native = Oscillator.linear(np.full(2, 0.2), GridForcing(base, t, base(t)))
    swapped = native.with_forcing(GridForcing(base, t, base(t).astype(">f8")))
    for integrator in ("euler", "rk4"):
        assert all(np.array_equal(a, b) for a, b in zip(
            integrate(integrator, native, np.ones(2), np.zeros(2), t),
            integrate(integrator, swapped, np.ones(2), np.zeros(2), t), strict=True))


def test_a_cache_that_cannot_be_written_compiles_in_memory(monkeypatch):
    """The cache's place was usable when odernn started and fails later (a full disk): the
    loop is compiled and run without it, where every integration raised OSError."""
    def full(*args):
        raise OSError(28, "No space left on device")

    cached = getattr(kernels.expand, "_cache", None)
    if cached is None or not hasattr(cached, "_cache_file"):
        pytest.skip("numba keeps no on-disk cache for this function here")
    monkeypatch.setattr(cached._cache_file, "save", full)
    monkeypatch.setattr(cached._cache_file, "load", full)
    x, v = np.empty((2, 3), np.float32), np.empty((2, 3), np.float32)  # a new signature
    basis = np.ones((2, 2, 3), np.float32)
    kernels.expand(x, v, basis, np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32))
    assert np.array_equal(x, np.full((2, 3), 2.0)) and np.array_equal(v, np.full((2, 3), 4.0))
