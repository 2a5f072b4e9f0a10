"""`cost compare`: price a workload across models and routing policies.

A workload is rows of token usage, read from
- a per-phase token table (CSV with a header, or a JSON list): `phase, input_tokens, output_tokens,
  calls` and optionally `task_type`, `complexity`, `model`, `cache_read_tokens`, `cache_write_tokens`;
  token columns are totals over the row's `calls` (default 1);
- a ledger export (JSONL, one call per line): `model, input_tokens, output_tokens, phase, …`.

Policies: `recorded` (each row on the model it names, when every row names one), `single:MODEL`
(everything on one model), `routed` (each row on the model the routing rules give its task type and
complexity; a row without a task type gets one from its phase name, e.g. "planning" -> planning,
"edit" -> code_generation, else unknown; complexity defaults to medium). A policy touching a model
of unknown price costs `None` (shown as unknown), never $0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenpilot._exceptions import InputError
from tokenpilot._models import get_model
from tokenpilot._plan._routing import route
from tokenpilot._plan._settings import RoutingSettings
from tokenpilot._plan._task import COMPLEXITIES, TASK_TYPES

TOKEN_FIELDS = ("input_tokens", "output_tokens", "calls", "cache_read_tokens", "cache_write_tokens")
# Phase-name words -> task type, first match wins (for rows that do not name a task type).
PHASE_TASK_TYPES: tuple[tuple[str, str], ...] = (
    ("review", "review"), ("audit", "review"), ("plan", "planning"), ("design", "planning"),
    ("explain", "explanation"), ("doc", "explanation"), ("summar", "explanation"),
    ("tool", "tool_call"), ("explor", "tool_call"), ("search", "tool_call"), ("navigat", "tool_call"),
    ("edit", "code_generation"), ("code", "code_generation"), ("implement", "code_generation"),
    ("fix", "code_generation"), ("test", "code_generation"), ("refactor", "code_generation"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WorkloadRow:
    """Token usage of one phase (or one recorded call)."""

    phase: str
    input_tokens: int
    output_tokens: int
    calls: int = 1
    task_type: str | None = None
    complexity: str | None = None
    model: str | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True, slots=True)
class PolicyCost:
    """A workload priced under one policy; `cost` is None when a price is unknown."""

    policy: str
    cost: float | None
    calls_by_model: dict[str, int]
    cost_by_phase: dict[str, float | None]
    unknown_price: tuple[str, ...]
    saving: float | None = None  # against the baseline, in USD (positive: cheaper)
    saving_share: float | None = None  # saving / baseline cost


@dataclass(frozen=True, slots=True)
class CostComparison:
    """Every policy's cost and its saving against the baseline."""

    baseline: str | None
    policies: tuple[PolicyCost, ...]
    calls: int
    input_tokens: int
    output_tokens: int


def task_type_of_phase(phase: str) -> str:
    """A task type for a phase name by `PHASE_TASK_TYPES`, or "unknown".

    >>> task_type_of_phase("code-review"), task_type_of_phase("explore"), task_type_of_phase("misc")
    ('review', 'tool_call', 'unknown')
    """
    lowered = phase.lower()
    for word, task_type in PHASE_TASK_TYPES:
        if word in lowered:
            return task_type
    return "unknown"


def _row(raw: Mapping[str, Any], where: str, *, ledger: bool) -> WorkloadRow:
    values: dict[str, Any] = {}
    for name in TOKEN_FIELDS:
        value = raw.get(name)
        if value in (None, ""):
            if name in ("input_tokens", "output_tokens"):
                raise InputError(f"{where}: missing {name!r}")
            continue
        try:
            number = float(value) if isinstance(value, str) else value
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or number < 0
                or number != int(number)
            ):
                raise ValueError
        except ValueError:
            raise InputError(f"{where}: {name!r} must be a whole number >= 0, got {value!r}") from None
        values[name] = int(number)
    for name in ("task_type", "complexity", "model"):
        value = raw.get(name)
        if value not in (None, ""):
            values[name] = str(value)
    if values.get("task_type") not in (None, *TASK_TYPES):
        raise InputError(
            f"{where}: unknown task_type {values['task_type']!r} (known: {', '.join(TASK_TYPES)})"
        )
    if values.get("complexity") not in (None, *COMPLEXITIES):
        raise InputError(
            f"{where}: unknown complexity {values['complexity']!r} (known: {', '.join(COMPLEXITIES)})"
        )
    phase = raw.get("phase")
    if phase in (None, "") and not ledger:
        raise InputError(f"{where}: missing 'phase'")
    return WorkloadRow(phase=str(phase or "-"), **values)


def parse_workload(text: str, *, name: str = "workload") -> list[WorkloadRow]:
    """Rows of a workload in CSV, JSON (a list, or {"phases": [...]}) or JSONL (a ledger export)."""
    stripped = text.lstrip()
    if not stripped:
        raise InputError(f"{name}: empty workload")
    rows: list[WorkloadRow] = []
    if stripped[0] in "[{":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if data is not None:
            items = data.get("phases", data.get("rows")) if isinstance(data, dict) else data
            if isinstance(data, dict) and items is None:
                items = [data]  # a one-line JSONL file
            if not isinstance(items, list):
                raise InputError(f'{name}: a JSON workload is a list of rows or {{"phases": [...]}}')
            for index, item in enumerate(items):
                if not isinstance(item, Mapping):
                    raise InputError(f"{name}: row {index + 1} is not an object")
                rows.append(_row(item, f"{name}: row {index + 1}", ledger="model" in item))
            return rows
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{name}: line {number}: invalid JSON ({exc.msg})") from None
            if not isinstance(item, Mapping):
                raise InputError(f"{name}: line {number} is not an object")
            rows.append(_row(item, f"{name}: line {number}", ledger=True))
        return rows
    import csv  # only `cost compare` reads CSV; keep `import tokenpilot` light
    import io

    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "input_tokens" not in reader.fieldnames:
        raise InputError(
            f"{name}: a CSV workload needs a header with phase,input_tokens,output_tokens[,calls]"
        )
    for number, record in enumerate(reader, 2):
        rows.append(_row(record, f"{name}: line {number}", ledger=False))
    return rows


def load_workload(path: Path) -> list[WorkloadRow]:
    """Read a workload file (see `parse_workload`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no such workload file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    rows = parse_workload(text, name=str(path))
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


def price_rows(policy: str, rows: Iterable[tuple[WorkloadRow, str]]) -> PolicyCost:
    """Price (row, model) pairs under a policy name."""
    total: float | None = 0.0
    calls: dict[str, int] = {}
    by_phase: dict[str, float | None] = {}
    unknown: set[str] = set()
    for row, model in rows:
        cost = get_model(model).cost(
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cache_read_tokens=row.cache_read_tokens,
            cache_write_tokens=row.cache_write_tokens,
        )
        calls[model] = calls.get(model, 0) + row.calls
        previous = by_phase.get(row.phase, 0.0)
        if cost is None:
            unknown.add(model)
            total = None
            by_phase[row.phase] = None
        else:
            if total is not None:
                total += cost
            by_phase[row.phase] = None if previous is None else previous + cost
    return PolicyCost(policy, total, calls, by_phase, tuple(sorted(unknown)))


def compare_costs(
    rows: Sequence[WorkloadRow],
    models: Sequence[str],
    routing: RoutingSettings,
    *,
    baseline: str | None = None,
) -> CostComparison:
    """Price `rows` as recorded (when every row names its model), on each of `models` alone, and routed.

    The baseline defaults to `recorded` when available, else the costliest policy with a known price.
    """
    if not rows:
        raise InputError("the workload has no rows")
    policies: list[PolicyCost] = []
    if all(r.model for r in rows):
        policies.append(price_rows("recorded", ((r, r.model or "") for r in rows)))
    for model in dict.fromkeys(models):
        policies.append(price_rows(f"single:{model}", ((r, model) for r in rows)))

    def routed_model(row: WorkloadRow) -> str:
        task_type = row.task_type or task_type_of_phase(row.phase)
        return route(task_type, row.complexity or "medium", routing).model

    policies.append(price_rows("routed", ((r, routed_model(r)) for r in rows)))
    names = [p.policy for p in policies]
    if baseline is None:
        known = [p for p in policies if p.cost is not None]
        baseline = (
            "recorded"
            if "recorded" in names
            else (max(known, key=lambda p: p.cost or 0.0).policy if known else None)
        )
    elif baseline not in names:
        raise InputError(f"unknown baseline policy {baseline!r} (known: {', '.join(names)})")
    base = next((p for p in policies if p.policy == baseline), None)
    base_cost = base.cost if base is not None else None
    compared = []
    for p in policies:
        if base_cost is None or p.cost is None:
            compared.append(p)
            continue
        saving = base_cost - p.cost
        share = saving / base_cost if base_cost else None
        compared.append(
            PolicyCost(p.policy, p.cost, p.calls_by_model, p.cost_by_phase, p.unknown_price, saving, share)
        )
    return CostComparison(
        baseline=baseline,
        policies=tuple(compared),
        calls=sum(r.calls for r in rows),
        input_tokens=sum(r.input_tokens for r in rows),
        output_tokens=sum(r.output_tokens for r in rows),
    )
