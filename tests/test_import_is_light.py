"""`import tokenpilot` loads no heavy dependency: they load on first use."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ["sqlalchemy", "matplotlib", "tree_sitter", "detect_secrets", "psycopg", "tokenizers",
         "tiktoken", "urllib.request", "email.utils", "numpy"]  # fmt: skip


def test_import_loads_no_heavy_dependency() -> None:
    code = f"import sys, tokenpilot; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_counting_loads_the_tokenizer_on_first_use() -> None:
    code = "import sys, tokenpilot as tp; tp.count_tokens('x'); print('tiktoken' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"
