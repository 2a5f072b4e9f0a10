"""Fit a repository into a token budget for a task.

discover → features → lexical index → rank → examine the best files (secrets, outline, slices)
→ assemble (options, monotone knapsack, render, exact count); see `_api` for the stages.
"""

from tokenpilot._pack._api import pack
from tokenpilot._pack.discover import Exclusion
from tokenpilot._pack.result import PackedFile, PackResult, PackStats, Redaction
from tokenpilot._pack.settings import parse_budget
from tokenpilot._pack.slices import Slice

__all__ = ["Exclusion", "PackResult", "PackStats", "PackedFile", "Redaction", "Slice", "pack", "parse_budget"]
