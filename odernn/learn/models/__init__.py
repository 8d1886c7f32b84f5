"""Recurrent surrogates of the oscillator behind one protocol: the RNN, LSTM and GRU in
``rnn``, the reservoir in ``esn``, the feed-forward map in ``ffn``.

``REGISTRY`` maps a family name to its class; every class is built as
``cls(layout, stats, **hyperparameters)`` and follows
:class:`~odernn.learn.models.base.Surrogate` (see :mod:`odernn.learn.models.surrogate`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from odernn import budget
from odernn.checks import check_choice
from odernn.errors import DataError, SpecError
from odernn.learn.checkpoint import read_checkpoint, save_checkpoint
from odernn.learn.families import FAMILIES, TARGETS
from odernn.learn.models.base import Rollout, Surrogate
from odernn.learn.models.layout import Layout, Stats
from odernn.learn.models.options import RECIPES, help_of
from odernn.learn.models.surrogate import RecurrentSurrogate, to_be_loaded

REGISTRY: dict[str, type[RecurrentSurrogate]] = {
    name: getattr(importlib.import_module(where.split(":")[0]), where.split(":")[1])
    for name, where in FAMILIES.items()
}
"""Family name -> class, in the order of :data:`odernn.learn.families.FAMILIES`."""

__all__ = ["RECIPES", "REGISTRY", "TARGETS", "Layout", "RecurrentSurrogate", "Rollout", "Stats",
           "Surrogate", "build", "describe", "from_record", "load_surrogate", "save_surrogate",
           "surrogate_record"]


def family_class(family: str) -> type[RecurrentSurrogate]:
    """The class of ``family``, or a SpecError listing the families."""
    return REGISTRY[check_choice(family, REGISTRY, "model")]


def build(family: str, layout: Layout, stats: Stats, **hparams: Any) -> RecurrentSurrogate:
    """A new model of ``family`` (hyperparameters not given take the family's defaults)."""
    return family_class(family)(layout, stats, **hparams)


def describe() -> list[dict[str, Any]]:
    """Each family: a one-line description, how it is fitted, its hyperparameters with their
    defaults and help, and the training options whose default is its own."""
    return [{"family": name, "description": cls.description, "recipe": cls.recipe,
             "defaults": dict(cls.defaults), "help": help_of(cls.options),
             "training_defaults": dict(cls.training_defaults)}
            for name, cls in REGISTRY.items()]


def surrogate_record(model: RecurrentSurrogate) -> dict[str, Any]:
    """What rebuilds ``model``: family, constructor arguments, weights (plain data, tensors)."""
    return {"family": model.family, "args": model.constructor_args(),
            "state_dict": model.state_dict()}


def save_surrogate(model: RecurrentSurrogate, path: Path, **extra: Any) -> None:
    """Write ``model`` (plus ``extra`` plain data) as a checkpoint file, atomically."""
    save_checkpoint(Path(path), {**surrogate_record(model), **extra})


def load_surrogate(path: Path, device: str | torch.device = "cpu") -> RecurrentSurrogate:
    """Rebuild a trained surrogate from a checkpoint file or a run directory (its best); a
    seed group is refused here (:func:`odernn.learn.seeds.load_group` loads it whole)."""
    from odernn.learn.seeds import a_member, is_group

    if is_group(path):
        member = a_member(path)
        raise DataError(f"{path} is a seed group (odernn train --seeds); give one of its "
                        "members" + (f", e.g. {member}" if member is not None else ""))
    return from_record(read_checkpoint(path, device), path, device)


def from_record(record: dict[str, Any], path: Path | str = "record",
                device: str | torch.device = "cpu") -> RecurrentSurrogate:
    """Rebuild a trained surrogate from a checkpoint record (:func:`surrogate_record` plus
    what a run adds), checked against the memory budget first; ``path`` names it in errors."""
    _check_declared_size(path, record)
    try:
        args, cls = record["args"], family_class(record["family"])
        hparams = dict(args["hparams"])
        if "products" in cls.defaults:  # stored before the option existed: a skip over u alone
            hparams.setdefault("products", False)
        unknown = sorted(set(hparams) - set(cls.defaults))
        if unknown:  # the constructor would pass them on to the cell
            raise DataError(f"checkpoint {path} gives the {cls.family} option(s) "
                            f"{', '.join(map(str, unknown))} it does not have: corrupt or forged")
        with to_be_loaded():
            model = cls(Layout.from_dict(args["layout"]), Stats.from_dict(args["stats"]),
                        **hparams)
        stored, own = record["state_dict"], model.state_dict()
        odd = next((k for k, t in stored.items() if isinstance(t, torch.Tensor) and k in own
                    and t.dtype != own[k].dtype), None)  # load_state_dict would cast them
        if odd is not None:
            _forged(path, odd, f"are {stored[odd].dtype}, not {own[odd].dtype}")
        model.load_state_dict(stored)
        bad = next((k for k, p in model.named_parameters()  # not buffers: an unfitted
                    if not bool(p.isfinite().all())), None)  # readout is NaN
        if bad is not None:  # every rollout would diverge (only export checked them)
            _forged(path, bad, "are not finite (NaN or inf)")
    except DataError:
        raise
    except KeyError as err:
        raise DataError(f"checkpoint {path} is inconsistent: it lacks {err}") from err
    except (TypeError, ValueError, AttributeError, OverflowError, IndexError,
            RuntimeError) as err:  # a forged record's values, met where they are used
        raise DataError(f"checkpoint {path} is inconsistent: {err}") from err
    if isinstance(record.get("data"), dict):  # what it was trained and validated on
        model.trained_on = record["data"]
    return model.to(device).eval()


def _forged(path: Path | str, key: str, what: str) -> None:
    """One DataError line: the checkpoint's weights ``key`` are ``what``."""
    raise DataError(f"checkpoint {path}: weights {key!r} {what}: corrupt, forged, or not "
                    "saved by odernn")


def _check_declared_size(path: Path | str, record: dict[str, Any]) -> None:
    """A checkpoint's declared hyperparameters against its stored tensors and the memory
    budget, before the model they describe is built: a small crafted file declaring
    ``hidden=20000`` must not make odernn allocate gigabytes first."""
    try:
        family, args = record["family"], record["args"]
        layout = Layout.from_dict(args["layout"])
        hparams = dict(args["hparams"])
        sizes = layout.sizes
        cls = family_class(family)
        declared = cls.parameter_count(hparams, *sizes)
        tensors = {k: t for k, t in record["state_dict"].items() if isinstance(t, torch.Tensor)}
        stored = sum(t.numel() for t in tensors.values())
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, RuntimeError,
            SpecError) as err:
        raise DataError(f"checkpoint {path} is inconsistent: {err}") from err
    hollow = [k for k, t in tensors.items() if t.is_meta or not t.is_contiguous()]
    if hollow:  # values counted that are not stored: an expanded or meta tensor
        raise DataError(f"checkpoint {path}: weights {hollow[0]!r} are not stored value by "
                        f"value (an expanded or meta tensor): corrupt or forged")
    shown = ", ".join(f"{k}={hparams[k]}" for k in ("hidden", "head", "units", "degree")
                      if k in hparams)
    if declared > 2 * stored + 4096:
        raise DataError(f"checkpoint {path} declares a {family} ({shown}) of ~{declared} values "
                        f"but stores {stored}: corrupt or forged; refusing to build it")
    budget.check(f"checkpoint {path}: {family} ({shown})",
                 cls.model_bytes(hparams, *sizes),
                 "that is for building the model it declares; use a smaller model")
