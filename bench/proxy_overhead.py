"""Benchmark: the latency `tokenpilot serve` adds over calling the provider directly, LiteLLM beside it.

    .venv/bin/python bench/proxy_overhead.py --litellm /work/wt/litellm-venv/bin/litellm

One run starts the fake upstream (tests/fake_upstream.py, its own process), `tokenpilot serve` in
enforce mode on a fresh SQLite ledger with a budget on the scope (so every call reserves and
settles against it), and LiteLLM's proxy without a database, both pointed at the same fake. The
three targets are then measured interleaved, request by request (sequential) or in short rotating
slices (concurrency 8, fixed 300 requests/s), so they share the machine's noise:

- scenarios: chat and messages; streamed (64 chunks) and not; 2k- and 20k-token prompts;
- added latency = the target's p50 (p99) minus the direct call's p50 (p99) in the same scenario;
- time to first byte added (streams); achieved rate and errors at a fixed 300 requests/s for 10 s;
- the proxy's CPU time per call (from /proc), and its resident memory after 10,000 calls and after
  a further 5,000 (flat?).

Writes bench/results/proxy_overhead.json and .md. The machine is shared (2 cores, other agents):
numbers are medians of noisy runs; compare targets within one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
FAKE = ROOT / "tests" / "fake_upstream.py"
FLOOR = ROOT / "bench" / "floor_proxy.py"
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wizards",
    "quietly",
    "judge",
    "boxing",
    "matches",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prompt(tokens: int, seed: int) -> str:
    """About `tokens` tokens of English-like text (a word is about one token)."""
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(tokens))


def wait_ready(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start in {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and its children (LiteLLM runs its server in a child process)."""
    total = rss_mb(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += tree_rss_mb(int(child))
    return total


def tree_cpu(pid: int) -> float:
    total = cpu_seconds(pid)
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        for child in children.read_text().split():
            total += tree_cpu(int(child))
    return total


@dataclass
class Target:
    name: str
    base: str
    pid: int | None = None
    cpu: float = 0.0
    calls: int = 0


@dataclass(frozen=True)
class Scenario:
    api: str  # chat | messages
    stream: bool
    tokens: int

    @property
    def label(self) -> str:
        return f"{self.api} {'stream' if self.stream else 'whole'} {self.tokens // 1000}k"

    def request(self, seed: int) -> tuple[str, bytes, dict[str, str]]:
        text = prompt(self.tokens, seed)
        headers = {"content-type": "application/json", "x-tokenpilot-scope": "bench/agent"}
        if self.stream:
            headers["x-fake-chunks"] = "64"
        if self.api == "chat":
            body: dict[str, Any] = {
                "model": "gpt-4o",
                "max_tokens": 256,
                "messages": [{"role": "user", "content": text}],
            }
            if self.stream:
                body["stream"] = True
                body["stream_options"] = {"include_usage": True}
            headers["authorization"] = "Bearer sk-bench"
            return "/v1/chat/completions", json.dumps(body).encode(), headers
        body = {
            "model": "claude-sonnet-4-6",
            "max_tokens": 256,
            "messages": [{"role": "user", "content": text}],
        }
        if self.stream:
            body["stream"] = True
        headers |= {"x-api-key": "sk-ant-bench", "anthropic-version": "2023-06-01"}
        return "/v1/messages", json.dumps(body).encode(), headers


@dataclass
class Samples:
    latency: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    errors: int = 0


async def one_call(
    client: aiohttp.ClientSession, target: Target, scenario: Scenario, payload: Any, samples: Samples
) -> None:
    path, body, headers = payload
    started = time.perf_counter()
    try:
        async with client.post(target.base + path, data=body, headers=headers) as response:
            first: float | None = None
            async for _ in response.content.iter_any():
                if first is None:
                    first = time.perf_counter()
            ended = time.perf_counter()
            if response.status != 200:
                samples.errors += 1
                return
    except (aiohttp.ClientError, TimeoutError):
        samples.errors += 1
        return
    target.calls += 1
    samples.latency.append(ended - started)
    if scenario.stream and first is not None:
        samples.ttfb.append(first - started)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def sequential(
    client: aiohttp.ClientSession, targets: list[Target], scenario: Scenario, n: int, payloads: list[Any]
) -> dict[str, Samples]:
    found = {t.name: Samples() for t in targets}
    for i in range(n):
        order = targets[:]
        random.Random(i).shuffle(order)  # interleaved A/B: the same moment's noise for every target
        for target in order:
            await one_call(client, target, scenario, payloads[i % len(payloads)], found[target.name])
    return found


async def concurrent(
    client: aiohttp.ClientSession,
    targets: list[Target],
    scenario: Scenario,
    rounds: int,
    per_worker: int,
    payloads: list[Any],
) -> dict[str, Samples]:
    found = {t.name: Samples() for t in targets}
    for r in range(rounds):
        order = targets[r % len(targets) :] + targets[: r % len(targets)]
        for target in order:

            async def worker(w: int, target: Target = target) -> None:
                for i in range(per_worker):
                    await one_call(
                        client,
                        target,
                        scenario,
                        payloads[(w * per_worker + i) % len(payloads)],
                        found[target.name],
                    )

            await asyncio.gather(*(worker(w) for w in range(8)))
    return found


async def fixed_rate(
    client: aiohttp.ClientSession,
    targets: list[Target],
    scenario: Scenario,
    rate: float,
    seconds: float,
    payloads: list[Any],
    fake_pid: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Open loop: a request every 1/rate s whatever the answers; slices of 2 s rotate across targets."""
    found = {t.name: Samples() for t in targets}
    quiet_pids = [fake_pid] if fake_pid else []
    sent = {t.name: 0 for t in targets}
    late = {t.name: 0 for t in targets}
    elapsed = {t.name: 0.0 for t in targets}
    slices = max(1, round(seconds / 2))
    for s in range(slices):
        for target in targets[s % len(targets) :] + targets[: s % len(targets)]:
            tasks = []
            start = time.perf_counter()
            count = round(rate * seconds / slices)
            for i in range(count):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(
                    asyncio.create_task(
                        one_call(client, target, scenario, payloads[i % len(payloads)], found[target.name])
                    )
                )
                sent[target.name] += 1
            _, pending = await asyncio.wait(tasks, timeout=5)
            late[target.name] += len(pending)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            elapsed[target.name] += time.perf_counter() - start
            # A target that fell behind (LiteLLM) keeps working on what it was sent after its slice
            # ended: let it finish before the next target's slice, so its backlog is not theirs.
            await quiet(target, quiet_pids)
    return {
        name: {
            "sent": sent[name],
            "ok": len(samples.latency),
            "errors": samples.errors + late[name],
            "achieved_per_s": len(samples.latency) / elapsed[name],
            "p50_ms": pct(samples.latency, 0.5) * 1e3,
            "p99_ms": pct(samples.latency, 0.99) * 1e3,
        }
        for name, samples in found.items()
    }


async def quiet(target: Target, pids: list[int], timeout: float = 10.0) -> None:
    """Wait until the target (and the fake) use less than 10% of a core, at most `timeout` s."""
    watched = [*pids, *([target.pid] if target.pid else [])]
    deadline = time.monotonic() + timeout
    before = sum(tree_cpu(pid) for pid in watched)
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        now = sum(tree_cpu(pid) for pid in watched)
        if now - before < 0.02:
            return
        before = now


def start(args: argparse.Namespace, workdir: Path, processes: list[subprocess.Popen[bytes]]) -> list[Target]:
    """Start the fake, tokenpilot and LiteLLM; `processes` collects them, so the caller can stop them."""
    fake_port, ll_port = free_port(), free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    fake = subprocess.Popen([sys.executable, str(FAKE), "--port", str(fake_port)], **quiet)  # type: ignore[call-overload]
    processes.append(fake)
    wait_ready(fake_url + "/", fake, "fake upstream")
    targets = [Target("direct", fake_url)]
    args.fake_pid = fake.pid

    env = dict(os.environ, XDG_CONFIG_HOME=str(workdir), XDG_DATA_HOME=str(workdir))
    for name, source, extra in [("tokenpilot", "", args.serve_args), *args.variant]:
        # A ledger each: two proxies on one SQLite file would wait for each other's writes.
        db = workdir / f"{name}.db"
        setup = f"import tokenpilot as tp; tp.open_ledger({str(db)!r}).set_budget('bench', tokens=10**13)"
        subprocess.run([sys.executable, "-c", setup], check=True, env=env)
        port = free_port()
        serve_env = dict(env)
        if source:  # another checkout's code (e.g. main's), for an A/B in the same run
            serve_env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
        log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115
        serve = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tokenpilot",
                "serve",
                "--port",
                str(port),
                "--mode",
                args.mode,
                "--db",
                str(db),
                "--openai-base",
                fake_url,
                "--anthropic-base",
                fake_url,
                *extra.split(),
            ],
            stdout=log,
            stderr=log,
            env=serve_env,
        )
        processes.append(serve)
        wait_ready(f"http://127.0.0.1:{port}/", serve, f"tokenpilot serve ({name})")
        targets.append(Target(name, f"http://127.0.0.1:{port}", serve.pid))

    targets += floors(args, workdir, fake_url, processes)

    if args.litellm:
        config = workdir / "litellm.yaml"
        config.write_text(
            "model_list:\n"
            "  - model_name: gpt-4o\n"
            f"    litellm_params: {{model: openai/gpt-4o, api_base: '{fake_url}/v1', api_key: sk-fake}}\n"
            "  - model_name: claude-sonnet-4-6\n"
            "    litellm_params: {model: anthropic/claude-sonnet-4-6, "
            f"api_base: '{fake_url}', api_key: sk-fake}}\n"
            "litellm_settings:\n  telemetry: false\n  drop_params: true\n"
            # No database and no key: the lightest LiteLLM configuration (local use only).
            "general_settings:\n  dangerously_permit_weak_or_unset_master_key: true\n"
        )
        ll_env = dict(
            os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False", NO_DOCS="True"
        )
        ll_env.pop("DATABASE_URL", None)
        ll_log = open(workdir / "litellm.log", "wb")  # noqa: SIM115
        litellm = subprocess.Popen(
            [
                args.litellm,
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(ll_port),
                "--num_workers",
                "1",
            ],
            stdout=ll_log,
            stderr=ll_log,
            env=ll_env,
            cwd=workdir,
        )
        processes.append(litellm)
        wait_ready(f"http://127.0.0.1:{ll_port}/health/liveliness", litellm, "litellm", timeout=300)
        targets.append(Target("litellm", f"http://127.0.0.1:{ll_port}", litellm.pid))
    return targets


NGINX_CONF = """worker_processes 1;
user root;
daemon off;
pid {dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_buffer_size 4m;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    upstream fake {{ server 127.0.0.1:{fake_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering on;
        }}
    }}
}}
"""


def floors(
    args: argparse.Namespace, workdir: Path, fake_url: str, processes: list[subprocess.Popen[bytes]]
) -> list[Target]:
    """What a proxy costs before it does anything: `--floor` (tokenpilot's stack, no tokenpilot) and
    `--nginx` (a C proxy: the two extra loopback hops alone)."""
    found = []
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if args.floor:
        port = free_port()
        floor = subprocess.Popen(  # type: ignore[call-overload]
            [sys.executable, str(FLOOR), "--port", str(port), "--upstream", fake_url], **quiet
        )
        processes.append(floor)
        wait_ready(f"http://127.0.0.1:{port}/", floor, "the floor proxy")
        found.append(Target("floor", f"http://127.0.0.1:{port}", floor.pid))
    if args.nginx:
        port = free_port()
        conf = workdir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=workdir, fake_port=fake_url.rsplit(":", 1)[1], port=port))
        nginx = subprocess.Popen([args.nginx, "-p", str(workdir), "-c", str(conf)], **quiet)  # type: ignore[call-overload]
        processes.append(nginx)
        wait_ready(f"http://127.0.0.1:{port}/", nginx, "nginx")
        found.append(Target("nginx", f"http://127.0.0.1:{port}", nginx.pid))
    return found


def summarise(found: dict[str, Samples]) -> dict[str, dict[str, float]]:
    direct = found["direct"]
    out: dict[str, dict[str, float]] = {}
    for name, samples in found.items():
        row = {
            "n": len(samples.latency),
            "errors": samples.errors,
            "p50_ms": pct(samples.latency, 0.5) * 1e3,
            "p99_ms": pct(samples.latency, 0.99) * 1e3,
        }
        if samples.ttfb:
            row["ttfb_p50_ms"] = pct(samples.ttfb, 0.5) * 1e3
        if name != "direct":
            row["added_p50_ms"] = row["p50_ms"] - pct(direct.latency, 0.5) * 1e3
            row["added_p99_ms"] = row["p99_ms"] - pct(direct.latency, 0.99) * 1e3
            if samples.ttfb and direct.ttfb:
                row["added_ttfb_ms"] = row["ttfb_p50_ms"] - pct(direct.ttfb, 0.5) * 1e3
        out[name] = row
    return out


async def run(args: argparse.Namespace, targets: list[Target]) -> dict[str, Any]:
    # The load generator is aiohttp's client: httpx's costs about four times its CPU per request, and
    # the client shares the 2 cores with the fake and the proxies (it, not the proxy, capped 300/s).
    connector = aiohttp.TCPConnector(limit=64, force_close=False)
    timeout = aiohttp.ClientTimeout(total=60)
    results: dict[str, Any] = {"scenarios": {}, "fixed_rate": {}}
    scenarios = [
        Scenario(api, stream, tokens)
        for tokens in args.tokens
        for api in ("chat", "messages")
        for stream in (False, True)
    ]
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, trust_env=False, auto_decompress=False
    ) as client:
        warm = [s.request(0) for s in scenarios]
        for target in targets:
            for payload, scenario in zip(warm, scenarios, strict=True):
                for _ in range(5):
                    await one_call(client, target, scenario, payload, Samples())
        for scenario in scenarios:
            payloads = [scenario.request(seed) for seed in range(16)]
            cpu0 = {t.name: tree_cpu(t.pid) for t in targets if t.pid}
            calls0 = {t.name: t.calls for t in targets}
            # The load generator's and the fake's CPU per call: what the proxies share the cores with.
            client0, fake0 = time.process_time(), cpu_seconds(args.fake_pid)
            seq = await sequential(client, targets, scenario, args.sequential, payloads)
            conc = await concurrent(client, targets, scenario, args.rounds, args.per_worker, payloads)
            entry = {"sequential": summarise(seq), "concurrency_8": summarise(conc), "cpu_ms_per_call": {}}
            for t in targets:
                if t.pid:
                    entry["cpu_ms_per_call"][t.name] = (
                        (tree_cpu(t.pid) - cpu0[t.name]) / max(1, t.calls - calls0[t.name]) * 1e3
                    )
            all_calls = max(1, sum(t.calls - calls0[t.name] for t in targets))
            entry["client_cpu_ms_per_call"] = (time.process_time() - client0) / all_calls * 1e3
            entry["fake_cpu_ms_per_call"] = (cpu_seconds(args.fake_pid) - fake0) / all_calls * 1e3
            results["scenarios"][scenario.label] = entry
            print(
                f"{scenario.label}: "
                + json.dumps({k: v.get("added_p50_ms") for k, v in entry["concurrency_8"].items()}),
                flush=True,
            )
        for scenario in scenarios:
            if scenario.tokens != min(args.tokens):
                continue
            payloads = [scenario.request(seed) for seed in range(16)]
            results["fixed_rate"][scenario.label] = await fixed_rate(
                client, targets, scenario, args.rate, args.seconds, payloads, args.fake_pid
            )
            print(
                f"fixed {scenario.label}: "
                + json.dumps(
                    {k: round(v["achieved_per_s"]) for k, v in results["fixed_rate"][scenario.label].items()}
                ),
                flush=True,
            )
        results["rss_after_scenarios_mb"] = {t.name: tree_rss_mb(t.pid) for t in targets if t.pid}
        # Memory: RSS after --memory-calls calls, then after half as many again (flat?).
        memory: dict[str, Any] = {}
        small = Scenario("chat", False, 2000)
        payloads = [small.request(seed) for seed in range(16)]
        for target in targets:
            if not target.pid or target.name not in args.memory_targets:
                continue
            before = tree_rss_mb(target.pid)
            for step, calls in (("after", args.memory_calls), ("later", args.memory_calls // 2)):
                samples = Samples()
                for r in range(calls // 80):
                    await asyncio.gather(
                        *(one_call(client, target, small, payloads[(r + w) % 16], samples) for w in range(8))
                    )
                    for _ in range(9):
                        await one_call(client, target, small, payloads[r % 16], samples)
                memory.setdefault(target.name, {"start_mb": before})[f"{step}_mb"] = tree_rss_mb(target.pid)
                memory[target.name][f"{step}_errors"] = samples.errors
            memory[target.name]["calls"] = target.calls
        results["memory"] = memory
    return results


def markdown(results: dict[str, Any], command: str) -> str:
    names = [n for n in next(iter(results["scenarios"].values()))["sequential"] if n != "direct"]
    lines = [
        "# Proxy overhead (bench/proxy_overhead.py)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {results['machine']} — shared with other agents: noisy; medians within one run.",
        "Load average (1, 5, 15 min) at the start: "
        + ", ".join(f"{v:.1f}" for v in results["load_average"]["start"])
        + "; at the end: "
        + ", ".join(f"{v:.1f}" for v in results["load_average"]["end"])
        + ".",
        "",
        "Added latency = target p50/p99 minus the direct call's in the same scenario, interleaved. ms.",
        "",
        "| scenario | load | "
        + " | ".join(f"{n} +p50 | {n} +p99" for n in names)
        + "".join(f" | {n} +TTFB" for n in names)
        + " | direct p50 |",
        "|---|---|" + "---|---|" * len(names) + "---|" * len(names) + "---|",
    ]
    for label, entry in results["scenarios"].items():
        for load in ("sequential", "concurrency_8"):
            rows = entry[load]
            cells = []
            for n in names:
                cells += [f"{rows[n]['added_p50_ms']:.2f}", f"{rows[n]['added_p99_ms']:.2f}"]
            ttfb = [
                f"{rows[n]['added_ttfb_ms']:.2f}" if "added_ttfb_ms" in rows.get(n, {}) else "-"
                for n in names
            ]
            lines.append(
                f"| {label} | {load.replace('_', ' ')} | "
                + " | ".join(cells + ttfb)
                + f" | {rows['direct']['p50_ms']:.2f} |"
            )
    lines += [
        "",
        "CPU time per call (ms, the proxy process tree, all loads of the scenario):",
        "",
        "| scenario | " + " | ".join(names) + " | load generator | fake upstream |",
        "|---|" + "---|" * len(names) + "---|---|",
    ]
    for label, entry in results["scenarios"].items():
        lines.append(
            f"| {label} | "
            + " | ".join(f"{entry['cpu_ms_per_call'].get(n, float('nan')):.2f}" for n in names)
            + f" | {entry.get('client_cpu_ms_per_call', float('nan')):.2f}"
            + f" | {entry.get('fake_cpu_ms_per_call', float('nan')):.2f} |"
        )
    lines += [
        "",
        "Fixed rate (open loop, 10 s per target in rotating 2 s slices; after each slice the target "
        "and the fake are left to go quiet, so a backlog is not the next target's):",
        "",
        "| scenario | target | asked/s | achieved/s | errors | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, entry in results["fixed_rate"].items():
        for name, row in entry.items():
            lines.append(
                f"| {label} | {name} | {results['rate']:.0f} | {row['achieved_per_s']:.0f} | {row['errors']} "
                f"| {row['p50_ms']:.2f} | {row['p99_ms']:.2f} |"
            )
    rss = results.get("rss_after_scenarios_mb", {})
    lines += ["", "RSS after the scenarios (MB): " + ", ".join(f"{k} {v:.0f}" for k, v in rss.items())]
    lines += [
        "",
        "Resident memory (MB, process tree):",
        "",
        "| target | at start | after N calls | after 1.5 N | calls | errors |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["memory"].items():
        lines.append(
            f"| {name} | {row['start_mb']:.0f} | {row['after_mb']:.0f} | {row['later_mb']:.0f} "
            f"| {row['calls']} | {row['after_errors'] + row['later_errors']} |"
        )
    return "\n".join(lines) + "\n"


def variant(spec: str) -> tuple[str, str, str]:
    name, _, rest = spec.partition("=")
    source, _, extra = rest.partition(":")
    if not name or name in ("direct", "tokenpilot", "litellm", "floor", "nginx"):
        raise argparse.ArgumentTypeError(f"a variant needs a new NAME: {spec!r}")
    return name, source, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--litellm", help="path to the `litellm` command of a separate venv (the anchor)")
    parser.add_argument("--mode", default="enforce", choices=["observe", "enforce"])
    parser.add_argument("--sequential", type=int, default=150, help="requests per target per scenario")
    parser.add_argument("--rounds", type=int, default=4, help="rotations of the concurrency-8 slices")
    parser.add_argument("--per-worker", type=int, default=10, help="requests per worker per slice")
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--memory-calls", type=int, default=10_000)
    parser.add_argument("--memory-targets", nargs="+", default=["tokenpilot", "litellm"])
    parser.add_argument("--out", default=str(RESULTS / "proxy_overhead"))
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also bench/floor_proxy.py: the same stack, none of tokenpilot",
    )
    parser.add_argument("--nginx", help="also an nginx reverse proxy (path to `nginx`): the hops alone")
    parser.add_argument(
        "--serve-args", default="", help="extra arguments of `tokenpilot serve`, e.g. '--workers 2'"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        type=variant,
        metavar="NAME=SRC[:ARGS]",
        help="another tokenpilot serve in the same run: NAME, a source dir put first on PYTHONPATH "
        "(e.g. a clone of main's src; empty: this checkout) and extra serve arguments",
    )
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tp-bench-") as tmp:
        processes: list[subprocess.Popen[bytes]] = []
        try:
            targets = start(args, Path(tmp), processes)
            results = asyncio.run(run(args, targets))
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        results["machine"] = (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        # The machine is shared: the load average says how noisy the run was.
        results["load_average"] = {"start": load_at_start, "end": os.getloadavg()}
        results["rate"] = args.rate
        results["mode"] = args.mode
        command = "python bench/proxy_overhead.py " + " ".join(sys.argv[1:])
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out + ".json").write_text(json.dumps(results, indent=2))
        Path(args.out + ".md").write_text(markdown(results, command))
        print(markdown(results, command))
        print("tokenpilot log tail:", (Path(tmp) / "tokenpilot.log").read_text()[-600:], file=sys.stderr)
        errors = [line for line in (Path(tmp) / "tokenpilot.log").read_text().splitlines() if "ERROR" in line]
        print(f"tokenpilot log: {len(errors)} ERROR lines", *errors[:5], sep="\n", file=sys.stderr)


if __name__ == "__main__":
    main()
