"""Saved views (mine, overdue, my-overdue), typed filters, search, sorting and cursor paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import parse_dt
from tests.factories import TASKS, list_all, make_project, make_task, new_org, task_action


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ids(items: list[dict]) -> list[str]:
    return [i["id"] for i in items]


async def test_my_tasks_overdue_and_my_overdue_views(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    me = await owner.add_user()
    now = datetime.now(UTC)
    past, future = _iso(now - timedelta(days=2)), _iso(now + timedelta(days=2))
    mine_late = await make_task(owner, assignee_id=me.user_id, due_at=past)
    mine_soon = await make_task(owner, assignee_id=me.user_id, due_at=future)
    mine_undated = await make_task(owner, assignee_id=me.user_id)
    mine_done_late = await make_task(owner, assignee_id=me.user_id, due_at=past, status="done")
    theirs_late = await make_task(owner, assignee_id=owner.user_id, due_at=past)
    nobody_late = await make_task(owner, due_at=past)
    yesterday_all_day = await make_task(owner, due_date=(now - timedelta(days=1)).date().isoformat(),
                                        due_timezone="UTC", assignee_id=me.user_id)
    today_all_day = await make_task(owner, due_date=now.date().isoformat(), due_timezone="UTC",
                                    assignee_id=me.user_id)

    mine = await list_all(me, TASKS, {"view": "mine"})
    assert set(_ids(mine)) == {mine_late["id"], mine_soon["id"], mine_undated["id"], yesterday_all_day["id"],
                               today_all_day["id"]}
    # Sorted by due date, undated last.
    dues = [parse_dt(i["due_at"]) for i in mine if i["due_at"]]
    assert dues == sorted(dues) and mine[-1]["id"] == mine_undated["id"]

    overdue = set(_ids(await list_all(owner, TASKS, {"view": "overdue"})))
    assert overdue == {mine_late["id"], theirs_late["id"], nobody_late["id"], yesterday_all_day["id"]}
    assert mine_done_late["id"] not in overdue and today_all_day["id"] not in overdue  # due until midnight

    my_overdue = set(_ids(await list_all(me, TASKS, {"view": "my-overdue"})))
    assert my_overdue == {mine_late["id"], yesterday_all_day["id"]}
    # The owner's own view shows the owner's task only.
    assert set(_ids(await list_all(owner, TASKS, {"view": "my-overdue"}))) == {theirs_late["id"]}

    # A view combines with filters.
    r = await me.get(TASKS, params={"view": "mine", "due_at[isnull]": "true"})
    assert _ids(r.json()["items"]) == [mine_undated["id"]]
    r = await me.get(TASKS, params={"view": "someone-elses"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"


async def test_typed_filters(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    colleague = await owner.add_user()
    project = await make_project(owner)
    a = await make_task(owner, priority=1, due_at="2031-01-01T10:00:00Z", project_id=project["id"])
    b = await make_task(owner, priority=3, due_at="2031-02-01T10:00:00Z", assignee_id=colleague.user_id)
    c = await make_task(owner, priority=4, status="in_progress", assignee_id=colleague.user_id)
    d = await make_task(owner, priority=0, status="done")

    async def ids(params: dict) -> set[str]:
        return set(_ids(await list_all(owner, TASKS, params)))

    assert await ids({"status": "in_progress"}) == {c["id"]}
    assert await ids({"status": "done"}) == {d["id"]}
    assert await ids({"status[in]": "todo,in_progress"}) == {a["id"], b["id"], c["id"]}
    assert await ids({"status[ne]": "done"}) == {a["id"], b["id"], c["id"]}
    assert await ids({"priority[gte]": "3"}) == {b["id"], c["id"]}
    assert await ids({"priority[gte]": "1", "priority[lt]": "4"}) == {a["id"], b["id"]}
    assert await ids({"due_at[lt]": "2031-01-15T00:00:00Z"}) == {a["id"]}
    assert await ids({"due_at[gte]": "2031-01-15T00:00:00+01:00"}) == {b["id"]}
    assert await ids({"due_at[isnull]": "true"}) == {c["id"], d["id"]}
    assert await ids({"assignee_id": colleague.user_id}) == {b["id"], c["id"]}
    assert await ids({"assignee_id[isnull]": "true"}) == {a["id"], d["id"]}
    assert await ids({"project_id": project["id"]}) == {a["id"]}
    assert await ids({"completed_by": owner.user_id}) == {d["id"]}

    for bad in ({"priority[gte]": "high"}, {"due_at[lt]": "soon"}, {"status[like]": "to%"}, {"colour": "red"},
                {"status[in]": ""}):
        r = await owner.get(TASKS, params=bad)
        assert r.status_code == 400, (bad, r.text)


async def test_filter_by_label(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    a = await make_task(owner, labels=["home", "errand"])
    b = await make_task(owner, labels=["work"])
    await make_task(owner)
    assert set(_ids(await list_all(owner, TASKS, {"labels": "errand"}))) == {a["id"]}
    assert set(_ids(await list_all(owner, TASKS, {"labels": "work"}))) == {b["id"]}
    assert await list_all(owner, TASKS, {"labels": "nothing"}) == []


async def test_search_title_and_description(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    a = await make_task(owner, title="Renew passport")
    b = await make_task(owner, title="Call the office", description="Ask about the PASSPORT photo booth")
    await make_task(owner, title="Water plants")
    assert set(_ids(await list_all(owner, TASKS, {"q": "passport"}))) == {a["id"], b["id"]}
    assert set(_ids(await list_all(owner, TASKS, {"q": "Photo Booth"}))) == {b["id"]}
    assert await list_all(owner, TASKS, {"q": "100%"}) == []
    stranger = await new_org(client, nx)
    assert await list_all(stranger, TASKS, {"q": "passport"}) == []


@pytest.mark.parametrize("sort", ["due_at", "-due_at"])
async def test_cursor_paging_by_due_at_with_ties_and_nulls(client: httpx.AsyncClient, nx: Nexus, sort: str) -> None:
    owner = await new_org(client, nx)
    same = "2031-05-05T10:00:00Z"
    made = []
    for i in range(4):
        made.append(await make_task(owner, title=f"tie {i}", due_at=same))
    for i in range(3):
        made.append(await make_task(owner, title=f"undated {i}"))
    for day in (1, 9, 3):
        made.append(await make_task(owner, title=f"day {day}", due_at=f"2031-05-0{day}T08:00:00Z"))

    for limit in (1, 2, 3, 4):
        items = await list_all(owner, TASKS, {"sort": sort}, limit=limit)
        ids = _ids(items)
        assert len(ids) == len(set(ids)) == len(made), (limit, ids)  # no duplicates, no gaps
        dated = [parse_dt(i["due_at"]) for i in items if i["due_at"] is not None]
        assert dated == sorted(dated, reverse=sort.startswith("-"))
        assert all(i["due_at"] is None for i in items[len(dated):])  # nulls last either way
        # Ties are broken by id.
        ties = [i["id"] for i in items if i["due_at"] is not None and parse_dt(i["due_at"]) == parse_dt(same)]
        assert ties == sorted(ties)
        undated = [i["id"] for i in items if i["due_at"] is None]
        assert undated == sorted(undated)


async def test_done_tasks_leave_views_and_show_up_again_on_reopen(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, assignee_id=owner.user_id, due_at="2020-01-01T00:00:00Z")
    assert t["id"] in _ids(await list_all(owner, TASKS, {"view": "my-overdue"}))
    await task_action(owner, t["id"], "complete")
    assert t["id"] not in _ids(await list_all(owner, TASKS, {"view": "my-overdue"}))
    assert t["id"] not in _ids(await list_all(owner, TASKS, {"view": "mine"}))
    await task_action(owner, t["id"], "reopen")
    assert t["id"] in _ids(await list_all(owner, TASKS, {"view": "my-overdue"}))


async def test_export_filtered_csv(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    a = await make_task(owner, title="=HYPERLINK(\"http://evil\")", priority=4)
    await make_task(owner, priority=0)
    r = await owner.get(f"{TASKS}/export", params={"format": "csv", "priority[gte]": "4"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.strip().splitlines()
    assert len(lines) == 2 and a["id"] in lines[1]
    assert "'=HYPERLINK" in lines[1]  # spreadsheet formulas are defused
