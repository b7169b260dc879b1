"""NEWS2 scores checked against the RCP 2017 chart, written out here band by band."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.alerts.domain.news2 import (
    CONSCIOUSNESS_CODES,
    PARAMETERS,
    InvalidNews2Input,
    News2Inputs,
    News2Score,
    band_for,
    score,
    score_batch,
)

# The chart as printed: (lowest printed value, highest printed value, score); None is open.
Band = tuple[float | None, float | None, int]
RESPIRATORY_RATE: list[Band] = [(None, 8, 3), (9, 11, 1), (12, 20, 0), (21, 24, 2), (25, None, 3)]
SPO2_SCALE_1: list[Band] = [(None, 91, 3), (92, 93, 2), (94, 95, 1), (96, None, 0)]
SPO2_SCALE_2_AIR: list[Band] = [(None, 83, 3), (84, 85, 2), (86, 87, 1), (88, None, 0)]
SPO2_SCALE_2_OXYGEN: list[Band] = [
    (None, 83, 3),
    (84, 85, 2),
    (86, 87, 1),
    (88, 92, 0),
    (93, 94, 1),
    (95, 96, 2),
    (97, None, 3),
]
SYSTOLIC_BP: list[Band] = [
    (None, 90, 3),
    (91, 100, 2),
    (101, 110, 1),
    (111, 219, 0),
    (220, None, 3),
]
HEART_RATE: list[Band] = [
    (None, 40, 3),
    (41, 50, 1),
    (51, 90, 0),
    (91, 110, 1),
    (111, 130, 2),
    (131, None, 3),
]
TEMPERATURE: list[Band] = [
    (None, 35.0, 3),
    (35.1, 36.0, 1),
    (36.1, 38.0, 0),
    (38.1, 39.0, 1),
    (39.1, None, 2),
]
ACVPU = {"A": 0, "C": 3, "V": 3, "P": 3, "U": 3}


def printed_values(chart: list[Band]) -> list[tuple[float, int]]:
    """Both printed ends of every band, i.e. both sides of every edge on the chart."""
    cases = []
    for low, high, points in chart:
        cases += [(value, points) for value in (low, high) if value is not None]
    return cases


def chart_score(chart: list[Band], value: float, *, resolution: str) -> int:
    """What a clinician charting `value` at the chart's resolution (half up) would score."""
    charted = Decimal(repr(value)).quantize(Decimal(resolution), rounding=ROUND_HALF_UP)
    for low, high, points in chart:
        if (low is None or charted >= Decimal(str(low))) and (
            high is None or charted <= Decimal(str(high))
        ):
            return points
    raise AssertionError(f"{value} falls outside the chart")


def nan_or(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def score_one_row(inputs: News2Inputs) -> tuple[News2Score, dict[str, int]]:
    """The scalar score and the same row scored by the batch form."""
    code = None if inputs.consciousness is None else CONSCIOUSNESS_CODES[inputs.consciousness]
    batch = score_batch(
        respiratory_rate=np.array([nan_or(inputs.respiratory_rate)]),
        spo2=np.array([nan_or(inputs.spo2)]),
        on_oxygen=np.array([nan_or(inputs.on_oxygen)]),
        systolic_bp=np.array([nan_or(inputs.systolic_bp)]),
        heart_rate=np.array([nan_or(inputs.heart_rate)]),
        consciousness=np.array([nan_or(code)]),
        temperature=np.array([nan_or(inputs.temperature)]),
        spo2_scale=np.array([inputs.spo2_scale]),
    )
    batch_components = {
        name: int(batch.components[name][0]) for name in PARAMETERS if batch.present[name][0]
    }
    return score(inputs), batch_components


def assert_component(inputs: News2Inputs, name: str, expected: int) -> None:
    scalar, batch = score_one_row(inputs)
    assert scalar.components[name] == expected
    assert batch[name] == expected


@pytest.mark.parametrize(("value", "expected"), printed_values(RESPIRATORY_RATE))
def test_respiratory_rate_edges(value: float, expected: int) -> None:
    assert_component(News2Inputs(respiratory_rate=value), "respiratory_rate", expected)


@pytest.mark.parametrize("on_oxygen", [False, True])
@pytest.mark.parametrize(("value", "expected"), printed_values(SPO2_SCALE_1))
def test_spo2_scale_1_edges_ignore_oxygen(value: float, expected: int, on_oxygen: bool) -> None:
    assert_component(News2Inputs(spo2=value, on_oxygen=on_oxygen), "spo2", expected)


@pytest.mark.parametrize(
    ("value", "expected"), [*printed_values(SPO2_SCALE_2_AIR), (93, 0), (97, 0), (100, 0)]
)
def test_spo2_scale_2_edges_on_air(value: float, expected: int) -> None:
    inputs = News2Inputs(spo2=value, on_oxygen=False, spo2_scale=2)
    assert_component(inputs, "spo2", expected)


@pytest.mark.parametrize(("value", "expected"), [*printed_values(SPO2_SCALE_2_OXYGEN), (100, 3)])
def test_spo2_scale_2_edges_on_oxygen(value: float, expected: int) -> None:
    inputs = News2Inputs(spo2=value, on_oxygen=True, spo2_scale=2)
    assert_component(inputs, "spo2", expected)


@pytest.mark.parametrize(
    ("value", "expected"), [*printed_values(SPO2_SCALE_2_AIR), (93, 0), (97, 0)]
)
def test_spo2_scale_2_with_oxygen_unknown_uses_air_bands(value: float, expected: int) -> None:
    inputs = News2Inputs(spo2=value, on_oxygen=None, spo2_scale=2)
    assert_component(inputs, "spo2", expected)
    assert "air_or_oxygen" in score(inputs).missing


@pytest.mark.parametrize(("value", "expected"), printed_values(SYSTOLIC_BP))
def test_systolic_bp_edges(value: float, expected: int) -> None:
    assert_component(News2Inputs(systolic_bp=value), "systolic_bp", expected)


@pytest.mark.parametrize(("value", "expected"), printed_values(HEART_RATE))
def test_heart_rate_edges(value: float, expected: int) -> None:
    assert_component(News2Inputs(heart_rate=value), "heart_rate", expected)


@pytest.mark.parametrize(("value", "expected"), printed_values(TEMPERATURE))
def test_temperature_edges(value: float, expected: int) -> None:
    assert_component(News2Inputs(temperature=value), "temperature", expected)


@pytest.mark.parametrize(("on_oxygen", "expected"), [(False, 0), (True, 2)])
def test_air_or_oxygen(on_oxygen: bool, expected: int) -> None:
    assert_component(News2Inputs(on_oxygen=on_oxygen), "air_or_oxygen", expected)


@pytest.mark.parametrize(("level", "expected"), ACVPU.items())
def test_consciousness(level: str, expected: int) -> None:
    assert_component(News2Inputs(consciousness=level), "consciousness", expected)


# Values between printed bands are charted half up: worked out by hand from the chart.
FRACTIONAL = [
    (News2Inputs(respiratory_rate=8.49), "respiratory_rate", 3),
    (News2Inputs(respiratory_rate=8.5), "respiratory_rate", 1),
    (News2Inputs(respiratory_rate=20.49), "respiratory_rate", 0),
    (News2Inputs(respiratory_rate=20.5), "respiratory_rate", 2),
    (News2Inputs(respiratory_rate=24.5), "respiratory_rate", 3),
    (News2Inputs(spo2=91.5), "spo2", 2),
    (News2Inputs(spo2=95.49), "spo2", 1),
    (News2Inputs(spo2=95.5), "spo2", 0),
    (News2Inputs(spo2=87.5, spo2_scale=2, on_oxygen=True), "spo2", 0),
    (News2Inputs(spo2=92.49, spo2_scale=2, on_oxygen=True), "spo2", 0),
    (News2Inputs(spo2=92.5, spo2_scale=2, on_oxygen=True), "spo2", 1),
    (News2Inputs(spo2=96.5, spo2_scale=2, on_oxygen=True), "spo2", 3),
    (News2Inputs(spo2=96.5, spo2_scale=2, on_oxygen=False), "spo2", 0),
    (News2Inputs(spo2=83.5, spo2_scale=2, on_oxygen=False), "spo2", 2),
    (News2Inputs(systolic_bp=90.5), "systolic_bp", 2),
    (News2Inputs(systolic_bp=219.49), "systolic_bp", 0),
    (News2Inputs(systolic_bp=219.5), "systolic_bp", 3),
    (News2Inputs(heart_rate=40.5), "heart_rate", 1),
    (News2Inputs(heart_rate=90.49), "heart_rate", 0),
    (News2Inputs(heart_rate=130.5), "heart_rate", 3),
    (News2Inputs(temperature=35.04), "temperature", 3),
    (News2Inputs(temperature=35.05), "temperature", 1),
    (News2Inputs(temperature=36.04), "temperature", 1),
    (News2Inputs(temperature=36.05), "temperature", 0),
    (News2Inputs(temperature=38.049), "temperature", 0),
    (News2Inputs(temperature=38.05), "temperature", 1),
    (News2Inputs(temperature=39.05), "temperature", 2),
]


@pytest.mark.parametrize(("inputs", "name", "expected"), FRACTIONAL)
def test_values_between_printed_bands_are_charted_half_up(
    inputs: News2Inputs, name: str, expected: int
) -> None:
    assert_component(inputs, name, expected)


def two_decimals(low: int, high: int) -> st.SearchStrategy[float]:
    return st.integers(low * 100, high * 100).map(lambda hundredths: hundredths / 100)


@given(
    rr=two_decimals(0, 60),
    spo2=two_decimals(60, 100),
    sbp=two_decimals(50, 260),
    hr=two_decimals(20, 200),
    temp=two_decimals(30, 43),
    on_oxygen=st.booleans(),
    scale=st.sampled_from([1, 2]),
)
def test_any_measured_value_scores_as_charted(
    rr: float, spo2: float, sbp: float, hr: float, temp: float, on_oxygen: bool, scale: int
) -> None:
    result = score(
        News2Inputs(
            respiratory_rate=rr,
            spo2=spo2,
            on_oxygen=on_oxygen,
            systolic_bp=sbp,
            heart_rate=hr,
            temperature=temp,
            spo2_scale=scale,
        )
    )
    if scale == 1:
        spo2_chart = SPO2_SCALE_1
    else:
        spo2_chart = SPO2_SCALE_2_OXYGEN if on_oxygen else SPO2_SCALE_2_AIR
    assert result.components == {
        "respiratory_rate": chart_score(RESPIRATORY_RATE, rr, resolution="1"),
        "spo2": chart_score(spo2_chart, spo2, resolution="1"),
        "air_or_oxygen": 2 if on_oxygen else 0,
        "systolic_bp": chart_score(SYSTOLIC_BP, sbp, resolution="1"),
        "heart_rate": chart_score(HEART_RATE, hr, resolution="1"),
        "temperature": chart_score(TEMPERATURE, temp, resolution="0.1"),
    }
    assert result.missing == ("consciousness",)


def normal(**changes: object) -> News2Inputs:
    """A complete set of readings that scores 0, with `changes` applied."""
    values: dict[str, object] = {
        "respiratory_rate": 16,
        "spo2": 97,
        "on_oxygen": False,
        "systolic_bp": 120,
        "heart_rate": 70,
        "consciousness": "A",
        "temperature": 37.0,
    }
    return News2Inputs(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("inputs", "total", "single_3", "band"),
    [
        (normal(), 0, False, "low"),
        # RR 22 (2) + HR 95 (1) + temperature 38.5 (1) = 4, no single 3
        (normal(respiratory_rate=22, heart_rate=95, temperature=38.5), 4, False, "low"),
        # new confusion alone
        (normal(consciousness="C"), 3, True, "low-medium"),
        # SpO2 91 (3) + HR 95 (1) = 4 with a single 3
        (normal(spo2=91, heart_rate=95), 4, True, "low-medium"),
        # RR 22 (2) + SBP 95 (2) + HR 95 (1) = 5
        (normal(respiratory_rate=22, systolic_bp=95, heart_rate=95), 5, False, "medium"),
        # SBP 90 (3) + oxygen (2) = 5 with a single 3: medium outranks low-medium
        (normal(systolic_bp=90, on_oxygen=True), 5, True, "medium"),
        # RR 22 (2) + SBP 95 (2) + HR 115 (2) = 6
        (normal(respiratory_rate=22, systolic_bp=95, heart_rate=115), 6, False, "medium"),
        # RR 25 (3) + oxygen (2) + temperature 39.1 (2) = 7
        (normal(respiratory_rate=25, on_oxygen=True, temperature=39.1), 7, True, "high"),
        # every parameter at its worst: 3+3+2+3+3+3+2
        (
            News2Inputs(
                respiratory_rate=30,
                spo2=85,
                on_oxygen=True,
                systolic_bp=80,
                heart_rate=140,
                consciousness="U",
                temperature=40.0,
            ),
            19,
            True,
            "high",
        ),
    ],
)
def test_total_and_risk_band(inputs: News2Inputs, total: int, single_3: bool, band: str) -> None:
    result = score(inputs)
    assert (result.total, result.single_parameter_3, result.band) == (total, single_3, band)
    assert result.missing == ()
    assert result.complete


@pytest.mark.parametrize(
    ("total", "single_3", "band"),
    [
        (0, False, "low"),
        (4, False, "low"),
        (3, True, "low-medium"),
        (4, True, "low-medium"),
        (5, False, "medium"),
        (6, True, "medium"),
        (7, False, "high"),
        (7, True, "high"),
        (20, True, "high"),
    ],
)
def test_band_rules(total: int, single_3: bool, band: str) -> None:
    assert band_for(total, single_parameter_3=single_3) == band


def test_nothing_measured_scores_nothing_and_says_so() -> None:
    result = score(News2Inputs())
    assert result.total == 0
    assert result.components == {}
    assert result.missing == PARAMETERS
    assert not result.complete


def test_missing_parameters_are_listed_not_assumed_normal() -> None:
    result = score(News2Inputs(respiratory_rate=26, heart_rate=135))
    assert result.components == {"respiratory_rate": 3, "heart_rate": 3}
    assert result.total == 6
    assert result.missing == (
        "spo2",
        "air_or_oxygen",
        "systolic_bp",
        "consciousness",
        "temperature",
    )


def test_nan_counts_as_missing() -> None:
    result = score(normal(temperature=float("nan"), spo2=float("nan")))
    assert result.missing == ("spo2", "temperature")
    assert "temperature" not in result.components


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"spo2_scale": 3}, "spo2_scale"), ({"consciousness": "confused"}, "consciousness")],
)
def test_unscorable_inputs_are_refused_with_the_field(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidNews2Input) as refused:
        normal(**changes)
    assert refused.value.field == field
