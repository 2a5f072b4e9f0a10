"""The compaction steps. Each is a pure function from (entries, context) to (entries, actions).

An entry is a message with the position it had in the input (`origin`, -1 for one tokenpilot
inserted), so every action can say which input messages it touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenpilot._compact._clamp import MARKER_PREFIX, head_tail, reduce_output, spill_marker
from tokenpilot._compact._count import MessageCounter
from tokenpilot._compact._names import INDEX_LABEL, name_index
from tokenpilot._compact._report import Action
from tokenpilot._messages import Block, Message, Text, ToolCall, ToolResult

SUMMARY_PREFIX = "[tokenpilot summary"


@dataclass(frozen=True, slots=True)
class Entry:
    """A message of the working list and its position in the input (-1: inserted)."""

    origin: int
    message: Message


@dataclass(slots=True)
class StepContext:
    """What the steps share: counting, thresholds in tokens, which messages are protected."""

    counter: MessageCounter
    keep_last: int
    clamp_tokens: int
    min_mask_tokens: int
    target: int
    fixed_tokens: int
    keep_exchanges: int | None = None
    summarize: Callable[[Sequence[Message]], str] | None = None
    summary_tokens: int = 2_000
    # A masked output's marker lists the names it mentioned, within this share of its tokens.
    index_share: float = 0.0
    index_max: int = 0
    clamp_index_share: float = 0.0
    # The size of each tool output as it arrived (call id -> lines, tokens), before any clamp.
    originals: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Clamp: keep the whole output in the spill store and name its handle in the marker.
    spill: bool = False
    # Clamp: a tool's own budget (`[trim.tools.NAME]`), when one is configured.
    tool_budget: Callable[[str | None], int | None] | None = None
    # Per-message results of expensive transformations, by (kind, id(message)).
    memo: dict[tuple[str, int], tuple[Message, Message]] = field(default_factory=dict)

    # A message's tool results and calls, by id(message): the steps ask for them many times a turn.
    parts: dict[int, tuple[Message, tuple[ToolResult, ...], tuple[ToolCall, ...]]] = field(
        default_factory=dict
    )

    def _parts(self, message: Message) -> tuple[Message, tuple[ToolResult, ...], tuple[ToolCall, ...]]:
        hit = self.parts.get(id(message))
        if hit is None or hit[0] is not message:
            if len(self.parts) > 50_000:
                self.parts.clear()
            hit = (message, message.tool_results, message.tool_calls)
            self.parts[id(message)] = hit
        return hit

    def results(self, message: Message) -> tuple[ToolResult, ...]:
        """`message.tool_results`, cached."""
        return self._parts(message)[1]

    def calls(self, message: Message) -> tuple[ToolCall, ...]:
        """`message.tool_calls`, cached."""
        return self._parts(message)[2]

    def remember(self, kind: str, message: Message, make: Callable[[], Message]) -> Message:
        hit = self.memo.get((kind, id(message)))
        if hit is not None and hit[0] is message:
            return hit[1]
        made = make()
        self.memo[(kind, id(message))] = (message, made)
        return made


Step = Callable[[tuple[Entry, ...], StepContext], tuple[tuple[Entry, ...], tuple[Action, ...]]]


def total_tokens(entries: Sequence[Entry], ctx: StepContext) -> int:
    return ctx.fixed_tokens + sum(ctx.counter.tokens(e.message) for e in entries)


def head_length_of(messages: Iterable[Message]) -> int:
    """Messages that are never removed: leading system/developer messages and the first user
    message (the task)."""
    count = 0
    for message in messages:
        if message.role == "user":
            return count + 1
        if message.role not in ("system", "developer"):
            return count
        count += 1
    return count


def head_length(entries: Sequence[Entry]) -> int:
    """`head_length_of` the entries' messages."""
    return head_length_of(e.message for e in entries)


def is_marker(text: str) -> bool:
    return text.startswith(MARKER_PREFIX) or text.startswith(SUMMARY_PREFIX)


def calls_by_id(entries: Sequence[Entry], ctx: StepContext | None = None) -> dict[str, ToolCall]:
    if ctx is None:
        return {call.id: call for e in entries for call in e.message.tool_calls}
    return {call.id: call for e in entries for call in ctx.calls(e.message)}


def tool_label(call: ToolCall | None) -> str | None:
    """What tells trim the output's format: a shell command line, else the tool's name."""
    if call is None:
        return None
    command = call.argument_values().get("command")
    if isinstance(command, str) and command:
        # The program is on the first line; a heredoc's body would only slow the detection down.
        return command.split("\n", 1)[0][:200]
    return call.name


def describe_call(call: ToolCall | None) -> str:
    """`execute_bash(command="pytest -x")`: the tool and its main arguments, shortened."""
    if call is None:
        return "a tool"
    values = call.argument_values()
    shown = []
    for key in ("command", "path", "file_path", "pattern", "query", "url"):
        value = values.get(key)
        if isinstance(value, str) and value:
            short = value if len(value) <= 120 else value[:117] + "..."
            shown.append(f"{key}={json.dumps(short, ensure_ascii=False)}")
    return f"{call.name}({', '.join(shown)})"


def _replace_results(message: Message, change: Callable[[ToolResult], ToolResult | None]) -> Message:
    blocks: list[Block] = []
    changed = False
    for block in message.blocks:
        if isinstance(block, ToolResult):
            new = change(block)
            if new is not None and new is not block:
                blocks.append(new)
                changed = True
                continue
        blocks.append(block)
    return message.with_blocks(tuple(blocks)) if changed else message


def _with_text(result: ToolResult, text: str, keep_images: bool = False) -> ToolResult:
    """The result with its text replaced by `text`; images kept only when asked (a masked output
    drops them, and its marker counts them)."""
    images = tuple(p for p in result.content if not isinstance(p, Text)) if keep_images else ()
    return ToolResult(
        call_id=result.call_id,
        content=(Text(text), *images),
        is_error=result.is_error,
        raw=result.raw,
        content_is_text=result.content_is_text and not images,
    )


# ---------------------------------------------------------------------------------------------
# clamp
# ---------------------------------------------------------------------------------------------


def clamp(entries: tuple[Entry, ...], ctx: StepContext) -> tuple[tuple[Entry, ...], tuple[Action, ...]]:
    """Every tool output over `clamp_tokens` reduced to head and tail with a marker."""
    out: list[Entry] = []
    actions: list[Action] = []
    tokenizer = ctx.counter.tokenizer
    calls = calls_by_id(entries, ctx)
    for entry in entries:
        message = entry.message
        if not ctx.results(message):
            out.append(entry)
            continue

        def change(result: ToolResult) -> ToolResult | None:
            text = result.text
            label = tool_label(calls.get(result.call_id))
            own = ctx.tool_budget(label) if ctx.tool_budget is not None else None
            budget = ctx.clamp_tokens if own is None else max(64, min(own, ctx.clamp_tokens))
            if len(text) < budget or is_marker(text):  # a token is at least one character
                return None
            tokens = tokenizer.count(text)
            if tokens <= budget:
                return None
            lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
            ctx.originals[result.call_id] = (lines, tokens)
            note = spill_marker(text, lines, tokens) if ctx.spill else ""
            room = budget - (tokenizer.count(note) if note else 0)
            # The names of the elided part, in a share of the clamp's budget.
            index_room = min(ctx.index_max, int(room * ctx.clamp_index_share))
            reduced = reduce_output(text, room - index_room, tokenizer, tool=label)
            if index_room > 0:
                index = name_index(text, index_room - 8, tokenizer, reduced)
                if index:
                    reduced += f"\n{MARKER_PREFIX} elided names: {index}]"
            reduced += note
            return None if reduced == text else _with_text(result, reduced, keep_images=True)

        new = ctx.remember("clamp", message, lambda m=message: _replace_results(m, change))  # type: ignore[misc]
        if new is not message:
            before, after = ctx.counter.tokens(message), ctx.counter.tokens(new)
            actions.append(
                Action(
                    "clamp",
                    (entry.origin,),
                    before,
                    after,
                    f"clamped a tool output to {ctx.clamp_tokens:,} tokens",
                )
            )
            entry = Entry(entry.origin, new)
        out.append(entry)
    return tuple(out), tuple(actions)


# ---------------------------------------------------------------------------------------------
# mask
# ---------------------------------------------------------------------------------------------


def mask_marker(
    call: ToolCall | None,
    text: str,
    tokens: int,
    reason: str = "masked",
    images: int = 0,
    size: tuple[int, int] | None = None,
) -> str:
    """The one line left for an elided output; `size` (lines, tokens) is the output's size as it
    arrived when it was clamped since."""
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    if size is not None:
        lines, tokens = size
    what = f"{lines:,} lines / {tokens:,} tokens elided"
    if images:
        what += f", {images} image{'s' if images > 1 else ''}"
    return f"{MARKER_PREFIX} {reason} output of {describe_call(call)}; {what}]"


def maskable(entries: Sequence[Entry], ctx: StepContext, keep_last: int) -> list[int]:
    """Positions (in `entries`) of tool results old enough and big enough to mask."""
    result_positions = [i for i, e in enumerate(entries) if ctx.results(e.message)]
    counted = 0
    recent: set[int] = set()
    for i in reversed(result_positions):
        if counted >= keep_last:
            break
        recent.add(i)
        counted += len(ctx.results(entries[i].message))
    out = []
    for i in result_positions:
        if i in recent:
            continue
        for result in ctx.results(entries[i].message):
            text = result.text
            if (
                not is_marker(text)
                and len(text) >= ctx.min_mask_tokens
                and (ctx.counter.text_tokens(text) >= ctx.min_mask_tokens)
            ):
                out.append(i)
                break
    return out


def mask(
    entries: tuple[Entry, ...], ctx: StepContext, keep_last: int | None = None
) -> tuple[tuple[Entry, ...], tuple[Action, ...]]:
    """Tool results older than the last `keep_last` become a one-line marker naming the call."""
    keep = ctx.keep_last if keep_last is None else keep_last
    targets = set(maskable(entries, ctx, keep))
    if not targets:
        return entries, ()
    calls = calls_by_id(entries, ctx)
    out: list[Entry] = []
    actions: list[Action] = []
    # Names listed by the markers before a masked output are not listed again.
    known = ""
    for i, entry in enumerate(entries):
        if i not in targets:
            if ctx.index_share > 0:
                known += "".join("\n" + r.text for r in ctx.results(entry.message) if is_marker(r.text))
            out.append(entry)
            continue
        message = entry.message

        def change(result: ToolResult, known: str = known) -> ToolResult | None:
            text = result.text
            if is_marker(text) or ctx.counter.text_tokens(text) < ctx.min_mask_tokens:
                return None
            tokens = ctx.counter.text_tokens(text)
            images = sum(1 for p in result.content if not isinstance(p, Text))
            size = ctx.originals.get(result.call_id)
            marker = mask_marker(calls.get(result.call_id), text, tokens, images=images, size=size)
            room = min(ctx.index_max, int(tokens * ctx.index_share))
            index = name_index(text, room, ctx.counter.tokenizer, known) if room > 0 else ""
            if index:
                marker = f"{marker[:-1]}{INDEX_LABEL}{index}]"
            return _with_text(result, marker)

        new = ctx.remember("mask", message, lambda m=message: _replace_results(m, change))  # type: ignore[misc]
        if ctx.index_share > 0:
            known += "".join("\n" + r.text for r in new.tool_results)
        before, after = ctx.counter.tokens(message), ctx.counter.tokens(new)
        actions.append(Action("mask", (entry.origin,), before, after, "masked an old tool output"))
        out.append(Entry(entry.origin, new))
    return tuple(out), tuple(actions)


# ---------------------------------------------------------------------------------------------
# dedupe
# ---------------------------------------------------------------------------------------------


def dedupe(entries: tuple[Entry, ...], ctx: StepContext) -> tuple[tuple[Entry, ...], tuple[Action, ...]]:
    """An output identical to a later one (a file read again, a command re-run with the same
    output) becomes a marker pointing forward; the latest copy stays."""
    latest: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for result in ctx.results(entry.message):
            text = result.text
            text_only = all(isinstance(p, Text) for p in result.content)
            if text_only and len(text) >= ctx.min_mask_tokens and not is_marker(text):
                latest[text] = i
    calls = calls_by_id(entries, ctx)
    out: list[Entry] = []
    actions: list[Action] = []
    for i, entry in enumerate(entries):
        message = entry.message
        if not ctx.results(message):
            out.append(entry)
            continue

        def change(result: ToolResult, i: int = i) -> ToolResult | None:
            text = result.text
            if (
                latest.get(text, i) <= i
                or is_marker(text)
                or not all(isinstance(p, Text) for p in result.content)
            ):
                return None
            tokens = ctx.counter.text_tokens(text)
            if tokens < ctx.min_mask_tokens:
                return None
            return _with_text(
                result,
                mask_marker(
                    calls.get(result.call_id),
                    text,
                    tokens,
                    "repeated (see later)",
                    size=ctx.originals.get(result.call_id),
                ),
            )

        new = _replace_results(message, change)
        if new is not message:
            new = ctx.remember("dedupe", message, lambda n=new: n)  # type: ignore[misc]
            before, after = ctx.counter.tokens(message), ctx.counter.tokens(new)
            actions.append(Action("dedupe", (entry.origin,), before, after, "output repeated later"))
            entry = Entry(entry.origin, new)
        out.append(entry)
    return tuple(out), tuple(actions)


# ---------------------------------------------------------------------------------------------
# prune
# ---------------------------------------------------------------------------------------------

_ACK = re.compile(
    r"^\s*(ok(ay)?|thanks?( you)?|thx|great|good|cool|nice|got it|sounds good|yes|sure)[.!]*\s*$", re.I
)
_FAILED = re.compile(r"^(error|traceback|.*\bcommand not found\b|.*\bno such file\b)", re.I | re.S)


def prune(entries: tuple[Entry, ...], ctx: StepContext) -> tuple[tuple[Entry, ...], tuple[Action, ...]]:
    """Conservative removals, never of the head or the last exchange:
    - assistant messages with no text and no tool calls (empty turns);
    - user messages that are a bare acknowledgement ("ok", "thanks");
    - a failed tool call (error result) immediately retried with the same tool and arguments'
      main key (same path or command), with its result.
    """
    head = head_length(entries)
    last_assistant = max(
        (i for i, e in enumerate(entries) if e.message.role == "assistant"), default=len(entries)
    )
    drop: set[int] = set()
    reasons: dict[int, str] = {}
    for i in range(head, last_assistant):
        message = entries[i].message
        only_text = all(isinstance(b, Text) for b in message.blocks)
        if message.role == "assistant" and only_text and not message.text.strip():
            drop.add(i)
            reasons[i] = "empty assistant turn"
        elif message.role == "user" and only_text and _ACK.match(message.text or "x"):
            drop.add(i)
            reasons[i] = "bare acknowledgement"
    for i in range(head, last_assistant):
        message = entries[i].message
        if message.role != "assistant" or len(message.tool_calls) != 1:
            continue
        call = message.tool_calls[0]
        answers = _answer_positions(entries, i)
        if not answers or not all(_failed(entries[j].message) for j in answers):
            continue
        retry = max(answers) + 1
        if retry >= last_assistant + 1 or retry >= len(entries):
            continue
        nxt = entries[retry].message
        if nxt.role == "assistant" and len(nxt.tool_calls) == 1 and _same_target(call, nxt.tool_calls[0]):
            for j in (i, *answers):
                drop.add(j)
                reasons[j] = "failed attempt, retried"
    if not drop:
        return entries, ()
    actions = tuple(
        Action("prune", (entries[i].origin,), ctx.counter.tokens(entries[i].message), 0, reasons[i])
        for i in sorted(drop)
    )
    return tuple(e for i, e in enumerate(entries) if i not in drop), actions


def _answer_positions(entries: Sequence[Entry], i: int) -> list[int]:
    ids = {c.id for c in entries[i].message.tool_calls}
    out = []
    for j in range(i + 1, len(entries)):
        results = entries[j].message.tool_results
        if not results:
            break
        if {r.call_id for r in results} <= ids and not entries[j].message.text.strip():
            out.append(j)
        else:
            return []
    return out


def _failed(message: Message) -> bool:
    return all(r.is_error or _FAILED.match(r.text.strip()) for r in message.tool_results)


def _same_target(a: ToolCall, b: ToolCall) -> bool:
    if a.name != b.name:
        return False
    va, vb = a.argument_values(), b.argument_values()
    for key in ("path", "file_path", "command"):
        if key in va or key in vb:
            return va.get(key) == vb.get(key)
    return False


# ---------------------------------------------------------------------------------------------
# window (+ summary)
# ---------------------------------------------------------------------------------------------


def safe_cuts(entries: Sequence[Entry], start: int) -> list[int]:
    """Positions c >= start where `entries[c:]` can follow the head: no tool result of a dropped
    call, and (for Anthropic's alternation) the first kept message is an assistant message."""
    cuts = []
    for c in range(start, len(entries) + 1):
        if c == len(entries):
            cuts.append(c)
            continue
        message = entries[c].message
        if message.tool_results:
            continue
        if message.role in ("assistant", "user", "system", "developer"):
            cuts.append(c)
    return cuts


def summary_message(text: str, dropped: int, tokens: int) -> Message:
    header = (
        f"{SUMMARY_PREFIX} of {dropped:,} earlier messages ({tokens:,} tokens) removed to fit the budget]"
    )
    return Message(role="user", blocks=(Text(f"{header}\n{text}".rstrip()),))


def window(entries: tuple[Entry, ...], ctx: StepContext) -> tuple[tuple[Entry, ...], tuple[Action, ...]]:
    """Keep the head (system, task), a summary of what is dropped, and the most recent messages
    that fit `target`; cut only where no tool pair is split."""
    if total_tokens(entries, ctx) <= ctx.target:
        return entries, ()
    head = head_length(entries)
    body_start = head
    old_summary: Entry | None = None
    if head < len(entries) and entries[head].message.text.startswith(SUMMARY_PREFIX):
        old_summary = entries[head]
        body_start = head + 1
    head_tokens = ctx.fixed_tokens + sum(ctx.counter.tokens(e.message) for e in entries[:head])
    cuts = safe_cuts(entries, body_start)
    if ctx.keep_exchanges is not None:  # at most the last N exchanges survive a window
        turns = [i for i, e in enumerate(entries) if e.message.role == "assistant" and i >= body_start]
        if len(turns) > ctx.keep_exchanges:
            earliest = turns[len(turns) - ctx.keep_exchanges] if ctx.keep_exchanges else len(entries)
            cuts = [c for c in cuts if c >= earliest]
    suffix_tokens = [0] * (len(entries) + 1)
    for i in range(len(entries) - 1, -1, -1):
        suffix_tokens[i] = suffix_tokens[i + 1] + ctx.counter.tokens(entries[i].message)
    summary_floor = 0
    for cut in cuts:  # earliest cut first: keeps the most
        dropped = list(entries[body_start - (1 if old_summary else 0) : cut])
        # A summary grows with the span it covers: the last one's size is a lower bound, so only
        # plausible cuts are summarised.
        if not dropped or head_tokens + suffix_tokens[cut] + summary_floor > ctx.target:
            continue
        summary = _summary_for(dropped, ctx)
        summary_floor = ctx.counter.tokens(summary) if summary else 0
        tokens = head_tokens + suffix_tokens[cut] + summary_floor
        if tokens <= ctx.target:
            return _windowed(entries, head, cut, summary, dropped, ctx)
    # Nothing fits with a summary: the most recent messages that fit without one.
    cut = next((c for c in cuts if head_tokens + suffix_tokens[c] <= ctx.target), len(entries))
    dropped = list(entries[head:cut])
    return _windowed(entries, head, cut, None, dropped, ctx)


def _summary_for(dropped: Sequence[Entry], ctx: StepContext) -> Message | None:
    if ctx.summarize is None:
        return None
    text = ctx.summarize([e.message for e in dropped])
    text = head_tail(text, ctx.summary_tokens, ctx.counter.tokenizer) if text else ""
    tokens = sum(ctx.counter.tokens(e.message) for e in dropped)
    n = sum(1 for e in dropped if e.origin >= 0)
    return summary_message(text, n, tokens)


def _windowed(
    entries: tuple[Entry, ...],
    head: int,
    cut: int,
    summary: Message | None,
    dropped: Sequence[Entry],
    ctx: StepContext,
) -> tuple[tuple[Entry, ...], tuple[Action, ...]]:
    kept = list(entries[:head])
    if summary is not None:
        kept.append(Entry(-1, summary))
    kept.extend(entries[cut:])
    before = sum(ctx.counter.tokens(e.message) for e in dropped)
    positions = tuple(e.origin for e in dropped if e.origin >= 0)
    actions = [Action("window", positions, before, 0, f"dropped {len(positions):,} messages before the cut")]
    if summary is not None:
        actions.append(
            Action(
                "summarize", positions, before, ctx.counter.tokens(summary), "summary of the dropped messages"
            )
        )
    return tuple(kept), tuple(actions)


STEP_FUNCTIONS: dict[str, Any] = {
    "clamp": clamp,
    "prune": prune,
    "dedupe": dedupe,
    "mask": mask,
    "window": window,
}
