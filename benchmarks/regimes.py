"""Measured regimes (periodic vs chaotic) of the driven nonlinear oscillators.

    python benchmarks/regimes.py [--seed 0] [--draws 64] [--quick]

Standalone (numpy and scipy only; it does not import odernn). The systems, with
F(t) = F0 cos(omega t) unless said otherwise:

    duffing       x'' + eta x' + alpha x + beta x^3 = F(t)
    van-der-pol   x'' - mu (1 - x^2) x' + x = F(t)
    pendulum      x'' + eta x' + sin(x) = F(t)        (x the angle, not wrapped)

The largest Lyapunov exponent (per time unit) by Benettin's method: a reference
and a perturbed trajectory (initial separation d0 = 1e-8 in a random direction
of the (x, v) plane), integrated together by a fixed-step RK4 vectorised over
all parameter settings at once, renormalised at the end of every forcing period
(every 2 pi for the undriven or randomly forced runs), a transient discarded.
Each estimate comes with the change between the two halves of the measured
window (a convergence check), and every table of draws is computed twice, the
second time with half the step (a check of the step). Perturbing (x, v) at a
fixed phase measures the exponents of the stroboscopic map, so the zero
exponent of the time direction does not appear: a stable periodic response
gives a negative exponent, a quasi-periodic one zero, a chaotic one positive.
The period of a response is read off the stroboscopic samples x(t_k), v(t_k)
at the forcing period over the last 64 periods: the smallest p with
|s_{k+p} - s_k| < 1e-3 for every k (pendulum angles compared modulo 2 pi).

Classes: `chaotic` lambda > +0.01, `periodic` lambda < -0.01, `marginal` in
between (quasi-periodic, or close to a bifurcation). The tables are markdown.
The default run takes about 2.5 minutes on one core (--draws 256: about 4);
--quick takes about 15 s and its numbers are rough (short runs, coarse grids:
marginal runs can show as chaotic). The proposed dataset ranges are the
constants DUFFING_CHAOS, DUFFING_TRAIN, DUFFING_TEST_OOD, VAN_DER_POL_TRAIN and
PENDULUM_TRAIN.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

LAMBDA_TOL = 0.01  # |lambda| below this (per time unit): marginal
STROBE_TOL = 1e-3  # stroboscopic samples equal to this (absolute) are one point
MAX_PERIOD = 8  # periods looked for: 1..MAX_PERIOD (0 = none found)
D0 = 1e-8  # Benettin separation
DATASET_WINDOW = 50.0  # time span of the built-in datasets (1000 steps of 0.05)


# --------------------------------------------------------------------------- systems


def acceleration(
    system: str, x: np.ndarray, v: np.ndarray, force: np.ndarray, p: dict[str, np.ndarray]
) -> np.ndarray:
    """x'' of `system`; x, v of shape (2, N) (reference, perturbed), force and p (N,)."""
    if system == "duffing":
        return force - p["eta"] * v - p["alpha"] * x - p["beta"] * (x * x * x)
    if system == "van-der-pol":
        return force + p["mu"] * (1.0 - x * x) * v - x
    if system == "pendulum":
        return force - p["eta"] * v - np.sin(x)
    if system == "linear":
        return force - p["eta"] * v - x
    raise ValueError(system)


@dataclass
class Forcing:
    """F(t) = sum_k A_k cos(omega_k t + phase_k), arrays of shape (K, N).

    `periodic` (a single cosine): the renormalisation interval is the forcing
    period 2 pi / omega of each trajectory and the stroboscopic samples are
    taken there; otherwise the interval is 2 pi for all.
    """

    amplitude: np.ndarray
    omega: np.ndarray
    phase: np.ndarray
    periodic: bool

    @staticmethod
    def cosine(F0: np.ndarray, omega: np.ndarray) -> Forcing:
        F0, omega = np.atleast_1d(F0).astype(float), np.atleast_1d(omega).astype(float)
        return Forcing(F0[None], omega[None], np.zeros_like(F0)[None], True)

    @staticmethod
    def none(n: int) -> Forcing:
        return Forcing(np.zeros((1, n)), np.ones((1, n)), np.zeros((1, n)), False)

    @staticmethod
    def random(
        rng: np.random.Generator,
        n: int,
        K: int,
        omega: tuple[float, float],
        amplitude_sum: tuple[float, float],
    ) -> Forcing:
        """odernn's `random` family: the K amplitudes split a total drawn from amplitude_sum."""
        total = rng.uniform(*amplitude_sum, size=n)
        split = rng.dirichlet(np.ones(K), size=n).T
        return Forcing(
            split * total,
            rng.uniform(*omega, size=(K, n)),
            rng.uniform(0.0, 2 * np.pi, size=(K, n)),
            False,
        )

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return np.sum(self.amplitude * np.cos(self.omega * t + self.phase), axis=0)


@dataclass
class Result:
    lam: np.ndarray  # largest exponent per time unit, (N,)
    lam_first: np.ndarray  # ... over the first half of the measured window
    lam_second: np.ndarray  # ... over the second half
    ftle_window: np.ndarray  # finite-time exponent over [0, DATASET_WINDOW] from the initial state
    period: np.ndarray  # stroboscopic period (0: none up to MAX_PERIOD; -1: not periodic forcing)
    interval: np.ndarray  # renormalisation interval (N,)
    dt: np.ndarray  # step (N,)
    extra: dict = field(default_factory=dict)

    @property
    def change(self) -> np.ndarray:
        return np.abs(self.lam_second - self.lam_first)


def lyapunov(
    system: str,
    params: dict[str, np.ndarray],
    forcing: Forcing,
    x0: np.ndarray,
    v0: np.ndarray,
    n_transient: int,
    n_measure: int,
    dt_max: float,
    rng: np.random.Generator,
    n_strobe: int = 64,
) -> Result:
    """Benettin's largest exponent for N settings at once (fixed-step RK4).

    A run that leaves the finite numbers (the step too large for it) gets NaN.
    Van der Pol's step is scaled by min(1, 1.5 / max(mu)): its relaxation
    phases are stiff (RK4 diverged at mu 3, step 0.1, F0 2.7).
    """
    x0 = np.asarray(x0, float)
    n = x0.size
    p = {k: np.broadcast_to(np.asarray(val, float), (n,)) for k, val in params.items()}
    if system == "van-der-pol":
        dt_max = dt_max * min(1.0, 1.5 / float(np.max(p["mu"])))
    interval = (2 * np.pi / forcing.omega[0]) if forcing.periodic else np.full(n, 2 * np.pi)
    n_sub = int(math.ceil(interval.max() / dt_max))
    h = interval / n_sub
    wrap = system == "pendulum"

    direction = rng.normal(size=(2, n))
    direction /= np.linalg.norm(direction, axis=0)
    x = np.stack([x0, x0 + D0 * direction[0]])
    v = np.stack([np.asarray(v0, float), np.asarray(v0, float) + D0 * direction[1]])

    table = None
    if forcing.periodic:  # the force at every half step of a period, the same each period
        table = np.stack([forcing(0.5 * j * h) for j in range(2 * n_sub + 1)])

    n_total = n_transient + n_measure
    logs = np.empty((n_total, n))
    strobe = np.empty((min(n_strobe, n_measure), 2, n))
    errstate = np.errstate(all="ignore")  # a diverging run must not stop the others
    errstate.__enter__()
    for period in range(n_total):
        for s in range(n_sub):
            if table is not None:
                f0, f1, f2 = table[2 * s], table[2 * s + 1], table[2 * s + 2]
            else:
                t = (period * n_sub + s) * h
                f0, f1, f2 = forcing(t), forcing(t + 0.5 * h), forcing(t + h)
            a1 = acceleration(system, x, v, f0, p)
            xb, vb = x + 0.5 * h * v, v + 0.5 * h * a1
            a2 = acceleration(system, xb, vb, f1, p)
            xc, vc = x + 0.5 * h * vb, v + 0.5 * h * a2
            a3 = acceleration(system, xc, vc, f1, p)
            xd, vd = x + h * vc, v + h * a3
            a4 = acceleration(system, xd, vd, f2, p)
            x = x + (h / 6.0) * (v + 2.0 * vb + 2.0 * vc + vd)
            v = v + (h / 6.0) * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
        if wrap:  # the same multiple of 2 pi off both: sin is periodic, precision kept
            x = x - 2 * np.pi * np.round(x[0] / (2 * np.pi))
        dx, dv = x[1] - x[0], v[1] - v[0]
        d = np.sqrt(dx * dx + dv * dv)
        logs[period] = np.log(d / D0)
        x[1] = x[0] + dx * (D0 / d)
        v[1] = v[0] + dv * (D0 / d)
        k = period - (n_total - strobe.shape[0])
        if k >= 0:
            strobe[k, 0], strobe[k, 1] = x[0], v[0]

    errstate.__exit__(None, None, None)
    logs[:, ~np.all(np.isfinite(logs), axis=0)] = np.nan
    measured = logs[n_transient:]
    half = n_measure // 2
    lam = measured.sum(axis=0) / (n_measure * interval)
    lam_first = measured[:half].sum(axis=0) / (half * interval)
    lam_second = measured[half:].sum(axis=0) / ((n_measure - half) * interval)
    m = np.minimum(np.ceil(DATASET_WINDOW / interval).astype(int), n_total)
    ftle = np.cumsum(logs, axis=0)[m - 1, np.arange(n)] / (m * interval)
    period_found = strobe_period(strobe, wrap) if forcing.periodic else np.full(n, -1)
    return Result(
        lam,
        lam_first,
        lam_second,
        ftle,
        period_found,
        interval,
        h,
        {"final": strobe[-1], "wrap": wrap},
    )


def strobe_period(s: np.ndarray, wrap: bool) -> np.ndarray:
    """Smallest p <= MAX_PERIOD with s_{k+p} == s_k (to STROBE_TOL) for all k; 0 if none."""
    n = s.shape[2]
    out = np.zeros(n, dtype=int)
    for p in range(MAX_PERIOD, 0, -1):
        diff = s[p:] - s[:-p]
        if wrap:
            diff[:, 0] = (diff[:, 0] + np.pi) % (2 * np.pi) - np.pi
        ok = np.abs(diff).max(axis=(0, 1)) < STROBE_TOL
        out[ok] = p
    return out


# --------------------------------------------------------------------------- helpers


def classify(lam: np.ndarray) -> np.ndarray:
    return np.select(
        [np.isnan(lam), lam > LAMBDA_TOL, lam < -LAMBDA_TOL],
        ["diverged", "chaotic", "periodic"],
        "marginal",
    )


def symbol(lam: np.ndarray, period: np.ndarray, final: np.ndarray, wrap: bool) -> str:
    """One character for a setting run from several initial states (final: (2, n_ic) states).

    C: every initial state chaotic; c: some chaotic; q: none chaotic, some
    marginal; x: some run diverged (step too large); 1-9: every one periodic
    with that stroboscopic period; b: every one period 1 but two different
    period-1 responses coexist; p: a longer or undetected period; m: periodic
    attractors of different periods coexist.
    """
    if np.any(np.isnan(lam)):
        return "x"
    if np.all(lam > LAMBDA_TOL):
        return "C"
    if np.any(lam > LAMBDA_TOL):
        return "c"
    if np.any(lam >= -LAMBDA_TOL):
        return "q"
    found = set(int(q) for q in period)
    if len(found) > 1:
        return "m"
    q = found.pop()
    if q == 1:
        diff = final[:, :, None] - final[:, None, :]
        if wrap:
            diff[0] = (diff[0] + np.pi) % (2 * np.pi) - np.pi
        if np.abs(diff).max() > 100 * STROBE_TOL:
            return "b"
    return str(q) if 0 < q <= 9 else "p"


def markdown(header: list[str], rows: list[list]) -> str:
    def cell(val):
        if isinstance(val, float):
            return f"{val:.4g}"
        return str(val)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_range(val) -> str:
    if isinstance(val, tuple):
        return f"[{val[0]:g}, {val[1]:g}]"
    return f"{val:g}"


def draw(rng: np.random.Generator, spec: dict, n: int) -> dict[str, np.ndarray]:
    """Uniform draws of a spec's parameters (a number fixed, a tuple a range), in sorted order."""
    out = {}
    for key in sorted(spec):
        val = spec[key]
        out[key] = rng.uniform(*val, size=n) if isinstance(val, tuple) else np.full(n, float(val))
    return out


@dataclass
class Budget:
    """Run lengths in renormalisation intervals and the step."""

    transient: int
    measure: int
    dt: float


SYSTEM_KEYS = {
    "duffing": ("eta", "alpha", "beta"),
    "van-der-pol": ("mu",),
    "pendulum": ("eta",),
    "linear": ("eta",),
}


def take(r: Result, sl: slice) -> Result:
    """The trajectories `sl` of a result."""
    return Result(
        r.lam[sl],
        r.lam_first[sl],
        r.lam_second[sl],
        r.ftle_window[sl],
        r.period[sl],
        r.interval[sl],
        r.dt[sl],
    )


def run_draws(
    system: str, specs: list[tuple[dict, dict | None, int]], n: int, budget: Budget
) -> list[tuple[Result, Result]]:
    """n random draws from each (spec, random_forcing, seed), all of one system and of one kind
    of forcing (all cosine or all random), run together at dt and at dt/2."""
    params: dict[str, list] = {k: [] for k in SYSTEM_KEYS[system]}
    x0, v0, parts = [], [], []
    for spec, rf, seed in specs:
        rng = np.random.default_rng(seed)
        d = draw(rng, spec, n)
        for k in params:
            params[k].append(d[k])
        x0.append(d["x0"])
        v0.append(d["v0"])
        if rf is None:
            parts.append(Forcing.cosine(d["F0"], d["omega"]))
        else:
            parts.append(Forcing.random(rng, n, **rf))
    forcing = Forcing(
        *(
            np.concatenate([getattr(f, a) for f in parts], axis=1)
            for a in ("amplitude", "omega", "phase")
        ),
        parts[0].periodic,
    )
    cat = {k: np.concatenate(v) for k, v in params.items()}
    runs = [
        lyapunov(
            system,
            cat,
            forcing,
            np.concatenate(x0),
            np.concatenate(v0),
            budget.transient,
            budget.measure,
            dt,
            np.random.default_rng(specs[0][2] + 1),
        )
        for dt in (budget.dt, budget.dt / 2)
    ]
    return [tuple(take(r, slice(i * n, (i + 1) * n)) for r in runs) for i in range(len(specs))]


def draws_summary(
    name: str, spec: dict, n: int, a: Result, b: Result, random_forcing: dict | None = None
) -> list:
    """One row: the draws' classes, exponent statistics and the step and window checks."""
    cls = classify(a.lam)
    chaotic = cls == "chaotic"
    agree = np.mean(classify(b.lam) == cls)
    med = float(np.nanmedian(a.lam))
    nonchaotic = (cls == "periodic") | (cls == "marginal")
    step_change = (
        float(np.max(np.abs(a.lam - b.lam)[nonchaotic])) if nonchaotic.any() else float("nan")
    )
    diverged = int(np.sum(cls == "diverged") + np.sum(classify(b.lam) == "diverged"))
    periods = a.period[(a.period > 0) & nonchaotic]
    ranges = ", ".join(f"{k} {fmt_range(v)}" for k, v in spec.items())
    if random_forcing:
        ranges += (
            f", random forcing K={random_forcing['K']},"
            f" omega_k {fmt_range(random_forcing['omega'])},"
            f" sum A_k {fmt_range(random_forcing['amplitude_sum'])}"
        )
    period_text = (
        "-"
        if a.period[0] < 0
        else " ".join(f"P{p}:{int(np.sum(periods == p))}" for p in np.unique(periods))
        + f" none:{int(np.sum((a.period == 0) & nonchaotic))}"
    ) + (f" (diverged at dt or dt/2: {diverged})" if diverged else "")
    return [
        name,
        ranges,
        n,
        f"{np.mean(chaotic):.2f}",
        f"{np.mean(cls == 'marginal'):.2f}",
        f"{np.mean(cls == 'periodic'):.2f}",
        f"{med:+.4f}",
        f"{np.nanmedian(b.lam):+.4f}",
        (f"{1 / med:.1f}" if med > LAMBDA_TOL else "-"),
        f"{np.nanmin(a.lam):+.3f} / {np.nanmax(a.lam):+.3f}",
        f"{np.nanmedian(a.change):.1e}",
        f"{step_change:.1e}",
        f"{agree:.2f}",
        f"{np.nanmedian(a.ftle_window):+.3f}",
        period_text,
    ]


DRAWS_HEADER = [
    "spec",
    "ranges (uniform)",
    "draws",
    "chaotic",
    "marginal",
    "periodic",
    "median lambda",
    "median lambda (dt/2)",
    "Lyapunov time",
    "min / max lambda",
    "median half-window change",
    "max |dlambda| dt vs dt/2 (non-chaotic)",
    "class agreement dt vs dt/2",
    "median FTLE over [0, 50]",
    "periods (non-chaotic)",
]


# --------------------------------------------------------------------------- experiments


def validation(budget: Budget) -> str:
    """x'' + eta x' + x = 0: the largest exponent is -eta/2 (underdamped)."""
    etas = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 1.5])
    n = etas.size
    rows = []
    runs = [
        lyapunov(
            "linear",
            {"eta": etas},
            Forcing.none(n),
            np.ones(n),
            np.zeros(n),
            budget.transient,
            budget.measure,
            dt,
            np.random.default_rng(0),
        )
        for dt in (budget.dt, budget.dt / 2)
    ]
    for i, eta in enumerate(etas):
        exact = -eta / 2
        rows.append(
            [
                f"{eta:g}",
                f"{exact:+.4f}",
                f"{runs[0].lam[i]:+.5f}",
                f"{runs[1].lam[i]:+.5f}",
                f"{abs(runs[0].lam[i] / exact - 1):.1e}",
                f"{runs[0].change[i]:.1e}",
            ]
        )
    return markdown(
        ["eta", "exact -eta/2", "lambda (dt)", "lambda (dt/2)", "rel. error", "half-window change"],
        rows,
    )


def pendulum_check(budget: Budget, seed: int) -> str:
    """The classic chaotic pendulum (eta 0.5, omega 2/3, F0 1.15, 1.5) and two periodic ones."""
    rng = np.random.default_rng(seed)
    F0s, n_ic = np.array([1.15, 1.5, 0.9, 1.35]), 8
    F0 = np.repeat(F0s, n_ic)
    m = F0.size
    x0, v0 = rng.uniform(-1, 1, m), rng.uniform(-1, 1, m)
    res = [
        lyapunov(
            "pendulum",
            {"eta": np.full(m, 0.5)},
            Forcing.cosine(F0, np.full(m, 2 / 3)),
            x0,
            v0,
            budget.transient,
            budget.measure,
            dt,
            np.random.default_rng(seed),
        )
        for dt in (budget.dt, budget.dt / 2)
    ]
    rows = []
    for i, f in enumerate(F0s):
        sl = slice(i * n_ic, (i + 1) * n_ic)
        lam, lam2 = res[0].lam[sl], res[1].lam[sl]
        rows.append(
            [
                f"{f:g}",
                n_ic,
                f"{np.median(lam):+.4f}",
                f"{np.median(lam2):+.4f}",
                f"{lam.min():+.3f} / {lam.max():+.3f}",
                f"{np.median(res[0].change[sl]):.1e}",
                " ".join(str(p) for p in res[0].period[sl]),
            ]
        )
    return markdown(
        [
            "F0 (eta 0.5, omega 2/3)",
            "initial states",
            "median lambda",
            "median lambda (dt/2)",
            "min / max",
            "median half-window change",
            "periods (0: none)",
        ],
        rows,
    )


def scan(
    system: str,
    fixed: dict,
    rows_spec: list[dict],
    F0s: np.ndarray,
    budget: Budget,
    n_ic: int,
    seed: int,
) -> tuple[str, dict]:
    """A map: one line per row setting, one character (`symbol`) per F0, n_ic initial states."""
    rng = np.random.default_rng(seed)
    settings = [({**fixed, **r}, F0) for r in rows_spec for F0 in F0s]
    cols = {
        key: np.repeat(np.array([s[key] for s, _ in settings], float), n_ic)
        for key in settings[0][0]
    }
    cols["F0"] = np.repeat(np.array([F0 for _, F0 in settings]), n_ic)
    m = cols["F0"].size
    x0, v0 = rng.uniform(-1, 1, m), rng.uniform(-1, 1, m)
    params = {k: cols[k] for k in SYSTEM_KEYS[system]}
    res = lyapunov(
        system,
        params,
        Forcing.cosine(cols["F0"], cols["omega"]),
        x0,
        v0,
        budget.transient,
        budget.measure,
        budget.dt,
        rng,
    )
    shape = (len(rows_spec), len(F0s), n_ic)
    lam, per = res.lam.reshape(shape), res.period.reshape(shape)
    final = res.extra["final"].reshape(2, *shape)
    labels = [", ".join(f"{k} {v:g}" for k, v in r.items()) for r in rows_spec]
    width = max(len(t) for t in labels)
    ruler = "".join("|" if j % 5 == 0 else "." for j in range(len(F0s)))
    lines = [f"{'F0 = ' + f'{F0s[0]:g} .. {F0s[-1]:g} step {F0s[1] - F0s[0]:g}':<{width}}  {ruler}"]
    for i, label in enumerate(labels):
        marks = "".join(
            symbol(lam[i, j], per[i, j], final[:, i, j], res.extra["wrap"]) for j in range(len(F0s))
        )
        lines.append(f"{label:<{width}}  {marks}  chaotic {np.mean(lam[i] > LAMBDA_TOL):.2f}")
    return "\n".join(["```", *lines, "```"]), {
        "lam": lam,
        "period": per,
        "change": res.change.reshape(shape),
    }


# --------------------------------------------------------------------------- proposals

DUFFING_CHAOS = {
    "eta": (0.28, 0.32),
    "alpha": -1.0,
    "beta": 1.0,
    "F0": (0.42, 0.48),
    "omega": (1.21, 1.25),
    "x0": (-1.0, 1.0),
    "v0": (-1.0, 1.0),
}
DUFFING_CHAOS_NARROW = {**DUFFING_CHAOS, "eta": (0.28, 0.30), "omega": (1.215, 1.235)}
DUFFING_TRAIN = {
    "eta": (0.1, 0.5),
    "alpha": 1.0,
    "beta": (0.1, 1.0),
    "F0": (0.0, 1.0),
    "omega": (0.5, 2.0),
    "x0": (-1.0, 1.0),
    "v0": (-1.0, 1.0),
}
DUFFING_TEST_OOD = {**DUFFING_TRAIN, "F0": (1.0, 1.5)}  # forcing above the training range
DUFFING_WIDE = {
    "eta": (0.05, 0.5),
    "alpha": 1.0,
    "beta": (0.1, 2.0),
    "F0": (0.0, 2.0),
    "omega": (0.5, 2.0),
    "x0": (-1.0, 1.0),
    "v0": (-1.0, 1.0),
}
VAN_DER_POL_TRAIN = {
    "mu": (0.5, 2.0),
    "F0": (0.0, 1.0),
    "omega": (0.5, 2.0),
    "x0": (-1.0, 1.0),
    "v0": (-1.0, 1.0),
}
PENDULUM_TRAIN = {
    "eta": (0.1, 0.5),
    "F0": (0.0, 0.5),
    "omega": (0.5, 2.0),
    "x0": (-1.0, 1.0),
    "v0": (-1.0, 1.0),
}
PENDULUM_HIGH = {
    "eta": (0.1, 0.5),
    "F0": (0.0, 1.0),
    "omega": (1.0, 2.0),
    "x0": (-1.0, 1.0),
    "v0": (-1.0, 1.0),
}
PENDULUM_LOW = {
    "eta": (0.1, 0.5),
    "F0": (0.5, 1.5),
    "omega": (0.5, 0.8),
    "x0": (-1.0, 1.0),
    "v0": (-1.0, 1.0),
}
RANDOM_FORCING = {"K": 3, "omega": (0.3, 2.5), "amplitude_sum": (0.0, 1.0)}
RANDOM_FORCING_HALF = {"K": 3, "omega": (0.3, 2.5), "amplitude_sum": (0.0, 0.5)}
RANDOM_FORCING_2 = {"K": 3, "omega": (0.3, 2.5), "amplitude_sum": (0.0, 2.0)}
NO_COSINE = {"F0": 0.0, "omega": 1.0}  # the cosine off when the random family drives

LEGEND = (
    "Maps: one line per setting, one character per F0 (several initial states in [-1, 1]^2 "
    "each): C every initial state chaotic, c some chaotic, q none chaotic but some marginal "
    "(|lambda| <= 0.01: quasi-periodic or near a bifurcation), x diverged, 1-9 periodic with that "
    "stroboscopic period, b two different period-1 responses coexist, m periodic responses "
    "of different periods coexist, p periodic with a period > 9 or not found. "
    "The share after each line: chaotic runs of that line."
)


def grid(lo: float, hi: float, step: float) -> np.ndarray:
    return np.round(np.arange(lo, hi + step / 2, step), 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--draws", type=int, default=64, help="random draws per proposed spec (default 64)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short runs and coarse scans (seconds; rough)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    quick, seed = args.quick, args.seed
    draws = min(args.draws, 16) if quick else args.draws
    # run lengths in renormalisation intervals (forcing periods) and the largest RK4 step
    check = Budget(30, 60, 0.1) if quick else Budget(200, 400, 0.1)
    long = Budget(20, 40, 0.1) if quick else Budget(100, 300, 0.1)
    coarse = Budget(20, 40, 0.1) if quick else Budget(100, 200, 0.1)
    thin = 4 if quick else 1  # every thin-th F0 of the scans
    ics = 1 if quick else 3  # initial states per scanned setting

    def elapsed() -> str:
        return f"(elapsed {time.perf_counter() - start:.0f} s)\n"

    def out(text: str = "") -> None:
        print(text, flush=True)

    def draws_table(rows: list[tuple]) -> str:
        """Rows (name, system, spec, random forcing or None), batched by system and forcing kind."""
        results: dict[int, tuple[Result, Result]] = {}
        groups: dict[tuple, list[int]] = {}
        for i, (_, system, _, rf) in enumerate(rows):
            groups.setdefault((system, rf is None), []).append(i)
        for (system, _), idx in groups.items():
            specs = [(rows[i][2], rows[i][3], seed + 100 * (i + 1)) for i in idx]
            for i, res in zip(idx, run_draws(system, specs, draws, long), strict=True):
                results[i] = res
        lines = []
        for i, (name, _, spec, rf) in enumerate(rows):
            shown = {k: v for k, v in spec.items() if not (rf and k in NO_COSINE)}
            lines.append(draws_summary(name, shown, draws, *results[i], rf))
        return markdown(DRAWS_HEADER, lines)

    out("# Regimes of the driven nonlinear oscillators\n")
    out("command: `" + " ".join(shlex.quote(a) for a in ["python", *sys.argv]) + "`\n")
    out(
        f"numpy {np.__version__}. Fixed-step RK4, step <= {long.dt} (the largest forcing period "
        f"of a batch over a whole number of steps); tables of draws and checks repeated at half "
        f"the step. "
        f"Runs: draws {long.transient} transient + {long.measure} measured forcing periods, "
        f"checks {check.transient} + {check.measure}, scans {coarse.transient} + {coarse.measure}. "
        f"Classes: chaotic lambda > {LAMBDA_TOL}, periodic lambda < -{LAMBDA_TOL}, marginal "
        f"between "
        f"(lambda per time unit; Lyapunov time 1/lambda). FTLE over [0, 50]: the exponent over the "
        f"first {DATASET_WINDOW:g} time units from the drawn initial state (the span of a "
        f"dataset of "
        f"1000 steps of 0.05), transient included.\n"
    )
    out(LEGEND + "\n")

    out("## 1. Validation: x'' + eta x' + x = 0 must give -eta/2\n")
    out(validation(check))
    out(elapsed())
    out("## 2. Check: the classic chaotic pendulum, eta 0.5, omega 2/3\n")
    out(pendulum_check(check, seed))
    out(elapsed())

    out("## 3. Double-well Duffing (alpha -1, beta 1): chaos vs period\n")
    rows = [{"eta": e, "omega": w} for e in (0.25, 0.3, 0.35) for w in grid(1.2, 1.5, 0.05)]
    out(
        scan(
            "duffing",
            {"alpha": -1.0, "beta": 1.0},
            rows,
            grid(0.2, 0.6, 0.01)[::thin],
            coarse,
            ics + 1,
            seed,
        )[0]
    )
    out("Zoom on the proposed duffing-chaos box:\n")
    rows = [{"eta": e, "omega": w} for e in (0.28, 0.3, 0.32) for w in grid(1.2, 1.26, 0.01)]
    out(
        scan(
            "duffing",
            {"alpha": -1.0, "beta": 1.0},
            rows,
            grid(0.40, 0.50, 0.005)[::thin],
            coarse,
            ics + 1,
            seed + 1,
        )[0]
    )
    out(
        draws_table(
            [
                ("duffing-chaos", "duffing", DUFFING_CHAOS, None),
                ("duffing-chaos (narrower)", "duffing", DUFFING_CHAOS_NARROW, None),
            ]
        )
    )
    out(elapsed())

    out("## 4. Hardening Duffing (alpha 1): duffing-train / duffing-test / duffing-test-ood\n")
    rows = [
        {"beta": bt, "eta": e, "omega": w}
        for bt in (0.1, 1.0, 2.0)
        for e in (0.05, 0.2)
        for w in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
    ]
    out(
        scan("duffing", {"alpha": 1.0}, rows, grid(0.0, 2.0, 0.1)[::thin], coarse, ics, seed + 2)[0]
    )
    out(
        draws_table(
            [
                ("duffing-train", "duffing", DUFFING_TRAIN, None),
                ("duffing (wider)", "duffing", DUFFING_WIDE, None),
                (
                    "duffing-train, random forcing",
                    "duffing",
                    {**DUFFING_TRAIN, **NO_COSINE},
                    RANDOM_FORCING,
                ),
                (
                    "duffing (wider), random forcing",
                    "duffing",
                    {**DUFFING_WIDE, **NO_COSINE},
                    RANDOM_FORCING_2,
                ),
                ("duffing-test-ood", "duffing", DUFFING_TEST_OOD, None),  # last: seeds kept
            ]
        )
    )
    out(elapsed())

    out("## 5. Van der Pol: van-der-pol-train / van-der-pol-test\n")
    rows = [
        {"mu": m, "omega": w}
        for m in (0.5, 1.0, 2.0, 3.0)
        for w in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5)
    ]
    vdp_ics = max(ics - 1, 1)  # its step is halved at mu 3: fewer initial states
    out(scan("van-der-pol", {}, rows, grid(0.0, 3.0, 0.15)[::thin], coarse, vdp_ics, seed + 3)[0])
    out("Zoom where locking tongues overlap (the only chaotic runs found):\n")
    rows = [{"mu": m, "omega": w} for m in (2.0, 3.0) for w in grid(1.3, 1.45, 0.05)]
    out(
        scan(
            "van-der-pol", {}, rows, grid(1.8, 3.0, 0.04)[::thin], coarse, max(ics - 1, 1), seed + 4
        )[0]
    )
    out(
        draws_table(
            [
                ("van-der-pol-train", "van-der-pol", VAN_DER_POL_TRAIN, None),
                (
                    "van-der-pol-train, random forcing",
                    "van-der-pol",
                    {**VAN_DER_POL_TRAIN, **NO_COSINE},
                    RANDOM_FORCING,
                ),
            ]
        )
    )
    out(elapsed())

    out("## 6. Pendulum: pendulum-train / pendulum-test\n")
    rows = [
        {"eta": e, "omega": w}
        for e in (0.1, 0.25, 0.5)
        for w in (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)
    ]
    out(scan("pendulum", {}, rows, grid(0.0, 1.5, 0.075)[::thin], coarse, ics, seed + 5)[0])
    out(
        draws_table(
            [
                ("pendulum-train", "pendulum", PENDULUM_TRAIN, None),
                ("pendulum (omega >= 1)", "pendulum", PENDULUM_HIGH, None),
                ("pendulum (low omega, strong: avoid)", "pendulum", PENDULUM_LOW, None),
                (
                    "pendulum-train, random forcing",
                    "pendulum",
                    {**PENDULUM_TRAIN, **NO_COSINE},
                    RANDOM_FORCING,
                ),
                (
                    "pendulum-train, weaker random forcing",
                    "pendulum",
                    {**PENDULUM_TRAIN, **NO_COSINE},
                    RANDOM_FORCING_HALF,
                ),
            ]
        )
    )
    out(elapsed())
    out(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
