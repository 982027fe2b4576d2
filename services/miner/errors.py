"""The miner's named exceptions and its one JSON error renderer."""

from __future__ import annotations

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES


class MinerConfigError(RuntimeError):
    """The miner cannot start as configured; the message names the variables to fix."""


class ChainUnavailable(RuntimeError):
    """The chain could not be reached or answered with an error."""


class Refused(HTTPException):
    """A request the miner will not serve; carries a short machine-readable reason."""

    def __init__(self, code: int, reason: str, description: str, headers: dict | None = None):
        super().__init__(description=f"{reason}: {description}")
        self.code = code
        self.reason = reason
        self.extra_headers = headers or {}

    @property
    def name(self) -> str:
        return HTTP_STATUS_CODES.get(self.code, "Error")


def render_http_error(exc: HTTPException) -> Response:
    """Render any HTTP error as JSON `{code, name, description}` (plus `reason` when we refused)."""
    body = {"code": exc.code, "name": exc.name, "description": exc.description}
    headers = {}
    if isinstance(exc, Refused):
        body["reason"] = exc.reason
        headers.update(exc.extra_headers)
    response = jsonify(body)
    response.status_code = exc.code or 500
    response.headers.update(headers)
    response.headers["Cache-Control"] = "no-store"  # a refusal is about this one request
    return response
