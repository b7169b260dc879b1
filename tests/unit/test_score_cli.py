"""`naervagt score`: NEWS2 rows worked out by hand from the RCP chart, the exact header, the
window rule, Scale 2, and bad input refused with its line number."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from services.alerts.model.artifact import save_model
from services.alerts.model.commands import score_main
from services.alerts.model.features import FEATURES
from services.alerts.model.train import fit_model

HEADER = (
    "patient_id,time,news2,news2_respiratory_rate,news2_spo2,news2_air_or_oxygen,"
    "news2_systolic_bp,news2_heart_rate,news2_consciousness,news2_temperature,"
    "single_parameter_3,band,missing,risk"
)

# Deliberately out of order: the output is sorted by patient, then time.
READINGS = """patient_id,time,type,value
b,2025-01-06T10:05:00Z,spo2,97
a,2025-01-06T09:30:00+01:00,heart_rate,135
a,2025-01-06T08:00:00Z,respiratory_rate,22
a,2025-01-06T08:00:00Z,spo2,95
a,2025-01-06T08:00:00Z,on_oxygen,false
a,2025-01-06T08:00:00Z,systolic_bp,105
a,2025-01-06T08:00:00Z,heart_rate,95
a,2025-01-06T08:00:00Z,consciousness,A
a,2025-01-06T09:00:00+01:00,temperature,37.1
a,2025-01-07T09:00:00Z,spo2,97
b,2025-01-06T10:00:00Z,spo2,89
b,2025-01-06T10:00:00Z,on_oxygen,true
b,2025-01-06T10:00:00Z,heart_rate,88
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    features = rng.normal(0, 1, (300, len(FEATURES)))
    target = (features[:, 0] > 0.5).astype(np.int64)
    model = fit_model(
        features,
        target,
        patient_numbers=np.ones(300, dtype=np.int64),
        version="0.0.1",
        trained_on="test",
        hyperparameters={"max_iter": 5, "max_leaf_nodes": 4, "min_samples_leaf": 10},
    )
    return save_model(model, tmp_path_factory.mktemp("model"))


def run(
    tmp_path: Path, model_file: Path, readings: str, *extra: str
) -> tuple[int, list[dict[str, str]], str]:
    source = tmp_path / "in.csv"
    source.write_text(readings, encoding="utf-8")
    target = tmp_path / "out.csv"
    code = score_main(
        ["--input", str(source), "--output", str(target), "--model", str(model_file), *extra]
    )
    if code != 0:
        return code, [], ""
    text = target.read_text(encoding="utf-8")
    with target.open(newline="", encoding="utf-8") as stream:
        return code, list(csv.DictReader(stream)), text


def scores(row: dict[str, str]) -> list[str]:
    return [row[name] for name in HEADER.split(",")[2:12]]


def test_rows_scored_from_the_chart(tmp_path: Path, model_file: Path) -> None:
    patients = tmp_path / "patients.csv"
    patients.write_text("patient_id,spo2_scale\nb,2\n", encoding="utf-8")
    code, rows, text = run(tmp_path, model_file, READINGS, "--patients", str(patients))
    assert code == 0
    assert text.splitlines()[0] == HEADER
    assert [(r["patient_id"], r["time"]) for r in rows] == [
        ("a", "2025-01-06T08:00:00Z"),  # 09:00+01:00 is the same moment: one window
        ("a", "2025-01-06T09:30:00+01:00"),
        ("a", "2025-01-07T09:00:00Z"),
        ("b", "2025-01-06T10:00:00Z"),
        ("b", "2025-01-06T10:05:00Z"),
    ]
    # RR 22 → 2, SpO2 95 (Scale 1) → 1, air → 0, SBP 105 → 1, pulse 95 → 1, A → 0,
    # 37.1 °C → 0: total 5, "medium".
    assert scores(rows[0]) == ["5", "2", "1", "0", "1", "1", "0", "0", "false", "medium"]
    assert rows[0]["missing"] == ""
    # Half an hour later a pulse of 135 scores 3; the rest are the latest within 24 h.
    assert scores(rows[1]) == ["7", "2", "1", "0", "1", "3", "0", "0", "true", "high"]
    # A day and an hour later only the new SpO2 is inside the window.
    assert scores(rows[2]) == ["0", "", "0", "", "", "", "", "", "false", "low"]
    assert rows[2]["missing"] == (
        "respiratory_rate;on_oxygen;systolic_bp;heart_rate;consciousness;temperature"
    )
    # Scale 2: SpO2 89 is on target (0); oxygen → 2; pulse 88 → 0.
    assert scores(rows[3]) == ["2", "", "0", "2", "", "0", "", "", "false", "low"]
    assert rows[3]["missing"] == "respiratory_rate;systolic_bp;consciousness;temperature"
    # Scale 2 on oxygen: SpO2 97 is too high and scores 3.
    assert scores(rows[4]) == ["5", "", "3", "2", "", "0", "", "", "true", "medium"]
    for row in rows:
        assert 0.0 <= float(row["risk"]) <= 1.0


def test_without_a_patients_file_everyone_is_on_scale_1(tmp_path: Path, model_file: Path) -> None:
    _, rows, _ = run(tmp_path, model_file, READINGS)
    # SpO2 89 on Scale 1 scores 3; 97 scores 0.
    assert rows[3]["news2_spo2"] == "3"
    assert rows[4]["news2_spo2"] == "0"


def test_a_shorter_window_forgets_older_values(tmp_path: Path, model_file: Path) -> None:
    _, rows, _ = run(tmp_path, model_file, READINGS, "--window", "20")
    # At 08:30Z the 08:00Z values are 30 minutes old: only the pulse of 135 remains.
    assert scores(rows[1]) == ["3", "", "", "", "", "3", "", "", "true", "low-medium"]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("a,2025-01-06T08:00:00Z,pulse,80", "unknown type 'pulse'"),
        ("a,2025-01-06 08:00,heart_rate,80", "RFC 3339"),
        ("a,2025-01-06T08:00:00,heart_rate,80", "RFC 3339"),
        ("a,2025-02-30T08:00:00Z,heart_rate,80", "day"),
        ("a,2025-01-06T08:00:00Z,heart_rate,fast", "not a number"),
        ("a,2025-01-06T08:00:00Z,heart_rate,nan", "finite"),
        ("a,2025-01-06T08:00:00Z,consciousness,X", "A, C, V, P, U"),
        ("a,2025-01-06T08:00:00Z,on_oxygen,maybe", "true/false"),
        (",2025-01-06T08:00:00Z,heart_rate,80", "empty patient_id"),
        ("a,2025-01-06T08:00:00Z,heart_rate", "expected 4 fields"),
    ],
)
def test_a_bad_row_is_refused_with_its_line_number(
    tmp_path: Path,
    model_file: Path,
    capsys: pytest.CaptureFixture[str],
    line: str,
    needle: str,
) -> None:
    readings = "patient_id,time,type,value\na,2025-01-06T07:00:00Z,spo2,96\n" + line + "\n"
    code, _, _ = run(tmp_path, model_file, readings)
    assert code == 2
    error = capsys.readouterr().err
    assert "line 3" in error
    assert needle in error
    assert not (tmp_path / "out.csv").exists()


def test_a_wrong_header_is_refused(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(
        tmp_path, model_file, "patient,time,kind,value\na,2025-01-06T07:00:00Z,spo2,96\n"
    )
    assert code == 2
    assert "line 1" in capsys.readouterr().err


def test_a_bad_patients_file_is_refused(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    patients = tmp_path / "patients.csv"
    patients.write_text("patient_id,spo2_scale\nb,2\nc,3\n", encoding="utf-8")
    code, _, _ = run(tmp_path, model_file, READINGS, "--patients", str(patients))
    assert code == 2
    assert "line 3" in capsys.readouterr().err


def test_a_missing_input_file_is_a_usage_error(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = score_main(
        [
            "--input",
            str(tmp_path / "nope.csv"),
            "--output",
            str(tmp_path / "o.csv"),
            "--model",
            str(model_file),
        ]
    )
    assert code == 2
    assert "nope.csv" in capsys.readouterr().err
