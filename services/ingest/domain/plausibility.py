"""Physiologically possible ranges per vital type, in canonical units.

These bounds reject values no living patient can have (sensor faults, unit mix-ups, typing
errors); they are deliberately wide and say nothing about whether a value is clinically alarming,
which is the scorer's job. Bounds are inclusive.
"""

from __future__ import annotations

from typing import Final

from shared.vitals import CANONICAL_UNIT, VitalType

__all__ = ["PLAUSIBLE", "is_plausible", "range_text"]

PLAUSIBLE: Final[dict[VitalType, tuple[float, float]]] = {
    # Below 20/min a pulse oximeter is more likely misreading than the heart beating; 300/min
    # covers infant and tachyarrhythmia extremes.
    VitalType.HEART_RATE: (20.0, 300.0),
    # Oximeters are not calibrated below ~70 %, but severe COPD exacerbations do read in the 50s.
    VitalType.SPO2: (50.0, 100.0),
    VitalType.RESPIRATORY_RATE: (2.0, 80.0),
    VitalType.SYSTOLIC_BP: (40.0, 300.0),
    VitalType.DIASTOLIC_BP: (20.0, 200.0),
    # Survived accidental hypothermia and extreme hyperpyrexia both lie inside 25-45 Cel.
    VitalType.TEMPERATURE: (25.0, 45.0),
    # Home monitoring includes neonates (from 1 kg) and bariatric patients.
    VitalType.WEIGHT: (1.0, 400.0),
    # Meters read down to ~0.6 mmol/L; hyperosmolar states have been recorded above 50 mmol/L.
    VitalType.GLUCOSE: (0.5, 60.0),
}


def is_plausible(vital: VitalType, value: float) -> bool:
    """Whether a canonical ``value`` of a numeric ``vital`` is physiologically possible."""
    low, high = PLAUSIBLE[vital]
    return low <= value <= high


def range_text(vital: VitalType) -> str:
    """The plausible range for messages, e.g. ``"20-300 /min"``."""
    low, high = PLAUSIBLE[vital]
    return f"{low:g}-{high:g} {CANONICAL_UNIT[vital]}"
