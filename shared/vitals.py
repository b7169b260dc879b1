"""The vital-sign types the platform understands, with their canonical units and LOINC codes."""

from __future__ import annotations

from enum import StrEnum


class VitalType(StrEnum):
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    RESPIRATORY_RATE = "respiratory_rate"
    SYSTOLIC_BP = "systolic_bp"
    DIASTOLIC_BP = "diastolic_bp"
    TEMPERATURE = "temperature"
    WEIGHT = "weight"
    GLUCOSE = "glucose"
    ON_OXYGEN = "on_oxygen"
    CONSCIOUSNESS = "consciousness"


CANONICAL_UNIT: dict[VitalType, str] = {
    VitalType.HEART_RATE: "/min",
    VitalType.SPO2: "%",
    VitalType.RESPIRATORY_RATE: "/min",
    VitalType.SYSTOLIC_BP: "mm[Hg]",
    VitalType.DIASTOLIC_BP: "mm[Hg]",
    VitalType.TEMPERATURE: "Cel",
    VitalType.WEIGHT: "kg",
    VitalType.GLUCOSE: "mmol/L",
    VitalType.ON_OXYGEN: "1",
    VitalType.CONSCIOUSNESS: "1",
}

LOINC: dict[VitalType, str] = {
    VitalType.HEART_RATE: "8867-4",
    VitalType.SPO2: "59408-5",
    VitalType.RESPIRATORY_RATE: "9279-1",
    VitalType.SYSTOLIC_BP: "8480-6",
    VitalType.DIASTOLIC_BP: "8462-4",
    VitalType.TEMPERATURE: "8310-5",
    VitalType.WEIGHT: "29463-7",
    VitalType.GLUCOSE: "15074-8",
}

CONSCIOUSNESS_LEVELS = ("A", "C", "V", "P", "U")
"""ACVPU: alert, new confusion, responds to voice, to pain, unresponsive."""
