"""Reference check for speed work on `pack`: its output must be byte-identical before and after.

    python bench/pack_identity.py record DIR TREE...   # with the code before the change
    python bench/pack_identity.py check DIR TREE...    # with the code after: exit 1 on any difference

For each tree, task and budget, packs three ways — with the cache off, into a new empty cache
(cold) and again from that filled cache (warm) — and keeps the text, and the report without its
timings (scores at full precision), as files under DIR. `check` packs the same way and compares
every file byte for byte; cold, warm and cache-off must also agree with each other.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

TASKS = (
    "Rational coefficients are lost by Expr.as_coefficient in sympy.core.expr when the expression "
    "is a Mul with a Pow; as_coeff_Mul returns the wrong pair.",
    "LatexPrinter._print_Pow drops parentheses around negative exponents in sympy/printing/latex.py",
    'pack raises "ranking needs the bm25s library" on a plain install; the cache path is ignored',
)
BUDGETS = (3000, 13000, 27000, 60000)


def _outputs(tree: Path, work: Path) -> dict[str, str]:
    import tokenpilot as tp

    out: dict[str, str] = {}
    for t, task in enumerate(TASKS):
        cache = work / f"{tree.name}-{t}.sqlite3"
        for budget in BUDGETS:
            for mode in ("off", "cold", "warm"):
                result = tp.pack(tree, task, budget, "gpt-4", cache=False if mode == "off" else cache)
                report: dict[str, Any] = result.report()
                report.pop("timing_ms")
                report["scores"] = [repr(f.score) for f in result.files]
                report["examined"] = result.stats.files_examined
                name = f"{tree.name}.t{t}.b{budget}.{mode}"
                out[name + ".txt"] = result.text
                out[name + ".json"] = json.dumps(report, indent=1, sort_keys=True) + "\n"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("record", "check"))
    parser.add_argument("dir", type=Path)
    parser.add_argument("trees", type=Path, nargs="+")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    differences = 0
    with tempfile.TemporaryDirectory(prefix="pack-identity-") as work:
        for tree in args.trees:
            outputs = _outputs(tree.resolve(), Path(work))
            for name, content in sorted(outputs.items()):
                if name.endswith((".cold.txt", ".warm.txt", ".cold.json", ".warm.json")):
                    off = name.replace(".cold.", ".off.").replace(".warm.", ".off.")
                    if content != outputs[off]:
                        print(f"{name}: differs from the cache-off run", file=sys.stderr)
                        differences += 1
                path = args.dir / name
                data = content.encode("utf-8", "surrogatepass")  # bytes: no newline translation
                if args.action == "record":
                    path.write_bytes(data)
                elif not path.exists() or path.read_bytes() != data:
                    print(f"{name}: differs from the recorded output (kept as {name}.new)", file=sys.stderr)
                    path.with_name(name + ".new").write_bytes(data)
                    differences += 1
            digest = hashlib.sha256("".join(outputs[k] for k in sorted(outputs)).encode()).hexdigest()
            print(f"{tree}: {len(outputs)} outputs, sha256 {digest[:16]}")
    print("identical" if not differences else f"{differences} differences", file=sys.stderr)
    return 1 if differences else 0


if __name__ == "__main__":
    raise SystemExit(main())
