"""Reports over ledger records: totals per group, and recommendations with their evidence.

Definitions (each over the records of the group in the window):
- calls: every record; failed: status other than "ok"
- truncation rate: truncated ok-calls / ok-calls
- output utilization: output_tokens / max_tokens of ok-calls that have a max_tokens; mean and p90
  (nearest rank)
- cache hit rate: cache_read_tokens / input_tokens summed over ok-calls
- first-attempt success: first attempts (attempt == 1) that ended "ok" and not truncated / first attempts
- cost: the sum of known costs; `unknown_cost_calls` says how many calls have no price (never counted as $0)
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tokenpilot._exceptions import InputError
from tokenpilot.budget._types import Usage
from tokenpilot.ledger._records import LedgerRecord

GROUPINGS: dict[str, Callable[[LedgerRecord], str]] = {
    "scope": lambda r: r.scope,
    "phase": lambda r: r.phase or "(none)",
    "model": lambda r: r.model,
    "agent": lambda r: r.agent or "(none)",
    "day": lambda r: datetime.fromtimestamp(r.ts, UTC).strftime("%Y-%m-%d"),
    "task_type": lambda r: r.task_type or "(none)",
    "session": lambda r: r.session or "(none)",
}
NEAR_MAX = 0.95  # a call that used >= 95% of max_tokens probably wanted more


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of `values`; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Totals and rates for one group of records."""

    key: str
    calls: int
    failed_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cost_usd: float
    unknown_cost_calls: int
    truncation_rate: float | None
    mean_output_utilization: float | None
    p90_output_utilization: float | None
    p90_output_tokens: float | None
    cache_hit_rate: float | None
    first_attempt_success: float | None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cost_usd": round(self.cost_usd, 6),
            "unknown_cost_calls": self.unknown_cost_calls,
            "truncation_rate": self.truncation_rate,
            "mean_output_utilization": self.mean_output_utilization,
            "p90_output_utilization": self.p90_output_utilization,
            "p90_output_tokens": self.p90_output_tokens,
            "cache_hit_rate": self.cache_hit_rate,
            "first_attempt_success": self.first_attempt_success,
        }


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One suggested change, the subject it is about, and the numbers behind it."""

    kind: str  # raise_max_tokens, lower_max_tokens, budget_near_limit, unknown_price, low_cache_hits, retries
    subject: str
    message: str
    evidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class Report:
    """A window of the ledger, grouped, with recommendations."""

    by: str
    since: float | None
    until: float | None
    groups: tuple[GroupStats, ...]
    total: GroupStats
    recommendations: tuple[Recommendation, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "since": self.since,
            "until": self.until,
            "groups": [g.as_dict() for g in self.groups],
            "total": self.total.as_dict(),
            "recommendations": [r.as_dict() for r in self.recommendations],
        }


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def group_stats(key: str, records: list[LedgerRecord]) -> GroupStats:
    ok = [r for r in records if r.status == "ok"]
    utilizations = [r.output_utilization for r in ok if r.output_utilization is not None]
    first = [r for r in records if r.attempt == 1]
    input_ok = sum(r.input_tokens for r in ok)
    return GroupStats(
        key=key,
        calls=len(records),
        failed_calls=len(records) - len(ok),
        input_tokens=sum(r.input_tokens for r in records),
        output_tokens=sum(r.output_tokens for r in records),
        cache_read_tokens=sum(r.cache_read_tokens for r in records),
        cost_usd=math.fsum(r.cost_usd for r in records if r.cost_usd is not None),
        unknown_cost_calls=sum(1 for r in records if r.cost_usd is None),
        truncation_rate=_rate(sum(1 for r in ok if r.truncated), len(ok)),
        mean_output_utilization=(sum(utilizations) / len(utilizations)) if utilizations else None,
        p90_output_utilization=percentile(utilizations, 0.9),
        p90_output_tokens=percentile([float(r.output_tokens) for r in ok], 0.9),
        cache_hit_rate=_rate(sum(r.cache_read_tokens for r in ok), input_ok),
        first_attempt_success=_rate(
            sum(1 for r in first if r.status == "ok" and not r.truncated), len(first)
        ),
    )


def _round_up(tokens: float, step: int = 1000) -> int:
    return max(step, math.ceil(tokens / step) * step)


def _k(tokens: float) -> str:
    return f"{tokens / 1000:.1f}k" if tokens >= 1000 else f"{tokens:.0f}"


def recommend(records: list[LedgerRecord], usages: Iterable[Usage] = ()) -> list[Recommendation]:
    """Suggestions with evidence: max_tokens per phase (else per model), budgets near their limit,
    models without a price, prompt caching, retries."""
    found: list[Recommendation] = []
    label = "phase" if any(r.phase for r in records) else "model"
    buckets: dict[str, list[LedgerRecord]] = defaultdict(list)
    for r in records:
        buckets[(r.phase or "(none)") if label == "phase" else r.model].append(r)
    for key in sorted(buckets):
        group = buckets[key]
        ok = [r for r in group if r.status == "ok" and r.max_tokens]
        if len(ok) >= 5:
            near = [r for r in ok if (r.output_utilization or 0) >= NEAR_MAX]
            share = len(near) / len(ok)
            p90 = percentile([float(r.output_tokens) for r in ok], 0.9) or 0.0
            usual_max = Counter(r.max_tokens for r in ok).most_common(1)[0][0] or 0
            evidence = {
                "calls": len(ok),
                "share_near_max": round(share, 4),
                "p90_output_tokens": p90,
                "usual_max_tokens": usual_max,
            }
            if share >= 0.2:
                # Truncated outputs are censored at max_tokens, so p90 can only understate the need.
                target = _round_up(p90 * 1.05)
                if p90 >= usual_max * NEAR_MAX:
                    target = _round_up(max(p90 * 1.05, usual_max * 1.5))
                found.append(
                    Recommendation(
                        "raise_max_tokens",
                        f"{label} {key}",
                        f"{label} {key}: {share:.0%} of calls used >= {NEAR_MAX:.0%} of max_tokens; "
                        f"p90 output {_k(p90)} → raise max_tokens to {_k(target)}",
                        {**evidence, "suggested_max_tokens": target},
                    )
                )
            elif len(ok) >= 20 and not near:
                p99 = percentile([float(r.output_tokens) for r in ok], 0.99) or 0.0
                target = _round_up(p99 * 1.25)
                if target < usual_max * 0.5:
                    found.append(
                        Recommendation(
                            "lower_max_tokens",
                            f"{label} {key}",
                            f"{label} {key}: p99 output {_k(p99)} of max_tokens {_k(usual_max)}; "
                            f"lower max_tokens to {_k(target)} so reservations stop holding unused budget",
                            {**evidence, "p99_output_tokens": p99, "suggested_max_tokens": target},
                        )
                    )
        stats = group_stats(key, group)
        ok_all = [r for r in group if r.status == "ok"]
        mean_input = (sum(r.input_tokens for r in ok_all) / len(ok_all)) if ok_all else 0
        if len(ok_all) >= 10 and mean_input >= 5_000 and (stats.cache_hit_rate or 0) < 0.1:
            found.append(
                Recommendation(
                    "low_cache_hits",
                    f"{label} {key}",
                    f"{label} {key}: cache hit rate {(stats.cache_hit_rate or 0):.0%} on {_k(mean_input)} "
                    "input tokens per call; keep the prompt prefix stable so provider caches hit",
                    {
                        "calls": len(ok_all),
                        "mean_input_tokens": mean_input,
                        "cache_hit_rate": stats.cache_hit_rate,
                    },
                )
            )
        first = [r for r in group if r.attempt == 1]
        if len(first) >= 10 and stats.first_attempt_success is not None and stats.first_attempt_success < 0.8:
            found.append(
                Recommendation(
                    "retries",
                    f"{label} {key}",
                    f"{label} {key}: only {stats.first_attempt_success:.0%} of first attempts succeeded "
                    "untruncated; retries cost extra calls",
                    {"first_attempts": len(first), "first_attempt_success": stats.first_attempt_success},
                )
            )
    for usage in sorted(usages, key=lambda u: u.scope):
        fraction = usage.fraction
        if usage.budget is None or fraction is None or fraction < usage.budget.warn_at:
            continue
        period = "" if usage.budget.period == "none" else f"{usage.budget.period} "
        found.append(
            Recommendation(
                "budget_near_limit",
                usage.scope,
                f"{usage.scope} at {fraction:.0%} of its {period}budget "
                f"({usage.spent:,.6g} spent + {usage.reserved:,.6g} reserved "
                f"of {usage.limit:,.6g} {usage.unit})",
                {
                    "fraction": round(fraction, 4),
                    "limit": usage.limit,
                    "spent": usage.spent,
                    "reserved": usage.reserved,
                    "unit": usage.unit,
                    "period_end": usage.period_end,
                },
            )
        )
    unknown = Counter(r.model for r in records if r.cost_usd is None and r.total_tokens > 0)
    for model in sorted(unknown):
        found.append(
            Recommendation(
                "unknown_price",
                f"model {model}",
                f"model {model}: {unknown[model]} calls have no cost (price unknown); "
                f'set it in [models."{model}"] input_per_mtok / output_per_mtok',
                {"calls": unknown[model]},
            )
        )
    return found


def build_report(
    records: list[LedgerRecord],
    *,
    by: str = "scope",
    since: float | None = None,
    until: float | None = None,
    usages: Iterable[Usage] = (),
) -> Report:
    """Group `records` by scope, phase, model, agent, task_type, session or day; add recommendations."""
    if by not in GROUPINGS:
        raise InputError(f"unknown grouping {by!r}: use {', '.join(GROUPINGS)}")
    key_of = GROUPINGS[by]
    grouped: dict[str, list[LedgerRecord]] = defaultdict(list)
    for record in records:
        grouped[key_of(record)].append(record)
    groups = [group_stats(key, grouped[key]) for key in sorted(grouped)]
    if by != "day":
        groups.sort(key=lambda g: (-g.total_tokens, g.key))
    return Report(
        by=by,
        since=since,
        until=until,
        groups=tuple(groups),
        total=group_stats("total", records),
        recommendations=tuple(recommend(records, usages)),
    )
