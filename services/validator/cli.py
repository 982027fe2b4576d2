"""Subcommands of the local validator: `validate` one published date, `evaluate` model folders.

Exit codes: 0 all good; 1 the integrity gate failed (for `evaluate`: on any
date); 2 the check could not start (bad date, missing input or output, API
unreachable; for `evaluate` also a processor failure); 3 the gate passed but
determinism did not (the re-run differed, or the processor could not re-run).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def add_commands(sub) -> None:
    """Register `validate` and `evaluate` on the aml-miner parser."""
    v = sub.add_parser("validate", help="judge a published date as the subnet's validator would",
                       description=__doc__)
    v.add_argument("--processing-date", required=True, help="YYYY-MM-DD")
    v.add_argument("--api", metavar="URL", help="judge what the result API serves (default: the "
                                                 "output folder; with several NETWORKS it is "
                                                 "asked with ?network=)")
    _common(v)
    v.add_argument("--output-dir", type=Path, help="published results (default OUTPUT_DIR; the "
                                                    "top root, as --input-dir)")
    v.add_argument("--models-dir", type=Path,
                   help="models for the determinism re-run (default: the set the date's "
                        "metadata.json records)")
    v.add_argument("--no-determinism", action="store_true", help="skip re-running the processor")
    v.set_defaults(func=run_validate)

    e = sub.add_parser("evaluate", help="score held-out dates with model folders and compare them",
                       description=__doc__)
    e.add_argument("--dates", nargs="+", required=True, metavar="DATE", help="input dates to score")
    e.add_argument("--models-dir", type=Path,
                   help="models to evaluate (default: the current set of the network and "
                        "WINDOW_DAYS)")
    e.add_argument("--compare-models-dir", type=Path, help="a second model folder, shown side by side")
    e.add_argument("--labels", type=Path, metavar="FILE",
                   help="judge every date by this address labels file (default: each date's own)")
    e.add_argument("--report-name", metavar="STEM",
                   help="report file names without extension (default: evaluate_{dates})")
    _common(e)
    e.set_defaults(func=run_evaluate)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--network", help="one of NETWORKS (default: the first)")
    parser.add_argument("--input-dir", type=Path,
                        help="SOT input dates with labels (default INPUT_DIR; the top root: with "
                             "several NETWORKS, the network's folder in it is used)")
    parser.add_argument("--report-dir", type=Path,
                        help="where the JSON and HTML reports go (default: 'reports' next to OUTPUT_DIR)")
    parser.add_argument("--processor-command", metavar="CMD",
                        help="command prefix that runs aml-miner for re-runs, e.g. "
                             "/opt/aml/.venv/bin/aml-miner (default: this Python with -m services.cli)")


def _fail(command: str, message: str) -> int:
    print(f"aml-miner {command}: {message}", file=sys.stderr)
    return 2


def _rerun_env(settings, network: str) -> dict:
    import os

    from services.validator.determinism import child_env
    from shared import networks

    # The entry point hands the child our environment plus the effective settings, narrowed
    # to the network: the child is given that network's own folders.
    return child_env(networks.single(settings, network), dict(os.environ))


def _report_dir(args, settings) -> Path:
    return args.report_dir or Path(settings.OUTPUT_DIR).parent / "reports"


def _finish(outcome, report_dir: Path, stem: str) -> int:
    from services.validator import report

    sys.stdout.write(report.render_text(outcome.report))
    json_path, html_path = report.write(outcome.report, outcome.figures, report_dir, stem)
    print(f"report written: {json_path} and {html_path}")
    return outcome.exit_code


def run_validate(args, settings) -> int:
    """Handler of `aml-miner validate`."""
    from services.validator import sources, validation
    from shared import modelsets, networks
    from shared.contract import ContractError
    from shared.storage import InvalidDate, parse_date

    try:
        parse_date(args.processing_date)
    except InvalidDate as exc:
        return _fail("validate", str(exc))
    source = (sources.ApiSource(args.api, network=args.network if settings.multi_network else None)
              if args.api else sources.FolderSource(
                  networks.output_root(settings, args.network, args.output_dir)))
    rerun = None if args.no_determinism else validation.Rerun(
        args.models_dir, _command(args), _rerun_env(settings, args.network),
        lambda metadata: modelsets.recorded(settings, metadata).folder)
    try:
        outcome = validation.validate(source,
                                      networks.input_root(settings, args.network, args.input_dir),
                                      args.processing_date, rerun)
    except (ContractError, sources.SourceError) as exc:
        return _fail("validate", f"cannot judge {args.processing_date}: {exc}")
    return _finish(outcome, _report_dir(args, settings),
                   f"validate_{_tag(args, settings)}{args.processing_date}")


def _command(args) -> list[str] | None:
    return shlex.split(args.processor_command) if args.processor_command else None


def run_evaluate(args, settings) -> int:
    """Handler of `aml-miner evaluate`."""
    from services.validator import determinism, evaluation
    from shared import modelsets, networks
    from shared.contract import ContractError
    from shared.storage import InvalidDate, parse_date

    try:
        dates = sorted({parse_date(d).isoformat() for d in args.dates})
    except InvalidDate as exc:
        return _fail("evaluate", str(exc))
    current = modelsets.current(settings, args.network, settings.WINDOW_DAYS).folder
    models = [args.models_dir or current, *([args.compare_models_dir] if args.compare_models_dir else [])]
    missing = [str(m) for m in models if not Path(m).is_dir()]
    if missing:
        return _fail("evaluate", f"models folder not found: {', '.join(missing)}")
    try:
        outcome = evaluation.evaluate(networks.input_root(settings, args.network, args.input_dir),
                                      dates, models, _command(args),
                                      _rerun_env(settings, args.network), args.labels)
    except (ContractError, determinism.ProcessorFailed) as exc:
        return _fail("evaluate", str(exc))
    span = dates[0] if len(dates) == 1 else f"{dates[0]}_{dates[-1]}"
    return _finish(outcome, _report_dir(args, settings),
                   args.report_name or f"evaluate_{_tag(args, settings)}{span}")


def _tag(args, settings) -> str:
    """'{network}_' in report names when several networks share the reports folder."""
    return f"{args.network}_" if settings.multi_network else ""
