"""HTTP responses: ETag/304, gzip by Accept-Encoding, caching headers, files sent as files.

A date's bodies are files rendered at publish (shared/bodies.py): a full response is
the file itself (sent in SEND_BLOCK reads), a page is read from it by byte range.
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
# Bytes per read of a file being sent (gunicorn.conf.py sends files by reads, not sendfile).
SEND_BLOCK = 1 << 20


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


def static(data: bytes, *, precompress: bool = True, scope: tuple[str, ...] = ()) -> Static:
    """An in-memory body whose ETag derives from its own text (and scope: a network's name)."""
    identity = data.decode()
    if not precompress:
        return Static(data, etag_for(*scope, identity))
    return Static(data, etag_for(*scope, identity), bodies.compress(data),
                  etag_for(*scope, identity, "gzip"))


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
              cache_control: str, scope: tuple[str, ...] = ()) -> Response:
    """A list endpoint's full response (a file, gzip when accepted) or a page (plain bytes)."""
    if wanted.is_everything:
        gzipped = _gzip_wanted(request)
        path, etag = full_file(version, kind.name, gzipped, scope)
        return _file(request, path, etag, cache_control, gzipped)
    etag = etag_for(etag_for(*scope, version.name, kind.name), wanted.offset, wanted.limit)
    if _matches(request, etag):
        return _not_modified(etag, cache_control)
    data = store.read_page(version, kind, wanted.offset, wanted.limit)
    return _bytes(request, data, etag, cache_control)


def send_metadata(request: Request, version: Path, cache_control: str,
                  scope: tuple[str, ...] = ()) -> Response:
    """metadata.json exactly as published, or its gzip."""
    gzipped = _gzip_wanted(request)
    path, etag = full_file(version, METADATA, gzipped, scope)
    return _file(request, path, etag, cache_control, gzipped)


# What a full response is, by name: its file and its gzip's file in the version folder.
METADATA = "metadata"
_FULL_FILES = {METADATA: (storage.METADATA, bodies.METADATA_GZ),
               **{kind.name: (kind.body, kind.gzip) for kind in bodies.LIST_KINDS}}


def full_file(version: Path, name: str, gzipped: bool,
              scope: tuple[str, ...] = ()) -> tuple[Path, str]:
    """The file a full response (a list kind's name or METADATA) is sent from, and its ETag.

    scope (a network's name when there are several) keeps networks' ETags apart.
    """
    plain, packed = _FULL_FILES[name]
    if gzipped:
        return version / packed, etag_for(*scope, version.name, name, "gzip")
    return version / plain, etag_for(*scope, version.name, name)


def send_json(data: bytes, status: int = 200) -> Response:
    """A small uncached JSON response (health)."""
    return Response(data, status=status, headers={"Cache-Control": NO_STORE}, mimetype=JSON)


def _gzip_wanted(request: Request) -> bool:
    return accepts_gzip(request.headers.get("Accept-Encoding"))


def _matches(request: Request, etag: str) -> bool:
    return if_none_match_hits(request.headers.get("If-None-Match"), etag)


def if_none_match_hits(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match value names etag (weak comparison, `*` included)."""
    return bool(if_none_match) and parse_etags(if_none_match).contains_weak(etag)


def _bytes(request: Request, data: bytes, etag: str, cache_control: str,
           gzipped: bool = False) -> Response:
    if _matches(request, etag):
        return _not_modified(etag, cache_control)
    return _response(data, len(data), etag, cache_control, gzipped)


def _file(request: Request, path: Path, etag: str, cache_control: str,
          gzipped: bool = False) -> Response:
    """A published file as the body, sent SEND_BLOCK bytes at a time; opened only when sent."""
    if _matches(request, etag):
        return _not_modified(etag, cache_control)
    handle = store.open_file(path)
    size = os.fstat(handle.fileno()).st_size
    return _response(wrap_file(request.environ, handle, SEND_BLOCK), size, etag, cache_control, gzipped)


def _response(payload, length: int, etag: str, cache_control: str, gzipped: bool) -> Response:
    return _with_headers(Response(payload, status=200, direct_passthrough=True),
                         ok_headers(length, etag, cache_control, gzipped))


def _not_modified(etag: str, cache_control: str) -> Response:
    return _with_headers(Response(status=304), validators(etag, cache_control))


def ok_headers(length: int, etag: str, cache_control: str, gzipped: bool) -> list[tuple[str, str]]:
    """The headers of a 200 with a JSON body of length bytes."""
    headers = [("Content-Type", JSON), ("Content-Length", str(length))]
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return headers + validators(etag, cache_control)


def validators(etag: str, cache_control: str) -> list[tuple[str, str]]:
    """The headers of a 304 (it has no body to describe), and the last ones of a 200."""
    return [("ETag", f'"{etag}"'), ("Cache-Control", cache_control), ("Vary", "Accept-Encoding")]


def _with_headers(response: Response, headers: list[tuple[str, str]]) -> Response:
    response.headers.clear()
    response.headers.extend(headers)
    return response
