"""The synthetic home cohort: reproducible, held out by the fixed rule, and physiologically
what its documentation promises."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from services.alerts.model.dataset import EXCLUDED, POSITIVE
from services.alerts.model.synthetic import CohortSpec, generate_cohort, write_cohort
from services.alerts.model.table import VALUE_COLUMNS, LongReadings

SMALL = CohortSpec(patients=30, days=45, seed=11)


def values_of(r: LongReadings, patient_id: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One patient's readings of one type, in time order."""
    mine = (r.patient_id == patient_id) & (r.type_index == VALUE_COLUMNS.index(kind))
    order = np.argsort(r.time_h[mine])
    return r.time_h[mine][order], r.value[mine][order]


def test_the_same_seed_gives_the_same_cohort() -> None:
    first, again = generate_cohort(SMALL), generate_cohort(SMALL)
    np.testing.assert_array_equal(first.readings.value, again.readings.value)
    np.testing.assert_array_equal(first.readings.time_h, again.readings.time_h)
    assert first.episodes == again.episodes
    other = generate_cohort(CohortSpec(patients=30, days=45, seed=12))
    assert not np.array_equal(first.readings.value[:50], other.readings.value[:50])


def test_held_out_patients_are_those_numbered_by_five() -> None:
    windows = generate_cohort(SMALL).windows()
    held = {
        windows.table.patient_ids[p]
        for p in np.unique(windows.table.patient[windows.held_out_rows()])
    }
    assert held == {f"s{n:05d}" for n in range(5, 31, 5)}


def test_episodes_are_labelled_before_the_event_and_excluded_during_recovery() -> None:
    cohort = generate_cohort(SMALL)
    windows = cohort.windows()
    labelled = [ep for ep in cohort.episodes if ep.kind != "bad_day"]
    assert labelled
    for ep in labelled:
        pid = cohort.patients[ep.patient].patient_id
        code = windows.table.patient_ids.index(pid)
        rows = windows.table.patient == code
        t = windows.table.time_h
        assert (
            windows.target[rows & (t >= ep.drift_start_h) & (t <= ep.event_h)] == POSITIVE
        ).all()
        assert (
            windows.target[rows & (t > ep.event_h) & (t <= ep.recovery_end_h)] == EXCLUDED
        ).all()


def test_copd_patients_living_low_sit_at_spo2_89_to_92() -> None:
    cohort = generate_cohort(CohortSpec(patients=60, days=30, seed=5))
    low = [p for p in cohort.patients if p.lives_low]
    assert low
    for patient in low:
        _, spo2 = values_of(cohort.readings, patient.patient_id, "spo2")
        assert 88.0 <= float(np.median(spo2)) <= 93.0
    assert all(p.condition == "copd" for p in low)


def test_heart_failure_decompensation_gains_weight() -> None:
    cohort = generate_cohort(CohortSpec(patients=80, days=60, seed=3))
    gains = []
    for ep in cohort.episodes:
        if ep.kind != "hf_decompensation":
            continue
        t, weight = values_of(cohort.readings, cohort.patients[ep.patient].patient_id, "weight")
        before = weight[(t >= ep.drift_start_h - 72) & (t < ep.drift_start_h)]
        at_event = weight[(t > ep.event_h - 24) & (t <= ep.event_h)]
        if before.size and at_event.size:
            gains.append(float(at_event.mean() - before.mean()))
    assert gains
    assert np.median(gains) > 2.0


def test_some_readings_arrive_late_and_out_of_order() -> None:
    cohort = generate_cohort(SMALL)
    delay = cohort.received_h - cohort.readings.time_h
    assert (delay >= 0).all()
    assert (delay > 12).any()
    assert (np.diff(cohort.readings.time_h) < 0).any()  # arrival order is not measurement order


def test_written_readings_are_the_score_commands_input(tmp_path: Path) -> None:
    written = write_cohort(generate_cohort(CohortSpec(patients=3, days=5, seed=1)), tmp_path)
    assert [p.name for p in written] == [
        "readings.csv",
        "patients.csv",
        "cohort.csv",
        "episodes.csv",
    ]
    assert written[1].read_text(encoding="utf-8").splitlines()[0] == "patient_id,spo2_scale"
    with written[0].open(newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["patient_id", "time", "type", "value"]
    assert {row[2] for row in rows[1:]} <= set(VALUE_COLUMNS)
    assert all(row[1].endswith("Z") for row in rows[1:])
