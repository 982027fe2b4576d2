"""Request parameters: the `{date}` path part, `?limit=&offset=` and `?network=`, checked strictly."""

from __future__ import annotations

import re
from dataclasses import dataclass

from werkzeug.exceptions import BadRequest, NotFound

from shared.storage import InvalidDate, parse_date

LATEST = "latest"
MAX_LIMIT = 100_000
MAX_OFFSET = 2**31 - 1
_DIGITS = re.compile(r"^[0-9]{1,10}$")


@dataclass(frozen=True)
class Page:
    """Rows [offset, offset+limit) of a list; limit None means to the end."""

    offset: int = 0
    limit: int | None = None

    @property
    def is_everything(self) -> bool:
        """Whether this page is the whole list (served from the precompressed full body)."""
        return self.offset == 0 and self.limit is None


def date_param(raw: str) -> str:
    """`latest` or a real YYYY-MM-DD calendar date, else 400 (checked before any file access)."""
    if raw == LATEST:
        return raw
    try:
        parse_date(raw)
    except InvalidDate:
        raise BadRequest(f"date {_shorten(raw)!r} is not a YYYY-MM-DD calendar date or 'latest'") from None
    return raw


def page_param(args) -> Page:
    """`?limit=&offset=` as a Page; a missing parameter keeps its default."""
    offset = _int_param(args, "offset", MAX_OFFSET)
    limit = _int_param(args, "limit", MAX_LIMIT)
    return Page(offset=offset or 0, limit=limit)


def _int_param(args, name: str, maximum: int) -> int | None:
    raw = args.get(name)
    if raw is None:
        return None
    if not _DIGITS.match(raw):
        raise BadRequest(f"{name}={_shorten(raw)!r} is not a non-negative integer")
    value = int(raw)
    if value > maximum:
        raise BadRequest(f"{name}={value} is larger than the maximum {maximum}")
    return value


def network_param(args, served: tuple[str, ...]) -> str:
    """The network `?network=` names (any case), the first served one when absent; else 404 naming them."""
    asked = args.get("network")
    if asked is None:
        return served[0]
    if asked.lower() not in served:
        names = ", ".join(repr(name) for name in served)
        raise NotFound(f"network {_shorten(asked)!r} is not served here; this API serves {names}")
    return asked.lower()


def _shorten(raw: str, limit: int = 40) -> str:
    return raw if len(raw) <= limit else raw[:limit] + "..."
