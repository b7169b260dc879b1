"""Finding an alert's responders: the routing policy applied to the care structure in
PostgreSQL. A missing mapping never drops an alert: it gets the policy's fallback route, and the
operator is told by the route's warnings, a log line and a metric."""

from __future__ import annotations

import logging
from datetime import datetime

import asyncpg

from services.alerts import alert_metrics
from services.alerts.care_store import CareStore
from services.alerts.domain.routing import Route, RoutingPolicy, route

log = logging.getLogger(__name__)


class Router:
    def __init__(self, store: CareStore, policy: RoutingPolicy) -> None:
        self.store = store
        self.policy = policy

    async def route(
        self,
        conn: asyncpg.Connection | asyncpg.Pool,
        patient_id: str,
        *,
        severity_or_kind: str,
        at: datetime,
        report: bool = True,
    ) -> Route:
        """The patient's responder chain; with ``report``, a route with warnings is logged
        and counted (a preview asked for by an operator is not)."""
        care = await self.store.structure(conn, [patient_id])
        result = route(
            care.patient(patient_id),
            severity_or_kind=severity_or_kind,
            at=at,
            care=care,
            policy=self.policy,
        )
        if report and result.warnings:
            alert_metrics.routing_fallbacks.labels(severity_or_kind).inc()
            log.warning(
                "alert routed with missing responders",
                extra={
                    "patient_id": patient_id,
                    "severity": severity_or_kind,
                    "warnings": result.warnings,
                    "chain": [step.kind for step in result.chain],
                },
            )
        return result


def route_key(kind: str, severity: str) -> str:
    """What an alert is routed by: the kind for missing measurements and trends, else the
    severity."""
    return kind if kind in ("missing_measurement", "trend") else severity
