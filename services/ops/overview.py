"""`aml-miner status` with no date: one block per network, and a warning when today is late."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from redis import Redis

from shared import jobs, modelsets, schedule, storage
from shared.settings import Settings


@dataclass(frozen=True)
class NetworkOverview:
    """Where one network stands today."""

    network: str
    newest_published: str | None
    today: str
    today_state: str
    today_line: str
    model_set: str
    deadline: str
    warning: str = ""

    def lines(self) -> list[str]:
        """The block `status` prints for the network."""
        out = [f"{self.network}:",
               f"  newest published: {self.newest_published or 'none'}",
               f"  today ({self.today}): {self.today_line}",
               f"  model set: {self.model_set}"]
        return out + ([f"  WARNING: {self.warning}"] if self.warning else [])

    def record(self) -> dict:
        return asdict(self)


def deadline(settings: Settings, now: dt.datetime) -> dt.datetime:
    """PUBLISH_DEADLINE_UTC on now's UTC day: when today's date must be published by."""
    at = schedule.parse_time(settings.PUBLISH_DEADLINE_UTC, "PUBLISH_DEADLINE_UTC")
    return dt.datetime.combine(now.astimezone(dt.timezone.utc).date(), at)


def _model_set(settings: Settings, network: str) -> str:
    chosen = modelsets.current(settings, network, settings.WINDOW_DAYS)
    return f"{chosen.version} ({chosen.source}{', pinned' if chosen.pinned else ''})"


def network_overview(settings: Settings, network: str, connection: Redis,
                     now: dt.datetime) -> NetworkOverview:
    """The newest published date, today's state, the current set and a late warning."""
    today = schedule.date_for(now, settings.SCHEDULE_DATE_OFFSET_DAYS)
    status = jobs.date_status(settings, network, today, settings.WINDOW_DAYS, connection)
    newest = storage.published_dates(settings.network_output_dir(network))
    due = deadline(settings, now)
    warning = ""
    if now >= due and status.state != "published":
        warning = (f"{today} is not published by PUBLISH_DEADLINE_UTC "
                   f"{settings.PUBLISH_DEADLINE_UTC} (it is {status.state}); validators "
                   "collect about 01:00 UTC")
    return NetworkOverview(network, newest[0] if newest else None, today, status.state,
                           status.describe(), _model_set(settings, network),
                           due.isoformat(), warning)


def overview(settings: Settings, chosen: list[str], connection: Redis,
             now: dt.datetime | None = None) -> list[NetworkOverview]:
    """One NetworkOverview per chosen network, in the configured order."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return [network_overview(settings, network, connection, now) for network in chosen]
