"""The readout the gradient families share (the RNN cells and ``ffn``): optional dense
``head`` layers, ``y = V h + c``, and the linear skip ``D s(u)`` of the inputs, started at
their least-squares fit (:func:`odernn.learn.skip_fit.fit_skip`) so the network learns
only what is not linear in them. With ``products`` the skip's features ``s(u)`` also hold
the parameter inputs' monomials up to that degree times each other input: the one-step map of
a damped, driven oscillator is nearly bilinear in its damping and its state (and, for the
nonlinear systems, in the drive's amplitude), which a sum of the inputs cannot hold for every
damping at once (multiplicative conditioning, chosen by ``benchmarks/conditioning.py``).

For a linear system (:attr:`~odernn.learn.models.layout.Layout.linear`) the exact one-step
map given the samples ``F_{i-1}, F_i, F_{i+1}`` is linear in them and the state, to
O(dt^4), with coefficients smooth in the parameters: there the defaults are degree 2 and the
input ``F_prev`` (:func:`~odernn.learn.models.layout.default_inputs`), and ``V`` starts at
zero, so that the model starts as the skip's least-squares fit and the network learns the
rest (``benchmarks/linear_map.py`` measures the three together and on nonlinear data).
"""

from __future__ import annotations

import math
from itertools import combinations_with_replacement
from typing import Any

import torch
from torch import Tensor, nn

from odernn.errors import SpecError
from odernn.learn.models.layout import Layout
from odernn.learn.models.options import option

MAX_DEGREE = 3
"""The highest degree of the parameter products (their count grows as ``P^degree``)."""


def readout_count(hidden: int, head: list[int] | tuple[int, ...], n_inputs: int,
                  n_outputs: int, n_skip: int | None = None) -> int:
    """Values of the readout :func:`add_output_layers` builds (head layers, ``V, c``, ``D``
    over ``n_skip`` skip features, by default the inputs)."""
    widths = [int(hidden), *(int(w) for w in head or ())]
    layers = sum((a + 1) * b for a, b in zip(widths, widths[1:], strict=False))
    return layers + (widths[-1] + 1 + (n_inputs if n_skip is None else n_skip)) * n_outputs


def check_products(products: Any, start_as_skip: Any = None) -> None:
    """Refuse a ``products`` option that is not None (the layout's default), a bool (False:
    none, True: degree 1) or a degree from 0 to :data:`MAX_DEGREE`, or a ``start_as_skip``
    that is not None or a bool, with a SpecError."""
    if start_as_skip is not None and not isinstance(start_as_skip, bool):
        raise SpecError(f"start_as_skip must be true or false, got {start_as_skip!r}")
    if products is None or isinstance(products, bool):
        return
    if not isinstance(products, int) or not 0 <= products <= MAX_DEGREE:
        raise SpecError(f"products must be a degree from 0 to {MAX_DEGREE} (or true/false), "
                        f"got {products!r}")


def products_option() -> Any:
    """The families' ``products`` option (a dataclass field of their options)."""
    return option(None, "degree of the parameter inputs' monomials that multiply each other "
                  "input in the skip (0: none; default 2 for a linear system in state mode, "
                  "else 1)")


def start_as_skip_option() -> Any:
    """The families' ``start_as_skip`` option (a dataclass field of their options)."""
    return option(None, "start V at zero, the model as its skip's least-squares fit (default: "
                  "for a linear system in state mode, without an output activation)")


def skip_hparams(layout: Layout, skip: bool, products: Any, start_as_skip: Any,
                 squashed: bool = False) -> dict[str, Any]:
    """The skip's hyperparameters as a model stores them, the layout's defaults resolved:
    ``products`` a degree (:func:`product_degree`), ``start_as_skip`` a bool (by default for
    a linear system, unless ``squashed``: an output activation, inside which the fit's
    intercept ``c`` would lie; never without a skip)."""
    start = layout.linear and not squashed if start_as_skip is None else bool(start_as_skip)
    return {"skip": skip, "products": product_degree(products, layout),
            "start_as_skip": bool(skip) and start}


def product_degree(products: Any, layout: Layout) -> int:
    """The degree of the skip's parameter products: ``products`` (a bool reads as 0 or 1), or
    by default (None) 2 for a linear system and 1 otherwise."""
    if products is None:
        return 2 if layout.linear else 1
    return int(products)


def monomials(n: int, degree: int) -> list[tuple[int, ...]]:
    """The monomials of ``n`` parameters of degree 1 to ``degree``, as sorted index tuples,
    by degree and then in lexicographic order (``(0,), (1,), (0, 0), (0, 1), (1, 1)``)."""
    return [m for d in range(1, degree + 1) for m in combinations_with_replacement(range(n), d)]


def skip_width(hparams: dict[str, Any], n_inputs: int, n_params: int) -> int:
    """The skip's features: the inputs, each of the M monomials of the P = ``n_params``
    parameter inputs times each other input (``M (n_inputs - P)``), and those of degree 2 and
    more alone (``M - P``); as :func:`add_output_layers` builds them. ``products`` None (not
    yet resolved by a layout) counts the larger default, degree 2."""
    products = hparams.get("products", True)
    check_products(products)  # a record's degree, before it sizes anything
    degree = 2 if products is None else int(products)
    p = n_params
    if degree == 0 or p <= 0:  # no parameter inputs (a series has none): no products
        return n_inputs
    m = math.comb(p + degree, degree) - 1  # len(monomials(p, degree)), not built
    return n_inputs + m * (n_inputs - p) + m - p


def skip_features(module: nn.Module, u: Tensor) -> Tensor:
    """``u``, each parameter monomial (:func:`monomials`) times each other channel, then the
    monomials of degree 2 and more alone (the one-step map is nearly bilinear in the damping
    and the state: multiplicative conditioning; polynomial in the damping for a linear
    system)."""
    if module.param_cols is None:
        return u
    p, o = u[..., module.param_cols], u[..., module.other_cols]
    levels = [p]
    for k in range(2, module.product_degree + 1):  # degree k: degree k - 1 times a parameter
        levels.append(levels[-1][..., getattr(module, f"raise_left_{k}")]
                      * p[..., getattr(module, f"raise_right_{k}")])
    m = torch.cat(levels, dim=-1) if len(levels) > 1 else p
    products = (m.unsqueeze(-1) * o.unsqueeze(-2)).flatten(-2)
    return torch.cat([u, products, m[..., p.shape[-1]:]], dim=-1)


def _raise_indices(n: int, degree: int) -> list[tuple[list[int], list[int]]]:
    """For each degree k from 2: which monomial of degree k - 1 and which parameter make each
    monomial of degree k, as :func:`skip_features` builds them."""
    out = []
    for k in range(2, degree + 1):
        lower = list(combinations_with_replacement(range(n), k - 1))
        pairs = [(lower.index(m[:-1]), m[-1]) for m in combinations_with_replacement(range(n), k)]
        out.append(([a for a, _ in pairs], [b for _, b in pairs]))
    return out


def add_output_layers(module: nn.Module, layout: Layout, hidden: int, head: tuple[int, ...],
                      skip: bool, products: int = 0) -> None:
    """The readout shared by the RNN families and ``ffn``: optional ``head`` layers, then
    ``y = V h + c`` (+ the linear skip ``D s(u)`` when ``skip``, ``s`` of
    :func:`skip_features` with parameter products of degree ``products``)."""
    widths = [hidden, *head]
    module.head = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:], strict=False))
    module.V = nn.Parameter(torch.empty(layout.n_outputs, widths[-1]))
    module.c = nn.Parameter(torch.empty(layout.n_outputs))
    n = len(layout.parameters)
    params = list(range(len(layout.inputs) - n, len(layout.inputs)))
    others = [k for k in range(layout.n_inputs) if k not in params]
    multiply = skip and products > 0 and n > 0
    for name, cols in (("param_cols", params), ("other_cols", others)):
        module.register_buffer(name, torch.tensor(cols, dtype=torch.long) if multiply else None,
                               persistent=False)
    module.product_degree = products if multiply else 0
    for k, (left, right) in enumerate(_raise_indices(n, module.product_degree), start=2):
        for name, cols in (("left", left), ("right", right)):
            module.register_buffer(f"raise_{name}_{k}", torch.tensor(cols), persistent=False)
    m = len(monomials(n, module.product_degree))  # as skip_width counts them
    width = layout.n_inputs + m * len(others) + max(m - n, 0)
    module.D = nn.Parameter(torch.empty(layout.n_outputs, width)) if skip else None


def start_readout(module: nn.Module) -> None:
    """``V = 0`` with ``start_as_skip`` (by default where the skip can hold a linear system's
    one-step map, the module's docstring): the model then starts as the skip's least-squares
    fit. Called last by the families' ``reset_parameters``."""
    if module.D is not None and module.hparams.get("start_as_skip"):
        with torch.no_grad():
            module.V.zero_()
