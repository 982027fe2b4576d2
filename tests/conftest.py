"""Shared fixtures: temporary folders, settings built for a test, the Redis test database,
and the compiled shipped models."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings
from tests import redis_db

REPO = Path(__file__).resolve().parent.parent
# The default COMPILED_MODELS_DIR of a run from the checkout (tests run from it too, so code
# that builds its own default Settings finds the same entries). Entries are keyed by the
# model's sha256 and the toolchain and checked against their digest, so tests share them
# with the developer's own runs; the tests of the cache itself use folders of their own.
COMPILED_CACHE = REPO / "volumes" / "compiled_models"


@pytest.fixture(scope="session")
def compiled_cache() -> Path:
    """COMPILED_CACHE with the shipped models compiled (once; minutes on a cold checkout), so
    workers started by a test load them at once instead of compiling inside its deadlines."""
    from services.processor.predictor import warm_cache

    engines = warm_cache(REPO / "trained_models", COMPILED_CACHE)
    assert {r["engine"] for r in engines.values()} == {"compiled"}, engines
    return COMPILED_CACHE


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing every folder into the test's own temporary directory."""
    return Settings.from_env({}).replace(
        INPUT_DIR=tmp_path / "input",
        OUTPUT_DIR=tmp_path / "output",
        MODELS_DIR=REPO / "trained_models",
        COMPILED_MODELS_DIR=COMPILED_CACHE,
        HEARTBEAT_DIR=tmp_path / "heartbeat",
        LEARNED_MODELS_DIR=tmp_path / "models",
        MODEL_GITHUB_URL="https://github.com/example/aml-miner",
        REDIS_URL=redis_db.url(13),
    )
