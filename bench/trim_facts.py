"""Kept-fact rate of `smart` (mode auto) vs `head_tail` at equal budgets, over real tool outputs.

    .venv/bin/python bench/trim_fixtures.py     # (re)generate the fixtures with the real tools
    .venv/bin/python bench/trim_facts.py        # writes bench/results/trim_facts.{json,md}

kept-fact rate = facts found verbatim in the trimmed text / facts, over every fixture. Tokens are
counted with o200k_base (gpt-4o); every result is checked to be within its budget.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tokenpilot as tp

HERE = Path(__file__).resolve().parent
BUDGETS = (200, 400, 800)
MODES = ("head_tail", "auto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fixtures", type=Path, default=HERE / "fixtures" / "trim")
    parser.add_argument("--model", default="gpt-4o")
    args = parser.parse_args()
    facts: dict[str, list[str]] = json.loads((args.fixtures / "facts.json").read_text())
    rows = []
    for name, needed in facts.items():
        text = (args.fixtures / f"{name}.txt").read_text()
        before = tp.count_tokens(text, model=args.model)
        for budget in BUDGETS:
            for mode in MODES:
                result = tp.trim_output(text, budget, mode=mode, model=args.model, spill=False)
                assert result.tokens <= budget, (name, budget, mode)
                kept = sum(1 for fact in needed if fact in result.text)
                rows.append(
                    {
                        "fixture": name,
                        "tokens_before": before,
                        "budget": budget,
                        "mode": "smart" if mode == "auto" else mode,
                        "format": result.format,
                        "tokens": result.tokens,
                        "facts": len(needed),
                        "kept": kept,
                    }
                )
    summary = {}
    for budget in BUDGETS:
        for mode in ("head_tail", "smart"):
            chosen = [r for r in rows if r["budget"] == budget and r["mode"] == mode]
            kept = sum(int(r["kept"]) for r in chosen)
            total = sum(int(r["facts"]) for r in chosen)
            per_fixture = sum(int(r["kept"]) / int(r["facts"]) for r in chosen) / len(chosen)
            summary[f"{mode}@{budget}"] = {
                "kept": kept,
                "facts": total,
                "rate": kept / total,
                "mean_fixture_rate": per_fixture,
            }
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "trim_facts.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")
    lines = [
        "# trim: kept-fact rate, smart vs head_tail (o200k_base)",
        "",
        "| budget | head_tail facts kept | smart facts kept "
        "| head_tail mean per fixture | smart mean per fixture |",
        "|---:|---:|---:|---:|---:|",
    ]
    for budget in BUDGETS:
        h, s = summary[f"head_tail@{budget}"], summary[f"smart@{budget}"]
        lines.append(
            f"| {budget} | {h['kept']}/{h['facts']} ({h['rate']:.1%}) "
            f"| {s['kept']}/{s['facts']} ({s['rate']:.1%})"
            f" | {h['mean_fixture_rate']:.1%} | {s['mean_fixture_rate']:.1%} |"
        )
    lines += [
        "",
        "| fixture | tokens | format | " + " | ".join(f"ht@{b} | smart@{b}" for b in BUDGETS) + " |",
        "|---|---:|---|" + "---:|---:|" * len(BUDGETS),
    ]
    for name in facts:
        mine = [r for r in rows if r["fixture"] == name]
        cells = []
        for budget in BUDGETS:
            for mode in ("head_tail", "smart"):
                r = next(x for x in mine if x["budget"] == budget and x["mode"] == mode)
                cells.append(f"{r['kept']}/{r['facts']}")
        smart_format = next(x["format"] for x in mine if x["mode"] == "smart")
        lines.append(
            f"| {name} | {mine[0]['tokens_before']:,} | {smart_format} | " + " | ".join(cells) + " |"
        )
    (out / "trim_facts.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
