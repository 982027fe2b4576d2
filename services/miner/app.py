"""The miner's Flask app: authenticate, authorise, rate-limit, then proxy to the internal API."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote

import redis
from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from shared.settings import Settings
from shared.version import package_version

from . import config, store
from .auth import RedisNonceStore, authenticate
from .chain import ChainMetagraphSource, chain_enabled, network_label
from .errors import Refused, render_http_error
from .health import StatusLog, build_report
from .identity import miner_hotkey
from .metagraph import MetagraphRefresher, MetagraphSource
from .proxy import Upstream
from .ratelimit import RateLimiter
from .validators import Authoriser, Policy

log = logging.getLogger(__name__)

# The API's read-only endpoints, the only paths a validator may ask for.
RESULT_ROUTES = (
    ("/scores/alerts/<date>", "alert_scores"),
    ("/rankings/alerts/<date>", "alert_rankings"),
    ("/scores/clusters/<date>", "cluster_scores"),
    ("/metadata/<date>", "metadata"),
    ("/dates", "dates"),
)
MAX_BODY = 64 * 1024  # GETs carry no body; anything big is not a validator


@dataclass
class MinerState:
    """Everything a request needs, built once per worker process."""

    settings: Settings
    hotkey: str
    redis: redis.Redis
    nonces: RedisNonceStore
    authoriser: Authoriser
    limiter: RateLimiter
    upstream: Upstream
    refresher: Optional[MetagraphRefresher]
    status_log: StatusLog

    def close(self) -> None:
        """Stop the refresh thread (tests; gunicorn just exits the worker)."""
        if self.refresher is not None:
            self.refresher.stop()


def create_app(settings: Optional[Settings] = None,
               metagraph_source: Optional[MetagraphSource] = None) -> Flask:
    """Build the app; with a chain configured a background thread keeps the metagraph fresh."""
    settings = settings or Settings.from_env()
    state = build_state(settings, metagraph_source)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["aml_miner"] = state
    app.register_error_handler(HTTPException, render_http_error)
    for rule, endpoint in RESULT_ROUTES:
        app.add_url_rule(rule, endpoint, serve_result, methods=["GET"])
    app.add_url_rule("/health", "health", health, methods=["GET"])
    app.add_url_rule("/health/details", "health_details", health_details, methods=["GET"])
    return app


def build_state(settings: Settings, source: Optional[MetagraphSource]) -> MinerState:
    """Load our hotkey, connect Redis and the API, and start the metagraph refresher."""
    config.check(settings)
    hotkey = miner_hotkey(settings)
    client = store.connect(settings)
    refresher = _start_refresher(settings, source)
    policy = Policy(allow_list=frozenset(settings.MINER_VALIDATOR_HOTKEYS), netuid=settings.NETUID,
                    chain_enabled=refresher is not None,
                    require_permit=settings.MINER_REQUIRE_VALIDATOR_PERMIT,
                    min_stake=settings.MINER_MIN_STAKE,
                    max_age=settings.MINER_METAGRAPH_MAX_AGE)
    snapshot = (lambda: refresher.snapshot) if refresher else (lambda: None)
    age = refresher.age if refresher else (lambda: None)
    log.info("miner %s: allow-list of %d hotkeys, chain %s, proxying to the result API",
             hotkey, len(policy.allow_list),
             f"{network_label(settings)} netuid {settings.NETUID}" if refresher else "off")
    return MinerState(
        settings=settings, hotkey=hotkey, redis=client, nonces=RedisNonceStore(client),
        authoriser=Authoriser(policy, snapshot, age),
        limiter=RateLimiter(client, settings.MINER_RATE_LIMIT, settings.MINER_RATE_WINDOW_SECONDS),
        upstream=Upstream(settings.API_URL, settings.MINER_UPSTREAM_TIMEOUT),
        refresher=refresher, status_log=StatusLog())


def _start_refresher(settings: Settings,
                     source: Optional[MetagraphSource]) -> Optional[MetagraphRefresher]:
    if source is None and not chain_enabled(settings):
        return None
    if source is None:
        source = ChainMetagraphSource(settings.SUBTENSOR_NETWORK, settings.NETUID)
    return MetagraphRefresher(source, settings.MINER_METAGRAPH_REFRESH_SECONDS).start()


def _state() -> MinerState:
    return current_app.extensions["aml_miner"]


def request_target() -> str:
    """The request target exactly as sent (path and query): what the validator signed."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    return raw or upstream_target()


def upstream_target() -> str:
    """The path as routed here (re-quoted) plus the query: the API sees what we authorised."""
    query = request.query_string.decode("latin-1")
    return quote(request.path) + (f"?{query}" if query else "")


def serve_result(**_params):
    """Authenticate, authorise, count, then stream the API's answer."""
    state = _state()
    caller = authenticate(request.headers, request.get_data(), method=request.method,
                          target=request_target(), self_hotkey=state.hotkey, store=state.nonces)
    decision = state.authoriser.decide(caller.hotkey_ss58)
    if not decision.allowed:
        log.info("refused %s %s for %s: %s", request.method, request.path, caller.hotkey_ss58,
                 decision.reason)
        raise Refused(decision.status, decision.reason, decision.description)
    state.limiter.enforce(caller.hotkey_ss58)
    started = time.perf_counter()
    response = state.upstream.forward(request.method, upstream_target(), request.headers)
    log.info("proxied %s %s for %s: %d in %.1f ms", request.method, request.path,
             caller.hotkey_ss58, response.status_code, (time.perf_counter() - started) * 1000)
    return response


def _report() -> tuple[dict, int]:
    state = _state()
    report, status = build_report(
        hotkey=state.hotkey, allow_list_size=len(state.authoriser.policy.allow_list),
        upstream=state.upstream, redis_client=state.redis, refresher=state.refresher,
        network=state.settings.SUBTENSOR_NETWORK, netuid=state.settings.NETUID,
        max_age=state.settings.MINER_METAGRAPH_MAX_AGE)
    state.status_log.note(report)
    return report, status


def health():
    """Unauthenticated: the status and the version only (details go to the log when the
    status changes)."""
    report, status = _report()
    return jsonify({"status": report["status"], "version": package_version()}), status


def health_details():
    """The full report, for a request signed by this miner's own hotkey (the operator)."""
    state = _state()
    caller = authenticate(request.headers, request.get_data(), method=request.method,
                          target=request_target(), self_hotkey=state.hotkey, store=state.nonces)
    if caller.hotkey_ss58 != state.hotkey:
        raise Refused(403, "not_operator",
                      "health details are for requests signed by this miner's own hotkey")
    report, status = _report()
    return jsonify(report), status
