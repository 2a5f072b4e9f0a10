"""Reports: group metrics by their definitions, recommendations with evidence, plots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tokenpilot as tp
from tokenpilot import InputError
from tokenpilot._account.plot import plot_report
from tokenpilot._account.reports import build_report, percentile

DAY = 86_400.0
T0 = 1_790_000_000.0


@pytest.fixture
def acct(tmp_path: Path) -> Iterator[tp.Ledger]:
    ledger = tp.open_ledger(str(tmp_path / "ledger.db"))
    yield ledger
    ledger.close()


def test_percentile_is_nearest_rank() -> None:
    assert percentile([float(v) for v in range(1, 11)], 0.9) == 9
    assert percentile([5.0], 0.9) == 5
    assert percentile([], 0.9) is None


def test_group_metrics_follow_their_definitions(acct: tp.Ledger) -> None:
    common = {"model": "gpt-4o", "phase": "build", "max_tokens": 1_000}
    acct.record_call(
        "p",
        input_tokens=1_000,
        cache_read_tokens=500,
        output_tokens=1_000,
        finish_reason="length",
        ts=T0,
        **common,
    )
    acct.record_call(
        "p", input_tokens=1_000, output_tokens=500, finish_reason="stop", attempt=2, ts=T0 + 1, **common
    )
    acct.record_call("p", input_tokens=1_000, output_tokens=0, status="error", ts=T0 + 2, **common)
    acct.record_call("p", input_tokens=2_000, output_tokens=200, finish_reason="stop", ts=T0 + 3, **common)
    (group,) = acct.report(by="phase").groups
    assert group.calls == 4 and group.failed_calls == 1
    assert group.truncation_rate == pytest.approx(1 / 3)
    assert group.mean_output_utilization == pytest.approx((1.0 + 0.5 + 0.2) / 3)
    assert group.p90_output_utilization == 1.0
    assert group.cache_hit_rate == pytest.approx(500 / 4_000)
    # first attempts: truncated (fail), error (fail), stop (ok)
    assert group.first_attempt_success == pytest.approx(1 / 3)
    assert group.total_tokens == 5_000 + 1_700


def test_cost_total_excludes_unknown_prices_and_counts_them(acct: tp.Ledger) -> None:
    acct.record_call("p", model="gpt-4o", input_tokens=1_000_000)
    acct.record_call("p", model="in-house-llm-7b", input_tokens=1_000_000)
    total = acct.report(by="model").total
    assert total.cost_usd == pytest.approx(tp.get_model("gpt-4o").input_per_mtok or 0)
    assert total.unknown_cost_calls == 1
    kinds = [r.kind for r in acct.report().recommendations]
    assert "unknown_price" in kinds


def test_phase_hitting_max_tokens_gets_a_raise_recommendation(acct: tp.Ledger) -> None:
    outputs = [8_000] * 4 + [5_000, 6_000, 7_000, 7_500, 7_100, 3_000]
    for i, out in enumerate(outputs):
        reason = "length" if out == 8_000 else "stop"
        acct.record_call(
            "acme/fileorg",
            model="gpt-4o",
            phase="build",
            input_tokens=100,
            output_tokens=out,
            max_tokens=8_000,
            finish_reason=reason,
            ts=T0 + i,
        )
    (rec,) = [r for r in acct.report(by="phase").recommendations if r.kind == "raise_max_tokens"]
    assert rec.subject == "phase build"
    assert rec.evidence["share_near_max"] == pytest.approx(0.4)
    assert rec.evidence["usual_max_tokens"] == 8_000
    # p90 sits at the cap (censored), so the advice goes past the current max_tokens.
    assert rec.evidence["suggested_max_tokens"] > 8_000
    assert "40% of calls used >= 95% of max_tokens" in rec.message


def test_raise_suggestion_uses_p90_when_it_is_above_the_usual_max(acct: tp.Ledger) -> None:
    # Calls with max_tokens 4k and 12k; the 12k ones reveal the real need.
    for i in range(6):
        acct.record_call(
            "p",
            model="gpt-4o",
            phase="build",
            input_tokens=1,
            output_tokens=4_000,
            max_tokens=4_000,
            finish_reason="length",
            ts=T0 + i,
        )
    for i in range(4):
        acct.record_call(
            "p",
            model="gpt-4o",
            phase="build",
            input_tokens=1,
            output_tokens=11_200,
            max_tokens=12_000,
            finish_reason="stop",
            ts=T0 + 10 + i,
        )
    (rec,) = [r for r in acct.report().recommendations if r.kind == "raise_max_tokens"]
    assert rec.evidence["p90_output_tokens"] == 11_200
    assert rec.evidence["suggested_max_tokens"] == 12_000
    assert "p90 output 11.2k → raise max_tokens to 12.0k" in rec.message


def test_generous_max_tokens_gets_a_lower_recommendation(acct: tp.Ledger) -> None:
    for i in range(25):
        acct.record_call(
            "p",
            model="gpt-4o",
            phase="summarize",
            input_tokens=10,
            output_tokens=300 + i,
            max_tokens=16_000,
            finish_reason="stop",
            ts=T0 + i,
        )
    (rec,) = [r for r in acct.report().recommendations if r.kind == "lower_max_tokens"]
    assert rec.evidence["suggested_max_tokens"] == 1_000


def test_budget_near_its_limit_is_recommended_with_its_fraction(acct: tp.Ledger) -> None:
    acct.set_budget("acme/fileorg", tokens=1_000, period="daily")
    acct.record_call("acme/fileorg/x", model="gpt-4o", input_tokens=860)
    (rec,) = [r for r in acct.report().recommendations if r.kind == "budget_near_limit"]
    assert rec.subject == "acme/fileorg" and rec.evidence["fraction"] == pytest.approx(0.86)
    assert "acme/fileorg at 86% of its daily budget" in rec.message


def test_grouping_by_day_is_chronological(acct: tp.Ledger) -> None:
    for offset in (2, 0, 1):
        acct.record_call("p", model="gpt-4o", input_tokens=10 * (offset + 1), ts=T0 + offset * DAY)
    report = acct.report(by="day")
    keys = [g.key for g in report.groups]
    assert keys == sorted(keys) and len(keys) == 3
    assert [g.input_tokens for g in report.groups] == [10, 20, 30]


def test_unknown_grouping_is_refused() -> None:
    with pytest.raises(InputError):
        build_report([], by="planet")


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_writes_a_deterministic_chart(acct: tp.Ledger, tmp_path: Path, suffix: str) -> None:
    acct.record_call("a/x", model="gpt-4o", input_tokens=1_000, output_tokens=200, ts=T0)
    acct.record_call("a/y", model="in-house-llm-7b", input_tokens=500, output_tokens=50, ts=T0 + 1)
    report = acct.report(by="scope")
    first = plot_report(report, tmp_path / f"one{suffix}").read_bytes()
    second = plot_report(report, tmp_path / f"two{suffix}").read_bytes()
    assert first == second and len(first) > 1_000
    assert first.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in first[:2_000]


def test_plot_refuses_other_formats(acct: tp.Ledger, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        plot_report(acct.report(), tmp_path / "chart.pdf")


def test_plot_of_an_empty_ledger_has_no_bars_and_no_legend(acct: tp.Ledger, tmp_path: Path) -> None:
    path = plot_report(acct.report(), tmp_path / "empty.svg")
    svg = path.read_text()
    assert "no calls in this window" in svg and "legend" not in svg


def test_plot_labels_unknown_cost_and_explains_the_question_marks(acct: tp.Ledger, tmp_path: Path) -> None:
    acct.record_call("lab", model="in-house-llm-7b", input_tokens=3_000_000, output_tokens=10, ts=T0)
    acct.record_call("prod", model="gpt-4o", input_tokens=2_500_000, output_tokens=10, ts=T0)
    acct.record_call("prod", model="in-house-llm-7b", input_tokens=100, output_tokens=10, ts=T0)
    svg = plot_report(acct.report(by="scope"), tmp_path / "costs.svg").read_text()
    for text in ("unknown", "+1?", "price unknown", "calls of unknown price", "3M", "2.5M"):
        assert text in svg, text
    assert "1e6" not in svg and "\u00d710" not in svg  # no offset text above the token axis


def test_plot_leaves_the_hosts_matplotlib_backend_and_pyplot_alone(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, matplotlib; matplotlib.use('svg'); import tokenpilot as tp\n"
        "from tokenpilot._account.plot import plot_report\n"
        f"acct = tp.open_ledger({str(tmp_path / 'l.db')!r})\n"
        "acct.record_call('a', model='gpt-4o', input_tokens=5)\n"
        f"plot_report(acct.report(), {str(tmp_path / 'p.png')!r})\n"
        "print(matplotlib.get_backend(), 'matplotlib.pyplot' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["svg", "False"]
