"""Unit tests of the pure task rules: end of day in a zone, RRULE checks and next occurrences."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from nexus.apps.tasks.rules import (
    end_of_day_utc,
    next_occurrence,
    next_occurrence_and_rule,
    normalise_rrule,
    rule_can_recur,
    valid_timezone,
)

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


# -- end_of_day_utc -----------------------------------------------------------------------


@pytest.mark.parametrize(("day", "tz", "expected"), [
    (date(2031, 3, 10), "UTC", datetime(2031, 3, 10, 23, 59, 59, 999999, tzinfo=UTC)),
    (date(2031, 3, 10), "America/New_York", datetime(2031, 3, 11, 3, 59, 59, 999999, tzinfo=UTC)),  # EDT
    (date(2031, 3, 8), "America/New_York", datetime(2031, 3, 9, 4, 59, 59, 999999, tzinfo=UTC)),  # EST
    (date(2031, 6, 1), "Asia/Tokyo", datetime(2031, 6, 1, 14, 59, 59, 999999, tzinfo=UTC)),
    (date(2031, 6, 1), "Asia/Kolkata", datetime(2031, 6, 1, 18, 29, 59, 999999, tzinfo=UTC)),
    (date(2031, 12, 31), "Pacific/Kiritimati", datetime(2031, 12, 31, 9, 59, 59, 999999, tzinfo=UTC)),
])
def test_end_of_day_utc(day: date, tz: str, expected: datetime) -> None:
    got = end_of_day_utc(day, tz)
    assert got == expected and got.tzinfo is not None
    local = got.astimezone(ZoneInfo(tz))
    assert local.date() == day and (local.hour, local.minute, local.second) == (23, 59, 59)


def test_end_of_day_on_a_dst_change_day() -> None:
    # 30 March 2031 is 23 hours long in Berlin; the day still ends at 23:59:59 CEST.
    assert end_of_day_utc(date(2031, 3, 30), "Europe/Berlin") == datetime(2031, 3, 30, 21, 59, 59, 999999, tzinfo=UTC)
    assert end_of_day_utc(date(2031, 10, 26), "Europe/Berlin") == datetime(2031, 10, 26, 22, 59, 59, 999999, tzinfo=UTC)


# -- time zones and rule syntax -----------------------------------------------------------


@pytest.mark.parametrize(("name", "ok"), [("Europe/Berlin", True), ("UTC", True), ("America/Argentina/Salta", True),
                                          ("Mars/Olympus", False), ("America", False), ("", False),
                                          ("../etc/passwd", False), ("/etc/localtime", False), ("utc ", False)])
def test_valid_timezone(name: str, ok: bool) -> None:
    assert valid_timezone(name) is ok


@pytest.mark.parametrize(("raw", "normal"), [
    ("FREQ=WEEKLY;BYDAY=MO", "FREQ=WEEKLY;BYDAY=MO"),
    ("RRULE:freq=daily;interval=2", "FREQ=DAILY;INTERVAL=2"),
    (" FREQ=MONTHLY; BYMONTHDAY=-1 ;", "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("FREQ=DAILY;UNTIL=20311231T235959Z", "FREQ=DAILY;UNTIL=20311231T235959Z"),
    ("FREQ=DAILY;UNTIL=20311231", "FREQ=DAILY;UNTIL=20311231"),
    ("FREQ=HOURLY;BYHOUR=9,13,17", "FREQ=HOURLY;BYHOUR=9,13,17"),
])
def test_normalise_accepts(raw: str, normal: str) -> None:
    assert normalise_rrule(raw) == normal


@pytest.mark.parametrize("raw", [
    "", "BYDAY=MO", "EVERY MONDAY", "FREQ=FORTNIGHTLY", "FREQ=MINUTELY", "FREQ=SECONDLY",
    "FREQ=DAILY;INTERVAL=0", "FREQ=DAILY;INTERVAL=-1", "FREQ=DAILY;INTERVAL=1001", "FREQ=DAILY;COUNT=0",
    "FREQ=DAILY;COUNT=2;UNTIL=20310101", "FREQ=DAILY;UNTIL=20311340", "FREQ=DAILY;UNTIL=soon",
    "FREQ=WEEKLY;BYDAY=XX", "FREQ=DAILY;FREQ=WEEKLY", "FREQ=DAILY;X-NAME=1", "FREQ=DAILY;BYDAY",
    "FREQ=DAILY\nEXDATE:20310101", "DTSTART:20310101T000000\nRRULE:FREQ=DAILY",
])
def test_normalise_refuses(raw: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        normalise_rrule(raw)


def test_rules_that_never_match_are_found_quickly() -> None:
    due = datetime(2031, 1, 6, 9, tzinfo=UTC)
    start = time.perf_counter()
    assert rule_can_recur("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", due, "UTC") is False
    assert rule_can_recur("FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31", due, "UTC") is False
    assert rule_can_recur("FREQ=DAILY;INTERVAL=7;BYDAY=TU", due, "UTC") is False  # due on a Monday
    assert time.perf_counter() - start < 10  # bounded: a few centuries of calendar, not the year 9999
    assert rule_can_recur("FREQ=DAILY;INTERVAL=7;BYDAY=MO", due, "UTC") is True
    assert rule_can_recur("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", due, "UTC") is True
    assert rule_can_recur("FREQ=DAILY;UNTIL=20200101", due, "UTC") is True  # ends, but is a real rule


# -- next_occurrence ------------------------------------------------------------------------


def test_weekly_monday_keeps_local_time_across_dst() -> None:
    rule = "FREQ=WEEKLY;BYDAY=MO"
    spring = next_occurrence(rule, berlin(2031, 3, 24, 9), "Europe/Berlin")
    assert spring == berlin(2031, 3, 31, 9) == datetime(2031, 3, 31, 7, tzinfo=UTC)
    autumn = next_occurrence(rule, berlin(2031, 10, 20, 9), "Europe/Berlin")
    assert autumn == berlin(2031, 10, 27, 9) == datetime(2031, 10, 27, 8, tzinfo=UTC)


def test_due_off_pattern_moves_to_first_match() -> None:
    # Due on a Wednesday, rule says Mondays: the next occurrence is the following Monday.
    assert next_occurrence("FREQ=WEEKLY;BYDAY=MO", berlin(2031, 3, 26, 9), "Europe/Berlin") == berlin(2031, 3, 31, 9)


@pytest.mark.parametrize(("rule", "due", "expected"), [
    ("FREQ=DAILY", datetime(2031, 1, 31, 9), datetime(2031, 2, 1, 9)),
    ("FREQ=DAILY;INTERVAL=3", datetime(2031, 1, 31, 9), datetime(2031, 2, 3, 9)),
    ("FREQ=MONTHLY;BYMONTHDAY=31", datetime(2031, 1, 31, 9), datetime(2031, 3, 31, 9)),  # February has none
    ("FREQ=MONTHLY;BYMONTHDAY=-1", datetime(2031, 1, 31, 9), datetime(2031, 2, 28, 9)),
    ("FREQ=MONTHLY;BYDAY=1MO", datetime(2031, 1, 6, 9), datetime(2031, 2, 3, 9)),
    ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", datetime(2032, 2, 29, 9), datetime(2036, 2, 29, 9)),
    ("FREQ=WEEKLY;BYDAY=TU,TH", datetime(2031, 1, 7, 9), datetime(2031, 1, 9, 9)),
    ("FREQ=HOURLY;INTERVAL=4", datetime(2031, 1, 7, 22), datetime(2031, 1, 8, 2)),
])
def test_next_occurrence_patterns(rule: str, due: datetime, expected: datetime) -> None:
    assert next_occurrence(rule, due.replace(tzinfo=UTC), "UTC") == expected.replace(tzinfo=UTC)


def test_count_counts_down_and_ends() -> None:
    due = datetime(2031, 1, 6, 9, tzinfo=UTC)
    got = next_occurrence_and_rule("FREQ=DAILY;COUNT=3", due, "UTC")
    assert got == (datetime(2031, 1, 7, 9, tzinfo=UTC), "FREQ=DAILY;COUNT=2")
    got = next_occurrence_and_rule("FREQ=DAILY;COUNT=2", got[0], "UTC")
    assert got == (datetime(2031, 1, 8, 9, tzinfo=UTC), "FREQ=DAILY;COUNT=1")
    assert next_occurrence_and_rule("FREQ=DAILY;COUNT=1", got[0], "UTC") is None


def test_until_in_utc_and_as_a_date() -> None:
    due = berlin(2031, 1, 6, 9)
    # 08:00Z is 09:00 Berlin: the 7th is the last one.
    assert next_occurrence("FREQ=DAILY;UNTIL=20310107T080000Z", due, "Europe/Berlin") == berlin(2031, 1, 7, 9)
    assert next_occurrence("FREQ=DAILY;UNTIL=20310107T075959Z", due, "Europe/Berlin") is None
    assert next_occurrence("FREQ=DAILY;UNTIL=20310107", due, "Europe/Berlin") == berlin(2031, 1, 7, 9)
    assert next_occurrence("FREQ=DAILY;UNTIL=20310106", due, "Europe/Berlin") is None


def test_all_day_occurrences_are_due_at_end_of_local_day() -> None:
    due = end_of_day_utc(date(2031, 1, 31), "America/New_York")
    got = next_occurrence("FREQ=MONTHLY;BYMONTHDAY=-1", due, "America/New_York", all_day=True)
    assert got == end_of_day_utc(date(2031, 2, 28), "America/New_York")


def test_overdue_skips_to_after_now() -> None:
    due = berlin(2031, 1, 6, 9)  # a Monday
    now = berlin(2031, 2, 12, 15)  # a Wednesday, weeks later
    assert next_occurrence("FREQ=WEEKLY;BYDAY=MO", due, "Europe/Berlin", now=now) == berlin(2031, 2, 17, 9)
    # Not yet overdue: the plain next one.
    assert next_occurrence("FREQ=WEEKLY;BYDAY=MO", due, "Europe/Berlin", now=berlin(2031, 1, 1)) == berlin(2031, 1, 13, 9)
    # Skipped occurrences count towards COUNT.
    got = next_occurrence_and_rule("FREQ=DAILY;COUNT=10", due, "Europe/Berlin", now=berlin(2031, 1, 9, 12))
    assert got == (berlin(2031, 1, 10, 9), "FREQ=DAILY;COUNT=6")
    assert next_occurrence("FREQ=DAILY;COUNT=3", due, "Europe/Berlin", now=berlin(2031, 1, 9, 12)) is None
    # All-day: an overdue daily task is next due today, until the end of today.
    day_due = end_of_day_utc(date(2031, 1, 6), "Europe/Berlin")
    assert next_occurrence("FREQ=DAILY", day_due, "Europe/Berlin", now=berlin(2031, 1, 9, 12), all_day=True) \
        == end_of_day_utc(date(2031, 1, 9), "Europe/Berlin")


def test_series_ending_far_in_the_future_stops() -> None:
    assert next_occurrence("FREQ=YEARLY;INTERVAL=1000", datetime(2031, 1, 1, tzinfo=UTC), "UTC") is None
