"""The no-Docker launcher's mapping of compose.yaml to local processes, and the http healthcheck."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.ops.stack import Mapper, _start_order, plan
from tests.compose_tools import REPO, resolved


def test_every_compose_healthcheck_argument_is_free_of_spaces():
    """Podman 4.3 re-splits exec-form healthcheck arguments on spaces."""
    for name, svc in resolved("miner")["services"].items():
        for arg in svc["healthcheck"]["test"][1:]:
            assert " " not in arg, f"{name}: {arg!r}"


def test_hosts_ports_and_mounts_are_mapped_to_this_machine(tmp_path):
    svc = {"volumes": [{"type": "volume", "source": "data", "target": "/data"},
                       {"type": "bind", "source": "/srv/models", "target": "/models"}]}
    ports = {"api": (8000, 18000), "redis": (6379, 6380)}
    m = Mapper(tmp_path, "processor", svc, ports)
    assert m.value("redis://redis:6379/0") == "redis://127.0.0.1:6380/0"
    assert m.value("http://api:8000") == "http://127.0.0.1:18000"
    assert m.value("/data/input") == str(tmp_path / "volumes" / "input")
    assert m.value("/models") == "/srv/models"
    assert m.value("/tmp/heartbeat") == str(tmp_path / "volumes/.stack/processor/tmp/heartbeat")
    assert m.value("/database") == "/database", "only whole path components are mapped"
    api = Mapper(tmp_path, "api", {"ports": [{"host_ip": "127.0.0.1", "target": 8000,
                                               "published": "18000"}]}, ports)
    assert api.argv(["serve-api", "--host", "0.0.0.0", "--port", "8000"]) == \
        ["serve-api", "--host", "127.0.0.1", "--port", "18000"]


def test_services_start_after_their_dependencies():
    order = _start_order(resolved("miner")["services"])
    for name, svc in resolved("miner")["services"].items():
        for dep in svc.get("depends_on", {}):
            assert order.index(dep) < order.index(name)


def test_the_plan_runs_our_commands_from_this_checkout(tmp_path):
    (tmp_path / "compose.yaml").write_text((REPO / "compose.yaml").read_text())
    (tmp_path / "trained_models").mkdir()
    services = {s.name: s for s in plan(tmp_path, [], own_redis=True)}
    assert services["processor"].argv[-2:] == ["worker", "process"]
    assert services["processor"].env["MODELS_DIR"] == str(tmp_path / "trained_models")
    assert services["processor"].env["REDIS_URL"].startswith("redis://127.0.0.1:")
    assert (tmp_path / "volumes" / "output").is_dir(), "the folders the images ship exist"
    assert "miner" not in services


def _healthcheck(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "healthcheck", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def test_http_healthcheck_passes_on_2xx_and_fails_on_refusal(tmp_path):
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert _healthcheck("http", f"http://127.0.0.1:{server.server_port}/").returncode == 0
    finally:
        server.shutdown()
        server.server_close()
    refused = _healthcheck("http", f"http://127.0.0.1:{server.server_port}/")
    assert refused.returncode == 1 and "127.0.0.1" in refused.stderr
    assert _healthcheck("worker", "nonsense").returncode == 2


def test_the_miners_redis_is_a_server_of_its_own_on_another_port(tmp_path, monkeypatch):
    import services.ops.stack as stack

    (tmp_path / "compose.yaml").write_text((REPO / "compose.yaml").read_text())
    (tmp_path / "trained_models").mkdir()
    monkeypatch.setattr(stack, "redis_answers", lambda url: True)  # a developer's Redis on 6379
    services = {s.name: s for s in plan(tmp_path, ["miner"], own_redis=False)}
    assert services["redis"].reuse_redis and services["redis"].port == 6379
    assert not services["miner-redis"].reuse_redis and services["miner-redis"].port != 6379
    assert services["miner-redis"].argv[0].endswith("redis-server")
    assert services["miner"].env["MINER_REDIS_URL"] == \
        f"redis://127.0.0.1:{services['miner-redis'].port}/0"
    assert services["miner"].env["API_URL"] == f"http://127.0.0.1:{services['api'].port}"


def test_the_wallet_folder_above_the_miners_hotkey_mount_maps_to_its_local_folder(tmp_path):
    svc = {"volumes": [{"type": "bind", "source": "/home/op/wallets/miner/hotkeys/default",
                        "target": "/wallets/miner/hotkeys/default"}]}
    m = Mapper(tmp_path, "miner", svc, {})
    assert m.value("/wallets") == "/home/op/wallets"
    assert m.value("/wallets/miner/hotkeys/default") == "/home/op/wallets/miner/hotkeys/default"
    assert m.value("/wall") == "/wall"
