"""Benchmark: max_tokens policies replayed on real agent runs (bench data trajectories).

Every assistant message of every OpenHands run is one call. Its prompt is every message before it
(with the run's two tools offered, as the agent offered them); its real output is the message's text
plus its tool calls (name + arguments + 4 tokens each, o200k_base, as bench/README.md counts).
Each policy picks max_tokens before the call; an output longer than that is truncated and retried
as `next_attempt` does (× 1.5 up to the model's cap), and the cut-off attempts are billed.

Policies: `fixed-N` (one max_tokens for every call), `table` (tp.plan_call: detected task type
and complexity -> the default table), `learned` (tp.plan_call with a ledger of the calls replayed so
far: p90 × 1.2 of similar calls once there are 20), and `learned-pNN` (the same rule at another
percentile; each learned policy has its own ledger, as its cut-off attempts differ).

    .venv/bin/python bench/plan_max_tokens.py [--data ../shared/bench/trajectories_dev.jsonl.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tokenpilot as tp
from tokenpilot._plan._max_tokens import learned_max_tokens, table_max_tokens
from tokenpilot._plan._settings import PlanSettings
from tokenpilot._tokens._tokenizer import bundled_tokenizer

ROOT = Path(__file__).resolve().parent.parent
# ../shared/bench relative to the repository root (or to a parent of it, from a worktree).
DEFAULT_DATA = next(
    (
        d / "shared" / "bench" / "trajectories_dev.jsonl.gz"
        for d in ROOT.parents
        if (d / "shared" / "bench").is_dir()
    ),
    ROOT.parent / "shared" / "bench" / "trajectories_dev.jsonl.gz",
)
MODEL = "gpt-4.1"  # o200k_base (exact), 1M window, 32,768 max output
TOOLS = [
    {"type": "function", "function": {"name": name, "description": "", "parameters": {"type": "object"}}}
    for name in ("execute_bash", "str_replace_editor")
]
RETRY_FACTOR = 1.5


@dataclass(frozen=True)
class Row:
    output_tokens: int
    max_tokens: int | None
    finish_reason: str
    phase: str | None
    model: str
    task_type: str
    attempt: int


class MemoryLedger:
    """The calls replayed so far, newest first per (task type, model), as the ledger would return."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str | None, str | None], list[Row]] = defaultdict(list)

    def records(
        self,
        *,
        phase: str | None = None,
        model: str | None = None,
        task_type: str | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        rows = self.rows[(task_type, model)] if phase is None else []
        chosen = rows[-limit:] if limit else rows
        return chosen[::-1]

    def add(self, row: Row) -> None:
        self.rows[(row.task_type, row.model)].append(row)
        self.rows[(row.task_type, None)].append(row)


def output_tokens(message: dict[str, Any]) -> int:
    tok = bundled_tokenizer("o200k_base")
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    total = tok.count(content)
    for call in message.get("tool_calls") or []:
        function = call.get("function", {})
        total += 4 + tok.count(function.get("name", "")) + tok.count(function.get("arguments", ""))
    return total


def replay(max_tokens: int, output: int, cap: int) -> tuple[int, int, bool]:
    """(attempts, output tokens billed in cut-off attempts, finally complete?) under next_attempt's rule."""
    attempts, wasted = 1, 0
    while output > max_tokens:
        wasted += max_tokens
        if max_tokens >= cap:
            return attempts, wasted, False
        max_tokens = min(cap, max(max_tokens + 1, math.ceil(max_tokens * RETRY_FACTOR)))
        attempts += 1
    return attempts, wasted, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit-runs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "plan_max_tokens")
    args = parser.parse_args()
    cap = tp.get_model(MODEL).max_output_tokens or 32_768

    started = time.perf_counter()
    variants = {"learned-p95": 95.0, "learned-p99": 99.0}
    policies = ["fixed-300", "fixed-1024", "fixed-4096", "table", "learned", *variants]
    stats: dict[str, dict[str, float]] = {p: defaultdict(float) for p in policies}
    task_types: dict[str, int] = defaultdict(int)
    ledger = MemoryLedger()
    variant_ledgers = {name: MemoryLedger() for name in variants}
    runs = steps = total_output = learned_steps = 0
    if not args.data.is_file():
        raise SystemExit(f"no trajectories at {args.data}; pass --data PATH")
    with gzip.open(args.data, "rt", encoding="utf-8") as handle:
        for line in handle:
            if args.limit_runs is not None and runs >= args.limit_runs:
                break
            run = json.loads(line)
            runs += 1
            messages = run["messages"]
            for index, message in enumerate(messages):
                if message.get("role") != "assistant" or index == 0:
                    continue
                body = {"model": MODEL, "messages": messages[:index], "tools": TOOLS}
                out = output_tokens(message)
                steps += 1
                total_output += out
                table_plan = tp.plan_call(body, MODEL)
                learned_plan = tp.plan_call(body, MODEL, ledger=ledger)
                task_types[f"{table_plan.task_type}/{table_plan.complexity}"] += 1
                learned_steps += learned_plan.max_tokens_source == "learned"
                choices: dict[str, int] = {
                    "fixed-300": 300,
                    "fixed-1024": 1024,
                    "fixed-4096": 4096,
                    "table": table_plan.max_tokens,
                    "learned": learned_plan.max_tokens,
                }
                for name, p in variants.items():
                    settings = PlanSettings(learn_percentile=p)
                    table = table_max_tokens(settings, table_plan.task_type, table_plan.complexity)
                    learned = learned_max_tokens(
                        variant_ledgers[name], settings, task_type=table_plan.task_type,
                        model=MODEL, phase=None, table=table,
                    )  # fmt: skip
                    choices[name] = min(table_plan.output_cap, (learned or table).value)
                    attempts, _, _ = replay(choices[name], out, cap)
                    if attempts > 1:
                        variant_ledgers[name].add(
                            Row(choices[name], choices[name], "length", None, MODEL, table_plan.task_type, 1)
                        )
                    variant_ledgers[name].add(
                        Row(out, None, "stop", None, MODEL, table_plan.task_type, attempts)
                    )
                for policy, chosen in choices.items():
                    attempts, wasted, complete = replay(chosen, out, cap)
                    s = stats[policy]
                    s["truncated"] += attempts > 1 or not complete
                    s["retries"] += attempts - 1
                    s["wasted"] += wasted
                    s["failed"] += not complete
                    s["reserved"] += chosen
                    s["unused"] += max(0, chosen - out)
                attempts, _, _ = replay(learned_plan.max_tokens, out, cap)
                if attempts > 1:  # the cut-off attempt is in the ledger too, as next_attempt records it
                    ledger.add(Row(learned_plan.max_tokens, learned_plan.max_tokens, "length", None, MODEL,
                                   learned_plan.task_type, 1))  # fmt: skip
                ledger.add(Row(out, None, "stop", None, MODEL, learned_plan.task_type, attempts))
    elapsed = time.perf_counter() - started

    results: dict[str, Any] = {
        "data": str(args.data),
        "model": MODEL,
        "runs": runs,
        "steps": steps,
        "output_tokens": total_output,
        "task_types": dict(sorted(task_types.items())),
        "seconds": round(elapsed, 1),
        "policies": {},
    }
    for policy in policies:
        s = stats[policy]
        results["policies"][policy] = {
            "truncated_pct": round(100 * s["truncated"] / steps, 2),
            "retries_per_100": round(100 * s["retries"] / steps, 2),
            "failed": int(s["failed"]),
            "wasted_output_tokens": int(s["wasted"]),
            "wasted_pct_of_output": round(100 * s["wasted"] / total_output, 2),
            "mean_max_tokens": round(s["reserved"] / steps, 1),
            "unused_reserved_per_step": round(s["unused"] / steps, 1),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [
        f"# max_tokens policies replayed on {runs} agent runs "
        f"({steps:,} calls, {total_output:,} output tokens)",
        "",
        f"Model {MODEL} (cap {cap:,}); retries × {RETRY_FACTOR} as next_attempt. Data: `{args.data.name}`.",
        "",
        "| policy | truncated calls | retries /100 calls | wasted output (of real output) "
        "| mean max_tokens | unused reservation /call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for policy, r in results["policies"].items():
        lines.append(
            f"| `{policy}` | {r['truncated_pct']:.2f}% | {r['retries_per_100']:.2f} | "
            f"{r['wasted_output_tokens']:,} ({r['wasted_pct_of_output']:.2f}%) | "
            f"{r['mean_max_tokens']:,.0f} | "
            f"{r['unused_reserved_per_step']:,.0f} |"
        )
    lines += [
        "",
        "Detected task type/complexity: " + ", ".join(f"{k} {v:,}" for k, v in results["task_types"].items()),
    ]
    lines.append(
        f"`learned` used the ledger on {100 * learned_steps / steps:.1f}% of calls (the rest: table)."
    )
    results["learned_pct"] = round(100 * learned_steps / steps, 1)
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    print(f"({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
