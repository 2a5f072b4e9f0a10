"""Regenerate src/tokenpilot/_models/data/models.json from LiteLLM's public price map.

The `litellm` wheel on PyPI ships a copy of the map
(`litellm/model_prices_and_context_window_backup.json`). tokenpilot keeps only facts from it:
window, max output, per-million prices, provider; no run-time dependency on litellm.

    pip download --no-deps litellm -d /tmp/ll && unzip -o /tmp/ll/litellm-*.whl \
        'litellm/model_prices_and_context_window_backup.json' -d /tmp/ll
    python scripts/update_models.py /tmp/ll/litellm/model_prices_and_context_window_backup.json \
        --source "litellm 1.109.1" --date 2026-11-21
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# LiteLLM provider key -> (our provider name, prefix to strip from the model key)
PROVIDERS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "xai",
    "meta_llama": "meta",
    "dashscope": "qwen",
}
# Providers whose automatic prompt cache bills a write at the plain input price (no surcharge).
AUTOMATIC_CACHE_PROVIDERS = {"openai", "google", "deepseek", "xai"}
MODES = {"chat", "responses", "completion"}
OUT = Path(__file__).resolve().parent.parent / "src/tokenpilot/_models/data/models.json"


def per_mtok(value: Any) -> float | None:
    if value is None:
        return None
    return round(float(value) * 1_000_000, 6)


def convert(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    for key, spec in sorted(raw.items()):
        if not isinstance(spec, dict) or key == "sample_spec":
            continue
        provider = PROVIDERS.get(str(spec.get("litellm_provider", "")))
        if provider is None or spec.get("mode") not in MODES:
            continue
        name = key.split("/", 1)[1] if "/" in key else key
        if name in models:  # the unprefixed entry wins; it is listed first after sorting
            continue
        window = spec.get("max_input_tokens") or spec.get("max_tokens")
        entry = {
            "provider": provider,
            "context_window": int(window) if window else None,
            "max_output_tokens": int(spec["max_output_tokens"]) if spec.get("max_output_tokens") else None,
            "input_per_mtok": per_mtok(spec.get("input_cost_per_token")),
            "output_per_mtok": per_mtok(spec.get("output_cost_per_token")),
            "cache_read_per_mtok": per_mtok(spec.get("cache_read_input_token_cost")),
            "cache_write_per_mtok": per_mtok(spec.get("cache_creation_input_token_cost")),
        }
        if entry["cache_write_per_mtok"] is None and provider in AUTOMATIC_CACHE_PROVIDERS:
            entry["cache_write_per_mtok"] = entry["input_per_mtok"]
        models[name] = {k: v for k, v in entry.items() if v is not None}
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("price_map", type=Path)
    parser.add_argument("--source", required=True, help="e.g. 'litellm 1.109.1'")
    parser.add_argument("--date", required=True, help="date the data was taken, YYYY-MM-DD")
    args = parser.parse_args()
    raw = json.loads(args.price_map.read_text())
    data = {
        "source": f"{args.source} model_prices_and_context_window_backup.json",
        "date": args.date,
        "models": convert(raw),
    }
    OUT.write_text(json.dumps(data, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(data['models'])} models to {OUT}")


if __name__ == "__main__":
    main()
