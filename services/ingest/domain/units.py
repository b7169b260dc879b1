"""Units devices may send for each vital type, and conversion to the canonical (UCUM) unit.

Every accepted unit is a linear map to the canonical unit: ``canonical = value * scale + offset``.

>>> to_canonical(VitalType.TEMPERATURE, 98.6, "[degF]")
37.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.vitals import VitalType

__all__ = [
    "ACCEPTED_UNITS",
    "GLUCOSE_MG_DL_PER_MMOL_L",
    "UnknownUnit",
    "from_canonical",
    "to_canonical",
]

GLUCOSE_MG_DL_PER_MMOL_L: Final = 18.0
"""mg/dL per mmol/L for glucose. The molar mass of glucose is 180.16 g/mol, which gives 18.016;
18.0 is the factor used clinically and printed on glucometers, so readings round-trip to the
figure the patient sees on the device."""

_MMHG_PER_KPA: Final = 760.0 / 101.325  # 1 atm = 760 mmHg = 101.325 kPa
_KG_PER_LB: Final = 0.45359237  # international avoirdupois pound, exact by definition

_DECIMALS: Final = 3
"""Converted values are rounded to 3 decimals (a gram, a thousandth of a degree) so that float
noise such as 36.99999999 does not reach clinicians; the device's own figure is kept beside it."""


@dataclass(frozen=True, slots=True)
class _Linear:
    scale: float
    offset: float = 0.0


_IDENTITY: Final = _Linear(1.0)

_CONVERSIONS: Final[dict[VitalType, dict[str, _Linear]]] = {
    VitalType.HEART_RATE: {
        "/min": _IDENTITY,
        "bpm": _IDENTITY,
        "beats/min": _IDENTITY,
        "{beats}/min": _IDENTITY,
    },
    VitalType.SPO2: {"%": _IDENTITY},
    VitalType.RESPIRATORY_RATE: {
        "/min": _IDENTITY,
        "breaths/min": _IDENTITY,
        "{breaths}/min": _IDENTITY,
    },
    VitalType.SYSTOLIC_BP: {
        "mm[Hg]": _IDENTITY,
        "mmHg": _IDENTITY,
        "kPa": _Linear(_MMHG_PER_KPA),
    },
    VitalType.DIASTOLIC_BP: {
        "mm[Hg]": _IDENTITY,
        "mmHg": _IDENTITY,
        "kPa": _Linear(_MMHG_PER_KPA),
    },
    VitalType.TEMPERATURE: {
        "Cel": _IDENTITY,
        "°C": _IDENTITY,
        "C": _IDENTITY,
        "[degF]": _Linear(5.0 / 9.0, -32.0 * 5.0 / 9.0),
        "degF": _Linear(5.0 / 9.0, -32.0 * 5.0 / 9.0),
        "°F": _Linear(5.0 / 9.0, -32.0 * 5.0 / 9.0),
    },
    VitalType.WEIGHT: {
        "kg": _IDENTITY,
        "[lb_av]": _Linear(_KG_PER_LB),
        "lb": _Linear(_KG_PER_LB),
        "g": _Linear(0.001),
    },
    VitalType.GLUCOSE: {
        "mmol/L": _IDENTITY,
        "mg/dL": _Linear(1.0 / GLUCOSE_MG_DL_PER_MMOL_L),
    },
    VitalType.ON_OXYGEN: {"1": _IDENTITY},
    VitalType.CONSCIOUSNESS: {"1": _IDENTITY},
}

ACCEPTED_UNITS: Final[dict[VitalType, tuple[str, ...]]] = {
    vital: tuple(units) for vital, units in _CONVERSIONS.items()
}
"""Units accepted per type, the canonical unit first."""


class UnknownUnit(ValueError):
    """A unit that is not accepted for a vital type; carries the units that are."""

    def __init__(self, vital: VitalType, unit: str) -> None:
        self.vital = vital
        self.unit = unit
        self.accepted = ACCEPTED_UNITS[vital]
        super().__init__(
            f"unit {unit!r} is not accepted for {vital.value}; "
            f"accepted units: {', '.join(self.accepted)}"
        )


def _conversion(vital: VitalType, unit: str) -> _Linear:
    try:
        return _CONVERSIONS[vital][unit]
    except KeyError:
        raise UnknownUnit(vital, unit) from None


def to_canonical(vital: VitalType, value: float, unit: str) -> float:
    """Convert ``value`` measured in ``unit`` to the canonical unit of ``vital``."""
    conversion = _conversion(vital, unit)
    if conversion is _IDENTITY:
        return float(value)
    return round(value * conversion.scale + conversion.offset, _DECIMALS)


def from_canonical(vital: VitalType, value: float, unit: str) -> float:
    """Convert a canonical ``value`` of ``vital`` into ``unit`` (e.g. mmol/L back to mg/dL)."""
    conversion = _conversion(vital, unit)
    if conversion is _IDENTITY:
        return float(value)
    return round((value - conversion.offset) / conversion.scale, _DECIMALS)
