"""Scoring throughput: NEWS2 in batch, window features, and deterioration-model inference.

Run: .venv/bin/python bench/scoring.py [--runs 7]
Prints the median over several runs of each figure (aims: NEWS2 ≥ 1,000,000 rows/s on one
core, model ≥ 100,000 windows/s).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from services.alerts.domain.news2 import score_batch
from services.alerts.model.artifact import load_model
from services.alerts.model.features import compute_features
from services.alerts.model.synthetic import CohortSpec, generate_cohort


def median_rate(work: Callable[[], object], items: int, runs: int) -> float:
    """Items per second, the median over `runs` timed calls after one warm-up call."""
    work()
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        rates.append(items / (time.perf_counter() - started))
    return statistics.median(rates)


def bench_news2(runs: int, rows: int = 1_000_000) -> float:
    rng = np.random.default_rng(0)

    def with_gaps(values: np.ndarray) -> np.ndarray:
        return np.where(rng.random(rows) < 0.1, np.nan, values)

    columns = {
        "respiratory_rate": with_gaps(rng.normal(18, 4, rows).round()),
        "spo2": with_gaps(rng.normal(95, 3, rows).round()),
        "on_oxygen": with_gaps((rng.random(rows) < 0.2).astype(float)),
        "systolic_bp": with_gaps(rng.normal(125, 20, rows).round()),
        "heart_rate": with_gaps(rng.normal(80, 15, rows).round()),
        "consciousness": with_gaps(rng.choice([0.0, 0.0, 0.0, 1.0, 2.0], rows)),
        "temperature": with_gaps(rng.normal(37, 0.7, rows).round(1)),
        "spo2_scale": rng.choice([1.0, 2.0], rows, p=[0.9, 0.1]),
    }
    return median_rate(lambda: score_batch(**columns), rows, runs)


def bench_features_and_model(runs: int, windows: int = 200_000) -> tuple[float, float, float]:
    cohort = generate_cohort(CohortSpec(patients=120, days=60, seed=1)).windows()
    table_rows = len(cohort.table)
    features_rate = median_rate(lambda: compute_features(cohort.table), table_rows, runs)
    matrix = compute_features(cohort.table).matrix
    matrix = np.tile(matrix, (windows // matrix.shape[0] + 1, 1))[:windows]
    model = load_model()
    with threadpool_limits(limits=1):
        one_thread = median_rate(lambda: model.predict_proba(matrix), windows, runs)
    all_threads = median_rate(lambda: model.predict_proba(matrix), windows, runs)
    return features_rate, one_thread, all_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    news2_rate = bench_news2(runs)
    print(f"NEWS2 score_batch:             {news2_rate:>12,.0f} rows/s (1 core)")
    features_rate, one_thread, all_threads = bench_features_and_model(runs)
    print(f"window features:               {features_rate:>12,.0f} windows/s")
    print(f"model predict_proba, 1 thread: {one_thread:>12,.0f} windows/s")
    print(f"model predict_proba, all:      {all_threads:>12,.0f} windows/s")
    print(f"(median of {runs} runs each)")


if __name__ == "__main__":
    main()
