"""The report: complete, well-formed, self-contained, rendered by a real browser, atomic."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure as MplFigure
from PIL import Image
from test_evaluate import ExactMap, Exploding, Zeros, make_test_set

import odernn
from odernn.assess.document import Figure, Section, Table, fmt, fmt_at_least
from odernn.assess.evaluate import evaluate
from odernn.assess.metrics import METRICS
from odernn.assess.report import write_report
from odernn.assess.report_findings import same_information_sentences
from odernn.assess.resonance import ResonanceSettings
from odernn.assess.results import Evaluation
from odernn.data.integrators import INTEGRATORS
from odernn.errors import DataError, OutputError, SpecError
from odernn.learn.models.base import Rollout
from odernn.learn.rundir import read_history

SAMPLED_FORCING = [name for name, entry in INTEGRATORS.items() if entry.sampled_forcing]

VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr", "col", "area", "base"}


class Checker(HTMLParser):
    """Tag balance, every src/href, every id, the visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.refs: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self.images = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append(tag)
        self.images += tag == "img"
        for key, value in attrs:
            if key in ("src", "href"):
                self.refs.append((key, value or ""))
            if key == "id":
                self.ids.add(value)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    test = make_test_set(n=6, n_steps=300)
    surrogates = {"exact-map": ExactMap(), "zeros": Zeros(), "boom": Exploding([2])}
    return evaluate(test, surrogates, resonance=ResonanceSettings(n_omega=6), progress=False,
                    data_path="test.h5")


@pytest.fixture(scope="module")
def small() -> Evaluation:
    """Integrators only, one figure: cheap to write again and again."""
    return evaluate(make_test_set(n=3, n_steps=100), {}, integrators=("rk4",),
                    work_precision=False, resonance=False, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    for name in ("exact-map", "zeros", "boom"):
        (root / name).mkdir()
    (root / "exact-map" / "history.csv").write_text(
        "epoch,loss,val_loss,val_nrmse_x,lr\n1,0.5,0.6,0.9,0.001\n2,0.2,0.3,0.5,0.001\n"
        "3,0.1,0.25,0.4,0.001\n")
    (root / "boom" / "history.csv").write_text(  # a reservoir's ridge candidates: no epochs
        "ridge,val_nrmse_x,time\n1e-09,0.31,0.5\n1e-07,0.0123,0.9\n")
    (root / "zeros" / "history.json").write_text(json.dumps(
        [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1}, {"epoch": 2, "train_loss": 0.9,
                                                           "val_loss": 1.0}]))
    (root / "exact-map" / "config.json").write_text(json.dumps(
        {"model": "lstm", "epochs": 3, "budget": {"max_minutes": 2}}))
    return {name: root / name for name in ("exact-map", "zeros", "boom")}


def extra() -> Section:
    fig = MplFigure(figsize=(4, 3))
    fig.subplots().plot([0, 1], [1, 0])
    return Section("Presets", "From the **notes**: the `tanh` presets.\n\n- one\n- two",
                   [Table(["preset", "NRMSE x"], [["notes-rnn", 0.12], ["zeros", float("inf")]])],
                   [Figure("presets", "A caller's figure.", fig)])


@pytest.fixture(scope="module")
def report(evaluation, runs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("out") / "report"
    return write_report(evaluation, out, runs=runs, extra_sections=[extra()])


def test_files_are_all_there(report: Path) -> None:
    names = {p.name for p in report.iterdir()}
    assert {"metrics.json", "report.md", "report.html", "error-vs-time.png",
            "work-precision.png", "resonance.png", "loss-curves.png", "phase-portraits.png",
            "trajectories-exact-map.png", "trajectories-boom.png", "presets.png"} <= names
    assert not [n for n in os.listdir(report.parent) if n.startswith(".")]
    doc = json.loads((report / "metrics.json").read_text(), parse_constant=pytest.fail)
    assert doc["schema"] == "odernn.metrics"
    assert doc["methods"]["boom"]["metrics"]["nrmse_x"] == "inf"


def test_html_is_well_formed_and_self_contained(report: Path) -> None:
    page = (report / "report.html").read_text(encoding="utf-8")
    checker = Checker()
    checker.feed(page)
    checker.close()
    assert not checker.errors and not checker.stack
    assert page.startswith("<!DOCTYPE html>")
    for key, value in checker.refs:
        assert value.startswith(("data:image/png;base64,", "#")), (key, value[:60])
        if value.startswith("#"):
            assert value[1:] in checker.ids
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|file:|//)", page)
    assert "url(" not in page and "@import" not in page
    pngs = sorted(p.read_bytes() for p in report.glob("*.png"))
    embedded = sorted(base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,'
                                                              r'([A-Za-z0-9+/=]+)"', page))
    assert checker.images == len(pngs) and embedded == pngs


def test_html_names_every_method_and_metric(report: Path, evaluation: Evaluation) -> None:
    checker = Checker()
    checker.feed((report / "report.html").read_text(encoding="utf-8"))
    text = " ".join(checker.text)
    for name in evaluation.methods:
        assert name in text
    for key in METRICS:
        assert key in text
    for piece in ("Summary", "Work-precision", "Resonance", "Training", "Presets", "notes-rnn",
                  "max_minutes", "∞", "ridge", "0.0123", "val_nrmse_x",
                  f"odernn {odernn.__version__}", "test.h5"):
        assert piece in text


def test_markdown_has_the_same_content(report: Path, evaluation: Evaluation) -> None:
    md = (report / "report.md").read_text(encoding="utf-8")
    for name in evaluation.methods:
        assert f"| {name} |" in md
    for png in report.glob("*.png"):
        assert f"]({png.name})" in md
    assert "## Presets" in md and "| notes-rnn | 0.12 |" in md
    etas = len(evaluation.resonance["curve"]["eta"])  # n_omega = 6 at each
    assert etas > 1 and "over 6 frequencies per eta" in md


def test_summary_compares_each_surrogate_with_the_best_same_information_integrator(
        report: Path, evaluation: Evaluation) -> None:
    """The headline names the most accurate sampled-forcing integrator and says, from the
    measured numbers, how many times less accurate and slower or faster each surrogate is."""
    md = (report / "report.md").read_text(encoding="utf-8")
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    m = evaluation.metrics
    best = min((n for n in SAMPLED_FORCING if INTEGRATORS[n].causal),
               key=lambda n: m[n]["nrmse_x"])
    assert ("integrator given only the samples F_i a surrogate has by each step (none after "
            f"F_i+1 for the step from t_i) is **{best}**") in summary
    ratio = m["exact-map"]["nrmse_x"] / m[best]["nrmse_x"]
    assert ratio > 1
    assert (f"**exact-map**: {fmt(ratio)} times less accurate (NRMSE x "
            f"{fmt(m['exact-map']['nrmse_x'])} against {fmt(m[best]['nrmse_x'])})") in summary
    pace = m["exact-map"]["wall_time_s"] / m[best]["wall_time_s"]
    words = f"{fmt(pace)} times slower" if pace > 1 else f"{fmt(1 / pace)} times faster"
    assert f"and {words} " in summary.split("**exact-map**:", 1)[1].split("\n", 1)[0]
    assert f"than {best}." in summary
    assert "**boom**: diverged on 1 trajectory" in summary


class Oracle:
    """The exact solution of the test set plus a known offset in x: more accurate than any
    integrator given the samples when the offset is tiny."""

    family = "oracle"
    target = "state"

    def __init__(self, x: np.ndarray, v: np.ndarray, offset: float) -> None:
        self.x, self.v, self.offset = x, v, offset

    def rollout(self, x0, v0, F, eta=None, warmup=None) -> Rollout:
        n, T = F.shape
        x = self.x[:n, :T] + self.offset
        x[:, 0] = x0
        return Rollout(x, self.v[:n, :T].copy(), np.full(n, -1))


def test_summary_says_more_accurate_when_a_surrogate_is() -> None:
    test = make_test_set(n=3, n_steps=100)
    x, v = INTEGRATORS["exact"](test.oscillator(), test.x[:, 0], test.v[:, 0], test.t)
    ev = evaluate(test, {"oracle": Oracle(x, v, 1e-12)}, work_precision=False, resonance=False,
                  progress=False)
    same = ev.info["same_information"]
    ratio = same["nrmse_x"] / ev.metrics["oracle"]["nrmse_x"]
    assert ratio > 10
    line = same_information_sentences(ev)[1]
    assert line.startswith(f"- **oracle**: {fmt(ratio)} times more accurate (NRMSE x ")
    assert line.endswith(f"than {same['baseline']}.")
    ev = evaluate(test, {"oracle": Oracle(x, v, 1e-12)}, integrators=("rk4",),
                  work_precision=False, resonance=False, progress=False)
    assert "No integrator given only the forcing samples" in same_information_sentences(ev)[0]


def test_the_resonance_finding_gives_the_exact_solutions_own_error(evaluation) -> None:
    """A short sweep leaves a transient that the exact solution's fit carries too: the summary
    gives that floor beside the surrogate's error, so the two read together."""
    from odernn.assess.report_findings import findings

    floor = evaluation.resonance["methods"]["exact"]
    line = next(s for s in findings(evaluation) if s.startswith("- Resonance:"))
    assert line.endswith(f"(the exact solution's own, the sweep's floor: "
                         f"{fmt(100 * floor['amplitude_rel_error_max'])}% and "
                         f"{fmt(floor['lag_error_max'])} rad).")


def test_a_median_valid_time_at_the_horizon_is_said_to_be_a_lower_bound() -> None:
    """A surrogate valid to the end of every trajectory has the horizon as its median valid
    time: the summary says ">=" and how many stayed valid, not "= t"."""
    from odernn.assess.report_findings import findings

    test = make_test_set(n=3, n_steps=100)
    x, v = INTEGRATORS["exact"](test.oscillator(), test.x[:, 0], test.v[:, 0], test.t)
    ev = evaluate(test, {"oracle": Oracle(x, v, 1e-12), "off": Oracle(x, v, 1.0)},
                  work_precision=False, resonance=False, chaos=False, progress=False)
    assert ev.metrics["oracle"]["valid_time_censored"] == 3
    assert ev.metrics["off"]["valid_time_censored"] == 0
    horizon = fmt_at_least(ev.metrics["oracle"]["valid_time_median"])
    assert (f"valid for a median t >= {horizon} (3 of 3 trajectories stayed "
            "within the threshold to the end)") in "".join(findings(ev))


def test_among_diverged_methods_the_headline_names_the_one_that_diverged_least() -> None:
    """Every NRMSE x is inf when every surrogate diverged somewhere: the most accurate is then
    the one with fewer diverged trajectories, not the first in display order."""
    from odernn.assess.report_findings import best_by_class_sentences, findings

    test = make_test_set(n=4, n_steps=100)
    ev = evaluate(test, {"many": Exploding([0, 1, 2]), "one": Exploding([3])},
                  work_precision=False, resonance=False, chaos=False, progress=False)
    assert ev.metrics["many"]["nrmse_x"] == ev.metrics["one"]["nrmse_x"] == np.inf
    assert ev.best_by_class()["data only"] == "one"
    assert "data only: **one**" in best_by_class_sentences(ev)[0]
    assert any(line.startswith("- Most accurate surrogate: **one**") for line in findings(ev))


def test_a_report_of_errors_that_are_all_gaps_is_written(tmp_path: Path) -> None:
    """An error plot whose every value is a gap on its log axis (no finite positive error:
    exact until its every trajectory diverges, as a model given data in other units does at
    once) is drawn on a linear axis that says so; it raised a traceback."""
    class AtOnce(Exploding):
        def rollout(self, x0, v0, F, params=None, warmup=None) -> Rollout:
            r = super().rollout(x0, v0, F, params, warmup)
            r.x[:, 1:] = r.v[:, 1:] = np.inf
            r.diverged_at[:] = 1
            return r

    test = make_test_set(n=3, n_steps=100)
    ev = evaluate(test, {"exploding": AtOnce([])}, integrators=(),
                  work_precision=False, resonance=False, chaos=False, bifurcation=False,
                  progress=False)
    assert ev.metrics["exploding"]["n_diverged"] == 3
    out = write_report(ev, tmp_path / "report")
    assert (out / "error-vs-time.png").stat().st_size > 0
    from odernn.assess.figures import error_plot  # with a mark (chaos's trust horizon) too

    fig = error_plot(ev, {"exploding": "C0"}, marks=[(1.0, "trust horizon")])
    fig.savefig(io.BytesIO(), format="png")


def test_the_error_in_lyapunov_times_starts_at_the_first_sample() -> None:
    """A recorded clock starts anywhere (here at t = 1000): the axis in Lyapunov times is
    time since the first sample, where the trust horizon (time since the first sample) is
    marked. The curves were drawn at t / unit, 150 Lyapunov times from the mark."""
    import dataclasses

    from odernn.assess.report_chaos import chaos_error_figure

    test = make_test_set(n=3, n_steps=100, t0=1000.0)
    ev = evaluate(test, {"exploding": Exploding([])}, integrators=(), work_precision=False,
                  resonance=False, chaos=False, bifurcation=False, progress=False)
    lyapunov = 0.15
    ev = dataclasses.replace(ev, chaos={"chaotic": True, "lyapunov": {"median": lyapunov},
                                        "trust_horizon": {"median": 2.0}})
    ax = chaos_error_figure(ev, {"exploding": "C0"}).image.axes[0]
    curve, mark = ax.lines[0].get_xdata(), ax.lines[-1].get_xdata()
    horizon = test.t[-1] - test.t[0]
    np.testing.assert_allclose(curve[[0, -1]], [0.0, horizon * lyapunov], rtol=1e-12)
    np.testing.assert_allclose(mark, [2.0 * lyapunov] * 2, rtol=1e-12)


def test_trajectory_figures_name_the_reference_they_are_drawn_against(tmp_path: Path) -> None:
    """A system without a closed form is measured against its stored trajectories: the
    trajectory figures must not say that they show an exact solution."""
    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import load_spec

    test = simulate_trajectories(load_spec("duffing-test").with_overrides(n=3, n_steps=120))
    ev = evaluate(test, {"zeros": Zeros()}, integrators=("rk4",), work_precision=False,
                  resonance=False, chaos=False, bifurcation=False, progress=False)
    assert ev.reference == "data"
    assert ev.info["data"]["stored_vs_exact_rmse"] is None  # no distance, not one of 0
    md = (write_report(ev, tmp_path / "report") / "report.md").read_text(encoding="utf-8")
    figures = md.split("## Trajectories", 1)[1].split("\n## ", 1)[0]
    assert "exact solution" not in figures
    assert "zeros against the stored test trajectories" in figures


PROBE = """<script>
window.addEventListener("load", () => {
  // Each image drawn on a canvas: its size, or "partial" if its last row is not opaque
  // (a truncated or corrupt PNG decodes partially), "0x0" if it did not load at all.
  const out = Array.from(document.images, img => {
    if (!img.complete || img.naturalWidth === 0) return "0x0";
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const row = g.getImageData(0, c.height - 1, c.width, 1).data;
    let opaque = 0;
    for (let i = 3; i < row.length; i += 4) opaque += row[i] === 255;
    return opaque === c.width ? c.width + "x" + c.height : "partial";
  });
  document.body.setAttribute("data-images", out.join(" "));
});
</script></body>"""


def test_page_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed, and CI=true requires the browser test")
        pytest.skip("chromium not installed (apt-get install chromium)")
    html = (report / "report.html").read_text(encoding="utf-8")
    expected = []
    for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html):
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.load()  # raises on a truncated or corrupt PNG
            expected.append(f"{image.width}x{image.height}")
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", PROBE), encoding="utf-8")
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120)
    seen = re.search(r'data-images="([^"]*)"', result.stdout)
    assert seen, result.stderr[-2000:]
    assert seen.group(1).split() == expected
    assert len(expected) == len(list(report.glob("*.png")))


def test_existing_output_needs_overwrite(small, report: Path) -> None:
    with pytest.raises(OutputError, match="--overwrite"):
        write_report(small, report)
    before = (report / "metrics.json").stat().st_mtime_ns
    write_report(small, report, overwrite=True, title="again")
    assert (report / "metrics.json").stat().st_mtime_ns != before
    assert "<title>again</title>" in (report / "report.html").read_text(encoding="utf-8")
    assert not (report / "presets.png").exists()  # the old report was replaced, not merged


def test_refuses_to_replace_what_is_not_a_report(small, tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("precious")
    with pytest.raises(OutputError, match="not an odernn report"):
        write_report(small, tmp_path / "home", overwrite=True)
    assert (tmp_path / "home" / "thesis.tex").read_text() == "precious"
    with pytest.raises(OutputError, match="does not exist"):
        write_report(small, tmp_path / "missing" / "report")


def test_failure_leaves_no_partial_report(small, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "report"
    write_report(small, out)
    old = (out / "report.html").read_text(encoding="utf-8")
    real = Path.write_text

    def fail_on_html(self, text, *args, **kwargs):
        if self.name == "report.html":
            raise OSError(28, "No space left on device")
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", fail_on_html)
    with pytest.raises(OutputError, match="No space left"):
        write_report(small, out, overwrite=True)
    with pytest.raises(OutputError):
        write_report(small, tmp_path / "fresh")
    monkeypatch.undo()
    assert (out / "report.html").read_text(encoding="utf-8") == old
    assert sorted(os.listdir(tmp_path)) == ["report"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_while_writing_files_keeps_the_previous_report(small, tmp_path: Path,
                                                              monkeypatch, sig) -> None:
    out = tmp_path / "report"
    write_report(small, out)
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    real = Path.write_text

    def signal_on_markdown(self, text, *args, **kwargs):  # half way through the files
        if self.name == "report.md":
            os.kill(os.getpid(), sig)
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", signal_on_markdown)
    with pytest.raises(KeyboardInterrupt):
        write_report(small, out, overwrite=True, title="interrupted")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_signal_during_the_swap_waits_for_it(small, tmp_path: Path, monkeypatch) -> None:
    """Too late to stop the swap: the new report is in place, and the signal then ends the
    command (it is not lost). The swap by three renames, where the system has no renameat2
    (with it the two directories are exchanged in one call)."""
    import ctypes.util

    out = tmp_path / "report"
    write_report(small, out)
    real = os.replace
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)

    def signal_after_moving_the_old_report_aside(src, dst):
        real(src, dst)
        if Path(src) == out:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", signal_after_moving_the_old_report_aside)
    with pytest.raises(KeyboardInterrupt):
        write_report(small, out, overwrite=True, title="swapped")
    monkeypatch.undo()
    assert "<title>swapped</title>" in (out / "report.html").read_text(encoding="utf-8")
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_corrupt_history_is_a_data_error(evaluation, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "history.json").write_text("{not json")
    with pytest.raises(DataError, match="history"):
        write_report(evaluation, tmp_path / "report", runs={"zeros": run})
    assert not (tmp_path / "report").exists()
    (run / "history.json").write_text(json.dumps({"epoch": [1, 2], "train_loss": [2.0, 1.0],
                                                  "note": ["a", "b"]}))
    assert set(read_history(run)) == {"epoch", "train_loss"}


def test_fmt() -> None:
    values = (0.0123456, 1.5e-5, 2e6, 1234.5, 12.345, 3, float("inf"), -float("inf"),
              float("nan"), None, [0.062106, 0.5])
    assert [fmt(v) for v in values] == [
        "0.0123", "1.50e-05", "2.00e+06", "1234", "12.3", "3", "∞", "-∞", "–", "–",
        "0.0621, 0.5"]


def test_a_lower_bound_is_rounded_down_never_up() -> None:
    """A censored valid time of 49.95 (the horizon of 1000 steps of 0.05) is ">= 49.9":
    fmt's "50" would claim more than was measured."""
    values = (49.95, 50.0, 0.3, 99.96, 9999.5, 12345.6, 1.2345e-4, 7.47, float("inf"))
    assert [fmt_at_least(v) for v in values] == [
        "49.9", "50", "0.3", "99.9", "9999", "1.23e+04", "1.23e-04", "7.47", "∞"]
    assert all(float(fmt_at_least(v)) <= v for v in np.geomspace(1e-5, 1e6, 997))


def test_summary_compares_no_accuracy_when_the_baseline_diverged_too() -> None:
    """A surrogate and its same-information baseline both infinite: neither is "far less
    accurate" than the other."""
    test = make_test_set(n=3, n_steps=100)
    x, v = INTEGRATORS["exact"](test.oscillator(), test.x[:, 0], test.v[:, 0], test.t)
    x = x.copy()
    x[0, 50:] = np.inf
    ev = evaluate(test, {"oracle": Oracle(x, v, 0.0)}, work_precision=False, resonance=False,
                  progress=False)
    assert ev.metrics["oracle"]["nrmse_x"] == np.inf
    ev.info["same_information"]["nrmse_x"] = np.inf  # as if the baseline had diverged
    line = same_information_sentences(ev)[1]
    assert "not comparable in accuracy" in line and "far less" not in line
    assert line.endswith(f"than {ev.info['same_information']['baseline']}.")


def test_a_family_keeps_its_colour_from_report_to_report() -> None:
    """Colours were handed out in order of appearance: sindy was orange in one report and
    red (another report's lstm) in the next. The first method of a family or peer has the
    family's colour; a second of the same family another, never a colour already taken."""
    from types import SimpleNamespace

    from odernn.assess.figures import FAMILY_COLORS, method_colors

    def evaluation(*methods):
        return SimpleNamespace(resonance=None, bifurcation=None, methods={
            name: SimpleNamespace(kind=kind, settings={"family": family} if family else {})
            for name, kind, family in methods})

    one = method_colors(evaluation(("exact", "reference", None), ("esn", "surrogate", "esn"),
                                   ("sindy", "peer", None)))
    two = method_colors(evaluation(("exact", "reference", None), ("my-run", "surrogate", "lstm"),
                                   ("sindy", "peer", None), ("esn", "surrogate", "esn"),
                                   ("esn-2", "surrogate", "esn")))
    assert one["sindy"] == two["sindy"] == FAMILY_COLORS["sindy"]
    assert one["esn"] == two["esn"] == FAMILY_COLORS["esn"]
    assert two["my-run"] == FAMILY_COLORS["lstm"]
    assert len(set(two.values())) == len(two)  # esn-2 has one of its own


def test_markdown_tables_align_numbers_right_and_text_left() -> None:
    from odernn.assess.document import render_markdown

    text = render_markdown("t", "m", [Section("S", "", [
        Table(["method", "NRMSE x", "over"], [["esn", np.float64(0.5), "rk4 h=0.2"],
                                             ["gru", None, "scipy"]]),
        Table(["a", "b"], [])])])
    assert "|---|---:|---|" in text and "|---|---|" in text


def test_the_report_names_the_versions_that_drew_and_fitted_it() -> None:
    from odernn.assess.provenance import versions

    assert {"odernn", "numpy", "scipy", "h5py", "matplotlib"} <= set(versions())


def test_a_known_system_evaluated_without_integrators_is_not_said_unknown(tmp_path: Path) -> None:
    """With integrators=() on a pendulum test set the report said its equation is not
    known; none was asked for."""
    from odernn.data.simulate import simulate_trajectories
    from odernn.data.spec import load_spec

    test = simulate_trajectories(load_spec("pendulum-test").with_overrides(n=3, n_steps=120))
    ev = evaluate(test, {"zeros": Zeros()}, integrators=(), work_precision=False,
                  resonance=False, chaos=False, bifurcation=False, progress=False)
    md = (write_report(ev, tmp_path / "report") / "report.md").read_text(encoding="utf-8")
    assert "No integrator was asked for." in md and "equation is not known" not in md


def test_a_long_curve_is_drawn_with_its_extremes_in_a_few_thousand_points():
    """A test set of 10^6 steps drew every point of every curve (3.4 GB). A curve against
    time now keeps, of each run of consecutive points, where each curve is least and
    greatest: every peak and trough shows, in time order, NaN gaps stay gaps."""
    from odernn.assess.figures import PLOT_POINTS, _extremes

    assert _extremes(PLOT_POINTS, np.ones(PLOT_POINTS)).tolist() == list(range(PLOT_POINTS))
    rng = np.random.default_rng(0)
    n = 1_000_003
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    a[5000:9000] = np.nan
    a[777_777], b[123_456] = 50.0, -50.0
    k = _extremes(n, a, b)
    assert len(k) <= PLOT_POINTS + 4 and np.all(np.diff(k) > 0) and k[-1] < n
    assert 777_777 in k and 123_456 in k
    assert np.nanmax(a[k]) == np.nanmax(a) and np.nanmin(b[k]) == np.nanmin(b)
    assert np.isnan(a[k[(k >= 5000) & (k < 9000)]]).all()


@pytest.mark.parametrize(("change", "needle"), [
    ({"extra_sections": "abc"}, "extra_sections must be a sequence of Section"),
    ({"title": 5}, "title must be a str, got int 5"),
    ({"out_dir": 5}, "out_dir must be a str or os.PathLike"),
    ({"runs": {"nope": "runs/nope"}}, "runs names 'nope', which is no surrogate"),
])
def test_write_reports_arguments_are_refused_in_words(small, tmp_path, change, needle):
    """They failed deep inside (no attribute 'figures', pathlib's TypeError, 'int' is not
    iterable), or, a run named for no surrogate, were taken silently."""
    args = {"out_dir": tmp_path / "r", **change}
    with pytest.raises(SpecError, match=needle):
        write_report(small, **args)
    assert not (tmp_path / "r").exists()
