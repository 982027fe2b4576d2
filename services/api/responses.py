"""HTTP responses from rendered bodies: ETag/304, precompressed gzip, caching headers.

`negotiate` is the one place these rules live; the Flask views and the cache-hit
fast path (fastpath.py) both turn its (status, headers, payload) into a response.
"""

from __future__ import annotations

from functools import lru_cache

from flask import Request, Response
from werkzeug.http import parse_accept_header, parse_etags

from .params import Page
from .render import Body, etag_for, page

# A concrete date's folder is replaced only when an operator re-runs that date; a day
# bounds how long a cache can keep the old one.
IMMUTABLE = "public, max-age=86400, immutable"
# `latest`, /dates and the like change when a date is published: always revalidate (ETag).
REVALIDATE = "public, no-cache"
NO_STORE = "no-store"
JSON = "application/json"

# (status, headers, body pieces): a WSGI layer can return the pieces as they are.
Negotiated = tuple[int, list[tuple[str, str]], tuple[bytes, ...]]


@lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding value allows gzip (q-values honoured; clients repeat few values)."""
    return parse_accept_header(accept_encoding)["gzip"] > 0


def negotiate(body: Body, cache_control: str, accept_encoding: str | None,
              if_none_match: str | None) -> Negotiated:
    """The body, or its gzip form when accepted, or 304 when the client already has it."""
    if body.gzip_chunks is not None and accepts_gzip(accept_encoding):
        return _negotiated(body.gzip_chunks, body.gzip_etag, cache_control, if_none_match,
                           gzipped=True)
    return _negotiated(body.chunks, body.etag, cache_control, if_none_match)


def negotiate_page(body: Body, wanted: Page, cache_control: str, accept_encoding: str | None,
                   if_none_match: str | None) -> Negotiated:
    """A page of a list body: sliced from the cached bytes, sent uncompressed."""
    if wanted.is_everything:
        return negotiate(body, cache_control, accept_encoding, if_none_match)
    etag = etag_for(body.etag, wanted.offset, wanted.limit)
    if _matches(if_none_match, etag):
        return _not_modified(etag, cache_control)
    return _negotiated((page(body, wanted.offset, wanted.limit),), etag, cache_control, None)


def _negotiated(payload: tuple[bytes, ...], etag: str, cache_control: str,
                if_none_match: str | None, gzipped: bool = False) -> Negotiated:
    if _matches(if_none_match, etag):
        return _not_modified(etag, cache_control)
    headers = [("Content-Type", JSON), ("Content-Length", str(sum(len(p) for p in payload)))]
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return 200, headers + _validators(etag, cache_control), payload


def _matches(if_none_match: str | None, etag: str) -> bool:
    return bool(if_none_match) and parse_etags(if_none_match).contains_weak(etag)


def _not_modified(etag: str, cache_control: str) -> Negotiated:
    return 304, _validators(etag, cache_control), ()  # a 304 has no body to describe


def _validators(etag: str, cache_control: str) -> list[tuple[str, str]]:
    return [("ETag", f'"{etag}"'), ("Cache-Control", cache_control), ("Vary", "Accept-Encoding")]


def send(request: Request, body: Body, cache_control: str) -> Response:
    """A Flask response for a whole body."""
    return to_flask(negotiate(body, cache_control, *_conditions(request)))


def send_page(request: Request, body: Body, wanted: Page, cache_control: str) -> Response:
    """A Flask response for a page of a list body."""
    return to_flask(negotiate_page(body, wanted, cache_control, *_conditions(request)))


def send_json(data: bytes, status: int = 200) -> Response:
    """A small uncached JSON response (health)."""
    return Response(data, status=status, headers={"Cache-Control": NO_STORE}, mimetype=JSON)


def to_flask(negotiated: Negotiated) -> Response:
    """A negotiated answer as a Flask response, headers exactly as negotiated."""
    status, headers, payload = negotiated
    response = Response(list(payload), status=status)
    response.headers.clear()
    response.headers.extend(headers)
    return response


def _conditions(request: Request) -> tuple[str | None, str | None]:
    return request.headers.get("Accept-Encoding"), request.headers.get("If-None-Match")
