"""Due dates in time zones and recurring tasks (RFC 5545 RRULE), over HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import parse_dt
from tests.factories import TASKS, list_all, make_task, new_org, task_action

BERLIN = ZoneInfo("Europe/Berlin")


def _at(value: str | None) -> datetime | None:
    return None if value is None else parse_dt(value)


def _pointers(r: httpx.Response) -> set[str]:
    return {e["pointer"] for e in r.json().get("errors", [])}


async def _get(actor, task_id: str) -> dict:
    r = await actor.get(f"{TASKS}/{task_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def _complete_and_next(actor, task: dict) -> tuple[dict, dict | None]:
    r = await task_action(actor, task["id"], "complete")
    assert r.status_code == 200, r.text
    done = r.json()
    if done["next_occurrence_id"] is None:
        return done, None
    return done, await _get(actor, done["next_occurrence_id"])


# -- due dates ----------------------------------------------------------------------------


async def test_due_at_with_offset_is_stored_in_utc(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2031-06-10T09:30:00+02:00")
    assert _at(t["due_at"]) == datetime(2031, 6, 10, 7, 30, tzinfo=UTC)
    assert t["due_at"].endswith("Z")
    assert t["all_day"] is False and t["due_date"] is None and t["due_timezone"] == "UTC"
    assert await _get(owner, t["id"]) == t


async def test_naive_due_at_is_wall_time_in_due_timezone(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    winter = await make_task(owner, due_at="2031-01-15T09:00:00", due_timezone="Europe/Berlin")
    summer = await make_task(owner, due_at="2031-07-15T09:00:00", due_timezone="Europe/Berlin")
    assert _at(winter["due_at"]) == datetime(2031, 1, 15, 8, 0, tzinfo=UTC)
    assert _at(summer["due_at"]) == datetime(2031, 7, 15, 7, 0, tzinfo=UTC)
    assert summer["due_timezone"] == "Europe/Berlin"
    # An explicit offset wins over the zone.
    explicit = await make_task(owner, due_at="2031-07-15T09:00:00Z", due_timezone="Europe/Berlin")
    assert _at(explicit["due_at"]) == datetime(2031, 7, 15, 9, 0, tzinfo=UTC)


async def test_all_day_due_date_is_due_at_end_of_local_day(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_date="2031-03-10", due_timezone="America/New_York")
    assert t["all_day"] is True and t["due_date"] == "2031-03-10"
    # 23:59:59.999999 EDT (UTC-4 from 9 March 2031) is 03:59:59.999999 the next day in UTC.
    assert _at(t["due_at"]) == datetime(2031, 3, 11, 3, 59, 59, 999999, tzinfo=UTC)
    local = _at(t["due_at"]).astimezone(ZoneInfo("America/New_York"))
    assert (local.date(), local.hour, local.minute) == (date(2031, 3, 10), 23, 59)


async def test_switching_between_timed_and_all_day(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2031-05-01T12:00:00Z")
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"due_date": "2031-05-02"})
    assert r.status_code == 200, r.text
    assert r.json()["all_day"] is True and r.json()["due_date"] == "2031-05-02"
    assert _at(r.json()["due_at"]) == datetime(2031, 5, 2, 23, 59, 59, 999999, tzinfo=UTC)

    r = await owner.patch(f"{TASKS}/{t['id']}", json={"due_timezone": "Asia/Tokyo"})
    assert r.status_code == 200
    assert r.json()["due_date"] == "2031-05-02"  # same day, now ending in Tokyo
    assert _at(r.json()["due_at"]) == datetime(2031, 5, 2, 14, 59, 59, 999999, tzinfo=UTC)

    r = await owner.patch(f"{TASKS}/{t['id']}", json={"due_at": "2031-05-03T08:00:00"})
    assert r.status_code == 200
    assert r.json()["all_day"] is False and r.json()["due_date"] is None
    assert _at(r.json()["due_at"]) == datetime(2031, 5, 2, 23, 0, tzinfo=UTC)  # 08:00 in Tokyo

    r = await owner.patch(f"{TASKS}/{t['id']}", json={"due_at": None})
    assert r.status_code == 200
    assert r.json()["due_at"] is None and r.json()["due_date"] is None and r.json()["all_day"] is False


async def test_bad_due_input_is_422(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    cases = [
        ({"due_at": "2031-05-01T12:00:00Z", "due_date": "2031-05-01"}, "/due_date"),
        ({"due_date": "2031-05-01", "due_timezone": "Mars/Olympus"}, "/due_timezone"),
        ({"due_at": "2031-05-01T12:00:00", "due_timezone": "America"}, "/due_timezone"),
        ({"due_timezone": "../../etc/passwd"}, "/due_timezone"),
        ({"due_at": "next tuesday"}, "/due_at"),
        ({"due_date": "2031-02-30"}, "/due_date"),
        ({"due_at": "0001-01-01T00:00:00+05:00"}, "/due_at"),
        ({"due_date": "9999-12-31", "due_timezone": "Pacific/Kiritimati"}, "/due_date"),
    ]
    for body, pointer in cases:
        r = await owner.post(TASKS, json={"title": "x", **body})
        assert r.status_code == 422, (body, r.text)
        assert pointer in _pointers(r), (body, r.json())
    t = await make_task(owner, due_at="2031-05-01T12:00:00Z")
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"due_at": "2031-05-01T12:00:00Z", "due_date": "2031-05-01"})
    assert r.status_code == 422 and "/due_date" in _pointers(r)
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"due_timezone": "Nowhere/Land"})
    assert r.status_code == 422 and "/due_timezone" in _pointers(r)
    assert (await _get(owner, t["id"]))["version"] == 1


# -- recurrence -----------------------------------------------------------------------------


async def test_weekly_monday_recurrence_keeps_wall_time_across_spring_dst(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    # Monday 24 March 2031, 09:00 CET; Berlin moves to CEST on Sunday 30 March.
    t = await make_task(owner, title="Weekly review", due_at="2031-03-24T09:00:00", due_timezone="Europe/Berlin",
                        recurrence="FREQ=WEEKLY;BYDAY=MO", priority=3, labels=["review"],
                        checklist=[{"text": "inbox zero", "done": True}, {"text": "plan week"}])
    assert _at(t["due_at"]) == datetime(2031, 3, 24, 8, 0, tzinfo=UTC)
    done, nxt = await _complete_and_next(owner, t)
    assert done["status"] == "done" and nxt is not None
    assert done["next_occurrence_id"] == nxt["id"]
    assert _at(nxt["due_at"]) == datetime(2031, 3, 31, 7, 0, tzinfo=UTC)  # 09:00 CEST
    local = _at(nxt["due_at"]).astimezone(BERLIN)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert nxt["status"] == "todo" and nxt["completed_at"] is None
    assert nxt["recurrence_of"] == t["id"] and nxt["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    assert nxt["title"] == "Weekly review" and nxt["priority"] == 3 and nxt["labels"] == ["review"]
    assert nxt["due_timezone"] == "Europe/Berlin"
    assert nxt["checklist"] == [{"text": "inbox zero", "done": False}, {"text": "plan week", "done": False}]

    # The series keeps pointing at its first task.
    _, third = await _complete_and_next(owner, nxt)
    assert third is not None and third["recurrence_of"] == t["id"]
    assert _at(third["due_at"]) == datetime(2031, 4, 7, 7, 0, tzinfo=UTC)
    series = await list_all(owner, TASKS, {"recurrence_of": t["id"], "sort": "due_at"})
    assert [s["id"] for s in series] == [nxt["id"], third["id"]]


async def test_weekly_recurrence_across_autumn_dst(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    # Monday 20 October 2031, 09:00 CEST; Berlin returns to CET on Sunday 26 October.
    t = await make_task(owner, due_at="2031-10-20T09:00:00", due_timezone="Europe/Berlin",
                        recurrence="RRULE:FREQ=WEEKLY;BYDAY=MO")
    assert t["recurrence"] == "FREQ=WEEKLY;BYDAY=MO"
    _, nxt = await _complete_and_next(owner, t)
    assert nxt is not None
    assert _at(t["due_at"]) == datetime(2031, 10, 20, 7, 0, tzinfo=UTC)
    assert _at(nxt["due_at"]) == datetime(2031, 10, 27, 8, 0, tzinfo=UTC)  # still 09:00 local


async def test_completing_by_patch_also_schedules_the_next_occurrence(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2031-03-24T09:00:00", due_timezone="Europe/Berlin",
                        recurrence="FREQ=DAILY")
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"status": "done"})
    assert r.status_code == 200, r.text
    nxt = await _get(owner, r.json()["next_occurrence_id"])
    assert _at(nxt["due_at"]) == datetime(2031, 3, 25, 8, 0, tzinfo=UTC)


async def test_count_counts_down_and_ends_the_series(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2031-01-06T09:00:00Z", recurrence="FREQ=DAILY;COUNT=3")
    made = [t]
    for _ in range(5):
        _, nxt = await _complete_and_next(owner, made[-1])
        if nxt is None:
            break
        made.append(nxt)
    assert len(made) == 3  # COUNT=3: three occurrences in all
    assert [m["recurrence"] for m in made] == ["FREQ=DAILY;COUNT=3", "FREQ=DAILY;COUNT=2", "FREQ=DAILY;COUNT=1"]
    assert [_at(m["due_at"]).day for m in made] == [6, 7, 8]

    last = await make_task(owner, due_at="2031-01-06T09:00:00Z", recurrence="FREQ=DAILY;COUNT=1")
    done, nxt = await _complete_and_next(owner, last)
    assert nxt is None and done["next_occurrence_id"] is None and done["status"] == "done"


async def test_until_ends_the_series(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2031-01-06T09:00:00", due_timezone="Europe/Berlin",
                        recurrence="FREQ=DAILY;UNTIL=20310107T235959Z")
    _, second = await _complete_and_next(owner, t)
    assert second is not None and _at(second["due_at"]) == datetime(2031, 1, 7, 8, 0, tzinfo=UTC)
    _, third = await _complete_and_next(owner, second)
    assert third is None


async def test_all_day_recurrence_moves_by_date(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_date="2031-01-31", due_timezone="America/New_York",
                        recurrence="FREQ=MONTHLY;BYMONTHDAY=-1")
    _, nxt = await _complete_and_next(owner, t)
    assert nxt is not None and nxt["all_day"] is True and nxt["due_date"] == "2031-02-28"
    assert _at(nxt["due_at"]) == datetime(2031, 3, 1, 4, 59, 59, 999999, tzinfo=UTC)  # end of 28 Feb in New York


async def test_overdue_recurring_task_skips_to_the_next_future_occurrence(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2020-01-06T09:00:00", due_timezone="Europe/Berlin",
                        recurrence="FREQ=WEEKLY;BYDAY=MO")
    before = datetime.now(UTC)
    _, nxt = await _complete_and_next(owner, t)
    assert nxt is not None
    due = _at(nxt["due_at"])
    assert before < due <= before + timedelta(days=8)
    local = due.astimezone(BERLIN)
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)


async def test_reopen_and_complete_again_makes_no_second_occurrence(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2031-01-06T09:00:00Z", recurrence="FREQ=WEEKLY")
    _, nxt = await _complete_and_next(owner, t)
    assert (await task_action(owner, t["id"], "reopen")).status_code == 200
    _, nxt2 = await _complete_and_next(owner, (await _get(owner, t["id"])))
    assert nxt2 is not None and nxt2["id"] == nxt["id"]
    series = await list_all(owner, TASKS, {"recurrence_of": t["id"]})
    assert len(series) == 1


async def test_recurrence_rules_are_validated(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    due = {"due_at": "2031-01-06T09:00:00Z"}
    bad = [
        {"recurrence": "FREQ=WEEKLY;BYDAY=MO"},  # no due date
        {**due, "recurrence": "EVERY MONDAY"},
        {**due, "recurrence": "FREQ=WEEKLY;BYDAY=XX"},
        {**due, "recurrence": "FREQ=FORTNIGHTLY"},
        {**due, "recurrence": "FREQ=MINUTELY"},
        {**due, "recurrence": "FREQ=DAILY;INTERVAL=0"},
        {**due, "recurrence": "FREQ=DAILY;COUNT=2;UNTIL=20310301T000000Z"},
        {**due, "recurrence": "FREQ=DAILY;UNTIL=tomorrow"},
        {**due, "recurrence": "FREQ=DAILY;FOO=1"},
        {**due, "recurrence": "FREQ=DAILY\nEXDATE:20310107"},
        {**due, "recurrence": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30"},  # never happens
    ]
    for body in bad:
        r = await owner.post(TASKS, json={"title": "x", **body})
        assert r.status_code == 422, (body, r.text)
        assert "/recurrence" in _pointers(r), (body, r.json())

    t = await make_task(owner, **due, recurrence="FREQ=DAILY")
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"due_at": None})
    assert r.status_code == 422 and "/recurrence" in _pointers(r)
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"recurrence": "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=31"})
    assert r.status_code == 422 and "/recurrence" in _pointers(r)
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"recurrence": None, "due_at": None})
    assert r.status_code == 200 and r.json()["recurrence"] is None


@pytest.mark.parametrize("rule", ["freq=monthly;bymonthday=15", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
                                  "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH", "FREQ=MONTHLY;BYDAY=-1FR"])
async def test_accepted_rules_are_normalised(client: httpx.AsyncClient, nx: Nexus, rule: str) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2031-01-06T09:00:00Z", recurrence=rule)
    assert t["recurrence"] == rule.upper()
    _, nxt = await _complete_and_next(owner, t)
    assert nxt is not None and _at(nxt["due_at"]) > _at(t["due_at"])


async def test_concurrent_completes_make_one_next_occurrence(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, due_at="2031-01-06T09:00:00Z", recurrence="FREQ=DAILY")
    results = await asyncio.gather(*[task_action(owner, t["id"], "complete") for _ in range(5)])
    assert {r.status_code for r in results} == {200}, [r.text for r in results]
    assert len({r.json()["next_occurrence_id"] for r in results}) == 1
    assert len(await list_all(owner, TASKS, {"recurrence_of": t["id"]})) == 1
