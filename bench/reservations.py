"""Benchmark: reservations per second (reserve + settle, one ledger record each) on SQLite and PostgreSQL.

    .venv/bin/python bench/reservations.py --pg-url postgresql://postgres@127.0.0.1:54329/tokenpilot_test

N worker processes each run --per-process reserve+settle cycles on scopes beneath one budget (so
every cycle contends for the same budget lock), started together; throughput is all cycles over
the wall time from the start signal to the last worker's end. Each (store, N) gets a fresh SQLite
file or PostgreSQL schema. Writes bench/results/reservations.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def worker(url: str, scope: str, count: int, go_file: str) -> None:
    import tokenpilot as tp

    acct = tp.open_ledger(url)
    acct.reserve(f"{scope}/warmup", model="gpt-4o", input_tokens=1, max_output_tokens=1).release()
    print("ready", flush=True)
    while not Path(go_file).exists():
        time.sleep(0.001)
    started = time.time()
    for i in range(count):
        with acct.reserve(scope, model="gpt-4o", input_tokens=1_000, max_output_tokens=500) as r:
            r.settle(input_tokens=990, output_tokens=400, finish_reason="stop", request_id=str(i))
    print(json.dumps({"start": started, "end": time.time()}), flush=True)


def run(url: str, processes: int, per_process: int) -> float:
    import tokenpilot as tp

    with tp.open_ledger(url) as acct:
        acct.set_budget("bench", tokens=10**12)
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", url, f"bench/agent-{i}", str(per_process), str(go)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(processes)
        ]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        spans = []
        for p in procs:
            out, _ = p.communicate(timeout=1800)
            if p.returncode != 0:
                raise SystemExit(f"worker failed with exit code {p.returncode}")
            spans.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    return processes * per_process / wall


def pg_schema(base: str) -> tuple[str, str]:
    import sqlalchemy

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    separator = "&" if "?" in base else "?"
    return schema, f"{base}{separator}options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-url", default=os.environ.get("TOKENPILOT_TEST_PG_URL"))
    parser.add_argument("--per-process", type=int, default=300)
    parser.add_argument("--processes", default="1,4,8")
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    rows = []
    for store in ("sqlite", "postgresql"):
        if store == "postgresql" and not args.pg_url:
            print("skipping postgresql: no --pg-url / TOKENPILOT_TEST_PG_URL", file=sys.stderr)
            continue
        for n in counts:
            with tempfile.TemporaryDirectory() as tmp:
                if store == "sqlite":
                    rate = run(str(Path(tmp) / "bench.db"), n, args.per_process)
                else:
                    schema, url = pg_schema(args.pg_url)
                    try:
                        rate = run(url, n, args.per_process)
                    finally:
                        drop_schema(args.pg_url, schema)
            cycles = n * args.per_process
            rows.append({"store": store, "processes": n, "cycles": cycles, "per_second": round(rate, 1)})
            print(f"{store:10} {n} processes: {rate:8.1f} reservations/s", file=sys.stderr)
    result = {
        "benchmark": "reserve+settle cycles per second on one contended budget",
        "command": "python bench/reservations.py --per-process " + str(args.per_process),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "rows": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reservations.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Reservations per second (reserve + settle, one ledger record each)",
        "",
        f"{result['machine']}; {args.per_process} cycles per process, all on one budget.",
        "",
        "| store | 1 process | 4 processes | 8 processes |",
        "|---|---:|---:|---:|",
    ]
    for store in ("sqlite", "postgresql"):
        cells = {r["processes"]: r["per_second"] for r in rows if r["store"] == store}
        if cells:
            lines.append(f"| {store} | " + " | ".join(f"{cells.get(n, '–')}" for n in (1, 4, 8)) + " |")
    (RESULTS / "reservations.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        main()
