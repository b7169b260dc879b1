"""Held-out comparison with NEWS2: reproducible patient bootstrap, equal alert burden, verdict."""

from __future__ import annotations

import numpy as np
import pytest

from services.alerts.model.evaluate import (
    ScoredWindows,
    compare,
    decide,
    format_comparison,
    threshold_for_count,
)


def make_scored(
    *, patients: int = 40, seed: int = 0, model_is_oracle: bool = False
) -> ScoredWindows:
    """Ten windows a patient, a quarter of patients with a five-window episode at the end."""
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(patients), 10)
    target = np.zeros(patients * 10, dtype=np.int64)
    episode = np.full(patients * 10, -1, dtype=np.int64)
    for p in range(0, patients, 4):
        rows = slice(p * 10 + 5, p * 10 + 10)
        target[rows] = 1
        episode[rows] = p
    news2 = rng.integers(0, 9, target.size).astype(float) + 2.0 * target
    model = target + rng.normal(0, 0.01 if model_is_oracle else 2.0, target.size)
    return ScoredWindows(
        name="tiny",
        target=target,
        patient=patient.astype(np.int64),
        episode=episode,
        exposure_days=np.full(target.size, 0.25),
        model=model,
        news2=news2,
    )


def test_the_bootstrap_is_reproducible_with_a_seed() -> None:
    scored = make_scored()
    first = compare(scored, resamples=40, seed=7)
    again = compare(scored, resamples=40, seed=7)
    other = compare(scored, resamples=40, seed=8)
    assert first == again
    assert first.auroc_model.estimate == other.auroc_model.estimate
    assert (first.auroc_model.low, first.auroc_model.high) != (
        other.auroc_model.low,
        other.auroc_model.high,
    )


def test_intervals_contain_their_estimate() -> None:
    c = compare(make_scored(), resamples=60, seed=1)
    for interval in (c.auroc_model, c.auroc_news2, c.auprc_model, c.sensitivity_news2):
        assert interval.low <= interval.estimate <= interval.high


def test_model_threshold_matches_the_news2_alert_burden() -> None:
    scored = make_scored(seed=3)
    c = compare(scored, resamples=10, seed=1)
    assert c.alerts_per_patient_day_model == pytest.approx(c.alerts_per_patient_day_news2)
    flagged_news2 = int((scored.news2 >= 5).sum())
    assert int((scored.model >= c.model_threshold).sum()) == flagged_news2
    # 40 patients × 10 windows × 0.25 days = 100 patient-days.
    assert c.patient_days == pytest.approx(100.0)
    assert c.alerts_per_patient_day_news2 == pytest.approx(flagged_news2 / 100.0)


def test_threshold_for_count() -> None:
    scores = np.array([0.1, 0.9, 0.4, 0.7, 0.3])
    assert threshold_for_count(scores, 2) == 0.7
    assert threshold_for_count(scores, 0) == np.inf
    assert threshold_for_count(scores, 9) == 0.1


def test_sensitivity_by_window_and_by_episode_worked_by_hand() -> None:
    # Two patients; patient 0 has an episode of two positive windows.
    scored = ScoredWindows(
        name="hand",
        target=np.array([0, 1, 1, 0, 0, 0]),
        patient=np.array([0, 0, 0, 1, 1, 1]),
        episode=np.array([-1, 0, 0, -1, -1, -1]),
        exposure_days=np.full(6, 0.5),
        model=np.array([0.1, 0.2, 0.9, 0.1, 0.3, 0.2]),
        news2=np.array([1.0, 6.0, 2.0, 5.0, 0.0, 0.0]),
    )
    c = compare(scored, resamples=5, seed=0)
    # NEWS2 ≥ 5 flags rows 1 and 3: one of two positive windows, the one episode caught.
    assert c.sensitivity_news2.estimate == 0.5
    assert c.episode_sensitivity_news2.estimate == 1.0
    # The model gets the same two alerts: its two highest scores (0.9, 0.3).
    assert c.sensitivity_model.estimate == 0.5
    assert c.alerts_per_patient_day_model == pytest.approx(2 / 3.0)
    # Positives 0.2 and 0.9 against negatives 0.1, 0.1, 0.3, 0.2: (2.5 + 4) / 8 pairs.
    assert c.auroc_model.estimate == pytest.approx(0.8125)


def test_a_clearly_better_model_becomes_the_default() -> None:
    better = compare(make_scored(model_is_oracle=True, patients=80), resamples=50, seed=2)
    verdict = decide(better)
    assert verdict.model_is_default
    assert "the model is better" in verdict.reasons[0]


def test_a_model_no_better_than_news2_does_not() -> None:
    noisy = compare(make_scored(patients=40, seed=5), resamples=50, seed=2)
    verdict = decide(noisy)
    assert not verdict.model_is_default
    assert any("not shown better" in reason for reason in verdict.reasons)


def test_clear_harm_on_the_home_cohort_blocks_the_default() -> None:
    better = compare(make_scored(model_is_oracle=True, patients=80), resamples=50, seed=2)
    scored = make_scored(model_is_oracle=True, patients=80)
    inverted = ScoredWindows(
        scored.name,
        scored.target,
        scored.patient,
        scored.episode,
        scored.exposure_days,
        model=-scored.model,
        news2=scored.news2,
    )
    worse_at_home = compare(inverted, resamples=50, seed=2)
    assert not decide(better, worse_at_home).model_is_default


def test_the_table_names_both_scores_and_the_burden() -> None:
    text = format_comparison(compare(make_scored(), resamples=10, seed=0))
    assert "AUROC" in text
    assert "NEWS2 (alert ≥ 5)" in text
    assert "alerts per patient-day" in text
