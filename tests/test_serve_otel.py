"""OpenTelemetry GenAI spans and metrics, read back from the SDK's in-memory exporter and reader."""

from __future__ import annotations

import httpx
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tokenpilot as tp
from fake_upstream import FakeUpstream
from serve_support import fake, ledger, running_proxy, settings_for, upstream
from tokenpilot._serve.telemetry import Telemetry


def test_each_call_emits_a_genai_span_and_token_metrics(upstream: FakeUpstream, ledger: tp.Ledger) -> None:
    exporter = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader])
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 300,
        "messages": [{"role": "user", "content": "hi " * 50}],
    }
    headers = {"x-fake-cached": "20", "x-fake-cache-write": "10", "x-tokenpilot-session": "conv-1"}
    with running_proxy(settings_for(upstream.base_url, mode="enforce"), ledger) as proxy:
        proxy.proxy.accountant.on_record.append(Telemetry(tracer, meter).record)
        reply = httpx.post(proxy.base_url + "/v1/messages", json=body, headers=headers)
        proxy.wait_settled()
    assert reply.status_code == 200
    [record] = ledger.records()
    [span] = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert span.name == "chat claude-sonnet-4-6"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "anthropic"
    assert attributes["gen_ai.request.model"] == "claude-sonnet-4-6"
    assert attributes["gen_ai.request.max_tokens"] == 300
    # Input includes the cached tokens; the cached parts are reported beside it.
    assert attributes["gen_ai.usage.input_tokens"] == record.input_tokens
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 20
    assert attributes["gen_ai.usage.cache_write.input_tokens"] == 10
    assert attributes["gen_ai.usage.output_tokens"] == record.output_tokens == 8
    assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("end_turn",)
    assert attributes["gen_ai.conversation.id"] == "conv-1"
    metrics = reader.get_metrics_data()
    found = {m.name: m for rm in metrics.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    usage_points = {
        p.attributes["gen_ai.token.type"]: p.sum for p in found["gen_ai.client.token.usage"].data.data_points
    }
    assert usage_points == {"input": record.input_tokens, "output": 8}
    assert "gen_ai.client.operation.duration" in found
