"""The vectorised NEWS2 form agrees with the one-row form, row for row."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.alerts.domain.news2 import (
    BANDS,
    CONSCIOUSNESS_CODES,
    PARAMETERS,
    InvalidNews2Input,
    News2Batch,
    News2Inputs,
    score,
    score_batch,
)


def measurement(low: int, high: int, edges: list[float]) -> st.SearchStrategy[float | None]:
    """Missing, NaN, whole, fractional, or exactly on a midpoint between printed bands."""
    return st.one_of(
        st.none(),
        st.just(math.nan),
        st.integers(low, high).map(float),
        st.floats(low, high, allow_nan=False),
        st.sampled_from(edges),
        st.sampled_from(edges).map(lambda edge: math.nextafter(edge, -math.inf)),
    )


rows = st.builds(
    News2Inputs,
    respiratory_rate=measurement(0, 60, [8.5, 11.5, 20.5, 24.5]),
    spo2=measurement(50, 100, [83.5, 85.5, 87.5, 91.5, 92.5, 93.5, 94.5, 95.5, 96.5]),
    on_oxygen=st.sampled_from([None, False, True]),
    systolic_bp=measurement(40, 280, [90.5, 100.5, 110.5, 219.5]),
    heart_rate=measurement(20, 220, [40.5, 50.5, 90.5, 110.5, 130.5]),
    consciousness=st.sampled_from([None, "A", "C", "V", "P", "U"]),
    temperature=measurement(30, 44, [35.05, 36.05, 38.05, 39.05]),
    spo2_scale=st.sampled_from([1, 2]),
)


def column(inputs: list[News2Inputs], name: str) -> np.ndarray:
    values = [getattr(row, name) for row in inputs]
    return np.array([math.nan if value is None else float(value) for value in values])


def batch_of(inputs: list[News2Inputs]) -> News2Batch:
    codes = [
        math.nan if row.consciousness is None else CONSCIOUSNESS_CODES[row.consciousness]
        for row in inputs
    ]
    return score_batch(
        respiratory_rate=column(inputs, "respiratory_rate"),
        spo2=column(inputs, "spo2"),
        on_oxygen=column(inputs, "on_oxygen"),
        systolic_bp=column(inputs, "systolic_bp"),
        heart_rate=column(inputs, "heart_rate"),
        consciousness=np.array(codes, dtype=float),
        temperature=column(inputs, "temperature"),
        spo2_scale=np.array([row.spo2_scale for row in inputs]),
    )


@settings(max_examples=300)
@given(st.lists(rows, min_size=1, max_size=40))
def test_batch_and_scalar_agree_on_every_row(inputs: list[News2Inputs]) -> None:
    batch = batch_of(inputs)
    assert len(batch) == len(inputs)
    for i, row in enumerate(inputs):
        expected = score(row)
        assert batch.total[i] == expected.total
        assert BANDS[batch.band[i]] == expected.band
        assert batch.band_names()[i] == expected.band
        assert bool(batch.single_parameter_3[i]) == expected.single_parameter_3
        for name in PARAMETERS:
            assert bool(batch.present[name][i]) == (name not in expected.missing)
            assert batch.components[name][i] == expected.components.get(name, -1)


def test_missing_values_are_marked_not_scored() -> None:
    nan = math.nan
    batch = score_batch(
        respiratory_rate=np.array([26.0, nan]),
        spo2=np.array([nan, nan]),
        on_oxygen=np.array([nan, 1.0]),
        systolic_bp=np.array([nan, nan]),
        heart_rate=np.array([nan, nan]),
        consciousness=np.array([nan, nan]),
        temperature=np.array([nan, nan]),
        spo2_scale=np.array([1, 1]),
    )
    assert batch.total.tolist() == [3, 2]
    assert batch.components["respiratory_rate"].tolist() == [3, -1]
    assert batch.components["air_or_oxygen"].tolist() == [-1, 2]
    assert batch.present["spo2"].tolist() == [False, False]
    assert batch.band_names().tolist() == ["low-medium", "low"]


def test_an_empty_batch_scores_nothing() -> None:
    empty = np.array([], dtype=float)
    batch = score_batch(
        respiratory_rate=empty,
        spo2=empty,
        on_oxygen=empty,
        systolic_bp=empty,
        heart_rate=empty,
        consciousness=empty,
        temperature=empty,
        spo2_scale=np.array([], dtype=int),
    )
    assert len(batch) == 0


def one_row(**changes: object) -> dict[str, np.ndarray]:
    arguments = {name: np.array([math.nan]) for name in PARAMETERS if name != "air_or_oxygen"}
    arguments["on_oxygen"] = np.array([math.nan])
    arguments["spo2_scale"] = np.array([1])
    arguments.update({name: np.asarray(value) for name, value in changes.items()})
    return arguments


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"consciousness": [5.0]}, "consciousness"),
        ({"consciousness": [1.5]}, "consciousness"),
        ({"on_oxygen": [0.5]}, "on_oxygen"),
        ({"spo2_scale": [3]}, "spo2_scale"),
        ({"spo2_scale": [math.nan]}, "spo2_scale"),
        ({"heart_rate": [70.0, 80.0]}, "heart_rate"),
        ({"temperature": [[37.0]]}, "temperature"),
    ],
)
def test_unscorable_batches_are_refused_with_the_field(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidNews2Input) as refused:
        score_batch(**one_row(**changes))
    assert refused.value.field == field
