"""A family's hyperparameters as one frozen dataclass: each default and its help written once.

A family class names its dataclass (``options``); its ``defaults`` (what the constructor
takes, what ``odernn models`` lists) and the help text of ``odernn models`` come from it.
``recipe`` says how a family is fitted: ``gradient`` (the shared BPTT loop of
:mod:`odernn.learn.gradient`) or ``ridge`` (a linear readout solved in closed form,
:mod:`odernn.learn.ridge`); each recipe takes its own training options.
"""

from __future__ import annotations

import dataclasses
from typing import Any

RECIPES = ("gradient", "ridge")


def option(default: Any, help: str) -> Any:  # noqa: A002 - the word the CLI uses
    """A dataclass field with its default and one line of help."""
    if isinstance(default, list):
        default = tuple(default)
    return dataclasses.field(default=default, metadata={"help": help})


def defaults_of(options: type) -> dict[str, Any]:
    """``{name: default}`` of an options dataclass (tuples as lists: plain data)."""
    return {f.name: list(f.default) if isinstance(f.default, tuple) else f.default
            for f in dataclasses.fields(options)}


def help_of(options: type) -> dict[str, str]:
    """``{name: help}`` of an options dataclass."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(options)}
