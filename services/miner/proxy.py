"""Forward a validator's GET to the internal API and stream the answer back byte for byte."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Mapping, Optional

import urllib3
from flask import Response

from .errors import Refused

log = logging.getLogger(__name__)

# Request headers the API uses for content negotiation and caching; nothing else is forwarded
# (in particular not the btauth headers, which are ours, not the API's).
FORWARD_REQUEST = ("Accept", "Accept-Encoding", "If-None-Match", "If-Modified-Since")
# Response headers that describe the bytes; copied unchanged so gzip and ETags survive.
# Cache-Control is not among them: see private_cache_control.
KEEP_RESPONSE = ("Content-Type", "Content-Encoding", "Content-Length", "ETag", "Last-Modified",
                 "Vary")
CHUNK = 64 * 1024
# Directives that let a shared cache keep a copy; an answer given to one signed caller must not.
SHARED_ONLY = ("public", "s-maxage", "proxy-revalidate")


def private_cache_control(upstream_value: Optional[str]) -> str:
    """The API's caching rules for the caller's own cache only (`private`), freshness kept."""
    kept = [d.strip() for d in (upstream_value or "").split(",")
            if d.strip() and d.strip().split("=")[0].lower() not in SHARED_ONLY + ("private",)]
    return ", ".join(["private", *(kept or ["no-cache"])])


@dataclass(frozen=True)
class UpstreamHealth:
    """What /health reports about the internal API."""

    reachable: bool
    status: Optional[int]
    error: Optional[str]


class Upstream:
    """The internal API: one thread-safe connection pool per worker process."""

    def __init__(self, base_url: str, timeout: float):
        self.base_url = base_url.rstrip("/")
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self.pool = urllib3.PoolManager(num_pools=2, maxsize=16, block=False)

    def forward(self, method: str, target: str, headers: Mapping[str, str]) -> Response:
        """Proxy one request; upstream down or timing out becomes Refused(502)."""
        forwarded = {name: headers[name] for name in FORWARD_REQUEST if name in headers}
        try:
            upstream = self.pool.request(method, self.base_url + target, headers=forwarded,
                                         timeout=self.timeout, retries=False,
                                         preload_content=False, decode_content=False,
                                         redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            log.error("proxy %s %s: upstream API %s unreachable: %s", method, target,
                      self.base_url, exc)
            raise Refused(502, "upstream_unavailable",
                          f"the miner's result API did not answer ({type(exc).__name__})") from None
        kept = {name: upstream.headers[name] for name in KEEP_RESPONSE if name in upstream.headers}
        kept["Cache-Control"] = private_cache_control(upstream.headers.get("Cache-Control"))
        response = Response(_stream(upstream, target), status=upstream.status, headers=kept,
                            direct_passthrough=True)
        if "Content-Type" not in kept:  # e.g. a 304: don't invent Flask's text/html default
            del response.headers["Content-Type"]
        return response

    def health(self) -> UpstreamHealth:
        """GET the API's /health with a short timeout."""
        try:
            resp = self.pool.request("GET", self.base_url + "/health", retries=False,
                                     timeout=urllib3.Timeout(connect=2.0, read=2.0))
        except urllib3.exceptions.HTTPError as exc:
            return UpstreamHealth(False, None, f"{type(exc).__name__}: {exc}")
        return UpstreamHealth(resp.status == 200, resp.status, None)


def _stream(upstream: urllib3.BaseHTTPResponse, target: str) -> Iterator[bytes]:
    """The raw (still encoded) body in chunks; the connection is pooled again only if read out."""
    sent, complete = 0, False
    try:
        for chunk in upstream.stream(CHUNK, decode_content=False):
            yield chunk
            sent += len(chunk)
        complete = True
    except urllib3.exceptions.HTTPError as exc:
        # Headers are already sent; all we can do is cut the connection and say why.
        log.error("proxy %s: upstream broke off mid-body: %s", target, exc)
        raise
    finally:
        if not complete:
            # The caller went away (or the API broke off): the rest of the body is still on
            # the socket, and a pooled connection would hand it to the next request as its
            # answer. Close it; the pool opens a fresh one when needed.
            log.info("proxy %s: answer not read to the end (%d bytes sent); upstream connection "
                     "closed, not reused", target, sent)
            upstream.close()
        upstream.release_conn()
