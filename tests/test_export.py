"""``odernn export``: the one-step ONNX graph, driven in closed loop by onnxruntime (a real
client), against odernn's own rollout; its interface, its metadata, and the command's bad
input (docs/export.md)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import dev_extra, drawn_readout
from test_cli import assert_one_line_error
from test_step_api import FAMILIES, MODES, one_torch_thread, tiny_data, tiny_model  # noqa: F401

import odernn
from odernn.cli.app import main
from odernn.learn.export import model_reason, session
from odernn.learn.models import save_surrogate

onnx = dev_extra("onnx")  # the export extra, part of dev: never skipped in CI
ROOT = Path(__file__).resolve().parent.parent
AGREEMENT = 1e-5
"""onnxruntime's closed loop against odernn's rollout: largest difference over largest |x|."""


def exported(model, tmp_path, name="model.onnx"):
    path = odernn.export_onnx(model, tmp_path / name)
    return path, session(path.read_bytes())


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def ort_rollout(sess, model, test, k: int) -> np.ndarray:
    """Closed loop through onnxruntime over ``test``, the first ``k`` states observed."""
    n = test.n
    size = int(sess.get_modelmeta().custom_metadata_map["state_size"])
    state, x, v = np.zeros((n, size), np.float32), f32(test.x[:, 0]), f32(test.v[:, 0])
    xs = [x]
    for i in range(test.n_steps - 1):
        if 0 < i < k:
            x, v = f32(test.x[:, i]), f32(test.v[:, i])
        feed = {"state": state, "start": np.full(n, i == 0), "x": x, "v": v,
                "F": f32(test.F[:, i]), "F_next": f32(test.F[:, i + 1])}
        if "F_prev" in model.layout.inputs:
            feed["F_prev"] = f32(test.F[:, max(i - 1, 0)])
        feed.update({p: f32(test.params[p]) for p in model.parameter_inputs})
        x, v, state = sess.run(None, feed)
        xs.append(x)
    return np.stack(xs, axis=1).astype(np.float64)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family", FAMILIES)
def test_onnxruntime_closed_loop_matches_the_rollout(family, mode, tmp_path):
    model = tiny_model(family, mode)
    if mode == "hybrid" and family != "esn":  # briefly trained, V is near its zero start:
        drawn_readout(model)  # the cell must reach the network's part (see below)
    test = tiny_data()[1]
    k = max(model.warmup_steps, 1)
    warmup = (test.x[:, :k], test.v[:, :k]) if model.warmup_steps else None
    args = (test.x[:, 0], test.v[:, 0], test.F, test.params)
    want = model.rollout(*args, warmup=warmup)
    assert want.n_diverged == 0
    _, sess = exported(model, tmp_path)
    got = ort_rollout(sess, model, test, k)
    gap = np.abs(got[:, k:] - want.x[:, k:]).max() / np.abs(want.x).max()
    assert gap <= AGREEMENT, f"{family} {mode}: onnxruntime differs by {gap:.2e} of max |x|"
    frozen = np.abs(test.x[:, k:] - test.x[:, :1]).max() / np.abs(want.x).max()
    assert frozen > 100 * AGREEMENT  # the trajectories move: agreement is not trivial
    if mode == "hybrid":  # the prior's step is nearly all of x (1e-4 is the network's): a
        # graph that forgot its state passed the bound above; held to the network's part
        net = np.abs(want.x - silenced(model).rollout(*args, warmup=warmup).x)[:, k:].max()
        assert gap * np.abs(want.x).max() <= 1e-2 * net, (gap, net)


def silenced(model):
    """A copy of ``model`` whose network adds nothing but the codec's constant: its readout
    (and skip) zero."""
    import copy

    import torch

    model = copy.deepcopy(model)
    with torch.no_grad():
        for name in ("V", "c", "D", "W_out"):
            if getattr(model, name, None) is not None:
                getattr(model, name).zero_()
    return model


@pytest.mark.parametrize("family", ["lstm", "esn"])
def test_a_series_model_exports_its_window(family, tmp_path):
    """A sine's closed loop has a neutral phase: float32 rounding accumulates along it, in
    odernn's own rollout too. The tolerance is 1e-5 or ten times how far odernn's rollout
    moves when its observed values move by one float32 unit in the last place."""
    from test_models import series_data

    model = tiny_model(family, "series")
    series = series_data(n=3, n_steps=80, seed=5)
    k = model.warmup_steps
    want = model.rollout(series.x[:, 0], warmup=(series.x[:, :k], None), n_steps=80)
    moved = np.nextafter(f32(series.x[:, :k]), np.float32(np.inf)).astype(np.float64)
    nudged = model.rollout(moved[:, 0], warmup=(moved, None), n_steps=80)
    floor = np.abs(nudged.x[:, k:] - want.x[:, k:]).max() / np.abs(want.x).max()
    _, sess = exported(model, tmp_path)
    assert [i.name for i in sess.get_inputs()] == ["state", "start", "window"]
    assert [o.name for o in sess.get_outputs()] == ["window_next", "state_next"]
    lags = model.layout.lags
    window = f32(np.concatenate([np.repeat(series.x[:, :1], lags - 1, 1), series.x[:, :1]], 1))
    state = np.zeros((3, sess.get_inputs()[0].shape[1]), np.float32)
    xs = []
    for i in range(79):
        if 0 < i < k:  # observed: the newest value is the measurement
            window[:, -1] = series.x[:, i]
        window, state = sess.run(None, {"state": state, "start": np.full(3, i == 0),
                                        "window": window})
        xs.append(window[:, -1])
    got = np.stack(xs, axis=1)[:, k - 1:]
    gap = np.abs(got - want.x[:, k:]).max() / np.abs(want.x).max()
    assert 0 < floor < 1e-3 and gap <= max(AGREEMENT, 10 * floor), (gap, floor)


def test_the_file_names_its_inputs_outputs_and_metadata(tmp_path):
    model = tiny_model("lstm", "state")
    path, sess = exported(model, tmp_path)
    inputs = {i.name: (i.shape, i.type) for i in sess.get_inputs()}
    assert inputs == {"state": (["batch", 16], "tensor(float)"),
                      "start": (["batch"], "tensor(bool)"),
                      **{n: (["batch"], "tensor(float)") for n in ("x", "v", "F", "F_next",
                                                                    "F_prev", "eta")}}
    assert [(o.name, o.shape) for o in sess.get_outputs()] == [
        ("x_next", ["batch"]), ("v_next", ["batch"]), ("state_next", ["batch", 16])]
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta["format"] == "odernn.onestep" and meta["family"] == "lstm"
    assert (meta["state_size"], meta["parameters"], meta["warmup_steps"]) == ("16", "eta", "0")
    assert float(meta["dt"]) == model.layout.dt
    assert onnx.load(path).producer_name == "odernn" and model_reason(path) is None
    for batch in (1, 64):  # the batch dimension is dynamic
        feed = {n: np.zeros((batch, 16) if n == "state" else batch, np.float32)
                for n in inputs}
        feed["start"] = np.ones(batch, bool)
        assert [a.shape for a in sess.run(None, feed)] == [(batch,), (batch,), (batch, 16)]


def test_every_input_is_kept_even_where_the_model_does_not_read_it(tmp_path):
    """The ffn has no recurrent state (``S = 0``) and so reads neither ``state`` nor
    ``start``: both stay in the graph, so that every file takes the same feed."""
    _, sess = exported(tiny_model("ffn", "state"), tmp_path)
    shapes = {i.name: (i.shape, i.type) for i in sess.get_inputs()}
    assert shapes["state"] == (["batch", 0], "tensor(float)")
    assert shapes["start"] == (["batch"], "tensor(bool)")


@pytest.mark.parametrize("mode", ["state", "withheld"])
def test_the_documented_client_loop_runs_and_matches(mode, tmp_path, monkeypatch):
    """docs/export.md's Python block (onnxruntime and numpy alone), as written; with a
    parameter withheld, its warm-up too (the block ignored it: 5e-2 of max |x| off), whose
    steps it returns as observed, as a rollout does (it returned the predictions it
    discarded: 2e-4 of max |x| off)."""
    text = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)
    assert len(blocks) == 1
    model = tiny_model("lstm", mode)
    exported(model, tmp_path, "lstm.onnx")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(blocks[0], namespace)
    test = tiny_data()[1]
    k = model.warmup_steps
    args = (f32(test.x[:, 0]), f32(test.v[:, 0]), f32(test.F),
            {p: f32(test.params[p]) for p in model.parameter_inputs})
    warmup = (test.x[:, :k], test.v[:, :k]) if k else None
    if k:
        with pytest.raises(ValueError, match=f"first {k} states observed"):
            namespace["rollout"](*args)
    got = namespace["rollout"](*args, (f32(test.x[:, :k]), f32(test.v[:, :k])) if k else None)
    want = model.rollout(test.x[:, 0], test.v[:, 0], test.F, test.params, warmup=warmup)
    assert np.abs(got - want.x).max() / np.abs(want.x).max() <= AGREEMENT


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "gru.pt"
    save_surrogate(tiny_model("gru", "state"), path)
    return path


def run(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_command_writes_and_overwrites_only_its_own(checkpoint, tmp_path, capsys):
    out = tmp_path / "gru.onnx"
    code, printed, _ = run(["export", checkpoint, "-o", out], capsys)
    assert code == 0 and "inputs:  state, start, x, v, F, F_next, F_prev, eta" in printed
    assert "outputs: x_next, v_next, state_next" in printed
    first = out.read_bytes()
    code, _, err = run(["export", checkpoint, "-o", out], capsys)
    assert_one_line_error(code, err, "exists", "--overwrite")
    assert out.read_bytes() == first
    assert run(["export", checkpoint, "-o", out, "--overwrite", "-q"], capsys)[:2] == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gru.onnx"]
    assert out.read_bytes() == first  # the same export, as every other command quiet with -q


BAD = [
    (["export", "{tmp}/missing", "-o", "{tmp}/m.onnx"], "does not exist"),
    (["export", "{tmp}/empty", "-o", "{tmp}/m.onnx"], "not a run directory"),
    (["export", "{tmp}/notes.txt", "-o", "{tmp}/m.onnx"], "not a readable odernn checkpoint"),
    # a dataset where a run goes: it quoted torch's advice to load it with weights_only=False
    (["export", "{tmp}/data.h5", "-o", "{tmp}/m.onnx"], "is an HDF5 file (a dataset?)"),
    (["export", "{ckpt}", "-o", "{tmp}/nowhere/m.onnx"], "does not exist"),
    (["export", "{ckpt}", "-o", "{tmp}/notes.txt", "--overwrite"], "not an ONNX file"),
    (["export", "{ckpt}", "-o", "{tmp}/foreign.onnx", "--overwrite"], "produced by 'other-tool'"),
    (["export", "{ckpt}", "-o", "{ckpt}", "--overwrite"], "also an input"),
    (["export", "{ckpt}", "-o", "{tmp}/empty"], "is a directory"),
]


@pytest.mark.parametrize(("args", "needle"), BAD, ids=[b[1] for b in BAD])
def test_bad_input_is_one_line_and_writes_nothing(args, needle, checkpoint, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["x"] = [0.0]
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                                   [onnx.helper.make_tensor_value_info("y", 1, [1])])
    onnx.save(onnx.helper.make_model(graph, producer_name="other-tool"), tmp_path / "foreign.onnx")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    ckpt_before = checkpoint.read_bytes()
    argv = [a.format(tmp=tmp_path, ckpt=checkpoint) for a in args]
    code, _, err = run(argv, capsys)
    assert_one_line_error(code, err, needle)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert checkpoint.read_bytes() == ckpt_before


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_without_the_export_extra_it_refuses_saying_how_to_install(missing, checkpoint,
                                                                   tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    code, _, err = run(["export", checkpoint, "-o", tmp_path / "m.onnx"], capsys)
    assert_one_line_error(code, err, missing, 'pip install "odernn[export]"')
    assert list(tmp_path.iterdir()) == []


def test_a_broken_install_is_named_not_called_none(checkpoint, tmp_path, capsys, monkeypatch):
    """An onnxruntime whose own library fails to load raises an ImportError without a module
    name: the message said "None is not installed"."""
    broken = tmp_path / "shim" / "onnxruntime"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("libonnxruntime.so.1: cannot open '
                                        'shared object file")\n')
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path / "shim"))
    code, _, err = run(["export", checkpoint, "-o", tmp_path / "m.onnx"], capsys)
    assert_one_line_error(code, err, "cannot be imported: libonnxruntime.so.1")
    assert "None" not in err and not (tmp_path / "m.onnx").exists()


def test_exporting_leaves_the_model_in_its_mode(tmp_path):
    model = tiny_model("gru", "state")
    for training in (True, False):
        model.train(training)
        odernn.export_onnx(model, tmp_path / f"{training}.onnx")
        assert model.training is training and model.cell.training is training
    model.cell.eval()  # mixed: each module keeps its own
    odernn.export_onnx(model, tmp_path / "mixed.onnx")
    assert model.training is False and model.cell.training is False
    model.train()
    model.cell.eval()
    odernn.export_onnx(model, tmp_path / "mixed2.onnx")
    assert model.training is True and model.cell.training is False


def test_a_file_that_appears_during_the_export_is_kept(checkpoint, tmp_path, capsys,
                                                      monkeypatch):
    """Without --overwrite the path is checked before the model is converted and again
    after; a file another process puts there between that check and the rename is kept
    (it was replaced, the export exiting 0)."""
    import odernn.atomic

    out = tmp_path / "m.onnx"
    real_write = odernn.atomic.write_file

    def write_file(path, write, **options):
        out.write_text("another process's")
        return real_write(path, write, **options)

    monkeypatch.setattr(odernn.atomic, "write_file", write_file)
    code, _, err = run(["export", checkpoint, "-o", out], capsys)
    assert_one_line_error(code, err)
    assert "another file appeared there while this one was written" in err
    assert out.read_text() == "another process's" and os.listdir(tmp_path) == ["m.onnx"]


def test_an_interrupted_write_leaves_no_file(checkpoint, tmp_path, capsys, monkeypatch):
    import odernn.atomic

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(odernn.atomic.os, "fsync", interrupted)  # in the middle of the write
    code, _, err = run(["export", checkpoint, "-o", tmp_path / "m.onnx"], capsys)
    assert code == 130 and "interrupted" in err
    assert list(tmp_path.iterdir()) == []  # neither the file nor its hidden sibling


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(checkpoint, tmp_path,
                                                                    capsys, monkeypatch):
    import errno

    import odernn.atomic

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(odernn.atomic.os, "fsync", full)
    out = tmp_path / "m.onnx"
    code, _, err = run(["export", checkpoint, "-o", out], capsys)
    assert_one_line_error(code, err)
    assert err == f"error: cannot write ONNX model {out}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []


def test_export_onnx_takes_a_model_a_run_directory_or_a_checkpoint(checkpoint, tmp_path):
    model = tiny_model("gru", "state")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.pt").write_bytes(checkpoint.read_bytes())
    files = [odernn.export_onnx(model, tmp_path / "a.onnx"),
             odernn.export_onnx(checkpoint, tmp_path / "b.onnx"),
             odernn.export_onnx(run_dir, tmp_path / "c.onnx")]
    feed = {"state": np.ones((2, 8), np.float32), "start": np.array([True, False]),
            **{n: np.full(2, 0.5, np.float32) for n in ("x", "v", "F", "F_next", "F_prev", "eta")}}
    outputs = [session(f.read_bytes()).run(None, feed) for f in files]
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_an_ensemble_or_another_object_is_refused_in_words(tmp_path):
    from odernn.errors import SpecError
    from odernn.learn.models.ensemble import Ensemble

    group = Ensemble({"seed-0": tiny_model("gru", "state"), "seed-1": tiny_model("gru", "state")})
    with pytest.raises(SpecError, match=r"export one member, e\.g\. its members\['seed-0'\]"):
        odernn.export_onnx(group, tmp_path / "g.onnx")
    with pytest.raises(SpecError, match="cannot export a list"):
        odernn.export_onnx([1], tmp_path / "g.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["start", "state", "x_next"])
def test_a_parameter_named_as_the_graph_names_its_own_is_refused_in_one_line(name, tmp_path):
    """Imported data may call a parameter anything: one named as a graph input or output of
    its own trained, and its export ended in onnx's checker's traceback."""
    import dataclasses

    from odernn.errors import SpecError

    data = tiny_data()[0]
    params = {name if k == "eta" else k: p for k, p in data.params.items()}
    data = dataclasses.replace(data, params=params, attrs={**data.attrs, "system": "external"})
    model, _ = odernn.fit(data, model="gru", hidden=4, epochs=1, val_fraction=0.25)
    assert name in model.parameter_inputs
    with pytest.raises(SpecError, match=f"takes a parameter named '{name}', a name the "
                                        "exported graph has for itself"):
        odernn.export_onnx(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_model_with_non_finite_weights_is_refused_saying_so(tmp_path):
    """NaN weights give NaN outputs, which no exported graph can match: the message names the
    weights, not a difference between onnxruntime and torch."""
    import copy

    import torch

    from odernn.errors import DataError

    model = copy.deepcopy(tiny_model("gru", "state"))
    with torch.no_grad():
        model.V[0, 0] = float("nan")
    with pytest.raises(DataError, match=r"non-finite x_next .*its weights 'V' are not "
                                               r"finite\); nothing written"):
        odernn.export_onnx(model, tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("factor", "refused"), [(1 + 1e-3, True), (1 + 1e-5, False)])
def test_a_graph_that_differs_from_the_model_is_refused(factor, refused, tmp_path,
                                                        monkeypatch):
    """Every output checked against torch's to 1e-4 of its scale before the file is
    written: a graph off by 1e-3 (relative) is refused, one off by 1e-5 (float32's
    rounding and more) kept."""
    from odernn.errors import DataError
    from odernn.learn import export

    real = export.session

    class Off:
        def __init__(self, data, threads=1):
            self.inner = real(data, threads)

        def run(self, names, feed):
            return [a * np.float32(factor) if a.dtype == np.float32 else a
                    for a in self.inner.run(names, feed)]

    monkeypatch.setattr(export, "session", Off)
    model = tiny_model("gru", "state")
    if refused:
        with pytest.raises(DataError, match="the exported graph's x_next differs from the "
                                            "model's"):
            odernn.export_onnx(model, tmp_path / "m.onnx")
        assert list(tmp_path.iterdir()) == []
    else:
        assert odernn.export_onnx(model, tmp_path / "m.onnx").exists()


def test_the_metadata_gives_dt_to_the_last_digit(tmp_path):
    """A client steps by the file's dt: written with every digit (repr), not to six."""
    from odernn.learn.models import build
    from odernn.learn.models.layout import Layout, Stats

    names = ("x", "v", "F", "eta", "y0", "y1")
    layout = Layout(dt=0.0123456789)
    model = build("gru", layout, Stats({k: 0.1 for k in names}, {k: 1.5 for k in names}),
                  hidden=4, seed=0)
    _, sess = exported(model, tmp_path)
    assert float(sess.get_modelmeta().custom_metadata_map["dt"]) == 0.0123456789


def test_the_graphs_names_are_its_own_or_physical():
    """Every input and output name an exported graph can have is one of GRAPH_NAMES (which
    odernn import refuses for a parameter) or a physical channel: a name added to the graph
    and not to GRAPH_NAMES could be taken by an imported parameter."""
    from odernn.data.systems import GRAPH_NAMES
    from odernn.learn.models.layout import Layout
    from odernn.learn.onestep import input_names, output_names

    physical = {"x", "v", "F", "F_next", "F_prev", "eta"}
    for layout in (Layout(dt=0.1, inputs=("x", "v", "F", "F_next", "F_prev", "eta")),
                   Layout(dt=0.1, inputs=("x",), target="next-value", lags=3)):
        names = input_names(layout) + output_names(layout)
        assert set(names) <= set(GRAPH_NAMES) | physical
        assert len(names) == len(set(names))


def test_the_checks_batch_starts_half_its_rows_and_lies_near_the_training_data():
    """The export's check runs rows that start (the initial state's map) and rows that carry
    a state (the cell's step): a graph wrong on either is caught. Each physical input is
    drawn around its training mean at its training spread."""
    from odernn.learn.onestep import OneStep, input_names

    model = tiny_model("gru", "state")
    step = OneStep(model)
    state, start, *columns = step.example(400)
    assert 150 < int(start.sum()) < 250 and state.shape == (400, step.state_size)
    stats = model.codec.stats
    for name, column in zip(input_names(model.layout)[2:], columns, strict=True):
        key = name if name in stats.mean else "F"
        assert abs(float(column.mean()) - stats.mean[key]) < 0.2 * stats.std[key]
        assert 0.8 < float(column.std()) / stats.std[key] < 1.2


def test_a_model_too_large_to_export_within_the_budget_is_refused_first(tmp_path, capsys,
                                                                        monkeypatch):
    """Exporting holds several copies of the weights (traced, the proto, its bytes,
    onnxruntime's session): an LSTM of 3000 units took 1.15 GB under a 512 MiB budget,
    unchecked. The weights times EXPORT_COPIES are checked before the trace."""
    from test_models import oscillator_data

    from odernn import budget
    from odernn.learn.config import TrainConfig
    from odernn.learn.export import EXPORT_COPIES
    from odernn.learn.models import build
    from odernn.learn.windows import compute_stats

    data = oscillator_data(n=4, n_steps=50)
    layout = TrainConfig(model="gru").layout(data.dt, params=data.params)
    model = build("gru", layout, compute_stats(data, layout), hidden=600)
    save_surrogate(model, tmp_path / "big.pt")
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    monkeypatch.setenv(budget.ENV, str(EXPORT_COPIES * weights // 2))
    code, _, err = run(["export", tmp_path / "big.pt", "-o", tmp_path / "m.onnx"], capsys)
    assert_one_line_error(code, err, f"export: a gru of {budget.size(weights)} of weights")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.pt"]
    monkeypatch.setenv(budget.ENV, str(EXPORT_COPIES * weights + (64 << 20)))
    assert run(["export", tmp_path / "big.pt", "-o", tmp_path / "m.onnx", "-q"], capsys)[0] == 0
