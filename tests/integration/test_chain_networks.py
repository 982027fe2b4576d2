"""One stack, two networks: the chain publishes each into its own folder, one network's failure
leaves the other alone, `status` gives an overview, a one-network layout moves on the first
start with both, and an unconfigured network is refused by every command."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rq.job import JobStatus

from services.ops.overview import overview
from shared import jobs, schedule, storage
from shared.sample import generate_batch, write_input, write_sot
from tests.chain_fixtures import (CHAIN, REPO, chain_settings, cli, conn,  # noqa: F401
                                  process_env, run_chain, use_env, wait_for, work,
                                  write_repeated_alert_ids)
from tests.s3_fixtures import DATE, WINDOW, moto_endpoint, proxy, s3_proxy, sot  # noqa: F401

NETWORKS = ("bitcoin", "torus")
TODAY = dt.datetime.now(dt.timezone.utc).date().isoformat()


@pytest.fixture(scope="module")
def two_networks_sot(tmp_path_factory) -> Path:
    """DATE of both networks in the SOT layout, each with its own data and labels."""
    root = tmp_path_factory.mktemp("sot-two")
    for seed, network in enumerate(NETWORKS):
        write_sot(generate_batch(network, DATE, WINDOW, n_alerts=300, seed=seed), root)
    return root


@pytest.fixture
def s(sot, two_networks_sot, conn, use_env):
    sot.put_tree(two_networks_sot)
    return use_env(sot.settings.replace(**CHAIN, NETWORKS=NETWORKS))


def metadata(settings, network: str, date: str = DATE) -> dict:
    return json.loads((settings.OUTPUT_DIR / network / date / storage.METADATA).read_text())


def test_both_networks_are_published_each_in_its_own_folder(s, conn):
    for network in NETWORKS:
        assert jobs.enqueue_download(s, network, DATE, WINDOW).enqueued
    run_chain(s, conn)
    for network in NETWORKS:
        assert jobs.date_status(s, network, DATE, WINDOW).state == "published"
        assert storage.published_dates(s.INPUT_DIR / network) == [DATE]
        meta = metadata(s, network)
        assert (meta["network"], meta["alert_count"]) == (network, 300)
        assert meta["model_set"]["source"] == "shipped"  # every network's cold start
    assert storage.published_dates(s.OUTPUT_DIR) == []  # nothing at the top any more
    scored = {n: (s.OUTPUT_DIR / n / DATE / storage.ALERTS_SCORED).read_bytes() for n in NETWORKS}
    assert scored["bitcoin"] != scored["torus"]  # each scored its own batch
    out = cli("status", "--network", "torus", "--processing-date", DATE, env=process_env(s))
    assert out.returncode == 0 and f"process-torus-{DATE}-{WINDOW}: published" in out.stdout


def test_a_failing_network_leaves_the_other_published(s, sot, conn, tmp_path):
    write_repeated_alert_ids(tmp_path / "bad", "torus", DATE, WINDOW, seed=9)
    sot.put_tree(tmp_path / "bad")
    for network in ("torus", "bitcoin"):  # the failing one first in every queue
        assert jobs.enqueue_download(s, network, DATE, WINDOW).enqueued
    run_chain(s, conn)
    torus = jobs.date_status(s, "torus", DATE, WINDOW)
    assert torus.state == "failed" and "alert_id" in torus.reason
    assert jobs.date_status(s, "bitcoin", DATE, WINDOW).state == "published"
    assert storage.resolve(s.OUTPUT_DIR / "torus" / DATE) is None
    out = cli("status", "--network", "torus", "--processing-date", DATE, env=process_env(s))
    assert out.returncode == 1 and "failed" in out.stdout
    out = cli("status", "--processing-date", DATE, env=process_env(s))  # the first network
    assert out.returncode == 0 and "published" in out.stdout


def publish_today(settings, network: str) -> None:
    """Today's output of a network, as the chain leaves it (metadata names network, window)."""
    target = storage.date_dir(settings.network_output_dir(network), TODAY)
    with storage.staging_dir(target) as tmp:
        (tmp / storage.METADATA).write_text(json.dumps({"network": network,
                                                        "window_days": WINDOW}))
    storage.publish(tmp, target)


def test_status_without_a_date_gives_every_network_and_warns_when_today_is_late(s, conn):
    publish_today(s, "bitcoin")
    late = cli("status", env=process_env(s.replace(PUBLISH_DEADLINE_UTC="00:00")))
    assert late.returncode == 1, late.stderr
    bitcoin, torus = late.stdout.split("torus:")
    assert f"newest published: {TODAY}" in bitcoin and "WARNING" not in bitcoin
    assert "model set: shipped (shipped)" in bitcoin
    assert "newest published: none" in torus and f"today ({TODAY}): " in torus
    assert f"WARNING: {TODAY} is not published by PUBLISH_DEADLINE_UTC 00:00" in torus
    one = cli("status", "--network", "bitcoin", "--json",
              env=process_env(s.replace(PUBLISH_DEADLINE_UTC="00:00")))
    assert one.returncode == 0
    [record] = json.loads(one.stdout)
    assert (record["network"], record["today_state"], record["warning"]) == \
        ("bitcoin", "published", "")


def test_no_warning_before_the_deadline(s, conn):
    before = dt.datetime.combine(dt.date.fromisoformat(TODAY), dt.time(0, 30),
                                 tzinfo=dt.timezone.utc)
    rows = overview(s, list(NETWORKS), conn, now=before)
    assert [(r.network, r.today_state, r.warning) for r in rows] == \
        [("bitcoin", "not-enqueued", ""), ("torus", "not-enqueued", "")]
    after = before + dt.timedelta(minutes=20)
    assert all("not published by PUBLISH_DEADLINE_UTC 00:50" in r.warning
               for r in overview(s, list(NETWORKS), conn, now=after))


def test_the_schedule_arms_one_daily_tick_per_network(chain_settings, conn):
    s = chain_settings.replace(NETWORKS=NETWORKS, SCHEDULE_ENABLED=True)
    now = dt.datetime(2025, 10, 26, 13, 0, tzinfo=dt.timezone.utc)
    assert schedule.ensure_armed(s, conn, now=now) == [
        "schedule-bitcoin-7-20251026T0015", "schedule-bitcoin-7-20251027T0015",
        "schedule-torus-7-20251026T0015", "schedule-torus-7-20251027T0015"]
    out = cli("schedule", "--arm", env=process_env(s))  # today's real ticks
    assert out.stdout.count("(armed)") == 2 and "enqueues torus" in out.stdout


def test_a_tick_enqueues_only_its_own_network(chain_settings, conn, use_env):
    s = use_env(chain_settings.replace(NETWORKS=NETWORKS, SCHEDULE_ENABLED=True))
    tick = dt.datetime(2025, 10, 26, 0, 15, tzinfo=dt.timezone.utc)
    assert schedule.arm(s, conn, tick, "torus")
    work(conn, s.QUEUE_DOWNLOAD, max_jobs=1, scheduler=True)
    assert jobs.fetch(conn, "download-torus-2025-10-26-7").get_status() == JobStatus.QUEUED
    assert jobs.fetch(conn, "download-bitcoin-2025-10-26-7") is None
    assert jobs.fetch(conn, "schedule-torus-7-20251027T0015").get_status() == \
        JobStatus.SCHEDULED


def test_the_first_start_with_two_networks_moves_the_one_network_layout(s, conn, use_env):
    one = use_env(s.replace(NETWORKS=()))  # the stack as it ran before NETWORKS was set
    assert jobs.enqueue_download(one, "bitcoin", DATE, WINDOW).enqueued
    run_chain(one, conn)
    version = storage.resolve(s.OUTPUT_DIR / DATE)
    assert version is not None
    start = subprocess.run([sys.executable, "-m", "services.cli", "worker", "download",
                            "--burst"], cwd=REPO, env=process_env(s), capture_output=True,
                           text=True, timeout=120)
    assert start.returncode == 0, start.stdout + start.stderr
    # the date, .versions/, .published/ and .locks/ of each root
    assert f"layout: moved 4 one-network entries of {s.OUTPUT_DIR} into bitcoin/" in start.stdout
    assert f"layout: moved 4 one-network entries of {s.INPUT_DIR} into bitcoin/" in start.stdout
    assert storage.published_dates(s.OUTPUT_DIR) == []
    assert storage.resolve(s.OUTPUT_DIR / "bitcoin" / DATE).name == version.name
    status = jobs.date_status(s, "bitcoin", DATE, WINDOW)
    assert (status.state, status.version) == ("published", version.name)
    again = jobs.enqueue_download(s, "bitcoin", DATE, WINDOW)
    assert not again.enqueued and "already published" in again.message


def test_a_process_worker_serves_both_networks_with_models_loaded_at_start(
        chain_settings, conn, tmp_path, compiled_cache):
    s = chain_settings.replace(NETWORKS=NETWORKS, INPUT_DIR=tmp_path / "input")
    for seed, network in enumerate(NETWORKS):
        write_input(generate_batch(network, DATE, WINDOW, n_alerts=300, seed=seed),
                    s.network_input_dir(network))
        jobs.enqueue_process(s, network, DATE, WINDOW, connection=conn)
    out = subprocess.run([sys.executable, "-m", "services.cli", "worker", "process", "--burst"],
                         cwd=REPO, env=process_env(s), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    log = out.stdout + out.stderr
    assert "not preloaded" not in log
    assert log.index("for bitcoin 7d (the shipped set") < log.index("Listening on")
    assert log.count("models loaded from") == 1  # both networks' cold start: one shared copy
    for network in NETWORKS:
        assert jobs.date_status(s, network, DATE, WINDOW).state == "published"
        assert json.loads((s.OUTPUT_DIR / network / DATE / storage.METADATA).read_text())[
            "network"] == network


def test_a_batch_of_another_network_is_never_published_as_this_one(chain_settings, conn,
                                                                   tmp_path, use_env):
    s = use_env(chain_settings.replace(NETWORKS=NETWORKS, INPUT_DIR=tmp_path / "input"))
    write_input(generate_batch("bitcoin", DATE, WINDOW, n_alerts=300),
                s.network_input_dir("torus"))  # misplaced by hand
    jobs.enqueue_process(s, "torus", DATE, WINDOW, connection=conn)
    work(conn, s.QUEUE_PROCESS)
    status = jobs.date_status(s, "torus", DATE, WINDOW)
    assert status.state == "failed" and "of network bitcoin, not the requested torus" in \
        status.reason


@pytest.mark.parametrize("command", [
    ["enqueue", "--processing-date", DATE],
    ["status", "--processing-date", DATE],
    ["status"],
    ["schedule"],
    ["download", "--processing-date", DATE],
    ["process", "--processing-date", DATE],
    ["learn", "--processing-date", DATE],
    ["models", "list"],
    ["validate", "--processing-date", DATE],
    ["evaluate", "--dates", DATE],
    ["sample", "--processing-date", DATE, "--output-dir", "unused"],
])
def test_every_command_refuses_a_network_that_is_not_configured(chain_settings, command):
    s = chain_settings.replace(NETWORKS=NETWORKS)
    out = cli(*command, "--network", "ethereum", env=process_env(s))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "network 'ethereum' is not configured (NETWORKS: bitcoin, torus)" in out.stderr


def test_the_sample_sot_publishes_every_network_with_its_own_labels(sot, tmp_path):
    from services.ops.sot_server import publish_date

    s = sot.settings.replace(NETWORKS=NETWORKS)
    publish_date(s, sot.bucket, DATE, 50, tmp_path)
    keys = {o["Key"] for o in sot.client.list_objects_v2(Bucket=sot.bucket)["Contents"]}
    for network in NETWORKS:
        assert f"{storage.sot_prefix(network, DATE, WINDOW)}alerts.parquet" in keys
        assert storage.labels_key(network) in keys
    labels = [sot.client.get_object(Bucket=sot.bucket, Key=storage.labels_key(n))["Body"].read()
              for n in NETWORKS]
    assert labels[0] != labels[1]


def test_sample_writes_every_network_into_its_own_input_folder(chain_settings, tmp_path):
    s = chain_settings.replace(NETWORKS=NETWORKS)
    out = cli("sample", "--processing-date", DATE, "--output-dir", str(tmp_path / "sot"),
              "--input-dir", str(s.INPUT_DIR), "--alerts", "50", env=process_env(s))
    assert out.returncode == 0, out.stderr
    labels = {}
    for network in NETWORKS:
        meta = json.loads((s.INPUT_DIR / network / DATE / "META.json").read_text())
        assert meta["network"] == network
        assert (tmp_path / "sot" / storage.sot_prefix(network, DATE, WINDOW)).is_dir()
        labels[network] = (s.INPUT_DIR / network / DATE / "address_labels.parquet").read_bytes()
    assert labels["bitcoin"] != labels["torus"]
    assert storage.published_dates(s.INPUT_DIR) == []


def test_validate_judges_one_network_of_several(s, conn):
    for network in NETWORKS:
        jobs.enqueue_download(s, network, DATE, WINDOW)
    run_chain(s, conn)
    out = cli("validate", "--network", "torus", "--processing-date", DATE,
              env=process_env(s), timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "INTEGRITY GATE: PASS" in out.stdout and "DETERMINISM: PASS" in out.stdout
    report = json.loads((s.OUTPUT_DIR.parent / "reports" / f"validate_torus_{DATE}.json")
                        .read_text())
    assert report["processing_date"] == DATE


def test_download_and_backfill_commands_write_into_the_network_folder(s):
    env = process_env(s)
    out = cli("backfill", "--network", "torus", "--from", DATE, "--to", DATE, env=env)
    assert out.returncode == 0, out.stderr
    assert storage.published_dates(s.INPUT_DIR / "torus") == [DATE]
    out = cli("download", "--processing-date", DATE, "--output-dir", str(s.INPUT_DIR / "top"),
              env=env)  # --output-dir is the top root: the first network's folder in it
    assert out.returncode == 0, out.stderr
    assert storage.published_dates(s.INPUT_DIR / "top" / "bitcoin") == [DATE]
    assert not (s.INPUT_DIR / "bitcoin").exists()
