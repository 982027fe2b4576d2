"""What the routes ask for: a date's rendered bodies, the list of dates, warming the newest."""

from __future__ import annotations

import logging
from pathlib import Path

from .cache import LIST_KINDS, DateResults, ResultCache
from .render import Body, ListKind
from .store import OutputFolder, VersionGone

log = logging.getLogger(__name__)

# A version folder vanishes only after two newer publishes of its date; a few
# fresh looks always find a folder that stays long enough to be read.
ATTEMPTS = 3


class DateNotFound(LookupError):
    """No complete published folder for this date."""


class DateChanging(RuntimeError):
    """A date was re-published faster than its folder could be read, several times over."""


class Results:
    """Published results of one OUTPUT_DIR, served from a cache of rendered bodies."""

    def __init__(self, output_dir: Path, cache_size: int | None = None):
        self.folder = OutputFolder(output_dir)
        self.cache = ResultCache() if cache_size is None else ResultCache(cache_size)

    def dates(self) -> list[str]:
        """Complete published dates, newest first."""
        return self.folder.dates()

    def latest(self) -> str | None:
        """The newest complete published date."""
        dates = self.folder.dates()
        return dates[0] if dates else None

    def listing(self, date: str, kind: ListKind) -> Body:
        """The full response of a list endpoint for a validated date."""
        return self._with_entry(date, lambda entry: entry.listing(kind))

    def metadata(self, date: str) -> Body:
        """metadata.json of a validated date."""
        return self._with_entry(date, DateResults.metadata)

    def rendered(self, date: str, key: str) -> Body | None:
        """The date's body under key if already rendered for its current folder, else None."""
        version = self.folder.version(date)
        entry = self.cache.peek(version) if version is not None else None
        return entry.rendered(key) if entry is not None else None

    def warm(self, date: str) -> None:
        """Render every response of a date now, so no request waits for it."""
        for kind in LIST_KINDS:
            self.listing(date, kind)
        self.metadata(date)

    def _with_entry(self, date: str, use) -> Body:
        for _ in range(ATTEMPTS):
            version = self.folder.version(date)
            if version is None:
                raise DateNotFound(date)
            entry = self.cache.get(version)
            try:
                return use(entry)
            except VersionGone:
                log.info("%s: version %s was replaced while being read; looking again",
                         date, version.name)
                self.cache.discard(version)
        raise DateChanging(date)
