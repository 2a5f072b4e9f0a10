"""cost compare: workloads (phase table or ledger export) priced across models and routing."""

from __future__ import annotations

import json

import pytest

import tokenpilot as tp
from tokenpilot._plan import RoutingSettings, compare_costs, parse_workload

TABLE = "phase,input_tokens,output_tokens,calls\nexplore,1000000,100000,50\nplanning,200000,50000,5\n"


def policy(result: object, name: str) -> tp.plan.PolicyCost:  # type: ignore[name-defined]
    return next(p for p in result.policies if p.policy == name)  # type: ignore[attr-defined]


def test_phase_table_priced_on_each_model_and_routed() -> None:
    rows = parse_workload(TABLE)
    result = compare_costs(rows, ["gpt-4o", "gpt-4.1", "gpt-4o-mini"], RoutingSettings())
    # gpt-4o: $2.50 / $10 per Mtok -> 1.2M in, 150k out = 3.00 + 1.50
    assert policy(result, "single:gpt-4o").cost == pytest.approx(4.5)
    assert policy(result, "single:gpt-4.1").cost == pytest.approx(2.4 + 1.2)
    assert policy(result, "single:gpt-4o-mini").cost == pytest.approx(0.18 + 0.09)
    # routed: explore -> tool_call/medium -> cheap (gpt-4o-mini), planning -> strong (gpt-4.1)
    routed = policy(result, "routed")
    assert routed.calls_by_model == {"gpt-4o-mini": 50, "gpt-4.1": 5}
    assert routed.cost == pytest.approx((0.15 + 0.06) + (0.4 + 0.4))
    assert result.baseline == "single:gpt-4o"  # the costliest known policy
    assert routed.saving == pytest.approx(4.5 - 1.01)
    assert routed.saving_share == pytest.approx((4.5 - 1.01) / 4.5)
    assert (result.calls, result.input_tokens, result.output_tokens) == (55, 1_200_000, 150_000)


def test_ledger_export_adds_the_recorded_policy_as_baseline() -> None:
    lines = [
        {"model": "gpt-4o", "input_tokens": 400_000, "output_tokens": 20_000, "phase": "edit"},
        {"model": "gpt-4.1", "input_tokens": 100_000, "output_tokens": 10_000, "phase": "review"},
    ]
    rows = parse_workload("\n".join(json.dumps(x) for x in lines))
    result = compare_costs(rows, ["gpt-4o-mini"], RoutingSettings())
    recorded = policy(result, "recorded")
    assert recorded.cost == pytest.approx((1.0 + 0.2) + (0.2 + 0.08))
    assert result.baseline == "recorded"
    assert recorded.saving == 0


def test_unknown_price_is_unknown_never_zero() -> None:
    result = compare_costs(parse_workload(TABLE), ["gpt-4o", "mystery-model-9"], RoutingSettings())
    mystery = policy(result, "single:mystery-model-9")
    assert mystery.cost is None and mystery.saving is None
    assert mystery.unknown_price == ("mystery-model-9",)
    assert mystery.cost_by_phase == {"explore": None, "planning": None}


def test_json_workload_with_task_types_and_complexity() -> None:
    text = json.dumps(
        {
            "phases": [
                {
                    "phase": "misc",
                    "task_type": "code_generation",
                    "complexity": "high",
                    "input_tokens": 10,
                    "output_tokens": 5,
                },
            ]
        }
    )
    result = compare_costs(parse_workload(text), [], RoutingSettings())
    assert policy(result, "routed").calls_by_model == {"gpt-4.1": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("phase,input_tokens,output_tokens\nedit,ten,5\n", "'input_tokens' must be a whole number"),
        ("phase,input_tokens,output_tokens\nedit,-1,5\n", "must be a whole number >= 0"),
        ("phase,output_tokens\nedit,5\n", "needs a header"),
        ('[{"phase": "x", "output_tokens": 1}]', "missing 'input_tokens'"),
        ('{"model": "gpt-4o", "input_tokens": 1, "output_tokens": 1}\n{oops', "line 2: invalid JSON"),
        ('[{"phase": "x", "input_tokens": 1, "output_tokens": 1, "task_type": "chat"}]', "unknown task_type"),
        ("   ", "empty workload"),
    ],
)
def test_bad_workloads_are_input_errors(text: str, message: str) -> None:
    with pytest.raises(tp.InputError, match=message):
        parse_workload(text)


def test_unknown_baseline_is_an_input_error() -> None:
    with pytest.raises(tp.InputError, match="unknown baseline"):
        compare_costs(parse_workload(TABLE), ["gpt-4o"], RoutingSettings(), baseline="cheapest")
