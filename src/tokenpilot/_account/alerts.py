"""Alerts: what is worth a person's attention, built from plain data, stored once per dedupe key.

Each is stored, logged as a structured event, delivered to callbacks, and acknowledgeable.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tokenpilot._account.records import LedgerRecord
from tokenpilot._budget import Refusal, Usage

if TYPE_CHECKING:
    from tokenpilot._account.counters import Connection

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


def refusal_alert(refusal: Refusal, model: str, usage: Usage) -> NewAlert:
    if refusal.reason == "unknown_price":
        message = f"{refusal.scope} has a USD limit but the price of {model} is unknown: reservation refused"
    else:
        message = (
            f"{refusal.scope}: reservation of {refusal.requested:,g} {refusal.unit} refused "
            f"(limit {refusal.limit:,g}, spent {refusal.spent:,g}, reserved {refusal.reserved:,g})"
        )
    return NewAlert(
        kind="budget_exceeded",
        message=message,
        scope=refusal.scope,
        model=model,
        data={
            "unit": refusal.unit,
            "limit": refusal.limit,
            "spent": refusal.spent,
            "reserved": refusal.reserved,
            "requested": refusal.requested,
            "reason": refusal.reason,
            "period_start": usage.period_start,
        },
        # One stored alert per budget and period; every refusal is still logged.
        dedupe_key=f"budget_exceeded:{refusal.scope}:{usage.period_start}",
    )


def _period_word(period: str) -> str:
    return "" if period == "none" else f"{period} "


def capacity_alert(usage: Usage, fraction: float) -> list[NewAlert]:
    budget = usage.budget
    if budget is None or fraction < budget.warn_at:
        return []
    return [
        NewAlert(
            kind="capacity_warning",
            message=(
                f"{usage.scope} at {fraction:.0%} of its {_period_word(budget.period)}budget "
                f"(warning at {budget.warn_at:.0%})"
            ),
            scope=usage.scope,
            data={
                "fraction": round(fraction, 6),
                "warn_at": budget.warn_at,
                "limits": budget.limits(),
                "period": budget.period,
                "period_start": usage.period_start,
                "period_end": usage.period_end,
            },
            dedupe_key=f"capacity_warning:{usage.scope}:{usage.period_start}",
        )
    ]


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _hour(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H", time.gmtime(ts))


def call_alerts(record: LedgerRecord) -> list[NewAlert]:
    alerts: list[NewAlert] = []
    where = {"record_id": record.id, "request_id": record.request_id}
    if record.truncated:
        alerts.append(
            NewAlert(
                kind="truncation",
                message=(
                    f"{record.scope}: {record.model} stopped at max_tokens "
                    f"({record.output_tokens:,}/{record.max_tokens or '?'} output tokens)"
                ),
                scope=record.scope,
                model=record.model,
                data={**where, "output_tokens": record.output_tokens, "max_tokens": record.max_tokens},
                # One stored alert per scope, model and UTC day (every call is in the ledger and the log).
                dedupe_key=f"truncation:{record.scope}:{record.model}:{_day(record.ts)}",
            )
        )
    if record.status == "rate_limited":
        alerts.append(
            NewAlert(
                kind="rate_limited",
                message=f"{record.scope}: {record.model} was rate limited ({record.error or 'HTTP 429'})",
                scope=record.scope,
                model=record.model,
                data=where,
                dedupe_key=f"rate_limited:{record.scope}:{record.model}:{_hour(record.ts)}",
            )
        )
    if record.cost_usd is None and record.total_tokens > 0:
        alerts.append(
            NewAlert(
                kind="unknown_price",
                message=f"price of {record.model} is unknown: its calls are recorded with cost None, not $0",
                scope=record.scope,
                model=record.model,
                data=where,
                dedupe_key=f"unknown_price:{record.model}",
            )
        )
    return alerts


def overspent_alert(usage: Usage) -> list[NewAlert]:
    """An alert when calls used more than they reserved and spend passed a limit."""
    over = [line for line in usage.lines if line.limit is not None and line.spent > line.limit]
    if not over:
        return []
    line = over[0]
    return [
        NewAlert(
            kind="budget_exceeded",
            message=(
                f"{usage.scope} spent {line.spent:,g} {line.unit}, over its limit of {line.limit:,g} "
                "(calls used more than they reserved)"
            ),
            scope=usage.scope,
            data={"unit": line.unit, "limit": line.limit, "spent": line.spent, "reason": "overspent"},
            dedupe_key=f"overspent:{usage.scope}:{usage.period_start}",
        )
    ]


def unknown_price_alert(model: str, calls: int = 1) -> NewAlert:
    return NewAlert(
        kind="unknown_price",
        message=f"price of {model} is unknown: its calls are recorded with cost None, not $0",
        model=model,
        data={"calls": calls},
        dedupe_key=f"unknown_price:{model}",
    )


_INSERT_ALERT = """
INSERT INTO tp_alerts (ts, kind, scope, model, message, data, dedupe_key)
VALUES (:ts, :kind, :scope, :model, :message, :data, :dedupe_key)
ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
"""


def insert_alerts(conn: Connection, alerts: list[NewAlert], now: float) -> list[Alert]:
    """Store alerts; one whose dedupe_key is already stored is skipped. Returns those stored."""
    from tokenpilot._account.counters import execute

    stored = []
    for alert in alerts:
        values = {
            "ts": now,
            "kind": alert.kind,
            "scope": alert.scope,
            "model": alert.model,
            "message": alert.message,
            "data": json.dumps(_finite(alert.data), sort_keys=True),
            "dedupe_key": alert.dedupe_key,
        }
        new_id = execute(conn, _INSERT_ALERT, values).scalar()
        if new_id is not None:
            stored.append(
                Alert(
                    id=int(new_id),
                    ts=now,
                    kind=alert.kind,
                    message=alert.message,
                    scope=alert.scope,
                    model=alert.model,
                    data=dict(alert.data),
                )
            )
    return stored


def _finite(data: dict[str, Any]) -> dict[str, Any]:
    # JSON has no Infinity; a zero limit in use reads as None.
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}


def alert_from_row(row: Any) -> Alert:
    return Alert(
        id=int(row["id"]),
        ts=row["ts"],
        kind=row["kind"],
        message=row["message"],
        scope=row["scope"],
        model=row["model"],
        data=json.loads(row["data"]),
        acknowledged_at=row["acknowledged_at"],
    )
