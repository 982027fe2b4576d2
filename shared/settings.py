"""The one settings object: every configurable value, read from the environment once."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping


class SettingsError(ValueError):
    """A configuration variable is missing or malformed; the message names it."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true/false)")


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _convert(name: str, kind: type, raw: str, optional: bool = False):
    if optional and not raw.strip():
        return None
    if kind is bool:
        return _parse_bool(name, raw)
    if kind is tuple:
        return _parse_list(raw)
    try:
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from exc


@dataclass(frozen=True)
class Settings:
    """Typed configuration. Field names are the environment variable names."""

    # Data folders and the batch identity.
    INPUT_DIR: Path = Path("volumes/input")
    OUTPUT_DIR: Path = Path("volumes/output")
    MODELS_DIR: Path = Path("trained_models")
    NETWORK: str = "bitcoin"  # the one-network form of NETWORKS
    NETWORKS: tuple = field(default_factory=tuple)  # several networks; the first is the default
    WINDOW_DAYS: int = 7
    LOG_LEVEL: str = "INFO"

    # Prediction engine: compiled trees (lleaves) or LightGBM, and where compiled models are kept.
    PREDICT_ENGINE: str = "compiled"
    COMPILED_MODELS_DIR: Path = Path("volumes/compiled_models")

    # Source of truth (S3-compatible bucket). No keys means anonymous requests.
    SOT_S3_ENDPOINT: str = ""
    SOT_S3_BUCKET: str = "data-pipeline"
    SOT_S3_REGION: str = "nl-ams"
    SOT_S3_ACCESS_KEY: str = ""
    SOT_S3_SECRET_KEY: str = ""
    SOT_S3_CONNECT_TIMEOUT: float = 10.0
    SOT_S3_READ_TIMEOUT: float = 60.0
    SOT_S3_MAX_ATTEMPTS: int = 5
    SOT_S3_RETRY_MODE: str = "adaptive"
    SOT_S3_MAX_CONCURRENCY: int = 8
    SOT_S3_MULTIPART_THRESHOLD_MB: int = 8
    SOT_S3_MULTIPART_CHUNK_MB: int = 8
    SOT_REQUIRE_META: str = "auto"

    # Job chain (Redis + RQ).
    REDIS_URL: str = "redis://127.0.0.1:6379/0"
    REDIS_NAMESPACE: str = "auto"  # per-stack prefix of queues, job ids and ticks (jobs.namespace)
    QUEUE_DOWNLOAD: str = "download"
    QUEUE_PROCESS: str = "process"
    JOB_TIMEOUT_DOWNLOAD: int = 1800
    JOB_TIMEOUT_PROCESS: int = 1800
    JOB_RETRIES: int = 3
    JOB_RETRY_INTERVALS: tuple = ("30", "120", "600")
    SCHEDULE_ENABLED: bool = True
    SCHEDULE_TIME_UTC: str = "00:15"
    SCHEDULE_DATE_OFFSET_DAYS: int = 0
    PUBLISH_DEADLINE_UTC: str = "00:50"  # `status` warns when today's date is not published by then
    HEARTBEAT_DIR: Path = Path("volumes/heartbeat")
    HEARTBEAT_INTERVAL: int = 30

    # Result API.
    API_HOST: str = "127.0.0.1"
    API_PORT: int = 8000
    API_WORKERS: int = 2
    API_THREADS: int = 4

    # Bittensor miner.
    MINER_HOST: str = "0.0.0.0"
    MINER_PORT: int = 8091
    API_URL: str = "http://127.0.0.1:8000"
    BT_WALLET_NAME: str = "default"
    BT_WALLET_HOTKEY: str = "default"
    BT_WALLET_PATH: str = "~/.bittensor/wallets"
    NETUID: int | None = None  # no default: chain mode must name its subnet (miner config check)
    SUBTENSOR_NETWORK: str = "finney"
    MINER_VALIDATOR_HOTKEYS: tuple = field(default_factory=tuple)
    MINER_MIN_STAKE: float = 1000.0
    MINER_REQUIRE_VALIDATOR_PERMIT: bool = True
    MINER_PUBLISH_ENDPOINT: bool = True
    MINER_METAGRAPH_REFRESH_SECONDS: int = 300
    MINER_RATE_LIMIT: int = 120
    MINER_RATE_WINDOW_SECONDS: int = 60
    MINER_EXTERNAL_IP: str = ""
    MINER_EXTERNAL_PORT: int = 0
    MINER_WORKERS: int = 2
    MINER_UPSTREAM_TIMEOUT: float = 10.0

    # Learning from the SOT's labelled history (models per network and window).
    LEARNED_MODELS_DIR: Path = Path("volumes/models")
    LEARN_ENABLED: bool = True
    LEARN_HISTORY_DAYS: int = 30
    LEARN_EVERY_DAYS: int = 1
    LEARN_MAX_DATES: int = 30
    LEARN_MIN_DATES: int = 3
    LEARN_MAX_ROWS: int = 300_000
    LEARN_MIN_GAIN: float = 0.005
    LEARN_TOLERANCE: float = 0.01
    LEARN_REFIT: bool = True
    LEARN_HALF_LIFE_DAYS: float = 3.0
    LEARN_REPROCESS_TODAY: bool = True
    QUEUE_LEARN: str = "learn"
    JOB_TIMEOUT_LEARN: int = 3600
    # Where the models' code lives; the validator's Tier 1 gate wants it on every submission.
    MODEL_GITHUB_URL: str = ""

    # Miner hardening: its own Redis (nonces, rate limits), fail-fast, stale-metagraph limit.
    MINER_REDIS_URL: str = "redis://127.0.0.1:6379/1"
    MINER_REDIS_TIMEOUT: float = 0.5
    MINER_METAGRAPH_MAX_AGE: int = 1800
    MINER_WORKER_CONNECTIONS: int = 1000

    # Downloader hardening: a checksum mismatch is fetched again once after this pause.
    SOT_CHECKSUM_RETRY_SECONDS: float = 20.0

    # One publisher per date (a lock file on the volume) and how long dates are kept.
    PUBLISH_LOCK_WAIT_SECONDS: float = 600.0
    PUBLISH_LOCK_STALE_SECONDS: float = 120.0
    RETENTION_DAYS: int = 90

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Build settings from an environment mapping (default: os.environ) plus explicit overrides."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            if f.name in overrides:
                continue
            raw = environ.get(f.name)
            if raw is None or (f.name == "NETWORK" and not raw.strip()):
                continue  # an empty NETWORK (compose's `${NETWORK:-}`) means "not set"
            values[f.name] = _convert(f.name, _field_type(f), raw, _optional(f))
        values.update(overrides)
        _agree_networks(environ, values)
        return cls(**values)

    @property
    def networks(self) -> tuple[str, ...]:
        """The networks this stack serves, the default (NETWORK) first."""
        return self.NETWORKS or (self.NETWORK,)

    @property
    def default_network(self) -> str:
        """The network a command means when it names none: the first configured."""
        return self.networks[0]

    @property
    def multi_network(self) -> bool:
        return len(self.networks) > 1

    def check_network(self, network: str) -> str:
        """`network` if configured, else a SettingsError naming the configured ones."""
        if network not in self.networks:
            raise SettingsError(f"network {network!r} is not configured "
                                f"(NETWORKS: {', '.join(self.networks)})")
        return network

    def network_input_dir(self, network: str | None = None) -> Path:
        """A network's input root: INPUT_DIR itself with one network, INPUT_DIR/{network} with several."""
        return _network_dir(self, self.INPUT_DIR, network)

    def network_output_dir(self, network: str | None = None) -> Path:
        """A network's output root: OUTPUT_DIR itself with one network, OUTPUT_DIR/{network} with several."""
        return _network_dir(self, self.OUTPUT_DIR, network)

    def to_env(self) -> dict[str, str]:
        """The environment variables that rebuild these settings with from_env (child processes)."""
        return {f.name: _env_value(getattr(self, f.name)) for f in fields(self)}

    def replace(self, **changes) -> "Settings":
        """A copy with some fields changed (tests and CLI flags use this)."""
        return dataclasses.replace(self, **changes)


_NETWORK_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def _agree_networks(environ: Mapping[str, str], values: dict) -> None:
    """NETWORKS wins and sets NETWORK to its first; both set and disagreeing is refused."""
    networks = values.get("NETWORKS") or ()
    for name in (*networks, values.get("NETWORK", "bitcoin")):
        if not _NETWORK_NAME.fullmatch(name):
            raise SettingsError(f"network name {name!r} (NETWORK/NETWORKS) must be lower-case "
                                "letters, digits, '-' or '_', at most 32 characters")
    if len(set(networks)) != len(networks):
        raise SettingsError(f"NETWORKS={','.join(networks)} names a network twice")
    if not networks:
        return
    explicit = (environ.get("NETWORK") or "").strip()
    if explicit and explicit != networks[0]:
        raise SettingsError(f"NETWORK={explicit} disagrees with NETWORKS={','.join(networks)} "
                            "(set only NETWORKS, or make NETWORK its first entry)")
    values["NETWORK"] = networks[0]


def _network_dir(settings: "Settings", root: Path, network: str | None) -> Path:
    network = settings.check_network(network or settings.default_network)
    return Path(root) / network if settings.multi_network else Path(root)


def _env_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "" if value is None else str(value)


def _optional(f: dataclasses.Field) -> bool:
    """`int | None`: an empty value means "not set"."""
    return isinstance(f.type, str) and f.type.endswith("| None")


def _field_type(f: dataclasses.Field) -> type:
    names = {"Path": Path, "str": str, "int": int, "float": float, "bool": bool, "tuple": tuple}
    if isinstance(f.type, str):
        return names[f.type.removesuffix("| None").strip()]
    return f.type
