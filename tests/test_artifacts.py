"""Artifacts: what a conversation produced, read from tool calls and their results."""

from __future__ import annotations

import doctest
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot._compact import artifacts as artifacts_module
from tokenpilot._compact.artifacts import Artifacts, CommandRun, ErrorHit, FileEdit, extract_artifacts
from tokenpilot._messages import parse

TOKENIZER = tp.tokenizer_for("gpt-4o")


def call(cid: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
        ],
    }


def result(cid: str, content: str, name: str = "execute_bash") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": cid, "name": name, "content": content}


def openhands_bash(cid: str, command: str, output: str, code: int) -> list[dict[str, Any]]:
    """An OpenHands execute_bash call and its result, in the shape of the dev trajectories."""
    tail = (
        f"\n[The command completed with exit code {code}.]\n[Current working directory: /workspace/repo]"
        "\n[Python interpreter: /opt/miniconda3/envs/testbed/bin/python]"
        f"\n[Command finished with exit code {code}]"
    )
    return [call(cid, "execute_bash", command=command), result(cid, output + tail)]


TRACEBACK = """Traceback (most recent call last):
  File "/workspace/reproduce.py", line 9, in <module>
    ts.remove_column("flux")
  File "/testbed/astropy/timeseries/core.py", line 77, in _check_required_columns
    raise ValueError("TimeSeries object is invalid")
ValueError: TimeSeries object is invalid - expected 'time' as the first columns but found 'time'"""

VIEWED_SOURCE = """Here's the result of running `cat -n` on /testbed/astropy/timeseries/core.py:
    70\t    def _check_required_columns(self):
    77\t            raise ValueError("TimeSeries object is invalid")
    78\t        except KeyError: pass
"""


ISSUE = "TimeSeries: misleading exception"
REPRO = "/workspace/reproduce.py"
EDITOR = "str_replace_editor"


def session() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are OpenHands agent."},
        {"role": "user", "content": f"<issue_description>{ISSUE}</issue_description>"},
        call("c1", "str_replace_editor", command="view", path="/testbed/astropy/timeseries/core.py"),
        result("c1", VIEWED_SOURCE, "str_replace_editor"),
        call("c2", EDITOR, command="create", path=REPRO, file_text="a\nb\n"),
        result("c2", "File created successfully at: /workspace/reproduce.py", "str_replace_editor"),
        *openhands_bash("c3", "python /workspace/reproduce.py", TRACEBACK, 1),
        {"role": "assistant", "content": "The issue is in `_check_required_columns`. Should it list all?"},
        {"role": "user", "content": "yes"},
        call(
            "c4",
            "str_replace_editor",
            command="str_replace",
            path="/testbed/astropy/timeseries/core.py",
            old_str="raise ValueError",
            new_str="raise ValueError(missing)",
        ),
        result("c4", "ERROR:\nNo replacement was performed, old_str `x` did not appear verbatim", EDITOR),
        call(
            "c5",
            "str_replace_editor",
            command="str_replace",
            path="/testbed/astropy/timeseries/core.py",
            old_str='raise ValueError("TimeSeries object is invalid")',
            new_str="raise ValueError(f'missing {missing}')",
        ),
        result("c5", "The file /testbed/astropy/timeseries/core.py has been edited.", "str_replace_editor"),
        *openhands_bash("c6", f"sed -i 's/a/b/' {REPRO} && python {REPRO}", "ok", 0),
        *openhands_bash("c7", "cat /testbed/astropy/timeseries/core.py", 'ValueError: "quoted in a file"', 0),
        {"role": "assistant", "content": "Next, let's run the test suite to confirm the fix."},
    ]


def test_task_is_the_first_user_message() -> None:
    assert extract_artifacts(session()).task.startswith("<issue_description>TimeSeries")


def test_commands_keep_their_openhands_exit_codes() -> None:
    commands = extract_artifacts(session()).commands
    assert commands[0] == CommandRun("python /workspace/reproduce.py", 1)
    assert [c.exit_code for c in commands] == [1, 0, 0]


def test_errors_come_from_what_the_agent_ran_with_the_innermost_frame() -> None:
    errors = extract_artifacts(session()).errors
    raised = [e for e in errors if e.error.startswith("ValueError")]
    assert len(raised) == 1
    assert raised[0].source == "python /workspace/reproduce.py"
    assert raised[0].location == "/testbed/astropy/timeseries/core.py:77 in _check_required_columns"


def test_raise_lines_of_a_viewed_file_are_not_errors() -> None:
    errors = extract_artifacts(session()).errors
    assert not any("quoted in a file" in e.error for e in errors)
    assert not any(e.error.startswith("raise") for e in errors)


def test_a_refused_edit_is_an_error_not_a_change() -> None:
    record = extract_artifacts(session())
    assert any(e.error.startswith("No replacement was performed") for e in record.errors)
    edit = next(f for f in record.files_changed if f.path.endswith("core.py"))
    assert edit.edits == 1 and "missing {missing}" in edit.detail


def test_files_changed_keep_the_last_edit_and_shell_edits_count() -> None:
    changed = {f.path: f for f in extract_artifacts(session()).files_changed}
    assert changed["/workspace/reproduce.py"].action == "sed -i"
    assert changed["/workspace/reproduce.py"].edits == 2
    assert changed["/testbed/astropy/timeseries/core.py"].action == "str_replace"


def test_viewed_files_that_were_later_changed_are_not_listed_as_read() -> None:
    record = extract_artifacts(session())
    assert "/testbed/astropy/timeseries/core.py" not in record.files_read


def test_shell_redirections_and_tee_are_changes_but_comparisons_are_not() -> None:
    messages = [
        {"role": "user", "content": "t"},
        *openhands_bash("a", "echo x > out/notes.txt", "", 0),
        *openhands_bash("b", "python -c 'print(1 > 2)' 2>&1 > /dev/null", "", 0),
        *openhands_bash("c", "cat <<'EOF' | tee conf.ini\nif a > b.c: pass\nEOF", "", 0),
    ]
    assert [f.path for f in extract_artifacts(messages).files_changed] == ["out/notes.txt", "conf.ini"]


def test_questions_decisions_and_next_steps_are_the_assistants_own_words() -> None:
    record = extract_artifacts(session())
    assert any("_check_required_columns" in d for d in record.decisions)
    assert record.next_steps == ("Next, let's run the test suite to confirm the fix.",)
    assert record.open_questions == ("Should it list all?",)


def test_anthropic_tool_use_and_claude_code_edits_are_read() -> None:
    body = {
        "system": "s",
        "messages": [
            {"role": "user", "content": "task"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "make"}},
                    {
                        "type": "tool_use",
                        "id": "t2",
                        "name": "Edit",
                        "input": {"file_path": "src/a.py", "old_string": "x = 1", "new_string": "x = 2"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "error: bad\nExit code: 2"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": "ok"},
                ],
            },
        ],
    }
    record = extract_artifacts(parse(body).messages)
    assert record.commands == (CommandRun("make", 2),)
    assert record.errors == (ErrorHit("make", "error: bad"),)
    assert record.files_changed == (FileEdit("src/a.py", "str_replace", "'x = 1' -> 'x = 2'"),)


def test_render_lists_the_sections_and_fits_the_budget() -> None:
    text = extract_artifacts(session()).render(10_000, TOKENIZER)
    assert text.startswith("Files changed (last edit):")
    for title in ("Errors hit:", "Next steps:", "Open questions:", "Decisions:", "Commands run:"):
        assert title in text


lines = st.lists(st.text(min_size=1, max_size=60), max_size=30)


@settings(max_examples=60, deadline=None)
@given(lines, lines, st.integers(min_value=0, max_value=300))
def test_render_is_never_over_budget(decisions: list[str], steps: list[str], budget: int) -> None:
    record = Artifacts(
        task="t",
        decisions=tuple(decisions),
        next_steps=tuple(steps),
        commands=tuple(CommandRun(d, 0) for d in decisions),
    )
    text = record.render(budget, TOKENIZER, task=True)
    assert TOKENIZER.count(text) <= budget
    assert text == record.render(budget, TOKENIZER, task=True)


def test_a_cut_section_says_how_many_lines_it_left_out() -> None:
    record = Artifacts(task="t", commands=tuple(CommandRun(f"step_{i} --flag", 0) for i in range(200)))
    text = record.render(200, TOKENIZER)
    assert "earlier not shown)" in text and "step_199" in text and "step_0 " not in text


def test_docstring_examples_hold() -> None:
    assert doctest.testmod(artifacts_module).failed == 0
