"""The shipped model file: saved and loaded with skops, which rebuilds only types it is told to
trust instead of running pickle's arbitrary code, plus the model's predict and explain.

    >>> model = load_model()
    >>> risk = model.predict_proba(compute_features(table).matrix)
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import skops.io

from services.alerts.model.features import FEATURES
from services.alerts.model.table import FloatArray

ARTIFACT_DIR = Path(__file__).parent / "artifacts"
ARTIFACT_PREFIX = "deterioration-"
ARTIFACT_SUFFIX = ".skops"
FORMAT = 1

TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
"""Types beyond skops' own safe defaults (builtins, numpy, the scikit-learn estimator) that a
deterioration model file may contain; a file asking for anything else is refused."""


class ArtifactError(ValueError):
    """The model file is missing, of another format or feature set, or not to be trusted."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UntrustedArtifact(ArtifactError):
    """The file would make skops build types outside `TRUSTED_TYPES`."""

    def __init__(self, path: Path, types: tuple[str, ...]) -> None:
        super().__init__(path, f"refusing untrusted types {list(types)}")
        self.types = types


@dataclass(frozen=True, slots=True)
class DeteriorationModel:
    """A fitted classifier over `FEATURES`, and what it needs to explain itself.

    `used` lists the feature columns the classifier sees (features never observed in training,
    such as weight in ICU data, are left out rather than guessed); `reference` holds each used
    feature's training median, the "typical window" that `explain` compares against.
    """

    version: str
    features: tuple[str, ...]
    used: tuple[int, ...]
    reference: FloatArray
    estimator: Any
    trained_on: str
    is_default: bool = False

    def predict_proba(self, features: npt.NDArray[np.float64]) -> FloatArray:
        """Probability of deterioration for each row of a (rows × len(FEATURES)) matrix."""
        matrix = np.asarray(features, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(self.features):
            raise ValueError(f"expected rows × {len(self.features)} features, got {matrix.shape}")
        if matrix.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        chosen = matrix[:, list(self.used)]
        return np.asarray(self.estimator.predict_proba(chosen)[:, 1], dtype=np.float64)

    def explain(
        self, features_row: npt.NDArray[np.float64], *, top: int = 5
    ) -> list[tuple[str, float]]:
        """The features that move this window's risk most, as (name, change in log-odds).

        Method: single-feature occlusion. For each feature the model sees, the row is
        re-scored with that one feature set to its training median; the contribution is the
        log-odds of the row minus the log-odds with the feature made typical. Positive raises
        risk. Interactions are not shared out, so contributions need not add up to the total.
        """
        row = np.asarray(features_row, dtype=np.float64).reshape(1, -1)[:, list(self.used)]
        variants = np.repeat(row, len(self.used) + 1, axis=0)
        for i in range(len(self.used)):
            variants[i + 1, i] = self.reference[i]
        log_odds = _log_odds(np.asarray(self.estimator.predict_proba(variants)[:, 1]))
        effects = log_odds[0] - log_odds[1:]
        ranked = np.argsort(-np.abs(effects), kind="stable")[:top]
        return [(self.features[self.used[i]], float(effects[i])) for i in ranked]


def _log_odds(probability: FloatArray) -> FloatArray:
    clipped = np.clip(probability, 1e-12, 1 - 1e-12)
    return np.asarray(np.log(clipped / (1 - clipped)), dtype=np.float64)


def artifact_name(version: str) -> str:
    return f"{ARTIFACT_PREFIX}{version}{ARTIFACT_SUFFIX}"


def evaluation_path(model_path: Path) -> Path:
    """The evaluation summary kept next to a model file (holds `model_is_default`)."""
    return model_path.with_suffix(".evaluation.json")


def save_model(model: DeteriorationModel, directory: Path) -> Path:
    """Write the model as deterioration-<version>.skops in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / artifact_name(model.version)
    payload = {
        "format": FORMAT,
        "version": model.version,
        "features": list(model.features),
        "used": list(model.used),
        "reference": np.asarray(model.reference, dtype=np.float64),
        "trained_on": model.trained_on,
        "estimator": model.estimator,
    }
    skops.io.dump(payload, path, compression=zipfile.ZIP_DEFLATED)
    return path


def latest_artifact(directory: Path = ARTIFACT_DIR) -> Path:
    """The highest-versioned model file in `directory`."""
    found = sorted(
        directory.glob(f"{ARTIFACT_PREFIX}*{ARTIFACT_SUFFIX}"),
        key=lambda p: _version_key(p.name[len(ARTIFACT_PREFIX) : -len(ARTIFACT_SUFFIX)]),
    )
    if not found:
        raise ArtifactError(directory, "no deterioration model file")
    return found[-1]


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in version.split("."))


def load_model(path: Path | None = None) -> DeteriorationModel:
    """Load a model file (the newest shipped one by default), refusing untrusted content."""
    source = path if path is not None else latest_artifact()
    if not source.is_file():
        raise ArtifactError(source, "no such model file")
    try:
        asked = tuple(str(t) for t in skops.io.get_untrusted_types(file=source))
    except Exception as error:  # skops reports a damaged file with assorted exceptions
        raise ArtifactError(source, f"unreadable model file ({error})") from error
    refused = tuple(t for t in asked if t not in TRUSTED_TYPES)
    if refused:
        raise UntrustedArtifact(source, refused)
    payload = skops.io.load(source, trusted=list(TRUSTED_TYPES))
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ArtifactError(source, "not a deterioration model file of a known format")
    features = tuple(str(name) for name in payload["features"])
    if features != FEATURES:
        raise ArtifactError(source, "trained on a different feature list than this code computes")
    return DeteriorationModel(
        version=str(payload["version"]),
        features=features,
        used=tuple(int(i) for i in payload["used"]),
        reference=np.asarray(payload["reference"], dtype=np.float64),
        estimator=payload["estimator"],
        trained_on=str(payload["trained_on"]),
        is_default=_read_is_default(evaluation_path(source)),
    )


def _read_is_default(path: Path) -> bool:
    """`model_is_default` from the evaluation summary; an unevaluated model is never default."""
    if not path.is_file():
        return False
    summary = json.loads(path.read_text(encoding="utf-8"))
    return bool(summary.get("model_is_default", False))


def used_columns(matrix: npt.NDArray[np.float64]) -> tuple[int, ...]:
    """Columns with at least two distinct observed values: the only ones a model can learn."""
    keep: list[int] = []
    for i in range(matrix.shape[1]):
        column = matrix[:, i]
        observed = column[~np.isnan(column)]
        if observed.size and observed.min() != observed.max():
            keep.append(i)
    return tuple(keep)
