"""download_batch against a real S3-protocol server (moto) on loopback, through a fault proxy."""

from __future__ import annotations

import json
import logging

import pytest

from services.downloader.download import download_batch
from services.downloader.errors import BatchNotFound, DownloadError, TransientDownloadError
from tests.s3_fixtures import (DATE, NETWORK, WINDOW, fake_batch, moto_endpoint, proxy,  # noqa: F401
                               s3_proxy, sot, tree_bytes)


def _download(sot, settings, force=False, **changes):
    return download_batch(NETWORK, DATE, WINDOW, settings.INPUT_DIR, force=force,
                          settings=sot.settings.replace(**changes))


def test_smoke(sot, settings):
    files = fake_batch(3_000_000)
    sot.put_batch(files)
    summary = _download(sot, settings)
    folder = settings.INPUT_DIR / DATE
    got = tree_bytes(folder)
    for name, data in files.items():
        assert got[name] == data
    print(summary, sot.proxy.seen)
