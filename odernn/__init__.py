"""odernn: recurrent neural network surrogates of the damped, driven oscillator.

The pipeline: a spec (:func:`load_spec`) is simulated (:func:`simulate` to an HDF5
file, :func:`simulate_trajectories` in memory) into trajectories
(:func:`read_trajectories`), a surrogate is trained on them (:func:`fit`) or loaded
(:func:`load_surrogate`), and :func:`evaluate` rolls surrogates and integrators out on
a test set for :func:`write_report`. The registries name what is built in:
``INTEGRATORS`` (name -> integrator), ``MODELS`` (family -> class), ``SPECS``
(built-in dataset specs). ``docs/api.md`` lists each with its signature.

Every name is imported on first use, so ``import odernn`` is quick and loads no torch.
"""

from __future__ import annotations

import importlib
import sys
import types as _stdlib_types  # not "types": odernn.types is a submodule
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "load_spec": ("odernn.spec", "load_spec"),
    "simulate": ("odernn.simulate", "simulate"),
    "simulate_trajectories": ("odernn.simulate", "simulate_trajectories"),
    "read_trajectories": ("odernn.store", "read_trajectories"),
    "Trajectories": ("odernn.trajectories", "Trajectories"),
    "fit": ("odernn.api", "fit"),
    "load_surrogate": ("odernn.api", "load_surrogate"),
    "evaluate": ("odernn.api", "evaluate"),
    "write_report": ("odernn.api", "write_report"),
    "INTEGRATORS": ("odernn.integrators", "INTEGRATORS"),
    "MODELS": ("odernn.models", "REGISTRY"),
    "SPECS": ("odernn.spec", "builtin_names"),
}
"""Public name -> (module, attribute): the API, re-exported lazily."""

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'odernn' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = getattr(importlib.import_module(module), attribute)
    if name == "SPECS":  # the built-in specs are files shipped with the package: their names
        value = tuple(value())
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


class _Root(_stdlib_types.ModuleType):
    """The package module: importing a submodule that shares a public name (``odernn.simulate``,
    ``odernn.evaluate``) does not hide the public function behind the module object."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PUBLIC and isinstance(value, _stdlib_types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Root
