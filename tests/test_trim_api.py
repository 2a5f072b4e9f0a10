"""`tp.trim` is the trim side of the fit-verb family: inputs, then the budget, then options."""

from __future__ import annotations

import inspect
import json

import tokenpilot as tp


def test_trim_takes_text_then_budget_then_keyword_options() -> None:
    parameters = list(inspect.signature(tp.trim).parameters.values())
    assert [p.name for p in parameters[:2]] == ["text", "budget"]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters[:2])
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[2:])


def test_trim_output_stays_an_alias_of_trim() -> None:
    assert tp.trim_output is tp.trim
    assert tp.trim("x\n" * 3000, 50, spill=False) == tp.trim_output("x\n" * 3000, 50, spill=False)


def test_trim_result_has_the_family_fields_and_one_report() -> None:
    result = tp.trim("line of output\n" * 4000, 120, model="gpt-4o", spill=False)
    assert result.tokens <= result.budget == 120
    assert (result.tokenizer, result.exact) == ("o200k_base", True)
    report = result.report()
    assert "text" not in report and report["tokens"] == result.tokens and report["budget"] == 120
    assert json.loads(json.dumps(report)) == report
    assert result.as_dict() == {**report, "text": result.text}


def test_public_results_name_the_top_level_module() -> None:
    assert repr(tp.TrimResult).endswith("'tokenpilot.TrimResult'>")
    assert tp.trim.__module__ == "tokenpilot"
