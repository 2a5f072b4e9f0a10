"""Replay agent runs through optimize mode as an agent would send them, observe vs optimize.

Call t of a run sends the run's messages before its t-th assistant message (the agent keeps its
own full history); the fake upstream answers with that recorded assistant message and bills what
it received with the prompt-cache model of `../shared/bench/README.md`: the longest common
message prefix with the previous call of the same session is a cache read (cache_control markers
ignored: they do not change the cached content), the rest a write; o200k_base, 4 tokens per
message and per tool call. Each profile is replayed with the API and model an agent paying those
prices would use:

- `nocache`: OpenAI Chat, a model priced 1.0 per token with no cache discount (set through the
  registry's environment overrides);
- `anthropic`: Anthropic Messages (the run converted: top-level system, tool_use / tool_result
  blocks), claude-sonnet-4-5;
- `openai`: OpenAI Chat, gpt-4o.

All three with a 128k window. `observe` forwards the body unchanged; `optimize` sends what
`Optimizer.rewrite` returns. Transport: `--transport direct` calls `Optimizer.rewrite` in-process
(the proxy's optimize step, without its HTTP layer).

Usage:
    .venv/bin/python bench/proxy_replay.py --limit 30
    .venv/bin/python bench/proxy_replay.py                    # all dev runs; writes bench/results/
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import replay

WINDOW = 128_000
MODELS = {"nocache": "bench-nocache", "anthropic": "claude-sonnet-4-5", "openai": "gpt-4o"}
APIS = {"nocache": "openai_chat", "anthropic": "anthropic_messages", "openai": "openai_chat"}
RESULTS = replay.RESULTS
ENV = {
    "TOKENPILOT_MODEL_INPUT_PRICE_BENCH_NOCACHE": "1.0",
    "TOKENPILOT_MODEL_CACHE_READ_PRICE_BENCH_NOCACHE": "1.0",
    "TOKENPILOT_MODEL_CACHE_WRITE_PRICE_BENCH_NOCACHE": "1.0",
    "TOKENPILOT_MODEL_TOKENIZER_BENCH_NOCACHE": "o200k_base",
    "TOKENPILOT_MODEL_LIMIT_BENCH_NOCACHE": str(WINDOW),
    "TOKENPILOT_MODEL_LIMIT_CLAUDE_SONNET_4_5": str(WINDOW),
    "TOKENPILOT_MODEL_LIMIT_GPT_4O": str(WINDOW),
}


# ---------------------------------------------------------------------------------------------
# The agent's requests
# ---------------------------------------------------------------------------------------------


def to_anthropic(messages: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], list[int]]:
    """An OpenAI Chat run as an Anthropic body, and for each OpenAI index the number of Anthropic
    messages before it (tool results of one turn go in one user message)."""
    system = replay._content_text(messages[0].get("content"))
    out: list[dict[str, Any]] = []
    position: list[int] = []
    for message in messages[1:]:
        position.append(len(out))
        role = message.get("role")
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": replay._content_text(message.get("content")),
            }
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
                position[-1] = len(out) - 1
            else:
                out.append({"role": "user", "content": [block]})
            continue
        if role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = replay._content_text(message.get("content"))
            if text:
                blocks.append({"type": "text", "text": text})
            for call in message.get("tool_calls") or ():
                function = call.get("function", {})
                try:
                    arguments = json.loads(function.get("arguments") or "{}")
                except ValueError:
                    arguments = {"arguments": function.get("arguments")}
                blocks.append(
                    {"type": "tool_use", "id": call["id"], "name": function.get("name"), "input": arguments}
                )
            out.append({"role": "assistant", "content": blocks or [{"type": "text", "text": "..."}]})
            continue
        out.append({"role": "user", "content": replay._content_text(message.get("content"))})
    return {"system": system, "messages": out}, [0, *position]


@dataclass
class Unit:
    """One billed message of what the upstream received: its tokens and its text for retention."""

    key: str
    tokens: int
    observation: str | None


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def units_of(api: str, body: dict[str, Any]) -> list[Unit]:
    """What the upstream received, message by message, counted by the bench's rule."""
    enc = replay._ENC
    out: list[Unit] = []
    if api == "openai_chat":
        for message in body["messages"]:
            text = replay._content_text(message.get("content"))
            tokens = replay.OVERHEAD + enc.count(text)
            for call in message.get("tool_calls") or ():
                function = call.get("function", {})
                tokens += replay.OVERHEAD + enc.count(str(function.get("name", "")))
                tokens += enc.count(str(function.get("arguments", "")))
            out.append(Unit(json.dumps(message, sort_keys=True), tokens, replay._observation_text(message)))
        return out
    system = body.get("system")
    system_text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system or ())
    out.append(Unit(json.dumps(system_text), replay.OVERHEAD + enc.count(system_text), None))
    for message in body["messages"]:
        key = json.dumps(_strip_cache_control(message), sort_keys=True)
        content = message.get("content")
        if isinstance(content, str):
            observation = content if content.startswith(replay.SUMMARY_PREFIX) else None
            out.append(Unit(key, replay.OVERHEAD + enc.count(content), observation))
            continue
        tokens = 0
        texts: list[str] = []
        observations: list[str] = []
        for block in content:
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text", ""))
            elif kind == "tool_use":
                arguments = json.dumps(block.get("input", {}), ensure_ascii=False)
                tokens += replay.OVERHEAD + enc.count(str(block.get("name", ""))) + enc.count(arguments)
            elif kind == "tool_result":
                result = block.get("content")
                text = result if isinstance(result, str) else replay._content_text(result)
                tokens += replay.OVERHEAD + enc.count(text)  # a tool message of its own in the bench
                observations.append(text)
        text = "".join(texts)
        if texts or not observations:
            tokens += replay.OVERHEAD + enc.count(text)
        if text.startswith(replay.SUMMARY_PREFIX):
            observations.append(text)
        out.append(Unit(key, tokens, "\n".join(observations) if observations else None))
    return out


# ---------------------------------------------------------------------------------------------
# Replay
# ---------------------------------------------------------------------------------------------


@dataclass
class Stats:
    billed: float = 0.0
    prompts: list[int] = field(default_factory=list)
    retention: list[float] = field(default_factory=list)
    invalid: int = 0
    loops: int = 0
    given_up: int = 0
    skipped: int = 0
    seconds: list[float] = field(default_factory=list)
    seconds_100: list[float] = field(default_factory=list)
    round_trips: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # CPU time of the rewrite (the machine is shared)
    cpu_100: list[float] = field(default_factory=list)


class Direct:
    """The optimize step in-process: `Optimizer.rewrite`, timed."""

    timing = "optimize"
    cpu = 0.0

    def __init__(self, mode: str) -> None:
        from tokenpilot._serve.optimize import Optimizer, OptimizeSettings

        self.optimizer = Optimizer(OptimizeSettings()) if mode == "optimize" else None

    def send(
        self, api: str, body: dict[str, Any], session: str, reply: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[str, ...], float | None]:
        if self.optimizer is None:
            return body, (), None
        started, cpu = time.perf_counter(), time.thread_time()
        result = self.optimizer.rewrite(api, body, model=body["model"], session_key=session, headers={})
        self.cpu = time.thread_time() - cpu
        return result.body, result.actions, time.perf_counter() - started

    def given_up(self) -> int:
        if self.optimizer is None:
            return 0
        return sum(1 for slot in self.optimizer.sessions._slots.values() if slot.value.given_up)


def replay_run(
    messages: list[dict[str, Any]], profile: str, transport: Any, run_id: int, stats: Stats | None = None
) -> Stats:
    from tokenpilot._compact import validate

    api, model = APIS[profile], MODELS[profile]
    read, write, min_prefix = replay.PROFILES[profile]
    targets = replay._observation_identifiers(messages)
    if api == "anthropic_messages":
        full, position = to_anthropic(messages)
    stats = stats or Stats()
    previous: list[Unit] = []
    step = 0
    last_forced = False
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        if api == "anthropic_messages":
            body: dict[str, Any] = {
                "model": model,
                "max_tokens": 4096,
                "system": full["system"],
                "messages": full["messages"][: position[index]],
            }
            n_messages = position[index]
            reply = full["messages"][position[index]]
        else:
            body = {"model": model, "messages": messages[:index]}
            n_messages = index
            reply = message
        body = copy.deepcopy(body)  # fresh JSON each call, as a proxy parses it
        sent, actions, elapsed = transport.send(api, body, f"run-{run_id}-{profile}", reply)
        if elapsed is not None and transport.timing == "round_trip":
            stats.round_trips.append(elapsed)
        elif elapsed is not None:
            stats.seconds.append(elapsed)
            stats.cpu.append(transport.cpu)
            if 95 <= n_messages <= 105:
                stats.seconds_100.append(elapsed)
                stats.cpu_100.append(transport.cpu)
        forced = any(a.startswith("compact_window") for a in actions)
        stats.loops += 1 if forced and last_forced else 0
        last_forced = forced
        stats.skipped += 1 if "invalid_rewrite_skipped" in actions else 0
        provider = "anthropic" if api == "anthropic_messages" else "openai"
        if validate(sent, provider) or (provider == "openai" and replay.violations(sent["messages"])):
            stats.invalid += 1
        units = units_of(api, sent)
        total = sum(u.tokens for u in units)
        common = 0
        for a, b in zip(previous, units, strict=False):
            if a.key != b.key:
                break
            common += b.tokens
        cached = common if common >= min_prefix else 0
        stats.billed += cached * read + (total - cached) * write
        stats.prompts.append(total)
        wanted = targets[step]
        if wanted:
            texts = [u.observation for u in units if u.observation is not None]
            stats.retention.append(sum(1 for s in wanted if any(s in t for t in texts)) / len(wanted))
        previous = units
        step += 1
    return stats


def _job(args: tuple[str, str, list[tuple[int, list[dict[str, Any]]]]]) -> tuple[str, str, list[Stats]]:
    profile, mode, runs = args
    os.environ.update(ENV)
    out = []
    for i, run in runs:
        transport = Direct(mode)
        stats = replay_run(run, profile, transport, i)
        stats.given_up += transport.given_up()
        out.append(stats)
    return profile, mode, out


def _http_job(
    profiles: Sequence[str], runs: list[tuple[int, list[dict[str, Any]]]]
) -> dict[tuple[str, str], list[Stats]]:
    """Every run through two real proxies (`tokenpilot serve --mode observe` and `--mode
    optimize`, subprocesses) in front of one fake upstream (in this process)."""
    from http_upstream import ProxyProcess, RecordingUpstream

    merged: dict[tuple[str, str], list[Stats]] = {}
    with RecordingUpstream() as upstream:
        for mode in ("observe", "optimize"):
            with ProxyProcess(mode, upstream.base_url, ENV) as proxy:
                for profile in profiles:
                    for i, run in runs:
                        transport = proxy.transport(upstream)
                        stats = replay_run(run, profile, transport, i)
                        merged.setdefault((profile, mode), []).append(stats)
                calls = proxy.actions()
            # A loop: a forced compaction (window) on two calls of a session in a row.
            last: dict[str, bool] = {}
            loops = 0
            for session, actions in calls:
                forced = "compact_window" in actions
                loops += 1 if forced and last.get(session) else 0
                last[session] = forced
            merged[(profiles[0], mode)][0].loops += loops
    return merged


def _ms(values: Sequence[float]) -> float | None:
    return round(statistics.median(values) * 1000, 2) if values else None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="?", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--profiles", default="nocache,anthropic,openai")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument(
        "--transport",
        choices=("direct", "http"),
        default="direct",
        help="direct: Optimizer.rewrite in-process; http: through real `tokenpilot serve` processes",
    )
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    os.environ.update(ENV)
    data = args.data or (replay.DEFAULT_DATA if replay.DEFAULT_DATA.exists() else replay.FALLBACK_DATA)
    runs = list(enumerate(replay.load_runs(data, args.limit)))
    chunks = max(1, args.jobs * 2)
    jobs = [
        (profile, mode, runs[i::chunks])
        for profile in args.profiles.split(",")
        for mode in ("observe", "optimize")
        for i in range(chunks)
    ]
    merged: dict[tuple[str, str], list[Stats]] = {}
    started = time.perf_counter()
    if args.transport == "http":
        merged = _http_job(args.profiles.split(","), runs)
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for profile, mode, stats in pool.map(_job, jobs):
                merged.setdefault((profile, mode), []).extend(stats)
    rows: dict[str, Any] = {}
    for (profile, mode), stats in merged.items():
        rows.setdefault(profile, {})[mode] = {
            "billed": round(sum(s.billed for s in stats)),
            "peak": max(p for s in stats for p in s.prompts),
            "retention": round(statistics.fmean(r for s in stats for r in s.retention), 4),
            "invalid": sum(s.invalid for s in stats),
            "loops": sum(s.loops for s in stats),
            "given_up": sum(s.given_up for s in stats),
            "skipped": sum(s.skipped for s in stats),
            "ms_p50": _ms([x for s in stats for x in s.seconds]),
            "ms_p50_100": _ms([x for s in stats for x in s.seconds_100]),
            "round_trip_ms_p50": _ms([x for s in stats for x in s.round_trips]),
            "cpu_ms_p50": _ms([x for s in stats for x in s.cpu]),
            "cpu_ms_p50_100": _ms([x for s in stats for x in s.cpu_100]),
        }
    results = {
        "runs": len(runs),
        "data": data.name,
        "transport": args.transport,
        "seconds": round(time.perf_counter() - started, 1),
        "load": round(os.getloadavg()[0], 1),
        "profiles": rows,
    }
    markdown = render(results)
    sys.stdout.write(markdown)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        name = "proxy_replay" if args.transport == "direct" else "proxy_replay_http"
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        (RESULTS / f"{name}.md").write_text(markdown, encoding="utf-8")
    return 0


GOALS = {"nocache": 0.40, "anthropic": 0.60, "openai": 0.50}


def render(results: dict[str, Any]) -> str:
    http = results["transport"] == "http"
    head = (
        "| profile (api, model) | observe billed | optimize billed | share | goal | peak observe / optimize"
        " | retention optimize | invalid | loops |"
    )
    head += (
        " round trip ms p50 observe / optimize |"
        if http
        else " given up | rewrite ms p50 (CPU / wall) | same, ~100 messages |"
    )
    lines = [
        f"# proxy replay ({results['runs']} runs, {results['data']}, 128k window, "
        f"transport: {results['transport']})",
        "",
        head,
        "|---|" + "---:|" * (head.count("|") - 2),
    ]
    for profile, modes in results["profiles"].items():
        o, p = modes.get("observe"), modes.get("optimize")
        if not o or not p:
            continue
        share = p["billed"] / o["billed"]
        row = (
            f"| {profile} ({APIS[profile]}, {MODELS[profile]}) | {o['billed'] / 1e6:.2f}M | "
            f"{p['billed'] / 1e6:.2f}M | {share:.1%} | <= {GOALS[profile]:.0%} "
            f"{'yes' if share <= GOALS[profile] else '**no**'} | {o['peak']:,} / {p['peak']:,} | "
            f"{p['retention']:.3f} | {p['invalid'] + o['invalid']} | {p['loops']} |"
        )
        if http:
            row += f" {o['round_trip_ms_p50']} / {p['round_trip_ms_p50']} |"
        else:
            row += (
                f" {p['given_up']} | {p['cpu_ms_p50']} / {p['ms_p50']} | "
                f"{p['cpu_ms_p50_100']} / {p['ms_p50_100']} |"
            )
        lines.append(row)
    lines += [
        "",
        f"({results['seconds']} s; load average {results.get('load', '?')} on 2 shared cores: wall times"
        " are inflated by the other processes, CPU time is the rewrite's own cost.)",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
