"""The daily schedule: at SCHEDULE_TIME_UTC, queue each network's date (its processing follows).

The date is the tick's UTC day minus SCHEDULE_DATE_OFFSET_DAYS (default 0: the SOT
publishes date D at about 00:00 UTC of D). Each tick is a scheduled RQ job that first arms the next tick, then enqueues the
date through `jobs.enqueue_download` (same ids as a manual enqueue, so the two
never double-run). The download worker's built-in RQ scheduler moves a due tick
onto the queue. Why not `rq cron`: it reads cron fields in the host's local time
and needs one more process that skips the runs it was down for, while a scheduled
tick survives a worker restart and runs late rather than never.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from redis import Redis
from rq import Queue, get_current_job
from rq.exceptions import DuplicateJobError

from shared import jobs
from shared.settings import Settings, SettingsError

log = logging.getLogger(__name__)

TICK_JOB = "shared.schedule.schedule_tick"
TICK_RESULT_TTL = 3 * 24 * 3600  # a tick's record outlives its day: a restart won't re-run it
TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
UTC = dt.timezone.utc


def parse_time(text: str, name: str = "SCHEDULE_TIME_UTC") -> dt.time:
    """A HH:MM setting (SCHEDULE_TIME_UTC by default) as a UTC time of day, or SettingsError
    naming the variable."""
    match = TIME_RE.match(text or "")
    if not match:
        raise SettingsError(f"{name}={text!r} is not a HH:MM time of day")
    return dt.time(int(match.group(1)), int(match.group(2)), tzinfo=UTC)


def check(settings: Settings) -> None:
    """Refuse schedule settings that cannot work, naming the variable."""
    parse_time(settings.SCHEDULE_TIME_UTC)
    parse_time(settings.PUBLISH_DEADLINE_UTC, "PUBLISH_DEADLINE_UTC")
    if settings.SCHEDULE_DATE_OFFSET_DAYS < 0:
        raise SettingsError(f"SCHEDULE_DATE_OFFSET_DAYS={settings.SCHEDULE_DATE_OFFSET_DAYS!r} "
                            "must not be negative")


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    return moment.astimezone(UTC)


def last_tick(now: dt.datetime, at: dt.time) -> dt.datetime:
    """The latest tick at or before now (UTC)."""
    now = _utc(now)
    today = dt.datetime.combine(now.date(), at)
    return today if today <= now else today - dt.timedelta(days=1)


def next_tick(now: dt.datetime, at: dt.time) -> dt.datetime:
    """The first tick strictly after now (UTC)."""
    return last_tick(now, at) + dt.timedelta(days=1)


def date_for(tick: dt.datetime, offset_days: int = 0) -> str:
    """The processing date a tick enqueues.

    The SOT's date D is the exclusive end of its window and is published at ~00:00 UTC
    of day D, so a tick shortly after midnight wants its own UTC day (offset 0).
    """
    return (_utc(tick).date() - dt.timedelta(days=offset_days)).isoformat()


def tick_id(network: str, window_days: int, tick: dt.datetime, ns: str = "") -> str:
    """Deterministic id of one tick in a stack's namespace, so its workers arm it once."""
    return (f"{ns + '-' if ns else ''}schedule-{network}-{jobs.window(window_days)}-"
            f"{_utc(tick):%Y%m%dT%H%M}")


def arm(settings: Settings, connection: Redis, tick: dt.datetime,
        network: str | None = None) -> bool:
    """Schedule a network's tick (default: the first) on the download queue; False when it is
    already armed or done."""
    network = network or settings.default_network
    tid = tick_id(network, settings.WINDOW_DAYS, tick, jobs.namespace(settings))
    try:
        Queue(jobs.queue_name(settings, settings.QUEUE_DOWNLOAD), connection=connection).enqueue_at(
            _utc(tick), TICK_JOB, job_id=tid, unique=True, result_ttl=TICK_RESULT_TTL,
            kwargs={"network": network, "window_days": settings.WINDOW_DAYS,
                    "tick": _utc(tick).isoformat()},
            description=f"daily enqueue of the newest {network} date")
    except DuplicateJobError:
        return False
    log.info("schedule: armed %s for %s", tid, _utc(tick).isoformat())
    return True


def ensure_armed(settings: Settings, connection: Redis,
                 now: dt.datetime | None = None) -> list[str]:
    """Arm every network's tick of today (a missed one runs at once) and its next one; returns
    the ids armed now. Each network has its own ticks, so one network's failure stops no other."""
    if not settings.SCHEDULE_ENABLED:
        return []
    at = parse_time(settings.SCHEDULE_TIME_UTC)
    now = now or dt.datetime.now(UTC)
    ticks = (last_tick(now, at), next_tick(now, at))
    return [tick_id(network, settings.WINDOW_DAYS, t, jobs.namespace(settings))
            for network in settings.networks for t in ticks
            if arm(settings, connection, t, network)]


def schedule_tick(network: str, window_days: int, tick: str) -> str:
    """The scheduled job: arm the network's next tick, then enqueue the tick's processing date."""
    settings = Settings.from_env().replace(WINDOW_DAYS=jobs.window(window_days))
    if not settings.SCHEDULE_ENABLED:
        log.info("schedule: SCHEDULE_ENABLED is false; tick %s does nothing, arms no next one",
                 tick)
        return "schedule disabled"
    if network not in settings.networks:
        log.warning("schedule: %s is no longer in NETWORKS (%s); its tick %s does nothing, "
                    "arms no next one", network, ",".join(settings.networks), tick)
        return f"{network} not configured"
    job = get_current_job()
    connection = job.connection if job is not None else jobs.connect(settings)
    when = dt.datetime.fromisoformat(tick)
    # Arm first: a failing enqueue below must not end the daily chain.
    arm(settings, connection, next_tick(when, parse_time(settings.SCHEDULE_TIME_UTC)), network)
    date = date_for(when, settings.SCHEDULE_DATE_OFFSET_DAYS)
    result = jobs.enqueue_download(settings, network, date, settings.WINDOW_DAYS,
                                   connection=connection)
    log.info("schedule: tick %s: %s %s", tick, result.job_id, result.message)
    return f"{result.job_id}: {result.message}"
