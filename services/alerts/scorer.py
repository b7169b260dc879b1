"""The scorer: keeps each patient's recent vitals and turns new readings into assessments.

State is rebuilt from PostgreSQL the first time a patient is seen, so a restarted scorer (or
one that takes over a partition) scores against the same history.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from services.alerts.domain.assessment import explain
from services.alerts.domain.window import Observation, PatientVitals
from shared.db import database_errors
from shared.events import News2Part, ObservedValue, ReadingAccepted, RiskAssessed
from shared.kafka import Delivery
from shared.vitals import VitalType

_HISTORY = timedelta(days=14)


def _value(type_: str, number: float | None, text: str | None) -> float | bool | str:
    if type_ == VitalType.ON_OXYGEN:
        return bool(number)
    if text is not None:
        return text
    assert number is not None
    return number


class Scorer:
    def __init__(self, pool: asyncpg.Pool, *, window: timedelta) -> None:
        self._pool = pool
        self._window = window
        self._vitals: dict[str, PatientVitals] = {}
        self._scales: dict[str, int] = {}

    async def _load(self, patient_ids: Sequence[str]) -> None:
        missing = [p for p in patient_ids if p not in self._vitals]
        if not missing:
            return
        async with database_errors("loading patient history"):
            rows = await self._pool.fetch(
                """SELECT patient_id, type, value_num, value_text, measured_at FROM readings
                   WHERE patient_id = ANY($1::text[]) AND measured_at > now() - $2::interval
                   ORDER BY measured_at""",
                missing,
                _HISTORY,
            )
            scales = await self._pool.fetch(
                "SELECT patient_id, spo2_scale FROM patients WHERE patient_id = ANY($1::text[])",
                missing,
            )
        for patient_id in missing:
            self._vitals[patient_id] = PatientVitals(retention=_HISTORY)
        for row in rows:
            self._vitals[row["patient_id"]].add(
                Observation(
                    row["type"],
                    _value(row["type"], row["value_num"], row["value_text"]),
                    row["measured_at"],
                )
            )
        self._scales.update({r["patient_id"]: r["spo2_scale"] for r in scales})

    async def assess(self, deliveries: Sequence[Delivery[ReadingAccepted]]) -> list[RiskAssessed]:
        """Add the readings and score each patient they touched once, at their newest reading."""
        touched = list(dict.fromkeys(d.event.patient_id for d in deliveries))
        await self._load(touched)
        for d in deliveries:
            e = d.event
            self._vitals[e.patient_id].add(Observation(e.type.value, e.value, e.measured_at))
        assessments = []
        for patient_id in touched:
            vitals = self._vitals[patient_id]
            newest = max(
                (o.measured_at for t in vitals.types() if (o := vitals.latest(t)) is not None),
                default=None,
            )
            if newest is None:
                continue
            window = vitals.window(newest, self._window, spo2_scale=self._scales.get(patient_id, 1))
            explained = explain(window)
            result = explained.score
            assessments.append(
                RiskAssessed(
                    assessment_id=str(uuid.uuid4()),
                    patient_id=patient_id,
                    kind="news2",
                    window_end=newest,
                    severity=result.band,
                    news2=News2Part(
                        total=result.total,
                        components=result.components,
                        single_parameter_3=result.single_parameter_3,
                    ),
                    values={
                        t: ObservedValue(value=v, measured_at=at)
                        for t, (v, at) in explained.values.items()
                    },
                    missing=list(result.missing),
                    reasons=explained.reasons,
                )
            )
        return assessments
