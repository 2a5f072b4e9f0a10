"""OpenTelemetry GenAI spans and metrics for each proxied call (`tokenpilot[otel]`, off unless configured).

Attribute names follow the current GenAI semantic conventions: `gen_ai.usage.input_tokens` counts
every prompt token, cached ones included (the ledger's convention too), and the cached parts are
`gen_ai.usage.cache_read.input_tokens` and `gen_ai.usage.cache_write.input_tokens`.
"""

from __future__ import annotations

import time
from typing import Any

from tokenpilot._serve.accounting import CallFacts

OPERATIONS = {"openai_chat": "chat", "openai_responses": "chat", "anthropic_messages": "chat"}


class Telemetry:
    """Emits one CLIENT span and the two GenAI client histograms per call, after it is recorded."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry import metrics, trace

        self._kind = trace.SpanKind.CLIENT
        self._error = trace.StatusCode.ERROR
        self._status = trace.Status
        tracer_source = tracer_provider or trace.get_tracer_provider()
        meter_source = meter_provider or metrics.get_meter_provider()
        self.tracer = tracer_source.get_tracer("tokenpilot.serve")
        meter = meter_source.get_meter("tokenpilot.serve")
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per call, by type"
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Duration of each model call"
        )

    def record(self, facts: CallFacts, record: Any) -> None:
        usage = facts.usage
        end = time.time_ns()
        start = end - int(facts.latency_s * 1e9)
        base = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": facts.provider,
            "gen_ai.request.model": facts.model,
        }
        attributes: dict[str, Any] = {
            **base,
            "gen_ai.usage.input_tokens": usage.input_tokens,
            "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
            "gen_ai.usage.cache_write.input_tokens": usage.cache_write_tokens,
            "tokenpilot.scope": facts.scope,
            "tokenpilot.usage_estimated": facts.usage_estimated,
        }
        if facts.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = facts.max_tokens
        if facts.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [facts.finish_reason]
        if facts.session:
            attributes["gen_ai.conversation.id"] = facts.session
        if facts.http_status is not None:
            attributes["http.response.status_code"] = facts.http_status
        if facts.status != "ok":
            attributes["error.type"] = (
                facts.status if facts.http_status in (None, 200) else str(facts.http_status)
            )
        span = self.tracer.start_span(
            f"chat {facts.model}", kind=self._kind, start_time=start, attributes=attributes
        )
        if facts.status != "ok":
            span.set_status(self._status(self._error, facts.error or facts.status))
        span.end(end_time=end)
        self.token_usage.record(usage.input_tokens, {**base, "gen_ai.token.type": "input"})
        self.token_usage.record(usage.output_tokens, {**base, "gen_ai.token.type": "output"})
        metric = dict(base)
        if "error.type" in attributes:
            metric["error.type"] = attributes["error.type"]
        self.duration.record(facts.latency_s, metric)
