"""Benchmark: one process's reserve + settle, with and without a budget on the scope: the client's CPU,
the PostgreSQL backend's CPU and the wall time per call, in process (no proxy around it).

    PYTHONPATH=/tmp/main/src .venv/bin/python bench/hot_path_cost.py postgresql://postgres@127.0.0.1:54410/db
    .venv/bin/python bench/hot_path_cost.py postgresql://postgres@127.0.0.1:54410/db

Run it under each checkout's PYTHONPATH to compare them: it prints which tokenpilot it imported.
A PostgreSQL URL gets a new schema (dropped at the end); anything else means a SQLite file
in a temporary folder. Each line: the median of --blocks blocks of --n calls, after 200
calls of warm-up (the first reclaim sweep and the budgets read).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import tokenpilot as tp


def backend_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, budgeted: bool, n: int, blocks: int) -> str:
    with tp.open_ledger(url) as ledger:
        if budgeted:
            ledger.set_budget("bench", tokens=10**13)

        def one() -> None:
            held = ledger.reserve("bench/a", model="gpt-4o", input_tokens=100, max_output_tokens=100)
            held.settle(input_tokens=100, output_tokens=50)

        for _ in range(200):
            one()
        postgres = ledger.dialect == "postgresql"
        pid = ledger._store._driver_connection().pgconn.backend_pid if postgres else None
        client, server, wall = [], [], []
        for _ in range(blocks):
            cpu0, wall0 = time.process_time(), time.perf_counter()
            server0 = backend_seconds(pid) if pid else 0.0
            for _ in range(n):
                one()
            client.append((time.process_time() - cpu0) / n * 1e6)
            wall.append((time.perf_counter() - wall0) / n * 1e6)
            server.append(((backend_seconds(pid) - server0) if pid else 0.0) / n * 1e6)
    label = "budget" if budgeted else "no budget"
    backend = f", server CPU {statistics.median(server):.0f}" if pid else ""
    return (
        f"{label:9}: client CPU {statistics.median(client):.0f}{backend}, "
        f"wall {statistics.median(wall):.0f} µs per reserve + settle"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a PostgreSQL URL, or 'sqlite'")
    parser.add_argument("--n", type=int, default=1000, help="calls per block")
    parser.add_argument("--blocks", type=int, default=5)
    args = parser.parse_args()
    print("tokenpilot from", Path(tp.__file__).parents[1], "| load", *(f"{v:.1f}" for v in os.getloadavg()))
    for budgeted in (False, True):
        if args.url.startswith("postgresql"):
            import sqlalchemy

            schema = f"bench_hot_{uuid.uuid4().hex[:8]}"
            engine = sqlalchemy.create_engine(args.url.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as conn:
                conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
            try:
                joiner = "&" if "?" in args.url else "?"
                print(
                    measure(
                        f"{args.url}{joiner}options=-csearch_path%3D{schema}", budgeted, args.n, args.blocks
                    )
                )
            finally:
                with engine.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                engine.dispose()
        else:
            with tempfile.TemporaryDirectory() as work:
                print(measure(str(Path(work) / "ledger.db"), budgeted, args.n, args.blocks))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
