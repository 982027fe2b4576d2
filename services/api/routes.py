"""The GET endpoints: scores, rankings, cluster scores, metadata, dates, health, OpenAPI."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from shared.bodies import ALERT_RANKINGS, ALERT_SCORES, CLUSTER_SCORES, ListKind, dumps
from shared.version import package_version

from . import params, responses, store
from .results import Results

bp = Blueprint("results", __name__)


class AnyTextConverter(BaseConverter):
    """Captures the rest of the path, slashes included, so the view can refuse it with 400."""

    regex = r"[\s\S]*"  # newlines too: any text must reach the 400, not a routing 404
    part_isolating = False


def _networks() -> dict[str, Results]:
    return current_app.extensions["aml_networks"]


def _asked() -> Results:
    """The results of the network `?network=` names (the default one when absent), else 404."""
    networks = _networks()
    return networks[params.network_param(request.args, tuple(networks))]


def _concrete(raw: str) -> tuple[Results, str, str]:
    """The asked network's results, the validated date (`latest` resolved in that network)
    and the Cache-Control it deserves."""
    date = params.date_param(raw)
    results = _asked()
    if date != params.LATEST:
        return results, date, responses.IMMUTABLE
    latest = results.latest()
    if latest is None:
        raise NotFound("no date has been published yet")
    return results, latest, responses.REVALIDATE


def _list(raw: str, kind: ListKind):
    results, date, cache_control = _concrete(raw)
    wanted = params.page_param(request.args)
    return results.answer(date, lambda version: responses.send_list(
        request, version, kind, wanted, cache_control, results.etag_scope))


@bp.get("/scores/alerts/<anytext:date>")
def alert_scores(date: str):
    """Every alert's score for a date."""
    return _list(date, ALERT_SCORES)


@bp.get("/rankings/alerts/<anytext:date>")
def alert_rankings(date: str):
    """Every alert's rank for a date, rank 1 first."""
    return _list(date, ALERT_RANKINGS)


@bp.get("/scores/clusters/<anytext:date>")
def cluster_scores(date: str):
    """Every cluster's score for a date."""
    return _list(date, CLUSTER_SCORES)


@bp.get("/metadata/<anytext:date>")
def metadata(date: str):
    """The date's metadata.json as published."""
    results, date, cache_control = _concrete(date)
    return results.answer(date, lambda version: responses.send_metadata(
        request, version, cache_control, results.etag_scope))


@bp.get("/dates")
def dates():
    """Published dates of the asked network, newest first, and the newest one."""
    results = _asked()
    listed = results.dates()
    body = responses.static(dumps({"dates": listed, "latest": listed[0] if listed else None}),
                            precompress=False, scope=results.etag_scope)
    return responses.send_static(request, body, responses.REVALIDATE)


@bp.get("/health")
def health():
    """Liveness, whether OUTPUT_DIR is readable, the newest date, and this code's version.

    `latest` and `network` are the default network's; with several networks, `networks`
    gives each one's newest date.
    """
    networks = _networks()
    readable = store.readable(current_app.config["AML_SETTINGS"].OUTPUT_DIR)
    newest = {name: results.latest() if readable else None for name, results in networks.items()}
    default = next(iter(networks))
    body = {"status": "ok" if readable else "unavailable", "output_dir_readable": readable,
            "latest": newest[default], "network": default}
    if len(networks) > 1:
        body["networks"] = newest
    body["version"] = package_version()
    return responses.send_json(dumps(body), 200 if readable else 503)


@bp.get("/openapi.json")
def openapi():
    """This API's OpenAPI description."""
    return responses.send_static(request, current_app.extensions["aml_openapi"],
                                 responses.REVALIDATE)
