"""Was a response cut off? OpenAI Chat Completions, OpenAI Responses and Anthropic Messages.

Truncated means the answer stopped because it ran out of room, not because it was done:

- OpenAI Chat Completions: a choice with `finish_reason == "length"`;
- OpenAI Responses: `status == "incomplete"` with `incomplete_details.reason == "max_output_tokens"`;
- Anthropic Messages: `stop_reason` `"max_tokens"` (the call's max_tokens) or
  `"model_context_window_exceeded"` (input + output filled the model's window).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokenpilot._exceptions import InputError


@dataclass(frozen=True, slots=True)
class ResponseCheck:
    """What a response says about truncation and usage."""

    provider: str
    truncated: bool
    reason: str | None  # "max_tokens" or "context_window" when truncated
    finish_reason: str | None  # the provider's own value
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    model: str | None = None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def check_response(response: Mapping[str, Any]) -> ResponseCheck:
    """Read a provider response body; `InputError` when it is not one tokenpilot knows.

    >>> check_response({"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "length",
    ...     "message": {"role": "assistant", "content": "…"}}]}).truncated
    True
    """
    if not isinstance(response, Mapping):
        raise InputError(f"a response must be a JSON object, got {type(response).__name__}")
    if response.get("type") == "error" or ("error" in response and "choices" not in response):
        raise InputError("the response is an error, not a completion; use failover() for errors")
    usage = response.get("usage") if isinstance(response.get("usage"), Mapping) else {}
    assert isinstance(usage, Mapping)
    model = response.get("model") if isinstance(response.get("model"), str) else None
    if "stop_reason" in response or response.get("type") == "message":
        stop = response.get("stop_reason")
        reason = {"max_tokens": "max_tokens", "model_context_window_exceeded": "context_window"}.get(
            str(stop)
        )
        return ResponseCheck(
            provider="anthropic",
            truncated=reason is not None,
            reason=reason,
            finish_reason=str(stop) if stop is not None else None,
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            cache_read_tokens=_int(usage.get("cache_read_input_tokens")) or 0,
            cache_write_tokens=_int(usage.get("cache_creation_input_tokens")) or 0,
            model=model,
        )
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    cached = _int(details.get("cached_tokens")) if isinstance(details, Mapping) else None
    if "choices" in response:
        choices = response.get("choices")
        if not isinstance(choices, list) or not choices:
            raise InputError("an OpenAI chat completion needs a non-empty 'choices' list")
        reasons = [c.get("finish_reason") for c in choices if isinstance(c, Mapping)]
        truncated = "length" in reasons
        prompt = _int(usage.get("prompt_tokens"))
        return ResponseCheck(
            provider="openai",
            truncated=truncated,
            reason="max_tokens" if truncated else None,
            finish_reason="length" if truncated else (str(reasons[0]) if reasons and reasons[0] else None),
            # OpenAI's prompt_tokens include the cached ones; report them apart, as Anthropic does.
            input_tokens=prompt - (cached or 0) if prompt is not None else None,
            output_tokens=_int(usage.get("completion_tokens")),
            cache_read_tokens=cached or 0,
            model=model,
        )
    if response.get("object") == "response" or "output" in response:
        incomplete = response.get("incomplete_details") or {}
        why = incomplete.get("reason") if isinstance(incomplete, Mapping) else None
        truncated = response.get("status") == "incomplete" and why == "max_output_tokens"
        prompt = _int(usage.get("input_tokens"))
        return ResponseCheck(
            provider="openai",
            truncated=truncated,
            reason="max_tokens" if truncated else None,
            finish_reason=str(why)
            if why
            else (str(response.get("status")) if response.get("status") else None),
            input_tokens=prompt - (cached or 0) if prompt is not None else None,
            output_tokens=_int(usage.get("output_tokens")),
            cache_read_tokens=cached or 0,
            model=model,
        )
    raise InputError(
        "not a response tokenpilot knows: expected an OpenAI chat completion ('choices'), "
        "an OpenAI response ('output') or an Anthropic message ('stop_reason')"
    )
