"""Running a policy: triggers, the cost model, and the state that keeps the prompt cache hitting.

A `Compactor` follows one conversation across turns (an agent loop): it remembers which
messages it masked, clamped or dropped, and re-applies exactly those decisions to the growing
history, so the prompt prefix stays byte-identical between compactions. It compacts when
- the prompt reaches the trigger (or the hard limit): it must, down to the target; or
- below the trigger, when masking the outputs that became old pays for itself: the rewrite is a
  cache miss now, the smaller prefix saves a cache read on every later turn.
`compact()` is one turn of a fresh compactor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tokenpilot._compact._count import MessageCounter
from tokenpilot._compact._invariants import check
from tokenpilot._compact._report import Action, CompactResult, CostEffect
from tokenpilot._compact._settings import Preset, Pricing, Settings, resolve_policy
from tokenpilot._compact._steps import (
    STEP_FUNCTIONS,
    Entry,
    StepContext,
    head_length,
    head_length_of,
    total_tokens,
)
from tokenpilot._compact._summarize import Summarizer, artifact_summary, extractive, llm
from tokenpilot._config import load_config
from tokenpilot._exceptions import BudgetError, InputError, TokenpilotError
from tokenpilot._messages import Conversation, Message, Text, ToolResult, parse
from tokenpilot._models import get_model
from tokenpilot._tokens import tokenizer_for

log = logging.getLogger(__name__)

MIN_HORIZON = 8


@dataclass(frozen=True, slots=True)
class _Plan:
    """Decisions carried from turn to turn, by input position."""

    replaced: dict[int, Message]
    dropped: frozenset[int]
    summary: Message | None


_EMPTY_PLAN = _Plan({}, frozenset(), None)


def _summarizer_from(value: Summarizer | str | None, steps: Sequence[str]) -> Summarizer | None:
    if callable(value):
        return value
    config = load_config().section("compact")
    name = value if isinstance(value, str) else config.get("summarizer", "extractive")
    if name == "extractive":
        return extractive
    if name == "none":
        return None
    if name == "llm":
        url, model = config.get("llm_url"), config.get("llm_model")
        if not isinstance(url, str) or not isinstance(model, str):
            raise InputError("the llm summarizer needs [compact] llm_url and llm_model in the config")
        key_env = config.get("llm_api_key_env", "OPENAI_API_KEY")
        return llm(url, model, api_key_env=str(key_env) if key_env else None)
    raise InputError(f"unknown summarizer {name!r} (extractive, llm, none, or a callable)")


class Compactor:
    """Compacts one conversation turn after turn, keeping its decisions stable for the cache.

    >>> compactor = Compactor(model="gpt-4o", budget=32_000)
    >>> history = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    >>> compactor.step(history) == history          # under the trigger: unchanged
    True
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        budget: int | None = None,
        policy: str | Preset = "default",
        summarizer: Summarizer | str | None = None,
        pricing: Pricing | None = None,
        provider: str = "auto",
        **thresholds: Any,
    ) -> None:
        info = get_model(model)
        self.tokenizer = tokenizer_for(info.name)
        self.preset = resolve_policy(policy)
        config = load_config()
        settings: Settings = self.preset.settings
        for key, value in config.section("compact").items():
            if key not in ("summarizer", "llm_url", "llm_model", "llm_api_key_env"):
                settings = settings.updated({key: value}, source=config.source_of("compact", key))
        self.settings = settings.updated(thresholds)
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0):
            raise InputError(f"budget must be a positive number of tokens, got {budget!r}")
        self.budget = budget or info.context_window
        enforced = self.tokenizer.safe_budget(self.budget)
        s = self.settings
        self.hard_limit = min(enforced, s.tokens(s.hard_limit, enforced))
        self.trigger = min(self.hard_limit, s.tokens(s.trigger, enforced))
        self.target = min(self.trigger, s.tokens(s.target, enforced))
        # No price known and none given: below the trigger nothing can be shown to pay, so
        # nothing changes there (no masking, no clamping).
        self.priced = pricing is not None or info.input_per_mtok is not None
        # Outputs clamped on arrival even without a price (the proxy's trimming is asked for).
        self.clamp_always = False
        self.pricing = pricing or Pricing.for_model(info.name)
        self.provider = provider
        self.summarizer = _summarizer_from(summarizer, self.preset.steps)
        self._counter: MessageCounter | None = None
        self._history: list[Any] = []
        self._messages: list[Message] = []
        self._plan = _EMPTY_PLAN
        self._previous: list[Message] = []
        self._memo: dict[tuple[str, int], tuple[Message, Message]] = {}
        self._rendered: dict[int, tuple[Message, Any]] = {}
        self._originals: dict[str, tuple[int, int]] = {}
        self._parts: dict[int, Any] = {}
        self._tool_budget = _tool_budgets()
        self.last_output: tuple[Message, ...] = ()  # the messages of the last result

    # -- state -----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the conversation (the next turn starts fresh)."""
        self._history, self._messages, self._plan, self._previous = [], [], _EMPTY_PLAN, []
        self._memo.clear()
        self._rendered.clear()
        self._originals.clear()
        self._parts.clear()

    def _sync(self, conversation: Conversation, raw_messages: Sequence[Any]) -> None:
        """Take in the new history; when it is not an extension of the last one, start fresh."""
        n = len(self._history)
        same = n <= len(raw_messages) and all(
            a is b or a == b for a, b in zip(self._history, raw_messages[:n], strict=False)
        )
        if not same:
            self.reset()
            n = 0
        self._history = list(raw_messages)
        self._messages = self._messages[:n] + list(conversation.messages[n:])

    def _counter_for(self, provider: str) -> MessageCounter:
        if self._counter is None or self._counter.provider != provider:
            self._counter = MessageCounter(self.tokenizer, provider)
        return self._counter

    # -- one turn --------------------------------------------------------------------------

    def step(self, messages: Any, format: str = "auto") -> Any:
        """The compacted prompt for this turn, in the input's format and shape."""
        return self.run(messages, format).messages

    def run(self, messages: Any, format: str = "auto") -> CompactResult:
        """Compact this turn's prompt; returns the result and its report."""
        fmt = self.provider if format == "auto" and self.provider != "auto" else format
        raw = messages["messages"] if isinstance(messages, dict) else messages
        if self._messages and isinstance(raw, list) and fmt != "auto":
            # Fast path for a growing history: parse only the new messages.
            conversation = self._parse_incremental(raw, fmt)
            if isinstance(messages, dict):
                conversation = Conversation(conversation.provider, conversation.messages, messages, "body")
        else:
            conversation = parse(messages, fmt)
        self._sync(conversation, raw)
        counter = self._counter_for(conversation.provider)
        ctx = self._context(counter, conversation)
        entries = self._apply(self._plan)
        actions: list[Action] = []
        tokens = total_tokens(entries, ctx)
        pressure = tokens >= self.trigger or tokens > self.hard_limit
        if (
            "clamp" in self.preset.steps
            and self.settings.enabled
            and (self.priced or pressure or self.clamp_always)
        ):
            entries, clamp_actions = STEP_FUNCTIONS["clamp"](entries, ctx)
            actions += list(clamp_actions)
        before = total_tokens(tuple(Entry(i, m) for i, m in enumerate(self._messages)), ctx)
        tokens = total_tokens(entries, ctx)
        compacted = False
        if self.settings.enabled:
            if tokens >= self.trigger or tokens > self.hard_limit:
                entries, more = self._forced(entries, ctx, tokens)
                actions += more
                compacted = True
            elif self.settings.voluntary and self.priced:
                entries, more = self._voluntary(entries, ctx, tokens)
                actions += more
                compacted = bool(more)
        # Decisions carried to the next turn; a synthetic "interrupted" result is not one of them.
        plan = _plan_of(entries, self._messages)
        if self.settings.interrupt_dangling:
            entries, more = _interrupt_dangling(entries, counter)
            actions += more
        out_messages = [e.message for e in entries]
        after = total_tokens(entries, ctx)
        problems = check(out_messages, conversation.provider)
        if problems:
            broken_input = check(conversation.messages, conversation.provider)
            if broken_input:
                first = broken_input[0]
                raise InputError(f"the conversation is not valid: message {first.index}: {first.message}")
            # A bug: never hand back a broken request.
            raise TokenpilotError(
                f"internal error: compaction broke the conversation ({problems[0].message})"
            )
        if self.settings.enabled and after > self.hard_limit:
            raise BudgetError(
                f"the prompt needs {after:,} tokens, over the hard limit of {self.hard_limit:,} "
                "(system prompt and task alone are too large)"
            )
        if compacted:
            log.debug(
                "compacted",
                extra={"tokens_before": tokens, "tokens_after": after, "actions": len(actions)},
            )
        self._plan = plan
        self._previous = out_messages
        self.last_output = tuple(out_messages)
        result = conversation.with_messages(tuple(out_messages))
        rendered = self._render(result)
        return CompactResult(
            messages=rendered,
            tokens_before=before,
            tokens_after=after,
            actions=tuple(actions),
            format=conversation.provider,
            budget=self.budget,
            target=self.target,
            compacted=compacted,
            exact=self.tokenizer.exact,
            tokenizer=self.tokenizer.name,
        )

    def _parse_incremental(self, messages: list[Any], fmt: str) -> Conversation:
        n = len(self._history)
        if n <= len(messages) and all(a is b for a, b in zip(self._history, messages[:n], strict=False)):
            tail = parse(messages[n:], fmt).messages if messages[n:] else ()
            return Conversation(fmt, tuple(self._messages[:n]) + tuple(tail))  # type: ignore[arg-type]
        return parse(messages, fmt)

    def _render(self, conversation: Conversation) -> Any:
        counter = self._counter_for(conversation.provider)
        out = []
        for message in conversation.messages:
            hit = self._rendered.get(id(message))
            if hit is None or hit[0] is not message:
                hit = (message, counter.render(message))
                self._rendered[id(message)] = hit
            out.append(hit[1])
        if conversation.shape == "body":
            return {**conversation.body, "messages": out}
        return out

    def _context(self, counter: MessageCounter, conversation: Conversation) -> StepContext:
        s = self.settings
        # An output may take at most a quarter of the target, so a compaction can keep it.
        clamp_tokens = min(s.tokens(s.clamp, self.hard_limit), self.target // 4)
        summarize: Callable[[Sequence[Message]], str] | None = None
        summary_tokens = max(200, min(2_000, self.target // 10))
        if self.summarizer is extractive:
            room = summary_tokens - 40  # the summary's header line

            def summarize(messages: Sequence[Message]) -> str:
                return artifact_summary(messages, room, self.tokenizer)

        elif self.summarizer is not None:
            user = self.summarizer

            def summarize(messages: Sequence[Message]) -> str:
                return user([counter.render(m) for m in messages])

        return StepContext(
            counter=counter,
            keep_last=s.keep_last,
            clamp_tokens=max(64, clamp_tokens),
            min_mask_tokens=s.min_mask_tokens,
            target=self.target,
            fixed_tokens=counter.fixed(conversation),
            keep_exchanges=s.keep_exchanges,
            summarize=summarize,
            summary_tokens=summary_tokens,
            index_share=s.index,
            index_max=s.index_max,
            clamp_index_share=s.clamp_index,
            originals=self._originals,
            spill=s.spill,
            tool_budget=self._tool_budget,
            memo=self._memo,
            parts=self._parts,
        )

    def _apply(self, plan: _Plan) -> tuple[Entry, ...]:
        entries = []
        head = head_length_of(self._messages)
        for i, message in enumerate(self._messages):
            if i == head and plan.summary is not None:
                entries.append(Entry(-1, plan.summary))
            if i in plan.dropped:
                continue
            entries.append(Entry(i, plan.replaced.get(i, message)))
        return tuple(entries)

    # -- decisions -------------------------------------------------------------------------

    def _horizon(self, tokens_after: int) -> int:
        """Turns a compaction made now is expected to pay back over."""
        if self.settings.horizon is not None:
            return self.settings.horizon
        turns = sum(1 for m in self._messages if m.role == "assistant")
        # Lindy: a conversation that has run n turns is expected to run about n more.
        horizon = max(MIN_HORIZON, turns)
        # ...but only until the prompt grows to the trigger: that compaction rewrites it anyway.
        if turns and self._counter is not None:
            grown = sum(self._counter.tokens(m) for m in self._messages[head_length_of(self._messages) :])
            per_turn = grown / turns
            if per_turn > 0:
                horizon = min(horizon, max(1, int((self.trigger - tokens_after) / per_turn)))
        return horizon

    def _cached_prefix(self, entries: Sequence[Entry], ctx: StepContext) -> int:
        """Tokens of this prompt the provider has cached from the last turn."""
        tokens = ctx.fixed_tokens
        if self._previous:
            for previous, entry in zip(self._previous, entries, strict=False):
                if previous is not entry.message:
                    break
                tokens += ctx.counter.tokens(entry.message)
        else:  # first call: assume the prompt up to the last assistant message was sent before
            last = max((i for i, e in enumerate(entries) if e.message.role == "assistant"), default=0)
            tokens += sum(ctx.counter.tokens(e.message) for e in entries[:last])
        return tokens if tokens >= self.pricing.min_cached_prefix else 0

    def _bill(self, total: int, cached: int) -> float:
        p = self.pricing
        return cached * p.cache_read + (total - cached) * p.cache_write

    def _cost(self, old: Sequence[Entry], new: Sequence[Entry], ctx: StepContext, forced: bool) -> CostEffect:
        t_old, t_new = total_tokens(old, ctx), total_tokens(new, ctx)
        cached = self._cached_prefix(old, ctx)
        first = next(
            (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a.message is not b.message),
            min(len(old), len(new)),
        )
        kept_prefix = ctx.fixed_tokens + sum(ctx.counter.tokens(e.message) for e in new[:first])
        new_cached = min(cached, kept_prefix)
        if new_cached < self.pricing.min_cached_prefix:
            new_cached = 0
        extra = self._bill(t_new, new_cached) - self._bill(t_old, cached)
        saved = (t_old - t_new) * self.pricing.cache_read
        horizon = self._horizon(t_new)
        unit = self.pricing.input or 1.0  # report in input-token equivalents
        return CostEffect(
            extra_now=extra / unit,
            saved_per_turn=saved / unit,
            horizon=horizon,
            net=(saved * horizon - extra) / unit,
            break_even_turns=(max(0.0, extra) / saved) if saved > 0 else None,
            forced=forced,
        )

    def _run_steps(
        self, entries: tuple[Entry, ...], ctx: StepContext, names: Sequence[str]
    ) -> tuple[tuple[Entry, ...], list[Action]]:
        actions: list[Action] = []
        for name in names:
            if name not in self.preset.steps:
                continue
            if name == "window" and total_tokens(entries, ctx) <= self.target:
                break
            entries, done = STEP_FUNCTIONS[name](entries, ctx)
            actions += list(done)
        return entries, actions

    def _forced(
        self, entries: tuple[Entry, ...], ctx: StepContext, tokens: int
    ) -> tuple[tuple[Entry, ...], list[Action]]:
        # Windowing with a summary keeps recent outputs whole and the assistant's reasoning in the
        # summary: on replayed runs it keeps more of what the next turns use than masking does
        # (bench/results/replay.md). Masking is left to the cost-driven voluntary path.
        if "window" in self.preset.steps:
            new, actions = self._run_steps(entries, ctx, ("prune", "dedupe", "window"))
        else:
            new, actions = self._run_steps(entries, ctx, ("prune", "dedupe", "mask"))
            keep = ctx.keep_last
            while total_tokens(new, ctx) > self.target and keep > 0 and "mask" in self.preset.steps:
                keep //= 2
                new, more = STEP_FUNCTIONS["mask"](new, ctx, keep)
                actions += list(more)
        if total_tokens(new, ctx) > self.target and "window" not in self.preset.steps:
            # Hard budgets are hard: a policy without a window still gets one as a last resort.
            new, more = STEP_FUNCTIONS["window"](new, ctx)
            actions += list(more)
        after = total_tokens(new, ctx)
        if after > self.target:
            head = ctx.fixed_tokens + sum(ctx.counter.tokens(e.message) for e in new[: head_length(new)])
            raise BudgetError(
                f"cannot compact to the target of {self.target:,} tokens: the system prompt and task "
                f"alone take {head:,}"
            )
        return new, _with_cost(actions, self._cost(entries, new, ctx, forced=True))

    def _voluntary(
        self, entries: tuple[Entry, ...], ctx: StepContext, tokens: int
    ) -> tuple[tuple[Entry, ...], list[Action]]:
        new, actions = self._run_steps(entries, ctx, ("dedupe", "mask"))
        changed = sum(1 for a in actions if a.kind in ("mask", "dedupe"))
        if not actions or changed < self.settings.batch:
            return entries, []
        cost = self._cost(entries, new, ctx, forced=False)
        if cost.net <= 0 or cost.saved_per_turn * cost.horizon < self.settings.payback * cost.extra_now:
            return entries, []
        return new, _with_cost(actions, cost)


def _tool_budgets() -> Callable[[str | None], int | None] | None:
    """Tools' own budgets from `[trim.tools.NAME]` (looked up by program name, then as given)."""
    from tokenpilot._trim._detect import tool_name
    from tokenpilot._trim._settings import trim_settings

    budgets = {name: t.budget for name, t in trim_settings().tools.items() if t.budget is not None}
    if not budgets:
        return None

    def budget_of(label: str | None) -> int | None:
        if not label:
            return None
        found = budgets.get(tool_name(label))
        return found if found is not None else budgets.get(label)

    return budget_of


def _with_cost(actions: list[Action], cost: CostEffect) -> list[Action]:
    if not actions:
        return actions
    first = actions[0]
    return [
        Action(first.kind, first.positions, first.tokens_before, first.tokens_after, first.detail, cost),
        *actions[1:],
    ]


def _plan_of(entries: Sequence[Entry], messages: Sequence[Message]) -> _Plan:
    replaced: dict[int, Message] = {}
    present: set[int] = set()
    summary = None
    for entry in entries:
        if entry.origin < 0:
            summary = entry.message
            continue
        present.add(entry.origin)
        if entry.message is not messages[entry.origin]:
            replaced[entry.origin] = entry.message
    dropped = frozenset(i for i in range(len(messages)) if i not in present)
    return _Plan(replaced, dropped, summary)


def _interrupt_dangling(
    entries: tuple[Entry, ...], counter: MessageCounter
) -> tuple[tuple[Entry, ...], list[Action]]:
    """A trailing assistant message's unanswered calls get a synthetic "interrupted" result."""
    last = max((i for i, e in enumerate(entries) if e.message.role == "assistant"), default=-1)
    if last < 0:
        return entries, []
    answered = {r.call_id for e in entries[last + 1 :] for r in e.message.tool_results}
    missing = [c for c in entries[last].message.tool_calls if c.id not in answered]
    if not missing:
        return entries, []
    text = "[tokenpilot: interrupted, the tool call got no result]"
    results = [ToolResult(call_id=c.id, content=(Text(text),), is_error=True) for c in missing]
    if counter.provider == "anthropic":
        added = [Message(role="user", blocks=tuple(results), content_is_text=False)]
        if last + 1 < len(entries):  # results go first in the user message that follows
            follow = entries[last + 1].message
            merged = Message(role="user", blocks=(*results, *follow.blocks), content_is_text=False)
            out = (*entries[: last + 1], Entry(entries[last + 1].origin, merged), *entries[last + 2 :])
            return tuple(out), [
                Action("interrupt", (entries[last].origin,), 0, counter.tokens(merged), "interrupted call")
            ]
    else:
        added = [Message(role="tool", blocks=(r,)) for r in results]
    insert_at = last + 1 + sum(1 for e in entries[last + 1 :] if e.message.role == "tool")
    new_entries = (*entries[:insert_at], *(Entry(-1, m) for m in added), *entries[insert_at:])
    tokens = sum(counter.tokens(m) for m in added)
    return tuple(new_entries), [
        Action("interrupt", (entries[last].origin,), 0, tokens, f"{len(missing)} interrupted call(s)")
    ]


def compact(
    messages: Any,
    budget: int | None = None,
    *,
    model: str | None = None,
    policy: str | Preset = "default",
    summarizer: Summarizer | str | None = None,
    format: str = "auto",
    pricing: Pricing | None = None,
    **thresholds: Any,
) -> CompactResult:
    """Compact a conversation (a messages array or request body, OpenAI or Anthropic) to fit.

    Under the trigger it returns the input unchanged unless masking old outputs pays for itself
    at the model's prices; at the trigger it reduces to the target; the output is always a valid
    request. Thresholds: see `Settings` (trigger, target, hard_limit, keep_last, ...).

    >>> result = compact([{"role": "user", "content": "fix the bug"}], 1000, model="gpt-4o")
    >>> result.tokens <= 1000, result.actions
    (True, ())
    """
    compactor = Compactor(
        model=model, budget=budget, policy=policy, summarizer=summarizer, pricing=pricing, **thresholds
    )
    return compactor.run(messages, format)
