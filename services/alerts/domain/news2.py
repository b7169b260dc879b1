"""NEWS2 (Royal College of Physicians, 2017): score one set of vital signs or many at once.

The chart prints its bands at the resolution a clinician charts at: whole numbers for
respiratory rate, SpO2, systolic pressure and pulse, one decimal for temperature. Home devices
and unit conversions give values between those printed bands (SpO2 95.5, RR 20.5, 36.05 °C).
Every such value is first rounded half up to the chart's resolution and then looked up, so it
scores exactly what it would score once written on the paper chart, and the rule leans towards
neither the alarming nor the reassuring side (RR 20.5 scores as 21, SpO2 95.5 as 96). The rule is
implemented once, as the midpoints between printed bands (RR 20.5, temperature 36.05, ...): a
value at or above a midpoint belongs to the upper band. `score` and `score_batch` use the same
midpoint tables and the same comparison, so they always agree.

Missing values are never invented. A parameter that is `None` (or NaN) contributes no
component, is named in `missing`, and the total covers only the parameters present. If
`on_oxygen` is unknown, "air or oxygen" is missing; for a Scale 2 patient the SpO2 component then
uses the on-air bands (93 % and above scores 0), because the on-oxygen bands cannot be applied
without knowing that oxygen is given.

SpO2 Scale 2 is only for patients with a clinician-prescribed target of 88-92 %; the caller says
so with `spo2_scale=2`.

>>> s = score(News2Inputs(respiratory_rate=22, spo2=95, on_oxygen=False, systolic_bp=105,
...                       heart_rate=95, consciousness="A", temperature=37.1))
>>> s.total, s.band, s.missing
(5, 'medium', ())
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

PARAMETERS: tuple[str, ...] = (
    "respiratory_rate",
    "spo2",
    "air_or_oxygen",
    "systolic_bp",
    "heart_rate",
    "consciousness",
    "temperature",
)

BANDS: tuple[str, ...] = ("low", "low-medium", "medium", "high")
"""Clinical risk bands, lowest first; `News2Batch.band` holds indices into this tuple."""

CONSCIOUSNESS_CODES: dict[str, int] = {"A": 0, "C": 1, "V": 2, "P": 3, "U": 4}
"""ACVPU level → the float code used by `score_batch`."""

MISSING_COMPONENT: Final = -1
"""The value `News2Batch.components` holds where the parameter was missing."""

OXYGEN_SCORE: Final = 2
CONSCIOUSNESS_SCORES: dict[str, int] = {"A": 0, "C": 3, "V": 3, "P": 3, "U": 3}


@dataclass(frozen=True, slots=True)
class _Bands:
    """Midpoints between the chart's printed bands, and the score of each interval."""

    edges: tuple[float, ...]
    scores: tuple[int, ...]

    def score(self, value: float) -> int:
        return self.scores[bisect_right(self.edges, value)]


# Printed bands, e.g. RR ≤8 | 9-11 | 12-20 | 21-24 | ≥25; an edge of 8.5 means 8.5 is charted as 9.
RESPIRATORY_RATE = _Bands((8.5, 11.5, 20.5, 24.5), (3, 1, 0, 2, 3))
SPO2_SCALE_1 = _Bands((91.5, 93.5, 95.5), (3, 2, 1, 0))
# Scale 2 on air and on oxygen share edges; on air everything from 88 % up scores 0.
SPO2_SCALE_2_AIR = _Bands((83.5, 85.5, 87.5, 92.5, 94.5, 96.5), (3, 2, 1, 0, 0, 0, 0))
SPO2_SCALE_2_OXYGEN = _Bands((83.5, 85.5, 87.5, 92.5, 94.5, 96.5), (3, 2, 1, 0, 1, 2, 3))
SYSTOLIC_BP = _Bands((90.5, 100.5, 110.5, 219.5), (3, 2, 1, 0, 3))
HEART_RATE = _Bands((40.5, 50.5, 90.5, 110.5, 130.5), (3, 1, 0, 1, 2, 3))
TEMPERATURE = _Bands((35.05, 36.05, 38.05, 39.05), (3, 1, 0, 1, 2))


class InvalidNews2Input(ValueError):
    """A value NEWS2 cannot score (an unknown ACVPU level, a scale other than 1 or 2, ...)."""

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"{field}: cannot score {value!r}")
        self.field = field
        self.value = value


@dataclass(frozen=True, slots=True)
class News2Inputs:
    """One set of vital signs; `None` means not measured."""

    respiratory_rate: float | None = None
    spo2: float | None = None
    on_oxygen: bool | None = None
    systolic_bp: float | None = None
    heart_rate: float | None = None
    consciousness: str | None = None  # one of "A","C","V","P","U"
    temperature: float | None = None
    spo2_scale: int = 1  # 2 only for a clinician-prescribed 88-92 % target

    def __post_init__(self) -> None:
        if self.spo2_scale not in (1, 2):
            raise InvalidNews2Input("spo2_scale", self.spo2_scale)
        if self.consciousness is not None and self.consciousness not in CONSCIOUSNESS_SCORES:
            raise InvalidNews2Input("consciousness", self.consciousness)


@dataclass(frozen=True, slots=True)
class News2Score:
    total: int
    components: dict[str, int]  # keys from PARAMETERS, present parameters only
    single_parameter_3: bool
    band: str  # "low" | "low-medium" | "medium" | "high"
    missing: tuple[str, ...]  # parameter names from PARAMETERS that were missing

    @property
    def complete(self) -> bool:
        """True when all seven parameters were present, so the total is a full NEWS2."""
        return not self.missing


def band_for(total: int, *, single_parameter_3: bool) -> str:
    """The RCP clinical risk band of an aggregate score."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    if single_parameter_3:
        return "low-medium"
    return "low"


def _measured(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _spo2_bands(spo2_scale: int, on_oxygen: bool | None) -> _Bands:
    if spo2_scale == 1:
        return SPO2_SCALE_1
    return SPO2_SCALE_2_OXYGEN if on_oxygen else SPO2_SCALE_2_AIR


def score(inputs: News2Inputs) -> News2Score:
    """Score one set of vital signs; missing parameters are listed, never assumed normal."""
    components: dict[str, int] = {}
    measured = {
        "respiratory_rate": (_measured(inputs.respiratory_rate), RESPIRATORY_RATE),
        "spo2": (_measured(inputs.spo2), _spo2_bands(inputs.spo2_scale, inputs.on_oxygen)),
        "systolic_bp": (_measured(inputs.systolic_bp), SYSTOLIC_BP),
        "heart_rate": (_measured(inputs.heart_rate), HEART_RATE),
        "temperature": (_measured(inputs.temperature), TEMPERATURE),
    }
    for name, (value, bands) in measured.items():
        if value is not None:
            components[name] = bands.score(value)
    if inputs.on_oxygen is not None:
        components["air_or_oxygen"] = OXYGEN_SCORE if inputs.on_oxygen else 0
    if inputs.consciousness is not None:
        components["consciousness"] = CONSCIOUSNESS_SCORES[inputs.consciousness]

    total = sum(components.values())
    single_3 = any(value == 3 for value in components.values())
    return News2Score(
        total=total,
        components={name: components[name] for name in PARAMETERS if name in components},
        single_parameter_3=single_3,
        band=band_for(total, single_parameter_3=single_3),
        missing=tuple(name for name in PARAMETERS if name not in components),
    )


FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class News2Batch:
    """Scores of many rows; row i of every array belongs to input row i.

    `components[name]` is -1 where that parameter was missing (see `present`); `band` holds
    indices into `BANDS` (0 low, 1 low-medium, 2 medium, 3 high); `band_names()` spells them.
    """

    total: IntArray
    components: dict[str, IntArray]
    single_parameter_3: BoolArray
    band: IntArray
    present: dict[str, BoolArray]

    def band_names(self) -> npt.NDArray[np.str_]:
        return np.asarray(BANDS)[self.band]

    def __len__(self) -> int:
        return int(self.total.shape[0])


def _lookup(bands: _Bands, values: FloatArray) -> IntArray:
    # NaN sorts past every edge; callers mask it out through `present`.
    index = np.searchsorted(np.asarray(bands.edges), values, side="right")
    return np.asarray(bands.scores, dtype=np.int64)[index]


def _as_float(name: str, values: npt.ArrayLike, rows: int | None) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise InvalidNews2Input(name, f"array of shape {array.shape}, expected one dimension")
    if rows is not None and array.shape[0] != rows:
        raise InvalidNews2Input(name, f"{array.shape[0]} rows, expected {rows}")
    return array


def _reject_codes(name: str, values: FloatArray, allowed: tuple[float, ...]) -> None:
    known = np.isnan(values) | np.isin(values, allowed)
    if not known.all():
        raise InvalidNews2Input(name, values[~known][0].item())


def score_batch(
    *,
    respiratory_rate: npt.ArrayLike,
    spo2: npt.ArrayLike,
    on_oxygen: npt.ArrayLike,
    systolic_bp: npt.ArrayLike,
    heart_rate: npt.ArrayLike,
    consciousness: npt.ArrayLike,
    temperature: npt.ArrayLike,
    spo2_scale: npt.ArrayLike,
) -> News2Batch:
    """Score many rows at once, row for row identical to `score`.

    Every argument is a one-dimensional array of the same length. Measurements are floats with
    NaN for missing; `on_oxygen` is 0 (air), 1 (oxygen) or NaN; `consciousness` is a code from
    `CONSCIOUSNESS_CODES` or NaN; `spo2_scale` is 1 or 2 per row.
    """
    rr = _as_float("respiratory_rate", respiratory_rate, None)
    rows = rr.shape[0]
    sat = _as_float("spo2", spo2, rows)
    oxygen = _as_float("on_oxygen", on_oxygen, rows)
    sbp = _as_float("systolic_bp", systolic_bp, rows)
    hr = _as_float("heart_rate", heart_rate, rows)
    acvpu = _as_float("consciousness", consciousness, rows)
    temp = _as_float("temperature", temperature, rows)
    scale = _as_float("spo2_scale", spo2_scale, rows)
    _reject_codes("on_oxygen", oxygen, (0.0, 1.0))
    _reject_codes("consciousness", acvpu, tuple(float(c) for c in CONSCIOUSNESS_CODES.values()))
    if not np.isin(scale, (1.0, 2.0)).all():
        raise InvalidNews2Input("spo2_scale", scale[~np.isin(scale, (1.0, 2.0))][0].item())

    given_oxygen = oxygen == 1.0
    scale_2 = scale == 2.0
    # Scale 2 uses its on-oxygen bands only where oxygen is known to be given.
    spo2_scale_2 = np.where(
        given_oxygen, _lookup(SPO2_SCALE_2_OXYGEN, sat), _lookup(SPO2_SCALE_2_AIR, sat)
    )
    consciousness_scores = np.asarray(
        [CONSCIOUSNESS_SCORES[level] for level in CONSCIOUSNESS_CODES], dtype=np.int64
    )
    raw: dict[str, IntArray] = {
        "respiratory_rate": _lookup(RESPIRATORY_RATE, rr),
        "spo2": np.where(scale_2, spo2_scale_2, _lookup(SPO2_SCALE_1, sat)),
        "air_or_oxygen": np.where(given_oxygen, OXYGEN_SCORE, 0).astype(np.int64),
        "systolic_bp": _lookup(SYSTOLIC_BP, sbp),
        "heart_rate": _lookup(HEART_RATE, hr),
        "consciousness": consciousness_scores[np.nan_to_num(acvpu, nan=0.0).astype(np.intp)],
        "temperature": _lookup(TEMPERATURE, temp),
    }
    inputs = {
        "respiratory_rate": rr,
        "spo2": sat,
        "air_or_oxygen": oxygen,
        "systolic_bp": sbp,
        "heart_rate": hr,
        "consciousness": acvpu,
        "temperature": temp,
    }

    total = np.zeros(rows, dtype=np.int64)
    single_3 = np.zeros(rows, dtype=np.bool_)
    components: dict[str, IntArray] = {}
    present: dict[str, BoolArray] = {}
    for name in PARAMETERS:
        here = ~np.isnan(inputs[name])
        component = np.where(here, raw[name], MISSING_COMPONENT)
        total += np.where(here, component, 0)
        single_3 |= component == 3
        components[name] = component
        present[name] = here

    band = np.select(
        [total >= 7, total >= 5, single_3],
        [3, 2, 1],
        default=0,
    ).astype(np.int64)
    return News2Batch(
        total=total,
        components=components,
        single_parameter_3=single_3,
        band=band,
        present=present,
    )
