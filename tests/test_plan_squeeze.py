"""plan warns when the window squeezes the answer: compaction needed, a model that fits, --strict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import tokenpilot as tp
from plan_support import FakeLedger, Record, write_project_config
from tokenpilot.cli import app

runner = CliRunner()
TASK = "Rewrite every file in full and fix the bug."


def at_share_of_window(share: float, model: str = "gpt-4o", window: int = 128_000) -> dict[str, Any]:
    """A request whose input is `share` of the window: the files pasted in, then the task."""

    def body(words: int) -> dict[str, Any]:
        return {
            "model": model,
            "messages": [
                {"role": "system", "content": "You are a coding agent."},
                {"role": "user", "content": "Here are the files:\n" + "word " * words},
                {"role": "assistant", "content": "I have read them."},
                {"role": "user", "content": TASK},
            ],
        }

    empty = tp.count_messages(body(0))
    return body(int(share * window) - empty)


def test_gpt4o_at_97_percent_of_its_window_says_how_much_to_compact() -> None:
    body = at_share_of_window(0.97)
    plan = tp.plan_call(body)
    room = 128_000 - tp.count_messages(body) - 256
    assert (plan.task_type, plan.complexity) == ("code_generation", "high")
    assert plan.max_tokens == room < 16_000
    assert plan.wanted_max_tokens == 16_000  # the table's code_generation/high
    assert plan.compaction_needed == 16_000 - room > 0
    assert plan.fits and plan.squeezed
    reason = next(r for r in plan.reasons if r.choice == "compaction")
    assert reason.value == str(plan.compaction_needed)
    assert f"remove {plan.compaction_needed:,} input tokens" in reason.why


def test_the_registry_alternative_has_a_window_that_fits_and_its_cost() -> None:
    body = at_share_of_window(0.97)
    plan = tp.plan_call(body)
    alternative = plan.alternative
    assert alternative is not None and alternative.source == "registry"
    info = tp.get_model(alternative.model)
    assert info.provider == "openai"
    assert info.context_window - alternative.input_tokens - 256 >= 16_000
    assert (info.max_output_tokens or 16_000) >= 16_000
    assert (info.output_per_mtok or 0) >= (tp.get_model("gpt-4o").output_per_mtok or 0)
    assert alternative.cost_usd == info.cost(alternative.input_tokens, 16_000)
    assert alternative.model in (plan.advice or "")


def test_a_model_of_the_routing_chain_comes_before_the_registry() -> None:
    write_project_config('[routing.chains]\n"gpt-4o" = ["gpt-4o-mini", "gpt-4.1"]\n')
    plan = tp.plan_call(at_share_of_window(0.97))
    assert plan.alternative is not None
    # gpt-4o-mini has the same 128k window: it does not fit; gpt-4.1's 1M window does.
    assert (plan.alternative.model, plan.alternative.source) == ("gpt-4.1", "chain")
    assert "next in the routing chain" in next(r.why for r in plan.reasons if r.choice == "compaction")


def test_no_compaction_when_the_answer_has_all_it_asks_for() -> None:
    plan = tp.plan_call(at_share_of_window(0.5))
    assert plan.compaction_needed == 0 and plan.advice is None and plan.alternative is None
    assert "compaction" not in {r.choice for r in plan.reasons}


def test_a_cap_by_the_models_max_output_is_not_compaction() -> None:
    plan = tp.plan_call({"model": "gpt-4", "messages": [{"role": "user", "content": TASK}]})
    assert plan.max_tokens == 4096 and plan.compaction_needed == 0


def test_advice_is_one_ascii_line_for_a_header() -> None:
    advice = tp.plan_call(at_share_of_window(0.97)).advice
    assert advice is not None and advice.isascii() and "\n" not in advice
    assert advice.startswith("compact ")


def write(name: str, data: Any) -> str:
    Path(name).write_text(json.dumps(data), encoding="utf-8")
    return name


def test_plan_cli_warns_and_exits_0_when_squeezed() -> None:
    result = runner.invoke(app, ["plan", write("big.json", at_share_of_window(0.97))])
    assert result.exit_code == 0, result.output
    assert "warning: the answer is squeezed: compact" in result.stderr
    assert "compaction" in result.stdout


def test_plan_cli_strict_exits_3_when_squeezed() -> None:
    result = runner.invoke(app, ["plan", write("big.json", at_share_of_window(0.97)), "--strict"])
    assert result.exit_code == 3
    assert "squeezed" in result.stderr


def test_plan_cli_json_carries_compaction_needed_and_the_alternative() -> None:
    body = at_share_of_window(0.97)
    result = runner.invoke(app, ["plan", write("big.json", body), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    plan = tp.plan_call(body)
    assert data["compaction_needed"] == plan.compaction_needed > 0
    assert data["advice"] == plan.advice
    assert data["alternative"]["model"] == plan.alternative.model if plan.alternative else None
    assert any(r["choice"] == "compaction" for r in data["reasons"])


def test_plan_accepts_a_bare_message_array() -> None:
    messages = [{"role": "user", "content": "Explain decorators"}]
    result = runner.invoke(app, ["plan", write("messages.json", messages), "-m", "gpt-4o", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["task_type"] == "explanation"
    assert tp.plan_call(messages, "gpt-4o").max_tokens == 2000


def test_plan_rejects_nonsense_in_the_body_with_one_line() -> None:
    cases = {
        "negative.json": ({"model": "gpt-4o", "max_tokens": -5, "messages": []}, "max_tokens must be"),
        "model.json": ({"model": 42, "messages": []}, "model must be a string"),
        "text.json": ({"model": "gpt-4o", "max_tokens": "many", "messages": []}, "max_tokens must be"),
    }
    for name, (body, message) in cases.items():
        done = subprocess.run(
            [sys.executable, "-m", "tokenpilot", "plan", write(name, body)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, (name, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_a_learned_p90_squeezed_by_the_window_names_what_to_compact() -> None:
    ledger = FakeLedger(
        [Record(output_tokens=5_000, phase="edit", model="gpt-4o", task_type="code_generation")] * 20
    )
    body = at_share_of_window(0.97)
    plan = tp.plan_call(body, phase="edit", ledger=ledger)
    room = 128_000 - tp.count_messages(body) - 256
    assert plan.max_tokens_source == "learned"
    assert plan.wanted_max_tokens == 6_000  # p90 5,000 x 1.2
    assert plan.max_tokens == room and plan.compaction_needed == 6_000 - room
