"""`tokenpilot serve`: an OpenAI- and Anthropic-compatible local proxy that accounts for every call.

Nothing of the server (Starlette, uvicorn, httpx, orjson) loads until `run` or `Proxy` is used:
`import tokenpilot` stays light. The settings module is light and safe to import anywhere.
"""

from __future__ import annotations

from tokenpilot._serve.settings import MODES, ServeSettings, Upstream, key_fingerprint, load_settings

__all__ = ["MODES", "ServeSettings", "Upstream", "key_fingerprint", "load_settings"]
