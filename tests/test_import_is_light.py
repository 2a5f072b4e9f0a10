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


def test_import_loads_none_of_the_parts_until_a_name_is_used() -> None:
    code = (
        "import sys, tokenpilot as tp\n"
        "before = sorted(m for m in sys.modules if m.startswith('tokenpilot.'))\n"
        "tp.open_ledger\n"
        "print(before, 'tokenpilot._account' in sys.modules, 'tokenpilot._pack' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['tokenpilot._exceptions'] True False"


def test_every_public_name_resolves_and_is_named_tokenpilot() -> None:
    import tokenpilot as tp

    for name in tp.__all__:
        value = getattr(tp, name)
        assert name == "__version__" or value.__module__ == "tokenpilot", name
    assert set(tp.__all__) <= set(dir(tp))


def test_the_cli_loads_only_the_part_its_command_needs() -> None:
    parts = ["_account.account", "_pack._api", "_compact", "_trim", "_plan", "_handoff"]
    code = f"import sys, tokenpilot.cli; print([m for m in {parts!r} if 'tokenpilot.' + m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
