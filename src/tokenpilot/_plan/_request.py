"""A request body (OpenAI Chat, Anthropic Messages or a prompt string) seen the way planning needs it.

Only what the choices read is extracted: the provider, the model, the system text, the tools
offered, the forced tool choice, the last user text and whether the last turn is a tool result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenpilot._exceptions import InputError

Request = Mapping[str, Any] | Sequence[Mapping[str, Any]] | str


@dataclass(frozen=True, slots=True)
class RequestView:
    """The parts of a request that planning reads."""

    provider: str  # "openai", "anthropic" or "prompt"
    model: str | None
    system_text: str
    tool_names: tuple[str, ...]
    tool_choice: str  # "auto", "none", "required" (any tool) or "tool:NAME" (one tool)
    last_user_text: str
    last_is_tool_result: bool
    max_tokens: int | None
    body: Mapping[str, Any]


def _text(content: Any) -> str:
    """Plain text of a content value; tool results and images are not the user's words."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        content = [content]
    if not isinstance(content, Sequence):
        raise InputError(f"message content must be a string or a list of parts, got {type(content).__name__}")
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, Mapping) and part.get("type") in ("text", "input_text"):
            parts.append(str(part.get("text", "")))
    return "\n".join(parts)


def _is_anthropic(body: Mapping[str, Any]) -> bool:
    if "system" in body or "stop_sequences" in body:
        return True
    tools = body.get("tools") or []
    if any(isinstance(t, Mapping) and "input_schema" in t for t in tools):
        return True
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping) and choice.get("type") in ("any", "tool"):
        return True
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list) and any(
            isinstance(p, Mapping) and p.get("type") in ("tool_use", "tool_result") for p in content
        ):
            return True
    return False


def _tool_choice(choice: Any) -> str:
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return {"auto": "auto", "none": "none", "required": "required", "any": "required"}.get(choice, "auto")
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if kind == "function":  # OpenAI: {"type": "function", "function": {"name": ...}}
            function = choice.get("function") or {}
            return f"tool:{function.get('name', '')}"
        if kind == "tool":  # Anthropic: {"type": "tool", "name": ...}
            return f"tool:{choice.get('name', '')}"
        if kind == "any":
            return "required"
        if kind in ("auto", "none"):
            return str(kind)
    return "auto"


def _tool_name(tool: Any) -> str:
    if not isinstance(tool, Mapping):
        return ""
    if isinstance(tool.get("function"), Mapping):
        return str(tool["function"].get("name", ""))
    return str(tool.get("name", ""))


def view_request(request: Request) -> RequestView:
    """Read a request body, a bare messages array or a prompt string; `InputError` when it is
    none of them or its fields are nonsense (a negative max_tokens, a model that is not a string).

    >>> view_request({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).provider
    'openai'
    """
    if isinstance(request, str):
        return RequestView(
            provider="prompt",
            model=None,
            system_text="",
            tool_names=(),
            tool_choice="none",
            last_user_text=request,
            last_is_tool_result=False,
            max_tokens=None,
            body={"messages": [{"role": "user", "content": request}]},
        )
    if isinstance(request, Sequence) and not isinstance(request, bytes):
        request = {"messages": list(request)}  # a bare messages array, as `compact` prints
    if not isinstance(request, Mapping):
        kind = type(request).__name__
        raise InputError(f"a request must be a JSON object, a messages array or a prompt string, got {kind}")
    for key in ("max_tokens", "max_completion_tokens"):
        value = request.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise InputError(f"{key} must be a whole number of tokens >= 1, got {value!r}")
    if request.get("model") is not None and not isinstance(request.get("model"), str):
        raise InputError(f"model must be a string, got {request.get('model')!r}")
    messages = request.get("messages")
    if not isinstance(messages, list):
        raise InputError("a request body needs a 'messages' list")
    for message in messages:
        if not isinstance(message, Mapping):
            raise InputError(f"each message must be an object, got {type(message).__name__}")
    anthropic = _is_anthropic(request)
    if anthropic:
        system_text = _text(request.get("system"))
    else:
        system_text = "\n".join(
            _text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
        )
    last_user_text = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            last_user_text = _text(message.get("content"))
            if last_user_text:
                break
    last_is_tool_result = False
    if messages:
        last = messages[-1]
        content = last.get("content")
        last_is_tool_result = last.get("role") in ("tool", "function") or (
            last.get("role") == "user"
            and isinstance(content, list)
            and bool(content)
            and all(isinstance(p, Mapping) and p.get("type") == "tool_result" for p in content)
        )
    tools = request.get("tools") or []
    if not isinstance(tools, list):
        raise InputError("'tools' must be a list")
    max_tokens = request.get("max_tokens", request.get("max_completion_tokens"))
    model = request.get("model")
    return RequestView(
        provider="anthropic" if anthropic else "openai",
        model=str(model) if model else None,
        system_text=system_text,
        tool_names=tuple(n for n in (_tool_name(t) for t in tools) if n),
        tool_choice=_tool_choice(request.get("tool_choice")) if tools else "none",
        last_user_text=last_user_text,
        last_is_tool_result=last_is_tool_result,
        max_tokens=int(max_tokens)
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool)
        else None,
        body=request,
    )
