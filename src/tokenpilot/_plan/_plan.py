"""`plan_call`: max_tokens, prompt tier, output mode and model for one call, each with its reason."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenpilot._config import load_config
from tokenpilot._exceptions import InputError
from tokenpilot._models import ModelInfo, default_model_name, get_model
from tokenpilot._plan._compaction import Alternative, advice_text, find_alternative, room_for_output
from tokenpilot._plan._history import CallHistory
from tokenpilot._plan._max_tokens import MaxTokensChoice, learned_max_tokens, table_max_tokens
from tokenpilot._plan._output_mode import FileToWrite, OutputModeChoice, choose_output_mode, files_from_paths
from tokenpilot._plan._request import Request, RequestView, view_request
from tokenpilot._plan._routing import chain_for, next_model, over_budget, route
from tokenpilot._plan._settings import PlanSettings, RoutingSettings, plan_settings, routing_settings
from tokenpilot._plan._task import COMPLEXITIES, TASK_TYPES, Detection, detect_complexity, detect_task_type
from tokenpilot._plan._tiers import AssembledPrompt, PromptConditions, PromptRegistry
from tokenpilot._tokens import count_messages, tokenizer_for

# The output estimate of the files to write gets this margin for the prose around them.
OUTPUT_ESTIMATE_MARGIN = 1.2
_TESTS = re.compile(r"(?<![a-z])(tests?|pytest|unittest|test suite|ci)(?![a-z])")
_CREATES = re.compile(r"(?<![a-z])(create|new file|new module|scaffold|add a file)(?![a-z])")


@dataclass(frozen=True, slots=True)
class Reason:
    """One choice of a plan, its value and why."""

    choice: str
    value: str
    why: str


@dataclass(frozen=True, slots=True)
class CallPlan:
    """How to make one call: model, max_tokens, prompt tier, output mode, and why each.

    `headroom` is what the window has left after the input and max_tokens. When the room left in
    the window caps max_tokens below what the table, the learned p90 or the files ask for
    (`wanted_max_tokens`), `compaction_needed` (> 0) says how many input tokens must go for the full
    answer and `alternative` names a model whose window fits, if any; `advice` says both in a line.
    `fits` is False only when the answer would get less than `min_output_tokens` (compact first).
    """

    model: str
    provider: str | None
    task_type: str
    complexity: str
    phase: str | None
    input_tokens: int
    input_exact: bool
    context_window: int
    max_tokens: int
    output_cap: int  # the most max_tokens may become: model's max output and room in the window
    headroom: int
    max_tokens_source: str
    prompt_tier: str  # "minimal", "full" or "as_given" (no prompt registry)
    output_mode: str  # "full_file", "structured_edit" or "text" (no files to write)
    compaction_needed: int
    reasons: tuple[Reason, ...]
    attempt: int = 1
    chain: tuple[str, ...] = ()
    prompt: AssembledPrompt | None = None
    output: OutputModeChoice | None = None
    body: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    wanted_max_tokens: int = 0  # asked for before the window's cap (within the model's max output)
    min_output_shortfall: int = 0  # input tokens to remove before the minimum answer fits
    alternative: Alternative | None = None

    @property
    def fits(self) -> bool:
        """False when the input leaves less than the minimum output room (compact first)."""
        return self.min_output_shortfall == 0

    @property
    def squeezed(self) -> bool:
        """True when the window's room caps max_tokens below what was asked for."""
        return self.compaction_needed > 0

    @property
    def advice(self) -> str | None:
        """What to do about a squeezed answer, one ASCII line (a proxy's header value), or None.

        >>> body = {"model": "gpt-4", "messages": [{"role": "user", "content": "word " * 5000}]}
        >>> print(plan_call(body, task_type="code_generation", complexity="high").advice)
        compact 1168 input tokens for the full 4096-token answer (gpt-4 max_tokens capped at 2928), or use ...
        """
        if not self.compaction_needed:
            return None
        return advice_text(
            self.model, self.max_tokens, self.wanted_max_tokens, self.compaction_needed, self.alternative
        )

    def to_request(self) -> dict[str, Any]:
        """The request body to send: the planned system prompt, this model and max_tokens."""
        body = copy.deepcopy(dict(self.body))
        body["model"] = self.model
        if "max_completion_tokens" in body:
            body["max_completion_tokens"] = self.max_tokens
        else:
            body["max_tokens"] = self.max_tokens
        return body

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `tokenpilot plan --json`."""
        return {
            "model": self.model,
            "provider": self.provider,
            "task_type": self.task_type,
            "complexity": self.complexity,
            "phase": self.phase,
            "input_tokens": self.input_tokens,
            "input_exact": self.input_exact,
            "context_window": self.context_window,
            "max_tokens": self.max_tokens,
            "max_tokens_source": self.max_tokens_source,
            "output_cap": self.output_cap,
            "headroom": self.headroom,
            "compaction_needed": self.compaction_needed,
            "wanted_max_tokens": self.wanted_max_tokens,
            "fits": self.fits,
            "advice": self.advice,
            "alternative": None
            if self.alternative is None
            else {
                "model": self.alternative.model,
                "context_window": self.alternative.context_window,
                "input_tokens": self.alternative.input_tokens,
                "cost_usd": self.alternative.cost_usd,
                "source": self.alternative.source,
            },
            "prompt_tier": self.prompt_tier,
            "prompt": None
            if self.prompt is None
            else {
                "tier": self.prompt.tier,
                "included": list(self.prompt.included),
                "left_out": list(self.prompt.left_out),
                "tokens": self.prompt.tokens,
                "full_tokens": self.prompt.full_tokens,
                "tokens_saved": self.prompt.tokens_saved,
            },
            "output_mode": self.output_mode,
            "output": None
            if self.output is None
            else {
                "mode": self.output.mode,
                "estimates": dict(self.output.estimates),
                "files": [
                    {
                        "path": f.path,
                        "action": f.action,
                        "full_file": f.full_file,
                        "structured_edit": f.structured_edit,
                    }
                    for f in self.output.files
                ],
            },
            "attempt": self.attempt,
            "chain": list(self.chain),
            "reasons": [{"choice": r.choice, "value": r.value, "why": r.why} for r in self.reasons],
        }


def with_system(body: Mapping[str, Any], provider: str, text: str) -> dict[str, Any]:
    """`body` with its system prompt replaced by `text` (Anthropic `system`, OpenAI first message)."""
    new = dict(body)
    if provider == "anthropic":
        old = body.get("system")
        marks = (
            [b.get("cache_control") for b in old if isinstance(b, Mapping)] if isinstance(old, list) else []
        )
        if marks and marks[-1]:  # keep the caller's prompt-cache breakpoint on the new prompt
            new["system"] = [{"type": "text", "text": text, "cache_control": marks[-1]}]
        else:
            new["system"] = text
        return new
    roles = [m.get("role") for m in body.get("messages", [])]
    role = "developer" if "developer" in roles and "system" not in roles else "system"
    messages = [m for m in body.get("messages", []) if m.get("role") not in ("system", "developer")]
    new["messages"] = [{"role": role, "content": text}, *messages]
    return new


@dataclass(frozen=True, slots=True)
class Fit:
    """The model-dependent part of a plan: counts and caps."""

    input_tokens: int
    input_exact: bool
    max_tokens: int
    output_cap: int
    headroom: int
    compaction_needed: int
    reason: str
    full_output: int = 0  # max_tokens wanted, within the model's max output
    min_output_shortfall: int = 0


def fit_output(body: Mapping[str, Any], info: ModelInfo, wanted: int, settings: PlanSettings) -> Fit:
    """Count the input for `info` and cap `wanted` by the model's max output and the window's room."""
    tokenizer = tokenizer_for(info.name)
    input_tokens = count_messages(body, model=info.name)
    room = room_for_output(info, input_tokens, settings.safety_margin)
    caps = [(room, "room left in the window")]
    if info.max_output_tokens is not None:
        caps.append((info.max_output_tokens, f"{info.name}'s max output"))
    output_cap, cap_label = min(caps)
    output_cap = max(0, output_cap)
    max_tokens = min(wanted, output_cap)
    full_output = min(wanted, info.max_output_tokens) if info.max_output_tokens is not None else wanted
    shortfall = max(0, settings.min_output_tokens - room)
    # Removing input only helps up to the model's own max output.
    compaction_needed = max(shortfall, full_output - room, 0)
    label = "" if tokenizer.exact else " (estimated input; window reduced by the estimate margin)"
    if shortfall:
        reason = (
            f"the input ({input_tokens:,} tokens) leaves {max(room, 0):,} of {info.context_window:,} "
            f"for the answer after a {settings.safety_margin:,}-token margin{label}, under the minimum "
            f"{settings.min_output_tokens:,}: compaction must remove at least {shortfall:,} tokens"
        )
    elif max_tokens < wanted:
        reason = f"capped from {wanted:,} by {cap_label} ({output_cap:,}){label}"
    else:
        reason = f"within {cap_label} ({output_cap:,}){label}"
    headroom = info.context_window - input_tokens - max_tokens
    return Fit(
        input_tokens,
        tokenizer.exact,
        max_tokens,
        output_cap,
        headroom,
        compaction_needed,
        reason,
        full_output,
        shortfall,
    )


def _choose_model(
    model: str | None,
    view: RequestView,
    task_type: str,
    complexity: str,
    routing: RoutingSettings,
    budget_used: Mapping[str, float] | None,
) -> Reason:
    if model:
        return Reason("model", model, "given by the caller")
    if routing.configured:
        choice = route(task_type, complexity, routing, budget_used=budget_used)
        return Reason("model", choice.model, choice.reason)
    if view.model:
        chosen = Reason("model", view.model, "the request's model (no [routing.tiers] configured)")
    else:
        default = default_model_name(load_config())
        chosen = Reason("model", default, "default model (no model given, no routing configured)")
    if over_budget(chosen.value, routing, budget_used):
        following = next_model(chosen.value, routing, budget_used=budget_used)
        if following is not None:
            why = f"{chosen.why}; its daily budget is past {routing.budget_warning:.0%}: next in its chain"
            return Reason("model", following, why)
    return chosen


def plan_call(
    request: Request,
    model: str | None = None,
    *,
    task_type: str | None = None,
    complexity: str | None = None,
    phase: str | None = None,
    files_to_write: Sequence[str | os.PathLike[str] | FileToWrite] | None = None,
    ledger: CallHistory | None = None,
    prompts: PromptRegistry | None = None,
    budget_used: Mapping[str, float] | None = None,
) -> CallPlan:
    """Plan one call: model, max_tokens, prompt tier and output mode, each with its reason.

    `request` is an OpenAI Chat or Anthropic Messages body, or a prompt string. `ledger` (anything
    with `records(phase=, model=, task_type=, limit=)`) lets max_tokens be learned from similar past
    calls; `prompts` (default: `[[plan.prompt_sections]]`) assembles the system prompt;
    `budget_used` maps model -> share of its daily budget spent, for routing.

    >>> plan = plan_call({"model": "gpt-4o", "messages": [{"role": "user", "content": "Explain decorators"}]})
    >>> plan.task_type, plan.max_tokens, plan.model
    ('explanation', 2000, 'gpt-4o')
    """
    settings = plan_settings()
    routing = routing_settings()
    view = view_request(request)
    reasons: list[Reason] = []

    if task_type is None:
        detected: Detection = detect_task_type(view)
        task_type = detected.value
        reasons.append(Reason("task_type", task_type, detected.reason))
    elif task_type not in TASK_TYPES:
        raise InputError(f"unknown task type {task_type!r} (known: {', '.join(TASK_TYPES)})")
    else:
        reasons.append(Reason("task_type", task_type, "given by the caller"))

    if complexity is None:
        detection = detect_complexity(view)
        complexity = detection.value
        reasons.append(Reason("complexity", complexity, detection.reason))
    elif complexity not in COMPLEXITIES:
        raise InputError(f"unknown complexity {complexity!r} (known: {', '.join(COMPLEXITIES)})")
    else:
        reasons.append(Reason("complexity", complexity, "given by the caller"))

    model_reason = _choose_model(model, view, task_type, complexity, routing, budget_used)
    reasons.append(model_reason)
    info = get_model(model_reason.value)

    output: OutputModeChoice | None = None
    if files_to_write:
        files = files_from_paths(files_to_write, tokenizer_for(info.name))
        output = choose_output_mode(
            files, new_file_tokens=settings.new_file_tokens, edit_fraction=settings.edit_fraction
        )
        reasons.append(Reason("output_mode", output.mode, output.reason))
    else:
        reasons.append(Reason("output_mode", "text", "no files to write given"))

    registry = prompts if prompts is not None else PromptRegistry.from_settings(settings)
    body: Mapping[str, Any] = view.body
    prompt: AssembledPrompt | None = None
    if len(registry):
        lowered = view.last_user_text.lower()
        conditions = PromptConditions(
            creates_files=output.creates_files if output else _CREATES.search(lowered) is not None,
            edits_files=output.edits_files if output else task_type == "code_generation",
            runs_tests=_TESTS.search(lowered) is not None,
            complexity=complexity,
            task_type=task_type,
        )
        tier = "full" if complexity == "high" else "minimal"
        prompt = registry.assemble(conditions, tier=tier, model=info.name)
        body = with_system(view.body, view.provider, prompt.text)
        why = (
            f"complexity high: every section ({prompt.tokens:,} tokens)"
            if tier == "full"
            else f"sections for this call ({', '.join(prompt.included) or 'none'}): "
            f"{prompt.tokens:,} tokens, {prompt.tokens_saved:,} saved against the full {prompt.full_tokens:,}"
            + (f" (left out: {', '.join(prompt.left_out)})" if prompt.left_out else "")
        )
        reasons.append(Reason("prompt_tier", tier, why))
    else:
        reasons.append(Reason("prompt_tier", "as_given", "no prompt sections registered; system prompt kept"))

    table = table_max_tokens(settings, task_type, complexity)
    wanted: MaxTokensChoice = table
    if ledger is not None:
        learned = learned_max_tokens(
            ledger, settings, task_type=task_type, model=info.name, phase=phase, table=table
        )
        if learned is not None:
            wanted = learned
        else:
            wanted = MaxTokensChoice(
                table.value,
                "table",
                table.reason + f" (fewer than {settings.learn_min_samples} similar past calls to learn from)",
            )
    if output is not None:
        needed = int(min(output.estimates.values()) * OUTPUT_ESTIMATE_MARGIN)
        if needed > wanted.value:
            wanted = MaxTokensChoice(
                needed,
                "output_estimate",
                wanted.reason
                + f"; raised to {needed:,}: the files to write need ≈ {min(output.estimates.values()):,}"
                f" tokens × {OUTPUT_ESTIMATE_MARGIN:g}",
            )
    fit = fit_output(body, info, wanted.value, settings)
    if view.max_tokens is not None and view.max_tokens != fit.max_tokens:
        note = f"; replaces the request's max_tokens {view.max_tokens:,}"
    else:
        note = ""
    reasons.append(Reason("max_tokens", str(fit.max_tokens), f"{wanted.reason}; {fit.reason}{note}"))
    chain = chain_for(info.name, routing)
    alternative: Alternative | None = None
    if fit.compaction_needed:
        alternative = find_alternative(body, info, fit.full_output, settings.safety_margin, chain)
        why = (
            f"the input leaves room for {fit.max_tokens:,} of the {fit.full_output:,} output tokens "
            f"asked for: remove {fit.compaction_needed:,} input tokens for the full answer"
        )
        if alternative is not None:
            price = "unknown price" if alternative.cost_usd is None else f"${alternative.cost_usd:,.4f}"
            where = "next in the routing chain" if alternative.source == "chain" else "from the registry"
            why += (
                f", or use {alternative.model} ({where}: {alternative.context_window:,}-token window, "
                f"{price} for this call)"
            )
        else:
            why += "; no model in the routing chain or the registry has a window that fits"
        reasons.append(Reason("compaction", str(fit.compaction_needed), why))

    return CallPlan(
        model=info.name,
        provider=info.provider,
        task_type=task_type,
        complexity=complexity,
        phase=phase,
        input_tokens=fit.input_tokens,
        input_exact=fit.input_exact,
        context_window=info.context_window,
        max_tokens=fit.max_tokens,
        output_cap=fit.output_cap,
        headroom=fit.headroom,
        max_tokens_source=wanted.source,
        prompt_tier=prompt.tier if prompt else "as_given",
        output_mode=output.mode if output else "text",
        compaction_needed=fit.compaction_needed,
        reasons=tuple(reasons),
        chain=chain,
        prompt=prompt,
        output=output,
        body=body,
        wanted_max_tokens=fit.full_output,
        min_output_shortfall=fit.min_output_shortfall,
        alternative=alternative,
    )
