"""The `llm` summarizer against a local OpenAI-compatible server (real HTTP), and its fallback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

import tokenpilot as tp
from conversations import bash_run
from tokenpilot._compact import extractive, llm

RUN = [
    {
        "role": "assistant",
        "content": "Look at the parser.",
        "tool_calls": [
            {
                "id": "a",
                "type": "function",
                "function": {"name": "bash", "arguments": json.dumps({"command": "cat parser.py"})},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "a", "content": "def parse(): ...\n[exit code 0]"},
]


class FakeServer:
    def __init__(self, status: int, answer: Any) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                owner.requests.append(
                    {
                        "path": self.path,
                        "body": json.loads(self.rfile.read(length)),
                        "auth": self.headers.get("Authorization"),
                    }
                )
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self.thread.start()
        return self

    def __exit__(self, *args: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def good_server() -> Iterator[FakeServer]:
    answer = {
        "choices": [{"message": {"role": "assistant", "content": "- read parser.py; parse() is a stub"}}]
    }
    with FakeServer(200, answer) as server:
        yield server


def test_llm_summarizer_posts_the_span_and_returns_the_summary(
    good_server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    summarize = llm(good_server.url, "cheap-model", api_key_env="FAKE_KEY", timeout=5)
    assert summarize(RUN) == "- read parser.py; parse() is a stub"
    request = good_server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["model"] == "cheap-model"
    assert "cat parser.py" in request["body"]["messages"][1]["content"]
    assert request["auth"] == "Bearer sk-test"


def test_llm_summarizer_falls_back_to_extractive_on_http_error() -> None:
    with FakeServer(500, {"error": "boom"}) as server:
        summarize = llm(server.url, "m", api_key_env=None, timeout=5)
        assert summarize(RUN) == extractive(RUN)
        assert len(server.requests) == 1


def test_llm_summarizer_falls_back_when_nothing_listens() -> None:
    with FakeServer(200, {}) as server:
        url = server.url
    summarize = llm(url, "m", api_key_env=None, timeout=2)
    assert summarize(RUN) == extractive(RUN)


def test_llm_summarizer_configured_in_compact_writes_the_summary(
    good_server: FakeServer, isolated_config: Any
) -> None:
    config = isolated_config / "tokenpilot"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        f'[compact]\nsummarizer = "llm"\nllm_url = "{good_server.url}"\nllm_model = "cheap"\n',
        encoding="utf-8",
    )
    messages = bash_run(30, lambda i: "output line\n" * 150)
    result = tp.compact(messages, model="gpt-4o", budget=8_000, policy="window-only")
    summary = result.messages[2]["content"]
    assert summary.startswith("[tokenpilot summary") and "parse() is a stub" in summary
    assert good_server.requests


def test_llm_summarizer_sends_long_outputs_shortened(good_server: FakeServer) -> None:
    run = [RUN[0], {"role": "tool", "tool_call_id": "a", "content": "HEAD\n" + "x" * 200_000 + "\nTAIL"}]
    llm(good_server.url, "m", api_key_env=None, timeout=5)(run)
    sent = good_server.requests[0]["body"]["messages"][1]["content"]
    assert len(sent) < 10_000 and "HEAD" in sent and "TAIL" in sent and "characters ...]" in sent
