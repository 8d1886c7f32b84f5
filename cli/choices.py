"""The command line's choices as enums, built from the registries (help lists, completion).

Typer shows an enum's values in ``--help`` and completes them in the shell; a value outside
them is refused in one line with a "did you mean" (:func:`odernn.cli.app.main`). Every
table here is importable without torch, so ``odernn --help`` stays quick.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Any

from odernn.data.spec import DTYPES, INTEGRATOR_NAMES, builtin_names
from odernn.data.systems import EXTERNAL, SYSTEMS
from odernn.learn.families import DEVICES, FAMILIES, OPTIMIZERS, PRIOR_ALIASES, TARGETS


def choices(name: str, values: Iterable[str]) -> type[Enum]:
    """A string enum whose members are ``values`` (member name = value)."""
    return Enum(name, {v: v for v in values}, type=str)


Model = choices("Model", FAMILIES)
Target = choices("Target", TARGETS)
Optimizer = choices("Optimizer", OPTIMIZERS)
Device = choices("Device", DEVICES)
Integrator = choices("Integrator", INTEGRATOR_NAMES)
Dtype = choices("Dtype", DTYPES)
SystemName = choices("SystemName", SYSTEMS)
Prior = choices("Prior", [*SYSTEMS, *PRIOR_ALIASES])
ImportSystem = choices("ImportSystem", [*SYSTEMS, EXTERNAL])
# Spelled out here, since their modules import torch; tests/test_cli.py checks they match
# notes_examples.VARIANTS, probes.INITS, diagnostics.LOSSES and diagnostics.NORMS, and
# GRADIENT_MODELS probes.FAMILIES.
Preset = choices("Preset", ("sine", "noisy-sine"))
Init = choices("Init", ("gaussian", "uniform", "orthogonal"))
Loss = choices("Loss", ("final", "sum"))
Norm = choices("Norm", ("spectral", "frobenius"))
GRADIENT_MODELS = ("rnn", "lstm", "gru")
"""The fresh networks of ``odernn gradients`` (probes.FAMILIES), for completion."""


def plain(value: Any) -> Any:
    """An enum member's value; anything else as it is (None: not given)."""
    return value.value if isinstance(value, Enum) else value


def complete_spec(incomplete: str) -> list[str]:
    """Shell completion of a spec: the built-in names and the ``.toml`` files that begin with
    what is typed."""
    import glob

    return ([n for n in builtin_names() if n.startswith(incomplete)]
            + sorted(glob.glob(glob.escape(incomplete) + "*.toml")))


def complete_list(values: Iterable[str]) -> Any:
    """Shell completion of a comma-separated list of ``values``: the last item's."""
    def complete(incomplete: str) -> list[str]:
        done, _, last = incomplete.rpartition(",")
        head = f"{done}," if done else ""
        return [head + v for v in values if v.startswith(last) and v not in done.split(",")]
    return complete
