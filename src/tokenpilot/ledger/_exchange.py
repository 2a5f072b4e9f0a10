"""Import usage exports (CSV / JSONL, common column names) and export the ledger the same way.

Import is all or nothing: every bad row is reported with its line number and nothing is written;
otherwise all rows are written in one transaction. Rows whose request_id is already in the ledger
for the same model are skipped, so importing the same file twice does not double the spend.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenpilot._exceptions import InputError
from tokenpilot.ledger._records import RECORD_FIELDS, STATUSES, LedgerRecord
from tokenpilot.ledger._time import iso, parse_time

# Our field -> the column names usage exports use for it (compared lower-case, "-"/" " as "_").
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "ts": (
        "ts",
        "timestamp",
        "time",
        "date",
        "datetime",
        "created_at",
        "created",
        "start_time",
        "timestamp_utc",
    ),
    "model": ("model", "model_name", "model_id", "snapshot_id"),
    "input_tokens": (
        "input_tokens",
        "prompt_tokens",
        "n_context_tokens_total",
        "input",
        "tokens_in",
        "uncached_input_tokens",
    ),
    "output_tokens": (
        "output_tokens",
        "completion_tokens",
        "n_generated_tokens_total",
        "output",
        "tokens_out",
    ),
    "cache_read_tokens": (
        "cache_read_tokens",
        "cached_tokens",
        "cached_input_tokens",
        "input_cached_tokens",
        "n_cached_context_tokens_total",
        "cache_read_input_tokens",
    ),
    "cache_write_tokens": ("cache_write_tokens", "cache_creation_input_tokens", "cache_creation_tokens"),
    "reasoning_tokens": ("reasoning_tokens",),
    "cost_usd": ("cost_usd", "cost", "total_cost", "cost_in_usd", "amount", "spend"),
    "scope": ("scope", "project", "project_name", "project_id", "workspace"),
    "phase": ("phase",),
    "agent": ("agent", "agent_name", "user", "user_id", "api_key_name"),
    "task_type": ("task_type",),
    "request_id": ("request_id", "id", "call_id", "generation_id"),
    "max_tokens": ("max_tokens", "max_output_tokens"),
    "finish_reason": ("finish_reason", "stop_reason"),
    "attempt": ("attempt",),
    "status": ("status",),
    "error": ("error",),
    "latency_s": ("latency_s", "latency"),
    "provider": ("provider",),
    "session": ("session", "session_id"),
    "http_status": ("http_status", "status_code"),
    "ttft_s": ("ttft_s", "time_to_first_token"),
    "usage_estimated": ("usage_estimated",),
    "max_tokens_requested": ("max_tokens_requested",),
    "optimized_from": ("optimized_from",),
    "optimized_to": ("optimized_to",),
    "optimize_actions": ("optimize_actions",),
}
OPTIONAL_WHOLE_FIELDS = (
    "max_tokens",
    "http_status",
    "max_tokens_requested",
    "optimized_from",
    "optimized_to",
)
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no", ""}
# Anthropic-style exports count cache reads/writes apart from input_tokens; ours includes them.
SEPARATE_CACHE_COLUMNS = {"cache_read_input_tokens", "cache_creation_input_tokens", "uncached_input_tokens"}
WHOLE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One usable row: the record's values (no id) and its line in the file."""

    line: int
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did."""

    path: str
    imported: int
    skipped_duplicates: int
    columns: dict[str, str]  # our field -> the file's column

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "imported": self.imported,
            "skipped_duplicates": self.skipped_duplicates,
            "columns": dict(self.columns),
        }


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _read_rows(path: Path, fmt: str | None) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    kind = fmt or ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv")
    if kind == "jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, {"__error__": f"invalid JSON ({exc.msg})"}
                continue
            yield number, row if isinstance(row, dict) else {"__error__": "not a JSON object"}
    elif kind == "csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        for row in reader:
            if None in row:
                yield reader.line_num, {"__error__": "more values than columns"}
                continue
            if not any((v or "").strip() for v in row.values()):
                continue
            yield reader.line_num, dict(row)
    else:
        raise InputError(f"unknown import format {fmt!r}: use csv or jsonl")


def _column_map(keys: set[str]) -> dict[str, str]:
    by_normal = {_normalise(k): k for k in keys}
    mapping = {}
    for field_name, names in COLUMN_NAMES.items():
        for name in names:
            if name in by_normal:
                mapping[field_name] = by_normal[name]
                break
    return mapping


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _whole(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    number = float(value)
    if number != int(number) or number < 0:
        raise ValueError
    return int(number)


def parse_import(
    path: Path, *, default_scope: str, now: float, fmt: str | None = None
) -> tuple[list[ImportRow], dict[str, str]]:
    """Rows ready to insert, or InputError listing every bad row by line number."""
    from tokenpilot.budget._scope import normalize_scope
    from tokenpilot.ledger._records import is_truncation, utilization

    rows: list[ImportRow] = []
    problems: list[str] = []
    columns: dict[str, str] = {}
    for line, raw in _read_rows(path, fmt):
        if "__error__" in raw:
            problems.append(f"line {line}: {raw['__error__']}")
            continue
        mapping = _column_map(set(raw))
        columns.update(mapping)
        missing = [f for f in ("ts", "model") if f not in mapping or _blank(raw[mapping[f]])]
        if "input_tokens" not in mapping and "output_tokens" not in mapping:
            missing.append("input_tokens/output_tokens")
        if missing:
            problems.append(f"line {line}: missing {', '.join(missing)}")
            continue
        values: dict[str, Any] = {}
        try:
            values["ts"] = parse_time(raw[mapping["ts"]], now=now)
        except InputError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        bad = None
        for field_name in WHOLE_FIELDS:
            column = mapping.get(field_name)
            value = None if column is None else raw[column]
            try:
                values[field_name] = 0 if _blank(value) else _whole(value)
            except (TypeError, ValueError):
                bad = f"{column} {value!r} is not a whole number of tokens"
                break
        if bad:
            problems.append(f"line {line}: {bad}")
            continue
        for field_name in ("input_tokens", "cache_read_tokens", "cache_write_tokens"):
            column = mapping.get(field_name)
            if field_name != "input_tokens" and column and _normalise(column) in SEPARATE_CACHE_COLUMNS:
                values["input_tokens"] += values[field_name]
        if values["cache_read_tokens"] + values["cache_write_tokens"] > values["input_tokens"]:
            problems.append(f"line {line}: cached tokens exceed input tokens")
            continue
        cost_column = mapping.get("cost_usd")
        cost_value = None if cost_column is None else raw[cost_column]
        if _blank(cost_value):
            values["cost_usd"] = "price"  # filled in from the model's price below
        else:
            try:
                cost = float(str(cost_value).lstrip("$"))
                if cost < 0 or cost != cost:
                    raise ValueError
                values["cost_usd"] = cost
            except ValueError:
                problems.append(f"line {line}: {cost_column} {cost_value!r} is not a cost in USD")
                continue
        try:
            scope_column = mapping.get("scope")
            scope_value = (
                raw[scope_column] if scope_column and not _blank(raw[scope_column]) else default_scope
            )
            values["scope"] = normalize_scope(str(scope_value))
            for field_name in OPTIONAL_WHOLE_FIELDS:
                column = mapping.get(field_name)
                values[field_name] = None if column is None or _blank(raw[column]) else _whole(raw[column])
            ttft_column = mapping.get("ttft_s")
            values["ttft_s"] = (
                None if ttft_column is None or _blank(raw[ttft_column]) else float(raw[ttft_column])
            )
            estimated_column = mapping.get("usage_estimated")
            estimated = "" if estimated_column is None else str(raw[estimated_column]).strip().lower()
            if estimated not in _TRUE | _FALSE:
                raise ValueError
            values["usage_estimated"] = estimated in _TRUE
            attempt_column = mapping.get("attempt")
            values["attempt"] = (
                1
                if attempt_column is None or _blank(raw[attempt_column])
                else max(1, _whole(raw[attempt_column]))
            )
            latency_column = mapping.get("latency_s")
            values["latency_s"] = (
                None if latency_column is None or _blank(raw[latency_column]) else float(raw[latency_column])
            )
        except (InputError, TypeError, ValueError) as exc:
            problems.append(f"line {line}: {exc if isinstance(exc, InputError) else 'bad number'}")
            continue
        for field_name in (
            "model",
            "phase",
            "agent",
            "task_type",
            "request_id",
            "finish_reason",
            "error",
            "provider",
            "session",
            "optimize_actions",
        ):
            column = mapping.get(field_name)
            values[field_name] = None if column is None or _blank(raw[column]) else str(raw[column]).strip()
        status_column = mapping.get("status")
        status = (
            "ok" if status_column is None or _blank(raw[status_column]) else str(raw[status_column]).strip()
        )
        if status not in STATUSES:
            problems.append(f"line {line}: status {status!r} is not one of {', '.join(STATUSES)}")
            continue
        values["status"] = status
        values["truncated"] = is_truncation(values["finish_reason"])
        values["output_utilization"] = utilization(values["output_tokens"], values["max_tokens"])
        rows.append(ImportRow(line, values))
    if problems:
        shown = "; ".join(problems[:20]) + (f"; … {len(problems) - 20} more" if len(problems) > 20 else "")
        raise InputError(f"{path}: {len(problems)} bad row(s), nothing imported: {shown}")
    if not rows:
        raise InputError(f"{path}: no rows to import")
    return rows, columns


def export_lines(records: list[LedgerRecord], fmt: str) -> Iterator[str]:
    """JSONL (one record per line, with an ISO `time`) or CSV with a header; same records, same bytes."""
    if fmt == "jsonl":
        for record in records:
            row = record.as_dict()
            row["time"] = iso(record.ts)
            yield json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n"
    elif fmt == "csv":
        header = [*RECORD_FIELDS, "time"]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        yield buffer.getvalue()
        for record in records:
            buffer.seek(0)
            buffer.truncate()
            row = record.as_dict()
            row["time"] = iso(record.ts)
            writer.writerow(["" if row[h] is None else row[h] for h in header])
            yield buffer.getvalue()
    else:
        raise InputError(f"unknown export format {fmt!r}: use jsonl or csv")
