"""HTTP responses: ETag/304, gzip by Accept-Encoding, caching headers, files sent as files.

A date's bodies are files rendered at publish (shared/bodies.py): a full response is
the file itself (gunicorn sends it with sendfile), a page is read from it by byte range.
ETags are strong and derive from the version folder name, so they are equal across
workers and restarts and change when a date is re-published.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from flask import Request, Response
from werkzeug.http import parse_accept_header, parse_etags
from werkzeug.wsgi import wrap_file

from shared import bodies, storage

from . import store
from .params import Page

# A concrete date's folder is replaced only when an operator re-runs that date; a day
# bounds how long a cache can keep the old one.
IMMUTABLE = "public, max-age=86400, immutable"
# `latest`, /dates and the like change when a date is published: always revalidate (ETag).
REVALIDATE = "public, no-cache"
NO_STORE = "no-store"
JSON = "application/json"


@dataclass(frozen=True)
class Static:
    """A small body kept in memory (/dates, the OpenAPI document), gzipped or not."""

    data: bytes
    etag: str
    gzip: bytes | None = None
    gzip_etag: str | None = None


def etag_for(*parts: object) -> str:
    """A short strong ETag from identity parts (version folder name, kind, page)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def static(data: bytes, *, precompress: bool = True) -> Static:
    """An in-memory body whose ETag derives from its own text."""
    identity = data.decode()
    if not precompress:
        return Static(data, etag_for(identity))
    return Static(data, etag_for(identity), bodies.compress(data), etag_for(identity, "gzip"))


@lru_cache(maxsize=256)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an Accept-Encoding value allows gzip (q-values honoured; clients repeat few values)."""
    return parse_accept_header(accept_encoding)["gzip"] > 0


def send_static(request: Request, body: Static, cache_control: str) -> Response:
    """An in-memory body, or its gzip form when accepted, or 304."""
    if body.gzip is not None and _gzip_wanted(request):
        return _bytes(request, body.gzip, body.gzip_etag, cache_control, gzipped=True)
    return _bytes(request, body.data, body.etag, cache_control)


def send_list(request: Request, version: Path, kind: bodies.ListKind, wanted: Page,
              cache_control: str) -> Response:
    """A list endpoint's full response (a file, gzip when accepted) or a page (plain bytes)."""
    etag = etag_for(version.name, kind.name)
    if wanted.is_everything:
        if _gzip_wanted(request):
            return _file(request, version / kind.gzip, etag_for(version.name, kind.name, "gzip"),
                         cache_control, gzipped=True)
        return _file(request, version / kind.body, etag, cache_control)
    etag = etag_for(etag, wanted.offset, wanted.limit)
    if _matches(request, etag):
        return _not_modified(etag, cache_control)
    data = store.read_page(version, kind, wanted.offset, wanted.limit)
    return _bytes(request, data, etag, cache_control)


def send_metadata(request: Request, version: Path, cache_control: str) -> Response:
    """metadata.json exactly as published, or its gzip."""
    identity = f"{version.name}\x1fmetadata"
    if _gzip_wanted(request):
        return _file(request, version / bodies.METADATA_GZ, etag_for(identity, "gzip"),
                     cache_control, gzipped=True)
    return _file(request, version / storage.METADATA, etag_for(identity), cache_control)


def send_json(data: bytes, status: int = 200) -> Response:
    """A small uncached JSON response (health)."""
    return Response(data, status=status, headers={"Cache-Control": NO_STORE}, mimetype=JSON)


def _gzip_wanted(request: Request) -> bool:
    return accepts_gzip(request.headers.get("Accept-Encoding"))


def _matches(request: Request, etag: str) -> bool:
    if_none_match = request.headers.get("If-None-Match")
    return bool(if_none_match) and parse_etags(if_none_match).contains_weak(etag)


def _bytes(request: Request, data: bytes, etag: str, cache_control: str,
           gzipped: bool = False) -> Response:
    if _matches(request, etag):
        return _not_modified(etag, cache_control)
    return _response(data, len(data), etag, cache_control, gzipped)


def _file(request: Request, path: Path, etag: str, cache_control: str,
          gzipped: bool = False) -> Response:
    """A published file as the body (sendfile under gunicorn); opened only when it is sent."""
    if _matches(request, etag):
        return _not_modified(etag, cache_control)
    handle = store.open_file(path)
    size = os.fstat(handle.fileno()).st_size
    return _response(wrap_file(request.environ, handle), size, etag, cache_control, gzipped)


def _response(payload, length: int, etag: str, cache_control: str, gzipped: bool) -> Response:
    headers = [("Content-Type", JSON), ("Content-Length", str(length))]
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return _with_headers(Response(payload, status=200, direct_passthrough=True),
                         headers + _validators(etag, cache_control))


def _not_modified(etag: str, cache_control: str) -> Response:
    # A 304 has no body to describe.
    return _with_headers(Response(status=304), _validators(etag, cache_control))


def _validators(etag: str, cache_control: str) -> list[tuple[str, str]]:
    return [("ETag", f'"{etag}"'), ("Cache-Control", cache_control), ("Vary", "Accept-Encoding")]


def _with_headers(response: Response, headers: list[tuple[str, str]]) -> Response:
    response.headers.clear()
    response.headers.extend(headers)
    return response
