"""compose.yaml checked by the real Docker Compose v2 binary, and the Dockerfile by its rules."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.compose_tools import REPO, compose_config, resolved

LONG_RUNNING = {"redis", "sample-sot", "downloader", "processor", "learner", "api", "miner",
                "miner-redis"}


@pytest.fixture(scope="module")
def stack() -> dict:
    return resolved("miner")


def test_compose_file_is_valid_with_and_without_the_miner_profile():
    for args in ([], ["--profile", "miner"]):
        proc = compose_config(*args, "config", "--quiet")
        assert proc.returncode == 0, proc.stderr


def test_the_miner_runs_only_in_its_profile():
    assert not {"miner", "miner-redis"} & set(resolved()["services"])
    assert {"miner", "miner-redis"} <= set(resolved("miner")["services"])


def test_the_miner_cannot_reach_the_job_queues_redis(stack):
    svcs = stack["services"]
    shared = set(svcs["miner"]["networks"]) & set(svcs["redis"]["networks"])
    assert not shared, f"the miner and the queue's Redis share {shared}"
    assert set(svcs["miner"]["networks"]) <= set(svcs["api"]["networks"]), "it must reach the API"
    assert set(svcs["miner-redis"]["networks"]) == set(svcs["miner"]["networks"])
    env = svcs["miner"]["environment"]
    assert env["MINER_REDIS_URL"] == "redis://miner-redis:6379/0"
    assert "redis" not in svcs["miner"]["depends_on"]
    assert "password" not in " ".join(svcs["miner-redis"]["command"]).lower()


def test_netuid_has_no_default_in_compose(stack):
    assert stack["services"]["miner"]["environment"]["NETUID"] == ""


def test_an_empty_subtensor_network_means_no_chain_not_the_default():
    env = resolved("miner", env={"SUBTENSOR_NETWORK": ""})["services"]["miner"]["environment"]
    assert env["SUBTENSOR_NETWORK"] == ""
    unset = resolved("miner")["services"]["miner"]["environment"]
    assert unset["SUBTENSOR_NETWORK"] == "finney"


def test_every_long_running_service_has_a_healthcheck_and_restart_policy(stack):
    assert set(stack["services"]) == LONG_RUNNING
    for name, svc in stack["services"].items():
        assert svc.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert svc.get("restart") == "unless-stopped", name


def test_dependents_wait_for_healthy_services(stack):
    for name, svc in stack["services"].items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert cond["condition"] == "service_healthy", f"{name} -> {dep}"
    assert set(stack["services"]["miner"]["depends_on"]) >= {"api"}
    assert set(stack["services"]["downloader"]["depends_on"]) >= {"redis"}


def _mounts(svc: dict) -> dict:
    return {v["target"]: v for v in svc.get("volumes", [])}


def test_volumes_share_data_and_mount_read_only_where_only_read(stack):
    svcs = stack["services"]
    for writer in ("downloader", "processor", "learner"):
        data = _mounts(svcs[writer])["/data"]
        assert data["source"] == "data" and not data.get("read_only")
    assert _mounts(svcs["api"])["/data"]["read_only"] is True
    for reader in ("processor", "learner"):
        models = _mounts(svcs[reader])["/models"]
        assert models["read_only"] is True and models["source"].endswith("trained_models")
    assert "/data" not in _mounts(svcs["miner"]), "the miner reads results only through the API"


def test_the_processor_keeps_its_compiled_models_in_a_volume_of_its_own(stack):
    processor = stack["services"]["processor"]
    compiled = _mounts(processor)["/compiled"]
    assert compiled["type"] == "volume" and compiled["source"] == "compiled"
    assert not compiled.get("read_only")
    assert processor["environment"]["COMPILED_MODELS_DIR"] == "/compiled"
    assert processor["environment"]["PREDICT_ENGINE"] == "compiled"
    # the image makes the mount point the worker's own, so an empty volume is writable
    assert "/compiled" in DOCKERFILE.read_text().split("chown -R miner:miner", 1)[1].split("\n")[0]


def test_only_the_api_is_published_on_loopback_by_default_and_the_miner_in_its_profile(stack):
    published = {n: s["ports"] for n, s in stack["services"].items() if s.get("ports")}
    assert set(published) == {"api", "miner"}
    assert published["api"][0]["host_ip"] == "127.0.0.1"


def test_no_container_name_no_version_no_latest():
    text = (REPO / "compose.yaml").read_text()
    assert not re.search(r"^version:", text, re.M)
    assert "container_name" not in text
    for svc in resolved("miner")["services"].values():
        assert not svc.get("image", "x:1").endswith(":latest") and ":" in svc.get("image", "x:1")


def test_stop_grace_period_is_longer_than_a_job(stack):
    for name, kind in (("downloader", "DOWNLOAD"), ("processor", "PROCESS"), ("learner", "LEARN")):
        grace = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", stack["services"][name]["stop_grace_period"])
        seconds = sum(int(v or 0) * k for v, k in zip(grace.groups(), (3600, 60, 1)))
        timeout = int(stack["services"][name]["environment"][f"JOB_TIMEOUT_{kind}"])
        assert seconds > timeout, name


def test_every_compose_variable_is_documented_in_env_example():
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (REPO / "compose.yaml").read_text()))
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.M))
    assert used <= documented, used - documented


def test_env_example_is_read_by_compose_as_written(tmp_path):
    """Inline comments would become values in Compose; every documented value must survive."""
    shutil.copy(REPO / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    (tmp_path / "trained_models").mkdir()
    svc = resolved("miner", project_dir=tmp_path)["services"]["miner"]["environment"]
    assert all("#" not in str(v) for v in svc.values()), svc
    assert svc["SOT_S3_ENDPOINT"] == "http://sample-sot:9000"


DOCKERFILE = REPO / "services" / "Dockerfile"


def test_dockerfile_follows_the_image_rules():
    lines = [ln.strip() for ln in DOCKERFILE.read_text().splitlines()]
    instructions = [ln for ln in lines if ln and not ln.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim-bookworm"
    copies = [i for i, ln in enumerate(instructions) if ln.startswith("COPY")]
    dep_copy = next(i for i in copies if "pyproject.toml" in instructions[i])
    code_copy = next(i for i in copies if "services" in instructions[i])
    install = next(i for i, ln in enumerate(instructions) if "pip install" in ln)
    assert dep_copy < install < code_copy, "dependency layer must come before the code layer"
    user = [ln for ln in instructions if ln.startswith("USER ")]
    assert user and user[-1] not in ("USER root", "USER 0")
    entry = [ln for ln in instructions if ln.startswith("ENTRYPOINT")]
    assert entry and entry[-1].startswith("ENTRYPOINT ["), "exec form, so SIGTERM reaches the process"
    assert ":latest" not in DOCKERFILE.read_text()


def test_every_system_package_has_a_comment_saying_why():
    text = DOCKERFILE.read_text()
    packages = re.findall(r"apt-get install[^\n]*?--no-install-recommends ([^\\\n&]+)", text)
    names = [p for group in packages for p in group.split()]
    assert names
    comments = " ".join(ln for ln in text.splitlines() if ln.strip().startswith("#"))
    for name in names:
        assert f"{name}:" in comments, f"system package {name} has no comment saying why"


def test_dockerignore_keeps_data_tests_and_caches_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in ("volumes/", "tests/", ".git/", "**/__pycache__/", ".env"):
        assert entry in ignored


def test_only_the_hotkey_file_reaches_the_miner():
    env = {"BT_WALLET_PATH": "/home/op/wallets", "BT_WALLET_NAME": "miner",
           "BT_WALLET_HOTKEY": "hot1"}
    miner = resolved("miner", env=env)["services"]["miner"]
    mounts = [(m["source"], m["target"], m.get("read_only")) for m in miner["volumes"]]
    assert mounts == [("/home/op/wallets/miner/hotkeys/hot1", "/wallets/miner/hotkeys/hot1", True)]
    assert miner["environment"]["BT_WALLET_PATH"] == "/wallets"


def test_the_sot_keys_reach_the_downloader_only():
    env = {"SOT_S3_ACCESS_KEY": "AKIA-test", "SOT_S3_SECRET_KEY": "s3cr3t"}
    services = resolved("miner", env=env)["services"]
    holders = sorted(name for name, svc in services.items()
                     if "s3cr3t" in json.dumps(svc) or "AKIA-test" in json.dumps(svc))
    assert holders == ["downloader"]


def test_images_install_pinned_versions_from_the_constraints_file():
    import tomllib

    text = DOCKERFILE.read_text()
    assert "COPY pyproject.toml README.md constraints.txt" in text
    assert 'pip install -c constraints.txt ".[' in text
    pins = dict(ln.split("==", 1) for ln in (REPO / "constraints.txt").read_text().splitlines()
                if ln and not ln.startswith("#"))
    pins = {re.sub(r"[-_.]+", "-", name).lower(): v for name, v in pins.items()}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [d for group in project["optional-dependencies"].values()
                                        for d in group if not d.startswith("aml-miner")]
    for dep in wanted:
        name = re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", dep).group(0)).lower()
        assert name in pins, f"{dep} (pyproject.toml) is not pinned in constraints.txt"
