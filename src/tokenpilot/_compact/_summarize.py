"""Summarizers: any callable `(messages) -> str`. Built in: `extractive` (offline) and `llm`.

`extractive` lists what a dropped span did: files touched, commands run and their exit status,
errors seen, the plans and decisions the assistant stated, and the open items at its end.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from tokenpilot._exceptions import EndpointError
from tokenpilot._messages import Message, parse
from tokenpilot._tokens import Tokenizer

log = logging.getLogger(__name__)

Summarizer = Callable[[Sequence[Any]], str]

SUMMARY_PREFIX = "[tokenpilot summary"
_EXIT = re.compile(r"exit code (-?\d+)|exit status (-?\d+)|returned non-zero exit status (\d+)", re.I)
_ERROR = re.compile(r"Error\b|Exception\b|FAILED|Traceback \(most|error:")
_SENTENCE = re.compile(r"(?<=[.!?:])\s+")
_MAX_ITEMS = 12


def _error_lines(output: str) -> list[str]:
    """Whole lines of `output` that mention an error, each once, shortened."""
    lines: list[str] = []
    last_start = -1
    for found in _ERROR.finditer(output):
        start = output.rfind("\n", 0, found.start()) + 1
        if start == last_start:
            continue
        last_start = start
        end = output.find("\n", found.end())
        lines.append(" ".join(output[start : end if end >= 0 else len(output)].split())[:200])
    return lines


def _as_messages(messages: Sequence[Any]) -> Sequence[Message]:
    if all(isinstance(m, Message) for m in messages):
        return messages
    return parse(list(messages)).messages


def _first_sentences(text: str, limit: int = 240) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    out = ""
    for sentence in _SENTENCE.split(text):
        if len(out) + len(sentence) > limit:
            break
        out = f"{out} {sentence}".strip()
    return out or text[: limit - 3] + "..."


def _unique(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _tail(items: list[str], n: int = _MAX_ITEMS) -> list[str]:
    items = _unique(items)
    if len(items) <= n:
        return items
    return [f"(... {len(items) - n} earlier)", *items[-n:]]


def extractive(messages: Sequence[Any]) -> str:
    """An offline summary of `messages` (either format, or `Message`s): their artifact record
    (files changed with the last edit, errors hit, next steps, decisions, commands run with exit
    codes, files read), what the assistant said, and any earlier summary, in 2,000 tokens.

    >>> calls = [{"role": "assistant", "content": "Run the tests.", "tool_calls": [{"id": "c1",
    ...   "type": "function", "function": {"name": "bash", "arguments": '{"command": "pytest"}'}}]},
    ...   {"role": "tool", "tool_call_id": "c1", "content": "1 failed\\n[exit code 1]"}]
    >>> print(extractive(calls))
    Commands run:
    - pytest (exit 1)
    Assistant said:
    - Run the tests.
    """
    from tokenpilot._tokens import tokenizer_for

    return artifact_summary(messages, 2_000, tokenizer_for(None))


def artifact_summary(messages: Sequence[Any], budget_tokens: int, tokenizer: Tokenizer) -> str:
    """`extractive` within `budget_tokens` of `tokenizer` (every section keeps its latest lines)."""
    from tokenpilot._compact.artifacts import extract_artifacts, fit_sections

    items = _as_messages(messages)
    earlier: list[str] = []
    span: list[Message] = []
    for message in items:
        if message.text.startswith(SUMMARY_PREFIX):  # an earlier summary: its lines carry over
            earlier.extend(line.removeprefix("- ") for line in message.text.splitlines()[1:] if line.strip())
        else:
            span.append(message)
    record = extract_artifacts(span)
    said = _tail([_first_sentences(m.text) for m in span if m.role == "assistant" and m.text.strip()], 1_000)
    blocks = [(title, lines) for title, lines in record.sections() if lines]
    if said:
        blocks.append(("Assistant said", said))
    if earlier:
        blocks.append(("Earlier summary", earlier))
    return fit_sections(blocks, budget_tokens, tokenizer)


_PROMPT = (
    "Summarise this part of an agent's conversation for the agent itself, which will no longer see it. "
    "Keep: files touched, commands run and their outcome, errors seen, decisions made, open items. "
    "Be terse; use bullet points."
)


def llm(
    url: str,
    model: str,
    *,
    api_key_env: str | None = "OPENAI_API_KEY",
    timeout: float = 60.0,
    max_tokens: int = 1_000,
) -> Summarizer:
    """A summarizer calling an OpenAI-compatible `/chat/completions` endpoint (e.g. a cheaper model).

    It is only called when configured; on any failure it logs and falls back to `extractive`
    (the original messages are never lost).

    >>> summarize = llm("http://127.0.0.1:8000/v1", "gpt-4o-mini")   # nothing is sent yet
    """
    endpoint = url.rstrip("/")
    if not endpoint.endswith("/chat/completions"):
        endpoint += "/chat/completions"

    def summarize(messages: Sequence[Any]) -> str:
        try:
            return _call(endpoint, model, api_key_env, timeout, max_tokens, messages)
        except EndpointError as exc:
            log.warning("llm summarizer failed, using extractive", extra={"error": str(exc)})
            return extractive(messages)

    return summarize


_OUTPUT_CHARS = 4_000


def _transcript(messages: Sequence[Message]) -> str:
    """The span as text for the summarising model; long outputs keep their head and tail only,
    so a large span still fits a small model's window."""
    lines = []
    for message in messages:
        if message.text.strip():
            lines.append(f"{message.role}: {message.text.strip()}")
        for call in message.tool_calls:
            lines.append(f"call {call.name} {call.arguments}")
        for result in message.tool_results:
            text = result.text
            if len(text) > _OUTPUT_CHARS:
                half = _OUTPUT_CHARS // 2
                text = f"{text[:half]}\n[... {len(text) - 2 * half:,} characters ...]\n{text[-half:]}"
            lines.append(f"result{' (error)' if result.is_error else ''}: {text}")
    return "\n".join(lines)


def _call(
    endpoint: str,
    model: str,
    api_key_env: str | None,
    timeout: float,
    max_tokens: int,
    messages: Sequence[Any],
) -> str:
    items = _as_messages(messages)
    transcript = _transcript(items)
    body = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": _PROMPT},
            {"role": "user", "content": transcript},
        ],
    }
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    import urllib.error  # here, not at import: urllib pulls in http, ssl and email
    import urllib.request

    request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise EndpointError(f"summarizer endpoint {endpoint}: {exc}") from exc
    try:
        text = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise EndpointError(f"summarizer endpoint {endpoint}: unexpected answer") from exc
    if not isinstance(text, str) or not text.strip():
        raise EndpointError(f"summarizer endpoint {endpoint}: empty summary")
    return text.strip()
