"""tp.handoff: a new, valid conversation within the budget, system prompt and task kept."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import tokenpilot as tp
from conversations import anthropic_body, openai_conversation
from test_artifacts import TRACEBACK, call, openhands_bash, result
from tokenpilot.cli import app

runner = CliRunner()


ISSUE = "TimeSeries: misleading exception"
EDITOR = "str_replace_editor"


def long_session(turns: int = 40) -> list[dict[str, Any]]:
    """An agent run in the OpenHands shape: views, a failing reproduction, edits, a passing run."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are OpenHands agent, a helpful AI assistant."},
        {
            "role": "user",
            "content": "<issue_description>TimeSeries: misleading exception</issue_description>",
        },
    ]
    for i in range(turns):
        path = f"/testbed/astropy/module_{i}.py"
        body = "\n".join(f"{n:6}\tdef helper_{i}_{n}(value):" for n in range(60))
        messages += [
            call(f"v{i}", "str_replace_editor", command="view", path=path),
            result(
                f"v{i}", f"Here's the result of running `cat -n` on {path}:\n{body}", "str_replace_editor"
            ),
        ]
    messages += openhands_bash("r1", "python /workspace/reproduce.py", TRACEBACK, 1)
    messages += [
        call(
            "e1",
            "str_replace_editor",
            command="str_replace",
            path="/testbed/astropy/timeseries/core.py",
            old_str="raise ValueError(old)",
            new_str="raise ValueError(f'required columns {missing}')",
        ),
        result("e1", "The file /testbed/astropy/timeseries/core.py has been edited.", "str_replace_editor"),
    ]
    messages += openhands_bash("r2", "python /workspace/reproduce.py", "ok", 0)
    messages.append({"role": "assistant", "content": "The fix works. Next, run the timeseries tests."})
    return messages


def test_handoff_keeps_system_and_task_and_fits_the_budget_exactly() -> None:
    history = long_session()
    out = tp.handoff(history, budget=2_000, model="gpt-4o")
    assert out.tokens == tp.count_messages(out.messages, model="gpt-4o") <= 2_000
    assert out.tokens_before > 10_000
    assert out.messages[:2] == history[:2]
    assert [m["role"] for m in out.messages] == ["system", "user", "user"]
    assert tp.validate(out.messages) == ()
    assert (out.budget, out.tokenizer, out.exact) == (2_000, "o200k_base", True)


def test_handoff_records_edits_errors_commands_and_next_steps() -> None:
    text = tp.handoff(long_session(), budget=3_000, model="gpt-4o").handoff
    assert "/testbed/astropy/timeseries/core.py (str_replace)" in text
    assert "required columns {missing}" in text  # the last edit itself
    assert "ValueError: TimeSeries object is invalid" in text
    assert "python /workspace/reproduce.py (exit 1)" in text
    assert "python /workspace/reproduce.py (exit 0)" in text
    assert "Next, run the timeseries tests." in text


def test_handoff_reports_what_it_dropped_when_the_budget_is_small() -> None:
    out = tp.handoff(long_session(), budget=700, model="gpt-4o")
    assert out.tokens <= 700
    report = out.report()
    assert report["dropped"], report
    assert report["messages_replaced"] == len(long_session()) - 2
    assert set(report) >= {"tokens", "budget", "tokenizer", "exact", "tokens_before", "dropped"}


def test_instructions_for_the_next_phase_are_in_the_handoff() -> None:
    out = tp.handoff(long_session(), budget=2_000, model="gpt-4o", instructions="Write the tests now.")
    assert "Instructions for the next phase: Write the tests now." in out.handoff


def test_a_budget_under_system_and_task_is_a_budget_error() -> None:
    with pytest.raises(tp.BudgetError, match="system prompt and the task alone"):
        tp.handoff(long_session(), budget=20, model="gpt-4o")


def test_a_conversation_without_a_task_is_an_input_error() -> None:
    with pytest.raises(tp.InputError, match="no first user message"):
        tp.handoff([{"role": "system", "content": "s"}], budget=100)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(openai_conversation(), st.integers(min_value=60, max_value=3_000))
def test_openai_handoff_is_valid_and_never_over_budget(messages: list[dict[str, Any]], budget: int) -> None:
    try:
        out = tp.handoff(messages, budget=budget, model="gpt-4o")
    except tp.BudgetError:
        fixed = tp.count_messages([*messages[:2], {"role": "user", "content": ""}], model="gpt-4o")
        assert fixed > budget
        return
    assert tp.count_messages(out.messages, model="gpt-4o") == out.tokens <= budget
    assert tp.validate(out.messages) == ()
    assert out.messages[:2] == messages[:2]
    assert out.messages == tp.handoff(messages, budget=budget, model="gpt-4o").messages  # deterministic


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(anthropic_body(), st.integers(min_value=80, max_value=3_000))
def test_anthropic_handoff_keeps_the_body_shape_and_is_valid(body: dict[str, Any], budget: int) -> None:
    body = {**body, "model": "claude-sonnet-4-5"}
    try:
        out = tp.handoff(body, budget=budget)
    except tp.BudgetError:
        return
    assert isinstance(out.messages, dict) and out.messages["system"] == body.get(
        "system", out.messages.get("system")
    )
    assert out.messages["messages"][0] == body["messages"][0]
    assert tp.validate(out.messages) == ()
    assert not out.exact
    assert tp.count_messages(out.messages) <= tp.tokenizer_for("claude-sonnet-4-5").safe_budget(budget)


# -- the configured summary model, on a local fake endpoint -----------------------------------


class _Summaries(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Summaries.requests.append(json.loads(self.rfile.read(length)))
        answer = {"choices": [{"message": {"role": "assistant", "content": "- fixed core.py; tests next"}}]}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def summary_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Summaries)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_a_configured_summary_model_leads_the_handoff(summary_server: str) -> None:
    Path("tokenpilot.toml").write_text(
        f'[compact]\nsummarizer = "llm"\nllm_url = "{summary_server}"\nllm_model = "small-model"\n',
        encoding="utf-8",
    )
    _Summaries.requests.clear()
    out = tp.handoff(long_session(), budget=2_000, model="gpt-4o")
    assert out.summarizer == "llm"
    assert "Summary:\n- fixed core.py; tests next" in out.handoff
    assert "Files changed (last edit):" in out.handoff  # the record fills the rest
    assert _Summaries.requests[0]["model"] == "small-model"
    assert out.tokens <= 2_000


def test_an_unreachable_summary_model_falls_back_to_extractive() -> None:
    Path("tokenpilot.toml").write_text(
        '[compact]\nsummarizer = "llm"\nllm_url = "http://127.0.0.1:9/v1"\nllm_model = "m"\n',
        encoding="utf-8",
    )
    out = tp.handoff(long_session(), budget=2_000, model="gpt-4o")
    assert out.summarizer == "extractive" and "Summary:" not in out.handoff


# -- CLI -----------------------------------------------------------------------------------------


def test_cli_prints_the_new_conversation_in_the_inputs_shape() -> None:
    Path("run.json").write_text(json.dumps(long_session()), encoding="utf-8")
    done = runner.invoke(app, ["handoff", "run.json", "--budget", "2k", "--model", "gpt-4o"])
    assert done.exit_code == 0, done.output
    messages = json.loads(done.stdout)
    assert isinstance(messages, list) and len(messages) == 3
    assert tp.count_messages(messages, model="gpt-4o") <= 2_000


def test_cli_json_has_messages_and_report_and_reads_stdin() -> None:
    body = {"model": "gpt-4o", "messages": long_session()}
    done = runner.invoke(app, ["handoff", "-", "--budget", "1500", "--json"], input=json.dumps(body))
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert set(data) == {"messages", "report"}
    assert data["messages"]["model"] == "gpt-4o" and data["report"]["tokens"] <= 1_500


def test_cli_bad_input_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    for args in (["handoff", str(bad), "--budget", "100"], ["handoff", str(bad), "--budget", "lots"]):
        done = subprocess.run(
            [sys.executable, "-m", "tokenpilot", *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
