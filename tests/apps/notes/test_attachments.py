"""Notes attachments: files in the blob store, reachable only by who may see the note."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from nexus.kernel.blobs import BlobStore
from nexus.kernel.http.app import Nexus
from tests.apps.notes.test_notes import make_note
from tests.factories import Actor, audit_rows, new_org

NOTES = "/api/v1/notes/notes"


def store_of(nx: Nexus) -> BlobStore:
    return nx.blobs  # type: ignore[attr-defined,no-any-return]


async def attach(actor: Actor, note_id: object, data: bytes, filename: str = "report.pdf",
                 content_type: str = "application/pdf") -> httpx.Response:
    return await actor.post(f"{NOTES}/{note_id}/attachments", content=data,
                            headers={"Content-Type": content_type, "X-Filename": filename})


async def blob_row(nx: Nexus, sha256: str) -> Any:
    async with nx.db.reader() as conn:
        return await conn.fetchrow("SELECT size FROM kernel_blob WHERE sha256 = ?", [sha256])


async def test_upload_list_download_with_range(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    note = await make_note(owner)
    data = b"%PDF-1.7 " + secrets.token_bytes(2000)
    r = await attach(owner, note["id"], data)
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["filename"] == "report.pdf" and att["size"] == len(data) and att["content_type"] == "application/pdf"
    assert r.headers["location"] == att["url"] == f"{NOTES}/{note['id']}/attachments/{att['id']}"

    # The note's summary follows, through an audited change with its own event verb.
    got = (await owner.get(f"{NOTES}/{note['id']}")).json()
    assert got["attachments"] == [{k: att[k] for k in ("id", "filename", "size", "content_type", "sha256")}]
    assert got["version"] == note["version"] + 1  # type: ignore[operator]
    assert await audit_rows(nx, owner.org_id, action="attachment_added", record_id=str(note["id"]))

    items = (await owner.get(f"{NOTES}/{note['id']}/attachments")).json()["items"]
    assert [i["id"] for i in items] == [att["id"]]

    r = await owner.get(att["url"])
    assert r.status_code == 200 and r.content == data
    assert r.headers["etag"] == f'"{att["sha256"]}"' and r.headers["accept-ranges"] == "bytes"
    r = await owner.get(att["url"], headers={"Range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == data[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(data)}"
    r = await owner.get(att["url"], headers={"If-None-Match": f'"{att["sha256"]}"'})
    assert r.status_code == 304

    # The id handed out is not the blob ref: the kernel route cannot be used to go round the note.
    assert (await owner.get(f"/api/v1/blobs/{att['id']}")).status_code == 404
    assert (await owner.get(f"{NOTES}/{note['id']}/attachments/{'0' * 26}")).status_code == 404


async def test_who_may_see_attach_and_remove(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    ann = await owner.add_user(["member"])
    bob = await owner.add_user(["member"])
    note = await make_note(ann, title="Ann's private plan")
    base = f"{NOTES}/{note['id']}/attachments"
    att = (await attach(ann, note["id"], b"secret " + secrets.token_bytes(16), "plan.txt", "text/plain")).json()

    # Bob cannot see the note: every attachment route is 404, as for a note that does not exist.
    assert (await bob.get(base)).status_code == 404
    assert (await bob.get(att["url"])).status_code == 404
    assert (await attach(bob, note["id"], b"x")).status_code == 404
    assert (await bob.delete(att["url"])).status_code == 404

    # Shared to read: list and download, but neither attach nor remove.
    await ann.post(f"{NOTES}/{note['id']}/share", json={"user_id": bob.user_id, "access": "read"})
    assert [i["id"] for i in (await bob.get(base)).json()["items"]] == [att["id"]]
    assert (await bob.get(att["url"])).status_code == 200
    assert (await attach(bob, note["id"], b"x")).status_code == 403
    assert (await bob.delete(att["url"])).status_code == 403

    # Shared to edit: may attach.
    await ann.post(f"{NOTES}/{note['id']}/share", json={"user_id": bob.user_id, "access": "edit"})
    r = await attach(bob, note["id"], b"bob's " + secrets.token_bytes(8), "bob.txt", "text/plain")
    assert r.status_code == 201, r.text
    assert len((await ann.get(f"{NOTES}/{note['id']}")).json()["attachments"]) == 2

    # Unshared: gone again.
    await ann.post(f"{NOTES}/{note['id']}/unshare", json={"user_id": bob.user_id})
    assert (await bob.get(att["url"])).status_code == 404

    # Admins see every note, so every attachment.
    assert (await owner.get(att["url"])).status_code == 200

    # Another org: 404 whatever it knows.
    stranger = await new_org(client, nx)
    assert (await stranger.get(base)).status_code == 404
    assert (await stranger.get(att["url"])).status_code == 404
    assert (await attach(stranger, note["id"], b"x")).status_code == 404

    # A deleted note's attachments are out of reach until it is restored.
    await ann.delete(f"{NOTES}/{note['id']}")
    assert (await ann.get(att["url"])).status_code == 404
    await ann.post(f"{NOTES}/{note['id']}/restore")
    assert (await ann.get(att["url"])).status_code == 200


async def test_removing_frees_the_blob_for_gc(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    note = await make_note(owner)
    data = b"to be removed " + secrets.token_bytes(32)
    att = (await attach(owner, note["id"], data, "gone.bin", "application/octet-stream")).json()
    store = store_of(nx)
    assert len(await store.refs_for(owner.org_id, "notes", "notes", str(note["id"]))) == 1

    assert (await owner.delete(att["url"])).status_code == 204
    assert (await owner.delete(att["url"])).status_code == 404
    assert await store.refs_for(owner.org_id, "notes", "notes", str(note["id"])) == []
    got = (await owner.get(f"{NOTES}/{note['id']}")).json()
    assert got["attachments"] == []
    assert (await owner.get(att["url"])).status_code == 404
    assert await audit_rows(nx, owner.org_id, action="attachment_removed", record_id=str(note["id"]))

    assert await blob_row(nx, att["sha256"]) is not None
    await store.collect_garbage(grace=timedelta(0))
    assert await blob_row(nx, att["sha256"]) is None


async def test_purging_a_note_drops_its_refs(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    ann = await owner.add_user(["member"])
    note = await make_note(ann)
    att = (await attach(ann, note["id"], b"purge me " + secrets.token_bytes(32), "p.bin",
                        "application/octet-stream")).json()
    url = f"{NOTES}/{note['id']}"
    assert (await ann.post(f"{url}/purge")).status_code == 409  # not deleted yet
    await ann.delete(url)
    assert (await ann.post(f"{url}/purge")).status_code == 204
    assert (await ann.post(f"{url}/restore")).status_code == 404
    assert await store_of(nx).refs_for(ann.org_id, "notes", "notes", str(note["id"])) == []
    await store_of(nx).collect_garbage(grace=timedelta(0))
    assert await blob_row(nx, att["sha256"]) is None


async def test_attach_an_uploaded_blob(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    note = await make_note(owner)
    data = b"already uploaded " + secrets.token_bytes(8)
    up = (await owner.post("/api/v1/blobs", content=data,
                           headers={"Content-Type": "text/plain", "X-Filename": "up.txt"})).json()
    r = await owner.post(f"{NOTES}/{note['id']}/attach", json={"blob_id": up["id"]})
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == "up.txt" and r.json()["sha256"] == up["sha256"]
    assert (await owner.get(r.json()["url"])).content == data
    # a note attachment cannot itself be re-attached by id (its id is no blob ref)
    r2 = await owner.post(f"{NOTES}/{note['id']}/attach", json={"blob_id": r.json()["id"]})
    assert r2.status_code == 422
    stranger = await new_org(client, nx)
    other = await make_note(stranger)
    assert (await stranger.post(f"{NOTES}/{other['id']}/attach", json={"blob_id": up["id"]})).status_code == 422


async def test_oversized_upload_is_413(client: httpx.AsyncClient, nx: Nexus, monkeypatch: pytest.MonkeyPatch) -> None:
    owner = await new_org(client, nx)
    note = await make_note(owner)
    monkeypatch.setattr(store_of(nx), "max_upload_bytes", 4096)
    r = await attach(owner, note["id"], secrets.token_bytes(5000), "big.bin", "application/octet-stream")
    assert r.status_code == 413

    async def gen() -> Any:  # no Content-Length: refused while streaming
        for _ in range(5):
            yield secrets.token_bytes(1000)

    r = await owner.post(f"{NOTES}/{note['id']}/attachments", content=gen(),
                         headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413
    assert (await owner.get(f"{NOTES}/{note['id']}")).json()["attachments"] == []


async def test_hostile_names_and_active_content(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    note = await make_note(owner)
    r = await attach(owner, note["id"], b"<html><script>alert(1)</script></html>",
                     quote('../../etc/"evil"\r\nX-Injected: 1\u202e.html'), "text/html")
    assert r.status_code == 201, r.text
    att = r.json()
    assert "/" not in att["filename"] and "\u202e" not in att["filename"] and "\r" not in att["filename"]
    d = await owner.get(att["url"])
    cd = d.headers["content-disposition"]
    assert cd.startswith("attachment;") and "\r" not in cd and "\n" not in cd and '"evil"' not in cd
    assert "x-injected" not in d.headers
    assert d.headers["x-content-type-options"] == "nosniff" and "sandbox" in d.headers["content-security-policy"]

    svg = await attach(owner, note["id"], b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
                       "pic.svg", "image/svg+xml")
    d = await owner.get(svg.json()["url"])
    assert d.headers["content-disposition"].startswith("attachment;")

    png = await attach(owner, note["id"], b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(16), "pic.png", "image/png")
    d = await owner.get(png.json()["url"])
    assert d.headers["content-disposition"].startswith("inline;")  # images in the body can use the URL

    # The download URL survives the body's sanitiser, so a note can show its own image.
    body = f'<p><img src="{png.json()["url"]}" alt="pic"></p>'
    r = await owner.patch(f"{NOTES}/{note['id']}", json={"body": body})
    assert png.json()["url"] in r.json()["body"]


async def test_kernel_blob_route_honours_the_note_rule(client: httpx.AsyncClient, nx: Nexus) -> None:
    """Even with a raw ref id, /api/v1/blobs refuses a private note's file to whoever cannot
    see the note (the kernel checks the owning record's rule)."""
    from datetime import timedelta  # noqa: F401

    owner = await new_org(client, nx)
    ann = await owner.add_user(["member"])
    bob = await owner.add_user(["member"])
    note = (await ann.post("/api/v1/notes/notes", json={"title": "private"})).json()
    r = await ann.post(f"/api/v1/notes/notes/{note['id']}/attachments", content=b"secret bytes",
                       headers={"Content-Type": "text/plain", "X-Filename": "s.txt"})
    assert r.status_code == 201, r.text
    async with nx.db.reader() as conn:
        ref_id = await conn.fetchval("SELECT id FROM kernel_blob_ref WHERE org_id = ? AND record_id = ?",
                                     [owner.org_id, note["id"]])
    assert (await bob.get(f"/api/v1/blobs/{ref_id}")).status_code == 404
    assert (await ann.get(f"/api/v1/blobs/{ref_id}")).status_code == 200
