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
