"""Plots of a report (matplotlib, the `plot` extra): tokens per group, and cost where known.

Output is deterministic: the Agg backend, no timestamps in the file metadata, a fixed SVG hash salt.
"""

from __future__ import annotations

from pathlib import Path

from tokenpilot._exceptions import ConfigError, InputError
from tokenpilot.ledger._report import Report

MAX_BARS = 25


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
    except ImportError:
        raise ConfigError("plots need matplotlib: pip install 'tokenpilot[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    groups = list(report.groups)
    hidden = 0
    if report.by != "day" and len(groups) > MAX_BARS:
        hidden = len(groups) - MAX_BARS
        groups = groups[:MAX_BARS]
    labels = [g.key for g in groups]
    inputs = [g.input_tokens for g in groups]
    outputs = [g.output_tokens for g in groups]
    costs = [g.cost_usd for g in groups]

    with matplotlib.rc_context({"svg.hashsalt": "tokenpilot", "font.size": 9}):
        figure, (tokens_axis, cost_axis) = plt.subplots(
            1, 2, figsize=(12, max(3.0, 0.35 * len(groups) + 1.5)), gridspec_kw={"width_ratios": [3, 1]}
        )
        positions = list(range(len(groups)))
        tokens_axis.barh(positions, inputs, label="input", color="#4C72B0")
        tokens_axis.barh(positions, outputs, left=inputs, label="output", color="#DD8452")
        tokens_axis.set_yticks(positions, labels)
        tokens_axis.invert_yaxis()
        tokens_axis.set_xlabel("tokens")
        tokens_axis.legend(loc="lower right")
        title = f"tokens by {report.by}: {report.total.total_tokens:,} in {report.total.calls:,} calls"
        if hidden:
            title += f" ({hidden} smaller groups not shown)"
        tokens_axis.set_title(title, loc="left")
        cost_axis.barh(positions, costs, color="#55A868")
        cost_axis.set_yticks(positions, [""] * len(groups))
        cost_axis.invert_yaxis()
        cost_axis.set_xlabel("USD (known prices)")
        unknown = report.total.unknown_cost_calls
        cost_title = f"${report.total.cost_usd:,.2f}"
        if unknown:
            cost_title += f" + {unknown} calls of unknown price"
        cost_axis.set_title(cost_title, loc="left")
        for position, group in zip(positions, groups, strict=True):
            if group.unknown_cost_calls:
                cost_axis.annotate(
                    "?", (group.cost_usd, position), xytext=(3, -3), textcoords="offset points"
                )
        figure.tight_layout()
        metadata = {"Date": None} if suffix == ".svg" else {"Software": None}
        target.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(target, format=suffix[1:], metadata=metadata, dpi=100)
        plt.close(figure)
    return target
