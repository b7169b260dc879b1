"""The demo's simulated patients: stable ones stay quiet, deteriorating ones alert in a minute."""

from __future__ import annotations

import dataclasses
import random

from services.alerts.domain.news2 import News2Inputs, score
from shared.demo.simulator import Profile, vitals_at


def news2(vitals: dict[str, float]) -> int:
    return score(
        News2Inputs(
            respiratory_rate=vitals["respiratory_rate"],
            spo2=vitals["spo2"],
            on_oxygen=False,
            systolic_bp=vitals["systolic_bp"],
            heart_rate=vitals["heart_rate"],
            consciousness="A",
            temperature=vitals["temperature"],
        )
    ).total


STABLE = Profile(heart_rate=72, spo2=97, respiratory_rate=15, systolic_bp=130, temperature=36.8)


def test_a_stable_patient_scores_low_throughout() -> None:
    rng = random.Random(1)
    assert max(news2(vitals_at(STABLE, t, rng)) for t in range(0, 600, 5)) <= 2


def test_a_deteriorating_patient_reaches_high_risk_within_a_minute() -> None:
    rng = random.Random(2)
    worsening = dataclasses.replace(STABLE, onset_s=5.0, ramp_s=40.0, severity=1.0)
    assert news2(vitals_at(worsening, 0, rng)) <= 2
    assert news2(vitals_at(worsening, 60, rng)) >= 7
