"""The proxy's settings: command-line flags over `[serve]` in tokenpilot.toml over defaults.

    [serve]
    mode = "enforce"                      # observe | enforce | optimize
    default_scope = "serve"
    scope_header = "x-tokenpilot-scope"   # the scope a caller names for itself
    session_header = "x-my-session"       # after X-Tokenpilot-Session and X-Claude-Code-Session-Id
    count_tokens_upstream = false         # forward /v1/messages/count_tokens instead of answering it
    shutdown_grace = 10                   # seconds in-flight calls may finish after SIGTERM
    otel = false                          # OpenTelemetry GenAI spans and metrics (tokenpilot[otel])
    hard_stop = false                     # end a stream that crosses a hard budget mid-way
    failover = false                      # on 429/5xx/529: the upstream's fallback, else tp.failover's model

    [serve.key_scopes]                    # API key -> scope by the key's SHA-256 prefix (never the key)
    "sha256:3f2a9c0b1d4e" = "acme/ci"

    [serve.upstreams.openai]              # one table per upstream; `api` is openai or anthropic
    base_url = "https://api.openai.com"
    api_key_env = "OPENAI_API_KEY"        # when set, this key replaces the client's own
    [serve.upstreams.local]
    api = "openai"
    base_url = "http://127.0.0.1:8000"
    models = ["llama-*", "qwen*"]         # model names (globs) that go to this upstream
    fallback = "openai"                   # with failover: where this upstream's failed calls go next

This module imports nothing heavy: `tokenpilot serve --help` and config errors stay fast.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tokenpilot._exceptions import ConfigError

MODES = ("observe", "enforce", "optimize")
APIS = ("openai_chat", "openai_responses", "anthropic_messages")
DEFAULT_BASES = {"openai": "https://api.openai.com", "anthropic": "https://api.anthropic.com"}
KEYS = {
    "mode",
    "host",
    "port",
    "db",
    "default_scope",
    "scope_header",
    "session_header",
    "count_tokens_upstream",
    "otel",
    "hard_stop",
    "key_scopes",
    "upstreams",
    "timeout",
    "log_calls",
    "shutdown_grace",
    "failover",
}


@dataclass(frozen=True, slots=True)
class Upstream:
    """One provider endpoint: where requests of its API family (and matching models) go."""

    name: str
    api: str  # "openai" or "anthropic"
    base_url: str
    api_key_env: str | None = None
    models: tuple[str, ...] = ()
    fallback: str | None = None  # the upstream (same API) a failed call goes to next, with failover on

    def serves(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)

    def api_key(self) -> str | None:
        """The configured key (from its environment variable), or None to pass the client's own."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(f"environment variable {self.api_key_env} is not set", key="api_key_env")
        return key


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """Everything `tokenpilot serve` runs with."""

    host: str = "127.0.0.1"
    port: int = 4141
    mode: str = "observe"
    db: str | None = None
    upstreams: tuple[Upstream, ...] = (
        Upstream("openai", "openai", DEFAULT_BASES["openai"]),
        Upstream("anthropic", "anthropic", DEFAULT_BASES["anthropic"]),
    )
    default_scope: str = "serve"
    scope_header: str = "x-tokenpilot-scope"
    session_header: str | None = None
    key_scopes: dict[str, str] = field(default_factory=dict)
    count_tokens_upstream: bool = False
    otel: bool = False
    hard_stop: bool = False
    failover: bool = False  # retryable upstream errors go to the fallback upstream or the chain's next model
    timeout: float = 600.0
    log_calls: bool = True
    shutdown_grace: float = 10.0  # seconds in-flight calls may finish after SIGTERM before they are cut

    def upstream_for(self, family: str, model: str | None) -> Upstream:
        """The first upstream of the API family that lists the model, else the family's first."""
        candidates = [u for u in self.upstreams if u.api == family]
        if model is not None:
            for upstream in candidates:
                if upstream.serves(model):
                    return upstream
        for upstream in candidates:
            if not upstream.models:
                return upstream
        return candidates[0]

    def named(self, name: str) -> Upstream | None:
        return next((u for u in self.upstreams if u.name == name), None)

    def scope_for_key(self, key: str | None) -> str | None:
        if not key or not self.key_scopes:
            return None
        return self.key_scopes.get(key_fingerprint(key))


def key_fingerprint(key: str) -> str:
    """How a key is named in config and logs: never the key, only its SHA-256 prefix."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _bool(section: dict[str, Any], key: str, source: str, default: bool) -> bool:
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"must be true or false, got {value!r}", source=source, key=f"serve.{key}")
    return value


def _text(section: dict[str, Any], key: str, source: str, default: str | None) -> str | None:
    value = section.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"must be a non-empty string, got {value!r}", source=source, key=f"serve.{key}")
    return value


def _upstreams(raw: Any, source: str) -> tuple[Upstream, ...]:
    if not isinstance(raw, dict):
        raise ConfigError("must be a table of [serve.upstreams.NAME]", source=source, key="serve.upstreams")
    found: list[Upstream] = []
    for name, spec in raw.items():
        key = f"serve.upstreams.{name}"
        if not isinstance(spec, dict):
            raise ConfigError("must be a table", source=source, key=key)
        unknown = set(spec) - {"api", "base_url", "api_key_env", "models", "fallback"}
        if unknown:
            raise ConfigError(f"unknown key {sorted(unknown)[0]!r}", source=source, key=key)
        api = spec.get("api", name if name in DEFAULT_BASES else None)
        if api not in DEFAULT_BASES:
            raise ConfigError(
                f"api must be openai or anthropic, got {api!r}", source=source, key=f"{key}.api"
            )
        base = spec.get("base_url", DEFAULT_BASES[api])
        if not isinstance(base, str) or not base.startswith(("http://", "https://")):
            raise ConfigError(f"must be an http(s) URL, got {base!r}", source=source, key=f"{key}.base_url")
        models = spec.get("models", [])
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise ConfigError("must be a list of model names or globs", source=source, key=f"{key}.models")
        env = spec.get("api_key_env")
        if env is not None and not isinstance(env, str):
            raise ConfigError("must be an environment variable name", source=source, key=f"{key}.api_key_env")
        fallback = spec.get("fallback")
        if fallback is not None and (
            not isinstance(fallback, str) or fallback not in raw or fallback == name
        ):
            raise ConfigError(
                f"must name another [serve.upstreams] table, got {fallback!r}",
                source=source,
                key=f"{key}.fallback",
            )
        found.append(Upstream(name, api, base.rstrip("/"), env, tuple(models), fallback))
    for upstream in found:
        target = next((u for u in found if u.name == upstream.fallback), None)
        if target is not None and target.api != upstream.api:
            raise ConfigError(
                f"must be an upstream of the same api ({upstream.api}), got {target.name!r} ({target.api})",
                source=source,
                key=f"serve.upstreams.{upstream.name}.fallback",
            )
    for family in DEFAULT_BASES:
        # Every family keeps a catch-all upstream for the models no table lists.
        if not any(u.api == family and not u.models for u in found):
            found.append(Upstream(family, family, DEFAULT_BASES[family]))
    return tuple(found)


def load_settings(
    *,
    config_file: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    mode: str | None = None,
    db: str | None = None,
    openai_base: str | None = None,
    anthropic_base: str | None = None,
) -> ServeSettings:
    """Flags over `[serve]` (from `config_file`, else the user and project config) over defaults."""
    from tokenpilot._config import load_config, parse_config_file

    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError("no such file", source=str(config_file))
        parsed = parse_config_file(config_file)
        section = parsed.sections.get("serve", {})
        source = str(config_file)
    else:
        config = load_config()
        section = config.section("serve")
        source = config.source_of("serve", "mode")
    if not isinstance(section, dict):
        raise ConfigError("must be a table", source=source, key="serve")
    unknown = set(section) - KEYS
    if unknown:
        known = ", ".join(sorted(KEYS))
        raise ConfigError(f"unknown key (known: {known})", source=source, key=f"serve.{sorted(unknown)[0]}")
    settings = ServeSettings()
    chosen_mode = mode or section.get("mode", settings.mode)
    if chosen_mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {chosen_mode!r}", source=source)
    key_scopes = section.get("key_scopes", {})
    if not isinstance(key_scopes, dict) or not all(isinstance(v, str) for v in key_scopes.values()):
        raise ConfigError("must be a table of key fingerprint = scope", source=source, key="serve.key_scopes")
    timeout = section.get("timeout", settings.timeout)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ConfigError(f"must be positive seconds, got {timeout!r}", source=source, key="serve.timeout")
    grace = section.get("shutdown_grace", settings.shutdown_grace)
    if isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0:
        raise ConfigError(f"must be seconds >= 0, got {grace!r}", source=source, key="serve.shutdown_grace")
    upstreams = _upstreams(section["upstreams"], source) if "upstreams" in section else settings.upstreams
    bases = {"openai": openai_base, "anthropic": anthropic_base}
    for family, base in bases.items():
        if base is None:
            continue
        if not base.startswith(("http://", "https://")):
            raise ConfigError(f"--{family}-base must be an http(s) URL, got {base!r}")
        # The flag replaces the family's default upstream (the one without a model list).
        upstreams = tuple(
            replace(u, base_url=base.rstrip("/")) if u.api == family and not u.models else u
            for u in upstreams
        )
    chosen_port = port if port is not None else section.get("port", settings.port)
    if isinstance(chosen_port, bool) or not isinstance(chosen_port, int) or not 0 <= chosen_port < 65536:
        raise ConfigError(f"port must be 0-65535, got {chosen_port!r}", source=source)
    return ServeSettings(
        host=host or _text(section, "host", source, settings.host) or settings.host,
        port=chosen_port,
        mode=chosen_mode,
        db=db or _text(section, "db", source, None),
        upstreams=upstreams,
        default_scope=_text(section, "default_scope", source, settings.default_scope)
        or settings.default_scope,
        scope_header=(_text(section, "scope_header", source, settings.scope_header) or "").lower(),
        session_header=(_text(section, "session_header", source, None) or "").lower() or None,
        key_scopes=dict(key_scopes),
        count_tokens_upstream=_bool(section, "count_tokens_upstream", source, False),
        otel=_bool(section, "otel", source, False),
        hard_stop=_bool(section, "hard_stop", source, False),
        failover=_bool(section, "failover", source, False),
        timeout=float(timeout),
        log_calls=_bool(section, "log_calls", source, True),
        shutdown_grace=float(grace),
    )
