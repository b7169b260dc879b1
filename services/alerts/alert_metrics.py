"""Prometheus metrics of the alert lifecycle, routing, escalation and webhooks."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

alert_transitions = Counter(
    "naervagt_alert_transitions_total", "Alert transitions recorded", ["change"]
)
routing_fallbacks = Counter(
    "naervagt_routing_fallbacks_total",
    "Alerts routed with a warning (a responder missing from the care structure)",
    ["severity"],
)
escalations_fired = Counter("naervagt_escalations_fired_total", "Escalation timers fired", ["kind"])
escalation_lateness = Histogram(
    "naervagt_escalation_lateness_seconds",
    "How long after its deadline an escalation timer fired",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
webhook_deliveries = Counter(
    "naervagt_webhook_deliveries_total", "Webhook delivery attempts", ["outcome"]
)
