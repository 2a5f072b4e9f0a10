"""Budget rows and usage sums (SQL). Callers run these inside one `Store.run` transaction."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.sql.elements import ColumnElement

from tokenpilot.budget import _schema as s
from tokenpilot.budget._period import Period
from tokenpilot.budget._scope import subtree_bounds
from tokenpilot.budget._types import UNITS, Budget, Usage, UsageLine


def within(column: Any, scope: str) -> ColumnElement[bool]:
    """`column` is `scope` or beneath it, as an index-friendly range."""
    low, high = subtree_bounds(scope)
    return or_(column == scope, and_(column >= low, column < high))


def budget_from_row(row: RowMapping) -> Budget:
    return Budget(
        scope=row["scope"],
        tokens=row["tokens"],
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        usd=row["usd"],
        period=row["period"],
        timezone=row["timezone"],
        warn_at=row["warn_at"],
    )


@cache
def _budgets_statement(lock: bool) -> Any:
    query = (
        select(s.budgets)
        .where(s.budgets.c.scope.in_(bindparam("scopes", expanding=True)))
        .order_by(s.budgets.c.scope)
    )
    return query.with_for_update() if lock else query


def load_budgets(conn: Connection, scopes: list[str], *, lock: bool) -> list[Budget]:
    """The budgets set on `scopes`, in scope order; `lock` takes their row locks (PostgreSQL)."""
    rows = conn.execute(_budgets_statement(lock), {"scopes": scopes}).mappings()
    return [budget_from_row(row) for row in rows]


def all_budgets(conn: Connection, under: str | None = None) -> list[Budget]:
    query = select(s.budgets).order_by(s.budgets.c.scope)
    if under is not None:
        query = query.where(within(s.budgets.c.scope, under))
    return [budget_from_row(row) for row in conn.execute(query).mappings()]


def upsert_budget(conn: Connection, budget: Budget, now: float) -> None:
    values = budget.as_dict()
    updated = conn.execute(
        s.budgets.update()
        .where(s.budgets.c.scope == budget.scope)
        .values(**{k: v for k, v in values.items() if k != "scope"}, updated_at=now)
    )
    if updated.rowcount == 0:
        conn.execute(s.budgets.insert().values(**values, created_at=now, updated_at=now))


def delete_budget(conn: Connection, scope: str) -> bool:
    return bool(conn.execute(delete(s.budgets).where(s.budgets.c.scope == scope)).rowcount)


_FAR = 1e18  # an unbounded period edge, as a bind value so the statement stays the same


@cache
def _usage_statement() -> Any:
    """Spent and held sums beneath :scope in one statement (one snapshot, one round trip), built once."""
    r, h = s.records.c, s.reservations.c

    def beneath(column: Any) -> ColumnElement[bool]:
        return or_(column == bindparam("scope"), and_(column >= bindparam("low"), column < bindparam("high")))

    spent_filter = (beneath(r.scope), r.ts >= bindparam("start"), r.ts < bindparam("end"))
    held_filter = (beneath(h.scope), h.expires_at > bindparam("now"))

    def spent_of(expression: Any) -> Any:
        return select(expression).where(*spent_filter).scalar_subquery()

    def held_of(expression: Any) -> Any:
        return select(expression).where(*held_filter).scalar_subquery()

    return select(
        spent_of(func.count()),
        spent_of(func.coalesce(func.sum(r.input_tokens), 0)),
        spent_of(func.coalesce(func.sum(r.output_tokens), 0)),
        spent_of(func.coalesce(func.sum(r.cost_usd), 0.0)),
        spent_of(func.coalesce(func.sum(case((r.cost_usd.is_(None), 1), else_=0)), 0)),
        held_of(func.coalesce(func.sum(h.input_tokens), 0)),
        held_of(func.coalesce(func.sum(h.output_tokens), 0)),
        held_of(func.coalesce(func.sum(h.usd), 0.0)),
        held_of(func.count()),
    )


def usage_of(conn: Connection, scope: str, budget: Budget | None, now: float) -> Usage:
    """Spent (ledger records in the current period) and reserved (live holds) beneath `scope`."""
    start, end = Period.parse(budget.period if budget else "none").window(
        now, budget.timezone if budget else "UTC"
    )
    low, high = subtree_bounds(scope)
    row = conn.execute(
        _usage_statement(),
        {
            "scope": scope,
            "low": low,
            "high": high,
            "start": -_FAR if start is None else start,
            "end": _FAR if end is None else end,
            "now": now,
        },
    ).one()
    calls, spent_in, spent_out, spent_usd, unknown, held_in, held_out, held_usd, holds = row

    spent = {
        "tokens": float(spent_in + spent_out),
        "input_tokens": float(spent_in),
        "output_tokens": float(spent_out),
        "usd": float(spent_usd),
    }
    held = {
        "tokens": float(held_in + held_out),
        "input_tokens": float(held_in),
        "output_tokens": float(held_out),
        "usd": float(held_usd),
    }
    limits = budget.limits() if budget else {}
    shown = [u for u in UNITS if u in limits] or ["tokens", "usd"]
    lines = tuple(UsageLine(u, limits.get(u), spent[u], held[u]) for u in shown)
    return Usage(
        scope=scope,
        budget=budget,
        period_start=start,
        period_end=end,
        lines=lines,
        calls=int(calls),
        unknown_cost_calls=int(unknown),
        active_reservations=int(holds),
    )
