"""Plots of a report (matplotlib, the `plot` extra): tokens per group, and cost where known.

Drawn on a `matplotlib.figure.Figure` without pyplot, so the host's backend and figures are left
alone. Output is deterministic: no timestamps in the file metadata, a fixed SVG hash salt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tokenpilot._account.reports import Report
from tokenpilot._exceptions import ConfigError, InputError

MAX_BARS = 25
INPUT_COLOR, OUTPUT_COLOR, COST_COLOR = "#4C72B0", "#DD8452", "#55A868"


def _tokens(value: float, _position: Any = None) -> str:
    """Axis label for a token count: 950, 12k, 1.5M (no `1e6` offset above the axis)."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}"


def _dollars(value: float, _position: Any = None) -> str:
    return f"${value:,.2f}" if value < 10 else f"${value:,.0f}"


def plot_report(report: Report, path: str | Path) -> Path:
    """Write `report` as a PNG or SVG chart: input/output tokens per group (stacked), cost beside it.

    plot_report(acct.report(by="day"), "usage.png")
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise InputError(f"plot file must end in .png or .svg, got {target.name!r}")
    try:
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'tokenpilot[plot]'") from None

    groups = list(report.groups)
    hidden = 0
    if report.by != "day" and len(groups) > MAX_BARS:
        hidden = len(groups) - MAX_BARS
        groups = groups[:MAX_BARS]
    positions = list(range(len(groups)))
    unknown = report.total.unknown_cost_calls

    with matplotlib.rc_context({"svg.hashsalt": "tokenpilot", "font.size": 9}):
        figure = Figure(figsize=(12, max(3.0, 0.35 * len(groups) + 2.0)), layout="constrained")
        tokens_axis, cost_axis = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1.3]})
        title = f"tokens by {report.by}: {report.total.total_tokens:,} in {report.total.calls:,} calls"
        if hidden:
            title += f" ({hidden} smaller groups not shown)"
        tokens_axis.set_title(title, loc="left")
        tokens_axis.xaxis.set_major_formatter(FuncFormatter(_tokens))
        cost_axis.xaxis.set_major_formatter(FuncFormatter(_dollars))
        cost_axis.xaxis.set_major_locator(MaxNLocator(nbins=4))
        tokens_axis.set_xlabel("tokens")
        cost_axis.set_xlabel("USD at known prices")
        known = report.total.cost_usd
        cost_title = "cost unknown" if known is None else f"${known:,.2f}"
        if unknown and known is not None:
            cost_title += f"\n+ {unknown:,} calls of unknown price"
        cost_axis.set_title(cost_title, loc="left")
        if not groups:
            for axis in (tokens_axis, cost_axis):
                axis.set_xlim(0, 1)
                axis.set_yticks([])
                axis.set_xticks([])
            tokens_axis.text(0.5, 0.5, "no calls in this window", ha="center", va="center")
        else:
            inputs = [g.input_tokens for g in groups]
            outputs = [g.output_tokens for g in groups]
            tokens_axis.barh(positions, inputs, label="input", color=INPUT_COLOR)
            tokens_axis.barh(positions, outputs, left=inputs, label="output", color=OUTPUT_COLOR)
            tokens_axis.set_yticks(positions, [g.key for g in groups])
            tokens_axis.invert_yaxis()
            # Above the plot, beside the title: never over a bar.
            tokens_axis.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, frameon=False)
            costs = [g.cost_usd or 0.0 for g in groups]
            cost_axis.barh(positions, costs, color=COST_COLOR)
            cost_axis.set_yticks(positions, [""] * len(groups))
            cost_axis.invert_yaxis()
            for position, group in zip(positions, groups, strict=True):
                if group.cost_usd is None:
                    mark = "unknown"
                elif group.unknown_cost_calls:
                    mark = f"+{group.unknown_cost_calls}?"
                else:
                    continue
                cost_axis.annotate(
                    mark, (group.cost_usd or 0.0, position), xytext=(3, -3), textcoords="offset points"
                )
            if unknown:
                cost_axis.set_xlabel("USD at known prices\n+N? = N more calls, price unknown")
            # Room on the right for the labels; never a negative axis.
            tokens_axis.set_xlim(0, max(1, max(a + b for a, b in zip(inputs, outputs, strict=True))) * 1.05)
            cost_axis.set_xlim(0, max(0.01, max(costs)) * 1.3)
        metadata = {"Date": None} if suffix == ".svg" else {"Software": None}
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, format=suffix[1:], metadata=metadata, dpi=100)
    return target
