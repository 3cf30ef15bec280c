"""The HTTP contract every endpoint shares: problem+json, request ids, health, docs."""

from __future__ import annotations

import httpx
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.http.app import Nexus
from nexus.kernel.http.routing import RouteDef
from tests.factories import new_org


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok", "migrations": "current"}


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces\n"})
    assert r.headers["x-request-id"] != "bad id with spaces\n" and len(r.headers["x-request-id"]) == 16
    r = await client.get("/api/nope")
    assert r.json()["request_id"] == r.headers["x-request-id"]


async def test_unknown_paths_and_methods_are_problems(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await client.get("/api/v1/nothing/here")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert set(body) >= {"type", "title", "status", "detail"}
    r = await owner.request("PUT", "/api/v1/tasks/tasks")
    assert r.status_code == 405 and r.headers["allow"] == "GET, POST"
    r = await client.request("DELETE", "/healthz")
    assert r.status_code == 405 and "GET" in r.headers["allow"]
    r = await owner.get("/api/v1/tasks/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV/unknown-action")
    assert r.status_code == 405
    r = await owner.post("/api/v1/tasks/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV/unknown-action")
    assert r.status_code == 404


async def test_crash_is_a_500_problem_without_trace(client: httpx.AsyncClient, nx: Nexus) -> None:
    async def boom(req: Request) -> Response:
        raise RuntimeError("secret internals: password=hunter2")

    nx.router.add(RouteDef("GET", "/api/v1/test-boom", boom, public=True))
    r = await client.get("/api/v1/test-boom")
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    assert "hunter2" not in r.text and "Traceback" not in r.text and "RuntimeError" not in r.text


async def test_authorization_header_variants(client: httpx.AsyncClient) -> None:
    for value in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "token abc", "Bearer a.b.c"):
        r = await client.get("/api/v1/meta", headers={"Authorization": value})
        assert r.status_code == 401, value
        assert r.headers["content-type"] == "application/problem+json"
    r = await client.get("/api/v1/meta", headers={"X-API-Key": "nxk_nope_nope"})
    assert r.status_code == 401


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/api/v1/tasks/tasks", "/api/v1/tasks/tasks/{id}", "/api/v1/tasks/tasks/{id}/complete",
                 "/api/v1/auth/token", "/api/v1/identity/me", "/api/v1/meta", "/api/v1/identity/users"):
        assert path in doc["paths"], path
    create = doc["paths"]["/api/v1/tasks/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert create["$ref"].split("/")[-1] in doc["components"]["schemas"]
    r = await client.get("/api/docs")
    assert r.status_code == 200 and "swagger-ui-bundle.js" in r.text
    r = await client.get("/api/docs/static/swagger-ui-bundle.js")
    assert r.status_code == 200 and len(r.content) > 100_000
    r = await client.get("/api/docs/static/..%2F..%2Fsetup.py")
    assert r.status_code == 404


async def test_meta_draws_forms_without_app_code(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    meta = (await owner.get("/api/v1/meta")).json()
    apps = {a["name"]: a for a in meta["apps"]}
    assert {"identity", "tasks"} <= set(apps)
    tasks = next(r for r in apps["tasks"]["resources"] if r["name"] == "tasks")
    fields = {f["name"]: f for f in tasks["fields"]}
    assert fields["title"]["required"] is True and fields["title"]["max_length"] == 500
    assert fields["status"]["type"] == "choice" and fields["status"]["choices"] == ["todo", "in_progress", "done"]
    assert fields["assignee_id"]["type"] == "reference" and fields["assignee_id"]["reference"] == "identity.users"
    assert fields["id"]["readonly"] is True
    assert "gte" in fields["due_at"]["operators"]
    assert {a["name"] for a in tasks["actions"]} >= {"complete", "reopen", "assign"}
    assert {v["name"] for v in tasks["views"]} >= {"mine", "overdue"}
    assert tasks["permissions"] == {"read": True, "create": True, "update": True, "delete": True,
                                    "export": True, "import": True}
    viewer = await owner.add_user(["viewer"])
    vmeta = (await viewer.get("/api/v1/meta")).json()
    vtasks = next(r for a in vmeta["apps"] for r in a["resources"] if r["path"] == "/api/v1/tasks/tasks")
    assert vtasks["permissions"]["read"] is True and vtasks["permissions"]["create"] is False
    users = next(r for a in vmeta["apps"] for r in a["resources"] if r["path"] == "/api/v1/identity/users")
    assert "password_hash" not in {f["name"] for f in users["fields"]}


async def test_head_and_conditional_get(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post("/api/v1/tasks/tasks", json={"title": "t"})
    url = f"/api/v1/tasks/tasks/{r.json()['id']}"
    etag = r.headers["etag"]
    r = await owner.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    r = await owner.request("HEAD", url)
    assert r.status_code == 200
    r = await owner.patch(url, json={"title": "u"}, headers={"If-Match": "garbage"})
    assert r.status_code == 400


async def test_web_app_fallback(client: httpx.AsyncClient, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from nexus.kernel.http import static

    monkeypatch.setattr(static, "WEB_DIR", tmp_path / "missing")
    r = await client.get("/")
    assert r.status_code == 200 and "web app has not been built" in r.text
    (tmp_path / "web" / "assets").mkdir(parents=True)
    (tmp_path / "web" / "index.html").write_text("<!doctype html><title>hub</title>")
    (tmp_path / "web" / "assets" / "app-1234.js").write_text("console.log(1)")
    (tmp_path / "secret.txt").write_text("do not serve")
    monkeypatch.setattr(static, "WEB_DIR", tmp_path / "web")
    r = await client.get("/")
    assert r.status_code == 200 and "<title>hub</title>" in r.text
    assert r.headers["x-content-type-options"] == "nosniff" and "default-src 'self'" in r.headers["content-security-policy"]
    r = await client.get("/tasks/some/deep/link")
    assert r.status_code == 200 and "<title>hub</title>" in r.text
    r = await client.get("/assets/app-1234.js")
    assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
    assert (await client.get("/assets/missing.js")).status_code == 404
    assert (await client.get("/..%2Fsecret.txt")).status_code == 404
    assert (await client.post("/")).status_code == 405


async def test_cookie_session_requires_csrf_for_writes(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    cookies = {"nexus_access": owner.token, "nexus_csrf": "csrf-value-123"}
    r = await client.get("/api/v1/identity/me", cookies=cookies)
    assert r.status_code == 200
    r = await client.post("/api/v1/tasks/tasks", json={"title": "x"}, cookies=cookies)
    assert r.status_code == 403 and r.json()["type"].endswith("csrf")
    r = await client.post("/api/v1/tasks/tasks", json={"title": "x"}, cookies=cookies,
                          headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = await client.post("/api/v1/tasks/tasks", json={"title": "x"}, cookies=cookies,
                          headers={"X-CSRF-Token": "csrf-value-123"})
    assert r.status_code == 201


async def test_audit_trail_endpoint(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = (await owner.post("/api/v1/tasks/tasks", json={"title": "audited"})).json()
    await owner.patch(f"/api/v1/tasks/tasks/{task['id']}", json={"title": "audited twice"})
    r = await owner.get("/api/v1/audit", params={"record_id": task["id"]})
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["action"] for i in items] == ["updated", "created"]
    assert items[0]["before"]["title"] == "audited" and items[0]["after"]["title"] == "audited twice"
    assert items[0]["actor_id"] == owner.user_id and items[0]["request_id"]
    member = await owner.add_user(["member"])
    assert (await member.get("/api/v1/audit")).status_code == 403
    r = await member.get("/api/v1/audit", params={"app": "tasks", "resource": "tasks", "record_id": task["id"]})
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    stranger = await new_org(client, nx)
    r = await stranger.get("/api/v1/audit", params={"record_id": task["id"]})
    assert r.status_code == 200 and r.json()["items"] == []
    assert (await owner.get("/api/v1/audit", params={"at[gte]": "not a date"})).status_code == 400


async def test_meta_describes_list_items_updatability_and_create_only_fields(client: httpx.AsyncClient,
                                                                           nx: Nexus) -> None:
    owner = await new_org(client, nx)
    meta = (await owner.get("/api/v1/meta")).json()
    res = {r["path"]: r for a in meta["apps"] for r in a["resources"]}
    tasks = {f["name"]: f for f in res["/api/v1/tasks/tasks"]["fields"]}
    assert tasks["checklist"]["items"]["type"] == "object"
    assert {f["name"] for f in tasks["checklist"]["items"]["fields"]} == {"text", "done"}
    assert tasks["labels"]["items"] == {"type": "string"}
    assert tasks["title"]["updatable"] is True and tasks["id"]["updatable"] is False
    users = {f["name"]: f for f in res["/api/v1/identity/users"]["fields"]}
    assert users["email"]["updatable"] is False and users["name"]["updatable"] is True
    assert users["password"]["create_only"] is True and "password_hash" not in users
    notes = {f["name"]: f for f in res["/api/v1/notes/notes"]["fields"]}
    assert notes["body"]["format"] == "html"
