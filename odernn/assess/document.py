"""The report document: sections of text, tables and figures, written as HTML and Markdown.

A document is a list of :class:`Section` (text, :class:`Table`, :class:`Figure`),
rendered twice, to ``report.html`` and ``report.md``. ``report.html`` is one
self-contained file (figures embedded as base64 PNG data URIs, inline CSS, no external
reference) that opens in any browser without a network. Everything is written into a
temporary directory beside the target and renamed into place when complete
(:mod:`odernn.atomic`), so a failure never leaves a partial report. The directory's
``.odernn-report`` names every file the report wrote: ``--overwrite`` replaces a
directory only if it holds nothing else.

The evaluation report (:mod:`odernn.assess.report`) is one such document; the notes'
presets write others.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import shutil
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure as MplFigure

from odernn import atomic, jsonio
from odernn.checks import check_writable, is_real
from odernn.errors import OutputError, SpecError
from odernn.interrupt import interrupt_guard

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
    check_writable(out, "report")


def check_title(title: str) -> None:
    """SpecError for a title with a line break or other control character: the title is one
    line of the HTML and Markdown, and a new line would start markup of its own."""
    if not isinstance(title, str):
        raise SpecError(f"title must be a str, got {type(title).__name__} {title!r:.40}")
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


def fmt_at_least(value: float) -> str:
    """A lower bound's cell: :func:`fmt`'s digits, the last rounded down (49.95 is ``49.9``,
    not ``50``: a bound must not claim more than it knows)."""
    v = float(value)
    if not math.isfinite(v) or v == 0:
        return fmt(v)
    digits = 3 if abs(v) < 1e-3 or abs(v) >= 1e4 else max(3, 1 + int(math.log10(abs(v))))
    d = Decimal(repr(v))  # the shortest decimal that is v: no binary noise to round down
    return fmt(float(d.quantize(Decimal(1).scaleb(d.adjusted() - digits + 1), ROUND_FLOOR)))


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


def anchor(title: str) -> str:
    """A title as an HTML id and file stem: lower case, runs of other characters as ``-``."""
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
    toc = "".join(f'<li><a href="#{anchor(s.title)}">{esc(s.title)}</a></li>' for s in sections)
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>", "<main>",
        f"<header><h1>{esc(title)}</h1><p class=\"meta\">{esc(meta)}</p></header>",
        f"<nav><strong>Contents</strong><ol>{toc}</ol></nav>",
    ]
    for s in sections:
        parts.append(f'<section id="{anchor(s.title)}"><h2>{esc(s.title)}</h2>')
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
            numeric = ([all(v is None or is_real(v) for v in column)
                        for column in zip(*t.rows, strict=True)] if t.rows else
                       [False] * len(t.columns))
            lines.append("|" + "|".join("---:" if k and n else "---"  # numbers right-aligned
                                        for k, n in enumerate(numeric)) + "|")
            lines += ["| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |"
                      for row in t.rows]
            lines += (["", f"_{t.caption}_"] if t.caption else []) + [""]
        for f in s.figures:
            lines += [f"![{f.caption}]({f.name}.png)", "", f"_{f.caption}_", ""]
        for heading, text in s.preformatted:
            lines += [f"### {heading}", "", "```", text, "```", ""]
    return "\n".join(lines)
