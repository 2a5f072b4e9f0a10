"""Reservations: capacity held on every enclosing budget for one call, then settled or released.

The transactions here each run inside one `Store.run`: `reserve` (hold on every enclosing budget or
on none), `finish` (drop the hold, append the call's record, count its spend) and `reclaim` (turn
holds past their TTL into "expired" records). Each touches a fixed number of rows whatever the
ledger's size. On PostgreSQL each first writes the reservation or record row, then reads the budgets:
`set_budget` locks those tables while it recounts, so no hold or spend can slip past a new budget.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from tokenpilot._account.alerts import NewAlert, call_alerts, capacity_alert, overspent_alert, refusal_alert
from tokenpilot._account.counters import (
    Connection,
    Counts,
    Held,
    Spend,
    add_spend_at,
    current_bucket,
    enclosing_budgets,
    execute,
    hold,
    live_counts,
    unhold_and_spend,
)
from tokenpilot._account.pricing import to_nano
from tokenpilot._account.records import RECORD_FIELDS, Call, CallUsage, LedgerRecord, record_values
from tokenpilot._budget import Budget, Period, Refusal, Request, Usage, fraction, refusal, usage_of
from tokenpilot._exceptions import InputError, TokenpilotError

log = logging.getLogger("tokenpilot.account")
log.addHandler(logging.NullHandler())  # a library logs; the application decides what is shown


class _Owner(Protocol):
    def _finish(self, reservation: Reservation, usage: CallUsage, *, wait: bool = True) -> LedgerRecord: ...


class Reservation:
    """Held capacity for one call; settle it with the real usage, or leave the block to release it.

        with acct.reserve("acme/fileorg/builder", model="gpt-4o", input_tokens=12_000,
                          max_output_tokens=8_000) as r:
            response = call_model(...)
            r.settle(input_tokens=11_870, output_tokens=6_120, finish_reason="stop")

    Leaving the block with an exception releases the reservation and records the failed call
    (status "rate_limited" when the exception looks like an HTTP 429, "cancelled" for a cancelled
    task, else "error"); leaving it without settling records a "released" call with no tokens.
    `call` is who made the call (scope, model, phase, agent, task_type, session, provider, …).
    """

    def __init__(
        self,
        owner: _Owner,
        *,
        id: str,
        call: Call,
        input_tokens: int,
        usd: float | None,
        expires_at: float,
        written: bool = True,
    ):
        self._owner = owner
        self.written = written  # False: no budget enclosed the scope, so no hold row was written
        self.id = id
        self.call = call
        self.input_tokens = input_tokens
        self.usd = usd
        self.expires_at = expires_at
        self.record: LedgerRecord | None = None
        self._started = time.monotonic()
        self._closing = threading.Lock()  # settle/release from two threads: exactly one wins

    # The call's identity, as attributes of the reservation.
    scope = property(lambda self: self.call.scope)
    model = property(lambda self: self.call.model)
    attempt = property(lambda self: self.call.attempt)
    phase = property(lambda self: self.call.phase)
    agent = property(lambda self: self.call.agent)
    task_type = property(lambda self: self.call.task_type)
    session = property(lambda self: self.call.session)
    provider = property(lambda self: self.call.provider)
    request_id = property(lambda self: self.call.request_id)

    @property
    def max_output_tokens(self) -> int:
        assert self.call.max_tokens is not None
        return self.call.max_tokens

    @property
    def active(self) -> bool:
        return self.record is None

    @property
    def tokens(self) -> int:
        """Tokens held: the input plus max_output_tokens."""
        return self.input_tokens + self.max_output_tokens

    def settle(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        finish_reason: str | None = None,
        provider: str | None = None,
        request_id: str | None = None,
        latency_s: float | None = None,
        status: str = "ok",
        error: str | None = None,
        http_status: int | None = None,
        ttft_s: float | None = None,
        usage_estimated: bool = False,
        max_tokens_requested: int | None = None,
        optimized_from: int | None = None,
        optimized_to: int | None = None,
        optimize_actions: str | None = None,
        wait: bool = True,
    ) -> LedgerRecord:
        """Replace the hold by the real usage and write the call's ledger record (one transaction).

        `input_tokens` defaults to the reserved input; `latency_s` to the time since `reserve`. A call
        that failed or was cancelled part-way is settled the same way with the tokens it really used
        (a partial stream) and its `status` ("error", "rate_limited", "cancelled"): those tokens are
        spent, the rest of the hold is released. `wait=False`: as in `reserve` (the reservation
        stays open when `StoreBusy` is raised, so the settle can be retried).
        """
        usage = CallUsage(
            input_tokens=self.input_tokens if input_tokens is None else input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            finish_reason=finish_reason,
            provider=provider or self.provider,
            request_id=request_id or self.request_id,
            latency_s=self._elapsed() if latency_s is None else latency_s,
            status=status,
            error=error,
            http_status=http_status,
            ttft_s=ttft_s,
            usage_estimated=usage_estimated,
            max_tokens_requested=max_tokens_requested,
            optimized_from=optimized_from,
            optimized_to=optimized_to,
            optimize_actions=optimize_actions,
        )
        return self._close(usage, wait=wait)

    def release(self, error: str | None = None, *, status: str = "error", wait: bool = True) -> LedgerRecord:
        """Give the hold back without spending it (the call failed or was never made)."""
        usage = CallUsage(
            input_tokens=0, status=status, error=error, latency_s=self._elapsed(), provider=self.provider
        )
        return self._close(usage, wait=wait)

    def _close(self, usage: CallUsage, *, wait: bool = True) -> LedgerRecord:
        with self._closing:
            if self.record is not None:
                raise InputError(
                    f"reservation {self.id} is already {self.record.status}; settle or release once"
                )
            self.record = self._owner._finish(self, usage, wait=wait)
            return self.record

    def _elapsed(self) -> float:
        return round(time.monotonic() - self._started, 6)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.record is not None:
            return
        if exc is None:
            self.release("left the reserve() block without settle()", status="released")
            return
        status = (
            "rate_limited"
            if _looks_rate_limited(exc)
            else "cancelled"
            if isinstance(exc, asyncio.CancelledError | GeneratorExit)
            else "error"
        )
        try:
            self.release(f"{type(exc).__name__}: {exc}"[:2000], status=status)
        except TokenpilotError as problem:
            # Never mask the caller's exception; the hold expires after its TTL anyway.
            log.warning(
                "could not release reservation %s (%s); it will be reclaimed after its TTL",
                self.id,
                problem,
                extra={"event": "release_failed", "reservation": self.id},
            )


def _looks_rate_limited(exc: BaseException) -> bool:
    """An HTTP 429 from any client library (status_code / status attributes or the class name)."""
    for attribute in ("status_code", "status", "http_status"):
        value: Any = getattr(exc, attribute, None)
        if value == 429:
            return True
    response: Any = getattr(exc, "response", None)
    if getattr(response, "status_code", None) == 429:
        return True
    return "ratelimit" in type(exc).__name__.lower().replace("_", "")


# --- transactions -------------------------------------------------------------------------------


class Refused(Exception):
    """Raised inside a reserve transaction to roll it back: `refusal` says which budget and unit."""

    def __init__(self, refusal: Refusal, usage: Usage):
        super().__init__(refusal.scope)
        self.refusal = refusal
        self.usage = usage


@dataclass(slots=True)
class Outcome:
    """What a transaction did besides its main row: alerts to store, holds it reclaimed."""

    alerts: list[NewAlert] = field(default_factory=list)
    reclaimed: list[LedgerRecord] = field(default_factory=list)


INSERT_RESERVATION = """
INSERT INTO tp_reservations (id, scope, model, phase, agent, task_type, request_id, session, provider,
    attempt, input_tokens, output_tokens, usd, created_at, expires_at, holder)
VALUES (:id, :scope, :model, :phase, :agent, :task_type, :request_id, :session, :provider,
    :attempt, :input_tokens, :output_tokens, :usd, :created_at, :expires_at, :holder)
"""
_RECORD_COLUMNS = [name for name in RECORD_FIELDS if name != "id"]
INSERT_RECORD = (
    f"INSERT INTO tp_records ({', '.join(_RECORD_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in _RECORD_COLUMNS)}) RETURNING id"
)


def _usage(budget: Budget, counts: Counts, now: float) -> Usage:
    return usage_of(
        budget.scope,
        budget,
        Period.parse(budget.period).window(now, budget.timezone),
        spent=counts.spent.amounts,
        reserved=counts.held.amounts,
        calls=counts.spent.calls,
        unknown_cost_calls=counts.spent.unknown,
        active_reservations=counts.held.holds,
    )


def reserve(
    conn: Connection,
    *,
    reservation_id: str,
    call: Call,
    request: Request,
    now: float,
    ttl: float,
    holder: str,
) -> list[NewAlert]:
    """Hold `request` on every budget enclosing `call.scope`, or raise `Refused` (nothing is held)."""
    execute(conn, INSERT_RESERVATION, reservation_row(reservation_id, call, request, now, ttl, holder))
    alerts: list[NewAlert] = []
    for budget in enclosing_budgets(conn, call.scope):
        counts = hold(conn, budget, request, now)
        if counts is None:
            current = live_counts(conn, budget, now)
            if current is None:
                continue  # removed by another process since it was read
            usage = _usage(budget, current, now)
            found = refusal(budget, current.spent.amounts, current.held.amounts, request)
            raise Refused(found or _closest_refusal(budget, usage, request), usage)
        alerts.extend(held_alerts(budget, counts, now))
    return alerts


def reservation_row(
    reservation_id: str, call: Call, request: Request, now: float, ttl: float, holder: str
) -> dict[str, Any]:
    """The columns of a reservation's row in `tp_reservations`."""
    return {
        "id": reservation_id,
        "scope": call.scope,
        "model": call.model,
        "phase": call.phase,
        "agent": call.agent,
        "task_type": call.task_type,
        "request_id": call.request_id,
        "session": call.session,
        "provider": call.provider,
        "attempt": call.attempt,
        "input_tokens": request.input_tokens,
        "output_tokens": request.output_tokens,
        "usd": request.usd,
        "created_at": now,
        "expires_at": now + ttl,
        "holder": holder,
    }


def held_alerts(budget: Budget, counts: Counts, now: float) -> list[NewAlert]:
    """The capacity alert a hold raises on `budget` (counts after the hold), if past its warn_at."""
    share = fraction(budget, counts.spent.amounts, counts.held.amounts)
    return capacity_alert(_usage(budget, counts, now), share) if share >= budget.warn_at else []


def spent_alerts(budget: Budget, counts: Counts, now: float) -> list[NewAlert]:
    """The capacity and overspent alerts a settlement raises on `budget` (counts after it)."""
    share = fraction(budget, counts.spent.amounts, counts.held.amounts)
    if share < budget.warn_at and share <= 1:
        return []
    usage_now = _usage(budget, counts, now)
    return [*capacity_alert(usage_now, share), *overspent_alert(usage_now)]


def _closest_refusal(budget: Budget, usage: Usage, request: Request) -> Refusal:
    # The store refused within a rounding error of the limit: name the fullest unit.
    line = max(
        (line for line in usage.lines if line.limit is not None), key=lambda line: line.fraction or 0.0
    )
    assert line.limit is not None
    return Refusal(
        budget.scope, line.unit, line.limit, line.spent, line.reserved, request.of(line.unit) or 0.0
    )


def refusal_alerts(refused: Refused, model: str) -> list[NewAlert]:
    return [refusal_alert(refused.refusal, model, refused.usage)]


def insert_record(conn: Connection, values: dict[str, Any]) -> LedgerRecord:
    new_id = execute(conn, INSERT_RECORD, values).scalar()
    return LedgerRecord(id=int(new_id), **values)


def finish(
    conn: Connection,
    *,
    call: Call,
    usage: CallUsage,
    cost: float | None,
    now: float,
    provider: str | None,
    reservation_id: str | None = None,
    ts: float | None = None,
    source: str = "live",
    hold_written: bool = True,
) -> tuple[LedgerRecord, list[NewAlert]]:
    """Drop the call's hold (if any), append its record and count its spend, in one transaction.

    `hold_written=False`: the reservation held nothing (no budget enclosed its scope), so there is
    no row to drop; the record still names it."""
    held = Held()
    error = usage.error
    if reservation_id is not None and hold_written:
        row = execute(
            conn,
            "DELETE FROM tp_reservations WHERE id = :id RETURNING input_tokens, output_tokens, usd",
            {"id": reservation_id},
        ).fetchone()
        if row is None:
            late = "settled after its reservation expired and was reclaimed"
            error = f"{error}; {late}" if error else late
        else:
            held = Held(int(row[0]), int(row[1]), to_nano(row[2]), 1)

    values = record_values(
        call,
        usage,
        ts=now if ts is None else ts,
        cost=cost,
        source=source,
        reservation_id=reservation_id,
        provider=provider,
        error=error,
    )
    record = insert_record(conn, values)
    spend = Spend.of_record(record.input_tokens, record.output_tokens, record.cost_usd)
    alerts = call_alerts(record)
    for budget in enclosing_budgets(conn, call.scope):
        if ts is None or Period.parse(budget.period).bucket(ts, budget.timezone) == current_bucket(
            budget, now
        ):
            counts = unhold_and_spend(conn, budget, held, spend, now)
        else:
            unhold_and_spend(conn, budget, held, Spend(), now)
            add_spend_at(conn, budget, ts, spend, now)
            counts = live_counts(conn, budget, now)
        if counts is None:
            continue
        alerts.extend(spent_alerts(budget, counts, now))
    return record, alerts


_EXPIRED = {
    "sqlite": "SELECT id, scope, model, phase, agent, task_type, request_id, session, provider, attempt, "
    "input_tokens, output_tokens, usd, created_at, holder FROM tp_reservations "
    "WHERE expires_at <= :now ORDER BY expires_at LIMIT :limit",
}
_EXPIRED["postgresql"] = _EXPIRED["sqlite"] + " FOR UPDATE SKIP LOCKED"


def reclaim(conn: Connection, *, now: float, limit: int = 1000) -> list[LedgerRecord]:
    """Turn holds past their TTL into "expired" records (the call's real usage is unknown)."""
    reclaimed = []
    for row in execute(conn, _EXPIRED[conn.dialect.name], {"now": now, "limit": limit}).fetchall():
        (rid, scope, model, phase, agent, task_type, request_id, session, provider, attempt) = row[:10]
        input_tokens, output_tokens, usd, created_at, holder = row[10:]
        gone = execute(conn, "DELETE FROM tp_reservations WHERE id = :id", {"id": rid})
        if gone.rowcount == 0:
            continue
        call = Call(
            scope=scope,
            model=model,
            max_tokens=output_tokens,
            attempt=attempt,
            phase=phase,
            agent=agent,
            task_type=task_type,
            session=session,
            provider=provider,
            request_id=request_id,
        )
        error = (
            f"reservation held {now - created_at:.0f} s, past its TTL, and reclaimed (holder {holder}); "
            "the call's real usage is unknown"
        )

        # Tokens and cost of a reclaimed call are unknown, so its cost is None (never a made-up 0).
        values = record_values(
            call,
            CallUsage(input_tokens=0, status="expired", error=error),
            ts=now,
            cost=None,
            source="reclaim",
            reservation_id=rid,
        )
        record = insert_record(conn, values)
        held = Held(int(input_tokens), int(output_tokens), to_nano(usd), 1)
        for budget in enclosing_budgets(conn, scope):
            unhold_and_spend(conn, budget, held, Spend.of_record(0, 0, None), now)
        reclaimed.append(record)
    return reclaimed
