"""A spec changed from the command line or by :meth:`Spec.with_overrides`: another system
(``--system``), any key set (``--set KEY=VALUE``, the integrator's name as ``integrator`` and
its options by their own names); the result is parsed and validated like any spec."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from odernn._compat import tomllib
from odernn.checks import did_you_mean, toml_string
from odernn.data.spec import (
    FORCING_FAMILIES,
    FORCING_KEYS,
    INITIAL,
    SERIES,
    TOP_KEYS,
    Spec,
    parse_spec,
)
from odernn.data.systems import get_system
from odernn.errors import SpecError

SET_SECTIONS = ("parameters", "forcing", "series")
"""The sections whose keys ``--set NAME=VALUE`` may change (besides the top-level keys)."""
INTEGRATOR_OPTIONS = ("method", "rtol", "atol")
"""The [integrator]'s options (scipy's), set by their own names."""


def with_settings(spec: Spec, *, system: str | None = None,
                  sets: dict[str, Any] | None = None, via: str = "--set ") -> Spec:
    """``spec`` for another system and/or with some keys set (``--system``, ``--set``), parsed
    and validated again. A key is looked up among the top-level keys, then the sections of
    :data:`SET_SECTIONS` (a parameter the new system declares is added to [parameters]), then
    the [integrator]'s (``integrator`` is its name, set before its options whatever the order);
    moving to another system drops the parameters the new one does not take. ``via`` opens
    the messages about a key (the command line's option, or the Python method)."""
    raw = tomllib.loads(spec.to_toml())
    if system is not None and system != raw["system"]:
        if system == SERIES or raw["system"] == SERIES:
            raise SpecError(f"{spec.source}: cannot turn system {raw['system']!r} into "
                            f"{system!r}; use a {system} spec")
        names = (*get_system(system).names, *INITIAL)
        raw["system"] = system
        raw["parameters"] = {k: v for k, v in raw.get("parameters", {}).items() if k in names}
    new_names = () if raw["system"] == SERIES else get_system(raw["system"]).names
    sets = dict(sorted((sets or {}).items(), key=lambda kv: kv[0] != "integrator"))
    family = sets.pop("family", None)
    if family is not None and (not isinstance(family, str) or family not in FORCING_FAMILIES):
        raise SpecError(f"{via}family: unknown forcing.family {family!r}"
                        f"{did_you_mean(str(family), FORCING_FAMILIES)}; allowed: "
                        f"{', '.join(FORCING_FAMILIES)}")
    if family is not None and family != raw.get("forcing", {}).get("family", "none"):
        raw["forcing"] = {}  # another family: the old one's keys go, as a system's do
    if family is not None:
        raw.setdefault("forcing", {})["family"] = family
    forcing_keys = FORCING_KEYS.get(raw.get("forcing", {}).get("family", "none"), set())
    if {"dt", "t_end"} <= sets.keys():  # as a spec file with both is refused
        raise SpecError(f"{via}dt and t_end both set the time grid; give one (the "
                        "other follows from n_steps)")
    for key, value in sets.items():  # the integrator's name first: another one resets its
        if key == "integrator":  # options (the same one keeps the spec's method, tolerances)
            if not isinstance(value, str) or value != raw.get("integrator", {}).get("name"):
                raw["integrator"] = {"name": value}
            continue
        if key in INTEGRATOR_OPTIONS:
            raw.setdefault("integrator", {})[key] = value
            continue
        if key in TOP_KEYS - set(SET_SECTIONS) - {"integrator", "system"}:
            raw[key] = value
            if key in ("dt", "t_end"):  # the grid's step, or its end: the other one goes
                raw.pop("t_end" if key == "dt" else "dt", None)
            continue
        section = next((name for name in SET_SECTIONS if key in raw.get(name, {})), None)
        if section is None and key in new_names:
            section = "parameters"
        if section is None and key in forcing_keys:  # a key of a family just set
            section = "forcing"
        if section is None:
            known = sorted({*TOP_KEYS, *new_names, *INITIAL, *INTEGRATOR_OPTIONS,
                            *(k for name in SET_SECTIONS for k in raw.get(name, {}))}
                           - {*SET_SECTIONS, "system"})
            raise SpecError(f"{via}{key}: no such key in spec {spec.name!r}"
                            f"{did_you_mean(key, known)}; settable: {', '.join(known)}")
        raw.setdefault(section, {})[key] = value
    text = _to_toml(raw, via)
    return parse_spec(text, source=spec.source, default_name=spec.name)


def _to_toml(raw: dict[str, Any], via: str) -> str:
    """A spec's plain data as TOML (numbers, strings, lists, one level of tables, inline
    tables in them: a range given by its ``{ values = [...] }``); numpy's numbers and tuples
    (from Python) as Python's numbers and lists."""
    def value(v: Any) -> str:
        if isinstance(v, str):
            return toml_string(v)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(u) for u in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(u)}" for k, u in v.items()) + " }"
        if isinstance(v, bool | np.bool_):
            return "true" if v else "false"
        if isinstance(v, numbers.Integral):
            return repr(int(v))
        if isinstance(v, numbers.Real):
            return repr(float(v))
        raise SpecError(f"{via.rstrip(': ')}: {v} is a {type(v).__name__}, not a value a spec "
                        "takes (numbers, strings, true or false, lists, tables)")  # a TOML date

    top = [f"{k} = {value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    tables = [f"\n[{k}]\n" + "\n".join(f"{kk} = {value(vv)}" for kk, vv in v.items())
              for k, v in raw.items() if isinstance(v, dict)]
    return "\n".join(top) + "\n" + "\n".join(tables) + "\n"
