"""The ledger's transactions (SQL): reserve, settle/release, record a call, reclaim, alerts, queries.

Each function runs inside the caller's `Store.run` transaction, after the budgets it depends on are
locked, so check-then-write cannot interleave with another process's.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, RowMapping

from tokenpilot._exceptions import TokenpilotError
from tokenpilot.budget import _schema as s
from tokenpilot.budget._capacity import load_budgets, usage_of, within
from tokenpilot.budget._reservation import CallUsage
from tokenpilot.budget._scope import enclosing_scopes
from tokenpilot.budget._types import Usage
from tokenpilot.ledger._alerts import Alert, NewAlert
from tokenpilot.ledger._records import RECORD_FIELDS, LedgerRecord, is_truncation, utilization


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Who made a call and what was reserved for it."""

    scope: str
    model: str
    max_tokens: int | None = None
    attempt: int = 1
    phase: str | None = None
    agent: str | None = None
    task_type: str | None = None
    request_id: str | None = None
    reservation_id: str | None = None
    session: str | None = None
    provider: str | None = None


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: the first budget and unit it would overrun."""

    scope: str
    unit: str
    limit: float
    spent: float
    reserved: float
    requested: float
    reason: str = "limit"  # or "unknown_price": a USD limit cannot be checked without a price


def model_price(model: str) -> tuple[Any, str | None]:
    """(ModelInfo or None, provider) — an unresolvable name is simply a model without a price."""
    from tokenpilot._config import load_config

    # The registry resolves config files on every call; cache per model and config state.
    config = load_config()
    return _model_price(model, id(config))


@lru_cache(maxsize=256)
def _model_price(model: str, _config_id: int) -> tuple[Any, str | None]:
    from tokenpilot._models import get_model

    try:
        info = get_model(model)
    except TokenpilotError:
        return None, None
    return info, info.provider


def call_cost(model: str, usage: CallUsage) -> float | None:
    """USD for a call, None when the price is unknown (never 0 for unknown)."""
    info, _ = model_price(model)
    if info is None:
        return None
    uncached = max(0, usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
    cost: float | None = info.cost(
        input_tokens=uncached,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    return cost


# --- reservations ------------------------------------------------------------------------------


def reserve(
    conn: Connection,
    *,
    lock: bool,
    call: CallInfo,
    input_tokens: int,
    max_output_tokens: int,
    usd: float | None,
    now: float,
    ttl: float,
    holder: str,
) -> tuple[str | None, Refusal | None, list[NewAlert], list[LedgerRecord]]:
    """Hold capacity on every enclosing budget at once, or refuse.

    Returns (reservation id, refusal, alerts, reclaimed records).
    """
    budgets = load_budgets(conn, enclosing_scopes(call.scope), lock=lock)
    reclaimed = reclaim(conn, now=now, under=budgets[0].scope if budgets else call.scope, limit=100)
    requested = {
        "tokens": float(input_tokens + max_output_tokens),
        "input_tokens": float(input_tokens),
        "output_tokens": float(max_output_tokens),
        "usd": usd,
    }
    usages: list[Usage] = []
    for budget in budgets:
        usage = usage_of(conn, budget.scope, budget, now)
        for line in usage.lines:
            if line.limit is None:
                continue
            amount = requested[line.unit]
            if amount is None:
                refusal = Refusal(
                    budget.scope, "usd", line.limit, line.spent, line.reserved, 0.0, "unknown_price"
                )
                return None, refusal, [_refusal_alert(refusal, call.model, usage)], reclaimed
            if line.spent + line.reserved + amount > line.limit + 1e-9:
                refusal = Refusal(budget.scope, line.unit, line.limit, line.spent, line.reserved, amount)
                return None, refusal, [_refusal_alert(refusal, call.model, usage)], reclaimed
        usages.append(usage)

    reservation_id = uuid.uuid4().hex
    conn.execute(
        s.reservations.insert().values(
            id=reservation_id,
            scope=call.scope,
            model=call.model,
            phase=call.phase,
            agent=call.agent,
            task_type=call.task_type,
            request_id=call.request_id,
            session=call.session,
            provider=call.provider,
            attempt=call.attempt,
            input_tokens=input_tokens,
            output_tokens=max_output_tokens,
            usd=usd,
            created_at=now,
            expires_at=now + ttl,
            holder=holder,
        )
    )
    alerts: list[NewAlert] = []
    for usage in usages:
        fractions = []
        for line in usage.lines:
            amount = requested[line.unit]
            if line.limit and amount is not None:
                fractions.append((line.spent + line.reserved + amount) / line.limit)
        alerts.extend(_capacity_alert(usage, max(fractions, default=0.0)))
    return reservation_id, None, alerts, reclaimed


def _refusal_alert(refusal: Refusal, model: str, usage: Usage) -> NewAlert:
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


def _capacity_alert(usage: Usage, fraction: float) -> list[NewAlert]:
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


# --- records -----------------------------------------------------------------------------------


def finish(
    conn: Connection,
    *,
    lock: bool,
    call: CallInfo,
    usage: CallUsage,
    now: float,
    source: str = "live",
    cost_override: float | None = None,
    use_cost_override: bool = False,
    ts: float | None = None,
) -> tuple[LedgerRecord, list[NewAlert]]:
    """Drop the call's reservation (if any) and append its record, in one transaction."""
    budgets = load_budgets(conn, enclosing_scopes(call.scope), lock=lock)
    error = usage.error
    if call.reservation_id is not None:
        dropped = conn.execute(delete(s.reservations).where(s.reservations.c.id == call.reservation_id))
        if dropped.rowcount == 0:
            late = "settled after its reservation expired and was reclaimed"
            error = f"{error}; {late}" if error else late
    record = _insert_record(
        conn,
        call=call,
        usage=usage,
        error=error,
        ts=now if ts is None else ts,
        source=source,
        cost=cost_override if use_cost_override else call_cost(call.model, usage),
    )
    alerts = _call_alerts(record)
    for budget in budgets:
        current = usage_of(conn, budget.scope, budget, now)
        fraction = current.fraction or 0.0
        alerts.extend(_capacity_alert(current, fraction))
        over = [line for line in current.lines if line.limit is not None and line.spent > line.limit]
        if over:
            line = over[0]
            alerts.append(
                NewAlert(
                    kind="budget_exceeded",
                    message=(
                        f"{budget.scope} spent {line.spent:,g} {line.unit}, "
                        f"over its limit of {line.limit:,g} "
                        "(calls used more than they reserved)"
                    ),
                    scope=budget.scope,
                    data={"unit": line.unit, "limit": line.limit, "spent": line.spent, "reason": "overspent"},
                    dedupe_key=f"overspent:{budget.scope}:{current.period_start}",
                )
            )
    return record, alerts


def _insert_record(
    conn: Connection,
    *,
    call: CallInfo,
    usage: CallUsage,
    error: str | None,
    ts: float,
    source: str,
    cost: float | None,
) -> LedgerRecord:
    _, provider = model_price(call.model)
    values: dict[str, Any] = {
        "ts": ts,
        "scope": call.scope,
        "phase": call.phase,
        "agent": call.agent,
        "task_type": call.task_type,
        "model": call.model,
        "provider": usage.provider or call.provider or provider,
        "request_id": usage.request_id or call.request_id,
        "reservation_id": call.reservation_id,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "max_tokens": call.max_tokens,
        "output_utilization": utilization(usage.output_tokens, call.max_tokens),
        "finish_reason": usage.finish_reason,
        "truncated": is_truncation(usage.finish_reason),
        "cost_usd": cost,
        "latency_s": usage.latency_s,
        "attempt": call.attempt,
        "status": usage.status,
        "error": error,
        "source": source,
        "session": call.session,
        "http_status": usage.http_status,
        "ttft_s": usage.ttft_s,
        "usage_estimated": usage.usage_estimated,
        "max_tokens_requested": usage.max_tokens_requested,
        "optimized_from": usage.optimized_from,
        "optimized_to": usage.optimized_to,
        "optimize_actions": usage.optimize_actions,
    }
    new_id = conn.execute(s.records.insert().values(**values)).inserted_primary_key
    assert new_id is not None
    return LedgerRecord(id=int(new_id[0]), **values)


def _day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def _hour(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H", time.gmtime(ts))


def _call_alerts(record: LedgerRecord) -> list[NewAlert]:
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


def reclaim(
    conn: Connection, *, now: float, under: str | None = None, limit: int = 1000
) -> list[LedgerRecord]:
    """Turn holds past their TTL into "expired" records (the call's real usage is unknown)."""
    h = s.reservations.c
    query = select(s.reservations).where(h.expires_at <= now).order_by(h.expires_at).limit(limit)
    if under is not None:
        query = query.where(within(h.scope, under))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    reclaimed = []
    for row in conn.execute(query).mappings().all():
        if conn.execute(delete(s.reservations).where(h.id == row["id"])).rowcount == 0:
            continue
        call = CallInfo(
            scope=row["scope"],
            model=row["model"],
            max_tokens=row["output_tokens"],
            attempt=row["attempt"],
            phase=row["phase"],
            agent=row["agent"],
            task_type=row["task_type"],
            request_id=row["request_id"],
            reservation_id=row["id"],
            session=row["session"],
            provider=row["provider"],
        )
        held = now - row["created_at"]
        usage = CallUsage(
            input_tokens=0,
            status="expired",
            error=f"reservation held {held:.0f} s, past its TTL, and reclaimed (holder {row['holder']}); "
            "the call's real usage is unknown",
        )
        # Tokens and cost of a reclaimed call are unknown, so its cost is None (never a made-up 0).
        record = _insert_record(
            conn, call=call, usage=usage, error=usage.error, ts=now, source="reclaim", cost=None
        )
        reclaimed.append(record)
    return reclaimed


# --- alerts ------------------------------------------------------------------------------------


def insert_alerts(conn: Connection, alerts: list[NewAlert], now: float) -> list[Alert]:
    """Store alerts; one whose dedupe_key is already stored is skipped. Returns those stored."""
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
        if alert.dedupe_key is None:
            new_id = conn.execute(s.alerts.insert().values(**values).returning(s.alerts.c.id)).scalar()
        else:
            dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            statement = (
                dialect_insert(s.alerts)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["dedupe_key"])
                .returning(s.alerts.c.id)
            )
            new_id = conn.execute(statement).scalar()
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


def alert_from_row(row: RowMapping) -> Alert:
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


def record_from_row(row: RowMapping) -> LedgerRecord:
    values = {name: row[name] for name in RECORD_FIELDS}
    values["truncated"] = bool(values["truncated"])
    values["usage_estimated"] = bool(values["usage_estimated"])
    values["id"] = int(values["id"])
    return LedgerRecord(**values)


def import_rows(conn: Connection, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Append imported rows (cost "price" = from the model's price); skip known (model, request_id)."""
    r = s.records.c
    wanted = {(row["model"], row["request_id"]) for row in rows if row.get("request_id")}
    known: set[tuple[str, str]] = set()
    ids = sorted({rid for _, rid in wanted})
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(r.model, r.request_id).where(r.request_id.in_(chunk))
        known.update((model, rid) for model, rid in conn.execute(query))
    imported = skipped = 0
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["model"], row["request_id"]) if row.get("request_id") else None
        if key is not None and (key in known or key in seen):
            skipped += 1
            continue
        if key is not None:
            seen.add(key)
        values = dict(row)
        if values["cost_usd"] == "price":
            usage = CallUsage(
                input_tokens=values["input_tokens"],
                output_tokens=values["output_tokens"],
                cache_read_tokens=values["cache_read_tokens"],
                cache_write_tokens=values["cache_write_tokens"],
            )
            values["cost_usd"] = call_cost(values["model"], usage)
        if values.get("provider") is None:
            values["provider"] = model_price(values["model"])[1]
        values["source"] = "import"
        values["reservation_id"] = None
        conn.execute(s.records.insert().values(**values))
        imported += 1
    return imported, skipped
