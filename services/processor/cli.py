"""Subcommands of the processor service: process, render, train, learn, models, train-shipped."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NETWORK_HELP = "one of NETWORKS (default: the first)"
TOP = "; the top root: with several NETWORKS, the network's folder in it is used"


def add_workers(queues) -> None:
    """Register `aml-miner worker process` and `aml-miner worker learn`."""
    for queue, help_text in (("process", "work the process queue (models loaded once, first)"),
                             ("learn", "work the learn queue")):
        p = queues.add_parser(queue, help=help_text)
        p.add_argument("--burst", action="store_true", help="quit when the queue is empty")
        p.set_defaults(func=run_worker)


def run_worker(args, settings) -> int:
    """The process or learn worker, once the chain's settings pass their checks."""
    from shared import layout, worker
    from services.processor.worker import run, run_learner

    worker.check_settings(settings)  # fail at start, not in the first job
    layout.migrate(settings)  # several networks: a one-network layout moves first
    return (run if args.queue == "process" else run_learner)(settings, burst=args.burst)


def add_commands(sub) -> None:
    """Register this service's subcommands on the aml-miner parser."""
    process = sub.add_parser("process", help="score, rank and publish one date from input/{date}/")
    process.add_argument("--network", help=NETWORK_HELP)
    process.add_argument("--input-dir", type=Path, help=f"input root (default: INPUT_DIR){TOP}")
    process.add_argument("--output-dir", type=Path, help=f"output root (default: OUTPUT_DIR){TOP}")
    process.add_argument("--processing-date", required=True, help="YYYY-MM-DD")
    process.add_argument("--models-dir", type=Path,
                         help="models folder (default: the current set of the network and "
                              "WINDOW_DAYS: the promoted learned set, else MODELS_DIR)")
    process.add_argument("--model-version",
                         help="for this run only: a learned set's version (see `aml-miner "
                              "models list`) or the X.Y.Z of all three models in --models-dir")
    process.add_argument("--engine", action="append", type=_engine, metavar="[MODEL=]ENGINE",
                         help="compiled or lightgbm, for all models or one (repeat for each; "
                              "default: PREDICT_ENGINE)")
    process.set_defaults(func=run_process, writes_dates=True)

    render = sub.add_parser("render", help="render the API's response bodies of dates published "
                                           "without them (the process worker does it at start)")
    render.add_argument("--network", help=NETWORK_HELP)
    render.add_argument("--output-dir", type=Path, help=f"output root (default: OUTPUT_DIR){TOP}")
    render.set_defaults(func=run_render, writes_dates=True)

    train = sub.add_parser("train", help="train the three models on labelled input dates")
    train.add_argument("--network", help=NETWORK_HELP + "; whose input dates to train on")
    train.add_argument("--input-dir", type=Path, help=f"input root (default: INPUT_DIR){TOP}")
    train.add_argument("--dates", nargs="+", required=True, metavar="DATE",
                       help="input dates to learn from; the last one is held out for validation")
    train.add_argument("--models-dir", type=Path, help="where to write (default: MODELS_DIR)")
    train.add_argument("--version", default="1.0.0", help="model version X.Y.Z (default 1.0.0)")
    train.add_argument("--report-dir", type=Path,
                       help="report folder (default: MODELS_DIR/report)")
    train.set_defaults(func=run_train)

    learn = sub.add_parser("learn", help="train a candidate set on the labelled input dates "
                                         "before a date, compare it with the current set, "
                                         "promote it only if it wins")
    learn.add_argument("--processing-date", required=True,
                       help="YYYY-MM-DD: learn from the dates strictly before it")
    learn.add_argument("--network", help=NETWORK_HELP)
    learn.add_argument("--days", type=int, help="window in days (default: WINDOW_DAYS)")
    learn.add_argument("--input-dir", type=Path, help=f"input root (default: INPUT_DIR){TOP}")
    learn.add_argument("--max-dates", type=int,
                       help="newest labelled dates to use at most (default: LEARN_MAX_DATES)")
    learn.set_defaults(func=run_learn, writes_dates=True)

    models = sub.add_parser("models", help="list the shipped and learned model sets, or choose "
                                           "the current one")
    actions = models.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every set of a network and window; * marks "
                                              "the current one")
    use = actions.add_parser("use", help="make a set current and pin it (learning then keeps "
                                         "it until `models unpin`)")
    use.add_argument("version", help="a learned version from `models list`, or 'shipped'")
    unpin = actions.add_parser("unpin", help="let learning promote again")
    for parser in (listing, use, unpin):
        parser.add_argument("--network", help=NETWORK_HELP)
        parser.add_argument("--days", type=int, help="window in days (default: WINDOW_DAYS)")
    listing.add_argument("--json", action="store_true", help="print the sets as JSON")
    listing.set_defaults(func=run_models_list)
    use.set_defaults(func=run_models_use)
    unpin.set_defaults(func=run_models_unpin)

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
    from services.processor.learning import LearnError
    from services.processor.outputs import ScoreError
    from shared.contract import ContractError
    from shared.modelsets import ModelSetError
    from shared.publish_lock import DateLocked
    from shared.settings import SettingsError
    from shared.storage import InvalidDate

    return (ContractError, InvalidDate, SettingsError, ModelError, ScoreError, TrainingError,
            LearnError, ModelSetError, OSError, DateLocked)


def _fail(command: str, exc: Exception) -> int:
    print(f"aml-miner {command}: error: {exc}", file=sys.stderr)
    return 1


def _chosen_set(args: argparse.Namespace, settings):
    """The model set and the version to load from it: --models-dir, a learned --model-version,
    or the current set."""
    from shared import modelsets

    if args.models_dir:
        return modelsets.ModelSet(args.model_version or "", "override", args.models_dir), \
            args.model_version
    if args.model_version and modelsets.is_learned_version(args.model_version):
        return modelsets.find(settings, args.network, settings.WINDOW_DAYS,
                              args.model_version), None
    chosen = modelsets.current(settings, args.network, settings.WINDOW_DAYS)
    return chosen, args.model_version


def run_process(args: argparse.Namespace, settings) -> int:
    """aml-miner process."""
    from services.processor.models import load_models
    from services.processor.predictor import engine_setting
    from services.processor.process import process_batch
    from shared import networks

    try:
        chosen, version = _chosen_set(args, settings)
        models = load_models(chosen.folder, version,
                             engine=engines(args.engine, engine_setting(settings)),
                             cache_dir=settings.COMPILED_MODELS_DIR)
        metadata = process_batch(networks.input_root(settings, args.network, args.input_dir),
                                 networks.output_root(settings, args.network, args.output_dir),
                                 args.processing_date, models=models, settings=settings,
                                 model_set=chosen,
                                 network=args.network if settings.multi_network else None)
    except _expected_errors() as exc:
        return _fail("process", exc)
    print(json.dumps({k: metadata[k] for k in ("processing_date", "alert_count", "cluster_count",
                                               "model_versions", "predict_engines")}))
    return 0


def run_render(args: argparse.Namespace, settings) -> int:
    """aml-miner render: exit 1 when a date could not be rendered."""
    from services.processor.render import render_published
    from shared import networks

    outcomes = render_published(networks.output_root(settings, args.network, args.output_dir))
    print(json.dumps(outcomes))
    return 1 if any(o != "rendered" for o in outcomes.values()) else 0


def run_train(args: argparse.Namespace, settings) -> int:
    """aml-miner train."""
    from services.processor.train import train_models
    from shared import networks

    try:
        metrics = train_models(networks.input_root(settings, args.network, args.input_dir),
                               args.dates,
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


def _network_window(args: argparse.Namespace, settings) -> tuple[str, int]:
    return args.network, args.days or settings.WINDOW_DAYS


def run_learn(args: argparse.Namespace, settings) -> int:
    """aml-miner learn."""
    from services.processor.learning import learn
    from shared import networks

    network, days = _network_window(args, settings)
    try:
        outcome = learn(settings, network, days, args.processing_date,
                        networks.input_root(settings, network, args.input_dir), args.max_dates)
    except _expected_errors() as exc:
        return _fail("learn", exc)
    print(f"learn {network} {days}d for {args.processing_date}: {outcome.decision}"
          f"{' ' + outcome.version if outcome.version else ''}: {outcome.reason}")
    if outcome.report:
        print(f"comparison report: {outcome.report}")
    return 0


def run_models_list(args: argparse.Namespace, settings) -> int:
    """aml-miner models list."""
    from services.processor import modelsets_view

    network, days = _network_window(args, settings)
    rows = modelsets_view.rows(settings, network, days)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(modelsets_view.render(rows, network, days))
    return 0


def run_models_use(args: argparse.Namespace, settings) -> int:
    """aml-miner models use VERSION."""
    from shared import modelsets

    network, days = _network_window(args, settings)
    try:
        chosen = modelsets.make_current(settings, network, days, args.version, by="operator",
                                        pinned=True)
    except modelsets.ModelSetError as exc:
        return _fail("models use", exc)
    print(f"{network} {days}d: {chosen.version} ({chosen.folder}) is current and pinned; "
          "workers load it before their next job. `aml-miner models unpin` lets learning "
          "promote again.")
    return 0


def run_models_unpin(args: argparse.Namespace, settings) -> int:
    """aml-miner models unpin."""
    from shared import modelsets

    network, days = _network_window(args, settings)
    try:
        chosen = modelsets.unpin(settings, network, days)
    except modelsets.ModelSetError as exc:
        return _fail("models unpin", exc)
    print(f"{network} {days}d: {chosen.version} stays current until learning promotes a "
          "better set")
    return 0
