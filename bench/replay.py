"""Replay benchmark for `compact`: long agent runs, re-billed step by step under three price profiles.

Definitions follow `../shared/bench/README.md` exactly:

- the steps of a run are its assistant messages; the prompt at step t is every message before
  assistant message t; a policy maps it to a compacted prompt and may keep state within a run;
- tokens: o200k_base, 4 per message and 4 per tool call plus the call's name and arguments; tool
  schemas are not counted;
- billing: the longest common prefix (whole equal messages from the start) with the previous
  step's compacted prompt is a cache read, the rest a cache write; `nocache` 1.0 for every token,
  `anthropic` reads 0.1 / writes 1.25, `openai` reads 0.5 / writes 1.0 and only when the common
  prefix is >= 1,024 tokens;
- violations: a tool result without its call, or a call without its result before the next
  assistant message;
- retention: the share of salient identifiers of assistant message t that occur in an earlier
  tool result (and not in the system prompt or task) and still occur in a tool result, summary or
  marker of the compacted prompt.

Usage:
    .venv/bin/python bench/replay.py                       # everything, writes bench/results/
    .venv/bin/python bench/replay.py --limit 20 --policies none,mask10,window32k
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokenpilot._compact import Compactor, Pricing
from tokenpilot._tokens._tokenizer import bundled_tokenizer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent.parent / "shared" / "bench" / "trajectories_dev.jsonl.gz"
FALLBACK_DATA = ROOT / ".." / "shared" / "bench" / "trajectories_dev.jsonl.gz"
RESULTS = ROOT / "bench" / "results"

Message = dict[str, Any]
OVERHEAD = 4
OPENAI_MIN_PREFIX = 1_024
# name -> (read price, write price, minimum cacheable prefix), in base-input-token units.
PROFILES: dict[str, tuple[float, float, int]] = {
    "nocache": (1.0, 1.0, 0),
    "anthropic": (0.1, 1.25, 0),
    "openai": (0.5, 1.0, OPENAI_MIN_PREFIX),
}
# The model whose registry prices each tokenpilot preset uses when billed under a profile.
PROFILE_MODELS = {"nocache": None, "anthropic": "claude-sonnet-4-5", "openai": "gpt-4o"}
SCENARIOS = {"128k": 128_000, "32k": 32_000}
SUMMARY_PREFIX = "[tokenpilot summary"

_ENC = bundled_tokenizer("o200k_base")


# ---------------------------------------------------------------------------------------------
# Counting (cached per message object: the same dict object is never re-counted)
# ---------------------------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
    return "".join(parts)


class Counter:
    """Tokens of a message under the README's rule, cached by object identity."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Message, int]] = {}

    def tokens(self, message: Message) -> int:
        hit = self._cache.get(id(message))
        if hit is not None and hit[0] is message:
            return hit[1]
        total = OVERHEAD + _ENC.count(_content_text(message.get("content")))
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            total += OVERHEAD + _ENC.count(str(function.get("name", "")))
            total += _ENC.count(str(function.get("arguments", "")))
        # Holding the message keeps its id from being reused while cached.
        self._cache[id(message)] = (message, total)
        return total


def _equal(a: Message, b: Message) -> bool:
    return a is b or a == b


# ---------------------------------------------------------------------------------------------
# Salient identifiers (retention)
# ---------------------------------------------------------------------------------------------

_PATH = re.compile(r"(?:[\w.-]+/)+[\w.-]+\.\w+")
_DOTTED = re.compile(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\b")
_SNAKE = re.compile(r"\b_*[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+_*\b")
_CAMEL = re.compile(r"\b[A-Za-z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+\b")
_QUOTED = re.compile(r"\"([^\"\n]{4,80})\"|'([^'\n]{4,80})'|`([^`\n]{4,80})`")


def salient(text: str) -> set[str]:
    """File paths, dotted names, snake_case / CamelCase identifiers (4+ chars), quoted strings."""
    found: set[str] = set()
    found.update(_PATH.findall(text))
    found.update(_DOTTED.findall(text))
    found.update(m for m in _SNAKE.findall(text) if len(m) >= 4)
    found.update(m for m in _CAMEL.findall(text) if len(m) >= 4)
    for groups in _QUOTED.findall(text):
        found.update(g for g in groups if g)
    return found


def _assistant_text(message: Message) -> str:
    pieces = [_content_text(message.get("content"))]
    for call in message.get("tool_calls") or ():
        arguments = call.get("function", {}).get("arguments", "")
        try:
            parsed = json.loads(arguments)
        except (TypeError, ValueError):
            pieces.append(str(arguments))
            continue
        pieces.extend(_string_values(parsed))
    return "\n".join(pieces)


def _string_values(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _string_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _string_values(item)


def _observation_text(message: Message) -> str | None:
    """Text standing for observations: tool results, and summaries inserted by a compactor."""
    text = _content_text(message.get("content"))
    if message.get("role") == "tool" or text.startswith(SUMMARY_PREFIX):
        return text
    return None


# ---------------------------------------------------------------------------------------------
# Violations
# ---------------------------------------------------------------------------------------------


def violations(prompt: Sequence[Message]) -> int:
    """Broken tool pairs in a prompt: orphan results, or calls unanswered before the next assistant."""
    broken = 0
    pending: set[str] = set()
    for message in prompt:
        role = message.get("role")
        if role == "assistant":
            broken += len(pending)
            pending = {call.get("id") for call in message.get("tool_calls") or ()}
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if call_id in pending:
                pending.discard(call_id)
            else:
                broken += 1
    return broken + len(pending)


# ---------------------------------------------------------------------------------------------
# Reference policies (the README's baselines, independent of tokenpilot)
# ---------------------------------------------------------------------------------------------


class Policy:
    """A compactor over one run: `step(prompt) -> compacted prompt`, state kept between steps."""

    name = "policy"

    def step(self, prompt: list[Message]) -> list[Message]:
        raise NotImplementedError


class NoPolicy(Policy):
    name = "none"

    def step(self, prompt: list[Message]) -> list[Message]:
        return prompt


class Mask(Policy):
    """The last `keep` tool results verbatim, older ones a one-line placeholder, at every step."""

    def __init__(self, keep: int = 10) -> None:
        self.name = f"mask{keep}"
        self.keep = keep
        self._masked: dict[int, Message] = {}

    def step(self, prompt: list[Message]) -> list[Message]:
        tool_positions = [i for i, m in enumerate(prompt) if m.get("role") == "tool"]
        old = set(tool_positions[: max(0, len(tool_positions) - self.keep)])
        out = []
        for i, message in enumerate(prompt):
            if i in old:
                masked = self._masked.get(i)
                if masked is None:
                    masked = {**message, "content": "[Old tool output omitted for brevity]"}
                    self._masked[i] = masked
                out.append(masked)
            else:
                out.append(message)
        return out


class Window(Policy):
    """System + task + the most recent messages that fit, starting at a safe (non-tool) message."""

    def __init__(self, budget: int, counter: Counter) -> None:
        self.name = f"window{budget // 1000}k"
        self.budget = budget
        self.counter = counter

    def step(self, prompt: list[Message]) -> list[Message]:
        head = prompt[:2]
        used = sum(self.counter.tokens(m) for m in head)
        total = used + sum(self.counter.tokens(m) for m in prompt[2:])
        if total <= self.budget:
            return prompt
        start = len(prompt)
        for i in range(len(prompt) - 1, 1, -1):
            used += self.counter.tokens(prompt[i])
            if used > self.budget:
                break
            if prompt[i].get("role") != "tool":
                start = i
        return head + prompt[start:]


# ---------------------------------------------------------------------------------------------
# tokenpilot presets
# ---------------------------------------------------------------------------------------------


class Preset(Policy):
    """A tokenpilot preset through its stateful `Compactor`, priced for one billing profile."""

    def __init__(
        self, preset: str, budget: int, profile: str, overrides: dict[str, Any] | None = None
    ) -> None:
        model = PROFILE_MODELS[profile]
        if model is None:
            pricing = Pricing(input=1.0, cache_read=1.0, cache_write=1.0, min_cached_prefix=0)
        else:
            pricing = Pricing.for_model(model)
        self.name = preset
        # The compactor counts with o200k_base (gpt-4o) so that its budget is the benchmark's.
        self._compactor = Compactor(
            model="gpt-4o",
            budget=budget,
            policy=preset,
            pricing=pricing,
            provider="openai",
            **(overrides or {}),
        )

    def step(self, prompt: list[Message]) -> list[Message]:
        return self._compactor.step(prompt)


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------


@dataclass
class RunStats:
    billed: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PROFILES, 0.0))
    prompt_tokens: list[int] = field(default_factory=list)
    over_budget: int = 0
    violations: int = 0
    retention: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    seconds_100: list[float] = field(default_factory=list)  # steps whose history has 95-105 messages


def _observation_identifiers(messages: Sequence[Message]) -> list[set[str] | None]:
    """For each step t (assistant message index), S_t as defined by the README."""
    fixed = _content_text(messages[0].get("content")) + "\n" + _content_text(messages[1].get("content"))
    seen_tool_text: list[str] = []
    out: list[set[str] | None] = []
    for message in messages:
        if message.get("role") == "assistant":
            candidates = salient(_assistant_text(message))
            joined = "\n".join(seen_tool_text)
            out.append({s for s in candidates if s not in fixed and s in joined} or None)
        elif message.get("role") == "tool":
            seen_tool_text.append(_content_text(message.get("content")))
    return out


def replay_run(
    messages: list[Message], make_policy: Callable[[Counter], Policy], budget: int | None, profile: str | None
) -> RunStats:
    """Replay one run under one policy. `profile` None bills all three profiles."""
    counter = Counter()
    policy = make_policy(counter)
    stats = RunStats()
    targets = _observation_identifiers(messages)
    previous: list[Message] = []
    previous_tokens: list[int] = []
    step = 0
    profiles = list(PROFILES) if profile is None else [profile]
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        prompt = messages[:index]
        # CPU time of the step: the machine is shared, wall time mostly measures the neighbours.
        started = time.thread_time()
        compacted = policy.step(list(prompt))
        stats.seconds.append(time.thread_time() - started)
        if 95 <= len(prompt) <= 105:
            stats.seconds_100.append(stats.seconds[-1])
        tokens = [counter.tokens(m) for m in compacted]
        total = sum(tokens)
        common_tokens = 0
        for a, b, n in zip(previous, compacted, tokens, strict=False):
            if not _equal(a, b):
                break
            common_tokens += n
        for name in profiles:
            read, write, min_prefix = PROFILES[name]
            cached = common_tokens if common_tokens >= min_prefix else 0
            stats.billed[name] += cached * read + (total - cached) * write
        stats.prompt_tokens.append(total)
        if budget is not None and total > budget:
            stats.over_budget += 1
        stats.violations += 1 if violations(compacted) else 0
        wanted = targets[step]
        if wanted:
            texts = [t for t in map(_observation_text, compacted) if t is not None]
            kept = sum(1 for s in wanted if any(s in t for t in texts))
            stats.retention.append(kept / len(wanted))
        previous, previous_tokens = compacted, tokens
        step += 1
    del previous_tokens
    return stats


def load_runs(path: Path, limit: int | None) -> list[list[Message]]:
    runs = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if limit is not None and len(runs) >= limit:
                break
            runs.append(json.loads(line)["messages"])
    return runs


BASELINES = ("none", "mask10", "window32k")
PRESETS = ("default", "aggressive", "mask-only", "window-only")


OVERRIDES: dict[str, Any] = {}


def _policy_factory(name: str, budget: int, profile: str | None) -> Callable[[Counter], Policy]:
    if name == "none":
        return lambda counter: NoPolicy()
    if name == "mask10":
        return lambda counter: Mask(10)
    if name == "window32k":
        return lambda counter: Window(32_000, counter)
    assert profile is not None
    return lambda counter: Preset(name, budget, profile, OVERRIDES)


def _job(
    args: tuple[str, str, str | None, list[list[Message]], dict[str, Any]],
) -> tuple[str, str, str | None, list[RunStats]]:
    name, scenario, profile, runs, overrides = args
    OVERRIDES.clear()
    OVERRIDES.update(overrides)
    budget = SCENARIOS[scenario]
    factory = _policy_factory(name, budget, profile)
    return name, scenario, profile, [replay_run(run, factory, budget, profile) for run in runs]


def _summarise(stats: list[RunStats], profiles: Sequence[str]) -> dict[str, Any]:
    prompts = [t for s in stats for t in s.prompt_tokens]
    retention = [r for s in stats for r in s.retention]
    seconds = [x for s in stats for x in s.seconds]
    seconds_100 = [x for s in stats for x in s.seconds_100]
    return {
        "billed": {p: round(sum(s.billed[p] for s in stats)) for p in profiles},
        "peak": max(prompts),
        "mean": round(statistics.fmean(prompts), 1),
        "steps": len(prompts),
        "over_budget": sum(s.over_budget for s in stats),
        "violations": sum(s.violations for s in stats),
        "retention": round(statistics.fmean(retention), 4) if retention else None,
        "median_step_ms": round(statistics.median(seconds) * 1000, 3),
        "median_step_ms_100": round(statistics.median(seconds_100) * 1000, 3) if seconds_100 else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="?", type=Path, default=None, help="trajectories .jsonl.gz")
    parser.add_argument("--limit", type=int, default=None, help="only the first N runs")
    parser.add_argument(
        "--shard", default=None, metavar="I/N", help="only runs I, I+N, I+2N, ... (a split check)"
    )
    parser.add_argument("--policies", default=",".join(BASELINES + PRESETS))
    parser.add_argument("--scenarios", default="128k,32k")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--profiles", default=",".join(PROFILES), help="profiles the presets are run under")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for replay.json / replay.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset threshold (experiments)",
    )
    args = parser.parse_args(argv)
    data = args.data or (DEFAULT_DATA if DEFAULT_DATA.exists() else FALLBACK_DATA)
    runs = load_runs(data, args.limit)
    if args.shard:
        index, count = (int(x) for x in args.shard.split("/"))
        runs = runs[index::count]
    names = [n for n in args.policies.split(",") if n]
    scenarios = [s for s in args.scenarios.split(",") if s]
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    jobs: list[tuple[str, str, str | None, list[list[Message]], dict[str, Any]]] = []
    chunks = max(1, args.jobs * 2)
    for scenario in scenarios:
        for name in names:
            if name in BASELINES:
                if scenario == "32k" and name == "mask10":
                    continue  # the 32k scenario compares against window32k (and none)
                for i in range(chunks):
                    jobs.append((name, scenario, None, runs[i::chunks], overrides))
            else:
                for profile in [p for p in args.profiles.split(",") if p]:
                    for i in range(chunks):
                        jobs.append((name, scenario, profile, runs[i::chunks], overrides))
    started = time.perf_counter()
    merged: dict[tuple[str, str, str | None], list[RunStats]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name, scenario, profile, stats in pool.map(_job, jobs):
            merged.setdefault((name, scenario, profile), []).extend(stats)
    elapsed = time.perf_counter() - started
    results = _assemble(merged, names, scenarios, len(runs))
    results["seconds"] = round(elapsed, 1)
    results["data"] = str(data.name)
    markdown = render_markdown(results)
    sys.stdout.write(markdown)
    for scenario, block in results["scenarios"].items():
        for name, row in block["policies"].items():
            for profile, sub in row.get("by_profile", {}).items():
                sys.stderr.write(
                    f"{scenario} {name} {profile}: billed {sub['billed'][profile] / 1e6:.2f}M "
                    f"retention {sub['retention']} peak {sub['peak']} over {sub['over_budget']} "
                    f"violations {sub['violations']}\n"
                )
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "replay.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        (args.out / "replay.md").write_text(markdown, encoding="utf-8")
    return 0


def _assemble(
    merged: dict[tuple[str, str, str | None], list[RunStats]],
    names: Sequence[str],
    scenarios: Sequence[str],
    n_runs: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": n_runs, "scenarios": {}}
    for scenario in scenarios:
        rows: dict[str, Any] = {}
        for name in names:
            if (name, scenario, None) in merged:
                rows[name] = _summarise(merged[(name, scenario, None)], list(PROFILES))
                continue
            per_profile = {}
            for profile in PROFILES:
                if (name, scenario, profile) in merged:
                    per_profile[profile] = _summarise(merged[(name, scenario, profile)], [profile])
            if per_profile:
                rows[name] = {
                    "billed": {p: v["billed"][p] for p, v in per_profile.items()},
                    "by_profile": per_profile,
                    # Peak / retention / violations: the worst over the three priced runs.
                    "peak": max(v["peak"] for v in per_profile.values()),
                    "mean": max(v["mean"] for v in per_profile.values()),
                    "over_budget": sum(v["over_budget"] for v in per_profile.values()),
                    "violations": sum(v["violations"] for v in per_profile.values()),
                    "retention": min(v["retention"] for v in per_profile.values()),
                    "median_step_ms": max(v["median_step_ms"] for v in per_profile.values()),
                    "median_step_ms_100": max(v["median_step_ms_100"] or 0 for v in per_profile.values()),
                }
        out["scenarios"][scenario] = {"budget": SCENARIOS[scenario], "policies": rows}
    return out


def _profile_value(row: dict[str, Any], profile: str, key: str) -> Any:
    source = row["by_profile"][profile] if "by_profile" in row else row
    return source["billed"][profile] if key == "billed" else source[key]


def check_goals(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The issue's goals for `default`, evaluated on these results (those whose rows are present)."""
    goals: list[tuple[str, str, bool]] = []
    scenarios = results["scenarios"]
    for scenario, block in scenarios.items():
        for name, row in block["policies"].items():
            if name in PRESETS:
                goals.append(
                    (
                        f"{scenario} `{name}`: 0 steps over budget",
                        str(row["over_budget"]),
                        row["over_budget"] == 0,
                    )
                )
        bad = {name: row["violations"] for name, row in block["policies"].items() if row["violations"]}
        goals.append((f"{scenario}: 0 violations for every policy", str(sum(bad.values())), not bad))
    wide = scenarios.get("128k", {}).get("policies", {})
    if "default" in wide and "none" in wide:
        d, n = wide["default"], wide["none"]
        for profile, limit in (("anthropic", 0.60), ("openai", 0.50), ("nocache", 0.40)):
            share = _profile_value(d, profile, "billed") / n["billed"][profile]
            goals.append(
                (f"128k `default` {profile} <= {limit:.0%} of `none`", f"{share:.1%}", share <= limit)
            )
        worst = min(d["by_profile"][p]["retention"] for p in d["by_profile"])
        goals.append(("128k `default` retention >= 0.97 (worst profile)", f"{worst:.3f}", worst >= 0.97))
    tight = scenarios.get("32k", {}).get("policies", {})
    if "default" in tight and "window32k" in tight:
        d, w = tight["default"], tight["window32k"]
        share = _profile_value(d, "anthropic", "billed") / w["billed"]["anthropic"]
        goals.append(("32k `default` anthropic <= 70% of `window32k`", f"{share:.1%}", share <= 0.70))
        kept = _profile_value(d, "anthropic", "retention")
        ref = w["retention"] - 0.02
        goals.append(
            (
                f"32k `default` (anthropic) retention >= `window32k` - 0.02 ({ref:.3f})",
                f"{kept:.3f}",
                kept >= ref,
            )
        )
        ms = d.get("median_step_ms_100")
        if ms is not None:
            goals.append(("`default` median CPU ms per step, ~100-message histories <= 5", f"{ms}", ms <= 5))
    return goals


def _m(value: float) -> str:
    return f"{value / 1e6:.1f}M"


def render_markdown(results: dict[str, Any]) -> str:
    lines = [f"# compact replay ({results['runs']} runs, {results.get('data', '')})", ""]
    for scenario, block in results["scenarios"].items():
        rows = block["policies"]
        reference = rows.get("none") if scenario == "128k" else rows.get("window32k")
        ref_name = "none" if scenario == "128k" else "window32k"
        lines += [
            f"## {scenario} ({'window' if scenario == '128k' else 'budget'} {block['budget']:,};"
            f" % vs `{ref_name}`)",
            "",
            "| policy | nocache | anthropic | openai | peak | mean | over budget | violations"
            " | retention | CPU ms/step (median) | CPU ms/step, ~100 messages |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            cells = []
            for profile in PROFILES:
                value = row["billed"].get(profile)
                if value is None:
                    cells.append("")
                    continue
                cell = _m(value)
                if reference is not None and name != ref_name and reference["billed"].get(profile):
                    cell += f" ({value / reference['billed'][profile] * 100:.0f}%)"
                cells.append(cell)
            retention = "" if row["retention"] is None else f"{row['retention']:.3f}"
            if "by_profile" in row:  # each priced run keeps its own retention
                retention = " / ".join(
                    f"{row['by_profile'][p]['retention']:.3f}" for p in PROFILES if p in row["by_profile"]
                )
            lines.append(
                f"| `{name}` | {' | '.join(cells)} | {row['peak']:,} | {row['mean']:,.0f} | "
                f"{row['over_budget']} | {row['violations']} | {retention} | {row['median_step_ms']} | "
                f"{row.get('median_step_ms_100')} |"
            )
        lines.append("")
    lines.append(
        "Presets are billed under each profile with that profile's prices (anthropic: "
        f"{PROFILE_MODELS['anthropic']}, openai: {PROFILE_MODELS['openai']}, nocache: all 1.0); "
        "their retention is given per priced run (nocache / anthropic / openai), their peak and mean "
        "are the largest of the three runs."
    )
    goals = check_goals(results)
    if goals:
        lines += ["", "## Goals (dev data)", "", "| goal | value | met |", "|---|---:|:---:|"]
        lines += [f"| {g} | {v} | {'yes' if ok else '**no**'} |" for g, v, ok in goals]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
