"""Benchmark: reservations per second (reserve + settle, one ledger record each) on SQLite and PostgreSQL,
on an empty ledger and on ledgers pre-filled with 100k and 1M records of the current period.

    .venv/bin/python bench/reservations.py --pg-url postgresql://postgres@127.0.0.1:54329/tokenpilot_test

For each store and ledger size one ledger is made and pre-filled by `ledger import` (CSV files of
100k rows, every record beneath the benchmark's daily budget, in the last ten minutes); then, for
each process count N, N worker processes each run --per-process reserve+settle cycles on scopes
beneath that one budget (so every cycle contends for the same budget row), started together.
Throughput is all cycles over the wall time from the start signal to the last worker's end; each
cell is the median of --repeat runs, the sizes run in turn within each repeat so a shared machine's
changing load falls on all of them alike. The empty ledger is the anchor: the last column is the
largest ledger's rate over the empty one's at the most processes, in the same run. Writes
bench/results/reservations.json and .md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHUNK = 100_000


def worker(url: str, scope: str, count: int, go_file: str) -> None:
    import tokenpilot as tp

    acct = tp.open_ledger(url)
    for _ in range(20):  # warm up: connections, prepared statements, price lookups
        acct.reserve(f"{scope}/warmup", model="gpt-4o", input_tokens=1, max_output_tokens=1).release()
    print("ready", flush=True)
    while not Path(go_file).exists():
        time.sleep(0.001)
    started, cpu = time.time(), time.process_time()
    for i in range(count):
        with acct.reserve(scope, model="gpt-4o", input_tokens=1_000, max_output_tokens=500) as r:
            r.settle(input_tokens=990, output_tokens=400, finish_reason="stop", request_id=str(i))
    print(json.dumps({"start": started, "end": time.time(), "cpu": time.process_time() - cpu}), flush=True)
    sys.stdin.readline()  # stay connected until the server's CPU is read: a backend's CPU leaves with it


def server_cpu_seconds() -> float:
    """User + system CPU of every local `postgres` process so far (Linux /proc; 0 elsewhere)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            if not fields[0].endswith("(postgres"):
                continue
            values = fields[1].split()
            total += int(values[11]) + int(values[12])  # utime, stime (fields 14 and 15)
        except (OSError, IndexError, ValueError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def run(url: str, processes: int, per_process: int) -> tuple[float, float, float]:
    """(cycles per second, client CPU ms per cycle, local PostgreSQL server CPU ms per cycle)."""
    with tempfile.TemporaryDirectory() as tmp:
        go = Path(tmp) / "go"
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", url, f"bench/agent-{i}", str(per_process), str(go)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(processes)
        ]
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        server_before = server_cpu_seconds()
        go.touch()
        spans = []
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            if not line:
                raise SystemExit(f"worker failed with exit code {p.wait()}")
            spans.append(json.loads(line))
        server = server_cpu_seconds() - server_before
        for p in procs:
            p.communicate("\n", timeout=60)
            if p.returncode != 0:
                raise SystemExit(f"worker failed with exit code {p.returncode}")
    wall = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    cycles = processes * per_process
    client = sum(s["cpu"] for s in spans)
    return cycles / wall, client * 1000 / cycles, server * 1000 / cycles


def prefill(url: str, records: int) -> float:
    """Set the benchmark's budget and import `records` calls beneath it; returns the seconds taken."""
    import tokenpilot as tp

    started = time.monotonic()
    now = time.time()
    with tp.open_ledger(url) as acct, tempfile.TemporaryDirectory() as tmp:
        acct.set_budget("bench", tokens=10**13, period="daily")
        for first in range(0, records, CHUNK):
            path = Path(tmp) / f"usage-{first}.csv"
            rows = min(CHUNK, records - first)
            with path.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["timestamp", "model", "prompt_tokens", "completion_tokens", "scope"])
                for i in range(rows):
                    at = now - 600 + (first + i) * 600 / max(records, 1)
                    writer.writerow([f"{at:.6f}", "gpt-4o", 1000, 400, f"bench/prefill-{i % 16}"])
            acct.import_file(path)
        assert acct.usage("bench").calls >= records
    if url.startswith("postgresql"):
        vacuum(url)
    return time.monotonic() - started


def vacuum(url: str) -> None:
    """VACUUM ANALYZE the pre-filled tables, so autovacuum does not run during (and count in) a run."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE tp_records")
    engine.dispose()


def kept_calls(url: str) -> int:
    """Calls beneath the benchmark's budget in a kept ledger (-1 when it has none yet)."""
    import tokenpilot as tp

    with tp.open_ledger(url) as acct:
        return acct.usage("bench").calls if any(b.scope == "bench" for b in acct.budgets()) else -1


def pg_schema(base: str, name: str | None = None) -> tuple[str, str]:
    import sqlalchemy

    schema = name or f"bench_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    engine.dispose()
    separator = "&" if "?" in base else "?"
    return schema, f"{base}{separator}options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
    engine.dispose()


def _label(size: int) -> str:
    return "empty" if size == 0 else f"{size // 1000}k" if size < 1_000_000 else f"{size // 1_000_000}M"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-url", default=os.environ.get("TOKENPILOT_TEST_PG_URL"))
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="0,100000,1000000", help="ledger sizes (records) to pre-fill")
    parser.add_argument("--processes", default="1,4,8")
    parser.add_argument("--per-process", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the median is reported")
    parser.add_argument(
        "--keep", type=Path, help="keep the ledgers in DIR (PostgreSQL: schemas bench_keep_N) and reuse them"
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "reservations", help="PATH for PATH.json, PATH.md"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    sizes = [int(n) for n in args.sizes.split(",")]
    rows = []
    for store in args.stores.split(","):
        if store == "postgresql" and not args.pg_url:
            print("skipping postgresql: no --pg-url / TOKENPILOT_TEST_PG_URL", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            urls: dict[int, str] = {}
            schemas: list[str] = []
            try:
                for size in sizes:
                    if args.keep is not None and size:  # pre-filled ledgers kept: filled once, reused
                        args.keep.mkdir(parents=True, exist_ok=True)
                        if store == "sqlite":
                            urls[size] = str(args.keep / f"bench-{size}.db")
                        else:
                            urls[size] = pg_schema(args.pg_url, f"bench_keep_{size}")[1]
                        if kept_calls(urls[size]) >= size:
                            print(f"{store:10} {_label(size):>5}: kept", file=sys.stderr)
                            continue
                    elif store == "sqlite":
                        urls[size] = str(Path(tmp) / f"bench-{size}.db")
                    else:
                        schema, urls[size] = pg_schema(args.pg_url)
                        schemas.append(schema)
                    seconds = prefill(urls[size], size)
                    print(f"{store:10} {_label(size):>5}: pre-filled in {seconds:.0f} s", file=sys.stderr)
                # Sizes interleaved within each repeat, so the machine's load drifts over all alike.
                rates: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
                for _ in range(args.repeat):
                    for n in counts:
                        for size in sizes:
                            rates.setdefault((size, n), []).append(run(urls[size], n, args.per_process))
                for size in sizes:
                    for n in counts:
                        found = [r for r, _, _ in rates[(size, n)]]
                        rate = statistics.median(found)
                        rows.append(
                            {
                                "store": store,
                                "records": size,
                                "processes": n,
                                "cycles": n * args.per_process,
                                "per_second": round(rate, 1),
                                "runs": [round(r, 1) for r in found],
                                "client_cpu_ms_per_cycle": round(
                                    statistics.median(c for _, c, _ in rates[(size, n)]), 3
                                ),
                                "server_cpu_ms_per_cycle": round(
                                    statistics.median(v for _, _, v in rates[(size, n)]), 3
                                )
                                if store == "postgresql"
                                else None,
                            }
                        )
                        runs = ", ".join(f"{r:.0f}" for r in found)
                        where = f"{store:10} {_label(size):>5} {n} processes"
                        print(f"{where}: {rate:8.1f} reservations/s ({runs})", file=sys.stderr)
            finally:
                for schema in schemas:
                    drop_schema(args.pg_url, schema)
    command = (
        f"python bench/reservations.py --stores {args.stores} --sizes {args.sizes} "
        f"--processes {args.processes} --per-process {args.per_process} --repeat {args.repeat}"
    )
    result = {
        "benchmark": "reserve+settle cycles per second on one contended budget, by ledger size",
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_end": os.getloadavg(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    header = " | ".join(f"{n} proc" for n in counts)
    lines = [
        "# Reservations per second (reserve + settle, one ledger record each)",
        "",
        f"`{command}`",
        "",
        f"{result['machine']}; {args.per_process} cycles per process, all on one budget; "
        f"median of {args.repeat} runs; load average at the end {os.getloadavg()[0]:.1f} "
        "(the machine is shared, so numbers are noisy).",
        "",
        f"| store | records | {header} | this size / empty at {counts[-1]} proc |",
        "|---|---:|" + "---:|" * len(counts) + "---:|",
    ]
    for store in args.stores.split(","):
        empty = {r["processes"]: r["per_second"] for r in rows if r["store"] == store and r["records"] == 0}
        for size in sizes:
            cells = {
                r["processes"]: r["per_second"] for r in rows if r["store"] == store and r["records"] == size
            }
            if not cells:
                continue
            last = counts[-1]
            ratio = f"{cells[last] / empty[last]:.0%}" if empty.get(last) and size else "–"
            lines.append(
                f"| {store} | {_label(size)} | "
                + " | ".join(f"{cells.get(n, '–')}" for n in counts)
                + f" | {ratio} |"
            )
    lines += [
        "",
        f"CPU per reserve + settle at {counts[-1]} processes (ms; the figure that travels between machines): "
        "the clients', and the local PostgreSQL server's.",
        "",
        "| store | records | client CPU ms | server CPU ms |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        if r["processes"] == counts[-1]:
            server = "–" if r["server_cpu_ms_per_cycle"] is None else f"{r['server_cpu_ms_per_cycle']:.3f}"
            lines.append(
                f"| {r['store']} | {_label(r['records'])} | {r['client_cpu_ms_per_cycle']:.3f} | {server} |"
            )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    else:
        main()
