"""The GET endpoints: scores, rankings, cluster scores, metadata, dates, health, OpenAPI."""

from __future__ import annotations

from flask import Blueprint, current_app, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from shared.bodies import ALERT_RANKINGS, ALERT_SCORES, CLUSTER_SCORES, ListKind, dumps
from shared.version import package_version

from . import params, responses
from .results import Results

bp = Blueprint("results", __name__)


class AnyTextConverter(BaseConverter):
    """Captures the rest of the path, slashes included, so the view can refuse it with 400."""

    regex = r"[\s\S]*"  # newlines too: any text must reach the 400, not a routing 404
    part_isolating = False


def _results() -> Results:
    return current_app.extensions["aml_results"]


def _network() -> str:
    return current_app.config["AML_SETTINGS"].NETWORK


def _concrete(raw: str) -> tuple[str, str]:
    """The validated date (with `latest` resolved) and the Cache-Control it deserves."""
    date = params.date_param(raw)
    params.check_network(request.args, _network())
    if date != params.LATEST:
        return date, responses.IMMUTABLE
    latest = _results().latest()
    if latest is None:
        raise NotFound("no date has been published yet")
    return latest, responses.REVALIDATE


def _list(raw: str, kind: ListKind):
    date, cache_control = _concrete(raw)
    wanted = params.page_param(request.args)
    return _results().answer(date, lambda version: responses.send_list(
        request, version, kind, wanted, cache_control))


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
    date, cache_control = _concrete(date)
    return _results().answer(date, lambda version: responses.send_metadata(
        request, version, cache_control))


@bp.get("/dates")
def dates():
    """Published dates, newest first, and the newest one."""
    params.check_network(request.args, _network())
    listed = _results().dates()
    body = responses.static(dumps({"dates": listed, "latest": listed[0] if listed else None}),
                            precompress=False)
    return responses.send_static(request, body, responses.REVALIDATE)


@bp.get("/health")
def health():
    """Liveness, whether OUTPUT_DIR is readable, the newest date, and this code's version."""
    results = _results()
    readable = results.folder.readable()
    latest = results.latest() if readable else None
    body = {"status": "ok" if readable else "unavailable", "output_dir_readable": readable,
            "latest": latest, "network": _network(), "version": package_version()}
    return responses.send_json(dumps(body), 200 if readable else 503)


@bp.get("/openapi.json")
def openapi():
    """This API's OpenAPI description."""
    return responses.send_static(request, current_app.extensions["aml_openapi"],
                                 responses.REVALIDATE)
