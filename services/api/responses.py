"""HTTP responses from rendered bodies: ETag/304, precompressed gzip, caching headers."""

from __future__ import annotations

from flask import Request, Response

from .params import Page
from .render import Body, etag_for, page

# A concrete date's folder is replaced only when an operator re-runs that date.
IMMUTABLE = "public, max-age=86400, immutable"
# `latest`, /dates and the like change when a date is published: always revalidate (ETag).
REVALIDATE = "public, no-cache"
NO_STORE = "no-store"


def send(request: Request, body: Body, cache_control: str) -> Response:
    """The body, or its gzip form when accepted, or 304 when the client already has it."""
    use_gzip = body.gzip is not None and request.accept_encodings["gzip"] > 0
    etag = body.gzip_etag if use_gzip else body.etag
    if request.if_none_match.contains_weak(etag):
        return _not_modified(etag, cache_control)
    response = Response(body.gzip if use_gzip else body.data, mimetype="application/json")
    if use_gzip:
        response.headers["Content-Encoding"] = "gzip"
    return _finish(response, etag, cache_control)


def send_page(request: Request, body: Body, wanted: Page, cache_control: str) -> Response:
    """A page of a list body: sliced from the cached bytes, sent uncompressed."""
    if wanted.is_everything:
        return send(request, body, cache_control)
    etag = etag_for(body.etag, wanted.offset, wanted.limit)
    if request.if_none_match.contains_weak(etag):
        return _not_modified(etag, cache_control)
    response = Response(page(body, wanted.offset, wanted.limit), mimetype="application/json")
    return _finish(response, etag, cache_control)


def send_json(data: bytes, status: int = 200) -> Response:
    """A small uncached JSON response (health)."""
    response = Response(data, status=status, mimetype="application/json")
    response.headers["Cache-Control"] = NO_STORE
    return response


def _not_modified(etag: str, cache_control: str) -> Response:
    response = Response(status=304)
    del response.headers["Content-Type"]  # a 304 has no body to describe
    return _finish(response, etag, cache_control)


def _finish(response: Response, etag: str, cache_control: str) -> Response:
    response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    response.headers["Vary"] = "Accept-Encoding"
    return response
