"""The contract battery every declared resource passes. A new app's test is a subclass:

    class TestProjects(ResourceContract):
        path = "/api/v1/tasks/projects"
        valid = {"name": "Launch"}
        update = {"name": "Relaunch"}
        invalid = [({"name": ""}, "/name")]

and it gets CRUD, soft delete/restore, pagination, permissions, tenancy, concurrency,
idempotency, export/import and bad-input tests on every database back end.
"""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any, ClassVar

import httpx

from nexus.kernel.http.app import Nexus
from tests.factories import Actor, new_org


class ResourceContract:
    path: ClassVar[str]
    valid: ClassVar[dict[str, Any]]
    update: ClassVar[dict[str, Any]]
    invalid: ClassVar[list[tuple[dict[str, Any], str]]] = []
    unique_field: ClassVar[str | None] = None  # a field to vary between created records
    importable: ClassVar[bool] = True

    async def payload(self, actor: Actor, n: int = 0) -> dict[str, Any]:
        body = dict(self.valid)
        if self.unique_field:
            body[self.unique_field] = f"{body[self.unique_field]}-{n}-{actor.org_slug}"
        return body

    async def create(self, actor: Actor, n: int = 0) -> dict[str, Any]:
        r = await actor.post(self.path, json=await self.payload(actor, n))
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    # -- CRUD --------------------------------------------------------------------------
    async def test_crud_lifecycle(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        r = await owner.post(self.path, json=await self.payload(owner))
        assert r.status_code == 201, r.text
        rec = r.json()
        assert r.headers["etag"] == f'"{rec["id"]}.1"'
        assert r.headers["location"].endswith(rec["id"])
        assert rec["version"] == 1 and rec["created_by"] == owner.user_id and rec["deleted_at"] is None
        assert "org_id" in rec and rec["org_id"] == owner.org_id

        got = await owner.get(f"{self.path}/{rec['id']}")
        assert got.status_code == 200 and got.json() == rec

        r = await owner.patch(f"{self.path}/{rec['id']}", json=self.update, headers={"If-Match": got.headers["etag"]})
        assert r.status_code == 200, r.text
        changed = r.json()
        assert changed["version"] == 2
        for k, v in self.update.items():
            assert changed[k] == v
        assert (await owner.get(f"{self.path}/{rec['id']}")).json() == changed

        r = await owner.delete(f"{self.path}/{rec['id']}", headers={"If-Match": f'"{rec["id"]}.2"'})
        assert r.status_code == 204, r.text
        assert (await owner.get(f"{self.path}/{rec['id']}")).status_code == 404
        ids = [i["id"] for i in (await owner.get(self.path, params={"deleted": "only"})).json()["items"]]
        assert rec["id"] in ids
        r = await owner.post(f"{self.path}/{rec['id']}/restore")
        assert r.status_code == 200 and r.json()["deleted_at"] is None
        assert (await owner.get(f"{self.path}/{rec['id']}")).status_code == 200

        async with nx.db.reader() as conn:
            rows = await conn.fetch("SELECT action FROM kernel_audit WHERE org_id = ? AND record_id = ? ORDER BY at, id",
                                    [owner.org_id, rec["id"]])
            events = await conn.fetch("SELECT type FROM kernel_outbox WHERE org_id = ? AND subject = ? ORDER BY id",
                                      [owner.org_id, rec["id"]])
        assert [r[0] for r in rows][:4] == ["created", "updated", "deleted", "restored"]
        assert [e[0].rsplit(".", 1)[1] for e in events][:4] == ["created", "updated", "deleted", "restored"]

    async def test_list_pages_with_cursor(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        made = {(await self.create(owner, i))["id"] for i in range(5)}
        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params: dict[str, Any] = {"limit": 2, "sort": "created_at"}
            if cursor:
                params["cursor"] = cursor
            r = await owner.get(self.path, params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert made <= set(seen)
        assert len(seen) == len(set(seen))

    # -- permissions and tenancy ----------------------------------------------------------
    async def test_other_org_sees_404(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        rec = await self.create(owner)
        stranger = await new_org(client, nx)
        url = f"{self.path}/{rec['id']}"
        assert (await stranger.get(url)).status_code == 404
        assert (await stranger.patch(url, json=self.update)).status_code == 404
        assert (await stranger.delete(url)).status_code == 404
        assert (await stranger.post(f"{url}/restore")).status_code == 404
        listed = (await stranger.get(self.path)).json()["items"]
        assert rec["id"] not in {i["id"] for i in listed}
        assert (await owner.get(url)).json()["version"] == 1

    async def test_viewer_reads_but_cannot_write(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        rec = await self.create(owner)
        viewer = await owner.add_user(["viewer"])
        assert (await viewer.get(f"{self.path}/{rec['id']}")).status_code == 200
        r = await viewer.post(self.path, json=await self.payload(owner, 9))
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        assert (await viewer.patch(f"{self.path}/{rec['id']}", json=self.update)).status_code == 403
        assert (await viewer.delete(f"{self.path}/{rec['id']}")).status_code == 403

    async def test_requires_authentication(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        r = await client.get(self.path)
        assert r.status_code == 401 and r.json()["status"] == 401
        assert "www-authenticate" in r.headers
        r = await client.get(self.path, headers={"Authorization": "Bearer not-a-token"})
        assert r.status_code == 401

    # -- concurrency and retries --------------------------------------------------------
    async def test_stale_if_match_is_412_and_changes_nothing(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        rec = await self.create(owner)
        url = f"{self.path}/{rec['id']}"
        etag = f'"{rec["id"]}.1"'
        results = await asyncio.gather(*[owner.patch(url, json=self.update, headers={"If-Match": etag})
                                         for _ in range(4)])
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 412, 412, 412], codes
        r = await owner.delete(url, headers={"If-Match": etag})
        assert r.status_code == 412
        assert (await owner.get(url)).json()["version"] == 2

    async def test_idempotency_key_replays_and_refuses_other_body(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        body = await self.payload(owner, 1)
        first = await owner.post(self.path, json=body, headers={"Idempotency-Key": "k-123"})
        again = await owner.post(self.path, json=body, headers={"Idempotency-Key": "k-123"})
        assert first.status_code == again.status_code == 201
        assert first.json()["id"] == again.json()["id"]
        assert again.headers.get("idempotent-replayed") == "true"
        other = await owner.post(self.path, json={**body, **self.update}, headers={"Idempotency-Key": "k-123"})
        assert other.status_code == 422
        listed = (await owner.get(self.path, params={"limit": 500})).json()["items"]
        assert sum(1 for i in listed if i["id"] == first.json()["id"]) == 1
        # Concurrent retries of one request create one record.
        body = await self.payload(owner, 3)
        before = len((await owner.get(self.path, params={"limit": 500})).json()["items"])
        results = await asyncio.gather(*[owner.post(self.path, json=body, headers={"Idempotency-Key": "k-race"})
                                         for _ in range(5)])
        assert {r.status_code for r in results} == {201}, [r.text for r in results]
        assert len({r.json()["id"] for r in results}) == 1
        assert len((await owner.get(self.path, params={"limit": 500})).json()["items"]) == before + 1

    async def test_concurrent_creates_all_land(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        before = len((await owner.get(self.path, params={"limit": 500})).json()["items"])
        results = await asyncio.gather(*[owner.post(self.path, json=await self.payload(owner, 100 + i))
                                         for i in range(20)])
        assert [r.status_code for r in results] == [201] * 20
        after = (await owner.get(self.path, params={"limit": 500})).json()["items"]
        assert len(after) == before + 20

    # -- bad input ------------------------------------------------------------------------
    async def test_bad_bodies_are_4xx_and_change_nothing(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        before = (await owner.get(self.path)).json()["items"]
        cases = [
            (b"{not json", {"Content-Type": "application/json"}, 400),
            (b"[1,2]", {"Content-Type": "application/json"}, 422),
            (b"\xff\xfe\x00garbage", {"Content-Type": "application/json"}, 400),
            (b'{"a": 1}', {"Content-Type": "text/plain"}, 415),
            (b'{"title": "x\\u0000y", "name": "x\\u0000y"}', {"Content-Type": "application/json"}, 422),
        ]
        for body, headers, status in cases:
            r = await owner.post(self.path, content=body, headers=headers)
            assert r.status_code == status, (body, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert "Traceback" not in r.text
        r = await owner.post(self.path, json={**await self.payload(owner), "no_such_field": 1})
        assert r.status_code == 422
        assert any(e["pointer"] == "/no_such_field" for e in r.json()["errors"])
        for payload, pointer in self.invalid:
            r = await owner.post(self.path, json=payload)
            assert r.status_code == 422, (payload, r.text)
            assert any(e["pointer"] == pointer for e in r.json()["errors"]), (pointer, r.json())
        huge = b'{"x": "' + b"a" * (nx.settings.max_body_bytes + 10) + b'"}'
        r = await owner.post(self.path, content=huge, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        assert (await owner.get(self.path)).json()["items"] == before

    async def test_bad_queries_are_400(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        await self.create(owner)
        for params in (
            {"limit": "0"}, {"limit": "501"}, {"limit": "ten"},
            {"sort": "no_such_field"}, {"no_such_filter": "1"}, {"created_at[gte]": "yesterday"},
            {"cursor": "forged"}, {"cursor": "eyJhIjoxfQ.AAAA"}, {"deleted": "maybe"},
            {"created_at[like]": "x"},
        ):
            r = await owner.get(self.path, params=params)
            assert r.status_code == 400, (params, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        r = await owner.get(self.path, params={"created_by": "' OR '1'='1"})
        assert r.status_code == 200 and r.json()["items"] == []
        r = await owner.get(self.path, params={"created_by[in]": "x,'); DROP TABLE kernel_audit; --"})
        assert r.status_code == 200 and r.json()["items"] == []
        r = await owner.get(self.path + "?q=%FF%FE")
        assert r.status_code == 400
        for q in ("' OR 1=1 --", "%", "_", "\\", "\"; DROP TABLE x; --"):
            r = await owner.get(self.path, params={"q": q})
            assert r.status_code in (200, 400), r.text
        for bad_id in ("..%2F..%2Fetc%2Fpasswd", "1 OR 1=1", "x" * 300, "%00"):
            r = await owner.get(f"{self.path}/{bad_id}")
            assert r.status_code == 404, (bad_id, r.text)

    async def test_cursor_of_another_query_is_refused(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        for i in range(3):
            await self.create(owner, i)
        page = (await owner.get(self.path, params={"limit": 1, "sort": "created_at"})).json()
        assert page["next_cursor"]
        r = await owner.get(self.path, params={"limit": 1, "sort": "-created_at", "cursor": page["next_cursor"]})
        assert r.status_code == 400

    # -- export / import --------------------------------------------------------------------
    async def test_export_then_import_round_trip(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        made = {(await self.create(owner, i))["id"] for i in range(3)}
        r = await owner.get(f"{self.path}/export", params={"format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = [row for row in csv.DictReader(io.StringIO(r.text)) if row["id"] in made]
        assert len(rows) == 3
        r = await owner.get(f"{self.path}/export", params={"format": "json"})
        exported = [item for item in r.json() if item["id"] in made]
        assert r.status_code == 200 and len(exported) == 3
        if not self.importable:
            return
        other = await new_org(client, nx)
        baseline = len((await other.get(self.path)).json()["items"])
        if self.unique_field:
            for i, item in enumerate(exported):
                item[self.unique_field] = f"{item[self.unique_field]}-imported-{i}"
        payload = [{k: v for k, v in item.items() if k in self.valid or k in self.update} for item in exported]
        r = await other.post(f"{self.path}/import", json=payload)
        assert r.status_code == 200, r.text
        assert r.json()["created"] == 3
        listed = (await other.get(self.path)).json()["items"]
        assert len(listed) == baseline + 3

    async def test_meta_describes_resource(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        meta = (await owner.get("/api/v1/meta")).json()
        found = [r for a in meta["apps"] for r in a["resources"] if r["path"] == self.path]
        assert found, self.path
        res = found[0]
        names = {f["name"] for f in res["fields"]}
        assert set(self.valid) <= names
        assert res["permissions"]["create"] is True
