"""The fixed train / held-out split: patients whose number is divisible by 5 are held out for
evaluation, in the real data and in the synthetic cohort alike, and never reach training."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

HELD_OUT_DIVISOR = 5


class HeldOutPatientsInTraining(ValueError):
    """Training was handed rows of held-out patients."""

    def __init__(self, patient_numbers: tuple[int, ...]) -> None:
        shown = ", ".join(str(number) for number in patient_numbers[:5])
        super().__init__(
            f"{len(patient_numbers)} held-out patients in training data (e.g. {shown})"
        )
        self.patient_numbers = patient_numbers


def is_held_out(patient_numbers: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """True for each patient number that belongs to the held-out test set."""
    numbers = np.asarray(patient_numbers, dtype=np.int64)
    return np.asarray(numbers % HELD_OUT_DIVISOR == 0, dtype=np.bool_)


def require_training_patients(patient_numbers: npt.ArrayLike) -> None:
    """Raise `HeldOutPatientsInTraining` if any of these patients is held out."""
    numbers = np.asarray(patient_numbers, dtype=np.int64)
    leaked = np.unique(numbers[is_held_out(numbers)])
    if leaked.size:
        raise HeldOutPatientsInTraining(tuple(int(number) for number in leaked))
