"""The `aml-miner` command line: every command answers --help, --version, who registers what."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from services.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]


def _commands(parser) -> dict:
    return next(a for a in parser._actions if a.dest == "command").choices


def test_version_is_the_installed_packages(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"aml-miner {metadata.version('aml-miner')}"


@pytest.mark.parametrize("command", sorted(_commands(build_parser())))
def test_every_command_answers_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: aml-miner {command}")


@pytest.mark.parametrize("queue", ["download", "process", "learn"])
def test_each_worker_is_registered_by_its_own_service(queue):
    args = build_parser().parse_args(["worker", queue, "--burst"])
    owner = "downloader" if queue == "download" else "processor"
    assert args.func.__module__ == f"services.{owner}.cli" and args.burst


def test_preflight_parts_come_from_the_services_that_own_them():
    parts = build_parser().parse_args(["preflight"]).preflight_parts
    assert {part: f.__module__ for part, f in parts.items()} == {
        "SOT": "services.downloader.cli", "miner": "services.miner.cli"}


def test_ops_imports_no_other_service():
    for source in (REPO / "services" / "ops").glob("*.py"):
        text = source.read_text()
        for other in ("downloader", "processor", "api", "miner", "validator"):
            assert f"services.{other}" not in text, f"ops/{source.name} reaches services.{other}"
        assert "importlib" not in text, f"ops/{source.name} imports by dotted name"


def test_a_bad_setting_at_worker_start_names_it():
    env = {"PATH": "/usr/bin:/bin", "HEARTBEAT_INTERVAL": "0"}
    done = subprocess.run([sys.executable, "-m", "services.cli", "worker", "download", "--burst"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("aml-miner worker: configuration error:")
    assert "HEARTBEAT_INTERVAL=0 must be greater than 0" in done.stderr
