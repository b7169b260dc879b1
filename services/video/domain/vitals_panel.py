"""The patient's latest vital signs as shown beside the video, in the order clinicians read them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.vitals import LOINC, VitalType

# NEWS2 order (respiration, oxygen, blood pressure, pulse, consciousness, temperature), then
# the other home measurements.
PANEL_ORDER = (
    VitalType.RESPIRATORY_RATE,
    VitalType.SPO2,
    VitalType.ON_OXYGEN,
    VitalType.SYSTOLIC_BP,
    VitalType.DIASTOLIC_BP,
    VitalType.HEART_RATE,
    VitalType.CONSCIOUSNESS,
    VitalType.TEMPERATURE,
    VitalType.WEIGHT,
    VitalType.GLUCOSE,
)


@dataclass(frozen=True)
class StoredReading:
    type: str
    value_num: float | None
    value_text: str | None
    unit: str
    measured_at: datetime


def panel(latest: Iterable[StoredReading]) -> list[dict[str, Any]]:
    """One entry per known vital type, in panel order; unknown types are left out."""
    by_type = {r.type: r for r in latest}
    entries = []
    for vital in PANEL_ORDER:
        reading = by_type.get(vital.value)
        if reading is None:
            continue
        value: float | bool | str | None
        if vital is VitalType.ON_OXYGEN:
            value = bool(reading.value_num)
        elif reading.value_num is not None:
            value = reading.value_num
        else:
            value = reading.value_text
        entries.append(
            {
                "type": vital.value,
                "value": value,
                "unit": reading.unit,
                "loinc": LOINC.get(vital),
                "measured_at": reading.measured_at.isoformat(),
            }
        )
    return entries
