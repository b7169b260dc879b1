"""What the lifecycle, routing, care, webhook and audit handlers share, as one application key."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from services.alerts.care_store import CareStore
from services.alerts.lifecycle_settings import LifecycleSettings
from services.alerts.responders import Router
from services.alerts.webhooks import SecretBox


@dataclass(frozen=True, slots=True)
class AlertsContext:
    alerts_topic: str
    # CloudEvents source of what the outbox relay publishes.
    source: str
    settings: LifecycleSettings
    store: CareStore
    router: Router
    box: SecretBox


CONTEXT = web.AppKey("alerts_context", AlertsContext)
