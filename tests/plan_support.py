"""Helpers of the plan tests: provider fixtures and an in-memory ledger double."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data" / "plan"


def fixture(name: str) -> Any:
    """A request, response or error body from tests/data/plan (as the provider's API reference shows)."""
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Record:
    output_tokens: int | None
    max_tokens: int | None = None
    finish_reason: str | None = "stop"
    phase: str | None = None
    model: str | None = None
    task_type: str | None = None
    attempt: int | None = 1


@dataclass
class FakeLedger:
    """The two ledger methods planning uses, in memory: records() newest first, record_call()."""

    rows: list[Record] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    queries: list[dict[str, Any]] = field(default_factory=list)

    def records(
        self,
        *,
        phase: str | None = None,
        model: str | None = None,
        task_type: str | None = None,
        limit: int | None = None,
    ) -> list[Record]:
        self.queries.append({"phase": phase, "model": model, "task_type": task_type, "limit": limit})
        found = [
            r
            for r in reversed(self.rows)
            if (phase is None or r.phase == phase)
            and (model is None or r.model == model)
            and (task_type is None or r.task_type == task_type)
        ]
        return found[:limit] if limit is not None else found

    def record_call(self, **fields: Any) -> None:
        self.recorded.append(fields)


def write_project_config(text: str) -> Path:
    """A tokenpilot.toml in the test's working directory."""
    path = Path.cwd() / "tokenpilot.toml"
    path.write_text(text, encoding="utf-8")
    return path
