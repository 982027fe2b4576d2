"""The installed aml-miner package's version, for `aml-miner --version` and both /health answers."""

from __future__ import annotations

from functools import lru_cache
from importlib import metadata


@lru_cache(maxsize=1)
def package_version() -> str:
    """pyproject.toml's version as installed; says so when the package is not installed."""
    try:
        return metadata.version("aml-miner")
    except metadata.PackageNotFoundError:
        return "unknown (the aml-miner package is not installed: run `make setup`)"
