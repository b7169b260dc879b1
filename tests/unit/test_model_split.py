"""The held-out split (patient number divisible by 5) never reaches training, and the real
data are labelled as documented."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from services.alerts.model.dataset import EXCLUDED, NEGATIVE, POSITIVE, LabelledWindows
from services.alerts.model.features import FEATURES
from services.alerts.model.physionet import (
    PhysionetFormatError,
    label_hours,
    load_physionet,
    on_oxygen_from_fio2,
)
from services.alerts.model.split import (
    HeldOutPatientsInTraining,
    is_held_out,
    require_training_patients,
)
from services.alerts.model.train import fit_model, train_on

TINY = {
    "max_iter": 10,
    "learning_rate": 0.3,
    "max_leaf_nodes": 4,
    "min_samples_leaf": 5,
    "l2_regularization": 0.0,
    "early_stopping": False,
}


def test_patients_divisible_by_five_are_held_out() -> None:
    assert is_held_out([100000, 100005, 5, 0]).all()
    assert not is_held_out([100001, 100002, 100003, 100004, 7]).any()


def test_training_refuses_any_held_out_patient() -> None:
    require_training_patients([1, 2, 3, 4, 6])
    with pytest.raises(HeldOutPatientsInTraining) as refused:
        require_training_patients([1, 2, 10, 3, 25, 10])
    assert refused.value.patient_numbers == (10, 25)


def test_fit_model_refuses_held_out_rows_before_fitting() -> None:
    features = np.zeros((4, len(FEATURES)))
    with pytest.raises(HeldOutPatientsInTraining):
        fit_model(
            features,
            np.array([0, 1, 0, 1]),
            patient_numbers=np.array([1, 1, 5, 5]),
            hyperparameters=TINY,
        )


def make_icu(numbers: list[int], *, seed: int, hours: int = 30) -> dict[str, np.ndarray]:
    """Challenge-style columns: every third patient develops sepsis at hour 20."""
    rng = np.random.default_rng(seed)
    rows = len(numbers) * hours
    data = {
        "patient": np.repeat(np.asarray(numbers, dtype=float), hours),
        "ICULOS": np.tile(np.arange(1, hours + 1, dtype=float), len(numbers)),
        "HR": rng.normal(85, 10, rows),
        "O2Sat": rng.normal(96, 2, rows),
        "Temp": rng.normal(37, 0.5, rows),
        "SBP": rng.normal(120, 15, rows),
        "DBP": rng.normal(70, 10, rows),
        "Resp": rng.normal(18, 3, rows),
        "FiO2": np.full(rows, np.nan),
        "SepsisLabel": np.zeros(rows),
    }
    for i in range(0, len(numbers), 3):
        block = slice(i * hours, (i + 1) * hours)
        data["SepsisLabel"][block] = (data["ICULOS"][block] >= 14).astype(float)
        data["HR"][block] += np.where(data["ICULOS"][block] >= 10, 25.0, 0.0)
    return data


def test_held_out_patients_cannot_change_the_trained_model() -> None:
    numbers = list(range(1, 41))
    data = make_icu(numbers, seed=1)
    windows = label_hours(data)
    # Replace every held-out patient's measurements with something wild.
    scrambled = dict(data)
    held = is_held_out(data["patient"].astype(int))
    rng = np.random.default_rng(99)
    for name in ("HR", "O2Sat", "Temp", "SBP", "Resp"):
        scrambled[name] = np.where(held, rng.normal(0, 500, held.size), data[name])
    scrambled["SepsisLabel"] = np.where(held, 1 - data["SepsisLabel"], data["SepsisLabel"])

    probe = np.random.default_rng(3).normal(50, 30, (50, len(FEATURES)))
    first = train_on(windows, hyperparameters=TINY).predict_proba(probe)
    second = train_on(label_hours(scrambled), hyperparameters=TINY).predict_proba(probe)
    np.testing.assert_array_equal(first, second)
    assert "32 patients" in train_on(windows, hyperparameters=TINY).trained_on


def test_sepsis_hours_are_positive_until_onset_and_excluded_after() -> None:
    data = make_icu([1], seed=2)  # label from hour 14, so onset at hour 20
    data["HR"][:2] = np.nan
    data["O2Sat"][:2] = np.nan
    data["Temp"][:2] = np.nan
    data["SBP"][:2] = np.nan
    data["Resp"][:2] = np.nan
    windows = label_hours(data)
    hours = windows.table.time_h
    assert hours[0] == 3  # hours 1-2 charted no vital sign: no window
    assert (windows.target[hours < 14] == NEGATIVE).all()
    assert (windows.target[(hours >= 14) & (hours <= 20)] == POSITIVE).all()
    assert (windows.target[hours > 20] == EXCLUDED).all()
    # Follow-up runs to the onset: 20 hours.
    assert windows.exposure_days.sum() == pytest.approx(20 / 24)


def test_fio2_above_room_air_means_oxygen() -> None:
    got = on_oxygen_from_fio2(np.array([0.21, 0.4, 40.0, np.nan, -50.0, 4000.0]))
    np.testing.assert_array_equal(got, [0.0, 1.0, 1.0, np.nan, np.nan, np.nan])


def write_psv(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="ascii") as stream:
        stream.write("\n".join(lines) + "\n")


def test_loader_reads_the_challenge_table(tmp_path: Path) -> None:
    header = "patient|HR|O2Sat|Temp|SBP|MAP|DBP|Resp|FiO2|Age|ICULOS|SepsisLabel"
    path = tmp_path / "set.psv.gz"
    write_psv(
        path,
        [
            header,
            "p000005|80|97|37.0|120|90|70|16|NaN|60|1|0",
            "p000005|82|96|NaN|118|88|68|18|0.5|60|2|0",
            "p000006|NaN|NaN|NaN|NaN|NaN|NaN|NaN|NaN|70|1|0",
            "p000006|90|93|38.5|100|80|60|24|NaN|70|2|1",
        ],
    )
    windows: LabelledWindows = load_physionet(path)
    assert windows.table.patient_ids == ("p000005", "p000006")
    assert windows.patient_number.tolist() == [5, 6]
    assert windows.held_out_rows().tolist() == [True, True, False]
    assert windows.table.column("on_oxygen")[1] == 1.0
    assert windows.target.tolist() == [NEGATIVE, NEGATIVE, POSITIVE]


def test_loader_names_a_file_without_the_needed_columns(tmp_path: Path) -> None:
    path = tmp_path / "other.psv.gz"
    write_psv(path, ["patient|HR|O2Sat", "p1|80|97"])
    with pytest.raises(PhysionetFormatError, match="missing columns"):
        load_physionet(path)
