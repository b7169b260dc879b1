"""A seeded, invented home-monitoring cohort with labelled deterioration episodes.

Nothing here is real patient data; docs/model.md describes the generator in full. In short:
patients with COPD, heart failure, diabetes or frailty, each with a personal baseline (a COPD
patient may live at SpO2 89–92 % and have a prescribed Scale-2 target), measure a few times a
day with an oximeter, a blood-pressure cuff, a thermometer, a scale and a glucometer. Devices
add their own noise and artefacts; measurements are missed, whole days go unmeasured, and some
readings arrive hours or days late. Deterioration episodes (COPD exacerbation, heart-failure
decompensation, infection) drift the physiology over days towards a clinical event; benign
"bad days" move it less and are not deterioration. The same rule as the real data holds out
patients whose number is divisible by 5.

Target: a window (a distinct measurement time of a patient) is positive from the start of an
episode's drift up to and including its event, excluded during the recovery after the event,
and negative otherwise.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from services.alerts.model.dataset import (
    EXCLUDED,
    NEGATIVE,
    POSITIVE,
    LabelledWindows,
    spread_exposure,
)
from services.alerts.model.table import (
    VALUE_COLUMNS,
    FloatArray,
    IntArray,
    LongReadings,
    table_from_long,
)
from shared.vitals import CONSCIOUSNESS_LEVELS

CONDITIONS: tuple[str, ...] = ("copd", "heart_failure", "diabetes", "frail")
CONDITION_SHARE: tuple[float, ...] = (0.35, 0.30, 0.20, 0.15)
DETERIORATIONS: tuple[str, ...] = ("copd_exacerbation", "hf_decompensation", "infection")
BENIGN = "bad_day"

EPISODES_PER_90_DAYS: dict[str, dict[str, float]] = {
    "copd": {"copd_exacerbation": 1.2, "infection": 0.5, BENIGN: 1.5},
    "heart_failure": {"hf_decompensation": 1.0, "infection": 0.4, BENIGN: 1.5},
    "diabetes": {"infection": 0.7, BENIGN: 1.5},
    "frail": {"infection": 1.0, BENIGN: 1.5},
}
DRIFT_DAYS: dict[str, tuple[float, float]] = {
    "copd_exacerbation": (2.0, 5.0),
    "hf_decompensation": (3.0, 7.0),
    "infection": (1.0, 3.0),
    BENIGN: (0.5, 2.0),
}
RECOVERY_DAYS: dict[str, tuple[float, float]] = {
    "copd_exacerbation": (5.0, 10.0),
    "hf_decompensation": (5.0, 10.0),
    "infection": (3.0, 7.0),
    BENIGN: (0.5, 1.5),
}
WARM_UP_DAYS = 10.0
"""No episode drifts before this, so every patient has some baseline first."""

_PARAMS = ("heart_rate", "spo2", "respiratory_rate", "systolic_bp", "temperature", "weight")
_WANDER_SD = {
    "heart_rate": 3.0,
    "spo2": 0.6,
    "respiratory_rate": 0.8,
    "systolic_bp": 5.0,
    "temperature": 0.12,
    "weight": 0.25,
    "glucose": 1.0,
}
_TYPE = {name: index for index, name in enumerate(VALUE_COLUMNS)}


@dataclass(frozen=True, slots=True)
class CohortSpec:
    patients: int = 600
    days: int = 90
    seed: int = 2019
    start: datetime = datetime(2025, 1, 6, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Patient:
    number: int
    patient_id: str
    condition: str
    lives_low: bool  # COPD with a habitual SpO2 of 89–92 %
    spo2_scale: int  # 2 for a prescribed 88–92 % target
    long_term_oxygen: bool


@dataclass(frozen=True, slots=True)
class Episode:
    patient: int  # index into SyntheticCohort.patients
    kind: str  # one of DETERIORATIONS, or BENIGN (not labelled)
    drift_start_h: float
    event_h: float
    recovery_end_h: float


@dataclass(frozen=True, slots=True)
class SyntheticCohort:
    spec: CohortSpec
    patients: tuple[Patient, ...]
    episodes: tuple[Episode, ...]
    readings: LongReadings  # time_h: hours since the Unix epoch; arrival order
    received_h: FloatArray  # when each reading reached the platform

    def windows(self) -> LabelledWindows:
        """Label every distinct measurement time (see the module docstring)."""
        scales = {p.patient_id: p.spo2_scale for p in self.patients}
        table, _ = table_from_long(self.readings, spo2_scale=scales)
        index_of = {p.patient_id: i for i, p in enumerate(self.patients)}
        cohort_index = np.asarray([index_of[i] for i in table.patient_ids], dtype=np.int64)
        target = np.full(len(table), NEGATIVE, dtype=np.int8)
        episode = np.full(len(table), -1, dtype=np.int64)
        follow_up = np.full(len(table.patient_ids), float(self.spec.days))
        end_h = self.spec.start.timestamp() / 3600.0 + self.spec.days * 24.0
        code_of = {p: i for i, p in enumerate(cohort_index.tolist())}
        bounds = np.searchsorted(table.patient, np.arange(len(table.patient_ids) + 1))
        for number, ep in enumerate(self.episodes):
            code = code_of.get(ep.patient)
            if ep.kind == BENIGN or code is None:
                continue
            rows = slice(int(bounds[code]), int(bounds[code + 1]))
            times = table.time_h[rows]
            drifting = (times >= ep.drift_start_h) & (times <= ep.event_h)
            recovering = (times > ep.event_h) & (times <= ep.recovery_end_h)
            target[rows][drifting] = POSITIVE
            episode[rows][drifting] = number
            target[rows][recovering] = EXCLUDED
            follow_up[code] -= (min(ep.recovery_end_h, end_h) - ep.event_h) / 24.0
        scored = target != EXCLUDED
        numbers = np.asarray([self.patients[i].number for i in cohort_index], dtype=np.int64)
        return LabelledWindows(
            name="synthetic home cohort",
            table=table,
            patient_number=numbers,
            target=target,
            episode=episode,
            exposure_days=spread_exposure(
                table.patient, scored, follow_up_days=np.maximum(follow_up, 0.0)
            ),
        )


@dataclass(slots=True)
class _Builder:
    """Collects one patient's readings."""

    patient_id: str
    times: list[FloatArray] = field(default_factory=list)
    types: list[IntArray] = field(default_factory=list)
    values: list[FloatArray] = field(default_factory=list)

    def add(self, name: str, times: FloatArray, *, values: FloatArray) -> None:
        self.times.append(times)
        self.types.append(np.full(times.shape[0], _TYPE[name], dtype=np.int64))
        self.values.append(values)


def _draw_baseline(rng: np.random.Generator, patient: Patient) -> dict[str, float]:
    # A COPD patient "living low" sits at SpO2 89–92 %, the others at 92–95 %.
    copd_spo2 = (89.0, 92.0) if patient.lives_low else (92.0, 95.0)
    ranges = {
        "copd": {
            "spo2": copd_spo2,
            "respiratory_rate": (17, 24),
            "heart_rate": (72, 95),
            "systolic_bp": (115, 150),
            "weight": (50, 90),
            "glucose": (5.2, 6.5),
        },
        "heart_failure": {
            "spo2": (93.0, 97.5),
            "respiratory_rate": (15, 20),
            "heart_rate": (62, 85),
            "systolic_bp": (100, 135),
            "weight": (60, 115),
            "glucose": (5.2, 6.8),
        },
        "diabetes": {
            "spo2": (95.0, 99.0),
            "respiratory_rate": (13, 18),
            "heart_rate": (68, 90),
            "systolic_bp": (125, 160),
            "weight": (70, 120),
            "glucose": (7.0, 11.0),
        },
        "frail": {
            "spo2": (93.0, 97.0),
            "respiratory_rate": (14, 20),
            "heart_rate": (62, 90),
            "systolic_bp": (105, 150),
            "weight": (45, 70),
            "glucose": (5.0, 6.5),
        },
    }[patient.condition]
    baseline = {name: float(rng.uniform(low, high)) for name, (low, high) in ranges.items()}
    baseline["temperature"] = float(rng.normal(36.4 if patient.condition == "frail" else 36.7, 0.2))
    return baseline


def _peak_effects(rng: np.random.Generator, kind: str, *, patient: Patient) -> dict[str, float]:
    """How far each parameter has moved from baseline at the episode's event."""
    u = rng.uniform
    if kind == "copd_exacerbation":
        fever = u(0.8, 1.6) if rng.random() < 0.3 else u(0.0, 0.6)
        oxygen_damping = 0.6 if patient.long_term_oxygen else 1.0
        return {
            "spo2": -u(3, 7) * oxygen_damping,
            "respiratory_rate": u(4, 9),
            "heart_rate": u(10, 25),
            "temperature": fever,
            "systolic_bp": rng.normal(0, 5),
        }
    if kind == "hf_decompensation":
        return {
            "weight": u(2, 5),
            "respiratory_rate": u(3, 7),
            "heart_rate": u(8, 20),
            "spo2": -u(1, 4),
            "systolic_bp": u(-15, 10),
        }
    if kind == "infection":
        effects = {
            "temperature": u(1.0, 2.2),
            "heart_rate": u(15, 30),
            "respiratory_rate": u(3, 8),
            "spo2": -u(1, 4),
            "systolic_bp": -u(5, 30),
        }
        if patient.condition == "diabetes":
            effects["glucose"] = u(2, 6)
        return effects
    return {
        "temperature": u(0.2, 0.8),
        "heart_rate": u(4, 10),
        "spo2": -u(0.5, 2.0),
        "respiratory_rate": u(1, 3),
    }


def _progress(ep: Episode, times: FloatArray) -> FloatArray:
    """0 before the drift, rising to 1 at the event, decaying over the recovery."""
    drift = max(ep.event_h - ep.drift_start_h, 1e-6)
    rising = np.clip((times - ep.drift_start_h) / drift, 0.0, 1.0)
    # Fluid gathers steadily; most other changes start slowly and gather pace.
    shape = rising if ep.kind == "hf_decompensation" else rising**1.5
    recovery = max(ep.recovery_end_h - ep.event_h, 1e-6)
    decay = np.exp(-4.0 * (times - ep.event_h) / recovery)
    after = times > ep.event_h
    return np.where(after, decay, np.where(times >= ep.drift_start_h, shape, 0.0))


def _schedule_episodes(
    rng: np.random.Generator, patient: Patient, *, index: int, days: int
) -> list[Episode]:
    rates = EPISODES_PER_90_DAYS[patient.condition]
    kinds = list(rates)
    per_day = np.asarray([rates[k] for k in kinds]) / 90.0
    episodes: list[Episode] = []
    day = WARM_UP_DAYS
    while True:
        day += float(rng.exponential(1.0 / per_day.sum()))
        kind = kinds[int(rng.choice(len(kinds), p=per_day / per_day.sum()))]
        event = day + float(rng.uniform(*DRIFT_DAYS[kind]))
        if event >= days:
            return episodes
        recovery = event + float(rng.uniform(*RECOVERY_DAYS[kind]))
        episodes.append(Episode(index, kind, day * 24.0, event * 24.0, recovery * 24.0))
        day = recovery + 2.0


def _daily_slots(
    rng: np.random.Generator, days: int, *, per_day: float, hours: tuple[float, ...]
) -> FloatArray:
    """Measurement times (hours from start) at the usual hours with jitter; a rate below one
    per day means a slot is used on that fraction of days."""
    day = np.repeat(np.arange(days, dtype=np.float64), len(hours))
    hour = np.tile(np.asarray(hours, dtype=np.float64), days)
    used = rng.random(day.shape[0]) < min(per_day / len(hours), 1.0)
    jitter = rng.normal(0.0, 0.67, day.shape[0])
    return np.asarray(np.sort(((day + hour / 24.0) * 24.0 + jitter)[used]), dtype=np.float64)


_ROUTINE: dict[str, dict[str, tuple[float, tuple[float, ...]]]] = {
    # device -> condition -> (measurements per day, usual hours)
    "oximeter": {
        "copd": (2.0, (8.0, 19.0)),
        "heart_failure": (1.0, (8.5,)),
        "diabetes": (0.5, (9.0,)),
        "frail": (1.0, (10.0,)),
    },
    "cuff": {
        "copd": (0.3, (8.2,)),
        "heart_failure": (1.0, (8.7,)),
        "diabetes": (1.0, (8.0,)),
        "frail": (1.0, (10.1,)),
    },
    "thermometer": {
        "copd": (0.3, (8.3,)),
        "heart_failure": (0.2, (8.8,)),
        "diabetes": (0.2, (9.1,)),
        "frail": (1.0, (10.2,)),
    },
    "scale": {"heart_failure": (1.0, (7.5,)), "diabetes": (1.0 / 7.0, (7.5,))},
    "glucometer": {"diabetes": (3.0, (7.0, 12.0, 18.0))},
    "breathing": {
        "copd": (1.0, (8.1,)),
        "heart_failure": (0.3, (8.6,)),
        "frail": (2.0 / 7.0, (10.3,)),
    },
    "nurse": {"frail": (2.0 / 7.0, (11.0,))},
}


class _Physiology:
    """True physiological state of one patient at any time: baseline, slow day-to-day
    wander, a daily rhythm and the episodes' effects."""

    def __init__(
        self,
        rng: np.random.Generator,
        patient: Patient,
        *,
        days: int,
        episodes: list[Episode],
    ) -> None:
        self.baseline = _draw_baseline(rng, patient)
        self.wander: dict[str, FloatArray] = {}
        for name, sd in _WANDER_SD.items():
            steps = rng.normal(0.0, sd * np.sqrt(1 - 0.7**2), days + 1)
            series = np.empty(days + 1)
            series[0] = rng.normal(0.0, sd)
            for i in range(1, days + 1):
                series[i] = 0.7 * series[i - 1] + steps[i]
            self.wander[name] = series
        self.effects = [(ep, _peak_effects(rng, ep.kind, patient=patient)) for ep in episodes]

    def at(self, name: str, times: FloatArray) -> FloatArray:
        day_grid = np.arange(len(self.wander[name]), dtype=np.float64) * 24.0 + 12.0
        state = self.baseline[name] + np.interp(times, day_grid, self.wander[name])
        clock = 2 * np.pi * (times % 24.0) / 24.0
        if name == "heart_rate":
            state = state + 3.0 * np.sin(clock - np.pi / 2)
        elif name == "temperature":
            state = state + 0.25 * np.sin(clock - 2 * np.pi / 3)
        for ep, peak in self.effects:
            if name in peak:
                state = state + peak[name] * _progress(ep, times)
        return np.asarray(state, dtype=np.float64)

    def unwell(self, times: FloatArray) -> FloatArray:
        """How far into any episode (0–1) the patient is, for extra and confused readings."""
        level = np.zeros(times.shape[0])
        for ep, _ in self.effects:
            level = np.maximum(level, _progress(ep, times))
        return level


def _measure_patient(
    rng: np.random.Generator, patient: Patient, *, episodes: list[Episode], days: int
) -> _Builder:
    body = _Physiology(rng, patient, days=days, episodes=episodes)
    out = _Builder(patient.patient_id)
    miss_rate = float(rng.uniform(0.03, 0.25))
    away = np.zeros(days, dtype=np.bool_)
    for start in np.flatnonzero(rng.random(days) < 0.01):
        away[start : start + int(rng.integers(2, 7))] = True

    def keep(times: FloatArray) -> FloatArray:
        day = np.clip((times // 24).astype(np.int64), 0, days - 1)
        measured = (rng.random(times.shape[0]) >= miss_rate) & ~away[day]
        inside = (times >= 0) & (times < days * 24.0)
        return times[measured & inside]

    def slots(device: str) -> FloatArray:
        plan = _ROUTINE[device].get(patient.condition)
        if plan is None:
            return np.zeros(0)
        return keep(_daily_slots(rng, days, per_day=plan[0], hours=plan[1]))

    def noisy(name: str, times: FloatArray, *, sd: float, decimals: int) -> FloatArray:
        return np.round(body.at(name, times) + rng.normal(0.0, sd, times.shape[0]), decimals)

    # Oximeter: SpO2 and pulse at one timestamp, now and then a poor-perfusion artefact, and
    # an extra check on days the patient feels unwell.
    extra = keep(_daily_slots(rng, days, per_day=1.0, hours=(15.0,)))
    extra = extra[rng.random(extra.shape[0]) < body.unwell(extra)]
    oximetry = np.sort(np.concatenate((slots("oximeter"), extra)))
    artefact = rng.random(oximetry.shape[0]) < 0.02
    spo2 = noisy("spo2", oximetry, sd=1.0, decimals=0) - np.where(artefact, rng.uniform(4, 10), 0.0)
    out.add("spo2", oximetry, values=np.clip(spo2, 70.0, 100.0))
    out.add("heart_rate", oximetry, values=noisy("heart_rate", oximetry, sd=2.5, decimals=0))
    if patient.condition == "copd":
        asked = oximetry[rng.random(oximetry.shape[0]) < 0.7]
        out.add("on_oxygen", asked, values=np.full(asked.shape[0], float(patient.long_term_oxygen)))

    cuff = slots("cuff") + 0.05  # a few minutes after the oximeter: a separate timestamp
    systolic = noisy("systolic_bp", cuff, sd=6.0, decimals=0)
    out.add("systolic_bp", cuff, values=systolic)
    out.add(
        "diastolic_bp", cuff, values=np.round(systolic * 0.58 + rng.normal(0, 4, cuff.shape[0]))
    )
    out.add("heart_rate", cuff, values=noisy("heart_rate", cuff, sd=3.0, decimals=0))

    fever_checks = extra + 0.1
    thermometry = np.sort(np.concatenate((slots("thermometer"), fever_checks)))
    out.add(
        "temperature", thermometry, values=noisy("temperature", thermometry, sd=0.15, decimals=1)
    )
    weighing = slots("scale")
    out.add("weight", weighing, values=noisy("weight", weighing, sd=0.25, decimals=1))
    glucose = slots("glucometer")
    out.add(
        "glucose", glucose, values=np.maximum(noisy("glucose", glucose, sd=0.5, decimals=1), 2.0)
    )
    breathing = slots("breathing")
    out.add(
        "respiratory_rate",
        breathing,
        values=np.maximum(noisy("respiratory_rate", breathing, sd=1.5, decimals=0), 6),
    )

    visits = slots("nurse")
    confused = (rng.random(visits.shape[0]) < 0.5) & (body.unwell(visits) > 0.7)
    is_infected = np.zeros(visits.shape[0], dtype=np.bool_)
    for ep, _ in body.effects:
        is_infected |= (
            (ep.kind == "infection") & (visits >= ep.drift_start_h) & (visits <= ep.event_h)
        )
    acvpu = np.where(confused & is_infected, CONSCIOUSNESS_LEVELS.index("C"), 0)
    out.add("consciousness", visits, values=acvpu.astype(np.float64))
    return out


def _arrival_delay_h(rng: np.random.Generator, count: int) -> FloatArray:
    """Most readings arrive within minutes; a gateway offline delays some by hours or days."""
    kind = rng.random(count)
    return np.where(
        kind < 0.88,
        rng.uniform(0.0, 10.0 / 60.0, count),
        np.where(kind < 0.98, rng.uniform(1.0, 12.0, count), rng.uniform(12.0, 72.0, count)),
    )


def generate_cohort(spec: CohortSpec | None = None) -> SyntheticCohort:
    """The cohort for `spec` (the same spec always gives the same cohort)."""
    spec = spec or CohortSpec()
    rng = np.random.default_rng(spec.seed)
    origin_h = spec.start.timestamp() / 3600.0
    patients: list[Patient] = []
    episodes: list[Episode] = []
    builders: list[_Builder] = []
    for index in range(spec.patients):
        number = index + 1
        condition = CONDITIONS[int(rng.choice(len(CONDITIONS), p=CONDITION_SHARE))]
        low_living = condition == "copd" and rng.random() < 0.45
        patient = Patient(
            number=number,
            patient_id=f"s{number:05d}",
            condition=condition,
            lives_low=low_living,
            spo2_scale=2 if low_living and rng.random() < 0.8 else 1,
            long_term_oxygen=low_living and rng.random() < 0.5,
        )
        mine = _schedule_episodes(rng, patient, index=index, days=spec.days)
        body_rng = np.random.default_rng([spec.seed, number])
        builder = _measure_patient(body_rng, patient, episodes=mine, days=spec.days)
        patients.append(patient)
        episodes.extend(mine)
        builders.append(builder)

    times = np.concatenate([t for b in builders for t in b.times])
    types = np.concatenate([t for b in builders for t in b.types])
    values = np.concatenate([v for b in builders for v in b.values])
    ids = np.concatenate(
        [np.full(sum(t.shape[0] for t in b.times), b.patient_id) for b in builders]
    )
    delay = _arrival_delay_h(rng, times.shape[0])
    arrival = np.argsort(times + delay, kind="stable")
    readings = LongReadings(
        patient_id=ids[arrival].astype(np.str_),
        time_h=times[arrival] + origin_h,
        type_index=types[arrival],
        value=values[arrival],
    )
    shifted = [
        Episode(
            ep.patient,
            ep.kind,
            ep.drift_start_h + origin_h,
            ep.event_h + origin_h,
            ep.recovery_end_h + origin_h,
        )
        for ep in episodes
    ]
    return SyntheticCohort(
        spec=spec,
        patients=tuple(patients),
        episodes=tuple(shifted),
        readings=readings,
        received_h=(times + delay)[arrival] + origin_h,
    )


def rfc3339(hours_since_epoch: float) -> str:
    """A UTC timestamp to the second, e.g. 2025-01-06T08:00:00Z."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hours_since_epoch)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_cohort(cohort: SyntheticCohort, directory: Path) -> list[Path]:
    """Write readings.csv and patients.csv (the `naervagt score` inputs; readings in arrival
    order), cohort.csv (conditions) and episodes.csv into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    readings = directory / "readings.csv"
    with readings.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["patient_id", "time", "type", "value"])
        r = cohort.readings
        for pid, t, kind, value in zip(
            r.patient_id.tolist(),
            r.time_h.tolist(),
            r.type_index.tolist(),
            r.value.tolist(),
            strict=True,
        ):
            name = VALUE_COLUMNS[kind]
            if name == "consciousness":
                text = CONSCIOUSNESS_LEVELS[int(value)]
            elif name == "on_oxygen":
                text = "true" if value else "false"
            else:
                text = f"{value:g}"
            writer.writerow([pid, rfc3339(t), name, text])
    patients = directory / "patients.csv"
    with patients.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["patient_id", "spo2_scale"])
        writer.writerows([p.patient_id, p.spo2_scale] for p in cohort.patients)
    described = directory / "cohort.csv"
    with described.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["patient_id", "condition", "lives_low", "long_term_oxygen"])
        writer.writerows(
            [p.patient_id, p.condition, p.lives_low, p.long_term_oxygen] for p in cohort.patients
        )
    episodes = directory / "episodes.csv"
    with episodes.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["patient_id", "kind", "drift_start", "event", "recovery_end"])
        for ep in cohort.episodes:
            writer.writerow(
                [
                    cohort.patients[ep.patient].patient_id,
                    ep.kind,
                    rfc3339(ep.drift_start_h),
                    rfc3339(ep.event_h),
                    rfc3339(ep.recovery_end_h),
                ]
            )
    return [readings, patients, described, episodes]
