"""Optimize mode: what the proxy changes in a request before it goes upstream.

`Optimizer.rewrite(api, body, model=..., session_key=..., headers=...)` returns the body to send
and what was done:

- tool outputs over their budget (`[trim.tools.NAME]`, else the `[compact] clamp` size) are cut by
  trim's reducers on arrival; the whole output goes to the spill store and the marker names its
  handle (`tokenpilot spill show HANDLE`);
- a `Compactor` per conversation (see `sessions`) masks old outputs in batches when that pays at
  the model's prices and windows + summarises at the trigger, re-applying its earlier decisions so
  the prefix stays byte-identical between compactions;
- Anthropic requests without any `cache_control` get breakpoints at the end of the stable prefix;
- a request over the model's window is compacted to fit, or `ContextOverflowError` says how many
  tokens must go;
- no loops: a request the conversation already saw is answered from the last rewrite, and after
  `max_forced` forced compactions in a row the conversation is left alone (logged);
- every rewritten body passes `tp.validate`; otherwise the original is sent
  (actions `("invalid_rewrite_skipped",)`).

OpenAI Responses bodies get the tool-output trimming only (`input` items are otherwise untouched:
encrypted reasoning and compaction items pass through as they are).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from tokenpilot._compact import Compactor, Problem
from tokenpilot._compact._clamp import MARKER_PREFIX, reduce_output, spill_marker
from tokenpilot._compact._invariants import check
from tokenpilot._compact._settings import Pricing
from tokenpilot._exceptions import BudgetError, ConfigError, TokenpilotError
from tokenpilot._models import get_model
from tokenpilot._serve.sessions import SessionStore, conversation_key
from tokenpilot._tokens import count_messages, tokenizer_for

log = logging.getLogger(__name__)

APIS = ("openai_chat", "openai_responses", "anthropic_messages")
MAX_CACHE_BREAKPOINTS = 4
EPHEMERAL = {"type": "ephemeral"}


class ContextOverflowError(BudgetError):
    """The request does not fit the model's window even after compaction: `must_remove` tokens
    have to go (the system prompt, tools and task alone are too large)."""

    def __init__(self, tokens: int, limit: int) -> None:
        self.tokens = tokens
        self.limit = limit
        self.must_remove = max(1, tokens - limit)
        super().__init__(
            f"the request needs {tokens:,} input tokens but the model allows {limit:,}: remove at "
            f"least {self.must_remove:,} tokens (the system prompt, tools and task alone do not fit)"
        )


@dataclass(frozen=True, slots=True)
class OptimizeSettings:
    """What optimize mode does; each part can be turned off.

    - compact / trim / cache_layout: the three parts (default all on);
    - policy: the compaction preset; `compact`: extra `[compact]` thresholds for it;
    - headroom: after a forced compaction the prompt is at least this share of the window under
      the trigger (default 0.1);
    - max_forced: forced compactions in a row after which a conversation is left alone (default 3);
    - max_sessions / max_session_bytes / idle_seconds: bounds of the conversations followed.
    """

    compact: bool = True
    trim: bool = True
    cache_layout: bool = True
    policy: str = "default"
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    headroom: float = 0.1
    max_forced: int = 3
    max_sessions: int = 256
    max_session_bytes: int = 512 * 1024 * 1024
    idle_seconds: float = 3600.0

    @classmethod
    def from_config(cls) -> OptimizeSettings:
        """`[optimize]` of the config (unknown keys are an error naming the file); the
        compaction thresholds themselves come from `[compact]`, trim budgets from `[trim]`."""
        from tokenpilot._config import load_config

        config = load_config()
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in config.section("optimize").items():
            if key not in known:
                raise ConfigError(
                    f"unknown optimize setting (known: {', '.join(sorted(known))})",
                    source=config.source_of("optimize", key),
                    key=f"optimize.{key}",
                )
            values[key] = value
        return replace(cls(), **values)


@dataclass(frozen=True, slots=True)
class Optimized:
    """A rewritten request body, its prompt size before and after, and what was done."""

    body: dict[str, Any]
    tokens_before: int
    tokens_after: int
    actions: tuple[str, ...]

    @property
    def removed(self) -> int:
        """Prompt tokens the rewrite removed (0 when nothing was)."""
        return max(0, self.tokens_before - self.tokens_after)


@dataclass
class _Conversation:
    """What optimize mode remembers of one conversation."""

    compactor: Compactor | None = None
    history: list[Any] = field(default_factory=list)
    last_request: Any = None
    last_result: Optimized | None = None
    forced_in_a_row: int = 0
    given_up: bool = False
    size: int = 0
    counted: int = 0  # messages whose size is in `size`
    trimmed: dict[str, str] = field(default_factory=dict)  # Responses: call id -> trimmed output
    # Messages once sent with a breakpoint, so as content blocks: they stay blocks (same bytes).
    block_form: set[int] = field(default_factory=set)


class Optimizer:
    """Rewrites requests for optimize mode; one instance serves every conversation of a proxy.

    >>> optimizer = Optimizer()
    >>> body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    >>> out = optimizer.rewrite("openai_chat", body, model="gpt-4o", session_key=None, headers={})
    >>> out.body == body, out.removed, out.actions
    (True, 0, ())
    """

    def __init__(self, settings: OptimizeSettings | Any = None) -> None:
        # The proxy hands over its own settings; optimize mode's come from `[optimize]` then.
        self.settings = settings if isinstance(settings, OptimizeSettings) else OptimizeSettings.from_config()
        s = self.settings
        self.sessions: SessionStore[_Conversation] = SessionStore(
            max_sessions=s.max_sessions, max_bytes=s.max_session_bytes, idle_seconds=s.idle_seconds
        )

    # -- the entry point -------------------------------------------------------------------

    def rewrite(
        self,
        api: str,
        body: dict[str, Any],
        *,
        model: str,
        session_key: str | None,
        headers: Mapping[str, str],
    ) -> Optimized:
        """The body to send upstream for this request (the original when nothing pays)."""
        if api not in APIS:
            raise ValueError(f"unknown api {api!r} (one of {', '.join(APIS)})")
        key = conversation_key(api, body, session_key)
        with self.sessions.use(key, _Conversation) as (state, resize):
            if state.last_request is not None and state.last_request == body and state.last_result:
                return state.last_result  # the same request again (a retry): never compacted twice
            if api == "openai_responses":
                result = self._responses(body, model, state)
            else:
                result = self._messages(api, body, model, state, key)
            state.last_request = body
            state.last_result = result
            state.size = _approximate_bytes(body, state)
            resize(state.size * 3)  # the history, its parsed form and the rendered output
            return result

    # -- Chat Completions and Anthropic Messages -------------------------------------------

    def _messages(
        self, api: str, body: dict[str, Any], model: str, state: _Conversation, key: str
    ) -> Optimized:
        provider = "anthropic" if api == "anthropic_messages" else "openai"
        raw = body.get("messages")
        if not isinstance(raw, list):
            return Optimized(body, 0, 0, ())
        compactor = self._compactor_for(state, model, body)
        # Messages equal to those of the last request are passed as the same objects: the
        # compactor then re-uses its parse, counts and decisions (a proxy gets fresh JSON each time).
        stable = _stable_history(state.history, raw)
        state.history = stable
        request = {**body, "messages": stable}
        try:
            if state.given_up or not self.settings.compact:
                _stop_compacting(compactor, keep_trimming=self.settings.trim)
            result = compactor.run(request, provider)
        except BudgetError as exc:
            tokens = count_messages(body, model=model)
            if tokens > compactor.budget:
                raise ContextOverflowError(tokens, compactor.budget) from exc
            # It fits the window but cannot shrink below the target: a compaction that failed.
            self._forced(state, key, compactor)
            log.warning("optimize: cannot compact, forwarding as is", extra={"error": str(exc)})
            return Optimized(body, tokens, tokens, ("compaction_failed",))
        except TokenpilotError as exc:
            log.warning("optimize: rewrite failed, forwarding the original", extra={"error": str(exc)})
            return Optimized(body, 0, 0, ("invalid_rewrite_skipped",))
        if any(a.cost is not None and a.cost.forced for a in result.actions):
            self._forced(state, key, compactor)
        else:
            state.forced_in_a_row = 0
        out_body: dict[str, Any] = result.messages if isinstance(result.messages, dict) else dict(body)
        actions = [_action_name(a.kind) for a in result.actions]
        rewritten = any(a is not b for a, b in zip(out_body["messages"], stable, strict=False)) or len(
            out_body["messages"]
        ) != len(stable)
        if rewritten and not actions:
            actions.append("reapplied")  # earlier decisions, kept so the prefix stays the same
        if provider == "anthropic" and self.settings.cache_layout:
            out_body, added = add_cache_breakpoints(out_body, state.block_form)
            if added:
                actions.append(f"cache_breakpoints:{added}")
        if not actions:
            return Optimized(body, result.tokens_before, result.tokens_before, ())
        # The checks of `tp.validate`, on the messages the body was rendered from (parsing the
        # whole body again would cost more than the rest of the rewrite); breakpoints only add
        # `cache_control` keys to blocks, which changes no pairing or role.
        problems = check(compactor.last_output, provider) or _layout_problems(stable, out_body)
        if problems:
            log.warning(
                "optimize: rewritten body is not valid, forwarding the original",
                extra={"problem": problems[0].message},
            )
            return Optimized(body, result.tokens_before, result.tokens_before, ("invalid_rewrite_skipped",))
        return Optimized(out_body, result.tokens_before, result.tokens_after, tuple(_unique(actions)))

    def _forced(self, state: _Conversation, key: str, compactor: Compactor) -> None:
        """Count a forced compaction; past `max_forced` in a row, stop compacting (and say so)."""
        state.forced_in_a_row += 1
        if state.forced_in_a_row >= self.settings.max_forced and not state.given_up:
            state.given_up = True
            _stop_compacting(compactor, keep_trimming=self.settings.trim)
            log.warning(
                "optimize: stopped compacting a conversation that keeps reaching the trigger",
                extra={"session": key, "forced_in_a_row": state.forced_in_a_row},
            )

    def _compactor_for(self, state: _Conversation, model: str, body: Mapping[str, Any]) -> Compactor:
        if state.compactor is not None:
            return state.compactor
        info = get_model(model)
        reply = _max_output(body)
        budget = max(1_024, info.context_window - reply) if reply else info.context_window
        s = self.settings
        thresholds: dict[str, Any] = {"spill": True, **dict(s.thresholds)}
        compactor = Compactor(
            model=info.name,
            budget=budget,
            policy=s.policy,
            pricing=Pricing.for_model(info.name) if info.input_per_mtok is not None else None,
            **thresholds,
        )
        compactor.clamp_always = s.trim
        # Headroom: a forced compaction leaves room for the next turns before the trigger.
        room = int(s.headroom * compactor.budget)
        compactor.target = max(1, min(compactor.target, compactor.trigger - room))
        if not s.trim:
            compactor.settings = replace(compactor.settings, clamp=float(1 << 40))
        state.compactor = compactor
        return compactor

    # -- Responses: tool outputs only ------------------------------------------------------

    def _responses(self, body: dict[str, Any], model: str, state: _Conversation) -> Optimized:
        items = body.get("input")
        if not self.settings.trim or not isinstance(items, list):
            return Optimized(body, 0, 0, ())
        tokenizer = tokenizer_for(model)
        calls = {
            i.get("call_id"): i
            for i in items
            if isinstance(i, Mapping) and i.get("type") in ("function_call", "custom_tool_call")
        }
        changed = 0
        removed = 0
        out: list[Any] = []
        clamp = int(self._clamp_tokens())
        for item in items:
            if (
                isinstance(item, Mapping)
                and item.get("type") == "function_call_output"
                and isinstance(item.get("output"), str)
            ):
                call_id = str(item.get("call_id"))
                text = item["output"]
                trimmed = state.trimmed.get(call_id)
                if trimmed is None:
                    trimmed = _trim_output(text, clamp, tokenizer, _label(calls.get(call_id)))
                    state.trimmed[call_id] = trimmed
                if trimmed != text:
                    removed += tokenizer.count(text) - tokenizer.count(trimmed)
                    item = {**item, "output": trimmed}
                    changed += 1
            out.append(item)
        if not changed:
            return Optimized(body, 0, 0, ())
        before = tokenizer.count(json.dumps(items, ensure_ascii=False))
        return Optimized({**body, "input": out}, before, before - removed, ("clamp",))

    def _clamp_tokens(self) -> float:
        value = self.settings.thresholds.get("clamp", 1_500)
        return float(value) if isinstance(value, int | float) else 1_500.0


def _stop_compacting(compactor: Compactor, *, keep_trimming: bool) -> None:
    """No more compactions for this conversation; outputs are still clamped on arrival."""
    compactor.settings = replace(compactor.settings, voluntary=False, enabled=keep_trimming)
    compactor.trigger = compactor.hard_limit = 1 << 60


def _trim_output(text: str, budget: int, tokenizer: Any, label: str | None) -> str:
    if len(text) <= budget or MARKER_PREFIX in text[:40]:
        return text
    tokens = tokenizer.count(text)
    if tokens <= budget:
        return text
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    note = spill_marker(text, lines, tokens)
    return reduce_output(text, budget - tokenizer.count(note), tokenizer, tool=label) + note


def _label(call: Mapping[str, Any] | None) -> str | None:
    if call is None:
        return None
    try:
        arguments = json.loads(str(call.get("arguments") or call.get("input") or "{}"))
    except ValueError:
        arguments = {}
    command = arguments.get("command") if isinstance(arguments, dict) else None
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    return command if isinstance(command, str) and command else str(call.get("name") or "") or None


def _layout_problems(request: Sequence[Any], body: Mapping[str, Any]) -> tuple[Problem, ...]:
    """Problems a rewrite could add outside the compactor: a message that is not an object."""
    sent = body.get("messages")
    if not isinstance(sent, list) or not all(isinstance(m, Mapping) and "role" in m for m in sent):
        return (Problem(0, "shape", "the rewritten messages are not a list of messages"),)
    return ()


def _stable_history(previous: Sequence[Any], current: list[Any]) -> list[Any]:
    """`current` with each message equal to the one at its place in `previous` replaced by it."""
    out = list(current)
    for i, (old, new) in enumerate(zip(previous, current, strict=False)):
        if old is new:
            continue
        if old != new:
            break
        out[i] = old
    return out


def _max_output(body: Mapping[str, Any]) -> int:
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def _approximate_bytes(body: Mapping[str, Any], state: _Conversation) -> int:
    """The text a conversation holds, counted for the messages added since the last call."""
    items = body.get("messages") or body.get("input") or ()
    if not isinstance(items, list):
        return state.size
    if len(items) < state.counted:
        state.size, state.counted = 0, 0
    total = state.size
    for item in items[state.counted :]:
        total += len(json.dumps(item, ensure_ascii=False, default=str))
    state.counted = len(items)
    return total


def _action_name(kind: str) -> str:
    return "compact_" + kind if kind in ("window", "summarize") else kind


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------------------------------------
# Anthropic prompt-cache layout
# ---------------------------------------------------------------------------------------------


def has_cache_control(body: Mapping[str, Any]) -> bool:
    """Whether the client placed any `cache_control`: on the system blocks, a tool, a message's
    content block or a block inside a tool result (where the API accepts it)."""

    def marked(blocks: Any) -> bool:
        if not isinstance(blocks, list):
            return False
        for block in blocks:
            if isinstance(block, Mapping):
                if "cache_control" in block:
                    return True
                if block.get("type") == "tool_result" and marked(block.get("content")):
                    return True
        return False

    if marked(body.get("system")) or marked(body.get("tools")):
        return True
    messages = body.get("messages")
    return isinstance(messages, list) and any(
        isinstance(m, Mapping) and ("cache_control" in m or marked(m.get("content"))) for m in messages
    )


def add_cache_breakpoints(
    body: dict[str, Any], block_form: set[int] | None = None
) -> tuple[dict[str, Any], int]:
    """Breakpoints at the end of the stable prefix of an Anthropic body that has none: the
    system prompt (or the last tool), the message before the last one, and the last message.
    A body with the client's own `cache_control` is returned as it is.

    A message given as a string is sent as a text block to carry a breakpoint; `block_form`
    (kept per conversation) remembers it, so later requests send it as the same block.

    >>> body = {"system": "s", "messages": [{"role": "user", "content": "task"}]}
    >>> out, added = add_cache_breakpoints(body)
    >>> added, out["system"][0]["cache_control"], out["messages"][0]["content"][0]["cache_control"]
    (2, {'type': 'ephemeral'}, {'type': 'ephemeral'})
    """
    if has_cache_control(body):
        return body, 0
    block_form = set() if block_form is None else block_form
    out = dict(body)
    added = 0
    system = body.get("system")
    if isinstance(system, str) and system:
        out["system"] = [{"type": "text", "text": system, "cache_control": dict(EPHEMERAL)}]
        added += 1
    elif isinstance(system, list) and system and isinstance(system[-1], Mapping):
        out["system"] = [*system[:-1], {**system[-1], "cache_control": dict(EPHEMERAL)}]
        added += 1
    else:
        tools = body.get("tools")
        if isinstance(tools, list) and tools and isinstance(tools[-1], Mapping):
            out["tools"] = [*tools[:-1], {**tools[-1], "cache_control": dict(EPHEMERAL)}]
            added += 1
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        new_messages = list(messages)
        for index in sorted(i for i in block_form if i < len(new_messages)):
            new_messages[index] = _as_blocks(new_messages[index])
        # The last message (read by the next turn) and the one before it (written by the last).
        for index in sorted({len(messages) - 1, max(0, len(messages) - 3)}):
            if added >= MAX_CACHE_BREAKPOINTS:
                break
            marked = _mark_last_block(new_messages[index])
            if marked is not None:
                new_messages[index] = marked
                block_form.add(index)
                added += 1
        out["messages"] = new_messages
    return out, added


def _as_blocks(message: Any) -> Any:
    if isinstance(message, Mapping) and isinstance(message.get("content"), str) and message["content"]:
        return {**message, "content": [{"type": "text", "text": message["content"]}]}
    return message


def _mark_last_block(message: Any) -> dict[str, Any] | None:
    if not isinstance(message, Mapping):
        return None
    content = message.get("content")
    if isinstance(content, str):
        if not content:
            return None
        return {**message, "content": [{"type": "text", "text": content, "cache_control": dict(EPHEMERAL)}]}
    if isinstance(content, list) and content and isinstance(content[-1], Mapping):
        last = content[-1]
        if last.get("type") in ("thinking", "redacted_thinking"):
            return None  # thinking blocks cannot carry cache_control
        blocks = [*content[:-1], {**copy.copy(dict(last)), "cache_control": dict(EPHEMERAL)}]
        return {**message, "content": blocks}
    return None
