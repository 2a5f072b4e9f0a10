"""The account: budgets, reservations, the per-call ledger and alerts over one store (`open_ledger`).

SQLAlchemy and the database driver load on first use (`open_ledger`), never at `import tokenpilot`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from tokenpilot._account.alerts import ALERT_KINDS, Alert, NewAlert
from tokenpilot._account.exchange import ImportResult
from tokenpilot._account.records import STATUSES, Call, CallUsage, LedgerRecord
from tokenpilot._account.reservations import Reservation
from tokenpilot._budget import Budget, Period, Request, Usage, check_limit, normalize_scope, zone
from tokenpilot._exceptions import BudgetError, BudgetExceeded, ConfigError, InputError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from tokenpilot._account.counters import Connection as Transaction
    from tokenpilot._account.counters import Held
    from tokenpilot._account.hot_path import HotPath
    from tokenpilot._account.reports import Report
    from tokenpilot._account.store import Store
    from tokenpilot._config import Config

log = logging.getLogger("tokenpilot.ledger")
log.addHandler(logging.NullHandler())  # a library logs; the application decides what is shown

DEFAULT_TTL = 600.0
RECLAIM_EVERY = 1.0  # seconds between the sweeps for expired holds that reserve() runs on the way
AlertCallback = Callable[[Alert], None]
T = TypeVar("T")
_UNSET: Any = object()


def _epoch(value: float | datetime | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, datetime):
        return value.timestamp()
    raise InputError(f"a time must be Unix seconds or a datetime, got {value!r}")


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{name} must be a non-negative whole number, got {value!r}")
    return value


class Ledger:
    """Budgets, reservations and the per-call ledger in one database. Open it with `open_ledger`.

    acct = tp.open_ledger()
    acct.set_budget("acme/fileorg", tokens=2_000_000, period="daily", warn_at=0.8)
    with acct.reserve("acme/fileorg/phase-2/builder", model="gpt-4o",
                      input_tokens=12_000, max_output_tokens=8_000) as r:
        r.settle(input_tokens=11_870, output_tokens=6_120, finish_reason="stop")
    acct.usage("acme/fileorg").remaining

    Threads: one Ledger may be shared by any number of threads (a proxy's thread pool). Every call
    runs in its own transaction, writes on the driver connection its thread keeps, reads on a pooled
    one; on SQLite, writers of one process take turns on a thread lock before the file lock and
    `BEGIN IMMEDIATE`, on PostgreSQL the budget rows' locks order them. The Ledger keeps no per-call
    state (only caches safe to share); a `Reservation` settles or releases once, whichever thread
    gets there first.
    """

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = DEFAULT_TTL,
        timezone: str = "UTC",
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self.ttl = ttl
        self.timezone = timezone
        self._clock = clock
        self._callbacks: list[AlertCallback] = []
        self._holder = f"{socket.gethostname()}:{os.getpid()}"
        self._next_reclaim = 0.0
        self._stored_keys: set[str] = set()  # dedupe keys known to be stored: skip re-inserting them
        from tokenpilot._account.hot_path import HotPath

        self._hot: HotPath = HotPath(store)

    # --- housekeeping --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where the data lives (password hidden)."""
        return self._store.display

    @property
    def dialect(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self._store.dialect

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def on_alert(self, callback: AlertCallback) -> AlertCallback:
        """Call `callback(alert)` for every alert this ledger stores from now on (usable as a decorator)."""
        self._callbacks.append(callback)
        return callback

    # --- budgets -------------------------------------------------------------------------------

    def set_budget(
        self,
        scope: str,
        *,
        tokens: int | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        usd: float | None = None,
        period: str = "none",
        warn_at: float = 0.8,
        timezone: str | None = None,
    ) -> Budget:
        """Create or replace the budget on `scope` (it limits everything spent beneath it).

        acct.set_budget("acme", usd=50.0, period="monthly", timezone="Europe/Paris")
        """
        for name, value, whole in (
            ("tokens", tokens, True),
            ("input_tokens", input_tokens, True),
            ("output_tokens", output_tokens, True),
            ("usd", usd, False),
        ):
            check_limit(name, value, whole=whole)
        if tokens is None and input_tokens is None and output_tokens is None and usd is None:
            raise InputError("a budget needs at least one limit: tokens, input_tokens, output_tokens or usd")
        if isinstance(warn_at, bool) or not isinstance(warn_at, int | float) or not 0 < warn_at <= 1:
            raise InputError(f"warn_at must be a fraction in (0, 1], got {warn_at!r}")
        tz = timezone or self.timezone
        zone(tz)
        budget = Budget(
            scope=normalize_scope(scope),
            tokens=tokens,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            usd=None if usd is None else float(usd),
            period=Period.parse(period).spec,
            timezone=tz,
            warn_at=float(warn_at),
        )
        from tokenpilot._account.budgets import upsert_budget

        now = self._clock()
        self._store.run(lambda conn: upsert_budget(conn, budget, now))
        log.info("budget set", extra={"event": "budget_set", **budget.as_dict()})
        return budget

    def remove_budget(self, scope: str) -> bool:
        """Delete the budget on exactly `scope`; False when there was none. Records are kept."""
        from tokenpilot._account.budgets import delete_budget

        name = normalize_scope(scope)
        return self._store.run(lambda conn: delete_budget(conn, name))

    def budgets(self, under: str | None = None) -> list[Budget]:
        """Every budget (or those at or beneath `under`), in scope order."""
        from tokenpilot._account.counters import budgets_under

        name = None if under is None else normalize_scope(under)
        return self._store.run(lambda conn: budgets_under(conn, name), read_only=True)

    def usage(self, scope: str) -> Usage:
        """Spent, reserved and remaining beneath `scope` in the current period of its budget.

        u = acct.usage("acme/fileorg")
        u.limit, u.spent, u.reserved, u.remaining, u.period_start, u.period_end

        With a budget on `scope` this reads its counters (a few rows); without one it sums every
        record beneath `scope`.
        """
        from tokenpilot._account.counters import budget_usage, budgets_under, scope_usage

        name = normalize_scope(scope)
        now = self._clock()

        def read(conn: Connection) -> Usage:
            found = [b for b in budgets_under(conn, name) if b.scope == name]
            return budget_usage(conn, found[0], now) if found else scope_usage(conn, name, now)

        return self._store.run(read, read_only=True)

    def verify_counters(self) -> list[str]:
        """Compare every budget's counters with a full recount of the ledger; empty when exact."""
        from tokenpilot._account.counters import counter_differences

        now = self._clock()
        return self._store.run(lambda conn: counter_differences(conn, now), read_only=True)

    # --- calls ---------------------------------------------------------------------------------

    def reserve(
        self,
        scope: str,
        *,
        model: str,
        input_tokens: int,
        max_output_tokens: int,
        phase: str | None = None,
        agent: str | None = None,
        task_type: str | None = None,
        attempt: int = 1,
        request_id: str | None = None,
        ttl: float | None = None,
        session: str | None = None,
        provider: str | None = None,
        wait: bool = True,
    ) -> Reservation:
        """Hold input_tokens + max_output_tokens (and their cost) on every enclosing budget, atomically.

        Raises `BudgetExceeded` (naming scope, limit, spent and reserved) when any enclosing budget
        would go over, and `BudgetError` when a USD limit applies but the model's price is unknown.
        Use the result as a context manager and call `.settle(...)` with the provider's usage.
        `wait=False` raises `StoreBusy` instead of queueing when another writer holds a SQLite
        ledger (nothing is held then): for a caller on an event loop, which retries from a thread.
        """
        from tokenpilot._account import reservations
        from tokenpilot._account.pricing import request_cost

        name = normalize_scope(scope)
        _whole("input_tokens", input_tokens)
        _whole("max_output_tokens", max_output_tokens)
        _whole("attempt", attempt)
        hold = self.ttl if ttl is None else ttl
        if not hold > 0:
            raise InputError(f"ttl must be positive seconds, got {ttl!r}")
        usd = request_cost(model, input_tokens, max_output_tokens)
        request = Request(input_tokens, max_output_tokens, usd)
        call = Call(
            scope=name,
            model=model,
            max_tokens=max_output_tokens,
            attempt=attempt,
            phase=phase,
            agent=agent,
            task_type=task_type,
            session=session,
            provider=provider,
            request_id=request_id,
        )
        reservation_id = uuid.uuid4().hex
        now = self._clock()
        sweep = now >= self._next_reclaim
        if not sweep:
            from tokenpilot._account.counters import Held
            from tokenpilot._account.pricing import to_nano

            # No budget encloses the scope: nothing to hold, so nothing is written until the record.
            unbudgeted = self._hot.unbudgeted(name)
            fast = None
            if not unbudgeted:
                row = reservations.reservation_row(reservation_id, call, request, now, hold, self._holder)
                held = Held(input_tokens, max_output_tokens, to_nano(usd), 1)
                fast = self._hot.hold(row, held=held, priced=usd is not None, now=now, wait=wait)
                if fast is not None:
                    self._store_alerts([a for b, c in fast for a in reservations.held_alerts(b, c, now)], now)
            if unbudgeted or fast is not None:
                return Reservation(
                    self,
                    id=reservation_id,
                    call=call,
                    input_tokens=input_tokens,
                    usd=usd,
                    expires_at=now + hold,
                    written=not unbudgeted,
                )
            # Refused, rolled over or the budgets changed: the general transaction decides (a new id,
            # in case the failed call's commit did land).
            self._hot.forget()
            reservation_id = uuid.uuid4().hex

        def transaction(conn: Transaction) -> tuple[list[Alert], list[LedgerRecord]]:
            reclaimed = reservations.reclaim(conn, now=now, limit=100) if sweep else []
            found = reservations.reserve(
                conn,
                reservation_id=reservation_id,
                call=call,
                request=request,
                now=now,
                ttl=hold,
                holder=self._holder,
            )
            return self._insert_alerts(conn, found, now), reclaimed

        try:
            stored, reclaimed = self._run(transaction, wait=wait)
        except reservations.Refused as refused:
            # A refusal rolls back the sweep too: reclaim on its own, and if holds were in the way, retry.
            if self._any_expired(now) and self.reclaim():
                return self.reserve(
                    scope,
                    model=model,
                    input_tokens=input_tokens,
                    max_output_tokens=max_output_tokens,
                    phase=phase,
                    agent=agent,
                    task_type=task_type,
                    attempt=attempt,
                    request_id=request_id,
                    ttl=ttl,
                    session=session,
                    provider=provider,
                )
            self._refuse(refused, model, now)
        if sweep:
            self._next_reclaim = now + RECLAIM_EVERY
        self._log_reclaimed(reclaimed)
        self._dispatch(stored)
        return Reservation(
            self, id=reservation_id, call=call, input_tokens=input_tokens, usd=usd, expires_at=now + hold
        )

    def batch(self, *, wait: bool = True) -> AbstractContextManager[None]:
        """Settle or record several calls of this thread in one SQLite transaction (each in a savepoint
        of its own: one that fails is rolled back alone). `wait=False`: `StoreBusy` at once, before
        anything is written, when another writer holds the file. PostgreSQL: each stays its own.

            with ledger.batch():
                for reservation, usage in finished:
                    reservation.settle(**usage)
        """
        return self._store.batch(wait=wait)

    def _any_expired(self, now: float) -> bool:
        """Whether any hold is past its TTL (a read: no write lock)."""
        from tokenpilot._account.counters import execute

        query = "SELECT 1 FROM tp_reservations WHERE expires_at <= :now LIMIT 1"
        return bool(self._store.run(lambda conn: execute(conn, query, {"now": now}).rows, read_only=True))

    def _refuse(self, refused: Any, model: str, now: float) -> NoReturn:
        from tokenpilot._account.reservations import refusal_alerts

        refusal = refused.refusal
        new = refusal_alerts(refused, model)
        if any(alert.dedupe_key not in self._stored_keys for alert in new):
            self._dispatch(self._run(lambda conn: self._insert_alerts(conn, new, now)))
        log.warning(
            "reservation refused",
            extra={
                "event": "reservation_refused",
                "scope": refusal.scope,
                "unit": refusal.unit,
                "limit": refusal.limit,
                "spent": refusal.spent,
                "reserved": refusal.reserved,
                "requested": refusal.requested,
                "model": model,
            },
        )
        if refusal.reason == "unknown_price":
            raise BudgetError(
                f"budget on {refusal.scope!r} limits USD but the price of {model!r} is unknown; "
                "set its price in [models] or remove the USD limit"
            )
        raise BudgetExceeded(
            refusal.scope,
            limit=refusal.limit,
            spent=refusal.spent,
            reserved=refusal.reserved,
            requested=refusal.requested,
            unit=refusal.unit,
        )

    def _insert_alerts(self, conn: Transaction, alerts: list[NewAlert], now: float) -> list[Alert]:
        """Store the alerts whose dedupe key this process has not seen stored (the table dedupes too)."""
        from tokenpilot._account.alerts import insert_alerts

        fresh = [a for a in alerts if a.dedupe_key is None or a.dedupe_key not in self._stored_keys]
        conn.info.setdefault("tp_alert_keys", []).extend(a.dedupe_key for a in fresh if a.dedupe_key)
        return insert_alerts(conn, fresh, now) if fresh else []

    def _run(self, fn: Callable[[Transaction], T], *, wait: bool = True) -> T:
        """A hot-path write (`Store.transact`); dedupe keys of alerts it stored are remembered once
        committed."""
        keys: list[str] = []

        def transaction(conn: Transaction) -> T:
            keys.clear()
            conn.info["tp_alert_keys"] = keys
            return fn(conn)

        result = self._store.transact(transaction, wait=wait)
        if len(self._stored_keys) > 10_000:
            self._stored_keys.clear()
        self._stored_keys.update(keys)
        return result

    def _store_alerts(self, alerts: list[NewAlert], now: float) -> None:
        """Store (in a transaction of their own) the alerts this process has not seen stored."""
        if any(a.dedupe_key is None or a.dedupe_key not in self._stored_keys for a in alerts):
            self._dispatch(self._run(lambda conn: self._insert_alerts(conn, alerts, now)))

    def _finish(self, reservation: Reservation, usage: CallUsage, *, wait: bool = True) -> LedgerRecord:
        from tokenpilot._account.counters import Held
        from tokenpilot._account.pricing import to_nano

        if not reservation.written:  # nothing was held (no budget enclosed the scope): a plain record
            return self._write_call(
                reservation.call, usage, reservation_id=reservation.id, hold_written=False, wait=wait
            )
        held = Held(reservation.input_tokens, reservation.max_output_tokens, to_nano(reservation.usd), 1)
        return self._write_call(reservation.call, usage, reservation_id=reservation.id, held=held, wait=wait)

    def _write_call(
        self,
        call: Call,
        usage: CallUsage,
        *,
        reservation_id: str | None = None,
        cost: Any = _UNSET,
        ts: float | None = None,
        held: Held | None = None,
        hold_written: bool = True,
        wait: bool = True,
    ) -> LedgerRecord:
        from tokenpilot._account import reservations
        from tokenpilot._account.pricing import call_cost, model_price

        now = self._clock()
        price = call_cost(call.model, usage) if cost is _UNSET else cost
        provider = model_price(call.model)[1]
        if ts is None:
            record = self._write_call_fast(
                call, usage, reservation_id, held, price, provider, now, wait, hold_written
            )
            if record is not None:
                return record

        def transaction(conn: Transaction) -> tuple[LedgerRecord, list[Alert]]:
            record, new_alerts = reservations.finish(
                conn,
                call=call,
                usage=usage,
                cost=price,
                now=now,
                provider=provider,
                reservation_id=reservation_id,
                ts=ts,
                hold_written=hold_written,
            )
            return record, self._insert_alerts(conn, new_alerts, now)

        record, stored = self._run(transaction, wait=wait)
        log.debug(
            "call recorded", extra={"event": "call_recorded", "record_id": record.id, "scope": record.scope}
        )
        self._dispatch(stored)
        return record

    def _write_call_fast(
        self,
        call: Call,
        usage: CallUsage,
        reservation_id: str | None,
        held: Held | None,
        price: float | None,
        provider: str | None,
        now: float,
        wait: bool,
        hold_written: bool = True,
    ) -> LedgerRecord | None:
        """The record by the hot path, or None when the general transaction must run."""
        from tokenpilot._account.alerts import call_alerts
        from tokenpilot._account.counters import Held, Spend
        from tokenpilot._account.records import record_values
        from tokenpilot._account.reservations import spent_alerts

        values = record_values(
            call, usage, ts=now, cost=price, source="live", reservation_id=reservation_id, provider=provider
        )
        spend = Spend.of_record(values["input_tokens"], values["output_tokens"], values["cost_usd"])
        held_id = reservation_id if hold_written else None
        fast = self._hot.finish(held_id, values, held=held or Held(), spend=spend, now=now, wait=wait)
        if fast is None:
            self._hot.forget()
            return None
        record_id, counted = fast
        record = LedgerRecord(id=record_id, **values)
        self._store_alerts(
            [*call_alerts(record), *(a for b, c in counted for a in spent_alerts(b, c, now))], now
        )
        log.debug(
            "call recorded", extra={"event": "call_recorded", "record_id": record.id, "scope": record.scope}
        )
        return record

    def record_call(
        self,
        scope: str,
        *,
        model: str,
        input_tokens: int,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        max_tokens: int | None = None,
        finish_reason: str | None = None,
        attempt: int = 1,
        phase: str | None = None,
        agent: str | None = None,
        task_type: str | None = None,
        provider: str | None = None,
        request_id: str | None = None,
        latency_s: float | None = None,
        status: str = "ok",
        error: str | None = None,
        cost_usd: float | None = _UNSET,
        ts: float | datetime | None = None,
        session: str | None = None,
        http_status: int | None = None,
        ttft_s: float | None = None,
        usage_estimated: bool = False,
        max_tokens_requested: int | None = None,
        optimized_from: int | None = None,
        optimized_to: int | None = None,
        optimize_actions: str | None = None,
    ) -> LedgerRecord:
        """Append one call's record without a reservation (budgets see the spend, nothing is held).

            acct.record_call("acme/plan", model="gpt-4o", input_tokens=900, output_tokens=4096,
                             max_tokens=4096, finish_reason="length", attempt=1, task_type="summary")

        `cost_usd` defaults to the model's price (None when unknown); pass it to keep a
        provider-reported cost.
        """
        if status not in STATUSES:
            raise InputError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if max_tokens is not None:
            _whole("max_tokens", max_tokens)
        _whole("attempt", attempt)
        if (
            cost_usd is not _UNSET
            and cost_usd is not None
            and (isinstance(cost_usd, bool) or not isinstance(cost_usd, int | float) or cost_usd < 0)
        ):
            raise InputError(f"cost_usd must be a non-negative number or None, got {cost_usd!r}")
        usage = CallUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            finish_reason=finish_reason,
            status=status,
            error=error,
            latency_s=latency_s,
            provider=provider,
            request_id=request_id,
            http_status=http_status,
            ttft_s=ttft_s,
            usage_estimated=usage_estimated,
            max_tokens_requested=max_tokens_requested,
            optimized_from=optimized_from,
            optimized_to=optimized_to,
            optimize_actions=optimize_actions,
        )
        call = Call(
            scope=normalize_scope(scope),
            model=model,
            max_tokens=max_tokens,
            attempt=attempt,
            phase=phase,
            agent=agent,
            task_type=task_type,
            session=session,
            provider=provider,
            request_id=request_id,
        )
        return self._write_call(call, usage, cost=cost_usd, ts=_epoch(ts))

    def records(
        self,
        *,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        scope: str | None = None,
        phase: str | None = None,
        model: str | None = None,
        task_type: str | None = None,
        session: str | None = None,
        limit: int | None = None,
    ) -> list[LedgerRecord]:
        """Ledger records, oldest first; `scope` includes everything beneath it; `limit` keeps the newest N.

        acct.records(phase="build", task_type="summary", limit=200)
        """
        from sqlalchemy import select

        from tokenpilot._account import schema as s
        from tokenpilot._account.counters import within
        from tokenpilot._account.records import record_from_row

        r = s.records.c
        query = select(s.records)
        start, end = _epoch(since), _epoch(until)
        if start is not None:
            query = query.where(r.ts >= start)
        if end is not None:
            query = query.where(r.ts < end)
        if scope is not None:
            query = query.where(within(r.scope, normalize_scope(scope)))
        for column, value in (
            (r.phase, phase),
            (r.model, model),
            (r.task_type, task_type),
            (r.session, session),
        ):
            if value is not None:
                query = query.where(column == value)
        if limit is not None:
            _whole("limit", limit)
            query = query.order_by(r.ts.desc(), r.id.desc()).limit(limit)
        else:
            query = query.order_by(r.ts, r.id)

        def read(conn: Connection) -> list[LedgerRecord]:
            return [record_from_row(row) for row in conn.execute(query).mappings()]

        found = self._store.run(read, read_only=True)
        return found[::-1] if limit is not None else found

    def import_file(
        self, path: str | Path, *, scope: str = "imported", fmt: str | None = None
    ) -> ImportResult:
        """Import a usage export (CSV or JSONL); all rows or none. Rows without a scope column get `scope`.

        acct.import_file("usage-2026-11.csv", scope="acme")   # ImportResult(imported=…, …)
        """
        from tokenpilot._account.exchange import import_rows, parse_import

        source = Path(path)
        now = self._clock()
        rows, columns = parse_import(source, default_scope=normalize_scope(scope), now=now, fmt=fmt)
        values = [row.values for row in rows]

        def transaction(conn: Connection) -> tuple[int, int, list[Alert]]:
            imported, skipped, found = import_rows(conn, values, now)
            return imported, skipped, self._insert_alerts(conn, found, now)

        keys: list[str] = []

        def counted(conn: Connection) -> tuple[int, int, list[Alert]]:
            conn.info["tp_alert_keys"] = keys
            return transaction(conn)

        imported, skipped, stored = self._store.run(counted)
        self._stored_keys.update(keys)
        self._dispatch(stored)
        log.info(
            "imported usage", extra={"event": "ledger_import", "path": str(source), "imported": imported}
        )
        return ImportResult(str(source), imported, skipped, columns)

    def report(
        self,
        *,
        since: float | datetime | None = None,
        until: float | datetime | None = None,
        by: str = "scope",
        scope: str | None = None,
    ) -> Report:
        """Totals per scope, phase, model, agent, task_type, session or day, with recommendations.

        acct.report(since=time.time() - 7 * 86400, by="phase").recommendations
        """
        from tokenpilot._account.reports import build_report

        records = self.records(since=since, until=until, scope=scope)
        usages = [self.usage(b.scope) for b in self.budgets(scope)]
        return build_report(records, by=by, since=_epoch(since), until=_epoch(until), usages=usages)

    def active_reservations(self) -> int:
        """How many holds are live (not settled, released or past their TTL)."""
        from sqlalchemy import func, select

        from tokenpilot._account import schema as s

        now = self._clock()
        query = select(func.count()).select_from(s.reservations).where(s.reservations.c.expires_at > now)
        return int(self._store.run(lambda conn: conn.execute(query).scalar() or 0, read_only=True))

    def reclaim(self) -> list[LedgerRecord]:
        """Reclaim every hold past its TTL now (reserve() also does it for the budgets it touches)."""
        from tokenpilot._account.reservations import reclaim

        now = self._clock()
        reclaimed = self._store.transact(lambda conn: reclaim(conn, now=now))
        self._next_reclaim = now + RECLAIM_EVERY
        self._log_reclaimed(reclaimed)
        return reclaimed

    # --- alerts --------------------------------------------------------------------------------

    def alerts(
        self, *, kind: str | None = None, unacknowledged: bool = False, limit: int | None = None
    ) -> list[Alert]:
        """Stored alerts, oldest first (`limit` keeps the newest N)."""
        from sqlalchemy import select

        from tokenpilot._account import schema as s
        from tokenpilot._account.alerts import alert_from_row

        if kind is not None and kind not in ALERT_KINDS:
            raise InputError(f"unknown alert kind {kind!r} (known: {', '.join(ALERT_KINDS)})")
        a = s.alerts.c
        query = select(s.alerts).order_by(a.ts.desc(), a.id.desc())
        if kind is not None:
            query = query.where(a.kind == kind)
        if unacknowledged:
            query = query.where(a.acknowledged_at.is_(None))
        if limit is not None:
            query = query.limit(_whole("limit", limit))
        found = self._store.run(
            lambda conn: [alert_from_row(row) for row in conn.execute(query).mappings()], read_only=True
        )
        return found[::-1]

    def acknowledge(self, alert_id: int) -> bool:
        """Mark an alert as seen; False when there is no such unacknowledged alert."""
        from tokenpilot._account import schema as s

        now = self._clock()
        a = s.alerts.c
        statement = (
            s.alerts.update().where(a.id == alert_id, a.acknowledged_at.is_(None)).values(acknowledged_at=now)
        )
        return bool(self._store.run(lambda conn: conn.execute(statement).rowcount))

    def _dispatch(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            log.warning(
                alert.message,
                extra={
                    "event": "alert",
                    "alert_kind": alert.kind,
                    "alert_id": alert.id,
                    "scope": alert.scope,
                },
            )
            for callback in self._callbacks:
                try:
                    callback(alert)
                except Exception:  # a broken callback must not lose the call that was recorded
                    log.exception("alert callback failed", extra={"event": "alert_callback_failed"})

    def _log_reclaimed(self, reclaimed: list[LedgerRecord]) -> None:
        for record in reclaimed:
            log.warning(
                "expired reservation reclaimed",
                extra={
                    "event": "reservation_reclaimed",
                    "reservation": record.reservation_id,
                    "scope": record.scope,
                },
            )


def _config_number(config: Config, key: str, default: float) -> float:
    value = config.section("ledger").get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(
            f"must be a positive number of seconds, got {value!r}",
            source=config.source_of("ledger", key),
            key=f"ledger.{key}",
        )
    return float(value)


def open_ledger(
    url: str | None = None,
    *,
    ttl: float | None = None,
    busy_timeout: float | None = None,
    timezone: str | None = None,
    clock: Callable[[], float] | None = None,
    read_only: bool = False,
    add_schema: bool = False,
) -> Ledger:
    """Open (creating and migrating as needed) the budget and ledger database.

        acct = tp.open_ledger()                                  # SQLite in the user data dir
        acct = tp.open_ledger("postgresql://user@db.internal/tokens")   # shared across hosts
        acct = tp.open_ledger(path, read_only=True)              # reports: never creates or migrates

    `read_only` opens an existing, current ledger without any lock or write (a missing one is a
    `StoreError` naming it); `add_schema` allows adding tokenpilot's tables to a database that
    already holds other tables (refused otherwise).

    The URL comes from the argument, else `TOKENPILOT_DB_URL`, else `[ledger] url` in the config,
    else `$XDG_DATA_HOME/tokenpilot/ledger.db`. `ttl` is how long a reservation holds before it is
    reclaimed (default 600 s, `[ledger] reservation_ttl`).
    """
    from tokenpilot._account.store import DEFAULT_BUSY_TIMEOUT, Store, default_db_path, env_url
    from tokenpilot._config import load_config

    config = load_config()
    table = config.section("ledger")
    known = {"url", "reservation_ttl", "busy_timeout", "timezone", "durable"}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"unknown key (known: {', '.join(sorted(known))})",
                source=config.source_of("ledger", key),
                key=f"ledger.{key}",
            )
    configured_url = table.get("url")
    if configured_url is not None and not isinstance(configured_url, str):
        raise ConfigError("must be a string", source=config.source_of("ledger", "url"), key="ledger.url")
    tz = timezone or table.get("timezone") or "UTC"
    if not isinstance(tz, str):
        raise ConfigError(
            "must be a time zone name", source=config.source_of("ledger", "timezone"), key="ledger.timezone"
        )
    zone(tz)
    durable = table.get("durable", False)
    if not isinstance(durable, bool):
        raise ConfigError(
            "must be true or false", source=config.source_of("ledger", "durable"), key="ledger.durable"
        )
    store = Store(
        url or env_url() or configured_url,
        default_path=default_db_path(),
        busy_timeout=busy_timeout or _config_number(config, "busy_timeout", DEFAULT_BUSY_TIMEOUT),
        read_only=read_only,
        add_schema=add_schema,
        durable=durable,
    )
    return Ledger(
        store,
        ttl=ttl or _config_number(config, "reservation_ttl", DEFAULT_TTL),
        timezone=tz,
        clock=clock or time.time,
    )
