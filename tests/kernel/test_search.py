"""Global search: an index fed by record events, filtered by the API's permission check."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

import httpx
import pytest

from nexus.kernel import search as search_module
from nexus.kernel.config import Settings
from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.search import Entry, Query, SearchIndex, fold, marked_html
from tests.factories import Actor, make_api_key, make_role, make_task, new_org, with_credential
from tests.kernel.test_events import wait_for


async def search(actor: Actor, q: str, **params: Any) -> dict[str, Any]:
    r = await actor.get("/api/v1/search", params={"q": q, **params})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def found(actor: Actor, q: str, n: int = 1, **params: Any) -> dict[str, Any]:
    """Poll until the dispatcher has indexed enough: at least n hits."""

    async def ready() -> dict[str, Any] | None:
        body = await search(actor, q, **params)
        return body if len(body["items"]) >= n else None

    return await wait_for(ready)  # type: ignore[no-any-return]


async def make_project(actor: Actor, **fields: Any) -> dict[str, Any]:
    r = await actor.post("/api/v1/tasks/projects", json={"name": "Project", **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def settle(nx: Nexus) -> None:
    """Wait until every event written so far has been dispatched (and so indexed)."""

    nx.events.wake()
    await wait_for(nx.events.settled)


def index_of(nx: Nexus) -> SearchIndex:
    return nx.state["search"]  # type: ignore[no-any-return]


# -- finding -------------------------------------------------------------------------------


async def test_created_records_are_found_with_highlights(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    project = await make_project(owner, name="Budget planning", description="Where the money goes")
    task = await make_task(owner, title="Quarterly budget review",
                           description="Check the <b>numbers</b> & totals before Friday")
    body = await found(owner, "budget", 2)
    by_id = {h["id"]: h for h in body["items"]}
    assert set(by_id) == {project["id"], task["id"]}
    hit = by_id[task["id"]]
    assert hit["app"] == "tasks" and hit["resource"] == "tasks" and hit["type"] == "tasks.tasks"
    assert hit["title"] == "Quarterly budget review"
    assert hit["title_highlight"] == "Quarterly <mark>budget</mark> review"
    assert hit["path"] == f"/api/v1/tasks/tasks/{task['id']}"
    assert (await owner.get(hit["path"])).status_code == 200
    assert hit["updated_at"] == task["updated_at"] and hit["score"] > 0
    assert by_id[project["id"]]["title_highlight"] == "<mark>Budget</mark> planning"
    # Body hits: the snippet is escaped HTML with the match marked.
    numbers = (await found(owner, "numbers"))["items"]
    assert [h["id"] for h in numbers] == [task["id"]]
    snippet = numbers[0]["snippet"]
    assert "<mark>numbers</mark>" in snippet and "&lt;b&gt;" in snippet and "&amp;" in snippet
    assert "<b>" not in snippet
    # Every term must match.
    assert (await search(owner, "budget friday"))["items"][0]["id"] == task["id"]
    assert (await search(owner, "budget nonexistentword"))["items"] == []


async def test_prefix_search_for_type_ahead(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner, title="Refactor the onboarding wizard")
    assert [h["id"] for h in (await found(owner, "onboarding"))["items"]] == [task["id"]]
    for typed in ("onb", "onboa", "Refactor the onb", "wiz", "WIZARD", "refactor wi"):
        hits = (await search(owner, typed))["items"]
        assert [h["id"] for h in hits] == [task["id"]], typed
        assert "<mark>" in hits[0]["title_highlight"]
    # Only the last word is a prefix; a one-letter word is not (it would match everything).
    assert (await search(owner, "onb wizard"))["items"] == []
    assert (await search(owner, "o"))["items"] == []


async def test_diacritics_and_case_are_folded(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner, title="Café crème for the Zürich office")
    for q in ("cafe", "CAFÉ", "creme", "zurich", "zür"):
        assert [h["id"] for h in (await found(owner, q))["items"]] == [task["id"]], q


async def test_facets_and_type_filters(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_project(owner, name="Launch website")
    for i in range(3):
        await make_task(owner, title=f"Launch checklist {i}")
    body = await found(owner, "launch", 4)
    assert body["facets"] == {"app": {"tasks": 4}, "type": {"tasks.projects": 1, "tasks.tasks": 3}}
    assert body["total"] == 4 and body["total_exact"] is True and body["next_cursor"] is None
    only = await search(owner, "launch", type="tasks.projects")
    assert [h["type"] for h in only["items"]] == ["tasks.projects"] and only["total"] == 1
    assert only["facets"] == body["facets"]  # facets ignore the app/type filter, to switch between them
    both = await search(owner, "launch", type="tasks.projects,tasks.tasks")
    assert len(both["items"]) == 4
    assert len((await search(owner, "launch", app="tasks"))["items"]) == 4


async def test_title_hits_rank_above_body_hits(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    body_hit = await make_task(owner, title="Plan the offsite",
                               description="We need a venue with a projector; the projector must work. Projector!")
    title_hit = await make_task(owner, title="Projector", description="Buy one for room 4")
    hits = (await found(owner, "projector", 2))["items"]
    assert [h["id"] for h in hits] == [title_hit["id"], body_hit["id"]]
    assert hits[0]["score"] > hits[1]["score"]


async def test_pages_follow_the_cursor(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    made = {(await make_task(owner, title=f"Invoice number {i}"))["id"] for i in range(7)}
    await found(owner, "invoice", 7)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = await search(owner, "invoice", **params)
        seen += [h["id"] for h in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 and set(seen) == made
    other = await owner.get("/api/v1/search", params={"q": "number", "cursor": (await search(
        owner, "invoice", limit=3))["next_cursor"]})
    assert other.status_code == 400  # a cursor belongs to its query


async def test_broad_queries_rank_the_newest_and_stop_counting(client: httpx.AsyncClient, nx: Nexus,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    owner = await new_org(client, nx)
    index = index_of(nx)
    entries = [Entry(owner.org_id, "tasks", "tasks", f"W{i:025d}", "apub", nx.db.ts(utcnow()), f"Broad walrus {i}", "")
               for i in range(12)]
    async with nx.db.transaction() as conn:
        await index.write(conn, entries)
    for name in ("COUNT_CAP", "RANK_CANDIDATES", "PG_CANDIDATES"):
        monkeypatch.setattr(search_module, name, 5)
    first = await search(owner, "walrus", limit=3)
    assert first["total"] == 5 and first["total_exact"] is False and len(first["items"]) == 3
    second = await search(owner, "walrus", limit=3, cursor=first["next_cursor"])
    assert second["next_cursor"] is None
    seen = {h["id"] for h in first["items"] + second["items"]}
    assert seen == {f"W{i:025d}" for i in range(7, 12)}  # the newest five
    monkeypatch.undo()
    assert (await search(owner, "walrus"))["total"] == 12


# -- who sees what ---------------------------------------------------------------------------


async def test_another_org_never_sees_hits(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_task(owner, title="Confidential merger plans")
    await found(owner, "merger")
    stranger = await new_org(client, nx)
    body = await search(stranger, "merger")
    assert body["items"] == [] and body["facets"] == {"app": {}, "type": {}} and body["total"] == 0


async def test_permissions_filter_hits_in_the_query(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    project = await make_project(owner, name="Apollo rollout")
    task = await make_task(owner, title="Apollo kickoff")
    await found(owner, "apollo", 2)
    viewer = await owner.add_user(roles=["viewer"])
    assert {h["id"] for h in (await search(viewer, "apollo"))["items"]} == {project["id"], task["id"]}
    # An API key scoped to reading projects sees projects only, and facets only count those.
    key = await make_api_key(owner, ["tasks.projects.read"])
    machine = with_credential(owner, key["key"])
    body = await search(machine, "apollo")
    assert [h["id"] for h in body["items"]] == [project["id"]]
    assert body["facets"] == {"app": {"tasks": 1}, "type": {"tasks.projects": 1}}
    assert (await search(machine, "apollo", type="tasks.tasks"))["items"] == []
    assert (await machine.get(f"/api/v1/tasks/tasks/{task['id']}")).status_code == 403
    # Someone who may read no tasks resource at all finds nothing (and no page comes out short).
    role = await make_role(owner, ["identity.users.read"])
    outsider = await owner.add_user(roles=[role["name"]])
    assert (await search(outsider, "apollo"))["items"] == []
    # Search itself needs a signed-in caller.
    anon = await client.get("/api/v1/search", params={"q": "apollo"})
    assert anon.status_code == 401


async def test_record_visibility_extension_point(client: httpx.AsyncClient, nx: Nexus) -> None:
    """A resource's search_visibility(record) limits a hit to the users/roles it names."""
    owner = await new_org(client, nx)
    alice = await owner.add_user()
    bob = await owner.add_user()
    resource = nx.all_resources["tasks.tasks"]

    def visible_to(record: dict[str, Any]) -> list[str] | None:
        if record.get("org_id") == owner.org_id and record.get("assignee_id"):
            return [f"user:{record['assignee_id']}", "role:owner"]
        return None

    resource.search_visibility = visible_to  # type: ignore[attr-defined]
    try:
        private = await make_task(owner, title="Salary review for Alice", assignee_id=alice.user_id)
        public = await make_task(owner, title="Salary bands published")
        await settle(nx)
        assert {h["id"] for h in (await search(alice, "salary"))["items"]} == {private["id"], public["id"]}
        assert [h["id"] for h in (await search(bob, "salary"))["items"]] == [public["id"]]
        body = await search(bob, "salary")
        assert body["facets"]["type"] == {"tasks.tasks": 1} and body["total"] == 1
        assert "owner" in (await owner.get("/api/v1/identity/me")).json()["roles"]
        assert len((await search(owner, "salary"))["items"]) == 2  # by role:owner
        # Visibility follows the record: assigned to Bob, then to nobody (public again).
        r = await owner.post(f"/api/v1/tasks/tasks/{private['id']}/assign", json={"assignee_id": bob.user_id})
        assert r.status_code == 200, r.text
        await settle(nx)
        assert [h["id"] for h in (await search(alice, "salary"))["items"]] == [public["id"]]
        assert {h["id"] for h in (await search(bob, "salary"))["items"]} == {private["id"], public["id"]}
        r = await owner.post(f"/api/v1/tasks/tasks/{private['id']}/assign", json={"assignee_id": None})
        assert r.status_code == 200, r.text
        await settle(nx)
        assert len((await search(alice, "salary"))["items"]) == 2
    finally:
        del resource.search_visibility  # type: ignore[attr-defined]


# -- the index follows the records -------------------------------------------------------------


async def test_deleted_records_vanish_and_restored_ones_return(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner, title="Ephemeral walrus")
    await found(owner, "walrus")
    assert (await owner.delete(f"/api/v1/tasks/tasks/{task['id']}")).status_code == 204

    async def gone() -> bool:
        return not (await search(owner, "walrus"))["items"]

    await wait_for(gone)
    assert (await owner.post(f"/api/v1/tasks/tasks/{task['id']}/restore")).status_code == 200
    assert [h["id"] for h in (await found(owner, "walrus"))["items"]] == [task["id"]]


async def test_updates_and_domain_actions_change_the_hit(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner, title="Draft the pelican memo")
    await found(owner, "pelican")
    r = await owner.patch(f"/api/v1/tasks/tasks/{task['id']}", json={"title": "Draft the flamingo memo"})
    assert r.status_code == 200, r.text
    hits = (await found(owner, "flamingo"))["items"]
    assert [h["id"] for h in hits] == [task["id"]] and hits[0]["updated_at"] == r.json()["updated_at"]
    assert (await search(owner, "pelican"))["items"] == []
    done = await owner.post(f"/api/v1/tasks/tasks/{task['id']}/complete")
    assert done.status_code == 200, done.text
    await settle(nx)
    assert (await search(owner, "flamingo"))["items"][0]["updated_at"] == done.json()["updated_at"]


async def test_replayed_events_do_not_duplicate_hits(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await make_task(owner, title="Singular narwhal")
    await found(owner, "narwhal")
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE kernel_outbox SET dispatched_at = NULL WHERE org_id = ?", [owner.org_id])
        await conn.execute("DELETE FROM kernel_event_consumption WHERE consumer LIKE 'kernel.search:%'"
                           " AND event_id IN (SELECT id FROM kernel_outbox WHERE org_id = ?)", [owner.org_id])
    await settle(nx)
    assert len((await search(owner, "narwhal"))["items"]) == 1


async def test_reindex_command_rebuilds_the_index(client: httpx.AsyncClient, nx: Nexus, settings: Settings) -> None:
    owner = await new_org(client, nx)
    project = await make_project(owner, name="Orchid greenhouse")
    task = await make_task(owner, title="Water the orchid", project_id=project["id"])
    deleted = await make_task(owner, title="Orchid that died")
    await owner.delete(f"/api/v1/tasks/tasks/{deleted['id']}")
    await settle(nx)
    assert len((await search(owner, "orchid"))["items"]) == 2
    async with nx.db.transaction() as conn:
        await conn.execute("DELETE FROM kernel_search WHERE org_id = ?", [owner.org_id])
    assert (await search(owner, "orchid"))["items"] == []
    env = {**os.environ, "NEXUS_DATA_DIR": str(settings.data_dir), "NEXUS_DATABASE_URL": settings.database_url,
           "NEXUS_SECRET_KEY": settings.secret_key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from nexus.kernel.cli import main; main()", "search", "reindex", "--batch", "2",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    assert "tasks.tasks" in out.decode() and "search index rebuilt" in out.decode()
    body = await search(owner, "orchid")
    assert {h["id"] for h in body["items"]} == {project["id"], task["id"]}
    assert body["items"][0]["title_highlight"].count("<mark>") == 1


async def test_sqlite_entries_stay_in_their_org_range(client: httpx.AsyncClient, nx: Nexus) -> None:
    """The migration's guard: an entry id outside its org's range is refused (SQLite)."""
    if nx.db.dialect != "sqlite":
        pytest.skip("the id layout is SQLite's")
    owner = await new_org(client, nx)
    stranger = await new_org(client, nx)
    await make_task(owner, title="Guarded heron")
    await make_task(stranger, title="Other heron")
    await found(owner, "heron")
    await found(stranger, "heron")
    async with nx.db.reader() as conn:
        theirs = await conn.fetchval("SELECT id FROM kernel_search WHERE org_id = ?", [stranger.org_id])
    with pytest.raises(Exception, match="outside the org range"):
        async with nx.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO kernel_search (id, org_id, app, resource, record_id, scope, updated_at, title, body)"
                " VALUES (?, ?, 'tasks', 'tasks', 'X', 'apub', '2026-01-01', 'heron', '')",
                [theirs + 2 ** 20, owner.org_id])
    assert [h["title"] for h in (await search(owner, "heron"))["items"]] == ["Guarded heron"]


async def test_reindex_drops_entries_of_missing_records(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner, title="Lingering quokka")
    await found(owner, "quokka")
    async with nx.db.transaction() as conn:  # the record vanishes without an event
        await conn.execute("DELETE FROM tasks_task WHERE id = ?", [task["id"]])
    await index_of(nx).reindex(batch=50)
    assert (await search(owner, "quokka"))["items"] == []


# -- bad input -----------------------------------------------------------------------------------

HOSTILE = ['"', '""', "'", "*", "**", "NEAR(", "NEAR(a b", "AND OR NOT", "a AND", "OR", "NOT x", "\\", "\\\\",
           ":*", "a:*", "title:x", "body:", "{title}: x", "^x", "x^", "(", ")", "()", "&", "|", "!", "a & b | !c",
           "<->", "a <-> b", "-x", "+x", "%", "_", "%_%", "' OR 1=1 --", "'; DROP TABLE kernel_search; --",
           "\u202e", "😀", "a\tb", "NEAR(\"x\" \"y\", 2)", "col:*", "x*y", "ǅ", "ß", "İ", "١٢٣", "_a_", "a_b"]


@pytest.mark.parametrize("q", HOSTILE)
async def test_hostile_queries_never_fail(client: httpx.AsyncClient, nx: Nexus, q: str) -> None:
    owner = _hostile_owner.get(nx)
    if owner is None:
        owner = _hostile_owner[nx] = await new_org(client, nx)
        await make_task(owner, title="A b c x y title body NEAR AND OR NOT a_b")
        await found(owner, "near")
    r = await owner.get("/api/v1/search", params={"q": q})
    assert r.status_code in (200, 400), (q, r.text)
    if r.status_code == 200:
        assert isinstance(r.json()["items"], list)


_hostile_owner: dict[Nexus, Actor] = {}


async def test_bad_parameters_are_400(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    cases = [
        {}, {"q": ""}, {"q": "   "}, {"q": "x" * 201}, {"q": "word " * 50}, {"q": "x", "limit": "0"},
        {"q": "x", "limit": "101"}, {"q": "x", "limit": "ten"}, {"q": "x", "type": "tasks"},
        {"q": "x", "type": "nope.nope"}, {"q": "x", "app": "nope"}, {"q": "x", "cursor": "garbage"},
        {"q": "x", "sort": "title"},
    ]
    for params in cases:
        r = await owner.get("/api/v1/search", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await owner.get("/api/v1/search?q=a&q=b")
    assert r.status_code == 400
    assert (await owner.get("/api/v1/search", params={"q": "x" * 200})).status_code == 200
    assert (await owner.get("/api/v1/search", params={"q": "?!…"})).json()["items"] == []


async def test_search_is_described_in_openapi(client: httpx.AsyncClient, nx: Nexus) -> None:
    doc = (await client.get("/api/openapi.json")).json()
    assert "/api/v1/search" in doc["paths"]


# -- units -------------------------------------------------------------------------------------


def test_query_parsing_quotes_everything() -> None:
    q = Query.parse('budget "NEAR(x" AND rev')
    assert q.terms == ("budget", "near", "x", "and", "rev") and q.prefix
    assert q.fts5() == '{title body} : ("budget" "near" "x" "and" "rev"*)'
    assert q.tsquery() == "'budget' & 'near' & 'x' & 'and' & 'rev':*"
    assert Query.parse("a").prefix is False
    assert Query.parse(":* ' \\").terms == ()
    assert fold("Ǆemal ﬁle Café STRASSE straße") == "dzemal file cafe strasse strasse"
    assert len(Query.parse(" ".join(f"w{i}" for i in range(40))).terms) == 16


def test_marked_html_escapes_everything_but_the_marks() -> None:
    assert marked_html("<script>\ue000x\ue001</script> & \"") == \
        "&lt;script&gt;<mark>x</mark>&lt;/script&gt; &amp; &quot;"
