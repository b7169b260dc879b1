"""The model file round-trips through skops, refuses untrusted content, and explains itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skops.io

from services.alerts.model.artifact import (
    ArtifactError,
    DeteriorationModel,
    UntrustedArtifact,
    evaluation_path,
    latest_artifact,
    load_model,
    save_model,
)
from services.alerts.model.card import write_evaluation
from services.alerts.model.evaluate import ScoredWindows, Verdict, compare
from services.alerts.model.features import FEATURES
from services.alerts.model.train import fit_model

TINY = {
    "max_iter": 15,
    "learning_rate": 0.3,
    "max_leaf_nodes": 4,
    "min_samples_leaf": 10,
    "l2_regularization": 0.0,
    "early_stopping": False,
}
PULSE = FEATURES.index("heart_rate")
WEIGHT_SLOPE = FEATURES.index("weight_slope_72h")


def tiny_model(version: str = "0.0.1") -> DeteriorationModel:
    """Risk rises with pulse; the weight slope is never observed."""
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (600, len(FEATURES)))
    features[:, PULSE] = rng.normal(85, 15, 600)
    features[:, WEIGHT_SLOPE] = np.nan
    target = (features[:, PULSE] + rng.normal(0, 5, 600) > 100).astype(np.int64)
    return fit_model(
        features,
        target,
        patient_numbers=np.full(600, 1),
        version=version,
        trained_on="tiny",
        hyperparameters=TINY,
    )


def probe_rows() -> np.ndarray:
    rows = np.random.default_rng(1).normal(0, 1, (40, len(FEATURES)))
    rows[:, PULSE] = np.linspace(50, 150, 40)
    return rows


def test_round_trip_gives_the_same_risks(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_model(model, tmp_path)
    assert path.name == "deterioration-0.0.1.skops"
    loaded = load_model(path)
    assert loaded.version == "0.0.1"
    assert loaded.features == FEATURES
    np.testing.assert_array_equal(
        loaded.predict_proba(probe_rows()), model.predict_proba(probe_rows())
    )
    risk = loaded.predict_proba(probe_rows())
    assert risk[-1] > risk[0]  # a pulse of 150 is riskier than one of 50
    assert WEIGHT_SLOPE not in loaded.used
    assert loaded.is_default is False


def test_verdict_next_to_the_file_decides_is_default(tmp_path: Path) -> None:
    path = save_model(tiny_model(), tmp_path)
    evaluation_path(path).write_text(json.dumps({"model_is_default": True}), encoding="utf-8")
    assert load_model(path).is_default is True


def test_newest_version_is_loaded_by_default_from_a_directory(tmp_path: Path) -> None:
    for version in ("1.2.0", "1.10.0", "1.9.3"):
        save_model(tiny_model(version), tmp_path)
    assert latest_artifact(tmp_path).name == "deterioration-1.10.0.skops"


class Gadget:
    """A type no deterioration model file should contain."""

    def __init__(self) -> None:
        self.armed = True


def test_a_file_asking_for_an_untrusted_type_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deterioration-6.6.6.skops"
    skops.io.dump({"format": 1, "version": "6.6.6", "estimator": Gadget()}, path)
    with pytest.raises(UntrustedArtifact) as refused:
        load_model(path)
    assert any(t.endswith("Gadget") for t in refused.value.types)


def test_a_file_for_another_feature_list_is_refused(tmp_path: Path) -> None:
    model = tiny_model()
    path = save_model(model, tmp_path)
    payload = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    payload["features"] = [*payload["features"][:-1], "something_else"]
    skops.io.dump(payload, path)
    with pytest.raises(ArtifactError, match="different feature list"):
        load_model(path)


def test_a_missing_or_damaged_file_is_an_artifact_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError):
        load_model(tmp_path / "deterioration-9.skops")
    damaged = tmp_path / "deterioration-8.skops"
    damaged.write_bytes(b"not a zip file")
    with pytest.raises(ArtifactError, match="unreadable"):
        load_model(damaged)


def test_explain_names_the_feature_that_drives_a_high_risk() -> None:
    model = tiny_model()
    row = probe_rows()[-1]  # pulse 150
    reasons = model.explain(row, top=3)
    assert len(reasons) == 3
    name, effect = reasons[0]
    assert name == "heart_rate"
    assert effect > 0
    assert all(abs(reasons[i][1]) >= abs(reasons[i + 1][1]) for i in range(2))


def test_predict_proba_rejects_a_matrix_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="features"):
        tiny_model().predict_proba(np.zeros((2, 3)))


def test_the_written_verdict_is_what_load_model_reports(tmp_path: Path) -> None:
    path = save_model(tiny_model(), tmp_path)
    scored = ScoredWindows(
        name="tiny",
        target=np.array([0, 1, 0, 1, 0, 0]),
        patient=np.array([0, 0, 1, 1, 2, 2]),
        episode=np.array([-1, 0, -1, 1, -1, -1]),
        exposure_days=np.full(6, 0.5),
        model=np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.1]),
        news2=np.array([1.0, 2.0, 6.0, 1.0, 0.0, 5.0]),
    )
    comparison = compare(scored, resamples=5, seed=0)
    for verdict in (Verdict(True, ("better",)), Verdict(False, ("not better",))):
        summary = write_evaluation(
            path, model=load_model(path), comparisons=[comparison], verdict=verdict, command="t"
        )
        assert json.loads(summary.read_text(encoding="utf-8"))["model_is_default"] is (
            verdict.model_is_default
        )
        assert load_model(path).is_default is verdict.model_is_default
