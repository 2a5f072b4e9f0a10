"""Hand-off benchmark: each dev run handed off at its midpoint within 8k tokens, against a plain window.

For each run of `../shared/bench/trajectories_dev.jsonl.gz` the prompt at the middle step (every
message before the middle assistant message) is reduced to 8,000 tokens (o200k_base) two ways:

- `handoff`: `tp.handoff(prompt, budget=8000, model="gpt-4o")`;
- `window`: system + task + the most recent messages that fit 8,000, cut at safe points (the
  README's window baseline, `bench/replay.py`'s `Window`).

Retention follows the README's definition of salient identifiers (`bench/replay.py`'s `salient`):
for each later step t (assistant message t of the second half), S_t = the identifiers of
assistant message t (text and tool-call arguments) that occur in a tool result of the first half
and not in the system prompt or the first user message; retention_t = the share of S_t that
occurs in a tool result or a summary (the hand-off message) of the reduced prompt. Steps with an
empty S_t are skipped. Reported: the mean over steps (pooled over runs) and the mean of the
per-run means, for both, and their ratio. `--replay` also reports the README's replay form: the
prompt at step t is the reduced midpoint prompt plus every message after it, and S_t counts tool
results of the second half too.

Both reduced prompts are also counted with the README's rule (4 tokens per message and per tool
call) and must be at most 8,000 there.

Usage:
    .venv/bin/python bench/handoff.py                      # all 195 runs, writes bench/results/handoff.json
    .venv/bin/python bench/handoff.py --limit 40
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tokenpilot as tp
from replay import (
    DEFAULT_DATA,
    FALLBACK_DATA,
    RESULTS,
    Counter,
    Window,
    _assistant_text,
    _content_text,
    load_runs,
    salient,
    violations,
)

BUDGET = 8_000
MODEL = "gpt-4o"
OBSERVATION_PREFIXES = ("[tokenpilot summary", "[tokenpilot handoff")

Message = dict[str, Any]


def observation_texts(prompt: list[Message]) -> list[str]:
    """Tool results and summaries / hand-offs standing for them."""
    texts = []
    for message in prompt:
        text = _content_text(message.get("content"))
        if message.get("role") == "tool" or text.startswith(OBSERVATION_PREFIXES):
            texts.append(text)
    return texts


def steps_of(messages: list[Message]) -> list[int]:
    return [i for i, m in enumerate(messages) if m.get("role") == "assistant"]


def retention(messages: list[Message], mid: int, reduced: list[Message], replay: bool) -> list[float]:
    """Per later step, the share of its salient identifiers the reduced prompt still holds."""
    fixed = _content_text(messages[0].get("content")) + "\n" + _content_text(messages[1].get("content"))
    first_half = "\n".join(_content_text(m.get("content")) for m in messages[:mid] if m.get("role") == "tool")
    kept_texts = observation_texts(reduced)
    shares = []
    later_tool: list[str] = []
    for index in range(mid, len(messages)):
        message = messages[index]
        if message.get("role") == "tool":
            later_tool.append(_content_text(message.get("content")))
            continue
        if message.get("role") != "assistant":
            continue
        seen = first_half + ("\n" + "\n".join(later_tool) if replay else "")
        wanted = {s for s in salient(_assistant_text(message)) if s not in fixed and s in seen}
        if not wanted:
            continue
        texts = kept_texts + (later_tool if replay else [])
        kept = sum(1 for s in wanted if any(s in t for t in texts))
        shares.append(kept / len(wanted))
    return shares


def run_one(messages: list[Message], replay: bool) -> dict[str, Any]:
    steps = steps_of(messages)
    mid = steps[len(steps) // 2]
    prompt = messages[:mid]
    counter = Counter()
    started = time.perf_counter()
    result = tp.handoff(prompt, budget=BUDGET, model=MODEL)
    seconds = time.perf_counter() - started
    window = Window(BUDGET, counter).step(list(prompt))
    handed = list(result.messages)
    return {
        "handoff": retention(messages, mid, handed, replay),
        "window": retention(messages, mid, window, replay),
        "handoff_tokens": result.tokens,
        "handoff_readme_tokens": sum(counter.tokens(m) for m in handed),
        "window_readme_tokens": sum(counter.tokens(m) for m in window),
        "prompt_readme_tokens": sum(counter.tokens(m) for m in prompt),
        "valid": not tp.validate(handed) and not violations(handed),
        "seconds": seconds,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("handoff", "window"):
        pooled = [s for r in rows for s in r[name]]
        per_run = [statistics.fmean(r[name]) for r in rows if r[name]]
        out[name] = {
            "mean_over_steps": round(statistics.fmean(pooled), 4) if pooled else None,
            "mean_over_runs": round(statistics.fmean(per_run), 4) if per_run else None,
            "steps": len(pooled),
        }
    h, w = out["handoff"]["mean_over_steps"], out["window"]["mean_over_steps"]
    out["ratio_over_steps"] = round(h / w, 3) if h and w else None
    h, w = out["handoff"]["mean_over_runs"], out["window"]["mean_over_runs"]
    out["ratio_over_runs"] = round(h / w, 3) if h and w else None
    # The other side of the same numbers: how many more references the window loses.
    h, w = out["handoff"]["mean_over_steps"], out["window"]["mean_over_steps"]
    out["lost_handoff"] = round(1 - h, 4) if h is not None else None
    out["lost_window"] = round(1 - w, 4) if w is not None else None
    out["lost_ratio_window_to_handoff"] = (
        round((1 - w) / (1 - h), 2) if h is not None and w is not None and h < 1 else None
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--replay", action="store_true", help="also the replay form of the measure")
    parser.add_argument("--out", type=Path, default=RESULTS / "handoff.json")
    args = parser.parse_args()
    data = args.data or (DEFAULT_DATA if DEFAULT_DATA.exists() else FALLBACK_DATA)
    runs = load_runs(data, args.limit)
    started = time.perf_counter()
    rows = [run_one(m, replay=False) for m in runs]
    result: dict[str, Any] = {
        "command": "python bench/handoff.py " + " ".join(sys.argv[1:]),
        "data": str(data),
        "runs": len(rows),
        "budget": BUDGET,
        "tokenizer": "o200k_base",
        "retention_first_half": summarise(rows),
        "max_handoff_readme_tokens": max(r["handoff_readme_tokens"] for r in rows),
        "max_window_readme_tokens": max(r["window_readme_tokens"] for r in rows),
        "median_prompt_readme_tokens": statistics.median(r["prompt_readme_tokens"] for r in rows),
        "invalid": sum(1 for r in rows if not r["valid"]),
        "median_handoff_seconds": round(statistics.median(r["seconds"] for r in rows), 4),
    }
    if args.replay:
        result["retention_replay"] = summarise([run_one(m, replay=True) for m in runs])
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
