"""WSGI shortcut in front of Flask: plain GET/HEAD of a date's full published responses.

Flask's per-request machinery costs more than sending a published file. A GET or HEAD
of `/metadata/{date|latest}` or a full list endpoint with no query string or with
`?network=<a served network>` alone is answered here from the date's version folder
with the same helpers, status, headers and bytes as
the Flask views (responses.full_file, ok_headers, validators); the file goes out through
`wsgi.file_wrapper` in responses.SEND_BLOCK reads. Nothing is cached here: the version folder
comes from the same OutputFolder as Flask's (one readlink per request; a link target's
completeness check is kept, and a re-publish is a new target). Anything else, or any
doubt (bad or unpublished date, no `latest`, a file gone mid-request, an error), goes to
Flask unchanged, which answers errors, pages and retries.
"""

from __future__ import annotations

import logging
import os
import re

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import wrap_file

from shared.bodies import LIST_KINDS
from shared.storage import InvalidDate, parse_date

from . import responses, store
from .params import LATEST
from .results import Results

log = logging.getLogger(__name__)

ROUTES = {"/metadata/": responses.METADATA,
          "/scores/alerts/": "alert-scores",
          "/rankings/alerts/": "alert-rankings",
          "/scores/clusters/": "cluster-scores"}
assert {k.name for k in LIST_KINDS} == set(ROUTES.values()) - {responses.METADATA}
_PATH = re.compile(r"\A(/[a-z]+/(?:[a-z]+/)?)([0-9]{4}-[0-9]{2}-[0-9]{2}|latest)\Z")
# Werkzeug's status lines, so the two paths answer alike.
_STATUS = {code: f"{code} {HTTP_STATUS_CODES[code].upper()}" for code in (200, 304)}


class Shortcut:
    """WSGI middleware: answers what it can from files, hands everything else to flask_wsgi."""

    def __init__(self, flask_wsgi, networks: dict[str, Results]):
        self.flask_wsgi = flask_wsgi
        # The query strings answered here, each with its network's results (none: the
        # default, first network's): validators always send `?network=`, so it takes the
        # short way with one network too.
        self.by_query = {"": next(iter(networks.values()))}
        self.by_query.update({f"network={name}": results for name, results in networks.items()})

    def __call__(self, environ, start_response):
        try:
            answer = self._answer(environ)
        except Exception:  # never fail here: Flask answers, and its handlers render errors
            log.exception("shortcut failed; handing the request to Flask")
            answer = None
        if answer is None:
            return self.flask_wsgi(environ, start_response)
        status, headers, payload = answer
        start_response(_STATUS[status], headers)
        return payload

    def _answer(self, environ):
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return None
        results = self._results(environ.get("QUERY_STRING", ""))
        if results is None:
            return None
        match = _PATH.match(environ.get("PATH_INFO", ""))
        name = ROUTES.get(match.group(1)) if match else None
        if name is None:
            return None
        date, cache_control = self._date(match.group(2), results)
        if date is None:
            return None
        version = results.folder.version(date)
        if version is None:
            return None
        gzipped = responses.accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING"))
        path, etag = responses.full_file(version, name, gzipped, results.etag_scope)
        if responses.if_none_match_hits(environ.get("HTTP_IF_NONE_MATCH"), etag):
            return 304, responses.validators(etag, cache_control), ()
        if method == "HEAD":
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                return None  # the folder went: Flask looks again
            return 200, responses.ok_headers(size, etag, cache_control, gzipped), ()
        try:
            handle = store.open_file(path)
        except store.VersionGone:
            return None
        try:
            size = os.fstat(handle.fileno()).st_size
            payload = wrap_file(environ, handle, responses.SEND_BLOCK)
        except BaseException:
            handle.close()
            raise
        return 200, responses.ok_headers(size, etag, cache_control, gzipped), payload

    def _results(self, query: str) -> Results | None:
        """The network a query string asks for (any case, as Flask reads it), None for Flask."""
        results = self.by_query.get(query)
        if results is None and query.startswith("network="):
            # Flask matches the value in any case, not the name: `NETWORK=x` stays a miss.
            results = self.by_query.get(query.lower())
        return results

    def _date(self, raw: str, results: Results) -> tuple[str | None, str]:
        if raw == LATEST:
            return results.latest(), responses.REVALIDATE
        try:
            parse_date(raw)
        except InvalidDate:
            return None, ""
        return raw, responses.IMMUTABLE
