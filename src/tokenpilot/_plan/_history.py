"""What planning needs from a ledger, as protocols, so any store (or a test double) can serve.

The ledger implements both: `Ledger.records(...)` returns past calls and `Ledger.record_call(...)`
stores one attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class CallRecord(Protocol):
    """One past call, as far as learning max_tokens needs it."""

    @property
    def output_tokens(self) -> int | None: ...
    @property
    def max_tokens(self) -> int | None: ...
    @property
    def finish_reason(self) -> str | None: ...
    @property
    def phase(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def task_type(self) -> str | None: ...
    @property
    def attempt(self) -> int | None: ...


class CallHistory(Protocol):
    """Past calls, newest first, filtered by the given fields (None: any)."""

    def records(
        self,
        *,
        phase: str | None = None,
        model: str | None = None,
        task_type: str | None = None,
        limit: int | None = None,
    ) -> Sequence[CallRecord]: ...


class AttemptRecorder(Protocol):
    """Somewhere to record an attempt: `record_call(scope=, model=, input_tokens=, …)`."""

    def record_call(self, **fields: Any) -> Any: ...
