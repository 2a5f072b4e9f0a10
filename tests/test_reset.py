"""tp.should_reset: the [lifecycle] rules, and which one fired."""

from __future__ import annotations

from pathlib import Path

import pytest

import tokenpilot as tp


def conversation(messages: int, words: int = 1) -> list[dict[str, str]]:
    out = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]
    for i in range(messages - 2):
        out.append({"role": "assistant" if i % 2 == 0 else "user", "content": "word " * words})
    return out


def config(text: str) -> None:
    Path("tokenpilot.toml").write_text(f"[lifecycle]\n{text}\n", encoding="utf-8")


def test_defaults_reset_after_50_messages_and_at_phase_end() -> None:
    assert not tp.should_reset(conversation(49)).reset
    decision = tp.should_reset(conversation(50))
    assert (decision.reset, decision.rule, decision.message_limit) == (True, "reset_after_messages", 50)
    assert tp.should_reset(conversation(3), phase_ended=True).rule == "reset_on_phase_end"


def test_tokens_rule_counts_exactly_with_the_models_tokenizer() -> None:
    config("reset_after_tokens = 500\nreset_after_messages = 0")
    for words, fires in ((100, False), (300, True)):
        messages = conversation(4, words=words)
        decision = tp.should_reset(messages, model="gpt-4o")
        assert decision.tokens == tp.count_messages(messages, model="gpt-4o")
        assert (decision.tokens >= 500) is fires
        assert decision.rule == ("reset_after_tokens" if fires else None)
        assert "500" in decision.reason


def test_a_share_of_the_window_is_read_as_a_share() -> None:
    config("reset_after_tokens = 0.5")
    assert tp.should_reset(conversation(3), model="gpt-4o").token_limit == 64_000


def test_phase_end_is_ignored_when_the_rule_is_off() -> None:
    config("reset_on_phase_end = false")
    decision = tp.should_reset(conversation(3), phase_ended=True)
    assert not decision.reset and decision.rule is None
    assert "reset_on_phase_end is off" in decision.reason


def test_phase_end_wins_over_the_other_rules() -> None:
    assert tp.should_reset(conversation(60), phase_ended=True).rule == "reset_on_phase_end"


def test_report_has_the_numbers_it_read() -> None:
    report = tp.should_reset(conversation(5)).report()
    assert report["messages"] == 5 and report["rule"] is None and report["exact"] is True


@pytest.mark.parametrize(
    "line",
    [
        "reset_after_tokens = -1",
        "reset_after_messages = 2.5",
        "reset_on_phase_end = 1",
        "reset_sometimes = 3",
    ],
)
def test_bad_lifecycle_config_is_a_config_error_naming_the_key(line: str) -> None:
    config(line)
    with pytest.raises(tp.ConfigError, match=r"lifecycle\."):
        tp.should_reset(conversation(3))
