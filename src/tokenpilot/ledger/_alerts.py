"""Alerts: stored, logged as structured events, delivered to callbacks, acknowledgeable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALERT_KINDS = ("capacity_warning", "budget_exceeded", "truncation", "rate_limited", "unknown_price")


@dataclass(frozen=True, slots=True)
class Alert:
    """Something a person should know about a budget or a call.

    kind is one of `ALERT_KINDS`; `data` holds the evidence (limit, spent, fraction, model, …).
    """

    id: int
    ts: float
    kind: str
    message: str
    scope: str | None = None
    model: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    acknowledged_at: float | None = None

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "kind": self.kind,
            "scope": self.scope,
            "model": self.model,
            "message": self.message,
            "data": dict(self.data),
            "acknowledged_at": self.acknowledged_at,
        }


@dataclass(frozen=True, slots=True)
class NewAlert:
    """An alert about to be written; `dedupe_key` makes it at most once (e.g. per budget period)."""

    kind: str
    message: str
    scope: str | None = None
    model: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    dedupe_key: str | None = None
