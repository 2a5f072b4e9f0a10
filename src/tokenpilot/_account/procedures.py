"""The hot path on PostgreSQL: a reservation and a settlement in one round trip each.

Each is one call of a PL/pgSQL function (`tp_hold`, `tp_finish`) in autocommit, so the statement is
its own transaction: nine round trips of BEGIN, statements and COMMIT become one, and the client's
CPU per reserve + settle falls about fourfold. The functions do what `reservations.reserve` and
`reservations.finish` do in the common case only — every enclosing budget counts the current
bucket and has room — and raise a tokenpilot SQLSTATE (class `TP`) for anything else: a refusal, a
period roll-over, a budget added, removed or replaced since this process read it, a reservation
already reclaimed. The caller then runs the general transaction in Python, which handles all of
them; both paths write the same rows, so the counters stay exact either way.

The functions take the enclosing budgets this process has cached (scope, bucket, `updated_at`) and
check them in the same statement: a count of the budgets on the call's enclosing scopes, and each
conditional UPDATE matching the cached bucket and `updated_at`. The reservation or record row is
written first, so `set_budget`'s table lock (see `budgets`) orders a new budget before or after
the whole call, as in the general path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tokenpilot._account import schema as s
from tokenpilot._account.counters import Counts, Held, Spend, current_bucket
from tokenpilot._budget import Budget, enclosing_scopes

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from tokenpilot._account.store import Store

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


_HOLD = (
    "SELECT * FROM tp_hold(%s::jsonb, %s::text[], %s::text[], %s::float8[], %s::float8[], "
    "%s::int8, %s::int8, %s::int8, %s::boolean)"
)
_FINISH = (
    "SELECT * FROM tp_finish(%s::text, %s::jsonb, %s::text[], %s::text[], %s::float8[], %s::float8[], "
    "%s::int8, %s::int8, %s::int8, %s::int8, %s::int8, %s::int8, %s::int8, %s::int8, %s::int8)"
)
_ENCLOSING = (
    "SELECT scope, tokens, input_tokens, output_tokens, usd, period, timezone, warn_at, updated_at "
    "FROM tp_budgets WHERE scope = ANY(%s::text[]) ORDER BY scope"
)
_CACHED_SCOPES = 4096


def _counts(row: Any) -> Counts:
    return Counts(Spend(*(int(v) for v in row[0:5])), Held(*(int(v) for v in row[5:9])))


class HotPath:
    """One process's one-round-trip reserve and settle on PostgreSQL, with the budgets it has read.

    `hold` and `finish` return None when the general transaction must run instead (then call
    `forget()`, since the budgets may have changed).
    """

    def __init__(self, store: Store):
        self._store = store
        self._budgets: dict[str, tuple[list[str], list[tuple[Budget, float]]]] = {}

    def forget(self) -> None:
        self._budgets.clear()

    def _enclosing(self, scope: str) -> tuple[list[str], list[tuple[Budget, float]]] | None:
        found = self._budgets.get(scope)
        if found is not None:
            return found
        scopes = enclosing_scopes(scope)
        rows = self._store.call(_ENCLOSING, (scopes,))
        if rows is None:
            return None
        budgets = [
            (
                Budget(
                    scope=r[0],
                    tokens=r[1],
                    input_tokens=r[2],
                    output_tokens=r[3],
                    usd=r[4],
                    period=r[5],
                    timezone=r[6],
                    warn_at=r[7],
                ),
                float(r[8]),
            )
            for r in rows
        ]
        if len(self._budgets) >= _CACHED_SCOPES:
            self._budgets.clear()
        self._budgets[scope] = (scopes, budgets)
        return scopes, budgets

    def hold(
        self, row: dict[str, Any], *, held: Held, priced: bool, now: float
    ) -> list[tuple[Budget, Counts]] | None:
        """Insert the reservation `row` and hold `held` on every enclosing budget, or None."""
        from psycopg.types.json import Jsonb

        enclosing = self._enclosing(row["scope"])
        if enclosing is None:
            return None
        scopes, budgets = enclosing
        params = (
            Jsonb(row),
            scopes,
            [b.scope for b, _ in budgets],
            [current_bucket(b, now) for b, _ in budgets],
            [updated for _, updated in budgets],
            held.input,
            held.output,
            held.nusd,
            priced,
        )
        rows = self._store.call(_HOLD, params)
        if rows is None or len(rows) != len(budgets):
            return None
        return [(budget, _counts(r)) for (budget, _), r in zip(budgets, rows, strict=True)]

    def finish(
        self, reservation_id: str | None, row: dict[str, Any], *, held: Held, spend: Spend, now: float
    ) -> tuple[int, list[tuple[Budget, Counts]]] | None:
        """Drop the hold, insert the record `row` and count `spend` now; (record id, counts) or None."""
        from psycopg.types.json import Jsonb

        enclosing = self._enclosing(row["scope"])
        if enclosing is None:
            return None
        scopes, budgets = enclosing
        params = (
            reservation_id,
            Jsonb(row),
            scopes,
            [b.scope for b, _ in budgets],
            [current_bucket(b, now) for b, _ in budgets],
            [updated for _, updated in budgets],
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
        rows = self._store.call(_FINISH, params)
        if not rows:
            return None
        counted = [r for r in rows if r[1] is not None]
        if len(counted) != len(budgets):
            return None
        return int(rows[0][0]), [
            (budget, _counts(r[1:])) for (budget, _), r in zip(budgets, counted, strict=True)
        ]
