"""The model card and the evaluation summary written next to a model file, so the verdict
(`model_is_default`) travels with the artifact as data."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

from services.alerts.model.artifact import DeteriorationModel, evaluation_path
from services.alerts.model.evaluate import (
    NEWS2_ALERT_THRESHOLD,
    Comparison,
    Verdict,
    format_comparison,
)
from services.alerts.model.features import FEATURES
from services.alerts.model.train import HYPERPARAMETERS

CARD_NAME = "MODEL_CARD.md"


def write_evaluation(
    model_path: Path,
    *,
    model: DeteriorationModel,
    comparisons: list[Comparison],
    verdict: Verdict,
    command: str,
) -> Path:
    """deterioration-<version>.evaluation.json: the verdict and every figure behind it."""
    path = evaluation_path(model_path)
    summary = {
        "model_version": model.version,
        "model_is_default": verdict.model_is_default,
        "default_when_not": "NEWS2 plus personal baselines",
        "reasons": list(verdict.reasons),
        "evaluated": datetime.now(UTC).date().isoformat(),
        "command": command,
        "comparisons": [c.as_dict() for c in comparisons],
    }
    path.write_text(json.dumps(_finite(summary), indent=2) + "\n", encoding="utf-8")
    return path


def _finite(value: object) -> object:
    """JSON has no NaN: an undefined figure (e.g. no positives in a set) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def write_model_card(
    directory: Path,
    *,
    model: DeteriorationModel,
    comparisons: list[Comparison],
    verdict: Verdict,
    command: str,
) -> Path:
    used = {model.features[i] for i in model.used}
    unused = [name for name in FEATURES if name not in used]
    tables = "\n\n".join(format_comparison(c) for c in comparisons)
    decision = (
        "**The model is the default risk score.**"
        if verdict.model_is_default
        else "**The model is not the default.** Alerts use NEWS2 plus personal baselines; the "
        "model's risk is shown for information only."
    )
    settings = ", ".join(f"{k}={v}" for k, v in HYPERPARAMETERS.items())
    text = f"""# Model card: Nærvagt deterioration model {model.version}

File: `deterioration-{model.version}.skops` (skops format; loads only trusted types).
Evaluated: {datetime.now(UTC).date().isoformat()}. Details: docs/model.md.

## Verdict

{decision}

{chr(10).join(f"- {reason}" for reason in verdict.reasons)}

Rule: the model is the default only if, on the held-out real data, the 95 % bootstrap
intervals of the paired differences model − NEWS2 lie above zero for both AUROC and
sensitivity at NEWS2's alert burden (NEWS2 ≥ {NEWS2_ALERT_THRESHOLD}), and it is not clearly
worse than NEWS2 on the held-out synthetic home cohort. The verdict is stored as
`model_is_default` in `deterioration-{model.version}.evaluation.json`.

## Intended use

A probability that a monitored patient is deteriorating, shown beside NEWS2 and the personal
baseline with the features that drive it, to help a nurse or doctor decide whom to look at
first. It is decision support, not a diagnosis, and never the only reason to act or not act.
Not for use on children, in pregnancy, or as a substitute for clinical assessment.

## Training data

{model.trained_on}.

PhysioNet/Computing in Cardiology Challenge 2019, training set B (Reyna et al., Crit Care Med
2020; CC BY 4.0): hourly ICU vital signs. Only the training split is used: patients whose
number is divisible by 5 are held out and never seen in training or tuning. Target: sepsis
onset within the next 6 hours (hours after onset excluded). The synthetic home cohort is not
used for training (its labels are the generator's own rules).

Model: scikit-learn HistGradientBoostingClassifier ({settings}, random_state=0), chosen with
its settings on a validation fold of the training split (patient number ≡ 1 mod 5).

## Features

{len(FEATURES)} window features (docs/model.md lists them): latest values within 24 h, NEWS2
and its components, robust deviations from the patient's own earlier measurements
(median/MAD), slopes over 24 h and 72 h, and missing-value flags.
Not used by this model because the training data never contain them: {", ".join(unused) or "none"}.

Explanations: single-feature occlusion — the change in log-odds when one feature is set to
its training median.

## Evaluation (held-out patients)

Command: `{command}`

```
{tables}
```

Intervals: 95 % percentile bootstrap over patients (fixed seed); differences are paired.
Alert burden: windows at or over threshold per patient-day of follow-up; the model threshold
gives the same number of alerts as NEWS2 ≥ {NEWS2_ALERT_THRESHOLD} on the same set (labels unused).

## Limits

- ICU physiology, charted hourly, is not home monitoring: home readings are sparser,
  consciousness is rarely recorded and oxygen appears only as a yes/no answer. The synthetic
  cohort tests the sampling pattern but its physiology and labels are invented.
- Sepsis within 6 hours is one kind of deterioration; COPD exacerbations and heart-failure
  decompensation develop over days and show signs (weight) the ICU data lack.
- Probabilities are calibrated to ICU sepsis prevalence (about 1 % of hours), not to a home
  population; read them as a ranking.
- Weight, glucose and consciousness cannot influence this model.
"""
    path = directory / CARD_NAME
    path.write_text(text, encoding="utf-8")
    return path
