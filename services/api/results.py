"""What the routes ask for: the list of dates, and a date's current version folder to answer from."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, TypeVar

from shared.settings import Settings

from .store import OutputFolder, VersionGone

log = logging.getLogger(__name__)

# A version folder vanishes only after two newer publishes of its date; a few
# fresh looks always find a folder that stays long enough to be read.
ATTEMPTS = 3
T = TypeVar("T")


class DateNotFound(LookupError):
    """No complete published folder for this date."""


class DateChanging(RuntimeError):
    """A date was re-published faster than its folder could be read, several times over."""


class Results:
    """Published results of one network's output root, answered from its version folders.

    etag_scope goes into every ETag of these results: with several networks it is the
    network's name, so two networks never share an ETag; with one it is empty (ETags as
    they always were).
    """

    def __init__(self, output_dir: Path, etag_scope: tuple[str, ...] = ()):
        self.folder = OutputFolder(output_dir)
        self.etag_scope = etag_scope

    def dates(self) -> list[str]:
        """Complete published dates, newest first."""
        return self.folder.dates()

    def latest(self) -> str | None:
        """The newest complete published date."""
        dates = self.folder.dates()
        return dates[0] if dates else None

    def answer(self, date: str, use: Callable[[Path], T]) -> T:
        """use(version folder of a validated date), looked up again if the folder vanishes."""
        for _ in range(ATTEMPTS):
            version = self.folder.version(date)
            if version is None:
                raise DateNotFound(date)
            try:
                return use(version)
            except VersionGone:
                log.info("%s: version %s was replaced while being read; looking again",
                         date, version.name)
        raise DateChanging(date)


def per_network(settings: Settings) -> dict[str, Results]:
    """Each configured network's Results, the default network first."""
    scoped = settings.multi_network
    return {name: Results(settings.network_output_dir(name), (name,) if scoped else ())
            for name in settings.networks}
