"""Compaction of agent conversations: clamp, prune, dedupe, mask, window + summary.

import tokenpilot as tp
result = tp.compact(messages, model="gpt-4o", budget=32_000)
result.messages, result.tokens_after, result.actions
"""

from tokenpilot._compact._clamp import reduce_output
from tokenpilot._compact._compactor import Compactor, compact
from tokenpilot._compact._invariants import Problem, validate
from tokenpilot._compact._report import Action, CompactResult, CostEffect
from tokenpilot._compact._settings import PRESETS, Preset, Pricing, Settings
from tokenpilot._compact._summarize import Summarizer, extractive, llm

__all__ = [
    "PRESETS",
    "Action",
    "CompactResult",
    "Compactor",
    "CostEffect",
    "Preset",
    "Pricing",
    "Problem",
    "Settings",
    "Summarizer",
    "compact",
    "extractive",
    "llm",
    "reduce_output",
    "validate",
]
