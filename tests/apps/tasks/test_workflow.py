"""Tasks over HTTP: status workflow, subtasks, assignment, kanban moves and checklists."""

from __future__ import annotations

import httpx

from nexus.kernel.http.app import Nexus
from tests.factories import TASKS, list_all, make_project, make_task, new_org, task_action


async def _get(actor, task_id: str) -> dict:
    r = await actor.get(f"{TASKS}/{task_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _pointers(r: httpx.Response) -> set[str]:
    return {e["pointer"] for e in r.json().get("errors", [])}



# -- status workflow ------------------------------------------------------------------


async def test_start_complete_reopen_actions(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner)
    assert t["status"] == "todo" and t["completed_at"] is None and t["completed_by"] is None

    r = await task_action(owner, t["id"], "start")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_progress" and r.json()["version"] == 2
    assert r.headers["etag"] == f'"{t["id"]}.2"'

    r = await task_action(owner, t["id"], "complete")
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "done"
    assert done["completed_at"] is not None and done["completed_by"] == owner.user_id
    assert await _get(owner, t["id"]) == done

    again = await task_action(owner, t["id"], "complete")  # idempotent: nothing changes
    assert again.status_code == 200 and again.json()["version"] == done["version"]

    r = await task_action(owner, t["id"], "start")
    assert r.status_code == 409  # a done task is reopened, not started

    r = await task_action(owner, t["id"], "reopen")
    assert r.status_code == 200, r.text
    reopened = r.json()
    assert reopened["status"] == "todo"
    assert reopened["completed_at"] is None and reopened["completed_by"] is None


async def test_reopen_of_open_task_is_409_and_changes_nothing(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    for status in ("todo", "in_progress"):
        t = await make_task(owner, status=status)
        r = await task_action(owner, t["id"], "reopen")
        assert r.status_code == 409, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert (await _get(owner, t["id"]))["version"] == 1


async def test_status_by_patch_sets_and_clears_completion(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner)
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"status": "in_progress"})
    assert r.status_code == 200 and r.json()["completed_at"] is None
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"status": "done"})
    assert r.status_code == 200, r.text
    assert r.json()["completed_at"] is not None and r.json()["completed_by"] == owner.user_id
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"status": "in_progress"})
    assert r.status_code == 200
    assert r.json()["status"] == "in_progress"
    assert r.json()["completed_at"] is None and r.json()["completed_by"] is None

    created_done = await make_task(owner, status="done")
    assert created_done["completed_at"] is not None and created_done["completed_by"] == owner.user_id

    r = await owner.patch(f"{TASKS}/{t['id']}", json={"status": "finished"})
    assert r.status_code == 422 and "/status" in _pointers(r)
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"status": None})
    assert r.status_code == 422


async def test_actions_audit_and_emit_events(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner)
    for action in ("start", "complete", "reopen"):
        assert (await task_action(owner, t["id"], action)).status_code == 200
    async with nx.db.reader() as conn:
        audit = await conn.fetch("SELECT action FROM kernel_audit WHERE org_id = ? AND record_id = ? ORDER BY at, id",
                                 [owner.org_id, t["id"]])
        events = await conn.fetch("SELECT type FROM kernel_outbox WHERE org_id = ? AND subject = ? ORDER BY id",
                                  [owner.org_id, t["id"]])
    assert [a[0] for a in audit] == ["created", "started", "completed", "reopened"]
    assert [e[0] for e in events] == ["nexus.tasks.task.created", "nexus.tasks.task.started",
                                      "nexus.tasks.task.completed", "nexus.tasks.task.reopened"]


async def test_actions_take_if_match_and_refuse_bodies(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner)
    r = await owner.post(f"{TASKS}/{t['id']}/complete", headers={"If-Match": f'"{t["id"]}.7"'})
    assert r.status_code == 412
    r = await owner.post(f"{TASKS}/{t['id']}/complete", json={"really": True})
    assert r.status_code == 422
    assert (await _get(owner, t["id"]))["status"] == "todo"
    r = await owner.post(f"{TASKS}/{t['id']}/complete", headers={"If-Match": f'"{t["id"]}.1"'})
    assert r.status_code == 200 and r.json()["status"] == "done"
    r = await owner.post(f"{TASKS}/{t['id']}/explode")
    assert r.status_code == 404


async def test_viewer_cannot_run_actions(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    viewer = await owner.add_user(["viewer"])
    t = await make_task(owner)
    for action in ("start", "complete"):
        assert (await task_action(viewer, t["id"], action)).status_code == 403
    assert (await task_action(viewer, t["id"], "assign", {"assignee_id": None})).status_code == 403
    stranger = await new_org(client, nx)
    assert (await task_action(stranger, t["id"], "complete")).status_code == 404
    assert (await _get(owner, t["id"]))["status"] == "todo"


# -- subtasks ----------------------------------------------------------------------------


async def test_subtask_inherits_project_and_lists_by_parent(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    project = await make_project(owner)
    parent = await make_task(owner, project_id=project["id"])
    subs = [await make_task(owner, parent_id=parent["id"], title=f"step {i}") for i in range(3)]
    assert all(s["project_id"] == project["id"] and s["parent_id"] == parent["id"] for s in subs)
    await make_task(owner, project_id=project["id"])  # a sibling, not a subtask

    listed = await list_all(owner, TASKS, {"parent_id": parent["id"], "sort": "created_at"})
    assert [i["id"] for i in listed] == [s["id"] for s in subs]
    top = await list_all(owner, TASKS, {"parent_id[isnull]": "true", "project_id": project["id"]})
    assert parent["id"] in {i["id"] for i in top} and not {s["id"] for s in subs} & {i["id"] for i in top}

    other = await make_project(owner)
    r = await owner.post(TASKS, json={"title": "x", "parent_id": parent["id"], "project_id": other["id"]})
    assert r.status_code == 422 and "/project_id" in _pointers(r)


async def test_parent_must_exist_in_the_org(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    stranger = await new_org(client, nx)
    theirs = await make_task(stranger)
    for parent_id in (theirs["id"], "01ARZ3NDEKTSV4RRFFQ69G5FAV"):
        r = await owner.post(TASKS, json={"title": "x", "parent_id": parent_id})
        assert r.status_code == 422 and "/parent_id" in _pointers(r), r.text


async def test_subtask_cycles_are_refused(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    a = await make_task(owner)
    b = await make_task(owner, parent_id=a["id"])
    c = await make_task(owner, parent_id=b["id"])
    for task, parent in ((a, a), (a, b), (a, c), (b, c)):
        r = await owner.patch(f"{TASKS}/{task['id']}", json={"parent_id": parent["id"]})
        assert r.status_code == 422, r.text
        assert "/parent_id" in _pointers(r)
    assert (await _get(owner, a["id"]))["parent_id"] is None
    assert (await _get(owner, a["id"]))["version"] == 1


async def test_subtask_depth_is_limited(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    chain = [await make_task(owner)]
    for _ in range(4):  # five levels in all
        chain.append(await make_task(owner, parent_id=chain[-1]["id"]))
    r = await owner.post(TASKS, json={"title": "too deep", "parent_id": chain[-1]["id"]})
    assert r.status_code == 422 and "/parent_id" in _pointers(r)

    # Moving a task that has subtasks counts its own subtree too.
    top = await make_task(owner)
    await make_task(owner, parent_id=top["id"])
    r = await owner.patch(f"{TASKS}/{top['id']}", json={"parent_id": chain[3]["id"]})
    assert r.status_code == 422 and "/parent_id" in _pointers(r)
    r = await owner.patch(f"{TASKS}/{top['id']}", json={"parent_id": chain[2]["id"]})
    assert r.status_code == 200, r.text


async def test_completing_a_parent_completes_open_subtasks(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    parent = await make_task(owner)
    open_sub = await make_task(owner, parent_id=parent["id"])
    grandchild = await make_task(owner, parent_id=open_sub["id"], status="in_progress")
    done_sub = await make_task(owner, parent_id=parent["id"])
    done_sub = (await task_action(owner, done_sub["id"], "complete")).json()

    r = await task_action(owner, parent["id"], "complete")
    assert r.status_code == 200, r.text
    for sub in (open_sub, grandchild):
        got = await _get(owner, sub["id"])
        assert got["status"] == "done" and got["completed_by"] == owner.user_id
    assert (await _get(owner, done_sub["id"]))["completed_at"] == done_sub["completed_at"]  # untouched

    # The same through PATCH, as a board that edits status does it.
    parent2 = await make_task(owner)
    sub2 = await make_task(owner, parent_id=parent2["id"])
    r = await owner.patch(f"{TASKS}/{parent2['id']}", json={"status": "done"})
    assert r.status_code == 200
    assert (await _get(owner, sub2["id"]))["status"] == "done"


async def test_reopening_a_subtask_reopens_done_parents(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    parent = await make_task(owner)
    sub = await make_task(owner, parent_id=parent["id"])
    await task_action(owner, parent["id"], "complete")
    r = await task_action(owner, sub["id"], "reopen")
    assert r.status_code == 200
    p = await _get(owner, parent["id"])
    assert p["status"] == "todo" and p["completed_at"] is None


async def test_moving_a_parent_moves_its_subtasks(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    p1, p2 = await make_project(owner), await make_project(owner)
    parent = await make_task(owner, project_id=p1["id"])
    sub = await make_task(owner, parent_id=parent["id"])
    subsub = await make_task(owner, parent_id=sub["id"])
    r = await owner.patch(f"{TASKS}/{parent['id']}", json={"project_id": p2["id"]})
    assert r.status_code == 200, r.text
    assert (await _get(owner, sub["id"]))["project_id"] == p2["id"]
    assert (await _get(owner, subsub["id"]))["project_id"] == p2["id"]
    # A subtask alone cannot leave its parent's project; detaching it can.
    r = await owner.patch(f"{TASKS}/{sub['id']}", json={"project_id": p1["id"]})
    assert r.status_code == 422 and "/project_id" in _pointers(r)
    r = await owner.patch(f"{TASKS}/{sub['id']}", json={"project_id": p1["id"], "parent_id": None})
    assert r.status_code == 200 and r.json()["parent_id"] is None and r.json()["project_id"] == p1["id"]


async def test_deleting_a_parent_deletes_and_restores_its_subtasks(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    parent = await make_task(owner)
    sub = await make_task(owner, parent_id=parent["id"])
    subsub = await make_task(owner, parent_id=sub["id"])
    earlier = await make_task(owner, parent_id=parent["id"])
    assert (await owner.delete(f"{TASKS}/{earlier['id']}")).status_code == 204  # deleted on its own, before

    assert (await owner.delete(f"{TASKS}/{parent['id']}")).status_code == 204
    for t in (parent, sub, subsub):
        assert (await owner.get(f"{TASKS}/{t['id']}")).status_code == 404
    r = await owner.post(f"{TASKS}/{sub['id']}/restore")
    assert r.status_code == 409  # not without its parent
    r = await owner.post(f"{TASKS}/{parent['id']}/restore")
    assert r.status_code == 200, r.text
    for t in (parent, sub, subsub):
        assert (await owner.get(f"{TASKS}/{t['id']}")).status_code == 200
    assert (await owner.get(f"{TASKS}/{earlier['id']}")).status_code == 404  # stays deleted


# -- assignment ---------------------------------------------------------------------------


async def test_assign_by_patch_takes_colleagues_only(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    colleague = await owner.add_user()
    stranger = await new_org(client, nx)
    t = await make_task(owner, assignee_id=colleague.user_id)
    assert t["assignee_id"] == colleague.user_id
    for bad in (stranger.user_id, "01ARZ3NDEKTSV4RRFFQ69G5FAV"):
        r = await owner.post(TASKS, json={"title": "x", "assignee_id": bad})
        assert r.status_code == 422 and "/assignee_id" in _pointers(r)
        r = await owner.patch(f"{TASKS}/{t['id']}", json={"assignee_id": bad})
        assert r.status_code == 422 and "/assignee_id" in _pointers(r)
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"assignee_id": None})
    assert r.status_code == 200 and r.json()["assignee_id"] is None
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"assignee_id": owner.user_id})
    assert r.status_code == 200 and r.json()["assignee_id"] == owner.user_id


async def test_assign_to_a_colleague_and_unassign(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    colleague = await owner.add_user()
    t = await make_task(owner)
    r = await task_action(owner, t["id"], "assign", {"assignee_id": colleague.user_id})
    assert r.status_code == 200, r.text
    assert r.json()["assignee_id"] == colleague.user_id
    mine = await list_all(colleague, TASKS, {"view": "mine"})
    assert t["id"] in {i["id"] for i in mine}

    r = await task_action(owner, t["id"], "assign", {"assignee_id": None})
    assert r.status_code == 200 and r.json()["assignee_id"] is None
    assert t["id"] not in {i["id"] for i in await list_all(colleague, TASKS, {"view": "mine"})}


async def test_assign_refuses_users_outside_the_org(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    stranger = await new_org(client, nx)
    t = await make_task(owner)
    for bad in (stranger.user_id, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "not-an-id"):
        r = await task_action(owner, t["id"], "assign", {"assignee_id": bad})
        assert r.status_code == 422, r.text
        assert "/assignee_id" in _pointers(r)
    r = await task_action(owner, t["id"], "assign", {})
    assert r.status_code == 422  # assignee_id is required (null to unassign)
    assert (await _get(owner, t["id"]))["version"] == 1


# -- kanban move, checklist ---------------------------------------------------------------


async def test_move_changes_column_project_and_position(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    p1, p2 = await make_project(owner), await make_project(owner)
    t = await make_task(owner, project_id=p1["id"], position=1.0)
    r = await task_action(owner, t["id"], "move", {"status": "in_progress", "position": 2.5})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "in_progress" and r.json()["position"] == 2.5 and r.json()["project_id"] == p1["id"]

    r = await task_action(owner, t["id"], "move", {"project_id": p2["id"], "status": "done"})
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["project_id"] == p2["id"] and moved["status"] == "done"
    assert moved["completed_at"] is not None  # moving to the done column completes

    r = await task_action(owner, t["id"], "move", {"status": "todo"})
    assert r.json()["completed_at"] is None

    same = await task_action(owner, t["id"], "move", {"status": "todo"})
    assert same.json()["version"] == r.json()["version"]  # nothing to do

    r = await task_action(owner, t["id"], "move", {"project_id": None})
    assert r.status_code == 200 and r.json()["project_id"] is None

    for bad, pointer in (({"status": "sleeping"}, "/status"), ({"project_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "/project_id"),
                         ({"position": "left"}, "/position"), ({"column": "x"}, "/column")):
        r = await task_action(owner, t["id"], "move", bad)
        assert r.status_code == 422 and pointer in _pointers(r), (bad, r.text)


async def test_archived_project_takes_no_new_tasks(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    project = await make_project(owner)
    r = await owner.post(f"/api/v1/tasks/projects/{project['id']}/archive")
    assert r.status_code == 200 and r.json()["archived"] is True
    r = await owner.post(TASKS, json={"title": "x", "project_id": project["id"]})
    assert r.status_code == 422 and "/project_id" in _pointers(r)
    await owner.post(f"/api/v1/tasks/projects/{project['id']}/unarchive")
    await make_task(owner, project_id=project["id"])


async def test_checklist_is_stored_and_updated(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    items = [{"text": "Book venue"}, {"text": "Send invites", "done": True}]
    t = await make_task(owner, checklist=items)
    assert t["checklist"] == [{"text": "Book venue", "done": False}, {"text": "Send invites", "done": True}]
    changed = [{"text": "Book venue", "done": True}, {"text": "Send invites", "done": True}, {"text": "Order cake"}]
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"checklist": changed},
                          headers={"If-Match": f'"{t["id"]}.1"'})
    assert r.status_code == 200, r.text
    assert r.json()["checklist"][0]["done"] is True and r.json()["checklist"][2] == {"text": "Order cake", "done": False}
    assert (await _get(owner, t["id"]))["checklist"] == r.json()["checklist"]
    for bad in ([{"text": ""}], [{"done": True}], [{"text": "x", "extra": 1}], "not a list"):
        r = await owner.patch(f"{TASKS}/{t['id']}", json={"checklist": bad})
        assert r.status_code == 422, (bad, r.text)
        assert any(p.startswith("/checklist") for p in _pointers(r))
