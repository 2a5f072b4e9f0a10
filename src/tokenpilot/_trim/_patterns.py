"""Line patterns shared by reducers: what an engineer scans a tool output for."""

from __future__ import annotations

import re

ERROR_LINE = re.compile(
    r"\b(errors?|fail(ed|ures?|ing)?|fatal|exception|traceback|panic(ked)?|abort(ed)?|segmentation fault"
    r"|core dumped|denied|refused|timed out|timeout|cannot|can't|could not|unable to|not found"
    r"|no such file|undefined|assert(ion)?(error)?|critical)\b",
    re.IGNORECASE,
)
WARNING_LINE = re.compile(r"\b(warn(ing)?s?|deprecat(ed|ion))\b", re.IGNORECASE)
# "0 errors", "no failures": counts of nothing are not failures.
_NOTHING = re.compile(r"\b(0|no|zero) (errors?|failures?|failed)\b", re.IGNORECASE)


def is_error_line(line: str) -> bool:
    return bool(ERROR_LINE.search(line)) and not _NOTHING.search(line)


def is_warning_line(line: str) -> bool:
    return bool(WARNING_LINE.search(line))
