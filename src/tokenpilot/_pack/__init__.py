"""Fit a repository into a token budget for a task: discover → secrets → outline → rank → select → render."""

from tokenpilot._pack._api import PackedFile, PackResult, PackStats, Redaction, pack, parse_budget
from tokenpilot._pack.discover import Exclusion

__all__ = ["Exclusion", "PackResult", "PackStats", "PackedFile", "Redaction", "pack", "parse_budget"]
