"""The api's and the miner's gunicorn configs: common settings from one place, own worker models."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMON = ("graceful_timeout", "keepalive", "accesslog", "errorlog", "control_socket_disable",
          "worker_tmp_dir")


def _config(path: str, env: dict) -> dict:
    """The names gunicorn would read from a config file, loaded in a clean process."""
    code = ("import runpy, json; c = runpy.run_path(%r); "
            "print(json.dumps({k: v for k, v in c.items() if not k.startswith('_') "
            "and isinstance(v, (str, int, float, list, type(None)))}))" % path)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", **env}, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_both_servers_take_the_common_settings_and_keep_their_worker_models():
    from shared import gunicorn_common

    api = _config("services/api/gunicorn.conf.py", {"API_HOST": "::1", "API_PORT": "9123"})
    miner = _config("services/miner/gunicorn.conf.py", {"MINER_HOST": "0.0.0.0",
                                                        "MINER_PORT": "9124"})
    for name in COMMON:
        assert api[name] == miner[name] == getattr(gunicorn_common, name), name
    assert api["bind"] == ["[::1]:9123"] and miner["bind"] == ["0.0.0.0:9124"]
    assert (api["worker_class"], miner["worker_class"]) == ("gthread", "gevent")
    assert miner["preload_app"] is False and api["timeout"] == 30 and miner["timeout"] == 60
