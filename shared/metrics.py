"""Prometheus metrics every service exposes on ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

http_requests = Counter(
    "naervagt_http_requests_total", "HTTP requests answered", ["route", "method", "status"]
)
http_latency = Histogram(
    "naervagt_http_request_seconds", "HTTP request latency", ["route", "method"]
)
messages_consumed = Counter(
    "naervagt_messages_consumed_total", "Kafka messages consumed", ["topic", "outcome"]
)
messages_published = Counter(
    "naervagt_messages_published_total", "Kafka messages acknowledged by the broker", ["topic"]
)
