"""Subcommands of the processor service: process, train, train-shipped."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_commands(sub) -> None:
    """Register this service's subcommands on the aml-miner parser."""
    process = sub.add_parser("process", help="score, rank and publish one date from input/{date}/")
    process.add_argument("--input-dir", type=Path, help="input root (default: INPUT_DIR)")
    process.add_argument("--output-dir", type=Path, help="output root (default: OUTPUT_DIR)")
    process.add_argument("--processing-date", required=True, help="YYYY-MM-DD")
    process.add_argument("--models-dir", type=Path, help="models folder (default: MODELS_DIR)")
    process.add_argument("--model-version", help="use this X.Y.Z of all three models "
                                                 "(default: the highest of each)")
    process.add_argument("--engine", action="append", type=_engine, metavar="[MODEL=]ENGINE",
                         help="compiled or lightgbm, for all models or one (repeat for each; "
                              "default: PREDICT_ENGINE)")
    process.set_defaults(func=run_process)

    train = sub.add_parser("train", help="train the three models on labelled input dates")
    train.add_argument("--input-dir", type=Path, help="input root (default: INPUT_DIR)")
    train.add_argument("--dates", nargs="+", required=True, metavar="DATE",
                       help="input dates to learn from; the last one is held out for validation")
    train.add_argument("--models-dir", type=Path, help="where to write (default: MODELS_DIR)")
    train.add_argument("--version", default="1.0.0", help="model version X.Y.Z (default 1.0.0)")
    train.add_argument("--report-dir", type=Path,
                       help="report folder (default: MODELS_DIR/report)")
    train.set_defaults(func=run_train)

    shipped = sub.add_parser("train-shipped", help="rebuild the shipped v1.0.0 models from the "
                                                   "fixed generated sample dates")
    shipped.add_argument("--models-dir", type=Path, help="where to write (default: MODELS_DIR)")
    shipped.add_argument("--work-dir", type=Path, help="keep the generated dates here "
                                                       "(default: a temporary folder)")
    shipped.set_defaults(func=run_train_shipped)


def _engine(text: str) -> tuple[str | None, str]:
    """--engine ENGINE or --engine MODEL=ENGINE, as (model or None, engine)."""
    from services.processor.models import MODEL_NAMES
    from services.processor.predictor import ENGINES

    name, _, engine = text.rpartition("=")
    if engine not in ENGINES:
        raise argparse.ArgumentTypeError(f"{engine!r} is not one of {', '.join(ENGINES)}")
    if name and name not in MODEL_NAMES:
        raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(MODEL_NAMES)}")
    return name or None, engine


def engines(choices: list[tuple[str | None, str]] | None, default: str) -> dict[str, str]:
    """The engine of each model from --engine choices: a later choice overrides an earlier
    one, and a model no choice names gets `default`."""
    from services.processor.models import MODEL_NAMES

    chosen = dict.fromkeys(MODEL_NAMES, default)
    for name, engine in choices or ():
        chosen.update({name: engine} if name else dict.fromkeys(MODEL_NAMES, engine))
    return chosen


def _expected_errors() -> tuple[type[Exception], ...]:
    """Errors with a message that names the cause: reported without a traceback."""
    from services.processor.dataset import TrainingError
    from services.processor.models import ModelError
    from services.processor.outputs import ScoreError
    from shared.contract import ContractError
    from shared.settings import SettingsError
    from shared.storage import InvalidDate

    return ContractError, InvalidDate, SettingsError, ModelError, ScoreError, TrainingError, OSError


def _fail(command: str, exc: Exception) -> int:
    print(f"aml-miner {command}: error: {exc}", file=sys.stderr)
    return 1


def run_process(args: argparse.Namespace, settings) -> int:
    """aml-miner process."""
    from services.processor.models import load_models
    from services.processor.process import process_batch

    from services.processor.predictor import engine_setting

    models_dir = args.models_dir or settings.MODELS_DIR
    try:
        models = load_models(models_dir, args.model_version,
                             engine=engines(args.engine, engine_setting(settings)),
                             cache_dir=settings.COMPILED_MODELS_DIR)
        metadata = process_batch(args.input_dir or settings.INPUT_DIR,
                                 args.output_dir or settings.OUTPUT_DIR, args.processing_date,
                                 models=models, settings=settings)
    except _expected_errors() as exc:
        return _fail("process", exc)
    print(json.dumps({k: metadata[k] for k in ("processing_date", "alert_count", "cluster_count",
                                               "model_versions", "predict_engines")}))
    return 0


def run_train(args: argparse.Namespace, settings) -> int:
    """aml-miner train."""
    from services.processor.train import train_models

    try:
        metrics = train_models(args.input_dir or settings.INPUT_DIR, args.dates,
                               args.models_dir or settings.MODELS_DIR, args.version,
                               args.report_dir)
    except _expected_errors() as exc:
        return _fail("train", exc)
    print(json.dumps(metrics, indent=2))
    return 0


def run_train_shipped(args: argparse.Namespace, settings) -> int:
    """aml-miner train-shipped."""
    from services.processor.shipped import build_shipped

    try:
        metrics = build_shipped(args.models_dir or settings.MODELS_DIR, args.work_dir)
    except _expected_errors() as exc:
        return _fail("train-shipped", exc)
    print(json.dumps(metrics, indent=2))
    return 0
