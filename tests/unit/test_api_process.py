"""The API process: loads no model library, and serve-api builds the right gunicorn command."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.api import cli
from services.cli import build_parser

REPO = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from shared.settings import Settings
from tests.api_fixtures import publish_date
from services.api.app import create_app
root = sys.argv[1]
publish_date(root, "2025-10-26")
client = create_app(Settings.from_env({}).replace(OUTPUT_DIR=root, MODELS_DIR="/nonexistent")).test_client()
codes = [client.get(u).status_code for u in ("/scores/alerts/latest", "/rankings/alerts/latest",
         "/scores/clusters/latest", "/metadata/latest", "/dates", "/health", "/openapi.json")]
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("lightgbm", "sklearn", "boto3", "bittensor")
               or m.startswith("services.processor"))
print(json.dumps({"codes": codes, "heavy": heavy}))
"""


def test_serving_every_endpoint_imports_no_model_library(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "output")], cwd=REPO,
                         capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["codes"] == [200] * 7
    assert result["heavy"] == []
    assert importlib.util.find_spec("lightgbm") is not None  # it is installed, just not imported


def test_serve_api_flags_parse():
    args = build_parser().parse_args(["serve-api", "--host", "0.0.0.0", "--port", "9001"])
    assert (args.host, args.port, args.func) == ("0.0.0.0", 9001, cli.serve_api)


@pytest.mark.parametrize("port", ["0", "70000", "eighty"])
def test_serve_api_refuses_a_bad_port(port, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve-api", "--port", port])
    assert "--port" in capsys.readouterr().err


def test_gunicorn_is_exec_ed_with_the_config_file_and_the_app_factory():
    argv = cli.gunicorn_argv()
    assert argv[:3] == [sys.executable, "-m", "gunicorn"]
    assert Path(argv[argv.index("--config") + 1]).is_file()
    assert argv[-1] == "services.api.app:create_app()"


def test_the_gunicorn_config_takes_its_values_from_the_settings():
    code = ("import runpy, json; c = runpy.run_path('services/api/gunicorn.conf.py'); "
            "print(json.dumps({k: c[k] for k in ('bind', 'workers', 'threads', 'worker_class', "
            "'accesslog', 'timeout', 'sendfile')}))")
    env = {"API_HOST": "::1", "API_PORT": "9123", "API_WORKERS": "3", "API_THREADS": "5",
           "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    conf = json.loads(out.stdout.strip().splitlines()[-1])
    assert conf == {"bind": ["[::1]:9123"], "workers": 3, "threads": 5, "worker_class": "gthread",
                    "accesslog": "-", "timeout": 30, "sendfile": False}
