"""Benchmark: the proxy's CPU time per call, A/B between checkouts, in interleaved blocks.

    .venv/bin/python bench/proxy_cpu.py --variant main=/tmp/main/src --variant new= \
        --scenario chat:whole:2000 messages:stream:2000 --conc 1 8

A quicker companion of proxy_overhead.py for iterating on the proxy's own cost: one fake upstream,
one `tokenpilot serve` (enforce mode, SQLite ledger, or PostgreSQL with `--db URL`, with a budget
on the scope, or none with `--no-budget`) per variant, and
for each scenario and concurrency `--rounds` rotations of one block of `--n` calls per target
(the direct call included). Per block: the proxy's CPU time (/proc, the whole process, settlements
included: the block ends when they are done) divided by its calls; per target: the median block,
the added p50/p99 and time to first byte against the direct call's. The machine is shared: compare
the variants of one run, and say the load (printed at start and end).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import FAKE, Scenario, cpu_seconds, free_port, pct, wait_ready


async def block(
    client: aiohttp.ClientSession, base: str, payloads: list[Any], n: int, conc: int
) -> tuple[list[float], list[float], int]:
    """`n` calls from `conc` closed-loop workers: (latencies, times to first byte, errors)."""
    latency: list[float] = []
    first_bytes: list[float] = []
    errors = 0

    async def worker(w: int) -> None:
        nonlocal errors
        for i in range(n // conc):
            path, body, headers = payloads[(w * 7 + i) % len(payloads)]
            started = time.perf_counter()
            first = None
            async with client.post(base + path, data=body, headers=headers) as response:
                async for _ in response.content.iter_any():
                    if first is None:
                        first = time.perf_counter()
                errors += response.status != 200
            latency.append(time.perf_counter() - started)
            if first is not None:
                first_bytes.append(first - started)

    await asyncio.gather(*(worker(w) for w in range(conc)))
    return latency, first_bytes, errors


async def settled_cpu(pid: int) -> float:
    """The process's CPU seconds once it is idle (its settlements done)."""
    before = cpu_seconds(pid)
    while True:
        await asyncio.sleep(0.05)
        now = cpu_seconds(pid)
        if now - before < 0.005:
            return now
        before = now


def pg_schema(base: str, name: str, schemas: list[str]) -> str:
    """A new schema for variant `name` in the PostgreSQL database at `base`, as a URL that uses it."""
    import sqlalchemy

    schema = f"bench_{name}_{uuid.uuid4().hex[:8]}".lower()
    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine.dispose()
    schemas.append(schema)
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def drop_schemas(base: str, schemas: list[str]) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        for schema in schemas:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


def start(
    args: argparse.Namespace, work: Path, processes: list[subprocess.Popen[bytes]], schemas: list[str]
) -> dict[str, Any]:
    port = free_port()
    fake_url = f"http://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes.append(subprocess.Popen([sys.executable, str(FAKE), "--port", str(port)], **quiet))  # type: ignore[call-overload]
    wait_ready(fake_url + "/", processes[-1], "fake upstream")
    targets: dict[str, Any] = {"direct": (fake_url, None)}
    env = dict(os.environ, XDG_CONFIG_HOME=str(work), XDG_DATA_HOME=str(work))
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        source, _, extra = rest.partition(":")
        db = pg_schema(args.db, name, schemas) if args.db else str(work / f"{name}.db")
        budget = "" if args.no_budget else ".set_budget('bench', tokens=10**13)"
        setup = f"import tokenpilot as tp; tp.open_ledger({db!r}){budget}"
        subprocess.run([sys.executable, "-c", setup], check=True, env=env)
        serve_env = dict(env, PYTHONPATH=source) if source else env
        port = free_port()
        log = open(work / f"{name}.log", "wb")  # noqa: SIM115
        command = [sys.executable, "-m", "tokenpilot", "serve", "--port", str(port), "--mode", args.mode]
        command += ["--db", db, "--openai-base", fake_url, "--anthropic-base", fake_url, *extra.split()]
        processes.append(subprocess.Popen(command, stdout=log, stderr=log, env=serve_env))
        wait_ready(f"http://127.0.0.1:{port}/", processes[-1], name)
        targets[name] = (f"http://127.0.0.1:{port}", processes[-1].pid)
    return targets


async def run(args: argparse.Namespace, targets: dict[str, Any]) -> None:
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False) as client:
        for spec in args.scenario:
            api, shape, tokens = spec.split(":")
            scenario = Scenario(api, shape == "stream", int(tokens))
            payloads = [scenario.request(seed) for seed in range(16)]
            for base, _ in targets.values():
                await block(client, base, payloads, 40, 4)  # warm-up
            for conc in args.conc:
                found = {name: {"cpu": [], "lat": [], "ttfb": [], "errors": 0} for name in targets}
                for r in range(args.rounds):
                    names = list(targets)
                    for name in names[r % len(names) :] + names[: r % len(names)]:
                        base, pid = targets[name]
                        cpu0 = await settled_cpu(pid) if pid else 0.0
                        latency, first_bytes, errors = await block(client, base, payloads, args.n, conc)
                        if pid:
                            found[name]["cpu"].append((await settled_cpu(pid) - cpu0) / len(latency) * 1e3)
                        found[name]["lat"] += latency
                        found[name]["ttfb"] += first_bytes
                        found[name]["errors"] += errors
                direct = found["direct"]
                d50, d99 = pct(direct["lat"], 0.5) * 1e3, pct(direct["lat"], 0.99) * 1e3
                dttfb = pct(direct["ttfb"], 0.5) * 1e3
                cells = [f"{spec} c={conc}: direct p50 {d50:.2f} ms"]
                for name, row in found.items():
                    if name == "direct":
                        continue
                    cells.append(
                        f"{name} CPU {statistics.median(row['cpu']):.3f} ms/call "
                        f"[{min(row['cpu']):.2f}-{max(row['cpu']):.2f}] "
                        f"+p50 {pct(row['lat'], 0.5) * 1e3 - d50:.2f} "
                        f"+p99 {pct(row['lat'], 0.99) * 1e3 - d99:.2f} "
                        f"+TTFB {pct(row['ttfb'], 0.5) * 1e3 - dttfb:.2f} errors {row['errors']}"
                    )
                print(" | ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SRC[:ARGS]", required=True)
    parser.add_argument(
        "--scenario",
        nargs="+",
        default=["chat:whole:2000", "chat:stream:2000", "messages:whole:2000", "messages:stream:2000"],
        help="API:whole|stream:TOKENS (API: chat or messages)",
    )
    parser.add_argument("--conc", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--n", type=int, default=300, help="calls per block")
    parser.add_argument("--mode", default="enforce", choices=["observe", "enforce"])
    parser.add_argument(
        "--no-budget", action="store_true", help="no budget on the scope (enforce: nothing to hold)"
    )
    parser.add_argument(
        "--db",
        metavar="POSTGRESQL_URL",
        help="ledgers on this PostgreSQL database (a new schema per variant, dropped at the end), "
        "not SQLite files",
    )
    args = parser.parse_args()
    print("load average at start:", " ".join(f"{v:.1f}" for v in os.getloadavg()), flush=True)
    processes: list[subprocess.Popen[bytes]] = []
    schemas: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tp-cpu-") as work:
        try:
            asyncio.run(run(args, start(args, Path(work), processes, schemas)))
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
            if schemas:
                drop_schemas(args.db, schemas)
    print("load average at end:", " ".join(f"{v:.1f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
