"""The proxy's side of the account: reserve before forwarding, settle or record after, log each call.

A reservation is awaited (in enforce mode a call may not start before it holds its budget). On
PostgreSQL it runs on a small thread pool (a network round trip); on SQLite it runs on the event
loop itself: it takes about 0.1 ms of CPU there, less than the hand-off to a thread costs (0.27
against 0.13 ms of CPU and 0.22 against 0.11 ms of wall time per reservation, measured here). It
never waits there: with `wait=False` the ledger raises `StoreBusy` at once when another writer
holds the SQLite file, and the reservation is then made on the pool, so the loop keeps serving.

Settlements and records run after the last byte went to the client. On SQLite they are queued on
the loop for 2 ms (`SETTLE_DELAY`), then all that are queued by then are settled in one transaction
(`Ledger.batch`: one BEGIN and COMMIT, a savepoint each); a file another writer holds sends the
batch to the pool instead (`wait=False` again). Handing each settlement to a thread cost more than
the settlement: the wake-up, and the GIL passed back and forth with the loop (measured 1 Dec 2026,
interleaved A/B: 15-45% less CPU per call on the loop). On PostgreSQL they run on the pool.
Shutdown waits for them. Counting a prompt (which may load a tokenizer) always runs on the pool.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tokenpilot._serve.usage import TokenUsage

if TYPE_CHECKING:
    import tokenpilot as tp

log = logging.getLogger("tokenpilot.serve")
log.addHandler(logging.NullHandler())  # a library logs; the `serve` command decides what is shown

T = TypeVar("T")
# SQLite settlements wait this long on the loop, so the client just answered runs first: flushed at
# once, sequential +p50 was 0.2-0.8 ms worse than the pool's; 2 ms later, 0.1-0.6 ms better (bench).
SETTLE_DELAY = 0.002
# A flush that runs this much later than asked finds the loop saturated: its batch goes to the pool,
# whose thread adds the other core (on the loop, 300 streams/s reached 246-287/s against the pool's
# 288-299/s; with this, 291 and 299/s).
BUSY_LOOP_LAG = 0.002


@dataclass(frozen=True, slots=True)
class CallFacts:
    """Everything known about one finished (or failed, or cancelled) call, for the ledger and the log."""

    scope: str
    model: str
    provider: str
    usage: TokenUsage
    usage_estimated: bool
    status: str  # ok | error | rate_limited | cancelled
    http_status: int | None
    finish_reason: str | None
    max_tokens: int | None  # the limit the call went out with
    max_tokens_requested: int | None  # what the client asked for
    latency_s: float
    ttft_s: float | None
    session: str | None = None
    agent: str | None = None
    phase: str | None = None
    request_id: str | None = None
    error: str | None = None
    optimized_from: int | None = None
    optimized_to: int | None = None
    optimize_actions: tuple[str, ...] = ()
    advice: str | None = None  # enforce mode's advice when the window squeezed the answer


def _parameters(function: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


class Accountant:
    """One ledger shared by the proxy's threads, and the pool its I/O runs on."""

    def __init__(self, ledger: tp.Ledger, *, workers: int = 4) -> None:
        import tokenpilot as tp

        self.ledger = ledger
        self.on_loop = getattr(ledger, "dialect", "") == "sqlite"  # see the module docstring
        # Two pools: what a call waits for (reserve, count) never queues behind background settlements.
        self._urgent = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tokenpilot-reserve")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tokenpilot-settle")
        self._pending: set[Future[Any]] = set()
        self._queued: list[Callable[[], Any]] = []  # SQLite: settlements for the loop's next turn
        self._flush_handle: asyncio.Handle | None = None
        self._flush_due = 0.0
        self._settling = 0  # taken from the queue, not yet written nor handed to the pool
        self._closing = False  # after flush_now: straight to the pool (the loop may not turn again)
        self.on_record: list[Callable[[CallFacts, Any], None]] = []
        # The proxy's per-call fields, passed where the ledger's methods take them (computed once).
        self._settle_takes = _parameters(tp.Reservation.settle)
        self._record_takes = _parameters(tp.Ledger.record_call)
        self._reserve_takes = _parameters(tp.Ledger.reserve)

    # --- the pool -------------------------------------------------------------------------------

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking ledger work on the pool and wait for it."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._urgent, lambda: function(*args, **kwargs))

    async def hold(self, scope: str, **call: Any) -> tp.Reservation:
        """Reserve for one call (`reserve`'s arguments): on the loop for SQLite when no other writer
        holds it, else on the pool."""
        if self.on_loop:
            import tokenpilot as tp

            try:
                return self.reserve(scope, wait=False, **call)
            except tp.StoreBusy:
                pass
        return await self.call(self.reserve, scope, **call)

    def later(self, function: Callable[[], Any], *, light: bool = True) -> None:
        """Ledger work that nothing waits for; shutdown waits for it. SQLite: queued on the loop for
        `SETTLE_DELAY`, then everything queued by then is settled in one transaction (a `light` work
        only: one that may count a prompt goes to the pool); PostgreSQL: on the pool."""
        if not (self.on_loop and light) or self._closing:
            self._submit(_logged, function)
            return
        self._queued.append(function)
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_due = loop.time() + SETTLE_DELAY
            self._flush_handle = loop.call_later(SETTLE_DELAY, self._flush)

    def _submit(self, function: Callable[..., Any], *args: Any) -> None:
        future = self._pool.submit(function, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _flush(self) -> None:
        """On the loop: settle what is queued in one transaction; on the pool if the loop is
        saturated (this runs late) or another writer holds the file (the loop never waits for it)."""
        import tokenpilot as tp

        self._flush_handle = None
        works = self._take_queued()
        try:
            if asyncio.get_running_loop().time() - self._flush_due > BUSY_LOOP_LAG:
                self._submit(self._settle_all, works)
                return
            try:
                self._settle_all(works, wait=False)
            except tp.StoreBusy:  # raised before anything was written
                self._submit(self._settle_all, works)
        finally:
            self._settling -= len(works)

    def _take_queued(self) -> list[Callable[[], Any]]:
        """The queued settlements, still counted in `pending` (as `_settling`) until the caller has
        settled them or handed them to the pool: `pending` never reads 0 while one is unwritten."""
        self._settling += len(self._queued)
        works, self._queued = self._queued, []
        return works

    def _settle_all(self, works: list[Callable[[], Any]], *, wait: bool = True) -> None:
        import tokenpilot as tp

        try:
            with self.ledger.batch(wait=wait):
                for work in works:
                    _logged(work)  # one that fails is rolled back alone (its own savepoint)
        except tp.StoreBusy:
            raise
        except Exception:  # the commit failed: the holds expire after their TTL
            log.exception("could not record %d calls; their holds expire after their TTL", len(works))

    def flush_now(self) -> None:
        """Hand the queued settlements to the pool at once, and any later ones (shutdown)."""
        self._closing = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        works = self._take_queued()
        try:
            if works:
                self._submit(self._settle_all, works)
        finally:
            self._settling -= len(works)

    @property
    def pending(self) -> int:
        return len(self._pending) + len(self._queued) + self._settling

    def drain(self) -> None:
        """Wait for every settlement under way, then stop the pools."""
        self._urgent.shutdown(wait=True, cancel_futures=False)
        self._pool.shutdown(wait=True, cancel_futures=False)

    # --- reserve, settle, record ------------------------------------------------------------------

    def reserve(
        self,
        scope: str,
        *,
        model: str,
        input_tokens: int,
        max_output_tokens: int,
        provider: str,
        session: str | None,
        agent: str | None,
        phase: str | None,
        request_id: str | None,
        wait: bool = True,
    ) -> tp.Reservation:
        extra: dict[str, Any] = {"session": session, "provider": provider, "wait": wait}
        reserve: Callable[..., tp.Reservation] = self.ledger.reserve
        return reserve(
            scope,
            model=model,
            input_tokens=input_tokens,
            max_output_tokens=max_output_tokens,
            agent=agent,
            phase=phase,
            request_id=request_id,
            **{k: v for k, v in extra.items() if k in self._reserve_takes},
        )

    def settle(self, reservation: tp.Reservation, facts: CallFacts) -> None:
        """Replace the hold by what was used (partial usage for a failed or cancelled call)."""
        usage = facts.usage
        kwargs: dict[str, Any] = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": min(usage.cache_read_tokens, usage.input_tokens),
            "cache_write_tokens": min(usage.cache_write_tokens, usage.input_tokens - usage.cache_read_tokens),
            "reasoning_tokens": usage.reasoning_tokens,
            "finish_reason": facts.finish_reason,
            "provider": facts.provider,
            "request_id": facts.request_id,
            "latency_s": facts.latency_s,
        }
        kwargs.update(self._new_fields(facts, self._settle_takes))
        self._done(facts, reservation.settle(**kwargs))

    def record(self, facts: CallFacts) -> None:
        """Append one call's record without a reservation (observe mode)."""
        usage = facts.usage
        kwargs: dict[str, Any] = {
            "model": facts.model,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": min(usage.cache_read_tokens, usage.input_tokens),
            "cache_write_tokens": min(usage.cache_write_tokens, usage.input_tokens - usage.cache_read_tokens),
            "reasoning_tokens": usage.reasoning_tokens,
            "max_tokens": facts.max_tokens,
            "finish_reason": facts.finish_reason,
            "phase": facts.phase,
            "agent": facts.agent,
            "provider": facts.provider,
            "request_id": facts.request_id,
            "latency_s": facts.latency_s,
            "status": facts.status
            if facts.status != "cancelled" or "ttft_s" in self._record_takes
            else "error",
            "error": facts.error,
        }
        kwargs.update(self._new_fields(facts, self._record_takes))
        record = self.ledger.record_call(facts.scope, **kwargs)
        self._done(facts, record)

    def _new_fields(self, facts: CallFacts, takes: frozenset[str]) -> dict[str, Any]:
        fields = {
            "status": facts.status,
            "error": facts.error,
            "http_status": facts.http_status,
            "ttft_s": facts.ttft_s,
            "usage_estimated": facts.usage_estimated,
            "max_tokens_requested": facts.max_tokens_requested,
            "session": facts.session,
            "optimized_from": facts.optimized_from,
            "optimized_to": facts.optimized_to,
            "optimize_actions": ",".join(facts.optimize_actions) or None,
        }
        return {k: v for k, v in fields.items() if k in takes}

    def _done(self, facts: CallFacts, record: Any) -> None:
        log_call(facts, record)
        for callback in self.on_record:
            try:
                callback(facts, record)
            except Exception:  # telemetry must never lose a call that was recorded
                log.exception("call callback failed")


def _logged(function: Callable[[], Any]) -> None:
    try:
        function()
    except Exception:  # one failed settlement must not stop the pool; the hold expires after its TTL
        log.exception("could not record a call; its reservation will be reclaimed after its TTL")


def log_call(facts: CallFacts, record: Any) -> None:
    """The `[TOKEN_BUDGET]` line. Truncation and capacity warnings are the ledger's own alerts, which
    it logs as warnings itself (logger `tokenpilot.ledger`)."""
    usage = facts.usage
    limit = facts.max_tokens
    utilisation = f"{usage.output_tokens / limit:.0%}" if limit else "-"
    cache_share = f"{usage.cache_read_tokens / usage.input_tokens:.0%}" if usage.input_tokens else "-"
    cost = getattr(record, "cost_usd", None)
    cost_text = "unknown" if cost is None else f"${cost:.6f}"
    estimated = " (estimated)" if facts.usage_estimated else ""
    advice = f' advice="{facts.advice}"' if facts.advice else ""
    log.info(
        "[TOKEN_BUDGET] scope=%s model=%s status=%s http=%s input=%d%s output=%d/%s util=%s cache_read=%s "
        "cost=%s latency=%.0fms%s",
        facts.scope,
        facts.model,
        facts.status,
        facts.http_status if facts.http_status is not None else "-",
        usage.input_tokens,
        estimated,
        usage.output_tokens,
        limit if limit is not None else "-",
        utilisation,
        cache_share,
        cost_text,
        facts.latency_s * 1000,
        advice,
        extra={"event": "call", "scope": facts.scope, "model": facts.model, "session": facts.session},
    )
