"""Unit conversion to canonical UCUM units, and plausibility ranges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.domain.plausibility import PLAUSIBLE, is_plausible, range_text
from services.ingest.domain.units import (
    ACCEPTED_UNITS,
    UnknownUnit,
    from_canonical,
    to_canonical,
)
from shared.vitals import CANONICAL_UNIT, VitalType


def test_every_type_accepts_its_canonical_unit_first() -> None:
    assert set(ACCEPTED_UNITS) == set(VitalType)
    for vital in VitalType:
        assert ACCEPTED_UNITS[vital][0] == CANONICAL_UNIT[vital]


@pytest.mark.parametrize(
    ("vital", "value", "unit", "expected"),
    [
        (VitalType.TEMPERATURE, 98.6, "[degF]", 37.0),
        (VitalType.TEMPERATURE, 32.0, "degF", 0.0),
        (VitalType.TEMPERATURE, 212.0, "°F", 100.0),
        (VitalType.TEMPERATURE, 37.2, "°C", 37.2),
        (VitalType.TEMPERATURE, 37.2, "C", 37.2),
        (VitalType.WEIGHT, 185.0, "[lb_av]", 83.915),
        (VitalType.WEIGHT, 1.0, "lb", 0.454),
        (VitalType.WEIGHT, 3250.0, "g", 3.25),
        (VitalType.GLUCOSE, 90.0, "mg/dL", 5.0),
        (VitalType.GLUCOSE, 100.0, "mg/dL", 5.556),
        (VitalType.SYSTOLIC_BP, 16.0, "kPa", 120.01),
        (VitalType.DIASTOLIC_BP, 10.6658, "kPa", 80.0),
        (VitalType.DIASTOLIC_BP, 80.0, "mmHg", 80.0),
        (VitalType.HEART_RATE, 72.0, "bpm", 72.0),
        (VitalType.HEART_RATE, 72.0, "beats/min", 72.0),
        (VitalType.HEART_RATE, 72.0, "{beats}/min", 72.0),
        (VitalType.RESPIRATORY_RATE, 16.0, "breaths/min", 16.0),
        (VitalType.RESPIRATORY_RATE, 16.0, "{breaths}/min", 16.0),
        (VitalType.SPO2, 97.0, "%", 97.0),
    ],
)
def test_to_canonical(vital: VitalType, value: float, unit: str, expected: float) -> None:
    assert to_canonical(vital, value, unit) == pytest.approx(expected, abs=1e-9)


def test_canonical_values_are_not_rounded() -> None:
    assert to_canonical(VitalType.TEMPERATURE, 37.123456, "Cel") == 37.123456


@pytest.mark.parametrize(
    ("vital", "unit"),
    [
        (VitalType.SPO2, "1"),  # a fraction instead of a percentage
        (VitalType.HEART_RATE, "Hz"),
        (VitalType.GLUCOSE, "mg/dl"),  # UCUM is case-sensitive
        (VitalType.WEIGHT, "stone"),
        (VitalType.TEMPERATURE, "K"),
    ],
)
def test_unknown_unit_carries_the_accepted_units(vital: VitalType, unit: str) -> None:
    with pytest.raises(UnknownUnit) as caught:
        to_canonical(vital, 1.0, unit)
    assert caught.value.vital is vital
    assert caught.value.unit == unit
    assert caught.value.accepted == ACCEPTED_UNITS[vital]
    assert ", ".join(ACCEPTED_UNITS[vital]) in str(caught.value)


def test_glucose_mmol_to_mg_dl_uses_factor_18() -> None:
    assert from_canonical(VitalType.GLUCOSE, 7.0, "mg/dL") == 126.0


@settings(database=None)
@given(
    st.sampled_from(
        [(v, u) for v, units in ACCEPTED_UNITS.items() if v in PLAUSIBLE for u in units]
    ),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_conversions_round_trip_within_rounding(pair: tuple[VitalType, str], share: float) -> None:
    vital, unit = pair
    low, high = PLAUSIBLE[vital]
    canonical = low + (high - low) * share
    there = from_canonical(vital, canonical, unit)
    assert to_canonical(vital, there, unit) == pytest.approx(canonical, abs=0.01)


def test_plausible_ranges_cover_every_numeric_type() -> None:
    numeric = set(VitalType) - {VitalType.ON_OXYGEN, VitalType.CONSCIOUSNESS}
    assert set(PLAUSIBLE) == numeric
    for low, high in PLAUSIBLE.values():
        assert low < high


@pytest.mark.parametrize(
    ("vital", "value", "plausible"),
    [
        (VitalType.HEART_RATE, 20.0, True),
        (VitalType.HEART_RATE, 19.9, False),
        (VitalType.SPO2, 100.0, True),
        (VitalType.SPO2, 100.1, False),
        (VitalType.TEMPERATURE, 37.0, True),
        (VitalType.TEMPERATURE, 98.6, False),
        (VitalType.GLUCOSE, 0.4, False),
        (VitalType.WEIGHT, 401.0, False),
    ],
)
def test_is_plausible(vital: VitalType, value: float, plausible: bool) -> None:
    assert is_plausible(vital, value) is plausible


def test_range_text_names_the_canonical_unit() -> None:
    assert range_text(VitalType.HEART_RATE) == "20-300 /min"
    assert range_text(VitalType.GLUCOSE) == "0.5-60 mmol/L"
