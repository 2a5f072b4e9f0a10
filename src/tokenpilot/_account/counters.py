"""Spent and reserved counters per budget and period bucket (SQL), and their recount from the ledger.

A budget's row in `tp_budgets` counts, for its current bucket, what was spent in the counted window
and what live reservations hold beneath its scope; other buckets' spend lives in `tp_spent`. Every
function runs inside the caller's `Store.run` transaction, in the same transaction as the record or
hold that changes the counts, so the counters are exact. A reservation is one conditional UPDATE of
the row (`hold`): the row itself carries the limits, so the check and the write are one statement
that PostgreSQL re-checks on the newest row version when two transactions race.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from tokenpilot._account.pricing import to_nano
from tokenpilot._budget import (
    Amounts,
    Budget,
    Period,
    Request,
    Usage,
    enclosing_scopes,
    subtree_bounds,
    usage_of,
)

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement


class Connection(Protocol):
    """What these statements need of a transaction: a SQLAlchemy `Connection`, or the hot path's
    `DriverTransaction` (a driver connection shaped the same way)."""

    @property
    def dialect(self) -> Any: ...

    @property
    def connection(self) -> Any: ...

    @property
    def info(self) -> Any: ...


NANO = 1e9
_FAR = 1e18  # an unbounded edge, as a bind value so a statement stays the same


@dataclass(frozen=True, slots=True)
class Spend:
    """What records add to a bucket: tokens, whole nano-dollars, calls, calls of unknown price."""

    input: int = 0
    output: int = 0
    nusd: int = 0
    calls: int = 0
    unknown: int = 0

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.input + other.input,
            self.output + other.output,
            self.nusd + other.nusd,
            self.calls + other.calls,
            self.unknown + other.unknown,
        )

    @property
    def amounts(self) -> Amounts:
        return Amounts(self.input, self.output, self.nusd / NANO)

    @classmethod
    def of_record(cls, input_tokens: int, output_tokens: int, cost_usd: float | None) -> Spend:
        return cls(input_tokens, output_tokens, to_nano(cost_usd), 1, 1 if cost_usd is None else 0)


@dataclass(frozen=True, slots=True)
class Held:
    """What one or more reservations hold: tokens, whole nano-dollars, and how many holds."""

    input: int = 0
    output: int = 0
    nusd: int = 0
    holds: int = 0

    @property
    def amounts(self) -> Amounts:
        return Amounts(self.input, self.output, self.nusd / NANO)


@dataclass(frozen=True, slots=True)
class Counts:
    """A budget's counters as one transaction sees them."""

    spent: Spend
    held: Held


def within(column: Any, scope: str) -> ColumnElement[bool]:
    """`column` is `scope` or beneath it, as an index-friendly range."""
    from sqlalchemy import and_, or_

    low, high = subtree_bounds(scope)
    return or_(column == scope, and_(column >= low, column < high))


@cache
def _driver_sql(dialect: str, statement: str) -> str:
    # Statements are written with :name parameters (sqlite3); psycopg takes %(name)s.
    if dialect == "postgresql":
        return re.sub(r"(?<!:):([a-z_][a-z_0-9]*)", r"%(\1)s", statement)
    return statement


class Rows:
    """The rows of one statement, fetched at once (so SQLite never keeps a statement open)."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int):
        self.rows = rows
        self.rowcount = rowcount

    def fetchall(self) -> list[Any]:
        return self.rows

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def __iter__(self) -> Iterator[Any]:
        return iter(self.rows)


def execute(conn: Connection, statement: str, params: dict[str, Any] | Sequence[dict[str, Any]]) -> Rows:
    """Run one fixed statement on the driver's own cursor, inside `conn`'s transaction.

    The hot path's statements are fixed text, so they skip SQLAlchemy's compile and result layers
    (about 100 µs a statement); psycopg prepares them server-side after a few runs. Driver errors
    are raised as SQLAlchemy's, which `Store.run` maps to one clear `StoreError`.
    """
    sql = _driver_sql(conn.dialect.name, statement)
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        if isinstance(params, dict):
            cursor.execute(sql, params)
        else:
            cursor.executemany(sql, params)
        rows = cursor.fetchall() if cursor.description is not None else []
        return Rows(rows, cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        import sqlalchemy.exc

        raise sqlalchemy.exc.DBAPIError.instance(
            sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect
        ) from None
    finally:
        cursor.close()


# --- budgets -----------------------------------------------------------------------------------

BUDGET_COLUMNS = "scope, tokens, input_tokens, output_tokens, usd, period, timezone, warn_at"


def budget_of(row: Sequence[Any]) -> Budget:
    """A Budget from the first columns of a row read as BUDGET_COLUMNS."""
    return Budget(
        scope=row[0],
        tokens=row[1],
        input_tokens=row[2],
        output_tokens=row[3],
        usd=row[4],
        period=row[5],
        timezone=row[6],
        warn_at=row[7],
    )


def enclosing_budgets(conn: Connection, scope: str) -> list[Budget]:
    """The budgets on `scope` and its ancestors, outermost first (the order rows are locked in)."""
    scopes = enclosing_scopes(scope)
    marks = ", ".join(f":s{i}" for i in range(len(scopes)))
    rows = execute(
        conn,
        f"SELECT {BUDGET_COLUMNS} FROM tp_budgets WHERE scope IN ({marks}) ORDER BY scope",
        {f"s{i}": name for i, name in enumerate(scopes)},
    ).fetchall()
    return [budget_of(row) for row in rows]


def budgets_under(conn: Connection, under: str | None = None) -> list[Budget]:
    """Every budget, or those at or beneath `under`, in scope order."""
    if under is None:
        rows = execute(conn, f"SELECT {BUDGET_COLUMNS} FROM tp_budgets ORDER BY scope", {}).fetchall()
    else:
        low, high = subtree_bounds(under)
        rows = execute(
            conn,
            f"SELECT {BUDGET_COLUMNS} FROM tp_budgets "
            "WHERE scope = :scope OR (scope >= :low AND scope < :high) ORDER BY scope",
            {"scope": under, "low": low, "high": high},
        ).fetchall()
    return [budget_of(row) for row in rows]


def current_bucket(budget: Budget, now: float) -> float:
    return Period.parse(budget.period).bucket(now, budget.timezone)


# --- the hot path: hold, and unhold + spend -----------------------------------------------------

# `:updated` is the budget's updated_at as the hot path read it (None: any), see `hot_path`.
HOLD = """
UPDATE tp_budgets SET reserved_input = reserved_input + :i, reserved_output = reserved_output + :o,
    reserved_nusd = reserved_nusd + :n, holds = holds + 1
WHERE scope = :scope AND bucket = :bucket
    AND (CAST(:updated AS DOUBLE PRECISION) IS NULL OR updated_at = CAST(:updated AS DOUBLE PRECISION))
    AND (tokens IS NULL OR spent_input + spent_output + reserved_input + reserved_output + :t <= tokens)
    AND (input_tokens IS NULL OR spent_input + reserved_input + :i <= input_tokens)
    AND (output_tokens IS NULL OR spent_output + reserved_output + :o <= output_tokens)
    AND (usd IS NULL OR (:priced = 1 AND spent_nusd + reserved_nusd + :n <= usd * 1000000000.0 + 1))
RETURNING spent_input, spent_output, spent_nusd, spent_calls, spent_unknown,
    reserved_input, reserved_output, reserved_nusd, holds
"""

UNHOLD_AND_SPEND = """
UPDATE tp_budgets SET reserved_input = reserved_input - :hi, reserved_output = reserved_output - :ho,
    reserved_nusd = reserved_nusd - :hn, holds = holds - :hh,
    spent_input = spent_input + :si, spent_output = spent_output + :so, spent_nusd = spent_nusd + :sn,
    spent_calls = spent_calls + :sc, spent_unknown = spent_unknown + :su,
    bucket_input = bucket_input + :si, bucket_output = bucket_output + :so, bucket_nusd = bucket_nusd + :sn,
    bucket_calls = bucket_calls + :sc, bucket_unknown = bucket_unknown + :su
WHERE scope = :scope AND bucket = :bucket
    AND (CAST(:updated AS DOUBLE PRECISION) IS NULL OR updated_at = CAST(:updated AS DOUBLE PRECISION))
RETURNING spent_input, spent_output, spent_nusd, spent_calls, spent_unknown,
    reserved_input, reserved_output, reserved_nusd, holds
"""

_COUNTS = """
SELECT spent_input, spent_output, spent_nusd, spent_calls, spent_unknown,
    reserved_input, reserved_output, reserved_nusd, holds, bucket,
    bucket_input, bucket_output, bucket_nusd, bucket_calls, bucket_unknown
FROM tp_budgets WHERE scope = :scope
"""


def counts_of(row: Sequence[Any]) -> Counts:
    """Counts from a row of (spent × 5, held × 4) as HOLD and UNHOLD_AND_SPEND return them."""
    r = row  # one call per statement of the hot path: no generator
    return Counts(
        Spend(int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4])),
        Held(int(r[5]), int(r[6]), int(r[7]), int(r[8])),
    )


def hold_params(held: Held, *, priced: bool) -> dict[str, int]:
    """HOLD's amounts for holding `held` (all but scope, bucket and updated)."""
    return {
        "i": held.input,
        "o": held.output,
        "t": held.input + held.output,
        "n": held.nusd,
        "priced": 1 if priced else 0,
    }


def unhold_params(held: Held, spend: Spend) -> dict[str, int]:
    """UNHOLD_AND_SPEND's amounts for releasing `held` and counting `spend`."""
    return {
        "hi": held.input,
        "ho": held.output,
        "hn": held.nusd,
        "hh": held.holds,
        "si": spend.input,
        "so": spend.output,
        "sn": spend.nusd,
        "sc": spend.calls,
        "su": spend.unknown,
    }


def hold(conn: Connection, budget: Budget, request: Request, now: float) -> Counts | None:
    """Hold `request` on `budget` if every limit allows it: the counts after, or None when refused.

    Rolls the budget's counters into the current period first when they count an older one.
    """
    held = Held(request.input_tokens, request.output_tokens, to_nano(request.usd), 1)
    params = {
        **hold_params(held, priced=request.usd is not None),
        "scope": budget.scope,
        "bucket": current_bucket(budget, now),
        "updated": None,
    }
    for _ in range(2):
        row = execute(conn, HOLD, params).fetchone()
        if row is not None:
            return counts_of(row)
        if not roll(conn, budget, now):
            return None
    return None


def unhold_and_spend(conn: Connection, budget: Budget, held: Held, spend: Spend, now: float) -> Counts | None:
    """Release `held` and count `spend` (made now) on `budget`; None when the budget is gone."""
    params = {
        **unhold_params(held, spend),
        "scope": budget.scope,
        "bucket": current_bucket(budget, now),
        "updated": None,
    }
    for _ in range(2):
        row = execute(conn, UNHOLD_AND_SPEND, params).fetchone()
        if row is not None:
            return counts_of(row)
        if not roll(conn, budget, now):
            return None
    return None


def read_counts(conn: Connection, budget: Budget) -> Counts | None:
    row = execute(conn, _COUNTS, {"scope": budget.scope}).fetchone()
    return None if row is None else counts_of(row)


# --- period roll-over ---------------------------------------------------------------------------

_LOCK_ROW = {
    "postgresql": "SELECT bucket, bucket_input, bucket_output, bucket_nusd, bucket_calls, bucket_unknown "
    "FROM tp_budgets WHERE scope = :scope FOR UPDATE",
    "sqlite": "SELECT bucket, bucket_input, bucket_output, bucket_nusd, bucket_calls, bucket_unknown "
    "FROM tp_budgets WHERE scope = :scope",
}
_ADD_SPENT = """
INSERT INTO tp_spent (scope, bucket, input, output, nusd, calls, unknown)
VALUES (:scope, :bucket, :input, :output, :nusd, :calls, :unknown)
ON CONFLICT (scope, bucket) DO UPDATE SET input = tp_spent.input + excluded.input,
    output = tp_spent.output + excluded.output, nusd = tp_spent.nusd + excluded.nusd,
    calls = tp_spent.calls + excluded.calls, unknown = tp_spent.unknown + excluded.unknown
"""
_SPENT_BETWEEN = """
SELECT COALESCE(SUM(input), 0), COALESCE(SUM(output), 0), COALESCE(SUM(nusd), 0),
    COALESCE(SUM(calls), 0), COALESCE(SUM(unknown), 0)
FROM tp_spent WHERE scope = :scope AND bucket >= :first AND bucket <= :last
"""


def _spent_row(conn: Connection, scope: str, first: float, last: float) -> Spend:
    row = execute(conn, _SPENT_BETWEEN, {"scope": scope, "first": first, "last": last}).fetchone()
    return Spend(*(int(v) for v in row))


def _add_spent(conn: Connection, scope: str, bucket: float, spend: Spend) -> None:
    if spend == Spend():
        return
    execute(
        conn,
        _ADD_SPENT,
        {
            "scope": scope,
            "bucket": bucket,
            "input": spend.input,
            "output": spend.output,
            "nusd": spend.nusd,
            "calls": spend.calls,
            "unknown": spend.unknown,
        },
    )


def roll(conn: Connection, budget: Budget, now: float) -> bool:
    """Move `budget`'s counters to the bucket of `now`; False when the budget row is gone.

    The newest bucket's spend is filed in `tp_spent`, the current one's taken out of it, and the
    counted window summed again: a fixed number of rows (at most one rolling window's 61 steps).
    """
    row = execute(conn, _LOCK_ROW[conn.dialect.name], {"scope": budget.scope}).fetchone()
    if row is None:
        return False
    period = Period.parse(budget.period)
    bucket, first = period.bucket(now, budget.timezone), period.first_bucket(now, budget.timezone)
    if row[0] == bucket:
        return True  # another transaction rolled it first
    _add_spent(conn, budget.scope, row[0], Spend(*(int(v) for v in row[1:6])))
    window = _spent_row(conn, budget.scope, first, bucket)
    newest = _spent_row(conn, budget.scope, bucket, bucket)
    execute(
        conn,
        "DELETE FROM tp_spent WHERE scope = :scope AND bucket = :bucket",
        {"scope": budget.scope, "bucket": bucket},
    )
    if period.kind == "rolling":  # steps that left the window are never counted again
        execute(
            conn,
            "DELETE FROM tp_spent WHERE scope = :scope AND bucket < :first",
            {"scope": budget.scope, "first": first},
        )
    _set_counts(conn, budget.scope, bucket, window, newest)
    return True


def _set_counts(
    conn: Connection, scope: str, bucket: float, window: Spend, newest: Spend, held: Held | None = None
) -> None:
    values: dict[str, Any] = {"scope": scope, "bucket": bucket}
    for prefix, spend in (("spent", window), ("bucket", newest)):
        for name in ("input", "output", "nusd", "calls", "unknown"):
            values[f"{prefix}_{name}"] = getattr(spend, name)
    if held is not None:
        values.update(
            reserved_input=held.input, reserved_output=held.output, reserved_nusd=held.nusd, holds=held.holds
        )
    assignments = ", ".join(f"{name} = :{name}" for name in values if name != "scope")
    execute(conn, f"UPDATE tp_budgets SET {assignments} WHERE scope = :scope", values)


def add_spend_at(conn: Connection, budget: Budget, ts: float, spend: Spend, now: float) -> None:
    """Count `spend` made at `ts` (any time: an import, a back-dated record) on `budget`."""
    if not roll(conn, budget, now):
        return
    period = Period.parse(budget.period)
    bucket, current = period.bucket(ts, budget.timezone), period.bucket(now, budget.timezone)
    if bucket == current:
        unhold_and_spend(conn, budget, Held(), spend, now)
        return
    _add_spent(conn, budget.scope, bucket, spend)
    if period.first_bucket(now, budget.timezone) <= bucket < current:  # an older step of a rolling window
        execute(
            conn,
            "UPDATE tp_budgets SET spent_input = spent_input + :i, spent_output = spent_output + :o, "
            "spent_nusd = spent_nusd + :n, spent_calls = spent_calls + :c, "
            "spent_unknown = spent_unknown + :u WHERE scope = :scope",
            {
                "i": spend.input,
                "o": spend.output,
                "n": spend.nusd,
                "c": spend.calls,
                "u": spend.unknown,
                "scope": budget.scope,
            },
        )


# --- reading (never writes) ---------------------------------------------------------------------

_EXPIRED_HELD = """
SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), COUNT(*)
FROM tp_reservations WHERE expires_at <= :now AND (scope = :scope OR (scope >= :low AND scope < :high))
"""
_EXPIRED_USD = """
SELECT usd FROM tp_reservations
WHERE expires_at <= :now AND usd IS NOT NULL AND (scope = :scope OR (scope >= :low AND scope < :high))
"""


def live_counts(conn: Connection, budget: Budget, now: float) -> Counts | None:
    """The counts as of `now` without writing: rolled forward if needed, expired holds left out."""
    row = execute(conn, _COUNTS, {"scope": budget.scope}).fetchone()
    if row is None:
        return None
    counts = counts_of(row)
    period = Period.parse(budget.period)
    bucket, first = period.bucket(now, budget.timezone), period.first_bucket(now, budget.timezone)
    spent = counts.spent
    if row[9] != bucket:
        head = Spend(*(int(v) for v in row[10:15]))
        spent = _spent_row(conn, budget.scope, first, bucket)
        if first <= row[9] <= bucket:
            spent = spent + head
    low, high = subtree_bounds(budget.scope)
    where = {"now": now, "scope": budget.scope, "low": low, "high": high}
    expired_in, expired_out, expired_holds = execute(conn, _EXPIRED_HELD, where).fetchone()
    expired_nusd = sum(to_nano(usd) for (usd,) in execute(conn, _EXPIRED_USD, where).fetchall())
    held = counts.held
    live = Held(
        held.input - int(expired_in),
        held.output - int(expired_out),
        held.nusd - expired_nusd,
        held.holds - int(expired_holds),
    )
    return Counts(spent, live)


def budget_usage(conn: Connection, budget: Budget, now: float) -> Usage:
    counts = live_counts(conn, budget, now)
    if counts is None:
        counts = Counts(Spend(), Held())
    window = Period.parse(budget.period).window(now, budget.timezone)
    return usage_of(
        budget.scope,
        budget,
        window,
        spent=counts.spent.amounts,
        reserved=counts.held.amounts,
        calls=counts.spent.calls,
        unknown_cost_calls=counts.spent.unknown,
        active_reservations=counts.held.holds,
    )


_SUMS = """
SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
    COALESCE(SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END), 0)
FROM tp_records WHERE (scope = :scope OR (scope >= :low AND scope < :high)) AND ts >= :start AND ts < :end
"""
_COSTS = """
SELECT cost_usd FROM tp_records WHERE cost_usd IS NOT NULL
    AND (scope = :scope OR (scope >= :low AND scope < :high)) AND ts >= :start AND ts < :end
"""
_HOLDS = """
SELECT input_tokens, output_tokens, usd, expires_at FROM tp_reservations
WHERE scope = :scope OR (scope >= :low AND scope < :high)
"""


def summed_spend(conn: Connection, scope: str, start: float | None, end: float | None) -> Spend:
    """Spend beneath `scope` with start <= ts < end, summed from the records (a full scan)."""
    low, high = subtree_bounds(scope)
    where = {
        "scope": scope,
        "low": low,
        "high": high,
        "start": -_FAR if start is None else start,
        "end": _FAR if end is None else end,
    }
    calls, spent_in, spent_out, unknown = execute(conn, _SUMS, where).fetchone()
    nusd = sum(to_nano(cost) for (cost,) in execute(conn, _COSTS, where).fetchall())
    return Spend(int(spent_in), int(spent_out), nusd, int(calls), int(unknown))


def summed_holds(conn: Connection, scope: str, now: float | None = None) -> Held:
    """Holds beneath `scope` (live ones only when `now` is given), summed from the reservations."""
    low, high = subtree_bounds(scope)
    rows = execute(conn, _HOLDS, {"scope": scope, "low": low, "high": high}).fetchall()
    live = [row for row in rows if now is None or row[3] > now]
    return Held(
        sum(int(r[0]) for r in live),
        sum(int(r[1]) for r in live),
        sum(to_nano(r[2]) for r in live),
        len(live),
    )


def scope_usage(conn: Connection, scope: str, now: float) -> Usage:
    """Usage of a scope without a budget: everything ever spent beneath it, and its live holds."""
    spent = summed_spend(conn, scope, None, None)
    held = summed_holds(conn, scope, now)
    return usage_of(
        scope,
        None,
        (None, None),
        spent=spent.amounts,
        reserved=held.amounts,
        calls=spent.calls,
        unknown_cost_calls=spent.unknown,
        active_reservations=held.holds,
    )


# --- recount ------------------------------------------------------------------------------------

_RECORDS_BENEATH = """
SELECT ts, input_tokens, output_tokens, cost_usd FROM tp_records
WHERE scope = :scope OR (scope >= :low AND scope < :high)
"""
_SLOT = 900.0  # every time zone's offset is a multiple of 15 minutes today


def _bucketer(period: Period, timezone: str) -> Any:
    cache: dict[int, float | None] = {}

    def bucket_of(ts: float) -> float:
        if period.kind in ("none", "rolling"):
            return period.bucket(ts, timezone)
        slot = int(ts // _SLOT)
        if slot not in cache:
            start = slot * _SLOT
            first, last = period.bucket(start, timezone), period.bucket(start + _SLOT - 1e-3, timezone)
            cache[slot] = first if first == last else None
        found = cache[slot]
        return period.bucket(ts, timezone) if found is None else found

    return bucket_of


def spend_by_bucket(rows: Iterable[Sequence[Any]], budget: Budget) -> dict[float, Spend]:
    """(ts, input, output, cost) rows summed per bucket of `budget`'s period."""
    bucket_of = _bucketer(Period.parse(budget.period), budget.timezone)
    sums: dict[float, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for ts, input_tokens, output_tokens, cost in rows:
        entry = sums[bucket_of(ts)]
        entry[0] += input_tokens
        entry[1] += output_tokens
        entry[2] += to_nano(cost)
        entry[3] += 1
        entry[4] += cost is None
    return {bucket: Spend(*values) for bucket, values in sums.items()}


def recount(conn: Connection, budget: Budget, now: float) -> None:
    """Count `budget` afresh from the ledger's records and reservations (a full scan of its scope)."""
    low, high = subtree_bounds(budget.scope)
    where = {"scope": budget.scope, "low": low, "high": high}
    buckets = spend_by_bucket(execute(conn, _RECORDS_BENEATH, where), budget)
    period = Period.parse(budget.period)
    bucket, first = period.bucket(now, budget.timezone), period.first_bucket(now, budget.timezone)
    newest = buckets.pop(bucket, Spend())
    window = newest
    for older, spend in buckets.items():
        if first <= older < bucket:
            window = window + spend
    execute(conn, "DELETE FROM tp_spent WHERE scope = :scope", {"scope": budget.scope})
    kept = [
        {"scope": budget.scope, "bucket": older, **_spend_values(spend)}
        for older, spend in sorted(buckets.items())
        if period.kind != "rolling" or older >= first
    ]
    if kept:
        execute(
            conn,
            "INSERT INTO tp_spent (scope, bucket, input, output, nusd, calls, unknown) "
            "VALUES (:scope, :bucket, :input, :output, :nusd, :calls, :unknown)",
            kept,
        )
    _set_counts(conn, budget.scope, bucket, window, newest, summed_holds(conn, budget.scope))


def _spend_values(spend: Spend) -> dict[str, int]:
    return {
        "input": spend.input,
        "output": spend.output,
        "nusd": spend.nusd,
        "calls": spend.calls,
        "unknown": spend.unknown,
    }


def recount_all(conn: Connection, now: float) -> None:
    for budget in budgets_under(conn):
        recount(conn, budget, now)


def counter_differences(conn: Connection, now: float) -> list[str]:
    """Where the counters disagree with a full recount of the records and holds (empty: exact)."""
    problems = []
    for budget in budgets_under(conn):
        counts = live_counts(conn, budget, now)
        assert counts is not None
        period = Period.parse(budget.period)
        start, end = period.window(now, budget.timezone)
        if period.kind == "rolling":
            end = period.bucket(now) + period.step
        expected = Counts(summed_spend(conn, budget.scope, start, end), summed_holds(conn, budget.scope, now))
        if counts != expected:
            problems.append(f"{budget.scope}: counted {counts}, recounted {expected}")
    return problems
