"""`tokenpilot serve` settings and command line: flags over [serve] over defaults; bad input is one
line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tokenpilot._exceptions import ConfigError
from tokenpilot._serve.requests import scope_of, session_key
from tokenpilot._serve.settings import ServeSettings, key_fingerprint, load_settings


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokenpilot.toml"
    path.write_text(text)
    return path


def test_defaults_listen_on_loopback_with_the_public_upstreams() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.mode) == ("127.0.0.1", 4141, "observe")
    assert settings.upstream_for("openai", "gpt-4o").base_url == "https://api.openai.com"
    assert settings.upstream_for("anthropic", "claude-opus-4-8").base_url == "https://api.anthropic.com"


def test_flags_override_the_config_and_models_route_to_their_upstream(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        '[serve]\nmode = "observe"\n[serve.upstreams.local]\napi = "openai"\nbase_url = "http://127.0.0.1:8000"\n'
        'models = ["llama-*"]\n',
    )
    settings = load_settings(config_file=path, mode="enforce", openai_base="http://127.0.0.1:9/")
    assert settings.mode == "enforce"
    assert settings.upstream_for("openai", "llama-3-70b").base_url == "http://127.0.0.1:8000"
    assert settings.upstream_for("openai", "gpt-4o").base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[serve]\nmode = "fast"\n', "mode"),
        ("[serve]\nbogus = 1\n", "serve.bogus"),
        ('[serve.upstreams.x]\napi = "gemini"\n', "api"),
        ("[serve]\ntimeout = -1\n", "serve.timeout"),
    ],
)
def test_a_bad_config_names_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        load_settings(config_file=_toml(tmp_path, text))


def test_scope_comes_from_the_header_then_the_key_then_the_default() -> None:
    settings = ServeSettings(key_scopes={key_fingerprint("sk-ci"): "acme/ci"}, session_header="x-run")
    assert scope_of([(b"x-tokenpilot-scope", b"acme/a")], settings) == "acme/a"
    assert scope_of([(b"authorization", b"Bearer sk-ci")], settings) == "acme/ci"
    assert scope_of([(b"x-api-key", b"other")], settings) == "serve"
    assert (
        session_key([(b"x-claude-code-session-id", b"c"), (b"x-tokenpilot-session", b"t")], settings) == "t"
    )
    assert session_key([(b"x-run", b"r")], settings) == "r"
    assert session_key([], settings) is None


@pytest.mark.parametrize(
    "args", [["--mode", "turbo"], ["--openai-base", "ftp://x"], ["--config", "/nonexistent.toml"]]
)
def test_bad_command_line_input_is_one_line_on_stderr(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tokenpilot", "serve", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_import_tokenpilot_loads_nothing_of_the_server() -> None:
    server = ("starlette", "uvicorn", "httpx", "orjson", "opentelemetry")
    code = f"import sys, tokenpilot; print([m for m in {server!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
