"""`naervagt model train|evaluate|synth` and `naervagt score`: the command-line entry points
of the model package. Each returns a process exit code (2 for bad input or usage)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from services.alerts.model.artifact import (
    ARTIFACT_DIR,
    ArtifactError,
    latest_artifact,
    load_model,
    save_model,
)
from services.alerts.model.card import write_evaluation, write_model_card
from services.alerts.model.evaluate import (
    RESAMPLES,
    SEED,
    compare,
    decide,
    format_comparison,
    score_held_out,
)
from services.alerts.model.features import compute_features, news2_of_latest
from services.alerts.model.physionet import PhysionetFormatError, load_physionet
from services.alerts.model.score_csv import BadInput, read_patients, read_readings, write_scores
from services.alerts.model.synthetic import CohortSpec, generate_cohort, write_cohort
from services.alerts.model.table import table_from_long
from services.alerts.model.train import MODEL_VERSION, train_on

DEFAULT_WINDOW_MINUTES = 1440


def _run(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits on --help and on usage errors
        return exit_.code if isinstance(exit_.code, int) else 2


def _model_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="naervagt model", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="fit the model on the real training split")
    train.add_argument("--data", type=Path, help="PhysioNet 2019 .psv.gz (default: shared copy)")
    train.add_argument("--out", type=Path, default=ARTIFACT_DIR, help="directory for the file")
    train.add_argument("--version", default=MODEL_VERSION)
    evaluate = commands.add_parser("evaluate", help="compare the model with NEWS2 on held-out data")
    evaluate.add_argument("--data", type=Path, help="PhysioNet 2019 .psv.gz")
    evaluate.add_argument("--model", type=Path, help="model file (default: newest shipped)")
    evaluate.add_argument("--resamples", type=int, default=RESAMPLES)
    evaluate.add_argument("--seed", type=int, default=SEED)
    evaluate.add_argument("--no-synthetic", action="store_true", help="skip the synthetic cohort")
    evaluate.add_argument(
        "--write",
        action="store_true",
        help="write the evaluation summary and MODEL_CARD.md next to the model file",
    )
    synth = commands.add_parser("synth", help="write the synthetic home cohort as CSV files")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--patients", type=int, default=CohortSpec().patients)
    synth.add_argument("--days", type=int, default=CohortSpec().days)
    synth.add_argument("--seed", type=int, default=CohortSpec().seed)
    return parser


def model_main(argv: list[str], *, out: TextIO | None = None) -> int:
    """Entry point of `naervagt model …`."""
    stdout = out or sys.stdout
    parsed = _run(_model_parser(), argv)
    if isinstance(parsed, int):
        return parsed

    def say(text: str) -> None:
        print(text, file=stdout, flush=True)

    try:
        if parsed.command == "train":
            return _train(parsed, say)
        if parsed.command == "evaluate":
            return _evaluate(parsed, say, argv=argv)
        return _synth(parsed, say)
    except (OSError, PhysionetFormatError, ArtifactError) as error:
        print(f"naervagt model: {error}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    started = time.perf_counter()
    windows = load_physionet(args.data)
    say(f"loaded {len(windows.table)} windows of {len(windows.table.patient_ids)} patients")
    model = train_on(windows, version=args.version)
    path = save_model(model, args.out)
    size_kb = path.stat().st_size / 1024
    say(f"trained on {model.trained_on}")
    say(f"wrote {path} ({size_kb:.0f} KiB) in {time.perf_counter() - started:.0f} s")
    return 0


def _evaluate(args: argparse.Namespace, say: Callable[[str], None], *, argv: list[str]) -> int:
    path = args.model or latest_artifact()
    model = load_model(path)
    say(
        f"model {model.version} ({path.name}), {args.resamples} patient resamples, seed {args.seed}"
    )
    real = compare(
        score_held_out(load_physionet(args.data), model),
        resamples=args.resamples,
        seed=args.seed,
    )
    comparisons = [real]
    synthetic = None
    if not args.no_synthetic:
        synthetic = compare(
            score_held_out(generate_cohort().windows(), model),
            resamples=args.resamples,
            seed=args.seed,
        )
        comparisons.append(synthetic)
    verdict = decide(real, synthetic)
    for comparison in comparisons:
        say("")
        say(format_comparison(comparison))
    say("")
    say(
        "verdict: "
        + (
            "the model is the default"
            if verdict.model_is_default
            else "NEWS2 plus personal baselines stays the default"
        )
    )
    for reason in verdict.reasons:
        say(f"  - {reason}")
    if args.write:
        command = "naervagt model " + " ".join(argv)
        summary = write_evaluation(
            path, model=model, comparisons=comparisons, verdict=verdict, command=command
        )
        card = write_model_card(
            path.parent, model=model, comparisons=comparisons, verdict=verdict, command=command
        )
        say(f"wrote {summary} and {card}")
    return 0


def _synth(args: argparse.Namespace, say: Callable[[str], None]) -> int:
    spec = CohortSpec(patients=args.patients, days=args.days, seed=args.seed)
    for written in write_cohort(generate_cohort(spec), args.out):
        say(f"wrote {written}")
    return 0


def _score_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="naervagt score",
        description="Score every distinct (patient, time) of a readings file with NEWS2 and "
        "the deterioration model.",
    )
    parser.add_argument("--input", type=Path, required=True, help="patient_id,time,type,value")
    parser.add_argument("--output", type=Path, required=True, help="CSV to write ('-': stdout)")
    parser.add_argument("--patients", type=Path, help="patient_id,spo2_scale (Scale 2 patients)")
    parser.add_argument(
        "--window",
        type=int,
        default=DEFAULT_WINDOW_MINUTES,
        help="minutes a value stays the latest for NEWS2 (default 1440)",
    )
    parser.add_argument("--model", type=Path, help="model file (default: newest shipped)")
    return parser


def score_main(argv: list[str]) -> int:
    """Entry point of `naervagt score`.

    Each output row scores the window ending at that row's time: the latest value of each
    parameter within --window minutes (inclusive). `risk` always uses the model's own
    feature definition (24 h window), whatever --window says.
    """
    parsed = _run(_score_parser(), argv)
    if isinstance(parsed, int):
        return parsed
    if parsed.window <= 0:
        print("naervagt score: --window must be a positive number of minutes", file=sys.stderr)
        return 2
    try:
        scales = read_patients(parsed.patients) if parsed.patients else {}
        readings = read_readings(parsed.input)
    except BadInput as error:
        print(f"naervagt score: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"naervagt score: cannot read input: {error}", file=sys.stderr)
        return 2
    try:
        model = load_model(parsed.model)
    except (ArtifactError, OSError) as error:
        print(f"naervagt score: cannot load the model: {error}", file=sys.stderr)
        return 1

    table, first = table_from_long(readings.readings, spo2_scale=scales)
    scores = news2_of_latest(table, window_hours=parsed.window / 60.0)
    risk = model.predict_proba(compute_features(table).matrix)
    time_text = [readings.time_text[i] for i in first.tolist()]
    if str(parsed.output) == "-":
        write_scores(sys.stdout, table=table, time_text=time_text, scores=scores, risk=risk)
        return 0
    try:
        with parsed.output.open("w", newline="", encoding="utf-8") as stream:
            write_scores(stream, table=table, time_text=time_text, scores=scores, risk=risk)
    except OSError as error:
        print(f"naervagt score: cannot write output: {error}", file=sys.stderr)
        return 1
    return 0
