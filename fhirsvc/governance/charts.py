"""The governance page's charts: inline SVG drawn on the server by matplotlib's SVG backend (docs/governance.md).

No pyplot and no global state: each chart is a ``Figure`` of its own, drawn under an ``rc_context`` and written
with ``FigureCanvasSVG``, so concurrent requests never share a figure. Text stays text (``svg.fonttype = none``):
the browser draws it with the page's fonts, it can be selected, and screen readers and search read it. Nothing in
a chart depends on colour alone: flagged rules are hatched and labelled, the threshold is a dashed, labelled line,
the weekly chart hatches the weeks at or above it and marks weeks without feedback with a cross, and shades
by lightness in one hue. Each chart has a text table beside it on the page.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("svg")  # no GUI backend is ever looked for

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from fhirsvc.governance.report import Report, RuleReport

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

INK, MUTED, LINE, FLAG = "#1b1f24", "#4d5560", "#c9ced6", "#8a2d0b"
# Light to dark in one hue, so the weekly chart reads in greyscale too; every cell also prints its number.
SHADES = LinearSegmentedColormap.from_list("fhirsvc-shades", ["#f3f5f8", "#9db7d9", "#0b3d7a"])
STYLE: dict[RcKeyType, Any] = {
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
CACHED = 32  # charts kept per process: a page opened again on unchanged numbers is not drawn again
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
    start = _SVG_START.search(text)
    assert start is not None  # print_svg writes one <svg> element
    text = _METADATA.sub("", text[start.start():], count=1)
    head, rest = text.split(">", 1)
    head = _NAMESPACES.sub("", _SIZE.sub("", head)) + f' role="img" aria-labelledby="{title_id}" class="chart"'
    return head + ">" + rest


def override_chart(report: Report, title_id: str) -> str | None:
    """Override rate per rule with feedback, ranked as the table, with the flag threshold; None without feedback."""
    rules = tuple((_label(rule), rule.total.override_rate or 0.0, rule.total.feedback, rule.flagged)
                  for rule in report.rules if rule.total.feedback)
    if not rules:
        return None
    return _override_svg(rules, report.thresholds.override_rate, report.thresholds.min_feedback, title_id)


@lru_cache(maxsize=CACHED)
def _override_svg(rules: tuple[tuple[str, float, int, bool], ...], flag_rate: float, min_feedback: int,
                  title_id: str) -> str:
    with rc_context(STYLE):
        height = 0.9 + 0.34 * len(rules)
        figure = Figure(figsize=(8.2, height))
        axes = figure.add_axes((0.34, 0.9 / height * 0.75, 0.46, 0.34 * len(rules) / height))  # labels on the right
        positions = range(len(rules))
        bars = axes.barh(positions, [rate for _, rate, _, _ in rules], height=0.62,
                         color=["#e9d9cf" if flagged else "#c7d4e6" for *_, flagged in rules],
                         edgecolor=[FLAG if flagged else "#0b3d7a" for *_, flagged in rules], linewidth=0.8)
        for bar, (_, rate, feedback, flagged) in zip(bars, rules, strict=True):
            if flagged:
                bar.set_hatch("///")
            axes.text(min(rate, 1.0) + 0.01, bar.get_y() + bar.get_height() / 2,
                      f"{rate * 100:.0f} % of {feedback}" + ("  FLAG" if flagged else ""), va="center", fontsize=8,
                      color=FLAG if flagged else INK, fontweight="bold" if flagged else "normal")
        axes.axvline(flag_rate, color=FLAG, linestyle=(0, (4, 3)), linewidth=1.2)
        axes.text(flag_rate, -0.75, f"flag: ≥ {flag_rate * 100:.0f} % over ≥ {min_feedback} items", ha="center",
                  va="bottom", fontsize=8, color=FLAG)
        axes.set_yticks(list(positions), [label for label, *_ in rules])
        axes.set_ylim(len(rules) - 0.5, -1.1)
        axes.set_xlim(0, 1.0)
        axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.set_xlabel("override rate: overridden / feedback items")
        axes.grid(axis="x", color=LINE, linewidth=0.6)
        axes.set_axisbelow(True)
        return _svg(figure, "override-rates", title_id)


def trend_chart(report: Report, title_id: str) -> str | None:
    """Weekly override rate of each rule with feedback (rows) per ISO week (columns): darker is higher, hatched at
    or above the flag rate, a cross where the week had no feedback; None without feedback. The numbers are in the
    table beside it."""
    rules = [rule for rule in report.rules if rule.total.feedback]
    if not rules:
        return None
    rows = tuple((_label(rule), tuple(tally.override_rate for tally in rule.weeks)) for rule in rules)
    return _trend_svg(rows, tuple(week.strftime("%d %b") for week in report.weeks),
                      report.thresholds.override_rate, title_id)


@lru_cache(maxsize=CACHED)
def _trend_svg(rows: tuple[tuple[str, tuple[float | None, ...]], ...], weeks: tuple[str, ...], flag_rate: float,
               title_id: str) -> str:
    with rc_context(STYLE):
        width = min(11.0, 3.4 + 0.5 * len(weeks))
        height = 1.1 + 0.3 * len(rows)
        figure = Figure(figsize=(width, height))
        axes = figure.add_axes((2.9 / width, 0.75 / height, 1 - 3.1 / width, 0.3 * len(rows) / height))
        grid = [[rate if rate is not None else float("nan") for rate in rates] for _, rates in rows]
        axes.pcolormesh(grid, cmap=SHADES, vmin=0.0, vmax=1.0, edgecolors="#ffffff", linewidth=1.0)
        high = [(x, y) for y, (_, rates) in enumerate(rows) for x, rate in enumerate(rates)
                if rate is not None and rate >= flag_rate]
        if high:
            axes.bar([x + 0.5 for x, _ in high], 0.8, bottom=[y + 0.1 for _, y in high], width=0.8, fill=False,
                     hatch="///", edgecolor="#ffffff", linewidth=0)
        empty = [(x + 0.5, y + 0.5) for y, (_, rates) in enumerate(rows) for x, rate in enumerate(rates)
                 if rate is None]
        if empty:
            xs, ys = zip(*empty, strict=True)
            axes.scatter(xs, ys, marker="x", s=14, color=MUTED, linewidths=0.8)
        axes.set_xlim(0, len(weeks))
        axes.set_ylim(len(rows), 0)
        axes.set_yticks([y + 0.5 for y in range(len(rows))], [label for label, _ in rows])
        axes.set_xticks([x + 0.5 for x in range(len(weeks))], list(weeks),
                        rotation=45 if len(weeks) > 8 else 0, ha="right" if len(weeks) > 8 else "center")
        axes.set_xlabel("week starting Monday (UTC)")
        axes.tick_params(length=0)
        for spine in axes.spines.values():
            spine.set_visible(False)
        return _svg(figure, "weekly-trend", title_id)


def _label(rule: RuleReport) -> str:
    """A rule's axis label; ``$`` would start matplotlib's math text."""
    return f"{rule.rank}. {rule.short_label}".replace("$", r"\$")


def cache_clear() -> None:
    """Forget the charts drawn (``make bench`` measures drawing them)."""
    _override_svg.cache_clear()
    _trend_svg.cache_clear()
