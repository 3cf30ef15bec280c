"""Labels (auto-created, unique, renamed everywhere) and comments (author-owned, moderated)."""

from __future__ import annotations

import asyncio

import httpx

from nexus.kernel.http.app import Nexus
from tests.factories import TASKS, list_all, make_comment, make_task, new_org

LABELS = "/api/v1/tasks/labels"
COMMENTS = "/api/v1/tasks/comments"


def _pointers(r: httpx.Response) -> set[str]:
    return {e["pointer"] for e in r.json().get("errors", [])}


async def _label_names(actor) -> list[str]:
    return [lab["name"] for lab in await list_all(actor, LABELS)]


# -- labels ---------------------------------------------------------------------------------


async def test_using_a_label_creates_it_once(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    t = await make_task(owner, labels=["errand", "home", "errand"])
    assert t["labels"] == ["errand", "home"]  # duplicates dropped, order kept
    assert sorted(await _label_names(owner)) == ["errand", "home"]
    await make_task(owner, labels=["home", "garden"])
    r = await owner.patch(f"{TASKS}/{t['id']}", json={"labels": ["garden", "urgent"]})
    assert r.status_code == 200 and r.json()["labels"] == ["garden", "urgent"]
    assert await _label_names(owner) == ["errand", "garden", "home", "urgent"]  # sorted by name
    created = next(lab for lab in await list_all(owner, LABELS) if lab["name"] == "urgent")
    assert created["color"] == "#64748b" and created["created_by"] == owner.user_id
    # Another org's labels are its own.
    stranger = await new_org(client, nx)
    assert await _label_names(stranger) == []
    await make_task(stranger, labels=["home"])
    assert await _label_names(stranger) == ["home"]


async def test_duplicate_label_name_is_422(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(LABELS, json={"name": "urgent", "color": "#ff0000"})
    assert r.status_code == 201
    r = await owner.post(LABELS, json={"name": "urgent"})
    assert r.status_code == 422 and "/name" in _pointers(r)
    other = (await owner.post(LABELS, json={"name": "later"})).json()
    r = await owner.patch(f"{LABELS}/{other['id']}", json={"name": "urgent"})
    assert r.status_code == 422 and "/name" in _pointers(r)
    assert sorted(await _label_names(owner)) == ["later", "urgent"]


async def test_a_deleted_label_name_can_be_used_again(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    old = (await owner.post(LABELS, json={"name": "someday"})).json()
    assert (await owner.delete(f"{LABELS}/{old['id']}")).status_code == 204
    r = await owner.post(LABELS, json={"name": "someday", "color": "#00ff00"})
    assert r.status_code == 201, r.text
    # Restoring the old one now would make two: refused, nothing changes.
    r = await owner.post(f"{LABELS}/{old['id']}/restore")
    assert r.status_code == 409
    assert await _label_names(owner) == ["someday"]

    gone = (await owner.post(LABELS, json={"name": "gone"})).json()
    await owner.delete(f"{LABELS}/{gone['id']}")
    t = await make_task(owner, labels=["gone"])  # using the name again creates a fresh label
    assert t["labels"] == ["gone"]
    assert sorted(await _label_names(owner)) == ["gone", "someday"]


async def test_renaming_a_label_renames_it_on_tasks(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    a = await make_task(owner, labels=["wip", "home"])
    b = await make_task(owner, labels=["wip"])
    c = await make_task(owner, labels=["home"])
    wip = next(lab for lab in await list_all(owner, LABELS) if lab["name"] == "wip")
    r = await owner.patch(f"{LABELS}/{wip['id']}", json={"name": "doing"})
    assert r.status_code == 200, r.text
    got = {t["id"]: t["labels"] for t in await list_all(owner, TASKS)}
    assert got[a["id"]] == ["doing", "home"] and got[b["id"]] == ["doing"] and got[c["id"]] == ["home"]


# -- comments -------------------------------------------------------------------------------


async def test_comment_on_a_task_and_list_by_task(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user()
    t = await make_task(owner)
    other = await make_task(owner)
    c1 = await make_comment(owner, t["id"], "First!")
    c2 = await make_comment(member, t["id"], "  Second, trimmed  ")
    await make_comment(owner, other["id"], "elsewhere")
    assert c2["body"] == "Second, trimmed" and c2["created_by"] == member.user_id
    listed = await list_all(owner, COMMENTS, {"task_id": t["id"]})
    assert [c["id"] for c in listed] == [c1["id"], c2["id"]]  # oldest first
    for bad, pointer in (({"task_id": t["id"], "body": ""}, "/body"), ({"body": "x"}, "/task_id"),
                         ({"task_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "body": "x"}, "/task_id")):
        r = await owner.post(COMMENTS, json=bad)
        assert r.status_code == 422 and pointer in _pointers(r), r.text


async def test_comment_on_another_orgs_task_is_refused(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    stranger = await new_org(client, nx)
    theirs = await make_task(stranger)
    r = await owner.post(COMMENTS, json={"task_id": theirs["id"], "body": "hello"})
    assert r.status_code in (404, 422), r.text
    assert await list_all(stranger, COMMENTS, {"task_id": theirs["id"]}) == []
    mine = await make_comment(stranger, theirs["id"])
    assert (await owner.get(f"{COMMENTS}/{mine['id']}")).status_code == 404
    assert (await owner.patch(f"{COMMENTS}/{mine['id']}", json={"body": "hijack"})).status_code == 404
    assert (await owner.delete(f"{COMMENTS}/{mine['id']}")).status_code == 404


async def test_only_the_author_edits_or_deletes(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    author = await owner.add_user()
    colleague = await owner.add_user()
    t = await make_task(owner)
    c = await make_comment(author, t["id"], "draft")

    r = await colleague.patch(f"{COMMENTS}/{c['id']}", json={"body": "edited by someone else"})
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert (await colleague.delete(f"{COMMENTS}/{c['id']}")).status_code == 403
    got = (await author.get(f"{COMMENTS}/{c['id']}")).json()
    assert got["body"] == "draft" and got["version"] == 1

    r = await author.patch(f"{COMMENTS}/{c['id']}", json={"body": "final"})
    assert r.status_code == 200 and r.json()["body"] == "final"
    r = await author.patch(f"{COMMENTS}/{c['id']}", json={"task_id": t["id"]})
    assert r.status_code == 422  # a comment stays on its task

    assert (await author.delete(f"{COMMENTS}/{c['id']}")).status_code == 204
    assert (await colleague.post(f"{COMMENTS}/{c['id']}/restore")).status_code == 403
    assert (await author.post(f"{COMMENTS}/{c['id']}/restore")).status_code == 200


async def test_moderators_may_edit_and_delete_any_comment(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)  # owners hold "*", so tasks.comments.moderate too
    author = await owner.add_user()
    t = await make_task(owner)
    c = await make_comment(author, t["id"], "something rude")
    r = await owner.patch(f"{COMMENTS}/{c['id']}", json={"body": "[removed by a moderator]"})
    assert r.status_code == 200 and r.json()["updated_by"] == owner.user_id
    assert (await owner.delete(f"{COMMENTS}/{c['id']}")).status_code == 204

    # A custom role with only the moderation permission on top of member's.
    r = await owner.post("/api/v1/identity/roles", json={"name": "moderator",
                                                        "permissions": ["tasks.comments.moderate"]})
    assert r.status_code == 201, r.text
    moderator = await owner.add_user(["member", "moderator"])
    c2 = await make_comment(author, t["id"], "another")
    r = await moderator.patch(f"{COMMENTS}/{c2['id']}", json={"body": "tidied"})
    assert r.status_code == 200, r.text


async def test_viewer_reads_comments_but_cannot_write(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    viewer = await owner.add_user(["viewer"])
    t = await make_task(owner)
    c = await make_comment(owner, t["id"])
    assert (await viewer.get(f"{COMMENTS}/{c['id']}")).status_code == 200
    r = await viewer.post(COMMENTS, json={"task_id": t["id"], "body": "me too"})
    assert r.status_code == 403


async def test_concurrent_first_uses_of_a_label_create_it_once(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    results = await asyncio.gather(*[owner.post(TASKS, json={"title": f"t{i}", "labels": ["fresh", f"own-{i}"]})
                                     for i in range(6)])
    assert [r.status_code for r in results] == [201] * 6, [r.text for r in results]
    names = await _label_names(owner)
    assert names.count("fresh") == 1 and len(names) == 7
