"""One message model for OpenAI Chat and Anthropic Messages, with lossless adapters.

from tokenpilot._messages import parse, render
conversation = parse(request_body)          # format auto-detected
assert render(conversation) == request_body  # unchanged -> equal JSON
"""

from tokenpilot._messages._anthropic import from_anthropic, to_anthropic
from tokenpilot._messages._convert import detect_format, parse, render
from tokenpilot._messages._model import (
    Block,
    Conversation,
    Image,
    Message,
    Opaque,
    Provider,
    Role,
    Text,
    Thinking,
    ToolCall,
    ToolResult,
)
from tokenpilot._messages._openai import from_openai, to_openai

__all__ = [
    "Block",
    "Conversation",
    "Image",
    "Message",
    "Opaque",
    "Provider",
    "Role",
    "Text",
    "Thinking",
    "ToolCall",
    "ToolResult",
    "detect_format",
    "from_anthropic",
    "from_openai",
    "parse",
    "render",
    "to_anthropic",
    "to_openai",
]
