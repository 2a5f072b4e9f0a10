"""Phase hand-offs: a long conversation replaced by a short, valid one that keeps what matters.

`handoff(messages, budget=…)` returns a new conversation in the input's format and shape: the
system prompt and the task (the first user message) as they were, then one hand-off message that
records what the previous phase produced: files changed with their last edit, errors hit, next
steps, open questions, decisions, commands run with their exit codes, files read (from
`extract_artifacts`), the code it looked at (the definitions each viewed file showed), the output
lines holding names the agent went on to use, and the latest outputs whole (newest first, as many
as fit), within the budget, counted exactly on the final conversation.

The hand-off is extractive by default. When a summary model is configured (`[compact]
summarizer = "llm"`, `llm_url`, `llm_model`), its summary leads the hand-off and the extracted
record fills the room left; if the endpoint fails, the extractive hand-off is used.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenpilot._compact import extractive, validate
from tokenpilot._compact import llm as llm_summarizer
from tokenpilot._compact.artifacts import Artifacts, extract_artifacts, fit_sections
from tokenpilot._config import load_config
from tokenpilot._exceptions import BudgetError, InputError
from tokenpilot._messages import Conversation, Message, Text, ToolCall, parse, render
from tokenpilot._models import get_model
from tokenpilot._tokens import Tokenizer, count_messages, tokenizer_for
from tokenpilot._trim import trim_output

log = logging.getLogger(__name__)

HANDOFF_PREFIX = "[tokenpilot handoff"
# Share of the hand-off's room kept for the latest outputs; the record and the code seen get the rest.
LATEST_SHARE = 0.35
# The most of the hand-off one output may take (as compaction's clamp: a quarter).
OUTPUT_SHARE = 0.25
# Of the room left after the record, the share for the output lines used later (measured: 0.3 best).
USED_SHARE = 0.3
_DEFINITION = re.compile(r"^\s*(?:\d+\t)?\s*(?:async\s+)?(def|class)\s+([A-Za-z_]\w*)")
_STATUS_LINE = re.compile(r"^\[[^\]]*(?:exit code|working directory|interpreter)[^\]]*\]$", re.I)
_REMINDERS = {"Review the changes and make sure they are as expected. Edit the file again if necessary."}
_NAME = re.compile(r"[A-Za-z_][\w.]*[_.][\w.]*\w|[a-z]+[A-Z]\w+|[A-Z][a-z0-9]+[A-Z]\w*")
_GUTTER = re.compile(r"^ *(\d+)\t")
_GREP_HIT = re.compile(r"^((?:[\w.~-]*/)*[\w.-]+\.\w+):(\d+):")


@dataclass(frozen=True, slots=True)
class HandoffResult:
    """The new conversation (`messages`, in the input's format and shape) and what it kept.

    `tokens` is the exact count of the whole new conversation with the model's tokenizer (an
    estimate when `exact` is False; the budget was then enforced with the estimate's margin).
    """

    messages: Any
    tokens: int
    budget: int
    tokenizer: str
    exact: bool
    tokens_before: int
    messages_before: int
    messages_replaced: int
    handoff: str
    summarizer: str  # "extractive" or "llm"
    artifacts: Artifacts = field(repr=False, compare=False)
    dropped: tuple[str, ...] = ()

    def report(self) -> dict[str, Any]:
        """The JSON report (without the messages): sizes, what was kept, what was dropped."""
        kept = {title: len(lines) for title, lines in self.artifacts.sections()}
        return {
            "tokens": self.tokens,
            "budget": self.budget,
            "tokenizer": self.tokenizer,
            "exact": self.exact,
            "tokens_before": self.tokens_before,
            "messages_before": self.messages_before,
            "messages_replaced": self.messages_replaced,
            "summarizer": self.summarizer,
            "recorded": kept,
            "dropped": list(self.dropped),
        }


def _head_length(messages: Sequence[Message]) -> int:
    """Leading system/developer messages and the first user message: kept as they are."""
    for i, message in enumerate(messages):
        if message.role == "user" and not message.tool_results:
            return i + 1
        if message.role not in ("system", "developer"):
            return i
    return len(messages)


def code_seen(messages: Sequence[Message]) -> list[str]:
    """Per file the agent looked at, the definitions its output showed (`path: def a, class B`)."""
    calls = {c.id: c for m in messages for c in m.tool_calls}
    seen: dict[str, dict[str, None]] = {}
    for message in messages:
        for result in message.tool_results:
            call = calls.get(result.call_id)
            values = call.argument_values() if call is not None else {}
            path = values.get("path") or values.get("file_path")
            text = result.text
            for line in text.splitlines():
                hit = _GREP_HIT.match(line)
                where = hit.group(1) if hit else path
                if not isinstance(where, str):
                    continue
                found = _DEFINITION.match(line[hit.end() :] if hit else line)
                names = seen.setdefault(where, {})
                if found:
                    names[f"{found.group(1)} {found.group(2)}"] = None
    return [f"{path}: {', '.join(names)}" for path, names in seen.items() if names]


def _without_boilerplate(text: str) -> str:
    """An output without the tool's status lines (the exit code is in the record), reminders and
    `cat -n` line-number gutters (the line range is said once: a hand-off's numbers go stale)."""
    lines = text.strip().splitlines()
    while lines and _STATUS_LINE.match(lines[-1].strip()):
        lines.pop()
    lines = [line for line in lines if line.strip() not in _REMINDERS]
    numbered = [int(found.group(1)) for line in lines if (found := _GUTTER.match(line))]
    if len(numbered) >= 5 and len(numbered) * 2 > len(lines):
        lines = [f"[lines {numbered[0]}-{numbered[-1]}]", *(_GUTTER.sub("", line, count=1) for line in lines)]
    return "\n".join(lines).strip()


def _latest(messages: Sequence[Message], cap: int, tokenizer: Tokenizer) -> list[str]:
    """The assistant's words and the tool outputs, newest last; an output seen again later (the
    same text) only at its last place; one longer than `cap` tokens reduced by `trim`'s reducers
    (so one long test run does not push every other output out)."""
    entries: list[tuple[str, str]] = []
    for message in messages:
        if message.role == "assistant" and message.text.strip():
            entries.append(("assistant", " ".join(message.text.split())))
        for result in message.tool_results:
            text = _without_boilerplate(result.text)
            if text and tokenizer.count(text) > cap:
                text = trim_output(text, cap, tokenizer=tokenizer, spill=False).text
            if text:
                entries.append(("output", text))
    last = {text: i for i, (kind, text) in enumerate(entries) if kind == "output"}
    return [f"{k}: {text}" for i, (k, text) in enumerate(entries) if k != "output" or last[text] == i]


def lines_used(messages: Sequence[Message]) -> list[str]:
    """Lines of tool outputs holding a name the assistant mentioned after seeing it (oldest first):
    what the agent went on to use is what the next phase is likely to need again."""
    out: list[str] = []
    outputs: list[tuple[int, str]] = []
    mentioned_after: dict[str, int] = {}  # name -> index of the last assistant message naming it
    for i, message in enumerate(messages):
        if message.role == "assistant":
            words = message.text + " " + " ".join(c.arguments for c in message.tool_calls)
            for name in _NAME.findall(words):
                mentioned_after[name] = i
        for result in message.tool_results:
            outputs.append((i, _without_boilerplate(result.text)))
    seen: set[str] = set()
    for i, text in outputs:
        for line in text.splitlines():
            names = [n for n in _NAME.findall(line) if mentioned_after.get(n, -1) > i]
            key = line.strip()
            if names and key and key not in seen:
                seen.add(key)
                out.append(key[:200])
    return out


def _call_label(call: ToolCall | None) -> str:
    if call is None:
        return "output"
    values = call.argument_values()
    what = values.get("command") if isinstance(values.get("command"), str) else call.name
    path = values.get("path") or values.get("file_path")
    label = f"{what} {path}" if isinstance(path, str) else str(what)
    return " ".join(label.split())[:120]


def _fit_latest(lines: Sequence[str], budget: int, tokenizer: Tokenizer) -> str:
    """The newest lines that fit `budget`; the oldest one kept is cut to its end."""
    out: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = tokenizer.count(line) + 1
        if used + cost <= budget:
            out.append(line)
            used += cost
            continue
        room = budget - used - 8
        if room > 32:
            tail = truncate_tail(line, room, tokenizer)
            out.append(f"(...) {tail}")
        break
    return "\n".join(reversed(out))


def truncate_tail(text: str, tokens: int, tokenizer: Tokenizer) -> str:
    """The end of `text` in at most `tokens` tokens (whole lines when it can)."""
    ids = tokenizer.encode(text)
    if len(ids) <= tokens:
        return text
    tail = tokenizer.decode(ids[-tokens:])
    cut = tail.find("\n")
    return tail[cut + 1 :] if 0 <= cut < len(tail) // 2 else tail


def _summary_model() -> tuple[str, str, str | None] | None:
    config = load_config().section("compact")
    if config.get("summarizer") != "llm":
        return None
    url, model = config.get("llm_url"), config.get("llm_model")
    if not isinstance(url, str) or not isinstance(model, str):
        raise InputError("the llm summarizer needs [compact] llm_url and llm_model in the config")
    key_env = config.get("llm_api_key_env", "OPENAI_API_KEY")
    return url, model, str(key_env) if key_env else None


def _compose(
    replaced: Sequence[Message],
    record: Artifacts,
    room: int,
    tokenizer: Tokenizer,
    instructions: str | None,
    summary: str | None,
    header: str,
) -> tuple[str, list[str]]:
    """The hand-off text within `room` tokens, and the names of the parts that did not fit whole."""
    dropped: list[str] = []
    parts = [header]
    if instructions:
        parts.append(f"Instructions for the next phase: {instructions.strip()}")
    if summary:
        parts.append("Summary:\n" + summary)
    fixed = "\n\n".join(parts)
    fixed_tokens = tokenizer.count(fixed) + 2
    if fixed_tokens > room:
        # The summary (or the instructions) alone are too long: keep their start.
        text = tokenizer.decode(tokenizer.encode(fixed)[: max(0, room - 8)])
        while tokenizer.count(text) > room and text:
            text = text[: len(text) * 9 // 10]
        return text, ["summary (cut)", "record", "code seen", "latest output"]
    left = room - fixed_tokens
    latest_lines = _latest(replaced, max(256, int(room * OUTPUT_SHARE)), tokenizer)
    latest_budget = int(left * LATEST_SHARE) if latest_lines else 0
    blocks = [(title, lines) for title, lines in record.sections() if lines]
    seen = code_seen(replaced)
    if seen:
        blocks.append(("Code seen (definitions shown)", seen))
    body = fit_sections(blocks, left - latest_budget, tokenizer)
    # Room the record did not use goes to the latest outputs and the lines used later.
    spare = left - latest_budget - (tokenizer.count(body) + 2 if body else 0)
    latest_room = latest_budget + max(0, spare) - 16
    used = lines_used(replaced)
    used_room = int(latest_room * USED_SHARE) if used else 0
    latest = _fit_latest(latest_lines, latest_room - used_room, tokenizer) if latest_lines else ""
    used_text = fit_sections([("Output lines used later", used)], used_room, tokenizer) if used else ""
    for title, lines in blocks:
        if f"{title}:" not in body:
            dropped.append(f"{title} ({len(lines)} lines)")
        elif "earlier not shown)" in body.split(f"{title}:", 1)[1].split(":\n", 1)[0]:
            dropped.append(f"{title} (older lines)")
    shown = latest.count("\noutput: ") + latest.startswith("output: ")
    outputs = sum(1 for line in latest_lines if line.startswith("output: "))
    if shown < outputs:
        dropped.append(f"older outputs ({outputs - shown} of {outputs} not shown whole)")
    text = "\n\n".join(
        p for p in (fixed, body, used_text, f"Latest output (newest last):\n{latest}" if latest else "") if p
    )
    return text, dropped


def handoff(
    messages: Any,
    *,
    budget: int,
    model: str | None = None,
    instructions: str | None = None,
) -> HandoffResult:
    """A new, valid conversation within `budget` tokens: system prompt and task kept, the rest of
    the history replaced by one hand-off message (an OpenAI/Anthropic messages array or body).

    >>> history = [
    ...     {"role": "system", "content": "You are a coding agent."},
    ...     {"role": "user", "content": "Fix the failing test."},
    ...     {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
    ...      "function": {"name": "bash", "arguments": '{"command": "pytest -x"}'}}]},
    ...     {"role": "tool", "tool_call_id": "c1", "content": "E   KeyError: 'id'\\n[exit code 1]"},
    ...     {"role": "assistant", "content": "The issue is the missing key. Next, patch models.py."}]
    >>> result = handoff(history, budget=300, model="gpt-4o")
    >>> [m["role"] for m in result.messages], result.tokens <= 300
    (['system', 'user', 'user'], True)
    >>> print(result.messages[2]["content"].split("\\n\\n")[1])
    Errors hit:
    - E KeyError: 'id' [pytest -x]
    Next steps:
    - Next, patch models.py.
    Decisions:
    - The issue is the missing key.
    Commands run:
    - pytest -x (exit 1)
    """
    if not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0:
        raise InputError(f"budget must be a positive number of tokens, got {budget!r}")
    conversation = parse(messages)
    body_model = conversation.body.get("model")
    info = get_model(model or (body_model if isinstance(body_model, str) else None))
    tokenizer = tokenizer_for(info.name)
    allowed = tokenizer.safe_budget(budget)
    items = conversation.messages
    head = _head_length(items)
    if head == 0 or items[head - 1].role != "user":
        raise InputError("a hand-off needs the task: the conversation has no first user message")
    replaced = items[head:]
    record = extract_artifacts(items)

    def count(conv: Conversation) -> int:
        return count_messages(render(conv), model=info.name)

    tokens_before = count(conversation)
    base = conversation.with_messages((*items[:head], Message("user", (Text(""),))))
    fixed = count(base)
    if fixed > allowed:
        raise BudgetError(
            f"the system prompt and the task alone need {fixed:,} tokens, over the budget of {allowed:,}"
        )
    summary: str | None = None
    summarizer = "extractive"
    room = allowed - fixed
    endpoint = _summary_model()
    if endpoint is not None and replaced:
        url, summary_model, key_env = endpoint
        summarize = llm_summarizer(url, summary_model, api_key_env=key_env, max_tokens=max(64, room // 2))
        answer = summarize(list(replaced))
        # On a failed call the summarizer logs and answers with the extractive summary instead.
        if answer.strip() and answer != extractive(list(replaced)):
            summary, summarizer = answer.strip(), "llm"
    header = (
        f"{HANDOFF_PREFIX}: the previous phase ({len(replaced)} messages, {tokens_before - fixed:,} tokens) "
        "is replaced by this record; the system prompt and the task above are unchanged]"
    )
    text, dropped = "", list[str]()
    for _ in range(6):  # framing and joins make the count move a little: shrink until it holds
        text, dropped = _compose(replaced, record, room, tokenizer, instructions, summary, header)
        new = base.with_messages((*items[:head], Message("user", (Text(text),))))
        tokens = count(new)
        if tokens <= allowed:
            break
        room -= tokens - allowed + 4
    else:
        raise BudgetError(f"a hand-off does not fit {budget:,} tokens")  # pragma: no cover
    rendered = render(new)
    problems = validate(rendered, conversation.provider)
    if problems:  # a bug: never hand back a broken conversation
        raise InputError(f"the hand-off is not a valid conversation: {problems[0].message}")
    return HandoffResult(
        messages=rendered,
        tokens=tokens,
        budget=budget,
        tokenizer=tokenizer.name,
        exact=tokenizer.exact,
        tokens_before=tokens_before,
        messages_before=len(items),
        messages_replaced=len(replaced),
        handoff=text,
        summarizer=summarizer,
        artifacts=record,
        dropped=tuple(dropped),
    )
