"""Notes: sanitised rich text, private notes and sharing, history, Markdown."""

from __future__ import annotations

import httpx

from nexus.kernel.http.app import Nexus
from tests.factories import Actor, new_org


async def make_note(actor: Actor, **fields: object) -> dict[str, object]:
    r = await actor.post("/api/v1/notes/notes", json={"title": "A note", **fields})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_pasted_html_cannot_carry_scripts(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    hostile = ('<p onclick="steal()">Hi <b>there</b><script>alert(1)</script></p>'
               '<a href="javascript:alert(1)">x</a><img src="x" onerror="alert(1)"><iframe src="//evil"></iframe>'
               '<a href="https://ok.test/" target="_blank">ok</a><style>body{display:none}</style>')
    note = await make_note(owner, body=hostile)
    body = str(note["body"])
    for bad in ("<script", "onclick", "javascript:", "onerror", "<iframe", "<style"):
        assert bad not in body, (bad, body)
    assert "<b>there</b>" in body and 'href="https://ok.test/"' in body and "noopener" in body
    assert note["body_text"].startswith("Hi there")  # type: ignore[attr-defined]
    r = await owner.patch(f"/api/v1/notes/notes/{note['id']}", json={"body": "<svg onload=alert(1)><p>x</p></svg>"})
    assert "onload" not in r.json()["body"]


async def test_private_notes_and_sharing(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    ann = await owner.add_user(["member"])
    bob = await owner.add_user(["member"])
    note = await make_note(ann, title="Ann's plan")
    url = f"/api/v1/notes/notes/{note['id']}"
    assert (await bob.get(url)).status_code == 404
    assert note["id"] not in {n["id"] for n in (await bob.get("/api/v1/notes/notes")).json()["items"]}
    assert (await bob.patch(url, json={"title": "hijack"})).status_code == 404
    assert (await bob.post(f"{url}/share", json={"user_id": bob.user_id})).status_code == 404
    r = await ann.post(f"{url}/share", json={"user_id": bob.user_id, "access": "read"})
    assert r.status_code == 200, r.text
    assert (await bob.get(url)).status_code == 200
    assert (await bob.patch(url, json={"title": "edit attempt"})).status_code == 403
    assert (await bob.delete(url)).status_code == 403
    shared = (await bob.get("/api/v1/notes/notes", params={"view": "shared"})).json()["items"]
    assert [n["id"] for n in shared] == [note["id"]]
    notes = (await bob.get("/api/v1/notifications")).json()["items"]
    assert any(n["type"] == "notes.shared" for n in notes)
    await ann.post(f"{url}/share", json={"user_id": bob.user_id, "access": "edit"})
    r = await bob.patch(url, json={"title": "Ann's plan, edited by Bob"})
    assert r.status_code == 200
    assert (await bob.post(f"{url}/share", json={"user_id": bob.user_id})).status_code == 403
    assert (await ann.get(f"{url}/shares")).json()["items"][0]["access"] == "edit"
    await ann.post(f"{url}/unshare", json={"user_id": bob.user_id})
    assert (await bob.get(url)).status_code == 404
    # the org's admin (owner role) sees every note
    assert (await owner.get(url)).status_code == 200
    stranger = await new_org(client, nx)
    r = await ann.post(f"{url}/share", json={"user_id": stranger.user_id})
    assert r.status_code == 422
    await ann.patch(url, json={"visibility": "org"})
    assert (await bob.get(url)).status_code == 200
    assert (await bob.patch(url, json={"title": "org notes are read-only for others"})).status_code == 403


async def test_version_history_and_restore(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    note = await make_note(owner, title="v1", body="<p>first</p>")
    url = f"/api/v1/notes/notes/{note['id']}"
    await owner.patch(url, json={"title": "v2", "body": "<p>second</p>"})
    await owner.patch(url, json={"pinned": True})  # not a content change: no version
    await owner.patch(url, json={"body": "<p>third</p>"})
    versions = (await owner.get(f"{url}/versions")).json()["items"]
    assert [v["title"] for v in versions] == ["v2", "v1"]
    assert [v["version"] for v in versions] == [3, 1]
    r = await owner.post(f"{url}/restore-version", json={"version": 1})
    assert r.status_code == 200 and r.json()["title"] == "v1" and r.json()["body"] == "<p>first</p>"
    assert (await owner.post(f"{url}/restore-version", json={"version": 99})).status_code == 404


async def test_markdown_round_trip(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    md = "# Launch plan\n\n- **ship** it\n- [docs](https://docs.test)\n\n<script>alert(1)</script>\n"
    r = await owner.post("/api/v1/notes/import-markdown", content=md.encode(),
                         headers={"Content-Type": "text/markdown"})
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["title"] == "Launch plan" and "<strong>ship</strong>" in note["body"]
    assert "<script" not in note["body"]
    r = await owner.get(f"/api/v1/notes/notes/{note['id']}/markdown")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
    assert r.text.startswith("# Launch plan") and "**ship**" in r.text and "[docs](https://docs.test)" in r.text
    bad = await owner.post("/api/v1/notes/import-markdown", content=b"\xff\xfe", headers={"Content-Type": "text/markdown"})
    assert bad.status_code == 400
    assert (await owner.post("/api/v1/notes/import-markdown", content=b"x",
                             headers={"Content-Type": "application/pdf"})).status_code == 415


async def test_pin_tags_and_notebooks(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    nb = (await owner.post("/api/v1/notes/notebooks", json={"name": "Work"})).json()
    a = await make_note(owner, title="a", notebook_id=nb["id"], tags=["x", "y", "x"])
    assert a["tags"] == ["x", "y"]
    await make_note(owner, title="b", notebook_id=nb["id"])
    r = await owner.post(f"/api/v1/notes/notes/{a['id']}/pin")
    assert r.json()["pinned"] is True
    pinned = (await owner.get("/api/v1/notes/notes", params={"pinned": "true"})).json()["items"]
    assert [n["id"] for n in pinned] == [a["id"]]
    assert len((await owner.get("/api/v1/notes/notes", params={"tags": "y"})).json()["items"]) == 1
    assert (await owner.delete(f"/api/v1/notes/notebooks/{nb['id']}")).status_code == 409


async def test_search_finds_notes_only_for_who_may_open_them(client: httpx.AsyncClient, nx: Nexus) -> None:
    from tests.kernel.test_events import wait_for

    owner = await new_org(client, nx)
    ann = await owner.add_user(["member"])
    bob = await owner.add_user(["member"])
    note = await make_note(ann, title="Quarterly zeppelin budget", body="<p>hydrogen costs</p>")

    async def hits(actor: Actor) -> list[str]:
        r = await actor.get("/api/v1/search", params={"q": "zeppelin"})
        assert r.status_code == 200, r.text
        return [h["id"] for h in r.json()["items"]]

    async def ann_finds() -> bool:
        return note["id"] in await hits(ann)

    await wait_for(ann_finds)
    assert note["id"] not in await hits(bob)
    assert note["id"] in await hits(owner)  # admins see every note
    await ann.post(f"/api/v1/notes/notes/{note['id']}/share", json={"user_id": bob.user_id})

    async def bob_finds() -> bool:
        return note["id"] in await hits(bob)

    await wait_for(bob_finds)
    await ann.post(f"/api/v1/notes/notes/{note['id']}/unshare", json={"user_id": bob.user_id})

    async def bob_lost_it() -> bool:
        return note["id"] not in await hits(bob)

    await wait_for(bob_lost_it)
