"""odernn: recurrent neural network surrogates of the damped, driven oscillator.

The pipeline: a spec (:func:`load_spec`) is simulated (:func:`simulate` to an HDF5
file, :func:`simulate_trajectories` in memory) into trajectories
(:func:`read_trajectories`; another program's file: :func:`import_file` with
:class:`ImportOptions`), a surrogate is trained on them (:func:`fit`) or loaded
(:func:`load_surrogate`), and :func:`evaluate` rolls surrogates and integrators out on
a test set for :func:`write_report`; :func:`export_onnx` writes a surrogate's one-step
function for other programs. The registries name what is built in:
``INTEGRATORS`` (name -> integrator entry), ``MODELS`` (family -> class), ``SPECS``
(built-in dataset specs). ``docs/api.md`` lists each with its signature.

Every name is imported on first use, so ``import odernn`` is quick and loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "load_spec": ("odernn.data.spec", "load_spec"),
    "simulate": ("odernn.data.simulate", "simulate"),
    "simulate_trajectories": ("odernn.data.simulate", "simulate_trajectories"),
    "read_trajectories": ("odernn.data.store", "read_trajectories"),
    "import_file": ("odernn.data.importer", "import_file"),
    "ImportOptions": ("odernn.data.importer", "ImportOptions"),
    "Trajectories": ("odernn.data.trajectories", "Trajectories"),
    "fit": ("odernn.api", "fit"),
    "fit_seeds": ("odernn.api", "fit_seeds"),
    "load_surrogate": ("odernn.api", "load_surrogate"),
    "evaluate": ("odernn.api", "evaluate"),
    "export_onnx": ("odernn.api", "export_onnx"),
    "write_report": ("odernn.api", "write_report"),
    "INTEGRATORS": ("odernn.data.integrators", "INTEGRATORS"),
    "MODELS": ("odernn.learn.models", "REGISTRY"),
    "SPECS": ("odernn.data.spec", "builtin_names"),
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

