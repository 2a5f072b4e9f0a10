"""Prompt tiers: sections with conditions, assembled deterministically, with the tokens saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from plan_support import fixture, write_project_config
from tokenpilot._plan import PromptConditions, PromptRegistry, PromptSection

CORE = PromptSection("core", "You are a careful coding agent. Keep changes small.")
CREATE = PromptSection(
    "create", "When you create a file, add a module docstring.", when={"creates_files": True}
)
EDIT = PromptSection(
    "edit", "Edit with search/replace blocks; never rewrite whole files.", when={"edits_files": True}
)
TESTS = PromptSection(
    "tests", "Run pytest -x before you finish and paste the summary.", when={"runs_tests": True}
)
HARD = PromptSection(
    "hard", "Think through the design before editing; list the files first.", when={"complexity": ["high"]}
)


def registry() -> PromptRegistry:
    return PromptRegistry([CORE, CREATE, EDIT, TESTS, HARD])


def test_minimal_tier_keeps_core_and_sections_whose_conditions_hold() -> None:
    prompt = registry().assemble(PromptConditions(edits_files=True), model="gpt-4o")
    assert prompt.included == ("core", "edit")
    assert prompt.left_out == ("create", "tests", "hard")
    assert prompt.text == CORE.text + "\n\n" + EDIT.text


def test_full_tier_keeps_every_section() -> None:
    prompt = registry().assemble(PromptConditions(), tier="full", model="gpt-4o")
    assert prompt.included == ("core", "create", "edit", "tests", "hard")
    assert prompt.tokens_saved == 0


def test_tokens_saved_is_full_minus_minimal_counted_for_the_model() -> None:
    prompt = registry().assemble(PromptConditions(runs_tests=True), model="gpt-4o")
    full_text = "\n\n".join(s.text for s in (CORE, CREATE, EDIT, TESTS, HARD))
    assert prompt.full_tokens == tp.count_tokens(full_text, model="gpt-4o")
    assert prompt.tokens == tp.count_tokens(CORE.text + "\n\n" + TESTS.text, model="gpt-4o")
    assert prompt.tokens_saved == prompt.full_tokens - prompt.tokens > 0


def test_every_condition_of_a_section_must_hold() -> None:
    both = PromptSection(
        "both", "Only for new files in hard tasks.", when={"creates_files": True, "complexity": "high"}
    )
    reg = PromptRegistry([CORE, both])
    assert reg.assemble(PromptConditions(creates_files=True)).included == ("core",)
    assert reg.assemble(PromptConditions(creates_files=True, complexity="high")).included == ("core", "both")


def test_order_then_registration_decides_position() -> None:
    late_core = PromptSection("rules", "Never push to main.", order=10)
    reg = PromptRegistry([late_core, CORE])
    assert reg.assemble(PromptConditions()).included == ("core", "rules")


def test_duplicate_names_and_unknown_conditions_are_refused() -> None:
    with pytest.raises(tp.InputError, match="registered twice"):
        PromptRegistry([CORE, CORE])
    with pytest.raises(tp.InputError, match="unknown condition 'weather'"):
        PromptRegistry([PromptSection("x", "y", when={"weather": True})])


@settings(max_examples=30, deadline=None)
@given(
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["low", "medium", "high"]),
    st.permutations([CREATE, EDIT, TESTS, HARD]),
)
def test_assembly_is_deterministic_and_never_costs_more_than_full(
    creates: bool, edits: bool, tests: bool, complexity: str, others: list[PromptSection]
) -> None:
    conditions = PromptConditions(creates, edits, tests, complexity)
    a = PromptRegistry([CORE, *others]).assemble(conditions)
    b = PromptRegistry([CORE, *others]).assemble(conditions)
    assert a == b
    assert a.included[0] == "core"
    assert a.tokens <= a.full_tokens
    assert set(a.included) | set(a.left_out) == {"core", "create", "edit", "tests", "hard"}


def test_plan_call_uses_config_sections_and_replaces_the_system_prompt() -> None:
    write_project_config(
        """
[[plan.prompt_sections]]
name = "core"
text = "You are a coding agent."

[[plan.prompt_sections]]
name = "tests"
text = "Always run the full test suite with coverage and paste the output."
when = { runs_tests = true }

[[plan.prompt_sections]]
name = "create"
file = "create.md"
when = { creates_files = true }
"""
    )
    (Path.cwd() / "create.md").write_text("New files get a docstring and tests.\n")
    body = fixture("anthropic_request_review")
    plan = tp.plan_call(body, complexity="medium")
    assert plan.prompt_tier == "minimal"
    assert plan.prompt is not None
    assert plan.prompt.included == ("core",)  # a review neither runs tests nor creates files
    assert plan.prompt.left_out == ("tests", "create")
    assert plan.to_request()["system"] == "You are a coding agent."
    full = tp.plan_call(body, complexity="high")
    assert full.prompt is not None and full.prompt.text.endswith("New files get a docstring and tests.\n")


def test_plan_call_minimal_tier_reports_tokens_saved() -> None:
    reg = registry()
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "old"}, {"role": "user", "content": "Add a flag"}],
    }
    plan = tp.plan_call(body, task_type="code_generation", complexity="medium", prompts=reg)
    assert plan.prompt_tier == "minimal"
    assert plan.prompt is not None and plan.prompt.included == ("core", "edit")
    sent = plan.to_request()
    assert sent["messages"][0] == {"role": "system", "content": CORE.text + "\n\n" + EDIT.text}
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    assert plan.input_tokens == tp.count_messages(sent)
    why = next(r.why for r in plan.reasons if r.choice == "prompt_tier")
    assert f"{plan.prompt.tokens_saved:,} saved" in why


def test_high_complexity_gets_the_full_tier() -> None:
    plan = tp.plan_call("Refactor the storage layer", "gpt-4o", prompts=registry())
    assert plan.complexity == "high" and plan.prompt_tier == "full"


def test_replacing_the_system_prompt_keeps_the_developer_role_and_cache_breakpoint() -> None:
    openai = tp.plan_call(
        {
            "model": "gpt-4o",
            "messages": [{"role": "developer", "content": "old"}, {"role": "user", "content": "Hi"}],
        },
        prompts=registry(),
    )
    assert openai.to_request()["messages"][0] == {"role": "developer", "content": CORE.text}
    anthropic_body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "old", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "Hi"}],
    }
    sent = tp.plan_call(anthropic_body, prompts=registry()).to_request()
    assert sent["system"] == [{"type": "text", "text": CORE.text, "cache_control": {"type": "ephemeral"}}]
