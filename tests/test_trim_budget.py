"""The hard guarantee: whatever trim returns is at or under its budget, markers included."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tokenpilot as tp

MODES = ["auto", "full", "head_tail", "errors_only", "smart"]
line = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "ERROR something failed",
            "Traceback (most recent call last):",
            '  File "x.py", line 3, in f',
            "ValueError: boom",
            "E       assert 1 == 2",
            "a.c:1:2: error: bad",
            "@@ -1,3 +1,4 @@",
            "+added",
            "{",
            '"key": [1, 2, 3]',
            "}",
            "./src/a/b/c.py",
            "├── dir",
            "2024-01-01 10:00:00 INFO tick 1",
            "",
        ]
    ),
)
texts = st.lists(line, max_size=60).map("\n".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=texts,
    budget=st.integers(min_value=0, max_value=120),
    mode=st.sampled_from(MODES),
    tool=st.sampled_from([None, "pytest", "gcc", "git diff", "ls", "jq"]),
    model=st.sampled_from(["gpt-4o", "gpt-4", "claude-sonnet-4"]),
)
def test_result_never_exceeds_budget_in_model_tokens(
    text: str, budget: int, mode: str, tool: str | None, model: str
) -> None:
    result = tp.trim_output(text, budget, tool=tool, mode=mode, model=model, spill=False)
    assert tp.count_tokens(result.text, model=model) == result.tokens
    assert result.tokens <= budget


@settings(max_examples=60, deadline=None)
@given(text=texts, budget=st.integers(min_value=0, max_value=60), stderr=texts, code=st.integers(0, 255))
def test_stderr_and_exit_status_stay_within_budget(text: str, budget: int, stderr: str, code: int) -> None:
    result = tp.trim_output(text, budget, stderr=stderr, exit_code=code, model="gpt-4o", spill=True)
    assert tp.count_tokens(result.text, model="gpt-4o") <= budget


@settings(max_examples=40, deadline=None)
@given(word=st.text(min_size=1, max_size=8), repeat=st.integers(200, 3000), budget=st.integers(0, 40))
def test_single_huge_line_is_cut_inside_within_budget(word: str, repeat: int, budget: int) -> None:
    result = tp.trim_output(word * repeat, budget, model="gpt-4o", spill=False)
    assert result.tokens <= budget


def test_output_within_budget_is_returned_unchanged() -> None:
    text = "collected 3 items\n\n3 passed in 0.01s\n"
    result = tp.trim_output(text, 1000, model="gpt-4o")
    assert result.text == text
    assert result.mode == "full"
    assert not result.trimmed
    assert result.spill_path is None


def test_head_tail_marker_counts_omitted_lines_and_tokens() -> None:
    lines = [f"line number {i}" for i in range(1000)]
    result = tp.trim_output("\n".join(lines), 100, mode="head_tail", model="gpt-4o", spill=False)
    shown = [x for x in result.text.split("\n") if x.startswith("line number")]
    assert shown[0] == "line number 0" and shown[-1] == "line number 999"
    omitted = 1000 - len(shown)
    assert result.omitted.lines == omitted
    assert f"[… {omitted:,} lines, {result.omitted.tokens:,} tokens omitted …]" in result.text
    hidden = [x + "\n" for x in lines if x not in set(shown)]
    assert result.omitted.tokens == sum(tp.count_tokens(x, model="gpt-4o") for x in hidden)


def test_tiny_budget_returns_truncated_marker_or_empty_never_over() -> None:
    text = "x\n" * 5000
    for budget in range(0, 12):
        result = tp.trim_output(text, budget, model="gpt-4o", spill=False)
        assert result.tokens <= budget
    assert tp.trim_output(text, 0, model="gpt-4o", spill=False).text == ""


def test_same_input_gives_same_bytes() -> None:
    text = "\n".join(f"2024-01-01 10:00:{i % 60:02d} INFO request {i} ok" for i in range(3000))
    first = tp.trim_output(text, 200, model="gpt-4o", spill=False)
    second = tp.trim_output(text, 200, model="gpt-4o", spill=False)
    assert first.text == second.text


def test_estimated_tokenizer_leaves_the_safety_margin() -> None:
    text = "some words here\n" * 3000
    result = tp.trim_output(text, 500, model="claude-sonnet-4", spill=False)
    assert not result.exact
    assert result.tokens <= tp.tokenizer_for("claude-sonnet-4").safe_budget(500)


def test_bad_arguments_raise_input_error() -> None:
    import pytest

    with pytest.raises(tp.InputError):
        tp.trim_output("x", -1)
    with pytest.raises(tp.InputError):
        tp.trim_output("x", 10, mode="everything")
    with pytest.raises(tp.InputError):
        tp.trim_output(b"x", 10)  # type: ignore[arg-type]


def test_stream_result_matches_trim_output_for_small_inputs() -> None:
    text = "\n".join(f"row {i}" for i in range(2000)) + "\n"
    streamed = tp.trim_stream(io.BytesIO(text.encode()), 80, model="gpt-4o", spill=False)
    direct = tp.trim_output(text, 80, model="gpt-4o", spill=False)
    assert streamed.text == direct.text


@settings(max_examples=40, deadline=None)
@given(text=texts, budget=st.integers(min_value=0, max_value=80), mode=st.sampled_from(MODES))
def test_streamed_sketch_never_exceeds_budget(text: str, budget: int, mode: str) -> None:
    from unittest import mock

    from tokenpilot._trim import _stream

    data = (text + "\n") * 20
    with mock.patch.object(_stream, "IN_MEMORY_LIMIT", 64):  # force the bounded-memory path
        result = tp.trim_stream(io.BytesIO(data.encode()), budget, mode=mode, model="gpt-4o", spill=False)
    assert tp.count_tokens(result.text, model="gpt-4o") == result.tokens <= budget
