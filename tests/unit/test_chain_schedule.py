import datetime as dt

import pytest

from shared import schedule
from shared.settings import SettingsError

UTC = dt.timezone.utc
AT = schedule.parse_time("00:15")


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize("now,expected_tick,expected_date", [
    # just before UTC midnight: the next run is tomorrow 00:15, for tomorrow's SOT date
    ("2025-10-25T23:59:59+00:00", "2025-10-26T00:15:00+00:00", "2025-10-26"),
    ("2025-10-26T00:00:00+00:00", "2025-10-26T00:15:00+00:00", "2025-10-26"),
    ("2025-10-26T00:14:59+00:00", "2025-10-26T00:15:00+00:00", "2025-10-26"),
    # exactly at and after the time: that run is taken, the next is the following day
    ("2025-10-26T00:15:00+00:00", "2025-10-27T00:15:00+00:00", "2025-10-27"),
    ("2025-10-26T13:00:00+00:00", "2025-10-27T00:15:00+00:00", "2025-10-27"),
    # a clock in another zone: 01:30+02:00 is 23:30 UTC of the previous day
    ("2025-10-26T01:30:00+02:00", "2025-10-26T00:15:00+00:00", "2025-10-26"),
    # year end
    ("2025-12-31T23:59:00-01:00", "2026-01-02T00:15:00+00:00", "2026-01-02"),
])
def test_next_run_and_its_date_across_utc_midnight(now, expected_tick, expected_date):
    tick = schedule.next_tick(at(now), AT)
    assert tick == at(expected_tick)
    assert schedule.date_for(tick) == expected_date


def test_last_tick_is_the_latest_at_or_before_now():
    before, on_time = at("2025-10-26T00:14:00+00:00"), at("2025-10-26T00:15:00+00:00")
    assert schedule.last_tick(before, AT) == at("2025-10-25T00:15:00+00:00")
    assert schedule.last_tick(on_time, AT) == on_time


def test_offset_days_moves_the_date_back():
    tick = at("2025-10-26T00:15:00+00:00")
    assert schedule.date_for(tick, 1) == "2025-10-25"
    assert schedule.date_for(at("2025-03-01T00:15:00+00:00"), 1) == "2025-02-28"


def test_naive_clocks_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        schedule.next_tick(dt.datetime(2025, 10, 26, 0, 0), AT)


@pytest.mark.parametrize("text", ["0:15", "24:00", "00:60", "noon", ""])
def test_a_bad_schedule_time_names_the_variable(text):
    with pytest.raises(SettingsError, match="SCHEDULE_TIME_UTC"):
        schedule.parse_time(text)


def test_tick_ids_are_unique_per_run_and_valid_rq_ids():
    tick = at("2025-10-26T00:15:00+00:00")
    assert schedule.tick_id("bitcoin", 7, tick) == "schedule-bitcoin-7-20251026T0015"
    same_moment = at("2025-10-26T02:15:00+02:00")
    assert schedule.tick_id("bitcoin", 7, same_moment) == "schedule-bitcoin-7-20251026T0015"
