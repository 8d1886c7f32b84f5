"""``odernn export``: a trained surrogate's one-step function as an ONNX file.

The graph is :class:`~odernn.learn.onestep.OneStep` (physical units in and out, the
normalisation folded in, one call per step, the initial state behind the ``start`` flag),
traced by PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``):
it exists in every torch odernn supports (2.6 on; the ``torch.export``-based default of
2.9 on needs ``onnxscript`` besides) and exports these small graphs in well under a
second. The batch dimension is dynamic. Before the file is written the graph is run by
onnxruntime on a batch near the training data and compared with the torch module; the
file is written atomically (:mod:`odernn.atomic`). Needs the ``export`` extra
(``onnx``, ``onnxruntime``); without it the export is refused in one line.
docs/export.md documents the inputs, outputs and metadata.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from odernn import atomic, budget
from odernn.data.systems import GRAPH_NAMES
from odernn.errors import DataError, MissingDependency, SpecError

FORMAT = "odernn.onestep"
"""``metadata_props["format"]`` of an exported file."""
FORMAT_VERSION = 1
PRODUCER = "odernn"
"""The file's ``producer_name``: how ``--overwrite`` recognises odernn's own ONNX files."""
OPSET = 17
CHECK_BATCH = 5
CHECK_RTOL = 1e-4
"""onnxruntime's step against torch's on the check batch, relative to each output's scale."""
INSTALL = 'pip install "odernn[export]" (onnx and onnxruntime)'


def onnx_modules() -> tuple[Any, Any]:
    """``(onnx, onnxruntime)``, or MissingDependency saying how to install them."""
    try:
        import onnx
        import onnxruntime
    except ImportError as err:  # a module missing, or one whose own imports fail
        why = f"{err.name} is not installed" if err.name else f"it cannot be imported: {err.msg}"
        raise MissingDependency(f"exporting to ONNX needs the export extra ({why}): "
                                f"{INSTALL}") from None
    return onnx, onnxruntime


EXPORT_COPIES = 12
"""Copies of a model's weights that exporting holds at its peak: the traced graph's constants,
the ONNX proto, its bytes, onnxruntime's session and its check (7 to 10 measured for LSTM,
GRU and RNN cells of 1500 to 2000 units; an LSTM of 3000 took 1.15 GB unchecked)."""


def export_onnx(model: Any, path: str | Path, *, overwrite: bool = False,
                inputs: tuple[str | Path, ...] = ()) -> Path:
    """Write ``model``'s one-step function to ``path`` as ONNX (docs/export.md); return it.

    An existing ``path`` is replaced only with ``overwrite`` and only if it is an ONNX file
    odernn exported (and none of ``inputs``); nothing is written when anything fails.
    """
    onnx, _ = onnx_modules()
    check_exportable(model)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    budget.check(f"export: a {model.family} of {budget.size(weights)} of weights",
                 EXPORT_COPIES * weights, "that is for tracing it, the ONNX file and its check "
                 "by onnxruntime; export a smaller model")
    path = Path(path)
    atomic.check_output(path, "model", overwrite=overwrite, inputs=inputs)
    data = onnx_bytes(model)
    atomic.check_output(path, "model", overwrite=overwrite, inputs=inputs)
    atomic.write_bytes(path, data, what="ONNX model", overwrite=overwrite)
    return path


def check_exportable(model: Any) -> None:
    """Refuse what has no one-step function of its own: a seed group's ensemble (its members
    each have one), anything that is not a surrogate."""
    from odernn.learn.models.ensemble import Ensemble
    from odernn.learn.models.surrogate import RecurrentSurrogate

    if isinstance(model, Ensemble):
        raise SpecError("an ensemble (a seed group) has no single one-step function to export; "
                        f"export one member, e.g. its members[{next(iter(model.members))!r}] or "
                        "the member's run directory GROUP/seed-N")
    if not isinstance(model, RecurrentSurrogate):
        raise SpecError(f"cannot export a {type(model).__name__}: give a trained surrogate, a "
                        "run directory or a checkpoint")
    clash = [p for p in model.layout.parameters if p in GRAPH_NAMES]
    if clash:
        raise SpecError(f"this model takes a parameter named {clash[0]!r}, a name the exported "
                        f"graph has for itself ({', '.join(GRAPH_NAMES)}): give the parameter "
                        "another name in the data (odernn import --param NAME=COLUMN) and "
                        "train again")


def onnx_bytes(model: Any) -> bytes:
    """The ONNX file of ``model``'s one-step function, checked with onnxruntime."""
    onnx, _ = onnx_modules()
    from odernn.learn.onestep import OneStep, input_names, output_names

    if model.device.type != "cpu":
        model = copy.deepcopy(model).cpu()
    modes = [(m, m.training) for m in model.modules()]
    try:  # the caller's model keeps its modes, module by module
        return _onnx_bytes(onnx, model, OneStep(model).eval(), input_names(model.layout),
                           output_names(model.layout))
    finally:
        for module, training in modes:
            module.training = training


def _onnx_bytes(onnx: Any, model: Any, one: Any, names: list[str], outs: list[str]) -> bytes:
    """:func:`onnx_bytes` of ``one``, the model's :class:`~odernn.learn.onestep.OneStep`."""
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation, tracer notes
        torch.onnx.export(one, one.example(2), buffer, dynamo=False, input_names=names,
                          output_names=outs, opset_version=OPSET,
                          dynamic_axes={n: {0: "batch"} for n in [*names, *outs]})
    proto = onnx.load_from_string(buffer.getvalue())
    _keep_every_input(onnx, proto, names, one.example(2))
    _describe(onnx, proto, model, one.state_size)
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    check_against_torch(data, one)
    return data


def _keep_every_input(onnx: Any, proto: Any, names: list[str], example: tuple) -> None:
    """Every documented input in the graph, in order, even one the model does not read (the
    exporter drops those; a client's feed stays the same whatever the model), typed and
    shaped as ``example``, the batch dimension named ``batch``."""
    graph = proto.graph
    present = {i.name: i for i in graph.input}

    def info(name: str, t: Any) -> Any:
        kind = onnx.TensorProto.BOOL if t.dtype.is_floating_point is False \
            else onnx.TensorProto.FLOAT
        return onnx.helper.make_tensor_value_info(name, kind, ["batch", *t.shape[1:]])

    ordered = [present.get(n) or info(n, t) for n, t in zip(names, example, strict=True)]
    del graph.input[:]
    graph.input.extend(ordered)


def _describe(onnx: Any, proto: Any, model: Any, state_size: int) -> None:
    """Producer, documentation string and metadata a client reads (docs/export.md)."""
    import odernn

    layout = model.layout
    proto.producer_name, proto.producer_version = PRODUCER, odernn.__version__
    proto.doc_string = (f"odernn {model.family} surrogate ({layout.target} mode), one step "
                        f"of dt = {layout.dt:g} in physical units; see odernn's docs/export.md")
    meta = {"format": FORMAT, "format_version": str(FORMAT_VERSION), "family": model.family,
            "target": layout.target, "system": layout.system, "dt": repr(float(layout.dt)),
            "state_size": str(state_size), "parameters": ",".join(layout.parameters),
            "warmup_steps": str(layout.warmup), "lags": str(layout.lags),
            "fixed": ",".join(f"{k}={v!r}" for k, v in layout.fixed),
            "prior": layout.prior or "",
            "prior_set": ",".join(f"{k}={v!r}" for k, v in layout.prior_set)}
    onnx.helper.set_model_props(proto, meta)


def session(data: bytes, threads: int = 1) -> Any:
    """An onnxruntime session of an exported file on the CPU with ``threads`` threads."""
    _, ort = onnx_modules()
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = threads
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def check_against_torch(data: bytes, one: Any) -> None:
    """Run the file with onnxruntime on a batch near the training data and refuse it unless
    every output matches the torch module's to :data:`CHECK_RTOL` of its scale."""
    import torch

    from odernn.learn.onestep import input_names, output_names

    example = one.example(CHECK_BATCH, seed=1)
    with torch.no_grad():
        want = [t.double().cpu().numpy() for t in one(*example)]
    feed = {n: t.cpu().numpy() for n, t in zip(input_names(one.model.layout), example,
                                                strict=True)}
    for name, b in zip(output_names(one.model.layout), want, strict=True):
        if not np.isfinite(b).all():  # NaN would differ from NaN below: say why instead
            bad = next((k for k, t in one.model.state_dict().items()
                        if t.is_floating_point() and not bool(t.isfinite().all())), None)
            cause = f"its weights {bad!r} are not finite" if bad else "its weights are finite"
            raise DataError(f"the model's own one step gives non-finite {name} on "
                            f"{CHECK_BATCH} test rows near its training data ({cause}); "
                            "nothing written")
    got = session(data).run(None, feed)
    for name, a, b in zip(output_names(one.model.layout), got, want, strict=True):
        scale = max(float(np.abs(b).max(initial=0.0)), 1e-30)
        if a.shape != b.shape or not np.all(np.abs(a - b) <= CHECK_RTOL * scale):
            raise DataError(f"the exported graph's {name} differs from the model's "
                            f"(onnxruntime against torch on {CHECK_BATCH} test rows); "
                            "nothing written")


def model_reason(path: Path) -> str | None:
    """Why ``path`` is not an ONNX file odernn exported (None when it is): its
    ``producer_name``, the ModelProto's field 2, read from its first bytes."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(256)
    except OSError as err:
        return f"unreadable: {err.strerror or err}"
    producer = _producer(head)
    if producer is None:
        return "not an ONNX file odernn exported (no producer named)"
    return None if producer == PRODUCER else f"an ONNX file produced by {producer[:40]!r}"


def _producer(head: bytes) -> str | None:
    """The ``producer_name`` of a serialised ONNX ModelProto from its first bytes (fields are
    written in number order: ``ir_version`` 1, ``producer_name`` 2), or None."""
    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = head[i]
            value |= (byte & 0x7F) << shift
            i, shift = i + 1, shift + 7
            if byte < 0x80 or shift > 63:
                return value, i

    try:
        key, i = varint(0)
        if key != 0x08:  # field 1, a varint: ir_version
            return None
        _, i = varint(i)
        key, i = varint(i)
        if key != 0x12:  # field 2, length-delimited: producer_name
            return None
        n, i = varint(i)
        return head[i:i + n].decode("utf-8", errors="replace") if i + n <= len(head) else None
    except IndexError:
        return None
