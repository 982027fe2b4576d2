"""Shared fixtures: temporary folders, settings built for a test, the Redis test database."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings
from tests import redis_db

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing every folder into the test's own temporary directory."""
    return Settings.from_env({}).replace(
        INPUT_DIR=tmp_path / "input",
        OUTPUT_DIR=tmp_path / "output",
        MODELS_DIR=REPO / "trained_models",
        HEARTBEAT_DIR=tmp_path / "heartbeat",
        LEARNED_MODELS_DIR=tmp_path / "models",
        MODEL_GITHUB_URL="https://github.com/example/aml-miner",
        REDIS_URL=redis_db.url(13),
    )
