"""Every error as JSON `{code, name, description}`, rendered by one handler."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound, ServiceUnavailable

from shared.bodies import dumps

from .results import DateChanging, DateNotFound
from .store import ResultFileError

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    """Install the handlers on an app."""
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(DateNotFound, date_not_found)
    app.register_error_handler(DateChanging, date_changing)
    app.register_error_handler(ResultFileError, result_file_error)
    app.register_error_handler(Exception, unexpected_error)


def http_error(exc: HTTPException) -> Response:
    """Any werkzeug HTTP error (400, 404, 405, ...) as JSON, keeping headers such as Allow."""
    body = {"code": exc.code, "name": exc.name, "description": exc.description}
    response = Response(dumps(body), status=exc.code, mimetype="application/json")
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


def date_not_found(exc: DateNotFound) -> Response:
    """A date with no complete published folder."""
    return http_error(NotFound(f"no results are published for date {exc.args[0]!r}"))


def date_changing(exc: DateChanging) -> Response:
    """A date re-published faster than it could be read: ask the client to retry."""
    error = ServiceUnavailable(f"date {exc.args[0]!r} is being re-published; retry shortly")
    response = http_error(error)
    response.headers["Retry-After"] = "1"
    return response


def _internal_error(error_id: str) -> Response:
    """A 500 that says only that it happened and the id under which the log has the details."""
    return http_error(InternalServerError(
        f"internal error (id {error_id}); the server's log has the details under this id"))


def new_error_id() -> str:
    """A short random id that ties a 500 answer to its log line."""
    return uuid.uuid4().hex[:12]


def result_file_error(exc: ResultFileError) -> Response:
    """A published file the API cannot serve: named in the log (it may quote server paths)."""
    error_id = new_error_id()
    log.error("error %s: cannot serve a published file: %s", error_id, exc)
    return _internal_error(error_id)


def unexpected_error(exc: Exception) -> Response:
    """Anything else: logged with its traceback under an id, answered with the id only."""
    if isinstance(exc, HTTPException):
        return http_error(exc)
    error_id = new_error_id()
    log.exception("error %s: unhandled error", error_id)
    return _internal_error(error_id)
