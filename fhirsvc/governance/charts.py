"""The governance page's charts: inline SVG drawn on the server by matplotlib's SVG backend (README, "Dependencies").

No pyplot and no global state: each chart is a ``Figure`` of its own, drawn under an ``rc_context`` and written
with ``FigureCanvasSVG``, so concurrent requests never share a figure. Text stays text (``svg.fonttype = none``):
the browser draws it with the page's fonts, it can be selected, and screen readers and search read it. Nothing in
a chart depends on colour alone: flagged rules are hatched and labelled, the threshold is a dashed, labelled line,
and every cell of the weekly chart prints its number. Each chart has a text table beside it on the page.
"""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("svg")  # no GUI backend is ever looked for

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from fhirsvc.governance.report import Report, RuleReport

INK, MUTED, LINE, FLAG = "#1b1f24", "#4d5560", "#c9ced6", "#8a2d0b"
# Light to dark in one hue, so the weekly chart reads in greyscale too; every cell also prints its number.
SHADES = LinearSegmentedColormap.from_list("fhirsvc-shades", ["#f3f5f8", "#9db7d9", "#0b3d7a"])
STYLE = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "xtick.color": MUTED,
    "ytick.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "hatch.color": FLAG,
    "hatch.linewidth": 1.2,
}
NONE = "\u2013"  # a dash: no feedback that week
_SVG_START = re.compile(r"<svg\b")
_SIZE = re.compile(r'\s(width|height)="[^"]*pt"')
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)  # RDF about the file: nothing for the page
_NAMESPACES = re.compile(r'\sxmlns:(dc|cc|rdf)="[^"]*"')


def _svg(figure: Figure, salt: str, title_id: str) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, sized by the page (viewBox kept), labelled by the
    element ``title_id`` of the page."""
    buffer = io.StringIO()
    with rc_context({"svg.hashsalt": salt}):  # stable ids, and distinct ones for the charts of one page
        FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = _METADATA.sub("", text[_SVG_START.search(text).start():], count=1)
    head, rest = text.split(">", 1)
    head = _NAMESPACES.sub("", _SIZE.sub("", head)) + f' role="img" aria-labelledby="{title_id}" class="chart"'
    return head + ">" + rest


def override_chart(report: Report, title_id: str) -> str | None:
    """Override rate per rule with feedback, ranked as the table, with the flag threshold; None without feedback."""
    rules = [rule for rule in report.rules if rule.total.feedback]
    if not rules:
        return None
    threshold = report.thresholds
    with rc_context(STYLE):
        figure = Figure(figsize=(8.2, 0.9 + 0.34 * len(rules)))
        axes = figure.add_axes((0.36, 0.9 / (0.9 + 0.34 * len(rules)) * 0.75, 0.52,
                                0.34 * len(rules) / (0.9 + 0.34 * len(rules))))
        positions = range(len(rules))
        rates = [rule.total.override_rate or 0.0 for rule in rules]
        bars = axes.barh(positions, rates, height=0.62, color=["#e9d9cf" if r.flagged else "#c7d4e6" for r in rules],
                         edgecolor=[FLAG if r.flagged else "#0b3d7a" for r in rules], linewidth=0.8)
        for bar, rule in zip(bars, rules, strict=True):
            if rule.flagged:
                bar.set_hatch("///")
            note = f"{rule.total.override_rate * 100:.0f} % of {rule.total.feedback}"
            axes.text(min(bar.get_width(), 1.0) + 0.01, bar.get_y() + bar.get_height() / 2,
                      note + ("  FLAG" if rule.flagged else ""), va="center", fontsize=8,
                      color=FLAG if rule.flagged else INK, fontweight="bold" if rule.flagged else "normal")
        axes.axvline(threshold.override_rate, color=FLAG, linestyle=(0, (4, 3)), linewidth=1.2)
        axes.text(threshold.override_rate, -0.75, f"flag: ≥ {threshold.override_rate * 100:.0f} % over "
                  f"≥ {threshold.min_feedback} items", ha="center", va="bottom", fontsize=8, color=FLAG)
        axes.set_yticks(list(positions), [_label(rule) for rule in rules])
        axes.set_ylim(len(rules) - 0.5, -1.1)
        axes.set_xlim(0, 1.0)
        axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.set_xlabel("override rate: overridden / feedback items")
        axes.grid(axis="x", color=LINE, linewidth=0.6)
        axes.set_axisbelow(True)
        return _svg(figure, "override-rates", title_id)


def trend_chart(report: Report, title_id: str) -> str | None:
    """Weekly override rate of each rule with feedback (rows) per ISO week (columns), the number in every cell;
    None without feedback."""
    rules = [rule for rule in report.rules if rule.total.feedback]
    if not rules:
        return None
    weeks = report.weeks
    with rc_context(STYLE):
        width = min(11.0, 3.2 + 0.62 * len(weeks))
        height = 1.1 + 0.3 * len(rules)
        figure = Figure(figsize=(width, height))
        axes = figure.add_axes((2.9 / width, 0.75 / height, 1 - 3.1 / width, 0.3 * len(rules) / height))
        values = [[_cell_rate(rule, week) for week in range(len(weeks))] for rule in rules]
        grid = [[v if v is not None else float("nan") for v in row] for row in values]
        axes.imshow(grid, cmap=SHADES, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        label_cells = len(weeks) <= 16
        for y, row in enumerate(values):
            for x, value in enumerate(row):
                if value is None:
                    axes.text(x, y, NONE, ha="center", va="center", fontsize=7, color=MUTED)
                elif label_cells:
                    axes.text(x, y, f"{value * 100:.0f}", ha="center", va="center", fontsize=7,
                              color="#ffffff" if value >= 0.55 else INK)
        axes.set_yticks(range(len(rules)), [_label(rule) for rule in rules])
        axes.set_xticks(range(len(weeks)), [week.strftime("%d %b") for week in weeks],
                        rotation=45 if len(weeks) > 8 else 0, ha="right" if len(weeks) > 8 else "center")
        axes.set_xlabel("week starting (Monday, UTC); cells: override rate in % (" + NONE + " no feedback)")
        axes.tick_params(length=0)
        for spine in axes.spines.values():
            spine.set_visible(False)
        return _svg(figure, "weekly-trend", title_id)


def _label(rule: RuleReport) -> str:
    """A rule's axis label; ``$`` would start matplotlib's math text."""
    return f"{rule.rank}. {rule.short_label}".replace("$", r"\$")


def _cell_rate(rule: RuleReport, week: int) -> float | None:
    return rule.weeks[week].override_rate
