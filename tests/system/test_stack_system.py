"""The whole stack as local processes, started from compose.yaml by `aml-miner stack`.

Real redis-server, the sample S3 server, both RQ workers, gunicorn API and miner,
all on loopback. The only thing not real is the chain: the miner runs on an
allow-list with no chain, as an operator without a reachable subtensor would.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.compose_tools import REPO
from tests.stack_checks import check_alert_scores, http_get, poll, published, signed_get

pytestmark = pytest.mark.slow

BIG_ALERTS = 300_000  # a date big enough that the processor can be killed in the middle of it


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wallets(root: Path):
    from bittensor_wallet import Keypair, Wallet

    miner = Wallet(name="miner", hotkey="default", path=str(root))
    miner.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    validator = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
    return miner.hotkey.ss58_address, validator


class RunningStack:
    """`aml-miner stack --profile miner --own-redis` in a project folder of its own."""

    def __init__(self, project: Path, compiled_models: Path, extra_env: tuple[str, ...] = ()):
        self.project = project
        self.extra_env = dict(line.split("=", 1) for line in extra_env)
        self.api_port, self.miner_port = _free_port(), _free_port()
        self.miner_ss58, self.validator = _wallets(project / "wallets")
        env_file = (REPO / ".env.example").read_text() + "\n".join([
            "", f"API_PORT={self.api_port}", f"MINER_PORT={self.miner_port}",
            "MINER_HOST=127.0.0.1", f"BT_WALLET_PATH={project / 'wallets'}",
            "BT_WALLET_NAME=miner", "BT_WALLET_HOTKEY=default",
            f"MINER_VALIDATOR_HOTKEYS={self.validator.ss58_address}",
            "SUBTENSOR_NETWORK=", "MINER_PUBLISH_ENDPOINT=false", *extra_env, ""])
        (project / ".env").write_text(env_file)
        shutil.copy(REPO / "compose.yaml", project / "compose.yaml")
        (project / "trained_models").symlink_to(REPO / "trained_models")
        # The compose volume `compiled`, already holding the shipped models: a first start
        # would compile them (minutes here), which is not what these tests are about.
        (project / "volumes").mkdir()
        (project / "volumes" / "compiled_models").symlink_to(compiled_models)
        self.log = open(project / "stack.log", "w")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "stack", "--profile", "miner", "--own-redis",
             "--project-dir", str(project)],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=env)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def miner(self) -> str:
        return f"http://127.0.0.1:{self.miner_port}"

    def state(self) -> dict:
        return json.loads((self.project / "volumes" / ".stack" / "stack.json").read_text())

    def cli_env(self) -> dict:
        """Environment for an operator's aml-miner command against this stack."""
        ports = self.state()
        return {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{ports['redis']['port']}/0",
                "INPUT_DIR": str(self.project / "volumes" / "input"),
                "OUTPUT_DIR": str(self.project / "volumes" / "output"),
                "SOT_S3_ENDPOINT": f"http://127.0.0.1:{ports['sample-sot']['port']}",
                "SOT_S3_BUCKET": "sample-sot", **self.extra_env}

    def cli(self, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        env = {**self.cli_env(), **(extra_env or {})}
        return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.project / "stack.log").read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
        return self.proc.returncode


def running_stack(project: Path, compiled_cache: Path, extra_env: tuple[str, ...] = ()):
    """A module fixture's body: the stack up until its stack.json is written, stopped after
    the module's tests with Ctrl-C, which must end it cleanly."""
    running = RunningStack(project, compiled_cache, extra_env)
    try:
        poll(lambda: (running.project / "volumes/.stack/stack.json").exists()
             or running.proc.poll() is not None, 240, "the stack to come up")
        assert running.proc.poll() is None, running.log_text()[-4000:]
        yield running
    finally:
        code = running.stop()
        assert code == 0, "Ctrl-C must stop the stack cleanly:\n" + running.log_text()[-3000:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, compiled_cache):
    yield from running_stack(tmp_path_factory.mktemp("stack"), compiled_cache)


def _input_ids(stack: RunningStack, date: str) -> set[str]:
    table = pq.read_table(stack.project / "volumes" / "input" / date / "alerts.parquet",
                          columns=["alert_id"])
    return set(table.column("alert_id").to_pylist())


def test_the_newest_sample_date_is_published_by_itself_after_the_first_learn(stack):
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    # The first start backfills the sample SOT's history and learns before publishing.
    payload = poll(lambda: published(stack.api, today), 600, f"{today} to be served")
    assert check_alert_scores(payload, _input_ids(stack, today)) > 0
    report = stack.project / "volumes" / "reports" / f"learn_bitcoin_7d_{today}.json"
    learned = json.loads(report.read_text())
    assert learned["decision"] in ("promoted", "kept"), learned
    assert len(learned["training_dates"]) >= 2 and learned["comparison_date"] < today
    status, _, body = http_get(f"{stack.api}/metadata/{today}")
    metadata = json.loads(body)
    assert metadata["model_set"]["version"] == (learned["version"] if learned["decision"]
                                                == "promoted" else "shipped")
    engines = metadata["predict_engines"]
    assert status == 200 and {r["engine"] for r in engines.values()} == {"compiled"}, engines


def test_an_enqueued_date_goes_through_download_and_processing(stack):
    date = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    done = stack.cli("enqueue", "--processing-date", date)
    assert done.returncode == 0, done.stderr
    payload = poll(lambda: published(stack.api, date), 240, f"{date} to be served")
    check_alert_scores(payload, _input_ids(stack, date))
    status = stack.cli("status", "--processing-date", date)
    assert "published" in status.stdout, status.stdout + status.stderr


def test_a_validator_gets_the_api_bytes_through_the_miner(stack):
    status, api_body = http_get(f"{stack.api}/scores/alerts/latest")[0::2]
    assert status == 200
    code, body = signed_get(stack.miner, "/scores/alerts/latest", stack.validator, stack.miner_ss58)
    assert code == 200 and body == api_body
    unsigned = http_get(f"{stack.miner}/scores/alerts/latest")[0]
    assert unsigned == 401


def test_killing_the_processor_mid_job_serves_no_half_result_and_a_rerun_completes(stack, tmp_path):
    date = "2025-09-30"
    keys = {"SOT_S3_ACCESS_KEY": "sample-sot", "SOT_S3_SECRET_KEY": "sample-sot"}
    made = stack.cli("sample", "--processing-date", date, "--alerts", str(BIG_ALERTS),
                     "--output-dir", str(tmp_path / "sot"), "--bucket", "sample-sot", extra_env=keys)
    assert made.returncode == 0, made.stderr
    assert stack.cli("enqueue", "--processing-date", date).returncode == 0

    def processing() -> bool:
        out = stack.cli("status", "--processing-date", date, "--json").stdout
        return json.loads(out)["state"] == "processing"

    poll(processing, 300, f"{date} to reach the processor")
    before = stack.state()["processor"]["pid"]
    os.killpg(before, signal.SIGKILL)  # the whole process group, as a container kill would
    poll(lambda: stack.state()["processor"]["pid"] != before, 60, "the processor to be restarted")
    assert http_get(f"{stack.api}/scores/alerts/{date}")[0] == 404
    assert not (stack.project / "volumes" / "output" / date).exists()

    def settled() -> str:
        out = stack.cli("status", "--processing-date", date, "--json").stdout
        return json.loads(out)["state"] not in ("processing", "downloading") and out

    seen = json.loads(poll(settled, 300, f"{date}'s killed job to be noticed"))
    assert seen["state"] in ("failed", "queued", "published"), seen
    rerun = stack.cli("enqueue", "--processing-date", date, "--force")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    payload = poll(lambda: published(stack.api, date), 600, f"{date} to be served after the re-run")
    assert check_alert_scores(payload, _input_ids(stack, date)) == BIG_ALERTS
