"""Live windows get the model's own features, as if computed from the patient's whole history,
and the model's risk and top features come out as `DeteriorationModel.explain` gives them."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from services.alerts.domain.model_risk import feature_table, risks, window_rows
from services.alerts.domain.window import Observation, PatientVitals
from services.alerts.model.artifact import DeteriorationModel
from services.alerts.model.features import FEATURES, compute_features
from services.alerts.model.table import VitalsTable
from services.alerts.model.train import fit_model

T0 = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
PULSE = FEATURES.index("heart_rate")


def patient(rng: np.random.Generator, sessions: int) -> PatientVitals:
    """Irregular home sessions over weeks: pulse always, the rest now and then."""
    held = PatientVitals(retention=timedelta(days=30))
    at = T0
    for _ in range(sessions):
        at += timedelta(hours=float(rng.uniform(0.5, 14.0)))
        held.add(Observation("heart_rate", float(round(rng.normal(80, 8))), at))
        if rng.random() < 0.8:
            held.add(Observation("spo2", float(round(rng.normal(95, 2))), at))
        if rng.random() < 0.3:
            held.add(Observation("weight", round(float(rng.normal(80, 1)), 1), at))
        if rng.random() < 0.2:
            held.add(Observation("temperature", round(float(rng.normal(37, 0.4)), 1), at))
        if rng.random() < 0.2:
            held.add(Observation("on_oxygen", bool(rng.random() < 0.3), at))
        if rng.random() < 0.1:
            held.add(Observation("consciousness", "A" if rng.random() < 0.8 else "C", at))
    return held


def newest(held: PatientVitals) -> datetime:
    return max(o.measured_at for t in held.types() if (o := held.latest(t)) is not None)


def whole_history(patient_id: str, held: PatientVitals) -> VitalsTable:
    """The patient's every retained reading as a table (the slow, obviously complete way)."""
    codes = {"A": 0.0, "C": 1.0, "V": 2.0, "P": 3.0, "U": 4.0}
    rows: dict[datetime, dict[str, float]] = {}
    for type in held.types():
        for o in held.history(type):
            value = codes[o.value] if isinstance(o.value, str) else float(o.value)
            rows.setdefault(o.measured_at, {})[type] = value
    times = sorted(rows)
    types = {t for row in rows.values() for t in row}
    return VitalsTable(
        patient=np.zeros(len(times), dtype=np.int64),
        patient_ids=(patient_id,),
        time_h=np.asarray([(t - T0) / timedelta(hours=1) for t in times]),
        values={t: np.asarray([rows[at].get(t, np.nan) for at in times]) for t in types},
        spo2_scale=np.ones(1, dtype=np.int64),
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_the_live_row_is_the_last_row_of_the_whole_history(seed: int) -> None:
    rng = np.random.default_rng(seed)
    patients = {f"pt-{i:02d}": patient(rng, int(rng.integers(3, 120))) for i in range(12)}
    live = window_rows(
        feature_table([(pid, held, newest(held), 1) for pid, held in patients.items()])
    )
    expected = np.vstack(
        [compute_features(whole_history(pid, held)).matrix[-1] for pid, held in patients.items()]
    )
    # Equal up to float rounding: slopes are summed from each table's own first measurement.
    np.testing.assert_allclose(live, expected, rtol=1e-9, atol=1e-9)
    assert np.isnan(live).any() and not np.isnan(live).all()


def test_a_window_ending_before_later_readings_ignores_them() -> None:
    held = patient(np.random.default_rng(3), 40)
    end = held.history("heart_rate")[20].measured_at
    before = window_rows(feature_table([("pt", held, end, 1)]))
    held.add(Observation("heart_rate", 190.0, end + timedelta(hours=1)))
    assert np.array_equal(
        before, window_rows(feature_table([("pt", held, end, 1)])), equal_nan=True
    )


def pulse_model() -> DeteriorationModel:
    """Risk rises with pulse (a small model fitted here; the shipped file is not needed)."""
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (600, len(FEATURES)))
    features[:, PULSE] = rng.normal(85, 15, 600)
    target = (features[:, PULSE] + rng.normal(0, 5, 600) > 100).astype(np.int64)
    return fit_model(
        features,
        target,
        patient_numbers=np.full(600, 1),
        version="0.0.1",
        trained_on="test",
        hyperparameters={
            "max_iter": 15,
            "learning_rate": 0.3,
            "max_leaf_nodes": 4,
            "min_samples_leaf": 10,
            "l2_regularization": 0.0,
            "early_stopping": False,
        },
    )


def test_risks_for_a_batch_match_the_models_own_explanation_row_by_row() -> None:
    model = pulse_model()
    rows = np.random.default_rng(1).normal(0, 1, (25, len(FEATURES)))
    rows[:, PULSE] = np.linspace(50, 150, 25)
    rows[::4, 3] = np.nan
    typical = list(model.used[:12])
    rows[1::3, typical] = model.reference[:12]  # features at their median move nothing
    found = risks(model, rows, top=4, alert_threshold=0.2)
    assert [r.probability for r in found] == pytest.approx(list(model.predict_proba(rows)))
    for row, risk in zip(rows, found, strict=True):
        explained = model.explain(row, top=4)
        assert [name for name, _ in risk.top_features] == [name for name, _ in explained]
        assert [e for _, e in risk.top_features] == pytest.approx([e for _, e in explained])
        assert (risk.version, risk.is_default, risk.alert_threshold) == ("0.0.1", False, 0.2)
    assert found[-1].top_features[0][0] == "heart_rate"  # pulse 150 drives the highest risk


DOMAIN = Path(__file__).resolve().parents[2] / "services" / "alerts" / "domain"


@pytest.mark.parametrize("name", ["assessment", "personal", "missing", "model_risk"])
def test_scoring_domain_modules_do_no_io(name: str) -> None:
    tree = ast.parse((DOMAIN / f"{name}.py").read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
    assert imported.isdisjoint({"asyncio", "aiohttp", "aiokafka", "asyncpg", "socket", "skops"})
    assert not any(
        isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open"
        for node in ast.walk(tree)
    )
