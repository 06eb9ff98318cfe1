"""``sislab report``'s outputs: the table as Markdown, LaTeX and a PNG, with caption and footnotes.

A missing cell is a dash with a numbered footnote saying why (no run of the row, no value of the
metric, nothing in the paper's text); a cell is never filled in.
"""

from __future__ import annotations

import math
from pathlib import Path

from sislab.orchestrator.report import NO_METRIC, NO_RUN, NOT_IN_PAPER, Cell, Report

MISSING = "–"
MARKS = "¹²³"


class _Footnotes:
    """Footnote texts, numbered in order of first use."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if text not in self.texts:
            self.texts.append(text)
        return MARKS[self.texts.index(text)]


def _measured(cell: Cell | None, digits: int, why: str, notes: _Footnotes) -> str:
    if cell is None:
        return MISSING + notes.mark(why)
    if math.isnan(cell.std):
        return f"{cell.mean:.{digits}f}"
    return f"{cell.mean:.{digits}f} ± {cell.std:.{digits}f}"


def grid(report: Report) -> tuple[list[str], list[list[str]], list[str]]:
    """Header, string rows and footnotes: row label, runs, then per column sislab's and the
    paper's cell side by side."""
    notes = _Footnotes()
    header = ["row", "runs"]
    for column in report.table.columns:
        header += [f"{column.label} sislab", f"{column.label} paper"]
    rows = []
    for row in report.rows:
        cells = [row.label, str(row.num_runs)]
        for column in report.table.columns:
            why = NO_RUN if row.num_runs == 0 else NO_METRIC.format(metric=column.metric)
            cells.append(_measured(row.cells[column.label], column.digits, why, notes))
            paper = row.paper.get(column.label)
            cells.append(
                f"{paper:.{column.digits}f}" if paper is not None
                else MISSING + notes.mark(NOT_IN_PAPER)
            )  # fmt: skip
        rows.append(cells)
    footnotes = [f"{MARKS[i]} {text}" for i, text in enumerate(notes.texts)]
    if report.pooled:
        footnotes.append(f"cells pool runs that also differ in: {', '.join(report.pooled)}")
    if report.unmatched:
        footnotes.append(f"{report.unmatched} finished run(s) of the sweep match no row")
    return header, rows, footnotes


def caption(report: Report) -> str:
    """The caption: the paper's table, where the numbers come from, the evaluation protocol."""
    protocol = (
        ", ".join(report.protocols) if report.protocols else "none recorded (runs have no tag)"
    )
    mixed = " (MIXED: cells are not comparable)" if len(report.protocols) > 1 else ""
    return (
        f"{report.table.title}. sislab: mean ± std over the seeds of sweep "
        f"{report.parent_run_id[:8]} (experiment {report.experiment}, data {report.dataset}); "
        f"paper: {report.table.dataset}. Evaluation protocol: {protocol}{mixed}."
    )


def markdown(report: Report) -> str:
    """The table as GitHub Markdown: caption, table, footnotes."""
    header, rows, footnotes = grid(report)
    lines = [f"**{caption(report)}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "---|" * len(header))
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if footnotes:
        lines += ["", *[f"{note}  " for note in footnotes]]
    return "\n".join(lines) + "\n"


_LATEX = {
    "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
    "±": r"$\pm$", "↑": r"$\uparrow$", "↓": r"$\downarrow$", "–": "--", "×": r"$\times$",
    "¹": r"$^{1}$", "²": r"$^{2}$", "³": r"$^{3}$",
}  # fmt: skip


def _tex(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def latex(report: Report) -> str:
    """The table as a LaTeX ``table`` (booktabs rules), caption and footnotes below it."""
    header, rows, footnotes = grid(report)
    spec = "l" + "r" * (len(header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(_tex(h) for h in header) + r" \\")
    lines.append(r"\midrule")
    lines += [" & ".join(_tex(c) for c in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if footnotes:
        lines.append(r"\par\footnotesize " + r"\\ ".join(_tex(f) for f in footnotes))
    lines += [rf"\caption{{{_tex(caption(report))}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def png(report: Report, path: Path) -> Path:
    """The table drawn with matplotlib: caption above, footnotes below."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    header, rows, footnotes = grid(report)
    lines = textwrap.wrap(caption(report), 140)
    # Heights in inches: caption, one line per table row, footnotes; the table fills its band.
    caption_h, row_h, notes_h = 0.2 * len(lines) + 0.15, 0.3, 0.19 * len(footnotes) + 0.1
    table_h = row_h * (len(rows) + 1)
    height = caption_h + table_h + notes_h
    fig = plt.figure(figsize=(max(8.0, 1.3 * len(header)), height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    drawn = ax.table(
        cellText=rows, colLabels=header, cellLoc="center",
        bbox=(0.01, notes_h / height, 0.98, table_h / height),
    )  # fmt: skip
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(9)
    for (r, c), cell in drawn.get_celld().items():
        if r == 0:
            cell.set_facecolor("#e8e8e8")
        elif c >= 2 and (c - 2) % 2 == 1:
            cell.set_facecolor("#f4f4fb")  # the paper's columns
    fig.text(0.5, 1 - 0.08 / height, "\n".join(lines), fontsize=8.5, ha="center", va="top")
    if footnotes:
        fig.text(0.01, (notes_h - 0.05) / height, "\n".join(footnotes), fontsize=8, va="top")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return path


def write_all(report: Report, folder: Path) -> list[Path]:
    """``table.md``, ``table.tex`` and ``table.png`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    md, tex = folder / "table.md", folder / "table.tex"
    md.write_text(markdown(report))
    tex.write_text(latex(report))
    return [md, tex, png(report, folder / "table.png")]
