"""Rendering: xml, markdown and plain carry the same parts, deterministically."""

from __future__ import annotations

import pytest

import tokenpilot as tp
from tokenpilot._pack.render import ShownFile, file_block, render

FILES = [
    ShownFile("src/a.py", "full", "def a():\n    return 1\n"),
    ShownFile("src/b.py", "outline", "1│def b():\n⋮"),
    ShownFile("README.md", "path", ""),
]


def test_xml_has_header_task_tree_and_tiered_file_blocks() -> None:
    text = render("xml", budget=1000, tokens=123, task="do it", files=FILES, omitted=4)
    assert text.startswith(
        '<pack budget="1000" tokens="123" full="1" slices="0" outline="1" path="1" omitted="4">\n'
    )
    assert "<task>\ndo it\n</task>\n" in text
    assert "<tree>\nREADME.md\nsrc/a.py\nsrc/b.py\n(4 more files not shown)\n</tree>\n" in text
    assert '<file path="src/a.py" tier="full">\ndef a():' in text
    assert '<file path="src/b.py" tier="outline">' in text
    assert text.index('src/a.py" tier') < text.index('src/b.py" tier')  # relevance order kept
    assert text.endswith("</pack>\n")


def test_xml_escapes_quotes_in_paths() -> None:
    assert 'path="we&quot;ird.py"' in file_block("xml", 'we"ird.py', "full", "x\n")


def test_markdown_fences_with_language_and_outlines_as_text() -> None:
    text = render("markdown", budget=1000, tokens=1, task="t", files=FILES, omitted=0)
    assert "## src/a.py\n\n```python\ndef a():" in text
    assert "## src/b.py (outline)\n\n```text\n1│def b():" in text


def test_markdown_fence_is_longer_than_any_backtick_run_inside() -> None:
    block = file_block("markdown", "doc.md", "full", "````\ncode\n````\n")
    assert block.split("\n")[2].startswith("`````")


def test_plain_uses_separators() -> None:
    text = render("plain", budget=10, tokens=5, task="t", files=FILES, omitted=0)
    assert "=== task ===\nt\n" in text
    assert "=== src/a.py (full) ===\n" in text


def test_unknown_format_is_an_input_error(tmp_path: object) -> None:
    with pytest.raises(tp.InputError, match="unknown pack format"):
        tp.pack(".", "task", 1000, format="html", cache=False)
