"""Importing usage exports and exporting the ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot import InputError
from tokenpilot._account.exchange import export_lines


@pytest.fixture
def acct(tmp_path: Path) -> Iterator[tp.Ledger]:
    ledger = tp.open_ledger(str(tmp_path / "ledger.db"))
    yield ledger
    ledger.close()


def test_openai_style_csv_columns_are_mapped(acct: tp.Ledger, tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(
        "timestamp,model,prompt_tokens,completion_tokens,cached_tokens,project\n"
        "2026-11-01T10:00:00Z,gpt-4o,1200,300,1000,acme/fileorg\n"
        "1793527200,gpt-4o-mini,50,5,,\n"
    )
    result = acct.import_file(path, scope="fallback")
    assert (result.imported, result.skipped_duplicates) == (2, 0)
    first, second = acct.records()
    assert (first.scope, first.input_tokens, first.output_tokens, first.cache_read_tokens) == (
        "acme/fileorg",
        1200,
        300,
        1000,
    )
    assert first.ts == datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp()
    assert second.ts == 1_793_527_200.0
    assert second.scope == "fallback" and second.source == "import"
    assert first.cost_usd == pytest.approx(tp.get_model("gpt-4o").cost(200, 300, 1000))


def test_anthropic_style_cache_columns_are_added_to_input(acct: tp.Ledger, tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    row = {
        "created_at": "2026-11-01 10:00:00",
        "model": "claude-sonnet-4-5",
        "input_tokens": 100,
        "cache_read_input_tokens": 900,
        "cache_creation_input_tokens": 50,
        "output_tokens": 20,
        "cost": "0.0042",
    }
    path.write_text(json.dumps(row) + "\n")
    acct.import_file(path)
    (record,) = acct.records()
    assert (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens) == (1050, 900, 50)
    assert record.cost_usd == pytest.approx(0.0042)  # the provider's own figure is kept


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(acct: tp.Ledger, tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text(
        "timestamp,model,input_tokens,output_tokens,cost\n"
        "2026-11-01,gpt-4o,10,5,\n"
        "yesterday-ish,gpt-4o,10,5,\n"
        "2026-11-01,gpt-4o,ten,5,\n"
        "2026-11-01,,10,5,\n"
        "2026-11-01,gpt-4o,10,5,-3\n"
    )
    with pytest.raises(InputError) as error:
        acct.import_file(path)
    message = str(error.value)
    assert "4 bad row(s)" in message and "nothing imported" in message
    for line in ("line 3", "line 4", "line 5", "line 6"):
        assert line in message
    assert "line 2" not in message
    assert acct.records() == []


def test_reimporting_the_same_request_ids_skips_them(acct: tp.Ledger, tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    rows = [
        {"ts": 1_790_000_000 + i, "model": "gpt-4o", "input_tokens": 10, "request_id": f"r{i}"}
        for i in range(3)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert acct.import_file(path).imported == 3
    again = acct.import_file(path)
    assert (again.imported, again.skipped_duplicates) == (0, 3)
    assert len(acct.records()) == 3


def test_unknown_price_on_import_is_none(acct: tp.Ledger, tmp_path: Path) -> None:
    path = tmp_path / "usage.csv"
    path.write_text("date,model,input_tokens,output_tokens\n2026-11-01,in-house-llm-7b,100,10\n")
    acct.import_file(path)
    assert acct.records()[0].cost_usd is None


def test_export_then_import_round_trips_every_field(acct: tp.Ledger, tmp_path: Path) -> None:
    acct.record_call(
        "acme/build",
        model="gpt-4o",
        input_tokens=1_000,
        output_tokens=400,
        cache_read_tokens=600,
        max_tokens=400,
        finish_reason="length",
        attempt=2,
        phase="build",
        agent="builder",
        task_type="code",
        request_id="abc",
        latency_s=1.5,
        ts=1_790_000_000.0,
    )
    acct.record_call("acme/plan", model="in-house-llm-7b", input_tokens=5, status="error", error="boom")
    for fmt in ("jsonl", "csv"):
        path = tmp_path / f"export.{fmt}"
        path.write_text("".join(export_lines(acct.records(), fmt)))
        with tp.open_ledger(str(tmp_path / f"copy-{fmt}.db")) as copy:
            assert copy.import_file(path).imported == 2
            keep = ("id", "source", "reservation_id")
            mine = [{k: v for k, v in r.as_dict().items() if k not in keep} for r in acct.records()]
            theirs = [{k: v for k, v in r.as_dict().items() if k not in keep} for r in copy.records()]
            assert theirs == mine


def test_export_is_deterministic(acct: tp.Ledger) -> None:
    acct.record_call("a", model="gpt-4o", input_tokens=3, ts=1_790_000_000.0)
    assert list(export_lines(acct.records(), "csv")) == list(export_lines(acct.records(), "csv"))


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=12), min_size=1, max_size=4))
def test_arbitrary_text_rows_never_half_import(tmp_path: Path, cells: list[str]) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_text("timestamp,model,input_tokens,output_tokens\n" + ",".join(cells) + "\n")
    with tp.open_ledger(str(tmp_path / "fuzz.db")) as ledger:
        before = len(ledger.records())
        try:
            result = ledger.import_file(path)
        except InputError:
            assert len(ledger.records()) == before
        else:
            assert len(ledger.records()) == before + result.imported
