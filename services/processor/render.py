"""Give dates published before response bodies existed their bodies, by publishing them again.

A published folder is never edited: the date's files are hard-linked (copied where links
are impossible) into a fresh staging folder, the bodies rendered there, and the folder
published atomically, so the API sees the date whole, with bodies, or not at all.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from shared import bodies, storage

log = logging.getLogger(__name__)


def render_published(output_dir: Path) -> dict[str, str]:
    """Render every published date of output_dir that lacks bodies; {date: outcome}.

    A date that cannot be rendered is logged and reported, and the others still are.
    """
    outcomes = {}
    for date in storage.published_dates(output_dir):
        version = storage.resolve(Path(output_dir) / date)
        if version is None or bodies.is_rendered(version):
            continue
        try:
            render_date(Path(output_dir), date, version)
        except (bodies.RenderError, OSError) as exc:
            log.error("%s: cannot render its response bodies: %s", date, exc)
            outcomes[date] = f"failed: {exc}"
        else:
            outcomes[date] = "rendered"
    return outcomes


def render_date(output_dir: Path, date: str, version: Path) -> None:
    """Publish version's files again with their response bodies."""
    missing = [name for name in storage.OUTPUT_FILES if not (version / name).is_file()]
    if missing:
        raise bodies.RenderError(f"{date}/{missing[0]} is missing")
    target = storage.date_dir(output_dir, date)
    with storage.staging_dir(target) as tmp:
        for name in storage.OUTPUT_FILES:
            _link_or_copy(version / name, tmp / name)
        bodies.render_version(tmp)
    storage.publish(tmp, target)
    log.info("%s: rendered its response bodies and published it again as %s", date, tmp.name)


def _link_or_copy(source: Path, destination: Path) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
