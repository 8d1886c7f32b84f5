"""The evaluation report: figures, ``metrics.json``, ``report.md`` and ``report.html``.

``report.html`` is one self-contained file (figures embedded as base64 PNG
data URIs, inline CSS, no external reference) that opens in any browser
without a network. Everything is written into a temporary directory beside
the target and renamed into place when complete (:mod:`odernn.atomic`), so a
failure never leaves a partial report. The directory's ``.odernn-report`` names
every file the report wrote: ``--overwrite`` replaces a directory only if it holds
nothing else.

The document is a list of :class:`Section` (text, :class:`Table`,
:class:`Figure`), rendered twice, to HTML and to Markdown; callers add their
own sections (``extra_sections``) with the same three pieces. Figures use
matplotlib's object API (no pyplot, no global backend): headless by design.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
import shutil
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from odernn import atomic, jsonio
from odernn.assess.evaluate import REFERENCE, Evaluation
from odernn.assess.metrics import METRICS
from odernn.errors import DataError, OutputError, SpecError
from odernn.interrupt import interrupt_guard

HEADERS: dict[str, str] = {
    "nrmse_x": "NRMSE x", "nrmse_v": "NRMSE v", "rmse_x": "RMSE x", "rmse_v": "RMSE v",
    "nrmse_x_first_tenth": "NRMSE x, first tenth", "nrmse_v_first_tenth": "NRMSE v, first tenth",
    "rmse_x_first_tenth": "RMSE x, first tenth", "rmse_v_first_tenth": "RMSE v, first tenth",
    "median_nrmse_x": "median NRMSE x", "median_nrmse_v": "median NRMSE v",
    "valid_time_median": "valid time, median", "valid_time_p10": "valid time, p10",
    "energy_balance": "energy balance", "n_diverged": "diverged",
    "wall_time_s": "wall time [s]", "steps_per_s": "steps/s", "speedup": "speed-up",
}
"""Column header of each metric in the report's tables."""
INTEGRATOR_COLORS = {"exact": "#000000", "scipy": "#e377c2", "euler": "#8c564b",
                     "semi-implicit-euler": "#bcbd22", "rk4": "#17becf", "rk4-sampled": "#7f7f7f",
                     "rk4-sampled-cubic": "#c49c94", "rk4-sampled-spline": "#9edae5",
                     "rk4-sampled-2dt": "#dbdb8d"}
SURROGATE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#393b79",
                    "#637939", "#843c39")
DPI = 110


@dataclass(frozen=True)
class Table:
    """Rows of cells (numbers are formatted by the report); with ``swatches``, a method
    name in the first column gets its colour swatch."""

    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    caption: str = ""
    swatches: bool = True


@dataclass(frozen=True)
class Figure:
    """A figure: a matplotlib Figure or PNG bytes, saved as ``<name>.png``."""

    name: str
    caption: str
    image: MplFigure | bytes


@dataclass(frozen=True)
class Section:
    """A titled part of the report. ``text``: paragraphs separated by blank lines; a
    paragraph of ``- `` lines is a list; ``code`` and ``**bold**`` work inline."""

    title: str
    text: str = ""
    tables: Sequence[Table] = ()
    figures: Sequence[Figure] = ()
    preformatted: Sequence[tuple[str, str]] = ()


def write_report(
    evaluation: Evaluation,
    out_dir: str | Path,
    *,
    runs: Mapping[str, Path] | None = None,
    title: str = "odernn evaluation report",
    overwrite: bool = False,
    extra_sections: Sequence[Section] = (),
) -> Path:
    """Write the report directory ``out_dir`` atomically and return it.

    ``runs`` maps surrogate names to their run directories, for the loss curves
    and the training configurations; ``extra_sections`` come after the
    evaluator's sections. An existing ``out_dir`` is replaced only with
    ``overwrite`` and only if it is an odernn report (or empty).
    """
    out = Path(out_dir)
    check_report_dir(out, overwrite)
    colors = method_colors(evaluation)
    sections = [
        _summary(evaluation, colors),
        _accuracy(evaluation, colors),
        _trajectories(evaluation, colors),
        _work_precision(evaluation, colors),
        _resonance(evaluation, colors),
        _training(runs or {}, colors),
        *extra_sections,
        _provenance(evaluation, runs or {}),
    ]
    meta = (f"odernn {evaluation.info['versions']['odernn']} · created "
            f"{evaluation.info['created']} · test set "
            f"{evaluation.info['data']['path'] or '(in memory)'}")
    metrics = jsonio.dumps(evaluation.to_json(), indent=1) + "\n"
    return write_document(out, title, meta, sections, colors=colors, overwrite=overwrite,
                          files={"metrics.json": metrics})


def write_document(out_dir: str | Path, title: str, meta: str, sections: Sequence[Section], *,
                   colors: Mapping[str, str] | None = None, files: Mapping[str, str] | None = None,
                   overwrite: bool = False) -> Path:
    """Write ``sections`` as ``report.html`` (self-contained), ``report.md`` and PNGs, plus
    ``files`` (name -> text), into ``out_dir`` atomically (a temporary directory renamed into
    place); the report writer for evaluations and for anything else (the notes' presets)."""
    out = Path(out_dir)
    check_title(title)
    check_report_dir(out, overwrite)
    names = [f.name for s in sections for f in s.figures]
    if len(set(names)) != len(names) or not all(re.fullmatch(r"[\w.-]+", n) for n in names):
        raise ValueError(f"figure names must be unique file stems, got {names}")
    pngs = {f.name: _png(f.image) for s in sections for f in s.figures}
    files = {
        **(files or {}),
        "report.md": render_markdown(title, meta, sections),
        "report.html": render_html(title, meta, sections, pngs, colors or {}),
    }
    written = sorted([*files, *(f"{name}.png" for name in pngs)])
    if atomic.REPORT_MARKER in written:
        raise ValueError(f"{atomic.REPORT_MARKER} is the report's own file name")
    tmp: Path | None = None
    try:
        # a signal while writing stops before the swap (nothing changes) or waits for it
        with interrupt_guard() as interrupted:
            tmp = atomic.make_dir_beside(out)
            for name, png in pngs.items():
                (tmp / f"{name}.png").write_bytes(png)
            for name, text in files.items():
                (tmp / name).write_text(text, encoding="utf-8")
            marker = {"written_by": "odernn report", "files": written}
            (tmp / atomic.REPORT_MARKER).write_text(jsonio.dumps(marker) + "\n", encoding="utf-8")
            if interrupted():
                raise KeyboardInterrupt
            atomic.install_dir(tmp, out, check=lambda: check_report_dir(out, overwrite))
    except OutputError:
        raise
    except OSError as err:
        raise OutputError(f"cannot write report {out}: {err.strerror or err}") from err
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def check_report_dir(out: Path, overwrite: bool, inputs: Sequence[Path | None] = ()) -> None:
    """OutputError unless ``out`` can be written: its parent exists, it is none of ``inputs``
    and holds none, and it is new or empty, or ``overwrite`` is set and it holds only a
    previous report's files (:func:`odernn.atomic.check_output`). Cheap: call it before a
    long evaluation to fail fast."""
    atomic.check_output(out, "report", overwrite=overwrite, inputs=inputs)


def check_title(title: str) -> None:
    """SpecError for a title with a line break or other control character: the title is one
    line of the HTML and Markdown, and a new line would start markup of its own."""
    bad = next((c for c in title if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        raise SpecError(f"--title contains the control character {bad!r}; a title is one line "
                        f"of plain text")


# -- formatting ----------------------------------------------------------------------------

def fmt(value: Any) -> str:
    """A cell: 3 significant digits, scientific when tiny or huge, ``∞`` for inf."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
        if v == 0:
            return "0"
        if abs(v) < 1e-3 or abs(v) >= 1e4:
            return f"{v:.2e}"
        return f"{v:.{max(3, 1 + int(math.log10(abs(v))))}g}"  # 1234, 12.3, 0.0123
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, default=str)
    return str(value)


def method_colors(evaluation: Evaluation) -> dict[str, str]:
    """One colour per method, the same in every figure and table."""
    colors = {}
    surrogates = iter(SURROGATE_COLORS * (1 + len(evaluation.methods) // len(SURROGATE_COLORS)))
    for name, m in evaluation.methods.items():
        colors[name] = (INTEGRATOR_COLORS.get(name, "#555555") if m.kind != "surrogate"
                        else next(surrogates))
    return colors


def _png(image: MplFigure | bytes) -> bytes:
    if isinstance(image, bytes):
        return image
    buf = io.BytesIO()
    image.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _inline_html(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    """Paragraphs (``("p", [text])``) and lists (``("ul", items)``) of a text."""
    blocks = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in para.splitlines() if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            blocks.append(("ul", [line[2:] for line in lines]))
        elif lines:
            blocks.append(("p", [" ".join(lines)]))
    return blocks


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


# -- rendering -----------------------------------------------------------------------------

CSS = """
:root { --fg: #1d232a; --muted: #5b6570; --line: #d9dee4; --accent: #2456a6; --soft: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 16px/1.6 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
main { max-width: 64rem; margin: 0 auto; padding: 2.5rem 1.5rem 4rem; }
h1 { font-size: 2rem; line-height: 1.2; margin: 0 0 .3rem; }
h2 { font-size: 1.4rem; margin: 3rem 0 .8rem; padding-bottom: .3rem;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
p, li { max-width: 46rem; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.meta { color: var(--muted); margin: 0 0 1.5rem; font-size: .95rem; }
nav { background: var(--soft); border-radius: 6px; padding: .6rem 1.2rem; font-size: .95rem; }
nav ol { margin: .2rem 0; padding-left: 1.2rem; columns: 2; }
.table-wrap { overflow-x: auto; margin: 1rem 0 1.5rem; }
table { border-collapse: collapse; font-size: .88rem; font-variant-numeric: tabular-nums;
  min-width: 50%; }
th, td { padding: .35rem .7rem; text-align: left; border-bottom: 1px solid var(--line); }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }
thead th.num { min-width: 4.5rem; }
td:first-child { white-space: nowrap; }
thead th { border-bottom: 2px solid var(--fg); font-weight: 600; vertical-align: bottom;
  max-width: 8rem; }
tbody tr:hover { background: var(--soft); }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: .85rem;
  padding-top: .45rem; }
.swatch { display: inline-block; width: .75em; height: .75em; border-radius: 2px;
  margin-right: .45em; vertical-align: -.02em; }
figure { margin: 1.8rem 0; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { color: var(--muted); font-size: .9rem; margin-top: .5rem; max-width: 46rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: .85em; background: var(--soft); border-radius: 3px; }
code { padding: .05em .3em; }
pre { padding: .8rem 1rem; overflow-x: auto; line-height: 1.45; }
footer { margin-top: 3rem; color: var(--muted); font-size: .85rem; }
@media print { nav { display: none; } h2 { break-after: avoid; } figure { break-inside: avoid; } }
"""


def render_html(title: str, meta: str, sections: Sequence[Section], pngs: Mapping[str, bytes],
                colors: Mapping[str, str]) -> str:
    """The self-contained HTML page."""
    esc = html.escape
    toc = "".join(f'<li><a href="#{_anchor(s.title)}">{esc(s.title)}</a></li>' for s in sections)
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>", "<main>",
        f"<header><h1>{esc(title)}</h1><p class=\"meta\">{esc(meta)}</p></header>",
        f"<nav><strong>Contents</strong><ol>{toc}</ol></nav>",
    ]
    for s in sections:
        parts.append(f'<section id="{_anchor(s.title)}"><h2>{esc(s.title)}</h2>')
        for kind, items in _blocks(s.text):
            if kind == "ul":
                parts.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in items)
                             + "</ul>")
            else:
                parts.append(f"<p>{_inline_html(items[0])}</p>")
        parts += [_html_table(t, colors) for t in s.tables]
        for f in s.figures:
            data = base64.b64encode(pngs[f.name]).decode("ascii")
            parts.append(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(f.caption)}">'
                         f"<figcaption>{_inline_html(f.caption)}</figcaption></figure>")
        for heading, text in s.preformatted:
            parts.append(f"<h3>{esc(heading)}</h3><pre>{esc(text)}</pre>")
        parts.append("</section>")
    parts += [f"<footer>{esc(meta)}</footer>", "</main>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _html_table(table: Table, colors: Mapping[str, str]) -> str:
    """Numeric columns right-aligned (headers too), text columns left-aligned."""
    esc = html.escape
    numeric = [all(v is None or isinstance(v, int | float | np.number) and not isinstance(v, bool)
                   for v in col) for col in zip(*table.rows, strict=True)] or \
        [False] * len(table.columns)
    align = ['' if not num or i == 0 else ' class="num"' for i, num in enumerate(numeric)]
    head = "".join(f"<th{a}>{esc(c)}</th>" for a, c in zip(align, table.columns, strict=True))
    rows = []
    for row in table.rows:
        cells = []
        for i, value in enumerate(row):
            text = esc(fmt(value))
            if i == 0 and table.swatches and isinstance(value, str) and value in colors:
                text = f'<span class="swatch" style="background:{colors[value]}"></span>{text}'
            cells.append(f"<td{align[i]}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = f"<caption>{_inline_html(table.caption)}</caption>" if table.caption else ""
    return (f'<div class="table-wrap"><table>{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def render_markdown(title: str, meta: str, sections: Sequence[Section]) -> str:
    """The Markdown report; figures are the PNG files beside it."""
    lines = [f"# {html.escape(title, quote=False)}", "", f"_{meta}_", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for kind, items in _blocks(s.text):
            lines += ([f"- {i}" for i in items] if kind == "ul" else items) + [""]
        for t in s.tables:
            lines.append("| " + " | ".join(t.columns) + " |")
            lines.append("|" + "|".join(["---"] + ["---:"] * (len(t.columns) - 1)) + "|")
            lines += ["| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |"
                      for row in t.rows]
            lines += (["", f"_{t.caption}_"] if t.caption else []) + [""]
        for f in s.figures:
            lines += [f"![{f.caption}]({f.name}.png)", "", f"_{f.caption}_", ""]
        for heading, text in s.preformatted:
            lines += [f"### {heading}", "", "```", text, "```", ""]
    return "\n".join(lines)


# -- the sections --------------------------------------------------------------------------

def _methods_of(ev: Evaluation, kind: str) -> list[str]:
    return [name for name, m in ev.methods.items() if m.kind == kind]


def _summary(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    data, settings = ev.info["data"], ev.info["settings"]
    surrogates = _methods_of(ev, "surrogate")
    integrators = [n for n, m in ev.methods.items() if m.kind != "surrogate"]
    what = (f"Compared {len(surrogates)} surrogate{'s' * (len(surrogates) != 1)} "
            f"({', '.join(surrogates) or 'none'}) with {len(integrators)} integrators "
            f"({', '.join(integrators)}) on {data['n_trajectories']} test trajectories of "
            f"{data['n_steps']} time points (dt = {data['dt']:g}, t up to {data['t_end']:g}), "
            f"forcing `{data['forcing']}`, eta in [{data['eta_range'][0]:.3g}, "
            f"{data['eta_range'][1]:.3g}], from `{data['path'] or '(in memory)'}`. "
            f"Every error is against the exact solution over steps {ev.start}..."
            f"{data['n_steps'] - 1}, pooled over trajectories; NRMSE divides by the test set's "
            f"std (x: {settings['error_scale']['x']:.3g}, v: {settings['error_scale']['v']:.3g}).")
    keys = ("nrmse_x", "nrmse_v", "valid_time_median", "n_diverged", "wall_time_s", "speedup")
    resonance = (ev.resonance or {}).get("methods", {})
    table = Table(
        ["method", "kind", *(HEADERS[k] for k in keys), "resonance amplitude error, max"],
        [[n, m.kind, *(m.metrics.get(k) for k in keys),
          resonance.get(n, {}).get("amplitude_rel_error_max")] for n, m in ev.methods.items()],
        "Key numbers. Speed-up: over the cheapest integrator setting at least as accurate in "
        "NRMSE x (work-precision section). Resonance: relative error of the steady-state "
        "amplitude, worst over the sweep. Definitions at the end.")
    return Section("Summary", what + "\n\n" + "\n".join(_findings(ev)), [table])


def same_information_sentences(ev: Evaluation) -> list[str]:
    """Each surrogate against the most accurate integrator given only the forcing samples:
    how many times more or less accurate (NRMSE x) and faster or slower (wall time), from
    the measured numbers."""
    same = ev.info.get("same_information")
    surrogates = _methods_of(ev, "surrogate")
    if not surrogates:
        return []
    if same is None:
        return ["- No integrator given only the forcing samples (`rk4-sampled*`) was run, so "
                "no surrogate is compared with one that has the same information."]
    base = same["baseline"]
    out = [f"- The most accurate integrator given only the samples F_i, the information a "
           f"surrogate has, is **{base}** ({same['description']}): NRMSE x "
           f"{fmt(same['nrmse_x'])}, wall time {fmt(same['wall_time_s'])} s "
           f"(best of {', '.join(f'`{c}`' for c in same['candidates'])})."]
    for name in surrogates:
        s = same["surrogates"][name]
        error = s["nrmse_x"]
        if not math.isfinite(error):
            n = ev.metrics[name]["n_diverged"]
            accuracy = (f"diverged on {n} trajector{'y' if n == 1 else 'ies'} (NRMSE x "
                        f"{fmt(error)}), far less "
                        "accurate") if n else f"NRMSE x {fmt(error)}, less accurate"
        else:
            words = _times(s["error_ratio"], "less accurate", "more accurate", "as accurate")
            accuracy = f"{words} (NRMSE x {fmt(error)} against {fmt(same['nrmse_x'])})"
        pace = (f"{_times(s['time_ratio'], 'slower', 'faster', 'as fast')} "
                f"({fmt(s['wall_time_s'])} s against {fmt(same['wall_time_s'])} s)")
        out.append(f"- **{name}**: {accuracy} and {pace} than {base}.")
    return out


def _times(ratio: float, above: str, below: str, equal: str) -> str:
    """``ratio`` (surrogate over baseline) in words: "3.2 times slower", "2 times faster"."""
    if math.isnan(ratio):
        return f"not comparable ({below} or {above})"
    if ratio == 1:
        return equal
    if ratio > 1:
        return f"{fmt(ratio)} times {above}"
    return f"{fmt(1 / ratio)} times {below}" if ratio > 0 else f"infinitely {below}"


def _findings(ev: Evaluation) -> list[str]:
    """The few sentences a reader needs first."""
    out = same_information_sentences(ev)
    surrogates = _methods_of(ev, "surrogate")
    if surrogates:
        best = min(surrogates, key=lambda s: ev.metrics[s]["nrmse_x"])
        m = ev.metrics[best]
        out.append(f"- Most accurate surrogate: **{best}**, NRMSE x {fmt(m['nrmse_x'])} "
                   f"(median per trajectory {fmt(m['median_nrmse_x'])}), valid for a median "
                   f"t = {fmt(m['valid_time_median'])}; {m['n_diverged']} of "
                   f"{ev.info['data']['n_trajectories']} trajectories diverged.")
        s = (ev.work_precision or {}).get("speedup", {}).get(best)
        if s and s["speedup"] is not None:
            ratio = s["speedup"]
            pace = f"{fmt(ratio)}x faster" if ratio >= 1 else f"{fmt(1 / ratio)}x slower"
            out.append(f"- {best} is {pace} than the cheapest integrator setting at least as "
                       f"accurate ({s['over']}).")
        elif s:
            out.append(f"- {best}: no speed-up to claim ({s['reason']}).")
        r = (ev.resonance or {}).get("methods", {}).get(best)
        if r:
            out.append(f"- Resonance: {best}'s steady-state amplitude is within "
                       f"{fmt(100 * r['amplitude_rel_error_max'])}% of the analytic curve and "
                       f"its phase within {fmt(r['lag_error_max'])} rad, worst over the sweep.")
    warm = [n for n in surrogates if ev.methods[n].settings.get("warmup_steps")]
    if warm:
        out.append(f"- {', '.join(warm)} observed warm-up steps (eta withheld), so every "
                   f"method's error starts at step {ev.start}.")
    diverged = [name for name, m in ev.metrics.items() if m["n_diverged"]]
    if diverged:
        counts = ", ".join(f"{d} {ev.metrics[d]['n_diverged']}" for d in diverged)
        out.append(f"- Diverged trajectories (never dropped; aggregates that include them are "
                   f"∞): {counts}.")
    stored = ev.info["data"]["stored_vs_exact_rmse"]
    if max(stored.values()) > 1e-6 * ev.info["settings"]["error_scale"]["x"]:
        out.append(f"- The stored test trajectories differ from the exact solution by RMSE "
                   f"x {fmt(stored['x'])}, v {fmt(stored['v'])} (the simulator's integrator); "
                   "errors here are against the exact solution.")
    return out


def _accuracy(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    groups = [
        ("Error over the whole horizon and its first tenth.",
         ("nrmse_x", "nrmse_v", "rmse_x", "rmse_v", "nrmse_x_first_tenth",
          "nrmse_v_first_tenth", "rmse_x_first_tenth", "rmse_v_first_tenth")),
        ("Robustness and physics: per-trajectory medians (finite even when some trajectories "
         "diverge), valid prediction time, energy balance, divergence count.",
         ("median_nrmse_x", "median_nrmse_v", "valid_time_median", "valid_time_p10",
          "energy_balance", "n_diverged")),
        ("Speed: wall time to produce every test trajectory, and throughput.",
         ("wall_time_s", "steps_per_s", "speedup")),
    ]
    tables = [Table(["method", *(HEADERS[k] for k in keys)],
                    [[n, *(m.metrics.get(k) for k in keys)] for n, m in ev.methods.items()],
                    caption) for caption, keys in groups]
    figure = Figure("error-vs-time", "Error against time, divided by the test set's std: "
                    "median over trajectories (line) and 90th percentile (band). The exact "
                    "reference has no error and is not drawn.", _error_plot(ev, colors))
    text = ("Each method produced all test trajectories from their initial states. The "
            "surrogates see the forcing only at the samples F_i, as do forward and "
            "semi-implicit Euler and the `rk4-sampled*` integrators; `rk4` and `scipy` "
            "evaluate it between the samples too, which a surrogate cannot. The valid "
            "prediction time is the first time the error in x "
            f"exceeds {ev.info['settings']['valid_time_threshold']:g} of the test set's std.")
    return Section("Accuracy", text, tables, [figure])


def _trajectories(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    surrogates = _methods_of(ev, "surrogate")
    if not surrogates:
        return Section("Trajectories", "No surrogates were evaluated.")
    stems = [f"trajectories-{_anchor(name) or 'surrogate'}" for name in surrogates]
    stems = [stem if stems.count(stem) == 1 else f"{stem}-{i}" for i, stem in enumerate(stems)]
    figures = [Figure(stem, f"{name} against the exact solution on its best, median and worst "
                      "test trajectory (by NRMSE x).", _overlay_plot(ev, name, colors))
               for stem, name in zip(stems, surrogates, strict=True)]
    figures.append(Figure("phase-portraits", "Phase portraits (x, v) of each surrogate's median "
                          "trajectory, exact solution in black.", _phase_plot(ev, colors)))
    return Section("Trajectories", "", (), figures)


def _work_precision(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    wp = ev.work_precision
    if wp is None:
        return Section("Work-precision", "The work-precision sweep was not run.")
    rows = [[p["method"], p["setting"], p["error"], p["wall_time_s"]] for p in wp["integrators"]]
    settings = Table(["method", "setting", "NRMSE x", "wall time [s]"], rows,
                     "Every integrator setting of the sweep.")
    speed = Table(["surrogate", "NRMSE x", "wall time [s]", "speed-up", "over"],
                  [[n, wp["surrogates"][n]["error"], wp["surrogates"][n]["wall_time_s"],
                    s["speedup"], s.get("over", s.get("reason"))]
                   for n, s in wp["speedup"].items()],
                  "Speed-up over the cheapest integrator setting at least as accurate.")
    text = ("Error (NRMSE x) against wall time, as numerical analysts compare solvers: each "
            "fixed-step integrator over step sizes dt x "
            f"{', '.join(f'{f:g}' for f in wp['step_factors'])} (the `rk4-sampled*` "
            "integrators, given only the samples, at the whole factors >= 1: every k-th "
            "sample), SciPy over tolerances, each "
            "surrogate a star. A surrogate's speed-up is measured against the cheapest "
            "integrator setting that is at least as accurate, not against SciPy at a tight "
            "tolerance (which would flatter any surrogate).")
    figure = Figure("work-precision", "Work-precision diagram: lower left is better.",
                    _work_precision_plot(ev, colors))
    return Section("Work-precision", text, [speed, settings], [figure])


def _resonance(ev: Evaluation, colors: Mapping[str, str]) -> Section:
    res = ev.resonance
    if res is None:
        return Section("Resonance", "The resonance check was not run.")
    if "skipped" in res:
        return Section("Resonance", f"The resonance check was skipped: {res['skipped']}.")
    etas = ", ".join(f"{e:.3g}" for e in res["curve"]["eta"])
    text = (f"Driven from rest by F0 cos(omega t), F0 = {res['F0']:.3g}, at eta = {etas}, over "
            f"{len(res['omega'])} frequencies per eta in [{min(res['omega']):.3g}, "
            f"{max(res['omega']):.3g}] (inside the test set's ranges), for {res['n_steps']} steps "
            f"so that transients (decaying as exp(-eta t / 2)) fall below "
            f"{res['transient_left']:.1e} of their start; amplitude and phase lag are fitted "
            "over whole periods at the end and compared with the analytic "
            "F0 / sqrt((1 - omega^2)^2 + (eta omega)^2).")
    keys = ("amplitude_rel_error_median", "amplitude_rel_error_max", "lag_error_median",
            "lag_error_max", "n_diverged")
    table = Table(["method", "amplitude rel. error, median", "amplitude rel. error, max",
                   "phase error [rad], median", "phase error [rad], max", "diverged"],
                  [[n, *(r[k] for k in keys)] for n, r in res["methods"].items()],
                  "Steady-state response against the analytic formula.")
    figure = Figure("resonance", "Steady-state amplitude (top, log scale) and phase lag "
                    "(bottom) against driving frequency; the analytic response is the black "
                    "line, the exact solution's fit the open circles.",
                    _resonance_plot(ev, colors))
    return Section("Resonance", text, [table], [figure])


def _training(runs: Mapping[str, Path], colors: Mapping[str, str]) -> Section:
    """Per-epoch histories as curves; others (an ESN's ridge candidates) as tables."""
    if not runs:
        return Section("Training", "No run directories were given, so no training history.")
    histories = {name: read_history(Path(run)) for name, run in runs.items()}
    curves = {name: h for name, h in histories.items() if len(h.get("epoch", ())) > 0}
    tables = [Table(list(h), [list(row) for row in zip(*h.values(), strict=True)],
                    f"{name}: training history (one row per candidate).", swatches=False)
              for name, h in histories.items() if h and name not in curves]
    missing = [name for name, h in histories.items() if not h]
    text = ("From each run's history: the training loss (solid) and validation loss (dashed) "
            "per epoch, and the closed-loop validation error where the run recorded it."
            + (f" No history in: {', '.join(missing)}." if missing else ""))
    figures = [Figure("loss-curves", "Training history against epoch; log scales.",
                      _loss_plot(curves, colors))] if curves else []
    return Section("Training", text, tables, figures)


def _provenance(ev: Evaluation, runs: Mapping[str, Path]) -> Section:
    info = ev.info
    settings = _flatten(info["settings"])
    data = _flatten({k: v for k, v in info["data"].items() if k != "attrs"})
    attrs = info["data"]["attrs"]
    long = [(f"test set: {k}", v) for k, v in attrs.items() if isinstance(v, str) and "\n" in v]
    data.update({f"attrs.{k}": v for k, v in _flatten(attrs).items()
                 if not (isinstance(v, str) and "\n" in v)})
    configs = [(f"run {name}: config.json", jsonio.dumps(config, indent=2))
               for name, run in runs.items() if (config := read_config(Path(run))) is not None]
    runs_table = [Table(["run", "directory"], [[n, str(p)] for n, p in runs.items()],
                        "Run directories of the surrogates.")] if runs else []
    tables = [
        Table(["method", "kind", "description", "settings"],
              [[n, m.kind, m.description, m.settings or ""] for n, m in ev.methods.items()],
              "The methods compared."),
        Table(["metric", "column", "definition"],
              [[k, HEADERS[k], d] for k, d in METRICS.items()],
              "Metric definitions (docs/metrics.md has the full text)."),
        Table(["setting", "value"], list(settings.items()), "Evaluation settings.",
              swatches=False),
        Table(["data", "value"], list(data.items()), "The test set and its provenance.",
              swatches=False),
        *runs_table,
        Table(["package", "version"], list(info["versions"].items()), "Software versions.",
              swatches=False),
    ]
    return Section("Settings and provenance", "", tables, (), long + configs)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# -- run directories -----------------------------------------------------------------------

def read_config(run: Path) -> dict[str, Any] | None:
    """A run's ``config.json``; None if it has none, DataError if it is unreadable."""
    path = run / "config.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: not valid JSON ({err}); rerun `odernn train` or remove it") \
            from None


def read_history(run: Path) -> dict[str, np.ndarray]:
    """A run's per-epoch history as numeric columns (``history.csv``, ``.json`` or ``.jsonl``;
    JSON as a list of records or a mapping of columns). Empty if the run has none."""
    for suffix in (".csv", ".json", ".jsonl"):
        path = run / f"history{suffix}"
        if path.is_file():
            break
    else:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".csv":
            records: Any = list(csv.DictReader(io.StringIO(text)))
        elif suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            records = json.loads(text)
        if isinstance(records, Mapping):
            columns = {k: list(v) for k, v in records.items() if isinstance(v, list)}
        else:
            columns = {k: [r.get(k) for r in records] for k in (records[0] if records else {})}
        return {k: a for k, v in columns.items() if (a := _numeric(v)) is not None}
    except (OSError, UnicodeDecodeError, ValueError, TypeError, AttributeError,
            IndexError) as err:
        raise DataError(f"{path}: unreadable training history ({err}); expected CSV with a "
                        "header, JSON records or columns") from None


def _numeric(values: Sequence[Any]) -> np.ndarray | None:
    try:
        return np.array([math.nan if v in (None, "") else float(v) for v in values])
    except (TypeError, ValueError):
        return None


# -- figures -------------------------------------------------------------------------------

def _figure(nrows: int = 1, ncols: int = 1, *, width: float = 9.0, height: float = 3.6,
            **kwargs: Any) -> tuple[MplFigure, np.ndarray]:
    """A grid of axes with fixed margins in inches (a layout engine would double the
    rendering time, and the labels here are short and known)."""
    h = height * nrows
    left, right, bottom, top, gap, vgap = 1.0, 0.2, 0.6, 0.35, 1.1, 0.75  # inches
    ax_w = (width - left - right - (ncols - 1) * gap) / ncols
    ax_h = (h - bottom - top - (nrows - 1) * vgap) / nrows
    fig = MplFigure(figsize=(width, h))
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / h,
                        top=1 - top / h, wspace=gap / ax_w, hspace=vgap / ax_h)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    for ax in axes.flat:
        ax.grid(True, color="#e3e6ea", linewidth=0.7)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def _style(ev: Evaluation, name: str) -> dict[str, Any]:
    kind = ev.methods[name].kind
    return {"linestyle": "-" if kind == "surrogate" else "--",
            "linewidth": 1.8 if kind == "surrogate" else 1.2}


def _positive(a: Any) -> np.ndarray:
    """Values for a log axis: non-positive and non-finite become gaps."""
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a) & (a > 0), a, np.nan)


def _error_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    fig, axes = _figure(1, 2, height=4.2)
    t = np.asarray(ev.test.t)
    for ax, which, label in zip(axes[0], ("error_x", "error_v"), ("x", "v"), strict=True):
        for name, m in ev.methods.items():
            if m.kind == "reference":
                continue
            median, p90 = (_positive(a) for a in getattr(m, which))
            ax.plot(t, median, color=colors[name], label=name, **_style(ev, name))
            ax.fill_between(t, median, p90, color=colors[name], alpha=0.12, linewidth=0)
        ax.set_yscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel(f"|{label} error| / std({label})")
    _legend_below(fig, axes[0, 0])
    return fig


def _legend_below(fig: MplFigure, ax: Any, ncol: int = 5) -> None:
    """One legend for the whole figure, under the axes, with room made for it."""
    handles, labels = ax.get_legend_handles_labels()
    rows = math.ceil(len(labels) / ncol)
    height = fig.get_figheight()
    fig.subplots_adjust(bottom=(0.6 + 0.25 * rows) / height)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.02))


def _order(values: np.ndarray) -> list[int]:
    """Best, median and worst index; infinite values sort last."""
    rank = np.argsort(np.where(np.isfinite(values), values, np.inf), kind="stable")
    return [int(rank[0]), int(rank[len(rank) // 2]), int(rank[-1])]


def _overlay_plot(ev: Evaluation, name: str, colors: Mapping[str, str]) -> MplFigure:
    m, ref = ev.methods[name], ev.methods[REFERENCE]
    fig, axes = _figure(3, 2, height=2.3, sharex=True)
    t = np.asarray(ev.test.t)
    for row, (label, i) in enumerate(zip(("best", "median", "worst"), _order(m.nrmse_x),
                                         strict=True)):
        for col, var in enumerate(("x", "v")):
            ax = axes[row, col]
            ax.plot(t, getattr(ref, var)[i], color="black", linewidth=1.0, label="exact")
            ax.plot(t, getattr(m, var)[i], color=colors[name], linewidth=1.4, linestyle="--",
                    label=name)
            if ev.start > 1:
                ax.axvspan(t[0], t[ev.start - 1], color="#dddddd", alpha=0.5, linewidth=0)
            ax.set_ylabel(var)
            bad = ~np.isfinite(m.x[i])
            diverged = f", diverged at t = {t[np.argmax(bad)]:.3g}" if bad.any() else ""
            ax.set_title(f"{label}: trajectory {i}, NRMSE x = {fmt(float(m.nrmse_x[i]))}"
                         f"{diverged}", fontsize=9, loc="left")
    for ax in axes[-1]:
        ax.set_xlabel("t")
    axes[0, 1].legend(fontsize=8, frameon=False, loc="upper right")
    return fig


def _phase_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    surrogates = _methods_of(ev, "surrogate")
    ncols = min(3, len(surrogates))
    nrows = math.ceil(len(surrogates) / ncols)
    fig, axes = _figure(nrows, ncols, width=3.2 * ncols, height=3.1)
    ref = ev.methods[REFERENCE]
    for ax in axes.flat[len(surrogates):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, surrogates, strict=False):
        m = ev.methods[name]
        i = _order(m.nrmse_x)[1]
        ax.plot(ref.x[i], ref.v[i], color="black", linewidth=1.0, label="exact")
        ax.plot(m.x[i], m.v[i], color=colors[name], linewidth=1.2, linestyle="--", label=name)
        ax.plot(ref.x[i, 0], ref.v[i, 0], "o", color="black", markersize=4)
        ax.set_title(f"{name}, trajectory {i}", fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("v")
    return fig


def _work_precision_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    wp = ev.work_precision
    fig, axes = _figure(1, 1, width=8.0, height=5.2)
    ax = axes[0, 0]
    for name in dict.fromkeys(p["method"] for p in wp["integrators"]):
        pts = sorted((p for p in wp["integrators"] if p["method"] == name),
                     key=lambda p: -p["value"])
        ax.plot(_positive([p["wall_time_s"] for p in pts]), _positive([p["error"] for p in pts]),
                marker="o", markersize=4, color=colors[name], label=name, **_style(ev, name))
    for name, p in wp["surrogates"].items():
        ax.plot(_positive([p["wall_time_s"]]), _positive([p["error"]]), marker="*",
                markersize=15, linestyle="none", color=colors[name], label=name)
        if math.isfinite(p["error"]) and p["error"] > 0:
            ax.annotate(name, (p["wall_time_s"], p["error"]), textcoords="offset points",
                        xytext=(8, 6), fontsize=9, color=colors[name])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("wall time [s] for all test trajectories")
    ax.set_ylabel("NRMSE x")
    ax.legend(fontsize=8, frameon=False, loc="best")
    return fig


def _resonance_plot(ev: Evaluation, colors: Mapping[str, str]) -> MplFigure:
    res = ev.resonance
    etas = res["curve"]["eta"]
    fig, axes = _figure(2, len(etas), width=min(12.0, 4.6 * len(etas)), height=3.1, sharex=True)
    eta_all, omega = np.asarray(res["eta"]), np.asarray(res["omega"])
    for col, eta in enumerate(etas):
        pick = np.isclose(eta_all, eta)
        fine = res["curve"]["omega"]
        axes[0, col].plot(fine, res["curve"]["amplitude"][col], color="black", linewidth=1.2,
                          label="analytic")
        axes[1, col].plot(fine, res["curve"]["lag"][col], color="black", linewidth=1.2)
        for name, r in res["methods"].items():
            exact = name == REFERENCE
            style = {"marker": "o", "markersize": 5 if exact else 4,
                     "linestyle": "none" if exact else "-", "linewidth": 1.0,
                     "color": colors[name], "label": name}
            if exact:
                style["markerfacecolor"] = "none"
            axes[0, col].plot(omega[pick], _positive(r["amplitude"])[pick], **style)
            axes[1, col].plot(omega[pick], _finite(r["lag"])[pick], **style)
        axes[0, col].set_yscale("log")
        axes[0, col].set_title(f"eta = {eta:.3g}", fontsize=10)
        axes[0, col].set_ylabel("amplitude")
        axes[1, col].set_ylabel("phase lag [rad]")
        axes[1, col].set_xlabel("omega")
    _legend_below(fig, axes[0, 0])
    return fig


def _finite(a: Any) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return np.where(np.isfinite(a), a, np.nan)


def _loss_plot(histories: Mapping[str, Mapping[str, np.ndarray]],
               colors: Mapping[str, str]) -> MplFigure:
    """Loss (training solid, validation dashed) and, where recorded, the closed-loop
    validation NRMSE, against epoch."""
    errors = any(k for h in histories.values() for k in h if "nrmse" in k)
    fig, axes = _figure(1, 2 if errors else 1, width=9.0 if errors else 8.0, height=4.2)
    for name, h in histories.items():
        color = colors.get(name, "#444444")
        train = next((k for k in ("train_loss", "loss") if k in h), None)
        for key, dashed in ((train, False), ("val_loss", True)):
            if key in h:
                axes[0, 0].plot(h["epoch"], _positive(h[key]), color=color,
                                linestyle="--" if dashed else "-", label=f"{name} {key}")
        for key in (k for k in h if "nrmse" in k):
            axes[0, 1].plot(h["epoch"], _positive(h[key]), color=color, marker=".",
                            label=f"{name} {key}")
    for ax, label in zip(axes[0], ("loss", "closed-loop validation NRMSE"), strict=False):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend(fontsize=8, frameon=False)
    return fig
