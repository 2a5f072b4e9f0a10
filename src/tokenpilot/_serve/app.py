"""The proxy's routes: parse → (optimize) → plan → reserve → forward/stream → normalise usage → settle.

Handlers are plain ASGI callables: the model-call routes are found by one dict lookup (`ProxyApp`),
the rest by Starlette's router; no per-request framework objects on the hot path, and full control of
when each byte of a stream is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import aiohttp
import orjson
from starlette.routing import Mount, Route, Router

import tokenpilot as tp
from tokenpilot._serve import advice, errors, failover, requests, upstream
from tokenpilot._serve.accounting import Accountant, CallFacts
from tokenpilot._serve.errors import ProxyError
from tokenpilot._serve.requests import BadRequest, CallRequest
from tokenpilot._serve.settings import ServeSettings, Upstream
from tokenpilot._serve.usage import StreamTracker, TokenUsage, read_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("tokenpilot.serve")
log.addHandler(logging.NullHandler())

JSON = b"application/json"
ROUTES = {
    "/v1/chat/completions": "openai_chat",
    "/v1/responses": "openai_responses",
    "/v1/messages": "anthropic_messages",
}
MIN_CLAMPED_OUTPUT = 256  # below this a clamped reply is too short to be of use: refuse instead
DEFAULT_OUTPUT_RESERVE = 4096  # held for a call that names no limit on a model whose limit is unknown
_CONFIRMED = ("data", "config", "env")  # sources that make a limit a fact; "default" and "rule" are guesses


@dataclass(frozen=True, slots=True)
class ModelLimits:
    """The limits the proxy may enforce for a model: only those known from data, config or env."""

    window: int | None
    max_output: int | None
    known: bool


@lru_cache(maxsize=1024)
def model_limits(model: str) -> ModelLimits:
    info = tp.get_model(model)

    def confirmed(name: str) -> bool:
        return info.sources.get(name, "unknown").split(":", 1)[0] in _CONFIRMED

    window = info.context_window if confirmed("context_window") else None
    max_output = info.max_output_tokens if confirmed("max_output_tokens") else None
    known = window is not None
    if not known:
        log.warning(
            "unknown model %s: its limits are not known, so calls go as asked (cost recorded as unknown)",
            model,
            extra={"event": "unknown_model", "model": model},
        )
    return ModelLimits(window, max_output, known)


async def read_all(receive: Receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return bytes(body)
    parts = [body]
    while message.get("more_body"):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


_date: list[Any] = [0, b""]  # (second, its HTTP date): the Date of the proxy's own answers


def http_date() -> bytes:
    """Now as an HTTP Date (the server adds none: relayed answers carry the upstream's)."""
    now = int(time.time())
    if _date[0] != now:
        _date[:] = [now, email.utils.formatdate(now, usegmt=True).encode()]
    return bytes(_date[1])


async def reply(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [(b"date", http_date()), (b"content-type", JSON), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


async def reply_error(send: Send, api: str, error: ProxyError) -> None:
    await reply(send, error.status, error.body(api), list(error.headers))


class ClientGone(Exception):
    """The client closed its connection before the response was complete."""


@dataclass(slots=True)
class Plan:
    """What the proxy decided for one call before forwarding it."""

    body: bytes
    max_tokens: int | None
    reservation: tp.Reservation | None = None
    prompt_tokens: int | None = None
    prompt_exact: bool = False
    optimized_from: int | None = None
    optimized_to: int | None = None
    optimize_actions: tuple[str, ...] = ()
    removed: int = 0
    # The window-squeeze advice, worked out on a thread while the upstream answers (enforce mode).
    advice: asyncio.Future[str] | None = None


class Proxy:
    """The running proxy: settings, the pooled upstream client, the accountant, the optimizer."""

    def __init__(self, settings: ServeSettings, *, ledger: tp.Ledger | None = None) -> None:
        self.settings = settings
        self._ledger = ledger
        self._owns_ledger = ledger is None
        self.client: aiohttp.ClientSession | None = None
        self.accountant: Accountant | None = None
        self.optimizer: Any = None
        self.telemetry: Any = None
        self.in_flight = 0

    # --- lifecycle ------------------------------------------------------------------------------

    async def startup(self) -> None:
        if self._ledger is None:
            self._ledger = await asyncio.to_thread(tp.open_ledger, self.settings.db)
        # Tokenizers are not loaded here: most calls never count (the free bound is reserved), and
        # o200k alone holds ~80 MB; the first call that counts loads its model's, on the pool.
        self.accountant = Accountant(self._ledger)
        self.client = upstream.make_client(self.settings.timeout)
        if self.settings.mode == "optimize":
            self.optimizer = load_optimizer(self.settings)
        if self.settings.otel:
            from tokenpilot._serve.telemetry import Telemetry

            self.telemetry = Telemetry()
            self.accountant.on_record.append(self.telemetry.record)
        log.info(
            "tokenpilot serve: %s mode on http://%s:%s, ledger %s",
            self.settings.mode,
            self.settings.host,
            self.settings.port,
            self._ledger.url,
            extra={"event": "serve_started"},
        )

    async def shutdown(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.accountant is not None:
            self.accountant.flush_now()
            await asyncio.to_thread(self.accountant.drain)
        if self._ledger is not None and self._owns_ledger:
            self._ledger.close()
        log.info("tokenpilot serve: stopped; every call settled", extra={"event": "serve_stopped"})

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    def asgi(self) -> ProxyApp:
        calls = {path: _Call(self, api) for path, api in ROUTES.items()}
        count_tokens, root = _Asgi(self._count_tokens), _Asgi(self._root)
        routes: list[Any] = [Route(path, call, methods=["POST"]) for path, call in calls.items()]
        routes += [
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/tokenpilot/spill/{handle}", _Asgi(self._spill), methods=["GET"]),
            Route("/", root, methods=["GET", "HEAD"]),
            Mount("/v1", _Asgi(self._passthrough)),
        ]
        # The bare router, not a Starlette app: its error and exception middleware wrap every `send`
        # of a stream, and every handler here answers its own errors in the provider's shape.
        router = Router(routes=routes, lifespan=self.lifespan)
        exact: dict[tuple[str, str], Handler] = {("POST", path): call for path, call in calls.items()}
        exact[("POST", "/v1/messages/count_tokens")] = count_tokens
        exact[("GET", "/")] = exact[("HEAD", "/")] = root
        return ProxyApp(exact, router)

    # --- small routes -----------------------------------------------------------------------------

    async def _root(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Claude Code probes `HEAD /` before its first call; answer locally.
        body = b"" if scope["method"] == "HEAD" else b'{"service":"tokenpilot serve"}'
        await reply(send, 200, body)

    async def _spill(self, scope: Scope, receive: Receive, send: Send) -> None:
        from tokenpilot._trim._spill import read_spill

        handle = scope["path_params"]["handle"]
        text = read_spill(handle)
        if text is None:
            await reply(send, 404, orjson.dumps({"error": {"message": f"no spilled output {handle!r}"}}))
            return
        data = text.encode()
        head = [
            (b"date", http_date()),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(data)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": data})

    async def _count_tokens(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_all(receive)
        if self.settings.count_tokens_upstream:
            target = self.settings.upstream_for("anthropic", None)
            await self._forward_plain(scope, send, target, body, path=scope["path"])
            return
        try:
            payload = orjson.loads(body)
            if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
                raise BadRequest("the request body needs a 'messages' list")
            model = payload.get("model")
            if not isinstance(model, str):
                raise BadRequest("the request body needs a 'model' string")
        except (orjson.JSONDecodeError, BadRequest) as exc:
            log.warning("400 count_tokens: %s", exc, extra={"event": "bad_request"})
            await reply_error(send, "anthropic_messages", errors.bad_request(str(exc)))
            return
        assert self.accountant is not None
        call = CallRequest("anthropic_messages", payload, model, False, None)
        counted, exact = await self.accountant.call(requests.count_prompt, call)
        label = b"exact" if exact else b"estimate"
        await reply(send, 200, orjson.dumps({"input_tokens": counted}), [(b"x-tokenpilot-count", label)])

    async def _passthrough(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_all(receive)
        headers = scope["headers"]
        anthropic = any(k in (b"x-api-key", b"anthropic-version") for k, _ in headers)
        target = self.settings.upstream_for("anthropic" if anthropic else "openai", None)
        path = scope["path"]  # Starlette's Mount keeps the full path (and sets root_path)
        if not path.startswith("/v1/"):
            path = "/v1" + path
        await self._forward_plain(scope, send, target, body, path=path)

    async def _forward_plain(
        self, scope: Scope, send: Send, target: Upstream, body: bytes, *, path: str
    ) -> None:
        """Forward one request untouched and stream the answer back as it comes."""
        assert self.client is not None
        api = "anthropic_messages" if target.api == "anthropic" else "openai_chat"
        query = scope.get("query_string", b"")
        try:
            response = await upstream.send(
                self.client, scope["method"], target, path, query, scope["headers"], body
            )
        except upstream.UpstreamError as exc:
            await reply_error(send, api, errors.unreachable(target.base_url, str(exc)))
            return
        try:
            head = response.client_headers(http_date())
            await send({"type": "http.response.start", "status": response.status, "headers": head})
            async for chunk in response.chunks():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except upstream.UpstreamBroke:
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b""})
        finally:
            response.close()


class ProxyApp:
    """The proxy's ASGI app: its hot routes by one dict lookup, everything else by Starlette's router.

    Each `exact` key is a (method, path) that the router's first full match sends to that same
    handler, so skipping the router changes nothing but its cost: a regex per route tried and the
    scope updates, 2.3-3.3 µs a call against 0.7 µs (measured on a no-op handler). The router keeps
    all the rest: lifespan, the /v1 pass-through, path parameters, 405s, redirects, and any request
    with a `root_path`, where it matches the path without it. The hot handlers read neither
    `path_params` nor the `route`/`endpoint` keys that the router would set.
    """

    __slots__ = ("exact", "router")

    def __init__(self, exact: dict[tuple[str, str], Handler], router: Router) -> None:
        self.exact = exact
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            handler = self.exact.get((scope["method"], scope["path"]))
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.router(scope, receive, send)


class _Asgi:
    """A bound method as a plain ASGI endpoint (Starlette would wrap a function in a Request)."""

    def __init__(self, handler: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.handler(scope, receive, send)


class _Call:
    """The ASGI endpoint of one model-call route."""

    def __init__(self, proxy: Proxy, api: str) -> None:
        self.proxy = proxy
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        proxy = self.proxy
        proxy.in_flight += 1
        try:
            await _model_call(proxy, self.api, scope, receive, send)
        finally:
            proxy.in_flight -= 1


async def _model_call(proxy: Proxy, api: str, scope: Scope, receive: Receive, send: Send) -> None:
    started = time.monotonic()
    settings = proxy.settings
    accountant = proxy.accountant
    assert accountant is not None and proxy.client is not None
    body = await read_all(receive)
    try:
        call = requests.parse_request(api, body)
    except BadRequest as exc:
        log.warning("400 %s: %s", scope["path"], exc, extra={"event": "bad_request"})
        await reply_error(send, api, errors.bad_request(str(exc)))
        return
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    who = _Who(
        scope=requests.scope_of(headers, settings),
        session=requests.session_key(headers, settings),
        agent=requests.header(headers, b"x-tokenpilot-agent"),
        phase=requests.header(headers, b"x-tokenpilot-phase"),
    )
    plan = Plan(body=body, max_tokens=call.max_tokens)
    if proxy.optimizer is not None:
        call, plan = await _optimize(proxy, call, plan, headers, who.session)
    target = settings.upstream_for(call.family, call.model)
    await _forward(proxy, call, plan, who, started, target, (scope, receive, send), ())


async def _forward(
    proxy: Proxy,
    call: CallRequest,
    plan: Plan,
    who: _Who,
    started: float,
    target: Upstream,
    asgi: tuple[Scope, Receive, Send],
    tried: tuple[str, ...],
) -> None:
    """Plan, reserve and forward one attempt of a call (a failover's next attempt comes back here)."""
    settings = proxy.settings
    api = call.api
    scope, receive, send = asgi
    if settings.mode != "observe":
        refused = await _plan_and_reserve(proxy, call, plan, who)
        if refused is not None:
            await reply_error(send, api, refused)
            return
    source = plan.body
    changes: dict[str, Any] = {}
    strip_usage = requests.wants_usage_injected(call)
    if strip_usage:
        changes.update(requests.usage_injection(call))
    if plan.max_tokens is not None and plan.max_tokens != call.max_tokens:
        changes[requests.MAX_FIELDS[api][0] if call.max_tokens is None else _asked_field(call)] = (
            plan.max_tokens
        )
    if changes:
        plan.body = requests.with_fields(plan.body, call.payload, changes)
    extra_headers: list[tuple[bytes, bytes]] = []
    if settings.mode != "observe" and plan.max_tokens is not None:
        extra_headers.append((b"x-tokenpilot-max-tokens", str(plan.max_tokens).encode()))
    if plan.removed > 0:
        extra_headers.append((b"x-tokenpilot-compacted", f"{plan.removed} tokens removed".encode()))
    exchange = _Exchange(proxy, call, plan, who, started, target)
    exchange.source = source
    exchange.tried = (*tried, f"{target.name}:{call.model}")
    await exchange.run(scope, receive, send, strip_usage, extra_headers)


def _asked_field(call: CallRequest) -> str:
    for name in requests.MAX_FIELDS[call.api]:
        if call.payload.get(name) is not None:
            return name
    return requests.MAX_FIELDS[call.api][0]


@dataclass(frozen=True, slots=True)
class _Who:
    scope: str
    session: str | None
    agent: str | None
    phase: str | None


async def _optimize(
    proxy: Proxy, call: CallRequest, plan: Plan, headers: list[tuple[bytes, bytes]], session: str | None
) -> tuple[CallRequest, Plan]:
    """Let the optimizer rewrite the body; forward the original if it fails or breaks the conversation."""
    assert proxy.accountant is not None
    header_map = {
        k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k not in upstream.CREDENTIALS
    }

    def rewrite() -> Any:
        return proxy.optimizer.rewrite(
            call.api, call.payload, model=call.model, session_key=session, headers=header_map
        )

    try:
        optimized = await proxy.accountant.call(rewrite)
        new_body = optimized.body
        if not isinstance(new_body, dict):
            raise TypeError(f"Optimized.body must be a dict, got {type(new_body).__name__}")
        if new_body is call.payload or new_body == call.payload:
            return call, plan
        problems = _problems(call.api, new_body)
        if problems:
            log.warning(
                "optimize: rewrite forwarded unchanged, it would break the conversation: %s",
                "; ".join(str(p) for p in problems[:3]),
                extra={"event": "optimize_invalid"},
            )
            return call, plan
    except Exception as exc:  # the optimizer is optional: any failure forwards the original
        log.warning(
            "optimize: forwarded the original (%s: %s)",
            type(exc).__name__,
            exc,
            extra={"event": "optimize_failed"},
        )
        return call, plan
    body = orjson.dumps(new_body)
    new_call = replace(call, payload=new_body)
    plan.body = body
    plan.optimized_from = int(optimized.tokens_before)
    plan.optimized_to = int(optimized.tokens_after)
    plan.optimize_actions = tuple(optimized.actions)
    plan.removed = int(optimized.removed)
    return new_call, plan


def _problems(api: str, body: dict[str, Any]) -> tuple[Any, ...]:
    if api == "openai_responses":
        return () if isinstance(body.get("input"), list | str) else ("input is missing",)
    return tuple(tp.validate(body, "anthropic" if api == "anthropic_messages" else "openai"))


def load_optimizer(settings: ServeSettings) -> Any:
    """One `Optimizer(settings)` if `tokenpilot._serve.optimize` exists; else optimize acts as enforce."""
    try:
        from tokenpilot._serve import optimize  # type: ignore[attr-defined, unused-ignore]
    except ImportError:
        log.warning(
            "optimize mode: no optimizer installed, behaving as enforce", extra={"event": "no_optimizer"}
        )
        return None
    return optimize.Optimizer(settings)


async def _plan_and_reserve(proxy: Proxy, call: CallRequest, plan: Plan, who: _Who) -> ProxyError | None:
    """Check the window, set or clamp max_tokens, and hold the budget; an error means: do not forward."""
    accountant = proxy.accountant
    assert accountant is not None
    limits = model_limits(call.model)
    bound = requests.prompt_bound(plan.body)
    wanted = plan.max_tokens if plan.max_tokens is not None else limits.max_output
    if limits.window is not None and bound + (wanted or 0) > limits.window:
        counted, plan.prompt_exact = await accountant.call(requests.count_prompt, call)
        plan.prompt_tokens = counted
        if counted >= limits.window:
            log.warning(
                "400 %s: prompt of %d tokens over the window of %d", call.model, counted, limits.window
            )
            return errors.over_window(call.api, counted, limits.window, call.model)
    if limits.known:
        assert limits.window is not None
        prompt = plan.prompt_tokens if plan.prompt_tokens is not None else min(bound, limits.window - 1)
        room = limits.window - prompt
        ceiling = min(room, limits.max_output) if limits.max_output else room
        if plan.max_tokens is None or plan.max_tokens > ceiling:
            plan.max_tokens = max(1, ceiling)
            full = min(wanted, limits.max_output) if wanted and limits.max_output else wanted
            if plan.prompt_tokens is not None and full is not None and room < full:
                plan.advice = asyncio.ensure_future(
                    accountant.call(
                        advice.squeeze_advice, call.payload, call.model, plan.max_tokens, full, room
                    )
                )
    output = plan.max_tokens if plan.max_tokens is not None else DEFAULT_OUTPUT_RESERVE
    for attempt in range(3):
        prompt = bound
        if plan.prompt_tokens is not None:
            prompt = requests.held_prompt(plan.prompt_tokens, plan.prompt_exact, bound)
        try:
            plan.reservation = await accountant.hold(
                who.scope,
                model=call.model,
                input_tokens=prompt,
                max_output_tokens=output,
                provider=call.provider_name,
                session=who.session,
                agent=who.agent,
                phase=who.phase,
                request_id=None,
            )
            return None
        except tp.BudgetExceeded as refusal:
            if plan.prompt_tokens is None:
                # The free bound was refused: the exact count may still fit.
                plan.prompt_tokens, plan.prompt_exact = await accountant.call(requests.count_prompt, call)
                continue
            left = _room_for_output(refusal, prompt)
            if attempt < 2 and left is not None and MIN_CLAMPED_OUTPUT <= left < output and limits.known:
                output = plan.max_tokens = left  # clamp to what the budget still allows
                continue
            _drop_advice(plan)
            may_clear = _fits_once_holds_clear(refusal, prompt, output, clampable=limits.known)
            message = f"tokenpilot budget refused this call: {refusal}"
            return errors.budget_refused(message, may_clear=may_clear)
        except tp.BudgetError as problem:
            _drop_advice(plan)
            return errors.budget_refused(f"tokenpilot budget refused this call: {problem}")
    return errors.budget_refused("tokenpilot budget refused this call")


def _drop_advice(plan: Plan) -> None:
    if plan.advice is not None:
        plan.advice.cancel()
        plan.advice = None


async def _advice_of(plan: Plan) -> str | None:
    """The squeeze advice, once the upstream has answered; None when there is none or it failed."""
    if plan.advice is None:
        return None
    try:
        return await plan.advice
    except Exception as exc:  # advice is a courtesy: it never fails the call
        log.warning("no advice for a squeezed call: %s: %s", type(exc).__name__, exc)
        return None


def _fits_once_holds_clear(refusal: tp.BudgetExceeded, prompt: int, output: int, *, clampable: bool) -> bool:
    """Would the call fit if other calls' holds were gone? They settle within a call's time, so a
    retry may pass; otherwise (spent, or too big) waiting for seconds will not help."""
    if refusal.reserved <= 0:
        return False
    output = min(output, MIN_CLAMPED_OUTPUT) if clampable else output
    need = {"tokens": prompt + output, "output_tokens": output, "input_tokens": prompt}.get(
        refusal.unit, refusal.requested
    )
    return refusal.spent + need <= refusal.limit


def _room_for_output(refusal: tp.BudgetExceeded, prompt: int) -> int | None:
    free = refusal.limit - refusal.spent - refusal.reserved
    if refusal.unit == "tokens":
        return int(free - prompt)
    if refusal.unit == "output_tokens":
        return int(free)
    return None


class _Exchange:
    """One forwarded call: send upstream, relay the answer, then settle (off the critical path)."""

    def __init__(
        self, proxy: Proxy, call: CallRequest, plan: Plan, who: _Who, started: float, target: Upstream
    ) -> None:
        self.proxy = proxy
        self.call = call
        self.plan = plan
        self.who = who
        self.started = started
        self.target = target
        self.http_status: int | None = None
        self.request_id: str | None = None
        self.advice: str | None = None
        self.settled = False
        self.source = plan.body  # the body before the proxy's own field changes (for a failover)
        self.tried: tuple[str, ...] = ()  # "upstream:model" of every attempt so far, this one included

    async def run(
        self, scope: Scope, receive: Receive, send: Send, strip_usage: bool, extra: list[tuple[bytes, bytes]]
    ) -> None:
        proxy = self.proxy
        assert proxy.client is not None
        query = scope.get("query_string", b"")
        try:
            response = await upstream.send(
                proxy.client, "POST", self.target, scope["path"], query, scope["headers"], self.plan.body
            )
        except upstream.UpstreamTimeout:
            _drop_advice(self.plan)
            self.finish(None, None, status="error", error="upstream timeout", http_status=504)
            await reply_error(send, self.call.api, errors.timed_out(self.target.base_url))
            return
        except upstream.UpstreamError as exc:
            _drop_advice(self.plan)
            self.finish(
                None, None, status="error", error=f"upstream unreachable: {exc}"[:500], http_status=502
            )
            await reply_error(send, self.call.api, errors.unreachable(self.target.base_url, str(exc)))
            return
        except BaseException:
            _drop_advice(self.plan)
            self.finish(None, None, status="cancelled", error="cancelled before the upstream answered")
            raise
        self.http_status = response.status
        self.request_id = response.header("x-request-id") or response.header("request-id")
        content: bytes | None = None
        try:
            if (
                proxy.settings.failover
                and response.status in failover.RETRYABLE
                and len(self.tried) < failover.MAX_ATTEMPTS
            ):
                with contextlib.suppress(upstream.UpstreamBroke):
                    content = await response.read()
                moved = None if content is None else await self._next_attempt(response, content)
                if moved is not None:
                    assert content is not None
                    response.close()
                    _drop_advice(self.plan)
                    status = "rate_limited" if response.status in (429, 529) else "error"
                    error = f"failed over to {moved[2].name}:{moved[0].model}: " + content[:400].decode(
                        "utf-8", "replace"
                    )
                    self.finish(None, None, status=status, error=error)
                    call, plan, target = moved
                    await _forward(
                        proxy, call, plan, self.who, self.started, target, (scope, receive, send), self.tried
                    )
                    return
            self.advice = await _advice_of(self.plan)
        except BaseException:
            # Cut while deciding a failover or waiting for the advice: settle, never leave the hold.
            response.close()
            _drop_advice(self.plan)
            self.finish(None, None, status="cancelled", error="cancelled before the answer was relayed")
            raise
        head = response.client_headers(http_date()) + extra
        if self.advice is not None:
            head.append((b"x-tokenpilot-advice", self.advice.encode("ascii", "replace")))
        streaming = (response.header("content-type") or "").startswith("text/event-stream")
        try:
            if streaming and response.status == 200:
                await self._relay_stream(response, head, receive, send, strip_usage)
            else:
                await self._relay_whole(response, head, send, content)
        finally:
            response.close()

    async def _next_attempt(
        self, response: upstream.UpstreamResponse, content: bytes
    ) -> tuple[CallRequest, Plan, Upstream] | None:
        """The call's next attempt after a retryable error: the fallback upstream, else the chain's model."""
        settings = self.proxy.settings
        accountant = self.proxy.accountant
        assert accountant is not None
        call, plan = self.call, self.plan
        fallback = settings.named(self.target.fallback) if self.target.fallback else None
        if fallback is not None and f"{fallback.name}:{call.model}" not in self.tried:
            target, model, body = fallback, call.model, self.source
        else:
            found = await accountant.call(
                failover.next_model, call, response.status, response.headers(), content
            )
            if found is None:
                return None
            target = settings.upstream_for(call.family, found)
            if f"{target.name}:{found}" in self.tried:
                return None
            model = found
            call = replace(call, payload={**call.payload, "model": model}, model=model)
            body = orjson.dumps(call.payload)
        log.warning(
            "failover: HTTP %d from %s for %s; trying %s with %s",
            response.status,
            self.target.name,
            self.call.model,
            target.name,
            model,
            extra={"event": "failover", "status": response.status, "upstream": target.name, "model": model},
        )
        fresh = Plan(
            body=body,
            max_tokens=call.max_tokens,
            optimized_from=plan.optimized_from,
            optimized_to=plan.optimized_to,
            optimize_actions=plan.optimize_actions,
            removed=plan.removed,
        )
        return call, fresh, target

    async def _relay_whole(
        self,
        response: upstream.UpstreamResponse,
        head: list[tuple[bytes, bytes]],
        send: Send,
        content: bytes | None = None,
    ) -> None:
        try:
            if content is None:
                content = await response.read()
        except upstream.UpstreamBroke as exc:
            self.finish(None, None, status="error", error=f"upstream broke: {exc}"[:500], http_status=502)
            await reply_error(send, self.call.api, errors.unreachable(self.target.base_url, str(exc)))
            return
        except BaseException:
            self.finish(None, None, status="cancelled", error="cancelled while the upstream answered")
            raise
        head.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": head})
        await send({"type": "http.response.body", "body": content})
        if response.status == 200:
            outcome = read_body(self.call.api, content)
            self.finish(outcome.usage, outcome.finish_reason, status="ok")
        else:
            status = "rate_limited" if response.status in (429, 529) else "error"
            self.finish(None, None, status=status, error=content[:500].decode("utf-8", "replace"))

    async def _relay_stream(
        self,
        response: upstream.UpstreamResponse,
        head: list[tuple[bytes, bytes]],
        receive: Receive,
        send: Send,
        strip_usage: bool,
    ) -> None:
        tracker = StreamTracker(self.call.api, strip_usage=strip_usage)
        me = asyncio.current_task()
        assert me is not None
        gone = asyncio.Event()

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                me.cancel()

        watcher = asyncio.create_task(watch())
        reservation = self.plan.reservation
        # Hard stop: a stream may not run past the output its reservation holds (a model whose
        # limit is unknown goes out without max_tokens, so only the proxy can stop it).
        ceiling = reservation.max_output_tokens if reservation and self.proxy.settings.hard_stop else None
        await send({"type": "http.response.start", "status": 200, "headers": head})
        try:
            async for chunk in response.chunks():
                out = tracker.feed(chunk)
                if ceiling is not None and tracker.deltas > ceiling:
                    watcher.cancel()
                    message = (
                        f"tokenpilot hard stop: the reply passed the {ceiling} output tokens its budget holds"
                    )
                    self.finish_stream(tracker, status="cancelled", error=message)
                    await send(
                        {"type": "http.response.body", "body": errors.stream_error(self.call.api, message)}
                    )
                    return
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            tail = tracker.flush()
            watcher.cancel()
            await send({"type": "http.response.body", "body": tail})
        except asyncio.CancelledError:
            watcher.cancel()
            if gone.is_set():
                # Our own watcher cancelled us: the client left. Settle what was used; stop quietly.
                me.uncancel()
                self.finish_stream(tracker, status="cancelled", error="client disconnected mid-stream")
                return
            self.finish_stream(tracker, status="cancelled", error="proxy shut down mid-stream")
            raise
        except upstream.UpstreamBroke as exc:
            watcher.cancel()
            self.finish_stream(tracker, status="error", error=f"upstream stream broke: {exc}"[:500])
            # Tell the client in the stream's own error event (the SDKs raise on it), then end cleanly.
            event = errors.stream_error(self.call.api, f"the upstream stream broke: {exc}")
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": tracker.flush() + event})
            return
        self.finish_stream(
            tracker, status="ok" if tracker.usage is not None or tracker.completed else "error"
        )

    # --- settlement ----------------------------------------------------------------------------------

    def finish_stream(self, tracker: StreamTracker, *, status: str, error: str | None = None) -> None:
        ttft = None if tracker.first_token_at is None else tracker.first_token_at - self.started
        if tracker.usage is None and status == "error" and error is None:
            error = "the stream ended without reporting usage"
        self.finish(
            tracker.usage, tracker.finish_reason, status=status, error=error, ttft=ttft, deltas=tracker
        )

    def finish(
        self,
        usage: TokenUsage | None,
        finish_reason: str | None,
        *,
        status: str,
        error: str | None = None,
        http_status: int | None = None,
        ttft: float | None = None,
        deltas: StreamTracker | None = None,
    ) -> None:
        """Hand the call's facts to the ledger thread pool; never waits, never raises."""
        if self.settled:
            return
        self.settled = True
        accountant = self.proxy.accountant
        assert accountant is not None
        latency = time.monotonic() - self.started
        call, plan, who = self.call, self.plan, self.who
        reached = self.http_status is not None and (self.http_status == 200 or status == "cancelled")

        def work() -> None:
            reported = usage
            estimated = False
            if reported is None and reached:
                # The provider reported nothing (a broken or cut stream): our count, labelled an estimate.
                prompt = plan.prompt_tokens
                if prompt is None:
                    prompt, _ = requests.count_prompt(call)
                reported = TokenUsage(input_tokens=prompt, output_tokens=_streamed_tokens(deltas))
                estimated = True
            elif (
                reported is not None and status != "ok" and _streamed_tokens(deltas) > reported.output_tokens
            ):
                # A cut stream's usage so far (Anthropic's message_start says 1): what was streamed counts.
                reported = dataclasses.replace(reported, output_tokens=_streamed_tokens(deltas))
                estimated = True
            facts = CallFacts(
                scope=who.scope,
                model=call.model,
                provider=call.provider_name,
                usage=reported or TokenUsage(0),
                usage_estimated=estimated,
                status=status,
                http_status=http_status if http_status is not None else self.http_status,
                finish_reason=finish_reason,
                max_tokens=plan.max_tokens,
                max_tokens_requested=call.max_tokens,
                latency_s=round(latency, 6),
                ttft_s=None if ttft is None else round(ttft, 6),
                session=who.session,
                agent=who.agent,
                phase=who.phase,
                request_id=self.request_id,
                error=error,
                optimized_from=plan.optimized_from,
                optimized_to=plan.optimized_to,
                optimize_actions=plan.optimize_actions,
                advice=self.advice,
            )
            if plan.reservation is not None:
                accountant.settle(plan.reservation, facts)
            else:
                accountant.record(facts)

        # Counting a prompt (a stream that reported nothing) may load a tokenizer: never batched on the loop.
        accountant.later(work, light=not (usage is None and reached and plan.prompt_tokens is None))


def _streamed_tokens(tracker: StreamTracker | None) -> int:
    """Output tokens of a stream that reported none: one per delta event seen (providers send about one)."""
    return 0 if tracker is None else tracker.deltas
