"""`make test-containers`: the real `docker compose up --build --wait` on Podman, then the system checks.

Runs the untouched compose.yaml with an untouched .env.example (copied to .env in a
scratch project folder), the miner profile on with a test wallet and an allow-listed
test validator hotkey. Checks through the published loopback ports: the sample date
is published by itself, every alert is scored on compiled trees (the worker compiled
the models into its volume at start), a signed validator request is answered
by the miner with the API's bytes, and `docker compose restart processor` in the
middle of a job leaves no half result. Then `down -v`. Prints timings. Needs root.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.compose_tools import compose_binary  # noqa: E402
from tests.stack_checks import check_alert_scores, http_get, poll, published, signed_get  # noqa: E402

BIG_DATE, BIG_ALERTS = "2025-09-30", 300_000
TIMINGS: dict[str, float] = {}


def sh(*cmd: str, env: dict, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def engine_env() -> dict:
    out = sh("bash", str(REPO / "tests" / "containers" / "setup.sh"), env=dict(os.environ)).stdout
    env = dict(os.environ)
    for part in out.strip().splitlines()[-1].replace("export ", "").split():
        key, value = part.split("=", 1)
        env[key] = value
    return env


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def project(scratch: Path) -> dict:
    """A copy of the repository with .env = .env.example plus the test's miner identity."""
    from bittensor_wallet import Keypair, Wallet

    shutil.copytree(REPO, scratch / "repo", ignore=shutil.ignore_patterns(
        ".git", ".venv", "volumes", "__pycache__", "*.egg-info", "bench"))
    wallets = scratch / "wallets"
    miner = Wallet(name="miner", hotkey="default", path=str(wallets))
    miner.create_new_hotkey(use_password=False, overwrite=True, suppress=True)
    subprocess.run(["chmod", "-R", "a+rX", str(wallets)], check=True)
    validator = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
    shutil.copy(REPO / ".env.example", scratch / "repo" / ".env")
    ports = {"API_PORT": str(free_port()), "MINER_PORT": str(free_port())}
    overrides = {**ports, "MINER_HOST": "127.0.0.1", "BT_WALLET_PATH": str(wallets),
                 "BT_WALLET_NAME": "miner", "BT_WALLET_HOTKEY": "default",
                 "MINER_VALIDATOR_HOTKEYS": validator.ss58_address, "SUBTENSOR_NETWORK": "",
                 "MINER_PUBLISH_ENDPOINT": "false", "COMPOSE_PROFILES": "miner",
                 # One project per run: two checkouts' runs on one engine do not share containers.
                 "COMPOSE_PROJECT_NAME": f"amlminertest{os.getpid()}"}
    return {"dir": scratch / "repo", "overrides": overrides, "validator": validator,
            "miner_ss58": miner.hotkey.ss58_address}


def timed(name: str, fn, *args, **kwargs):
    started = time.monotonic()
    result = fn(*args, **kwargs)
    TIMINGS[name] = round(time.monotonic() - started, 1)
    print(f"[containers] {name}: {TIMINGS[name]} s", flush=True)
    return result


def main() -> int:
    env = timed("engine set-up", engine_env)
    with tempfile.TemporaryDirectory(prefix="aml-containers-") as tmp:
        proj = project(Path(tmp))
        env.update(proj["overrides"])
        compose = [str(compose_binary()), "--project-directory", str(proj["dir"]),
                   "-f", str(proj["dir"] / "compose.yaml")]
        try:
            return run_checks(compose, env, proj)
        except BaseException:
            show_state(compose, env)
            raise
        finally:
            timed("down -v", sh, *compose, "down", "-v", "--remove-orphans", env=env, check=False)
            print(json.dumps({"timings_s": TIMINGS}, indent=2))


def show_state(compose: list[str], env: dict) -> None:
    """What the containers were doing when a check failed (printed before `down -v`)."""
    for args in (["ps", "-a"], ["logs", "--no-color", "--tail", "40"]):
        done = sh(*compose, *args, env=env, check=False, timeout=120)
        print(f"[containers] compose {' '.join(args)}:\n{done.stdout}{done.stderr}", flush=True)


def run_checks(compose: list[str], env: dict, proj: dict) -> int:
    api = f"http://127.0.0.1:{env['API_PORT']}"
    miner = f"http://127.0.0.1:{env['MINER_PORT']}"
    started = time.monotonic()
    timed("up --build --wait (cold)", sh, *compose, "up", "--build", "--wait", "--wait-timeout", "900", env=env)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    payload = poll(lambda: published(api, today), 600, f"{today} published by itself")
    TIMINGS["first published date after up"] = round(time.monotonic() - started, 1)
    count = check_alert_scores(payload)
    print(f"[containers] {today}: {count} alerts scored, served at {api}")
    check_compiled(api, today)

    status, _, api_body = http_get(f"{api}/scores/alerts/{today}")
    code, body = signed_get(miner, f"/scores/alerts/{today}", proj["validator"], proj["miner_ss58"])
    assert code == 200 and body == api_body, f"miner answered {code}"
    assert http_get(f"{miner}/scores/alerts/{today}")[0] == 401
    print("[containers] miner: signed validator request answered with the API's bytes; unsigned refused")
    check_miner_redis_isolation(compose, env)

    restart_mid_job(compose, env, api)
    timed("down (keep volumes)", sh, *compose, "down", env=env)
    timed("up --wait (warm)", sh, *compose, "up", "--wait", "--wait-timeout", "300", env=env)
    assert published(api, today), "the published date survives down/up"
    return 0


REACH = ("import socket,sys\n"
         "try:\n socket.create_connection((sys.argv[1], 6379), timeout=3).close()\n"
         "except OSError as exc:\n print(exc); sys.exit(1)")


def check_miner_redis_isolation(compose: list[str], env: dict) -> None:
    """From inside the miner container: its own Redis answers, the job queue's cannot be reached."""
    exec_ = [*compose, "exec", "-T", "miner", "python", "-c", REACH]
    own = sh(*exec_, "miner-redis", env=env, check=False)
    assert own.returncode == 0, f"the miner cannot reach miner-redis: {own.stdout}{own.stderr}"
    queue = sh(*exec_, "redis", env=env, check=False)
    assert queue.returncode != 0, "the miner reaches the job queue's Redis"
    print(f"[containers] miner: reaches miner-redis; the queue's redis is out of reach "
          f"({queue.stdout.strip() or queue.stderr.strip()})")


def check_compiled(api: str, date: str) -> None:
    """The containerized worker scored every model on compiled trees (lleaves in the image)."""
    status, _, body = http_get(f"{api}/metadata/{date}")
    engines = json.loads(body)["predict_engines"] if status == 200 else {}
    assert engines and {r["engine"] for r in engines.values()} == {"compiled"}, engines
    print(f"[containers] {date}: every model scored on compiled trees: {json.dumps(engines)}")


def restart_mid_job(compose: list[str], env: dict, api: str) -> None:
    exec_ = [*compose, "exec", "-T"]
    keys = ["-e", "SOT_S3_ENDPOINT=http://127.0.0.1:9000", "-e", "SOT_S3_ACCESS_KEY=sample-sot",
            "-e", "SOT_S3_SECRET_KEY=sample-sot"]
    timed("upload a big sample date", sh, *exec_, *keys, "sample-sot", "aml-miner", "sample",
          "--processing-date", BIG_DATE, "--alerts", str(BIG_ALERTS), "--output-dir", "/tmp/big",
          "--bucket", "sample-sot", env=env)
    sh(*exec_, "downloader", "aml-miner", "enqueue", "--processing-date", BIG_DATE, env=env)

    def processing() -> bool:
        out = sh(*exec_, "downloader", "aml-miner", "status", "--processing-date", BIG_DATE,
                 "--json", env=env, check=False).stdout
        return json.loads(out)["state"] == "processing"

    poll(processing, 600, f"{BIG_DATE} to reach the processor", every_s=0.2)
    timed("restart processor mid-job", sh, *compose, "restart", "processor", env=env)
    assert http_get(f"{api}/scores/alerts/{BIG_DATE}")[0] == 404, "a half result is served"
    print("[containers] processor restarted mid-job: nothing served for the date")

    def settled() -> str:
        out = sh(*exec_, "downloader", "aml-miner", "status", "--processing-date", BIG_DATE,
                 "--json", env=env, check=False).stdout
        return json.loads(out)["state"] not in ("processing", "downloading") and out

    seen = timed("killed job noticed", poll, settled, 600, f"{BIG_DATE}'s killed job to be noticed")
    print(f"[containers] after the restart: {json.loads(seen)['state']}")
    assert http_get(f"{api}/scores/alerts/{BIG_DATE}")[0] == 404 or json.loads(seen)["state"] == "published"
    sh(*exec_, "downloader", "aml-miner", "enqueue", "--processing-date", BIG_DATE, "--force", env=env)
    payload = poll(lambda: published(api, BIG_DATE), 900, f"{BIG_DATE} after the re-run")
    assert check_alert_scores(payload) == BIG_ALERTS
    print(f"[containers] {BIG_DATE}: re-run published all {BIG_ALERTS} alerts")


if __name__ == "__main__":
    sys.exit(main())
