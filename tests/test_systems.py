"""The system registry: every integrator on every system, against tightly converged solutions.

The nonlinear systems have no closed form, so the references are DOP853 at ``rtol 1e-12``;
the convergence orders are measured against a fine-step RK4 of the same equation.
"""

from __future__ import annotations

import numpy as np
import pytest

from odernn.data.forcing import HarmonicForcing, SampledForcing
from odernn.data.integrators import INTEGRATORS, integrate
from odernn.data.spec import load_spec, parse_spec
from odernn.data.systems import SYSTEMS, Oscillator, get_system
from odernn.errors import SpecError

PARAMS = {
    "oscillator": {"eta": [0.1, 0.3, 0.0]},
    "duffing": {"eta": [0.3, 0.2, 0.25], "alpha": [-1.0, 1.0, -1.0], "beta": [1.0, 0.5, 1.0]},
    "van-der-pol": {"mu": [0.5, 1.0, 2.0]},
    "pendulum": {"eta": [0.2, 0.5, 0.1]},
}


def batch(name: str, forcing: HarmonicForcing | None = None) -> Oscillator:
    params = {k: np.array(v) for k, v in PARAMS[name].items()}
    n = len(next(iter(params.values())))
    if forcing is None:
        forcing = HarmonicForcing(np.full((n, 1), 0.4), np.array([[1.2], [0.8], [1.4]]),
                                  np.zeros((n, 1)))
    return Oscillator.of(name, params, forcing)


X0, V0 = np.array([0.5, -1.0, 1.2]), np.array([0.0, 0.5, -0.3])
FIXED = [entry for entry in INTEGRATORS.values() if entry.order is not None]


def test_every_system_is_documented_and_its_partials_are_its_derivatives():
    """Parameters have meanings and ranges; ``partials`` is the derivative of ``accel``
    (central differences), so the implicit solvers get the right Jacobian."""
    rng = np.random.default_rng(0)
    for name, system in SYSTEMS.items():
        assert system.name == name and system.equation and system.description
        assert all(p.meaning for p in system.parameters)
        p = {k: np.array(v) for k, v in PARAMS[name].items()}
        x, v = rng.uniform(-2, 2, 3), rng.uniform(-2, 2, 3)
        h = 1e-6
        dx = (system.accel(x + h, v, p) - system.accel(x - h, v, p)) / (2 * h)
        dv = (system.accel(x, v + h, p) - system.accel(x, v - h, p)) / (2 * h)
        da_dx, da_dv = system.partials(x, v, p)
        np.testing.assert_allclose(da_dx, dx, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(da_dv, dv, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_the_compiled_steps_are_the_written_ones_to_the_last_bit(name: str):
    """The fixed-step integrators' time loops are compiled (:mod:`odernn.data.kernels`):
    their acceleration, RK4 and Euler give the same values, bit for bit, as the equation
    (``accel``) and :func:`rk4_step` as written, at large and small magnitudes, both signs
    of zero and unit stiffness included."""
    from odernn.data import kernels
    from odernn.data.stepping import _kernel_inputs, rk4_step
    rng = np.random.default_rng(7)
    n = 64
    params = {p.name: rng.uniform(0.0, 2.0, n) for p in SYSTEMS[name].parameters}
    if name == "duffing":  # double and single well, and a stiffness of exactly 1
        params["alpha"] = np.where(np.arange(n) < 8, 1.0, rng.uniform(-1.0, 1.0, n))
    t = np.linspace(0.0, 4.0, 81)
    forcing = HarmonicForcing(rng.uniform(0, 1, (n, 2)), rng.uniform(0.5, 2, (n, 2)),
                              rng.uniform(0, 6, (n, 2)))
    system = Oscillator.of(name, params, forcing)
    x0 = rng.standard_normal(n) * np.repeat([1e-300, 1.0, 1.5, 0.0], n // 4)
    v0 = rng.standard_normal(n) * np.repeat([1.0, 1e-3, 1.0, -0.0], n // 4)
    F = system.forcing(t)
    kind, p = _kernel_inputs(system)
    for x, v, f in ((x0, v0, F[:, 0]), (x0, -v0, -F[:, 0]), (v0, x0, 0.0 * F[:, 0])):
        expected = system.acceleration(x, v, f)
        got = np.array([kernels.acceleration(kind, x[j], v[j], f[j], p, j) for j in range(n)])
        assert np.array_equal(got, expected, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(expected))
    dt = t[1]
    Fh = system.forcing(t[:-1] + dt / 2)
    xs, vs = [x0], [v0]
    for i in range(t.size - 1):
        step = rk4_step(system.acceleration, xs[-1], vs[-1], F[:, i], Fh[:, i], F[:, i + 1], dt)
        xs.append(step[0])
        vs.append(step[1])
    assert np.isfinite(np.array(xs)).all()
    if SYSTEMS[name].linear is None:  # a linear system's RK4 is its precomputed map
        x, v = integrate("rk4", system, x0, v0, t)
        assert np.array_equal(x, np.array(xs).T) and np.array_equal(v, np.array(vs).T)
    for semi in (False, True):
        xs, vs = [x0], [v0]
        for i in range(t.size - 1):
            vs.append(vs[-1] + dt * system.acceleration(xs[-1], vs[-1], F[:, i]))
            xs.append(xs[-1] + dt * (vs[-1] if semi else vs[-2]))
        x, v = integrate("semi-implicit-euler" if semi else "euler", system, x0, v0, t)
        assert np.array_equal(x, np.array(xs).T) and np.array_equal(v, np.array(vs).T)


@pytest.mark.parametrize("name", [n for n in SYSTEMS if n != "oscillator"])
def test_dop853_agrees_with_itself_at_tight_tolerance_and_with_radau(name: str):
    """The reference of the systems without a closed form: DOP853 at rtol 1e-12 against
    rtol 1e-10 (agreement to ~1e-9 over t in [0, 20]) and against the implicit Radau with the
    system's Jacobian (to ~1e-6)."""
    system, t = batch(name), np.linspace(0.0, 20.0, 401)
    tight = integrate("scipy", system, X0, V0, t, rtol=1e-12, atol=1e-14)
    loose = integrate("scipy", system, X0, V0, t, rtol=1e-10, atol=1e-12)
    radau = integrate("scipy", system, X0, V0, t, method="Radau", rtol=1e-9, atol=1e-11)
    assert max(np.abs(a - b).max() for a, b in zip(tight, loose, strict=True)) < 1e-8
    assert max(np.abs(a - b).max() for a, b in zip(tight, radau, strict=True)) < 1e-6


@pytest.mark.parametrize("name", [n for n in SYSTEMS if n != "oscillator"])
@pytest.mark.parametrize("entry", FIXED, ids=lambda entry: entry.name)
def test_every_fixed_step_method_has_its_order_on_every_system(name: str, entry):
    """The slope of log(max error) over log(dt) against DOP853 at rtol 1e-13, over the three
    finest steps (the asymptotic range), is the entry's stated order (within 0.3) on each
    nonlinear system, over t in [0, 10]."""
    system = batch(name)
    steps = (50, 100, 200, 400) if entry.order == 4 else (200, 400, 800, 1600)
    fine = np.linspace(0.0, 10.0, steps[-1] * 4 + 1)
    ref_x, ref_v = integrate("scipy", system, X0, V0, fine, rtol=1e-13, atol=1e-15)
    errors = []
    for n in steps:
        t = np.linspace(0.0, 10.0, n + 1)
        every = (fine.size - 1) // n
        x, v = integrate(entry.name, system, X0, V0, t)
        errors.append(max(np.abs(x - ref_x[:, ::every]).max(),
                          np.abs(v - ref_v[:, ::every]).max()))
    slope = np.polyfit(np.log([10.0 / n for n in steps[1:]]), np.log(errors[1:]), 1)[0]
    # rk4-sampled-causal's order 3 is its first two steps' error, entered once; on a system
    # where the later steps' O(dt^4) is larger at these steps, the slope reads up to 4
    top = 4 if entry.name == "rk4-sampled-causal" else entry.order
    assert entry.order - 0.3 < slope < top + 0.3, (errors, slope)


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_rk4_on_the_samples_equals_rk4_on_the_sampled_forcing(name: str):
    """Given stored samples, ``rk4-sampled`` is RK4 on their linear interpolation, for
    every system (the same information a surrogate gets)."""
    system, t = batch(name), np.linspace(0.0, 5.0, 101)
    samples = SampledForcing(t, system.forcing(t))
    a = INTEGRATORS["rk4-sampled"](system, X0, V0, t, samples=samples)
    b = INTEGRATORS["rk4"](system.with_forcing(samples), X0, V0, t)
    for p, q in zip(a, b, strict=True):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-12)


def test_energy_is_conserved_without_damping_and_forcing():
    """Semi-implicit Euler and RK4 keep each conservative system's energy (where it has one)
    to O(dt) and O(dt^4) over t in [0, 20]: the symplectic Euler's relative error within
    2 dt (0.5 to 1.1 dt measured; forward Euler's grows to 16 to 45 dt), halving with dt."""
    free = HarmonicForcing.none(3)
    for name in ("duffing", "pendulum", "oscillator"):
        params = {k: np.array(v) for k, v in PARAMS[name].items()}
        params["eta"] = np.zeros(3)
        system = Oscillator.of(name, params, free)
        assert energy_drift(system, "rk4", 4001)[0].max() < 1e-9
        (coarse, dt), (fine, _) = (energy_drift(system, "semi-implicit-euler", points)
                                   for points in (4001, 8001))
        assert np.all(coarse < 2 * dt) and np.all(np.abs(coarse / fine - 2) < 0.1), name


def energy_drift(system: Oscillator, integrator: str, points: int) -> tuple[np.ndarray, float]:
    """Each trajectory's largest relative change of energy over ``points`` in [0, 20], and dt."""
    t = np.linspace(0.0, 20.0, points)
    e = system.system.energy(*integrate(integrator, system, X0, V0, t),
                             {k: p[:, None] for k, p in system.params.items()})
    return np.abs(e - e[:, :1]).max(axis=1) / np.abs(e[:, 0]), t[1]


def test_bad_systems_and_parameters_are_refused_in_one_line():
    with pytest.raises(SpecError, match="unknown system 'dufing' \\(did you mean 'duffing'"):
        get_system("dufing")
    text = load_spec("train").text
    with pytest.raises(SpecError, match="\\[parameters\\] of system 'duffing' needs alpha, beta"):
        parse_spec(text.replace('system = "oscillator"', 'system = "duffing"'))
    with pytest.raises(SpecError, match="system 'oscillator'\\): unknown key 'mu'"):
        parse_spec(text.replace("[parameters]", "[parameters]\nmu = 1.0"))
    vdp = text.replace('system = "oscillator"', 'system = "van-der-pol"').replace(
        "eta = [0.05, 0.5]", "mu = -1.0")
    with pytest.raises(SpecError, match="mu must be >= 0"):
        parse_spec(vdp)
    duffing = text.replace('system = "oscillator"', 'system = "duffing"').replace(
        "[parameters]", "[parameters]\nalpha = -1.0\nbeta = 1.0").replace(
        'name = "scipy"', 'name = "exact"').replace('method = "DOP853"', "").replace(
        "rtol = 1e-12", "").replace("atol = 1e-14", "")
    with pytest.raises(SpecError, match="closed-form solution, which system 'duffing'"):
        parse_spec(duffing)
    system = batch("pendulum")
    with pytest.raises(SpecError, match="closed-form solution, which system 'pendulum'"):
        integrate("exact", system, X0, V0, np.linspace(0, 1, 11))
    with pytest.raises(SpecError, match="eta = -0.5 is outside its valid range"):
        Oscillator.of("pendulum", {"eta": np.array([0.1, -0.5, 0.2])}, system.forcing)
    for bad in (np.inf, np.nan):  # through the API (a spec refuses them earlier)
        with pytest.raises(SpecError, match="eta = .* is outside its valid range"):
            Oscillator.of("pendulum", {"eta": np.array([0.1, bad, 0.2])}, system.forcing)


def test_simulate_another_system_with_its_parameters_set_on_the_command_line(tmp_path, capsys):
    from odernn.cli.app import main
    from odernn.data.store import read_trajectories

    out = tmp_path / "duffing.h5"
    assert main(["simulate", "train", "-o", str(out), "--system", "duffing", "--set", "alpha=-1",
                 "--set", "beta=[0.5, 1.0]", "--n", "6", "--n-steps", "50",
                 "--integrator", "rk4", "--quiet"]) == 0
    data = read_trajectories(out)
    assert data.system == "duffing" and data.attrs["equation"] == SYSTEMS["duffing"].equation
    assert np.all(data.params["alpha"] == -1) and np.all((data.params["beta"] >= 0.5)
                                                         & (data.params["beta"] <= 1.0))
    x, v = integrate("rk4", data.oscillator(), data.x[:, 0], data.v[:, 0], data.t)
    np.testing.assert_array_equal(x, data.x)  # the file is its system's solution, bit for bit
    capsys.readouterr()
    assert main(["simulate", "train", "-o", str(tmp_path / "vdp.h5"), "--system", "van-der-pol",
                 "--set", "mu=-1", "--quiet"]) == 2
    assert "mu must be >= 0" in capsys.readouterr().err
    assert main(["simulate", "train", "-o", str(tmp_path / "x.h5"), "--system", "duffing"]) == 2
    assert "needs alpha, beta" in capsys.readouterr().err
    assert not (tmp_path / "vdp.h5").exists() and not (tmp_path / "x.h5").exists()
    assert main(["systems"]) == 0
    listed = capsys.readouterr().out
    assert all(s.equation in listed for s in SYSTEMS.values())
