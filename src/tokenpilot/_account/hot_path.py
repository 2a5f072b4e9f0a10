"""The hot path: a reservation and a settlement in the fewest statements, on budgets already read.

`reservations.reserve` and `reservations.finish` handle every case; this module does the common
one only — every enclosing budget counts the current bucket and has room — and gives up (None)
for anything else: a refusal, a period roll-over, a budget added, removed or replaced since this
process read it, a reservation already reclaimed. The caller then runs the general transaction,
which handles all of them; both write the same rows, so the counters stay exact either way.

The enclosing budgets this process has read (scope, bucket, `updated_at`) are checked in the same
transaction: a count of the budgets on the call's enclosing scopes, and each conditional UPDATE
matching the cached bucket and `updated_at`. The reservation or record row is written first, so
`set_budget`'s table lock (see `budgets`) orders a new budget before or after the whole call.

- PostgreSQL: one call of a PL/pgSQL function (`tp_hold`, `tp_finish`) in autocommit, so the
  statement is its own transaction: nine round trips of BEGIN, statements and COMMIT become one.
  A function gives up by raising a tokenpilot SQLSTATE (class `TP`), which rolls it back.
  The calls are statements prepared once per connection and run through libpq (`Store.call_prepared`).
- SQLite: the same statements in one write transaction, with everything else (the budgets, their
  buckets, the rows to write) done before it takes the write lock, which every writer queues on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from tokenpilot._account import schema as s
from tokenpilot._account.counters import (
    BUDGET_COLUMNS,
    HOLD,
    UNHOLD_AND_SPEND,
    Counts,
    Held,
    Spend,
    budget_of,
    counts_of,
    current_bucket,
    execute,
    hold_params,
    unhold_params,
)
from tokenpilot._account.reservations import INSERT_RECORD, INSERT_RESERVATION
from tokenpilot._budget import Budget, enclosing_scopes

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from tokenpilot._account.store import DriverTransaction, Store

T = TypeVar("T")

# Raised by the functions when the general path must decide: budgets changed, refused or rolled over.
FALLBACK_SQLSTATES = frozenset({"TP001", "TP002"})

_COUNTS_OUT = (
    "o_spent_input bigint, o_spent_output bigint, o_spent_nusd bigint, o_spent_calls bigint, "
    "o_spent_unknown bigint, o_reserved_input bigint, o_reserved_output bigint, "
    "o_reserved_nusd bigint, o_holds bigint"
)
_COUNTS_RETURNING = (
    "b.spent_input, b.spent_output, b.spent_nusd, b.spent_calls, b.spent_unknown, "
    "b.reserved_input, b.reserved_output, b.reserved_nusd, b.holds"
)
_SAME_BUDGETS = """
    n := coalesce(array_length(p_scopes, 1), 0);
    IF (SELECT count(*) FROM tp_budgets b WHERE b.scope = ANY(p_enclosing)) <> n THEN
        RAISE EXCEPTION 'tokenpilot: the budgets changed' USING ERRCODE = 'TP001';
    END IF;"""


def _hold_function() -> str:
    return f"""
CREATE OR REPLACE FUNCTION tp_hold(
    p_row jsonb, p_enclosing text[], p_scopes text[], p_buckets float8[], p_updated float8[],
    p_i bigint, p_o bigint, p_n bigint, p_priced boolean
) RETURNS TABLE ({_COUNTS_OUT}) LANGUAGE plpgsql AS $fn$
DECLARE
    n int;
BEGIN
    INSERT INTO tp_reservations SELECT * FROM jsonb_populate_record(NULL::tp_reservations, p_row);
    {_SAME_BUDGETS}
    FOR k IN 1 .. n LOOP
        RETURN QUERY UPDATE tp_budgets b SET reserved_input = b.reserved_input + p_i,
            reserved_output = b.reserved_output + p_o, reserved_nusd = b.reserved_nusd + p_n,
            holds = b.holds + 1
        WHERE b.scope = p_scopes[k] AND b.bucket = p_buckets[k] AND b.updated_at = p_updated[k]
            AND (b.tokens IS NULL
                OR b.spent_input + b.spent_output + b.reserved_input + b.reserved_output + p_i + p_o
                    <= b.tokens)
            AND (b.input_tokens IS NULL OR b.spent_input + b.reserved_input + p_i <= b.input_tokens)
            AND (b.output_tokens IS NULL OR b.spent_output + b.reserved_output + p_o <= b.output_tokens)
            AND (b.usd IS NULL
                OR (p_priced AND b.spent_nusd + b.reserved_nusd + p_n <= b.usd * 1000000000.0 + 1))
        RETURNING {_COUNTS_RETURNING};
        IF NOT FOUND THEN
            RAISE EXCEPTION 'tokenpilot: refused, rolled over or replaced' USING ERRCODE = 'TP002';
        END IF;
    END LOOP;
END
$fn$"""


def _finish_function() -> str:
    columns = [c.name for c in s.records.c if c.name != "id"]
    names = ", ".join(columns)
    return f"""
CREATE OR REPLACE FUNCTION tp_finish(
    p_reservation text, p_row jsonb, p_enclosing text[], p_scopes text[], p_buckets float8[],
    p_updated float8[], p_hi bigint, p_ho bigint, p_hn bigint, p_hh bigint,
    p_si bigint, p_so bigint, p_sn bigint, p_sc bigint, p_su bigint
) RETURNS TABLE (o_id bigint, {_COUNTS_OUT}) LANGUAGE plpgsql AS $fn$
DECLARE
    n int;
    rec_id bigint;
BEGIN
    IF p_reservation IS NOT NULL THEN
        DELETE FROM tp_reservations r WHERE r.id = p_reservation;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'tokenpilot: the reservation was reclaimed' USING ERRCODE = 'TP002';
        END IF;
    END IF;
    INSERT INTO tp_records ({names})
        SELECT {names} FROM jsonb_populate_record(NULL::tp_records, p_row)
        RETURNING tp_records.id INTO rec_id;
    {_SAME_BUDGETS}
    IF n = 0 THEN
        RETURN QUERY SELECT rec_id, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint;
    END IF;
    FOR k IN 1 .. n LOOP
        RETURN QUERY UPDATE tp_budgets b SET reserved_input = b.reserved_input - p_hi,
            reserved_output = b.reserved_output - p_ho, reserved_nusd = b.reserved_nusd - p_hn,
            holds = b.holds - p_hh,
            spent_input = b.spent_input + p_si, spent_output = b.spent_output + p_so,
            spent_nusd = b.spent_nusd + p_sn, spent_calls = b.spent_calls + p_sc,
            spent_unknown = b.spent_unknown + p_su,
            bucket_input = b.bucket_input + p_si, bucket_output = b.bucket_output + p_so,
            bucket_nusd = b.bucket_nusd + p_sn, bucket_calls = b.bucket_calls + p_sc,
            bucket_unknown = b.bucket_unknown + p_su
        WHERE b.scope = p_scopes[k] AND b.bucket = p_buckets[k] AND b.updated_at = p_updated[k]
        RETURNING rec_id, {_COUNTS_RETURNING};
        IF NOT FOUND THEN
            RAISE EXCEPTION 'tokenpilot: rolled over or replaced' USING ERRCODE = 'TP002';
        END IF;
    END LOOP;
END
$fn$"""


def create_functions(conn: Connection) -> None:
    """(Re)create the hot path's functions; run after every migration, since they name columns."""
    if conn.dialect.name != "postgresql":
        return
    for ddl in (_hold_function(), _finish_function()):
        conn.exec_driver_sql(ddl)


_PG_HOLD = (
    "SELECT * FROM tp_hold($1::jsonb, $2::text[], $3::text[], $4::float8[], $5::float8[], "
    "$6::int8, $7::int8, $8::int8, $9::boolean)"
)
_PG_FINISH = (
    "SELECT * FROM tp_finish($1::text, $2::jsonb, $3::text[], $4::text[], $5::float8[], $6::float8[], "
    "$7::int8, $8::int8, $9::int8, $10::int8, $11::int8, $12::int8, $13::int8, $14::int8, $15::int8)"
)
_PG_BUDGETS_OVER = "SELECT count(*) FROM tp_budgets WHERE scope = ANY($1::text[])"
_BUDGETS_READ = f"SELECT {BUDGET_COLUMNS}, updated_at FROM tp_budgets WHERE scope"
_CACHED_SCOPES = 4096


def _json(row: dict[str, Any]) -> str:
    return json.dumps(row, separators=(",", ":"), allow_nan=False)


class _GiveUp(Exception):
    """Raised inside the SQLite transaction to roll it back: the general path must decide."""


def array_literal(items: list[str]) -> str:
    r"""PostgreSQL's text form of a one-dimensional array of `items`, each quoted.

    >>> array_literal(["a", 'b"c'])
    '{"a","b\\"c"}'
    """
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{item}"' for item in quoted) + "}"


def _scope_params(scopes: list[str]) -> dict[str, str]:
    return {f"s{i}": name for i, name in enumerate(scopes)}


def _count_budgets(depth: int) -> str:
    marks = ", ".join(f":s{i}" for i in range(depth))
    return f"SELECT count(*) FROM tp_budgets WHERE scope IN ({marks})"


class _Enclosing:
    """The budgets enclosing one scope as this process read them."""

    __slots__ = ("budgets", "count_sql", "pg_arrays", "scope_params", "scopes", "updated")

    def __init__(self, scopes: list[str], budgets: list[Budget], updated: list[float]):
        self.scopes = scopes
        self.budgets = budgets
        self.updated = updated
        self.scope_params = _scope_params(scopes)
        self.count_sql = _count_budgets(len(scopes))
        # PostgreSQL's array parameters as literals, made once: psycopg's list dumper costs more per call.
        self.pg_arrays = (
            array_literal(scopes),
            array_literal([b.scope for b in budgets]),
            array_literal([repr(u) for u in updated]),
        )

    def pg_params(self, row: dict[str, Any], buckets: list[float]) -> tuple[str, ...]:
        """`tp_hold`'s and `tp_finish`'s shared parameters: the row, the scopes, buckets and updated_at."""
        enclosing, scopes, updated = self.pg_arrays
        return (_json(row), enclosing, scopes, array_literal([repr(b) for b in buckets]), updated)

    def statements(self, buckets: list[float], amounts: dict[str, int]) -> list[dict[str, Any]]:
        """One UPDATE's parameters per budget: `amounts` on its scope, cached bucket and updated_at."""
        return [
            {**amounts, "scope": b.scope, "bucket": bucket, "updated": updated}
            for b, bucket, updated in zip(self.budgets, buckets, self.updated, strict=True)
        ]


class HotPath:
    """One process's fast reserve and settle, with the budgets it has read (see the module).

    `hold` and `finish` return None when the general transaction must run instead (then call
    `forget()`, since the budgets may have changed).
    """

    def __init__(self, store: Store):
        self._store = store
        self._postgres = store.dialect == "postgresql"
        self._budgets: dict[str, _Enclosing] = {}
        self._unbudgeted = threading.local()  # per thread: (token, {scope: no budget encloses it})

    def forget(self) -> None:
        self._budgets.clear()
        self._unbudgeted.__dict__.clear()

    def unbudgeted(self, scope: str) -> bool:
        """Whether no budget encloses `scope` now, so a hold would hold nothing (and is skipped).

        A budget another process or thread adds applies from its next call. A call already
        under way holds nothing; its spend counts in the new budget when it settles (the finish
        sees the budget in its same-budgets check and takes the general path).

        - SQLite: read again whenever another connection committed since (`PRAGMA data_version`,
          checked first, so a budget committed during the read is seen next time). This thread's
          own connection never writes budgets.
        - PostgreSQL: one read-only statement per call, a count of the budgets on the enclosing
          scopes, prepared and in autocommit (the first call of a scope reads its budgets instead,
          which the hold needs anyway); it replaces the `tp_hold` call, a write and its commit.
          PostgreSQL has no local signal like SQLite's `data_version`: a version counter costs the
          same round trip to read (and a migration, and every writer of budgets to keep it), and
          LISTEN/NOTIFY arrives after the commit, so a call made just after `set_budget` returned
          could miss it. The count reads the very rows that decide, in a snapshot taken when the
          statement starts (READ COMMITTED): every budget committed before the call began is seen,
          whichever process or tool wrote it; one committed while it runs orders after the call.
        """
        cached = self._budgets.get(scope)
        if cached is not None and cached.budgets:
            return False  # the hold checks in its transaction that they still stand
        if self._postgres:
            if cached is None:  # read now: the budgets the hold needs, and the answer (None: hold)
                read = self._enclosing(scope)
                return read is not None and not read.budgets
            return self._unbudgeted_on_postgres(cached)
        token = self._store.others_committed_token()
        seen = self._unbudgeted
        if getattr(seen, "token", None) != token or len(seen.scopes) >= _CACHED_SCOPES:
            seen.token, seen.scopes = token, {}
        free = seen.scopes.get(scope)
        if free is None:
            scopes = enclosing_scopes(scope)
            free = not self._store.read_on_driver(_count_budgets(len(scopes)), _scope_params(scopes))[0][0]
            seen.scopes[scope] = free
        return bool(free)

    def _unbudgeted_on_postgres(self, read: _Enclosing) -> bool:
        enclosing = read.pg_arrays[0]  # the enclosing scopes as a PostgreSQL array literal
        rows = self._store.call_prepared("tp_budgets_over", _PG_BUDGETS_OVER, (enclosing,))
        return rows is not None and rows[0][0] == 0  # an error: hold, and the general path decides

    def _enclosing(self, scope: str) -> _Enclosing | None:
        found = self._budgets.get(scope)
        if found is not None:
            return found
        scopes = enclosing_scopes(scope)
        if self._postgres:
            rows = self._store.call(f"{_BUDGETS_READ} = ANY(%s::text[]) ORDER BY scope", (scopes,))
            if rows is None:
                return None
        else:
            marks = ", ".join(f":s{i}" for i in range(len(scopes)))
            query = f"{_BUDGETS_READ} IN ({marks}) ORDER BY scope"
            params = {f"s{i}": name for i, name in enumerate(scopes)}
            rows = self._store.run(lambda conn: execute(conn, query, params).fetchall(), read_only=True)
        if len(self._budgets) >= _CACHED_SCOPES:
            self._budgets.clear()
        found = _Enclosing(scopes, [budget_of(r) for r in rows], [float(r[8]) for r in rows])
        self._budgets[scope] = found
        return found

    def hold(
        self, row: dict[str, Any], *, held: Held, priced: bool, now: float, wait: bool = True
    ) -> list[tuple[Budget, Counts]] | None:
        """Insert the reservation `row` and hold `held` on every enclosing budget, or None."""
        enclosing = self._enclosing(row["scope"])
        if enclosing is None:
            return None
        budgets = enclosing.budgets
        buckets = [current_bucket(b, now) for b in budgets]
        if self._postgres:
            params = (*enclosing.pg_params(row, buckets), held.input, held.output, held.nusd, priced)
            rows = self._store.call_prepared("tp_hold", _PG_HOLD, params)
            if rows is None or len(rows) != len(budgets):
                return None
            return [(budget, counts_of(r)) for budget, r in zip(budgets, rows, strict=True)]

        updates = enclosing.statements(buckets, hold_params(held, priced=priced))

        def transaction(tx: DriverTransaction) -> list[tuple[Budget, Counts]]:
            execute(tx, INSERT_RESERVATION, row)
            return self._hold_all(tx, enclosing, HOLD, updates)

        return self._sqlite(transaction, wait)

    def finish(
        self,
        reservation_id: str | None,
        row: dict[str, Any],
        *,
        held: Held,
        spend: Spend,
        now: float,
        wait: bool = True,
    ) -> tuple[int, list[tuple[Budget, Counts]]] | None:
        """Drop the hold, insert the record `row` and count `spend` now; (record id, counts) or None."""
        enclosing = self._enclosing(row["scope"])
        if enclosing is None:
            return None
        budgets = enclosing.budgets
        buckets = [current_bucket(b, now) for b in budgets]
        if self._postgres:
            params = (
                reservation_id,
                *enclosing.pg_params(row, buckets),
                held.input,
                held.output,
                held.nusd,
                held.holds,
                spend.input,
                spend.output,
                spend.nusd,
                spend.calls,
                spend.unknown,
            )
            rows = self._store.call_prepared("tp_finish", _PG_FINISH, params)
            if not rows or (record_id := rows[0][0]) is None:
                return None
            counted = [r for r in rows if r[1] is not None]
            if len(counted) != len(budgets):
                return None
            pairs = zip(budgets, counted, strict=True)
            return record_id, [(budget, counts_of(r[1:])) for budget, r in pairs]

        updates = enclosing.statements(buckets, unhold_params(held, spend))

        def transaction(tx: DriverTransaction) -> tuple[int, list[tuple[Budget, Counts]]]:
            if reservation_id is not None:
                gone = execute(tx, "DELETE FROM tp_reservations WHERE id = :id", {"id": reservation_id})
                if gone.rowcount != 1:
                    raise _GiveUp  # reclaimed: the general path records it as a late settle
            record_id = int(execute(tx, INSERT_RECORD, row).scalar())
            return record_id, self._hold_all(tx, enclosing, UNHOLD_AND_SPEND, updates)

        return self._sqlite(transaction, wait)

    @staticmethod
    def _hold_all(
        tx: DriverTransaction, enclosing: _Enclosing, statement: str, updates: list[dict[str, Any]]
    ) -> list[tuple[Budget, Counts]]:
        if execute(tx, enclosing.count_sql, enclosing.scope_params).scalar() != len(updates):
            raise _GiveUp  # a budget was added or removed on an enclosing scope
        done = []
        for budget, params in zip(enclosing.budgets, updates, strict=True):
            found = execute(tx, statement, params).fetchone()
            if found is None:
                raise _GiveUp  # refused, rolled over or replaced
            done.append((budget, counts_of(found)))
        return done

    def _sqlite(self, transaction: Callable[[DriverTransaction], T], wait: bool) -> T | None:
        try:
            return self._store.transact(transaction, wait=wait)
        except _GiveUp:
            return None
