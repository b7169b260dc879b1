"""A patient's own normal for one parameter, learned robustly from their recent readings.

The baseline is the median of the readings in a trailing period, and its spread the median
absolute deviation (MAD), so a handful of bad readings (a cold finger, a misplaced cuff) barely
move it. A deviation is a robust z-score, `(value - median) / (1.4826 * MAD)`: about the same as
an ordinary z-score when readings are normal, but not inflated by the outliers themselves. Until
enough readings have been seen the baseline is reported but not trusted, and gives no deviation.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.alerts.domain.window import InvalidObservation, Observation, numeric
from shared.vitals import VitalType

MAD_TO_SD = 1.4826
"""Scales the MAD of normally distributed data to its standard deviation."""

MIN_SPREAD: dict[str, float] = {
    VitalType.SPO2: 1.0,
    VitalType.HEART_RATE: 2.0,
    VitalType.RESPIRATORY_RATE: 1.0,
    VitalType.SYSTOLIC_BP: 3.0,
    VitalType.DIASTOLIC_BP: 3.0,
    VitalType.TEMPERATURE: 0.1,
    VitalType.WEIGHT: 0.2,
    VitalType.GLUCOSE: 0.2,
}
"""Smallest spread a baseline uses, about one device resolution step: a patient whose SpO2 has
read 97 every time would otherwise make 96 an infinite deviation."""


@dataclass(frozen=True, slots=True)
class Baseline:
    """Median and spread of one parameter over `(end - period, end]`."""

    type: str
    median: float
    mad: float
    count: int
    trusted: bool
    end: datetime
    period: timedelta

    @property
    def spread(self) -> float:
        """The standard-deviation-like spread used for deviations, never below `MIN_SPREAD`."""
        return max(MAD_TO_SD * self.mad, MIN_SPREAD.get(self.type, 0.0))

    def deviation(self, value: float) -> float | None:
        """Robust z-score of `value`; None while the baseline is not yet trusted."""
        if not self.trusted:
            return None
        difference = value - self.median
        if self.spread == 0.0:
            # Only for types without a minimum spread whose readings never varied.
            return 0.0 if difference == 0.0 else float("inf") if difference > 0 else float("-inf")
        return difference / self.spread


def learn_baseline(
    observations: Iterable[Observation],
    *,
    end: datetime,
    period: timedelta = timedelta(days=14),
    min_readings: int = 7,
) -> Baseline | None:
    """The baseline of readings measured within `(end - period, end]`; None if there are none.

    To judge a new reading against the patient's normal, learn the baseline up to just before
    it, so the reading does not vouch for itself.
    """
    if period <= timedelta(0) or min_readings < 1:
        raise ValueError(f"period {period} and min_readings {min_readings} must be positive")
    start = end - period
    kind: str | None = None
    values: list[float] = []
    for observation in observations:
        if kind is None:
            kind = observation.type
        if observation.type != kind:
            raise InvalidObservation(observation.type, observation.value, f"expected {kind}")
        if start < observation.measured_at <= end:
            values.append(numeric(observation))
    if kind is None or not values:
        return None
    median = statistics.median(values)
    mad = statistics.median(abs(value - median) for value in values)
    return Baseline(
        type=kind,
        median=median,
        mad=mad,
        count=len(values),
        trusted=len(values) >= min_readings,
        end=end,
        period=period,
    )
