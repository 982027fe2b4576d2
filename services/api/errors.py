"""Every error as JSON `{code, name, description}`, rendered by one handler."""

from __future__ import annotations

import logging

from flask import Flask, Response
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound, ServiceUnavailable

from .render import dumps
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


def result_file_error(exc: ResultFileError) -> Response:
    """A published file the API cannot serve: the message names it, no traceback."""
    log.error("cannot serve a published file: %s", exc)
    return http_error(InternalServerError(str(exc)))


def unexpected_error(exc: Exception) -> Response:
    """Anything else: logged with its traceback, answered without it."""
    if isinstance(exc, HTTPException):
        return http_error(exc)
    log.exception("unhandled error")
    return http_error(InternalServerError())
