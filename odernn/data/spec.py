"""Dataset specifications: a TOML file that says what to simulate.

A spec names a system, how many trajectories, the time grid, the seed, the
integrator, and for every sampled parameter a fixed number, a uniform range
``[low, high]`` or a few values to draw from (``{ values = [a, b] }``).
``docs/datasets.md`` documents every key; the built-in specs live in ``datasets/`` and
are addressed by name (``odernn simulate train``).

Example (``datasets/train.toml``)::

    system = "oscillator"
    n = 256
    seed = 1
    dt = 0.05
    n_steps = 1000

    [integrator]
    name = "scipy"

    [parameters]
    eta = [0.05, 0.5]
    x0 = [-1.0, 1.0]
    v0 = [-1.0, 1.0]

    [forcing]
    family = "cosine"
    F0 = [0.0, 1.0]
    omega = [0.5, 2.0]
    phase = 0.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from odernn.checks import (
    check_seed,
    did_you_mean,
    is_real,
    is_whole,
    parse_toml,
    path_of,
    read_small_text,
    toml_string,
)
from odernn.data.integrators import INTEGRATORS, MIN_RTOL, SCIPY_METHODS
from odernn.data.systems import SYSTEMS, get_system
from odernn.errors import SpecError

SERIES = "sine"
"""The one system that is a univariate series, not an oscillator of :data:`SYSTEMS`."""
FORCING_FAMILIES = ("none", "cosine", "random")
INTEGRATOR_NAMES = tuple(name for name, entry in INTEGRATORS.items() if entry.in_specs)
"""The integrators a spec may name (the table's ``in_specs`` entries)."""
DTYPES = ("float64", "float32")
MAX_TRAJECTORIES = 10**8
MAX_STEPS = 10**8
MAX_VALUES = 10**4  # the most values a parameter's { values = [...] } may list

TOP_KEYS = {"name", "description", "system", "n", "seed", "dt", "t_end", "n_steps", "dtype",
            "compression", "integrator", "parameters", "forcing", "series"}
_INTEGRATOR_KEYS = {"name", "method", "rtol", "atol"}
INITIAL = ("x0", "v0")
"""The initial state, sampled like a parameter."""
FORCING_KEYS = {
    "none": {"family"},
    "cosine": {"family", "F0", "omega", "phase"},
    "random": {"family", "K", "omega", "amplitude_sum", "phase"},
}
_SERIES_KEYS = {"frequency", "noise"}


@dataclass(frozen=True)
class Range:
    """A parameter: uniform on ``[low, high]``; ``low == high`` is a fixed value; ``values``
    (sorted, distinct) makes it a draw from those values alone, each equally likely, with
    ``low``/``high`` their extremes (a training set of a few drives)."""

    low: float
    high: float
    values: tuple[float, ...] | None = None

    @classmethod
    def of_values(cls, values: Sequence[float]) -> Range:
        ordered = tuple(sorted(set(values)))
        return cls(ordered[0], ordered[-1], ordered if len(ordered) > 1 else None)

    @property
    def fixed(self) -> bool:
        return self.low == self.high

    def draw(self, u: np.ndarray | float) -> np.ndarray | float:
        """The value for uniform numbers ``u`` in [0, 1): one draw whatever the form."""
        if self.values is None:
            return self.low + (self.high - self.low) * u
        index = np.minimum((np.asarray(u) * len(self.values)).astype(int), len(self.values) - 1)
        picked = np.asarray(self.values)[index]
        return picked if picked.ndim else float(picked)

    def __str__(self) -> str:
        if self.values is not None:
            return "{" + ", ".join(f"{v:g}" for v in self.values) + "}"
        return f"{self.low:g}" if self.fixed else f"[{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Spec:
    """A validated dataset specification. Build it with :func:`load_spec` or :func:`parse_spec`."""

    name: str
    system: str
    n: int
    seed: int
    dt: float
    n_steps: int
    integrator: dict[str, Any]
    parameters: dict[str, Range] = field(default_factory=dict)
    forcing: str = "none"
    forcing_parameters: dict[str, Range] = field(default_factory=dict)
    K: int = 0
    series: dict[str, float] = field(default_factory=dict)
    dtype: str = "float64"
    compression: str | None = None
    description: str = ""
    text: str = ""
    source: str = "<spec>"

    @property
    def t_end(self) -> float:
        return self.dt * (self.n_steps - 1)

    def to_toml(self) -> str:
        """The effective spec as TOML (overrides applied): parsing it gives this spec back."""

        def value(v: Any) -> str:
            if isinstance(v, Range) and v.values is not None:
                return "{ values = [" + ", ".join(repr(x) for x in v.values) + "] }"
            if isinstance(v, Range):
                return f"{v.low!r}" if v.fixed else f"[{v.low!r}, {v.high!r}]"
            return toml_string(v) if isinstance(v, str) else repr(v)

        lines = [f"{k} = {value(getattr(self, k))}"
                 for k in ("name", "description", "system", "n", "seed", "dt", "n_steps", "dtype")]
        lines.append(f"compression = {value(self.compression or 'none')}")
        lines += ["", "[integrator]", *(f"{k} = {value(v)}" for k, v in self.integrator.items())]
        if self.system != SERIES:
            params = self.parameters.items()
            lines += ["", "[parameters]", *(f"{k} = {value(v)}" for k, v in params)]
            lines += ["", "[forcing]", f"family = {value(self.forcing)}"]
            if self.forcing == "random":
                lines.append(f"K = {self.K}")
            lines += [f"{k} = {value(v)}" for k, v in self.forcing_parameters.items()]
        else:
            lines += ["", "[series]", *(f"{k} = {value(v)}" for k, v in self.series.items())]
        return "\n".join(lines) + "\n"

    def with_overrides(self, **changes: Any) -> Spec:
        """A copy with some keys changed (``None`` leaves one as it is), parsed and validated
        again as ``odernn simulate --set`` does: any key of a spec's text by its name (``n``,
        ``dt``, a parameter such as ``eta``, ``family``, the integrator's name as
        ``integrator`` and its options as ``rtol``, ...), and ``system``."""
        from odernn.data.spec_settings import with_settings  # it imports this module

        changes = {k: v for k, v in changes.items() if v is not None}
        return with_settings(self, system=changes.pop("system", None), sets=changes,
                             via="with_overrides: ")


def builtin_names() -> list[str]:
    """Names of the specs shipped in ``datasets/``."""
    files = resources.files("odernn.datasets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".toml"))


def load_spec(name_or_path: str | Path) -> Spec:
    """Load a spec from a path, or a built-in one by name (``train``, ``test``, ...)."""
    path = path_of(name_or_path, "a spec (a built-in name or a .toml path)")
    if path.suffix == ".toml" or path.exists() or path.parent != Path("."):
        text = read_small_text(path, "spec")
        return parse_spec(text, source=str(path), default_name=path.stem)
    names = builtin_names()
    if str(name_or_path) not in names:
        raise SpecError(
            f"unknown dataset spec {str(name_or_path)!r}{did_you_mean(str(name_or_path), names)}; "
            f"give a .toml path or one of: {', '.join(names)}"
        )
    text = resources.files("odernn.datasets").joinpath(f"{name_or_path}.toml").read_text("utf-8")
    return parse_spec(
        text, source=f"built-in spec {name_or_path!r}", default_name=str(name_or_path)
    )


def parse_spec(text: str, *, source: str = "<spec>", default_name: str = "dataset") -> Spec:
    """Parse and validate spec text; every problem raises :class:`SpecError` naming the key."""
    raw = parse_toml(text.removeprefix("\ufeff"), source)
    _check_keys(raw, TOP_KEYS, source)
    system = _choice(raw.get("system", "oscillator"), (*SYSTEMS, SERIES), "system", source)
    n_steps = _integer(raw, "n_steps", source, minimum=2)
    dt = _dt(raw, n_steps, source)
    spec = Spec(
        name=_text(raw, "name", default_name, source),
        description=_text(raw, "description", "", source),
        system=system,
        n=_integer(raw, "n", source, minimum=1),
        seed=_integer(raw, "seed", source, minimum=0),
        dt=dt,
        n_steps=n_steps,
        integrator=_integrator(_table(raw, "integrator", source), source,
                               "exact" if system == SERIES else "scipy"),
        dtype=_choice(raw.get("dtype", "float64"), DTYPES, "dtype", source),
        compression=_compression(raw.get("compression"), source),
        text=text,
        source=source,
    )
    other = ("series",) if system != SERIES else ("parameters", "forcing")
    for section in other:
        if section in raw:
            raise SpecError(f"{source}: section [{section}] does not apply to system "
                            f"{system!r}")
    if system != SERIES:
        spec = replace(spec, **_oscillator_fields(raw, system, source))
    else:
        series = _table(raw, "series", source)
        _check_keys(series, _SERIES_KEYS, f"{source} [series]")
        values = {
            k: _number(series.get(k, d), k, source) for k, d in (("frequency", 1.0), ("noise", 0.0))
        }
        if values["noise"] < 0:
            raise SpecError(f"{source}: series.noise must be >= 0, got {values['noise']:g}")
        spec = replace(spec, series=values)
    _check_numbers(spec)
    return spec


def _oscillator_fields(raw: dict[str, Any], system: str, source: str) -> dict[str, Any]:
    entry = get_system(system)
    names = (*entry.names, *INITIAL)
    params = _table(raw, "parameters", source)
    _check_keys(params, set(names), f"{source} [parameters] (system {system!r})")
    missing = [k for k in names if k not in params]
    if missing:
        raise SpecError(
            f"{source}: [parameters] of system {system!r} needs {', '.join(missing)} (a number "
            "or [low, high])"
        )
    parameters = {k: _range(params[k], k, source) for k in names}
    for p in entry.parameters:
        r = parameters[p.name]
        if r.low < p.low or r.high > p.high:
            bound = f">= {p.low:g}" if r.low < p.low else f"<= {p.high:g}"
            raise SpecError(f"{source}: {p.name} must be {bound} ({p.meaning}; valid range "
                            f"{p.range}), got {r}")

    forcing = _table(raw, "forcing", source)
    family = _choice(forcing.get("family", "none"), FORCING_FAMILIES, "forcing.family", source)
    _check_keys(forcing, FORCING_KEYS[family], f"{source} [forcing] (family {family!r})")
    fp: dict[str, Range] = {}
    K = 0
    if family == "cosine":
        fp = {
            k: _range(forcing.get(k, d), f"forcing.{k}", source)
            for k, d in (("F0", 1.0), ("omega", 1.0), ("phase", 0.0))
        }
        K = 1
    elif family == "random":
        K = _integer(forcing, "K", source, minimum=1, default=3, where="forcing.K")
        fp = {
            "omega": _range(forcing.get("omega", [0.3, 2.5]), "forcing.omega", source),
            "amplitude_sum": _range(
                forcing.get("amplitude_sum", 1.0), "forcing.amplitude_sum", source
            ),
            "phase": _range(forcing.get("phase", [0.0, 2 * math.pi]), "forcing.phase", source),
        }
        if fp["amplitude_sum"].low < 0:
            raise SpecError(f"{source}: forcing.amplitude_sum must be >= 0")
    if "omega" in fp and fp["omega"].low < 0:
        raise SpecError(f"{source}: forcing.omega must be >= 0, got {fp['omega']}")
    return {"parameters": parameters, "forcing": family, "forcing_parameters": fp, "K": K}


def _check_numbers(spec: Spec) -> None:
    where = spec.source
    if not (spec.dt >= np.finfo(np.float64).tiny and math.isfinite(spec.t_end)):  # normal
        raise SpecError(f"{where}: dt must be > 0, a normal float (>= 2.2e-308: a smaller "
                        f"one loses digits), with dt * (n_steps - 1) finite, got {spec.dt}")
    if not 2 <= spec.n_steps <= MAX_STEPS:
        raise SpecError(f"{where}: n_steps must be in [2, {MAX_STEPS}], got {spec.n_steps}")
    if not 1 <= spec.n <= MAX_TRAJECTORIES:
        raise SpecError(f"{where}: n must be in [1, {MAX_TRAJECTORIES}], got {spec.n}")
    check_seed(spec.seed, f"{where}: seed")
    if spec.dtype not in DTYPES:
        raise SpecError(f"{where}: dtype must be one of {', '.join(DTYPES)}, got {spec.dtype!r}")
    if spec.system == SERIES and spec.integrator["name"] != "exact":
        raise SpecError(f"{where}: a sine series is sampled exactly; integrator must be 'exact'")
    if spec.system != SERIES and INTEGRATORS[spec.integrator["name"]].closed_form and \
            not get_system(spec.system).closed_form:
        raise SpecError(f"{where}: integrator {spec.integrator['name']!r} is a closed-form "
                        f"solution, which system {spec.system!r} does not have; use 'scipy' "
                        "(DOP853) or a fixed-step method")
    # its memory is checked where it is simulated (simulate.check_memory), after whatever
    # overrides a caller applies: a spec too large as written may be shrunk on the way


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise SpecError(
                f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}; allowed: "
                f"{', '.join(sorted(allowed))}"
            )


def _table(raw: dict[str, Any], key: str, source: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise SpecError(f"{source}: {key} must be a table ([{key}]), got {value!r}")
    return value


def _text(raw: dict[str, Any], key: str, default: str, source: str) -> str:
    if isinstance(value := raw.get(key, default), str):
        return value
    raise SpecError(f"{source}: {key} must be a string, got {value!r}")


def _choice(value: Any, allowed: tuple[str, ...], key: str, source: str) -> str:
    if not isinstance(value, str) or value not in allowed:  # an array's `in` is ambiguous
        raise SpecError(f"{source}: unknown {key} {value!r}{did_you_mean(str(value), allowed)}; "
                        f"allowed: {', '.join(allowed)}")
    return str(value)


def _number(value: Any, key: str, source: str) -> float:
    try:  # a Python int beyond float64 (10**400) overflows, as infinite
        number = float(value) if is_real(value) else math.nan
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(f"{source}: {key} must be a finite number, got {value!r}")
    return number


def _integer(raw: dict[str, Any], key: str, source: str, *, minimum: int,
             default: int | None = None, where: str | None = None) -> int:
    where = where or key
    if key not in raw and default is None:
        raise SpecError(f"{source}: missing required key {where!r}")
    value = raw.get(key, default)
    if not is_whole(value):
        raise SpecError(f"{source}: {where} must be an integer, got {value!r}")
    if value < minimum:
        raise SpecError(f"{source}: {where} must be >= {minimum}, got {value}")
    return int(value)


def _dt(raw: dict[str, Any], n_steps: int, source: str) -> float:
    if "dt" in raw and "t_end" in raw:
        raise SpecError(f"{source}: give either dt or t_end, not both")
    if "t_end" in raw:
        t_end = _number(raw["t_end"], "t_end", source)
        if t_end <= 0:
            raise SpecError(f"{source}: t_end must be > 0, got {t_end:g}")
        return t_end / (n_steps - 1)
    if "dt" not in raw:
        raise SpecError(f"{source}: missing required key 'dt' (or 't_end')")
    dt = _number(raw["dt"], "dt", source)
    if dt <= 0:
        raise SpecError(f"{source}: dt must be > 0, got {dt:g}")
    return dt


def _range(value: Any, key: str, source: str) -> Range:
    if isinstance(value, dict):
        listed = value.get("values")
        if set(value) != {"values"} or not isinstance(listed, list) or not listed:
            raise SpecError(f"{source}: {key} as a table must be {{ values = [a, b, ...] }} "
                            f"(a draw from those values), got {value!r}")
        if len(listed) > MAX_VALUES:
            raise SpecError(f"{source}: {key} lists {len(listed)} values; at most {MAX_VALUES}")
        return Range.of_values([_number(v, key, source) for v in listed])
    if isinstance(value, list):
        if len(value) != 2:
            raise SpecError(f"{source}: {key} must be a number, [low, high] or "
                            f"{{ values = [...] }}, got {value!r}")
        low, high = (_number(v, key, source) for v in value)
        if low > high:
            raise SpecError(f"{source}: {key} range has low > high: [{low:g}, {high:g}]")
        return Range(low, high)
    number = _number(value, key, source)
    return Range(number, number)


def _integrator(table: dict[str, Any], source: str, default: str = "scipy") -> dict[str, Any]:
    _check_keys(table, _INTEGRATOR_KEYS, f"{source} [integrator]")
    name = _choice(table.get("name", default), INTEGRATOR_NAMES, "integrator", source)
    out: dict[str, Any] = {"name": name}
    if name == "scipy":
        out["method"] = _choice(table.get("method", "DOP853"), SCIPY_METHODS,
                                "integrator.method", source)  # refused now, not at simulate
        for key, default, low in (("rtol", 1e-12, MIN_RTOL), ("atol", 1e-14, 0.0)):
            value = _number(table.get(key, default), f"integrator.{key}", source)
            if value <= 0 or value < low:  # SciPy would raise rtol to its floor, unrecorded
                floor = f" and at least SciPy's floor 100 eps = {low!r}" if low else ""
                raise SpecError(f"{source}: integrator.{key} must be > 0{floor}, got {value!r}")
            out[key] = value
    elif extra := ", ".join(sorted(table.keys() - {"name"})):
        raise SpecError(f"{source}: integrator {name!r} takes no options (got {extra})")
    return out


def _compression(value: Any, source: str) -> str | None:
    if value in (None, "none", False):
        return None
    if value != "gzip":
        raise SpecError(f"{source}: compression must be 'gzip' or 'none', got {value!r}")
    return "gzip"
