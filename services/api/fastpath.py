"""WSGI fast path: answer plain GETs of already-rendered responses without entering Flask.

Flask's per-request machinery costs more than the rest of such a request. Cache hits
(a full list or metadata of a concrete date or `latest`, no query string, body already
rendered) are answered here through the same `responses.negotiate`; everything else,
errors included, goes to the Flask app unchanged, which also renders on a miss.
"""

from __future__ import annotations

import logging

from shared.storage import DATE_RE, InvalidDate, parse_date

from . import responses
from .cache import ALERT_RANKINGS, ALERT_SCORES, CLUSTER_SCORES
from .params import LATEST
from .results import Results

log = logging.getLogger(__name__)

ROUTES = {
    "/scores/alerts/": ALERT_SCORES.name,
    "/rankings/alerts/": ALERT_RANKINGS.name,
    "/scores/clusters/": CLUSTER_SCORES.name,
    "/metadata/": "metadata",
}
_STATUS = {200: "200 OK", 304: "304 Not Modified"}


class CachedResponses:
    """Middleware in front of the Flask WSGI app."""

    def __init__(self, flask_wsgi, results: Results):
        self.flask_wsgi = flask_wsgi
        self.results = results

    def __call__(self, environ, start_response):
        try:
            hit = self._negotiate(environ)
        except Exception:  # never fail here: Flask answers and its handlers render the error
            log.exception("fast path failed; handing the request to Flask")
            hit = None
        if hit is None:
            return self.flask_wsgi(environ, start_response)
        status, headers, payload = hit
        start_response(_STATUS[status], headers)
        return () if environ["REQUEST_METHOD"] == "HEAD" else payload

    def _negotiate(self, environ) -> responses.Negotiated | None:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD") or environ.get("QUERY_STRING"):
            return None
        path = environ.get("PATH_INFO", "")
        prefix, _, raw = path.rpartition("/")
        key = ROUTES.get(prefix + "/")
        if key is None:
            return None
        date, cache_control = self._date(raw)
        body = self.results.rendered(date, key) if date else None
        if body is None:
            return None
        return responses.negotiate(body, cache_control, environ.get("HTTP_ACCEPT_ENCODING"),
                                   environ.get("HTTP_IF_NONE_MATCH"))

    def _date(self, raw: str) -> tuple[str | None, str]:
        if raw == LATEST:
            return self.results.latest(), responses.REVALIDATE
        if not DATE_RE.match(raw):
            return None, ""
        try:
            parse_date(raw)
        except InvalidDate:
            return None, ""
        return raw, responses.IMMUTABLE
