"""Exact counts for models whose tokenizer is not shipped: tokenizer.json, Anthropic's endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

import tokenpilot as tp
from tokenpilot._config import user_config_path


def write_user_config(text: str) -> None:
    path = user_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def tokenizer_json(tmp_path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=["[UNK]"])
    tokenizer.train_from_iterator(["def count tokens exactly", "the quick brown fox"] * 50, trainer)
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_model_pointed_at_tokenizer_json_counts_exactly(tokenizer_json: Path) -> None:
    from tokenizers import Tokenizer

    write_user_config(f'[models."my-llama"]\ntokenizer = "hf:{tokenizer_json}"\n')
    text = "the quick brown fox counts tokens exactly"
    expected = len(Tokenizer.from_file(str(tokenizer_json)).encode(text, add_special_tokens=False).ids)
    tokenizer = tp.tokenizer_for("my-llama")
    assert tokenizer.exact is True
    assert tp.count_tokens(text, model="my-llama") == expected
    assert tp.get_model("my-llama").sources["tokenizer"].startswith("config:")


def test_unreadable_tokenizer_json_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    write_user_config(f'[models."broken-model"]\ntokenizer = "hf:{tmp_path / "broken.json"}"\n')
    with pytest.raises(tp.TokenizerError, match=r"broken\.json"):
        tp.count_tokens("x", model="broken-model")


class FakeCountTokens(BaseHTTPRequestHandler):
    """Answers like /v1/messages/count_tokens: one token per whitespace-separated word + 7 framing."""

    requests: ClassVar[list[dict[str, Any]]] = []
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        FakeCountTokens.requests.append({"body": body, "key": self.headers.get("x-api-key")})
        if FakeCountTokens.fail:
            self.send_response(529)
            self.end_headers()
            return
        words = sum(len(block["text"].split()) for m in body["messages"] for block in m["content"])
        payload = json.dumps({"input_tokens": words + 7}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def count_server() -> Iterator[str]:
    FakeCountTokens.requests = []
    FakeCountTokens.fail = False
    server = HTTPServer(("127.0.0.1", 0), FakeCountTokens)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/messages/count_tokens"
    server.shutdown()


def test_anthropic_endpoint_is_used_only_when_configured(
    count_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tp.tokenizer_for("claude-sonnet-4-5").exact is False  # not configured: an estimate
    assert FakeCountTokens.requests == []
    write_user_config(
        f'[models."claude-sonnet-4-5"]\ntokenizer = "anthropic-api"\n\n'
        f'[anthropic]\ncount_tokens_url = "{count_server}"\n'
    )
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    assert tp.tokenizer_for("claude-sonnet-4-5").exact is True
    assert tp.count_tokens("one two three four", model="claude-sonnet-4-5") == 4
    assert FakeCountTokens.requests[-1]["key"] == "sk-test"
    assert FakeCountTokens.requests[-1]["body"]["model"] == "claude-sonnet-4-5"


def test_anthropic_endpoint_failure_is_an_endpoint_error(
    count_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_user_config(
        f'[models."claude-opus-4-1"]\ntokenizer = "anthropic-api"\n\n'
        f'[anthropic]\ncount_tokens_url = "{count_server}"\n'
    )
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    FakeCountTokens.fail = True
    with pytest.raises(tp.EndpointError, match="count-tokens"):
        tp.count_tokens("some text", model="claude-opus-4-1")
