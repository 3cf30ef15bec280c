"""Pure task rules: due moments in time zones and RFC 5545 recurrence.

No I/O here: the service calls these and the unit tests drive them directly.

Recurrence is computed on wall-clock time in the task's own zone, so "every Monday
09:00 Europe/Berlin" stays 09:00 on both sides of a daylight-saving change. The
rule is evaluated on a copy of the calendar shifted by a multiple of 400 years
(the Gregorian cycle: same weekdays, same leap days) so that a rule that can
never match (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) gives up after a few hundred
years of calendar instead of scanning to the year 9999.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from dateutil.rrule import rrule, rrulestr

__all__ = ["MAX_YEAR", "MIN_YEAR", "end_of_day_utc", "local_moment", "next_occurrence", "next_occurrence_and_rule",
           "normalise_rrule", "rule_can_recur", "valid_timezone"]

MIN_YEAR = 1900
MAX_YEAR = 2999

_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
_PARTS = ("FREQ", "UNTIL", "COUNT", "INTERVAL", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY",
          "BYYEARDAY", "BYWEEKNO", "BYMONTH", "BYSETPOS", "WKST")
_UNTIL = re.compile(r"^(\d{8})(T(\d{6})(Z?))?$")
MAX_INTERVAL = 1000
MAX_COUNT = 10_000
# Shifted dtstart lands in [9200, 9600): at least 400 years of calendar before datetime's year 9999.
_SHIFT_TARGET = 9200


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def valid_timezone(name: str) -> bool:
    """An IANA zone name (Europe/Berlin, UTC). Only names from the tz database are taken, so a
    directory ("America") or a file outside it never reaches ZoneInfo."""
    if name not in _zones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def end_of_day_utc(day: date, tz: str) -> datetime:
    """An all-day task is due until the end of its day where its owner lives."""
    local = datetime.combine(day, time(23, 59, 59, 999999), tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC)


def local_moment(wall: datetime, tz: str) -> datetime:
    """A wall-clock time in `tz` (naive) as an aware UTC moment."""
    return wall.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


# -- parsing ------------------------------------------------------------------------


def _split(text: str) -> dict[str, str]:
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if "\n" in body or "\r" in body:
        raise ValueError("one RRULE line is expected (no DTSTART, EXDATE or RDATE lines)")
    parts: dict[str, str] = {}
    for seg in body.upper().split(";"):
        seg = seg.strip()
        if not seg:
            continue
        key, eq, value = seg.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not value:
            raise ValueError(f"{seg!r} is not NAME=VALUE")
        if key not in _PARTS:
            raise ValueError(f"unknown rule part {key}")
        if key in parts:
            raise ValueError(f"{key} appears twice")
        parts[key] = value
    return parts


def normalise_rrule(text: str) -> str:
    """Check an RFC 5545 RRULE value and return it upper-cased, without an `RRULE:` prefix.
    Raises ValueError with a message a person can act on."""
    parts = _split(text)
    freq = parts.get("FREQ")
    if freq is None:
        raise ValueError("an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO is expected")
    if freq in ("MINUTELY", "SECONDLY"):
        raise ValueError("tasks repeat at most hourly")
    if freq not in _FREQS:
        raise ValueError(f"FREQ must be one of {', '.join(_FREQS)}")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL cannot both be given (RFC 5545)")
    for key, top in (("INTERVAL", MAX_INTERVAL), ("COUNT", MAX_COUNT)):
        if key in parts:
            raw = parts[key]
            if not raw.isdigit() or not 1 <= int(raw) <= top:
                raise ValueError(f"{key} must be a whole number from 1 to {top}")
    if "UNTIL" in parts:
        m = _UNTIL.match(parts["UNTIL"])
        if m is None:
            raise ValueError("UNTIL must look like 20261231 or 20261231T235959Z")
        try:
            _until_local(parts["UNTIL"], "UTC")
        except ValueError:
            raise ValueError("UNTIL is not a real date and time") from None
    try:
        _build(parts, datetime(2000, 1, 3, 9, 0), "UTC")
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"not a valid RRULE: {exc}") from None
    return ";".join(f"{k}={v}" for k, v in parts.items())


def _until_local(raw: str, tz: str) -> datetime:
    """UNTIL as a naive wall-clock time in `tz`: a UTC value (…Z) is converted; a date-only
    value means the end of that day; a floating value is already local."""
    m = _UNTIL.match(raw)
    if m is None:
        raise ValueError(raw)
    day = datetime.strptime(m.group(1), "%Y%m%d")
    if not m.group(2):
        return day.replace(hour=23, minute=59, second=59)
    clock = datetime.strptime(m.group(3), "%H%M%S").time()
    wall = datetime.combine(day.date(), clock)
    if m.group(4):
        return wall.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    return wall


def _shift(year: int) -> int:
    return max(0, (_SHIFT_TARGET - year + 399) // 400) * 400


def _build(parts: dict[str, str], start: datetime, tz: str) -> tuple[rrule, int]:
    """The rule (COUNT left out, handled by the caller) on the shifted calendar, and the shift."""
    shift = _shift(start.year)
    text = []
    for key, value in parts.items():
        if key == "COUNT":
            continue
        if key == "UNTIL":
            until = _until_local(value, tz)
            if until.year + shift > 9999:
                continue  # beyond the window searched anyway
            until = until.replace(year=until.year + shift)
            value = until.strftime("%Y%m%dT%H%M%S")
        text.append(f"{key}={value}")
    rule = rrulestr(";".join(text), dtstart=start.replace(year=start.year + shift))
    assert isinstance(rule, rrule)
    return rule, shift


def _after(rule: rrule, shift: int, start: datetime) -> Iterator[datetime]:
    """Occurrences strictly after `start` (a real, unshifted wall-clock time)."""
    shifted = start.replace(year=start.year + shift)
    for occ in rule.xafter(shifted, inc=False):
        yield occ.replace(year=occ.year - shift)


def rule_can_recur(text: str, due: datetime, tz: str, all_day: bool = False) -> bool:
    """Whether the rule, without its COUNT/UNTIL end, has any occurrence after `due` within
    a few centuries: false for rules that can never match (February 30th)."""
    parts = {k: v for k, v in _split(text).items() if k not in ("COUNT", "UNTIL")}
    start = _start(due, tz, all_day)
    rule, shift = _build(parts, start, tz)
    return next(_after(rule, shift, start), None) is not None


def _start(due: datetime, tz: str, all_day: bool) -> datetime:
    local = due.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    if all_day:
        return datetime.combine(local.date(), time(0, 0))
    return local


def next_occurrence_and_rule(text: str, due: datetime, tz: str, *, now: datetime | None = None,
                             all_day: bool = False) -> tuple[datetime, str] | None:
    """The next due moment (UTC) after the occurrence due at `due`, and the rule the next task
    carries (COUNT counts down: the current task is the first of COUNT remaining).

    With `now`, occurrences already past are skipped, like Todoist and Vikunja do when an
    overdue recurring task is completed (skipped occurrences count towards COUNT).
    All-day tasks recur by date and are due at the end of the local day."""
    parts = _split(text)
    count = int(parts["COUNT"]) if "COUNT" in parts else None
    if count is not None and count <= 1:
        return None
    start = _start(due, tz, all_day)
    rule, shift = _build(parts, start, tz)

    def moment(wall: datetime) -> datetime:
        return end_of_day_utc(wall.date(), tz) if all_day else local_moment(wall, tz)

    if count is None and now is not None and now > moment(start):
        # Jump straight to today/now: no need to walk through the missed occurrences.
        today = now.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
        floor = datetime.combine(today.date(), time(0, 0)) - timedelta(microseconds=1) if all_day else today
        if floor > start:
            start_iter = _after(rule, shift, floor)
        else:
            start_iter = _after(rule, shift, start)
    else:
        start_iter = _after(rule, shift, start)
    for n, occ in enumerate(start_iter, start=1):
        if count is not None and n >= count:
            return None
        at = moment(occ)
        if now is not None and at <= now:
            continue
        if at.year > MAX_YEAR:
            return None
        rest = dict(parts)
        if count is not None:
            rest["COUNT"] = str(count - n)
        return at, ";".join(f"{k}={v}" for k, v in rest.items())
    return None


def next_occurrence(text: str, due: datetime, tz: str, *, now: datetime | None = None,
                    all_day: bool = False) -> datetime | None:
    """The next due moment (UTC) of a recurring task due at `due`, or None when the series ends."""
    got = next_occurrence_and_rule(text, due, tz, now=now, all_day=all_day)
    return None if got is None else got[0]
