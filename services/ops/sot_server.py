"""The bundled sample SOT: an S3-protocol server (moto) holding generated batches.

It lets `docker compose up` (and `aml-miner stack`) run the whole chain with no
credentials, through the exact production download path. At start it publishes, for every
configured network (NETWORKS), a history (the previous days, oldest first, with one
cumulative labels file per network, so the learner has something to learn from) and today's
date, then the READY object its healthcheck looks for; afterwards each new UTC day's date
as the day begins, so the daily schedule always finds its date.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
import time
from pathlib import Path

from shared import sample, storage
from shared.settings import Settings

log = logging.getLogger(__name__)

CHECK_EVERY_S = 300


READY_KEY = "READY"  # uploaded once the first round is published; the healthcheck GETs it


def sample_dates(today: dt.date, days_back: int) -> list[str]:
    """The days_back dates before today and today, oldest first."""
    return [(today - dt.timedelta(days=n)).isoformat() for n in range(days_back, -1, -1)]


def publish_date(settings: Settings, bucket: str, date: str, alerts: int, root: Path) -> None:
    """Generate one sample date of every configured network and upload each batch with its
    network's labels (each network's data and labels are its own)."""
    for network in settings.networks:
        publish_network_date(settings, bucket, network, date, alerts, root)


def publish_network_date(settings: Settings, bucket: str, network: str, date: str, alerts: int,
                         root: Path) -> None:
    """Generate one network's sample date and upload its batch and the network's labels."""
    from services.ops.upload import upload_tree

    started = time.monotonic()
    batch = sample.generate_batch(network, date, settings.WINDOW_DAYS, n_alerts=alerts)
    sample.write_sot(batch, root)
    only = (storage.sot_prefix(network, date, settings.WINDOW_DAYS), storage.labels_key(network))
    upload_tree(root, settings, bucket=bucket, only=only)
    log.info("sample SOT: published %s %s (%d alerts) to s3://%s in %.1f s",
             network, date, alerts, bucket, time.monotonic() - started)


def keep_publishing(settings: Settings, bucket: str, alerts: int, days_back: int,
                    stop: threading.Event) -> None:
    """Publish missing sample dates now and whenever a new UTC day starts, until stop is set."""
    done: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="sample-sot-") as tmp:
        while not stop.is_set():
            today = dt.datetime.now(dt.timezone.utc).date()
            for date in sample_dates(today, days_back):
                if date not in done:
                    publish_date(settings, bucket, date, alerts, Path(tmp))
                    done.add(date)
            if len(done) == days_back + 1:
                mark_ready(settings, bucket)
            stop.wait(CHECK_EVERY_S)


def mark_ready(settings: Settings, bucket: str) -> None:
    """Upload the READY object (once): every date of the first round is there."""
    from shared.s3 import make_client

    client = make_client(settings.replace(SOT_S3_BUCKET=bucket))
    client.put_object(Bucket=bucket, Key=READY_KEY, Body=b"ready\n")
    log.info("sample SOT: history published; s3://%s/%s is up", bucket, READY_KEY)


def create_public_bucket(settings: Settings, bucket: str) -> None:
    """The bucket, readable by anyone (list + get), like the public SOT."""
    from services.ops.upload import ensure_bucket
    from shared.s3 import make_client

    client = make_client(settings.replace(SOT_S3_BUCKET=bucket))
    ensure_bucket(client, bucket, settings.SOT_S3_REGION, public=True)


def serve(settings: Settings, host: str, port: int, bucket: str, alerts: int,
          days_back: int) -> None:
    """Run the S3 server and the publisher until SIGTERM/SIGINT."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per S3 request is noise here
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    log.info("sample SOT: S3 server listening on %s:%d, bucket %s", host, port, bucket)
    # The publisher writes with (any) keys; readers stay anonymous, as with the real SOT.
    local = settings.replace(SOT_S3_ENDPOINT=f"http://127.0.0.1:{port}",
                             SOT_S3_ACCESS_KEY="sample-sot", SOT_S3_SECRET_KEY="sample-sot")
    create_public_bucket(local, bucket)
    stop = threading.Event()
    try:
        keep_publishing(local, bucket, alerts, days_back, stop)
    finally:
        server.stop()
