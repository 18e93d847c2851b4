"""What ``serve`` does, for Prometheus: ``GET /metrics`` (prometheus-client, in the serve extra;
behind the API key when keys are set).

- ``qwen_gradio_requests_total{route,status}``: requests by route (unknown ones: "other");
- ``qwen_gradio_replies_in_flight``: replies being answered now;
- ``qwen_gradio_first_token_seconds``, ``qwen_gradio_reply_seconds``: histograms of each
  reply's time to its first text and its whole time;
- ``qwen_gradio_tokens_total{kind}``: prompt and completion tokens of complete replies;
- ``qwen_gradio_replies_not_as_asked_total{reason}``: replies not the JSON asked for
  (``json``) or without the call ``tool_choice`` asked for (``tool_choice``), each try counted
  (a whole one is asked once more);
- per Space of the pool (``space``): ``qwen_gradio_space_retries_total`` (replies that failed
  there before their first token and were tried again), ``qwen_gradio_space_failovers_total``
  (of those, tried on another Space), ``qwen_gradio_space_up`` (0 while it cools down after a
  failure), ``qwen_gradio_space_in_flight``, ``qwen_gradio_space_queue_wait_seconds``;
- ``qwen_gradio_state_shared``: 1 while the shared state (``--state``) answers, else 0.

Each process counts its own (one process per registry); a fleet sums them in Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.responses import Response

from .._client.streams import AsyncStream
from ..client import QwenClient

__all__ = ["CountRequests", "Metrics"]

ROUTES = ("/v1/models", "/health", "/v1/chat/completions", "/v1/responses", "/metrics")
FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
REPLY_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class Metrics:
    """One server's metrics (the module's docstring), in a registry of their own."""

    def __init__(self, client: QwenClient, in_flight: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "qwen_gradio_requests", "HTTP requests", ["route", "status"], registry=registry
        )
        Gauge(
            "qwen_gradio_replies_in_flight", "Replies being answered", registry=registry
        ).set_function(in_flight)
        self.first_token = Histogram(
            "qwen_gradio_first_token_seconds",
            "Time from a reply's request to its first text",
            buckets=FIRST_TOKEN_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "qwen_gradio_reply_seconds",
            "A reply's whole time",
            buckets=REPLY_BUCKETS,
            registry=registry,
        )
        self.tokens = Counter(
            "qwen_gradio_tokens", "Tokens of complete replies", ["kind"], registry=registry
        )
        self.not_as_asked = Counter(
            "qwen_gradio_replies_not_as_asked",
            "Replies not the JSON or the call they were asked for",
            ["reason"],
            registry=registry,
        )
        registry.register(SpaceCollector(client))
        Gauge(
            "qwen_gradio_state_shared",
            "1 while the shared state answers (0: this process's own, or a store away)",
            registry=registry,
        ).set_function(lambda: float(client.state.shared))

    def observe(self, stream: AsyncStream) -> None:
        """A reply has ended: its times, and its tokens if it is complete."""
        job = stream._job
        if job.first_text is not None:
            self.first_token.observe(job.first_text - job.created)
        self.duration.observe(time.monotonic() - job.created)
        usage = stream.usage
        if stream.completed and usage is not None:
            self.tokens.labels("prompt").inc(usage.prompt_tokens)
            self.tokens.labels("completion").inc(usage.completion_tokens)
        if stream._failure is not None:
            self.not_as_asked.labels("json").inc()
        elif stream.missed_call is not None:
            self.not_as_asked.labels("tool_choice").inc()

    def response(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class SpaceCollector:
    """Each Space's health, read from the client when Prometheus scrapes."""

    def __init__(self, client: QwenClient) -> None:
        self.client = client

    def describe(self) -> list[Metric]:
        return []  # collected on each scrape: nothing to describe ahead

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        retries = CounterMetricFamily(
            "qwen_gradio_space_retries", "Replies tried again after failing here", labels=["space"]
        )
        failovers = CounterMetricFamily(
            "qwen_gradio_space_failovers", "Replies moved to another Space", labels=["space"]
        )
        up = GaugeMetricFamily("qwen_gradio_space_up", "Not cooling down", labels=["space"])
        in_flight = GaugeMetricFamily(
            "qwen_gradio_space_in_flight", "Replies on the Space now", labels=["space"]
        )
        queue_wait = GaugeMetricFamily(
            "qwen_gradio_space_queue_wait_seconds", "Its queue's last wait", labels=["space"]
        )
        for member in self.client.members:
            health, space = member.health, [member.name]
            retries.add_metric(space, health.retried)
            failovers.add_metric(space, health.failed_over)
            up.add_metric(space, 0.0 if health.cooling_until > now else 1.0)
            in_flight.add_metric(space, health.in_flight)
            queue_wait.add_metric(space, health.queue_wait or 0.0)
        yield from (retries, failovers, up, in_flight, queue_wait)


class CountRequests:
    """ASGI middleware: each response's status, counted by route."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        route = path if path in ROUTES else "other"
        if path.startswith("/v1/models/"):
            route = "/v1/models/{model}"
        status = 500  # unless a response starts

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
