"""Held-out evaluation of the model against NEWS2: discrimination with patient-level bootstrap
intervals, and sensitivity at the alert burden of NEWS2 ≥ 5.

Definitions (docs/model.md):

- AUROC and AUPRC over the held-out windows, NEWS2 ranked by its total;
- an alert is a window whose score reaches the threshold; alert burden is alerts per
  patient-day of follow-up (an alert engine that keeps an alert open would send fewer, for
  both scores alike);
- the reference burden is that of NEWS2 ≥ 5 ("medium"); the model's threshold is set so that it
  flags the same number of windows on the same set. This uses only the score distribution,
  never the labels;
- sensitivity per window (share of positive windows flagged) and per episode (share of
  deterioration episodes with at least one flagged window before the event);
- 95 % intervals are percentiles of a bootstrap that resamples patients (not windows) with a
  fixed seed; differences are paired (same resample for both scores).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from services.alerts.model.artifact import DeteriorationModel
from services.alerts.model.dataset import POSITIVE, LabelledWindows
from services.alerts.model.features import compute_features
from services.alerts.model.table import BoolArray, FloatArray, IntArray

NEWS2_ALERT_THRESHOLD = 5
RESAMPLES = 200
SEED = 20190
CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class ScoredWindows:
    """Scored held-out windows: target 0/1, patient index, episode (-1 if none), exposure."""

    name: str
    target: IntArray
    patient: IntArray
    episode: IntArray
    exposure_days: FloatArray
    model: FloatArray
    news2: FloatArray


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float

    def excludes_zero_above(self) -> bool:
        return self.low > 0.0


@dataclass(frozen=True, slots=True)
class Comparison:
    dataset: str
    patients: int
    windows: int
    positive_windows: int
    episodes: int
    patient_days: float
    auroc_model: Interval
    auroc_news2: Interval
    auroc_difference: Interval
    auprc_model: Interval
    auprc_news2: Interval
    auprc_difference: Interval
    model_threshold: float
    alerts_per_patient_day_news2: float
    alerts_per_patient_day_model: float
    sensitivity_model: Interval
    sensitivity_news2: Interval
    sensitivity_difference: Interval
    episode_sensitivity_model: Interval
    episode_sensitivity_news2: Interval

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Verdict:
    model_is_default: bool
    reasons: tuple[str, ...]


def score_held_out(windows: LabelledWindows, model: DeteriorationModel) -> ScoredWindows:
    """Features, model risk and NEWS2 for the held-out patients' scored windows."""
    held_out = windows.held_out_rows()
    table = windows.table.take(held_out)
    features = compute_features(table)
    target = windows.target[held_out]
    scored = target >= 0
    _, patient = np.unique(table.patient[scored], return_inverse=True)
    return ScoredWindows(
        name=windows.name,
        target=(target[scored] == POSITIVE).astype(np.int64),
        patient=patient.astype(np.int64),
        episode=windows.episode[held_out][scored],
        exposure_days=windows.exposure_days[held_out][scored],
        model=model.predict_proba(features.matrix[scored]),
        news2=features.news2.total[scored].astype(np.float64),
    )


def threshold_for_count(scores: FloatArray, count: int) -> float:
    """The threshold at which `scores >= threshold` flags `count` windows (ties may add)."""
    if count <= 0:
        return float(np.inf)
    ordered = np.sort(scores)[::-1]
    return float(ordered[min(count, ordered.shape[0]) - 1])


def _weighted_mean(values: FloatArray, weights: FloatArray) -> float:
    total = float(weights.sum())
    return float((values * weights).sum() / total) if total > 0 else float("nan")


def _episode_caught(episode: IntArray, target: IntArray, *, flagged: BoolArray) -> FloatArray:
    """Per episode (indexed 0..max), 1 if any of its positive windows is flagged."""
    size = int(episode.max()) + 1 if episode.size and episode.max() >= 0 else 0
    positive = (episode >= 0) & (target == 1)
    caught = np.zeros(size)
    np.maximum.at(caught, episode[positive], flagged[positive].astype(np.float64))
    return caught


def compare(
    scored: ScoredWindows,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    news2_threshold: int = NEWS2_ALERT_THRESHOLD,
) -> Comparison:
    """Model and NEWS2 side by side on `scored`, with patient-bootstrap intervals."""
    news2_flag = scored.news2 >= news2_threshold
    model_threshold = threshold_for_count(scored.model, int(news2_flag.sum()))
    model_flag = scored.model >= model_threshold

    positive_episode = (scored.episode >= 0) & (scored.target == 1)
    episode_ids = np.unique(scored.episode[positive_episode])
    episode_patient = np.zeros(
        int(scored.episode.max()) + 1 if scored.episode.size else 0, dtype=np.int64
    )
    episode_patient[scored.episode[positive_episode]] = scored.patient[positive_episode]
    caught_model = _episode_caught(scored.episode, scored.target, flagged=model_flag)[episode_ids]
    caught_news2 = _episode_caught(scored.episode, scored.target, flagged=news2_flag)[episode_ids]
    episode_owner = episode_patient[episode_ids]

    def metrics(row_weight: FloatArray, patient_weight: FloatArray) -> FloatArray:
        keep = row_weight > 0
        y, w = scored.target[keep], row_weight[keep]
        positives = y.sum() > 0 and (y == 0).sum() > 0
        values = []
        for score in (scored.model[keep], scored.news2[keep]):
            auroc = roc_auc_score(y, score, sample_weight=w) if positives else np.nan
            auprc = average_precision_score(y, score, sample_weight=w) if positives else np.nan
            values += [auroc, auprc]
        values += [
            _weighted_mean(model_flag[keep].astype(np.float64), (w * y).astype(np.float64)),
            _weighted_mean(news2_flag[keep].astype(np.float64), (w * y).astype(np.float64)),
            _weighted_mean(caught_model, patient_weight[episode_owner]),
            _weighted_mean(caught_news2, patient_weight[episode_owner]),
        ]
        return np.asarray(values, dtype=np.float64)

    patients = int(scored.patient.max()) + 1 if scored.patient.size else 0
    point = metrics(np.ones(scored.target.shape[0]), np.ones(patients))
    rng = np.random.default_rng(seed)
    draws = np.empty((resamples, point.shape[0]))
    for b in range(resamples):
        counts = np.bincount(rng.integers(0, patients, patients), minlength=patients)
        weight = counts.astype(np.float64)
        draws[b] = metrics(weight[scored.patient], weight)

    tail = (1.0 - CONFIDENCE) / 2.0 * 100.0

    def interval(estimate: float, samples: FloatArray) -> Interval:
        finite = samples[np.isfinite(samples)]
        if finite.size == 0:
            return Interval(estimate, float("nan"), float("nan"))
        low, high = np.percentile(finite, [tail, 100.0 - tail])
        return Interval(float(estimate), float(low), float(high))

    def pick(i: int) -> Interval:
        return interval(float(point[i]), draws[:, i])

    def difference(i: int, j: int) -> Interval:
        return interval(float(point[i] - point[j]), draws[:, i] - draws[:, j])

    patient_days = float(scored.exposure_days.sum())

    def per_day(flag: BoolArray) -> float:
        return float(flag.sum()) / patient_days if patient_days > 0 else float("nan")

    return Comparison(
        dataset=scored.name,
        patients=patients,
        windows=int(scored.target.shape[0]),
        positive_windows=int(scored.target.sum()),
        episodes=int(episode_ids.shape[0]),
        patient_days=patient_days,
        auroc_model=pick(0),
        auroc_news2=pick(2),
        auroc_difference=difference(0, 2),
        auprc_model=pick(1),
        auprc_news2=pick(3),
        auprc_difference=difference(1, 3),
        model_threshold=model_threshold,
        alerts_per_patient_day_news2=per_day(news2_flag),
        alerts_per_patient_day_model=per_day(model_flag),
        sensitivity_model=pick(4),
        sensitivity_news2=pick(5),
        sensitivity_difference=difference(4, 5),
        episode_sensitivity_model=pick(6),
        episode_sensitivity_news2=pick(7),
    )


def decide(real: Comparison, synthetic: Comparison | None = None) -> Verdict:
    """The model becomes the default only if, on the held-out real data, both its AUROC and its
    sensitivity at NEWS2's alert burden beat NEWS2 with 95 % intervals of the paired
    differences above zero; and, where the synthetic home cohort was evaluated, it is not
    clearly worse there (interval of the AUROC difference not wholly below zero)."""
    reasons: list[str] = []
    auroc_wins = real.auroc_difference.excludes_zero_above()
    sensitivity_wins = real.sensitivity_difference.excludes_zero_above()
    reasons.append(
        f"real data: AUROC difference {_signed(real.auroc_difference)}"
        + (" — the model is better" if auroc_wins else " — not shown better than NEWS2")
    )
    reasons.append(
        f"real data: sensitivity difference at equal burden "
        f"{_signed(real.sensitivity_difference)}"
        + (" — the model is better" if sensitivity_wins else " — not shown better than NEWS2")
    )
    home_ok = True
    if synthetic is not None:
        home_ok = not synthetic.auroc_difference.high < 0.0
        reasons.append(
            f"synthetic home cohort: AUROC difference {_signed(synthetic.auroc_difference)}"
            + (" — no clear harm" if home_ok else " — the model is clearly worse than NEWS2")
        )
    return Verdict(
        model_is_default=auroc_wins and sensitivity_wins and home_ok, reasons=tuple(reasons)
    )


def _signed(value: Interval) -> str:
    return f"{value.estimate:+.3f} (95% CI {value.low:+.3f} to {value.high:+.3f})"


def _ci(value: Interval, digits: int = 3) -> str:
    return f"{value.estimate:.{digits}f} ({value.low:.{digits}f}–{value.high:.{digits}f})"


def format_comparison(c: Comparison) -> str:
    """A plain-text table for one data set."""
    rows = [
        ("AUROC", _ci(c.auroc_model), _ci(c.auroc_news2), _signed(c.auroc_difference)),
        ("AUPRC", _ci(c.auprc_model), _ci(c.auprc_news2), _signed(c.auprc_difference)),
        (
            "alerts per patient-day",
            f"{c.alerts_per_patient_day_model:.3f}",
            f"{c.alerts_per_patient_day_news2:.3f}",
            "",
        ),
        (
            "sensitivity (windows)",
            _ci(c.sensitivity_model),
            _ci(c.sensitivity_news2),
            _signed(c.sensitivity_difference),
        ),
        (
            "sensitivity (episodes)",
            _ci(c.episode_sensitivity_model),
            _ci(c.episode_sensitivity_news2),
            "",
        ),
    ]
    header = ("measure", "model", f"NEWS2 (alert ≥ {NEWS2_ALERT_THRESHOLD})", "model − NEWS2")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
    lines = [
        f"{c.dataset}: {c.patients} held-out patients, {c.windows} windows "
        f"({c.positive_windows} positive, {c.episodes} episodes), "
        f"{c.patient_days:.0f} patient-days; model alert threshold {c.model_threshold:.4f}",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
