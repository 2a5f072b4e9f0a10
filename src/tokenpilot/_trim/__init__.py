"""`trim`: one tool output fitted to its token budget, keeping what an engineer would keep.

import tokenpilot as tp
result = tp.trim(pytest_output, 800, tool="pytest")
result.text, result.tokens, result.omitted.lines, result.spill_path, result.report()
"""

from tokenpilot._trim._result import MODES, Omitted, OmittedSpan, TrimResult
from tokenpilot._trim._stream import trim_stream
from tokenpilot._trim._trim import trim, trim_output

__all__ = ["MODES", "Omitted", "OmittedSpan", "TrimResult", "trim", "trim_output", "trim_stream"]
