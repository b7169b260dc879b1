"""Prometheus metrics of the video service (served on ``/metrics`` with the shared ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

signaling_connections = Gauge(
    "naervagt_video_signaling_connections", "Open room WebSockets in this process"
)
active_rooms = Gauge("naervagt_video_active_rooms", "Rooms with anyone connected to this process")
joins_refused = Counter(
    "naervagt_video_joins_refused_total", "Room joins refused before admission", ["reason"]
)
consult_events = Counter(
    "naervagt_video_consult_events_total",
    "Consultation lifecycle events queued in the outbox by this process",
    ["change", "specialty"],
)
