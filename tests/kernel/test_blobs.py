"""Blobs: streaming upload/download, dedup, ranges, limits, tenancy, permissions, hostile
names, checksums and garbage collection — on the local folder and on S3.

The S3 runs use moto's S3-compatible server (ThreadedMotoServer) on 127.0.0.1 with a random
port, started by these tests: the same HTTP tests run against it by swapping `nx.blobs` for a
store on a fresh bucket.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from nexus.kernel import blobs as blobs_mod
from nexus.kernel.blobs import (
    BlobCorrupt,
    BlobMissing,
    BlobStore,
    LocalBlobBackend,
    S3BlobBackend,
    backend_from_url,
    content_disposition,
    parse_range,
    safe_filename,
    sniff,
)
from nexus.kernel.config import ConfigError, Settings
from nexus.kernel.context import system_context
from nexus.kernel.errors import Problem
from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.records import UnitOfWork
from tests.factories import Actor, make_role, make_task, new_org

URL = "/api/v1/blobs"


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A local S3-compatible server (moto) on a random port of 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test")


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["local", "s3"])
async def store(request: pytest.FixtureRequest, nx: Nexus, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[BlobStore]:
    """nx.blobs on the local folder (as configured) or on a fresh bucket of the S3 server."""
    original: BlobStore = nx.blobs  # type: ignore[attr-defined]
    if request.param == "local":
        assert isinstance(original.backend, LocalBlobBackend)
        yield original
        return
    endpoint = request.getfixturevalue("s3_server")
    bucket = f"nexus-test-{secrets.token_hex(4)}"
    _s3_client(endpoint).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/blobs?endpoint={endpoint}&region=us-east-1&access_key=test&secret_key=test"
    backend = S3BlobBackend(url, tmp_path_factory.mktemp("s3-staging"))
    s3 = BlobStore(nx.db, backend, original.max_upload_bytes)
    nx.blobs = s3  # type: ignore[attr-defined]
    try:
        yield s3
    finally:
        nx.blobs = original  # type: ignore[attr-defined]
        await s3.close()


async def upload(actor: Actor, content: bytes | Any, *, ctype: str | None = "application/octet-stream",
                 filename: str | None = None, expect: int = 201, **headers: str) -> dict[str, Any]:
    h = dict(headers)
    if ctype is not None:
        h["Content-Type"] = ctype
    if filename is not None:
        h["X-Filename"] = quote(filename)
    r = await actor.post(URL, content=content, headers=h)
    assert r.status_code == expect, r.text
    return r.json()  # type: ignore[no-any-return]


async def exists(store: BlobStore, sha: str) -> bool:
    return await store.backend.exists(sha)


async def blob_row(nx: Nexus, sha: str) -> Any:
    async with nx.db.reader() as conn:
        return await conn.fetchrow("SELECT size, content_type FROM kernel_blob WHERE sha256 = ?", [sha])


async def backdate(nx: Nexus, sha: str, hours: float) -> None:
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE kernel_blob SET touched_at = ? WHERE sha256 = ?",
                           [nx.db.ts(utcnow() - timedelta(hours=hours)), sha])


# ------------------------------------------------------------------ round trip, dedup


async def test_upload_download_round_trip(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner = await new_org(client, nx)
    content = os.urandom(700_000) + b"tail"  # several read chunks
    sha = hashlib.sha256(content).hexdigest()
    ref = await upload(owner, content, filename="data.bin")
    assert ref["sha256"] == sha and ref["size"] == len(content)
    assert ref["content_type"] == "application/octet-stream" and ref["filename"] == "data.bin"
    assert ref["app"] == "blobs" and ref["created_by"] == owner.user_id
    assert await exists(store, sha)
    r = await owner.get(f"{URL}/{ref['id']}")
    assert r.status_code == 200 and r.content == content
    assert r.headers["etag"] == f'"{sha}"'
    assert r.headers["content-length"] == str(len(content))
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"].startswith("attachment;")
    head = await owner.request("HEAD", f"{URL}/{ref['id']}")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(content)) and head.headers["etag"] == f'"{sha}"'
    # The Python API reads the same bytes, verified against the hash.
    assert await store.read_bytes(sha, verify=True) == content


async def test_streamed_upload_without_length(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner = await new_org(client, nx)
    parts = [os.urandom(300_000) for _ in range(5)]

    async def gen() -> AsyncIterator[bytes]:
        for p in parts:
            yield p

    ref = await upload(owner, gen(), ctype="application/x-thing")
    whole = b"".join(parts)
    assert ref["sha256"] == hashlib.sha256(whole).hexdigest() and ref["size"] == len(whole)
    assert ref["content_type"] == "application/x-thing"
    assert (await owner.get(f"{URL}/{ref['id']}")).content == whole


async def test_empty_file(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner = await new_org(client, nx)
    ref = await upload(owner, b"", filename="empty.txt")
    assert ref["size"] == 0 and ref["sha256"] == hashlib.sha256(b"").hexdigest()
    r = await owner.get(f"{URL}/{ref['id']}")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "0"
    r = await owner.get(f"{URL}/{ref['id']}", headers={"Range": "bytes=0-"})
    assert r.status_code == 416 and r.headers["content-range"] == "bytes */0"


async def test_same_content_is_stored_once(client: httpx.AsyncClient, nx: Nexus, store: BlobStore,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    a = await new_org(client, nx)
    b = await new_org(client, nx)
    content = b"dedup me " + secrets.token_bytes(16)
    writes: list[str] = []
    if isinstance(store.backend, S3BlobBackend):
        real_put = store.backend._put_small

        def counting_put(c: Any, sha: str, staged: Path, size: int) -> None:
            writes.append(sha)
            real_put(c, sha, staged, size)

        monkeypatch.setattr(store.backend, "_put_small", counting_put)
    else:
        real_replace = os.replace

        def counting_replace(src: Any, dst: Any) -> None:
            writes.append(str(dst))
            real_replace(src, dst)

        monkeypatch.setattr(blobs_mod.os, "replace", counting_replace)
    r1 = await upload(a, content, filename="one.txt")
    r2 = await upload(a, content, filename="two.txt")
    r3 = await upload(b, content, filename="three.txt")
    assert r1["sha256"] == r2["sha256"] == r3["sha256"]
    assert len({r1["id"], r2["id"], r3["id"]}) == 3
    assert len(writes) == 1  # the content went to the back end once
    async with nx.db.reader() as conn:
        assert await conn.fetchval("SELECT count(*) FROM kernel_blob WHERE sha256 = ?", [r1["sha256"]]) == 1
        assert await conn.fetchval("SELECT count(*) FROM kernel_blob_ref WHERE sha256 = ?", [r1["sha256"]]) == 3
    # Uploading never tells whether the content existed before (no cross-org oracle).
    assert set(r1) == set(r3) and "created" not in r1
    # Each org's name for it is its own.
    assert (await a.get(f"{URL}/{r2['id']}")).headers["content-disposition"].endswith("two.txt")


# ------------------------------------------------------------------ ranges and conditional requests

CONTENT = bytes(range(256)) * 1200  # 307 200 bytes: longer than one read chunk


async def _ranged(client: httpx.AsyncClient, nx: Nexus) -> tuple[Actor, dict[str, Any]]:
    owner = await new_org(client, nx)
    return owner, await upload(owner, CONTENT, filename="r.bin")


async def test_ranges(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner, ref = await _ranged(client, nx)
    url = f"{URL}/{ref['id']}"
    n = len(CONTENT)
    cases = {
        "bytes=0-9": (0, 9),
        "bytes=-10": (n - 10, n - 1),
        f"bytes={n - 100}-": (n - 100, n - 1),
        f"bytes={n - 5}-{n + 5000}": (n - 5, n - 1),  # past the end: clamped
        "bytes=100000-300000": (100000, 300000),  # across read chunks
        f"bytes=-{n * 2}": (0, n - 1),  # a suffix longer than the content: all of it
        "bytes=7-7": (7, 7),
    }
    for header, (a, b) in cases.items():
        r = await owner.get(url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.content == CONTENT[a:b + 1], header
        assert r.headers["content-range"] == f"bytes {a}-{b}/{n}", header
        assert r.headers["content-length"] == str(b - a + 1), header
    for header in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}", "bytes=-0"):
        r = await owner.get(url, headers={"Range": header})
        assert r.status_code == 416, header
        assert r.headers["content-range"] == f"bytes */{n}"
        assert r.headers["content-type"] == "application/problem+json"
    # Several ranges, another unit or a malformed range: the whole content, 200 (RFC 9110 §14.2).
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=abc", "bytes=5-2", "bytes=-"):
        r = await owner.get(url, headers={"Range": header})
        assert r.status_code == 200 and r.content == CONTENT, header
    head = await owner.request("HEAD", url, headers={"Range": "bytes=0-9"})
    assert head.status_code == 206 and head.content == b"" and head.headers["content-length"] == "10"


async def test_if_range_and_if_none_match(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner, ref = await _ranged(client, nx)
    url = f"{URL}/{ref['id']}"
    etag = f'"{ref["sha256"]}"'
    r = await owner.get(url, headers={"Range": "bytes=0-3", "If-Range": etag})
    assert r.status_code == 206 and r.content == CONTENT[:4]
    r = await owner.get(url, headers={"Range": "bytes=0-3", "If-Range": '"something-else"'})
    assert r.status_code == 200 and r.content == CONTENT
    for inm in (etag, f'W/{etag}', f'"x", {etag}', "*"):
        r = await owner.get(url, headers={"If-None-Match": inm})
        assert r.status_code == 304 and r.content == b"", inm
        assert r.headers["etag"] == etag
    r = await owner.get(url, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200 and r.content == CONTENT


def test_parse_range_unit() -> None:
    assert parse_range(None, 10) is None
    assert parse_range("bytes=0-0", 10) == (0, 0)
    assert parse_range(" bytes = 2-4 ", 10) == (2, 4)
    assert parse_range("BYTES=2-", 10) == (2, 9)
    assert parse_range("bytes=-3", 10) == (7, 9)
    with pytest.raises(Problem) as exc:
        parse_range("bytes=10-", 10)
    assert exc.value.status == 416 and exc.value.headers["Content-Range"] == "bytes */10"


# ------------------------------------------------------------------ limits and checksums


async def test_oversize_upload_is_413(client: httpx.AsyncClient, nx: Nexus, store: BlobStore,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    owner = await new_org(client, nx)
    monkeypatch.setattr(store, "max_upload_bytes", 4096)
    staging = store.backend.staging_dir
    before = set(staging.iterdir()) if staging.exists() else set()
    big = os.urandom(5000)
    # Declared too large: refused before the body is read.
    r = await owner.post(URL, content=big, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413 and r.json()["limit"] == 4096

    async def gen() -> AsyncIterator[bytes]:  # no Content-Length: refused while streaming
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    r = await owner.post(URL, content=gen(), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 413
    assert await blob_row(nx, hashlib.sha256(big).hexdigest()) is None
    assert (set(staging.iterdir()) if staging.exists() else set()) == before  # no staging file left
    ok = await upload(owner, big[:4096])
    assert ok["size"] == 4096
    # The Python API takes a per-call limit too.
    with pytest.raises(Problem) as exc:
        await store.put_bytes(b"x" * 100, limit=10)
    assert exc.value.status == 413


def test_upload_limit_setting() -> None:
    base = {"NEXUS_DATA_DIR": "/tmp/nexus-blob-settings", "NEXUS_SECRET_KEY": "k" * 40}
    assert Settings.from_env(base).max_upload_bytes == 100 * 1024 * 1024
    assert Settings.from_env({**base, "NEXUS_MAX_UPLOAD_BYTES": "2048"}).max_upload_bytes == 2048
    with pytest.raises(ConfigError, match="NEXUS_MAX_UPLOAD_BYTES"):
        Settings.from_env({**base, "NEXUS_MAX_UPLOAD_BYTES": "lots"})
    # A bad S3 URL stops the start with a message, without echoing the secret.
    with pytest.raises(ConfigError, match="unknown parameters") as exc:
        Settings.from_env({**base, "NEXUS_BLOB_URL": "s3://bucket?secret_key=TOPSECRET&endpont=http://x"})
    assert "TOPSECRET" not in str(exc.value)
    good = "s3://bucket/p?endpoint=http://127.0.0.1:9000&access_key=a&secret_key=b"
    assert Settings.from_env({**base, "NEXUS_BLOB_URL": good}).blob_url == good


async def test_client_checksum(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner = await new_org(client, nx)
    content = secrets.token_bytes(1000)
    good = hashlib.sha256(content).hexdigest()
    ref = await upload(owner, content, **{"X-Content-SHA256": good.upper()})
    assert ref["sha256"] == good
    other = secrets.token_bytes(1000)
    r = await owner.post(URL, content=other, headers={"X-Content-SHA256": good})
    assert r.status_code == 400 and r.json()["errors"][0]["pointer"] == "/headers/X-Content-SHA256"
    assert await blob_row(nx, hashlib.sha256(other).hexdigest()) is None
    r = await owner.post(URL, content=other, headers={"X-Content-SHA256": "nope"})
    assert r.status_code == 400


async def test_corruption_is_detected_on_verified_reads(client: httpx.AsyncClient, nx: Nexus,
                                                        store: BlobStore) -> None:
    content = secrets.token_bytes(10_000)
    info = await store.put_bytes(content)
    assert await store.read_bytes(info.sha256) == content
    forged = bytes([content[0] ^ 1]) + content[1:]
    backend = store.backend
    if isinstance(backend, LocalBlobBackend):
        path = backend.path(info.sha256)
        os.chmod(path, 0o640)
        path.write_bytes(forged)
    else:
        assert isinstance(backend, S3BlobBackend)
        c = await backend.client()
        c.put_object(Bucket=backend.bucket, Key=backend.key(info.sha256), Body=forged)
    with pytest.raises(BlobCorrupt):
        await store.read_bytes(info.sha256, verify=True)
    assert await store.read_bytes(info.sha256, verify=False) == forged  # unverified reads don't hash
    with pytest.raises(ValueError):
        [c async for c in store.open_range(info.sha256, 0, 10, verify=True)]
    # Uploading the true content again repairs it only where the back end rewrites it; the
    # local back end keeps an existing file of the right size, so delete it first.
    await backend.delete(info.sha256)
    with pytest.raises(BlobMissing):
        await store.read_bytes(info.sha256)
    await store.put_bytes(content)
    assert await store.read_bytes(info.sha256, verify=True) == content


async def test_multipart_form_is_refused(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(URL, files={"file": ("a.txt", b"hello")})
    assert r.status_code == 415


# ------------------------------------------------------------------ tenancy and permissions


async def test_another_org_cannot_reach_a_blob(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    a = await new_org(client, nx)
    b = await new_org(client, nx)
    content = b"org A's secret " + secrets.token_bytes(8)
    ref = await upload(a, content, filename="secret.txt")
    assert (await b.get(f"{URL}/{ref['id']}")).status_code == 404
    assert (await b.request("HEAD", f"{URL}/{ref['id']}")).status_code == 404
    assert (await b.delete(f"{URL}/{ref['id']}")).status_code == 404
    assert (await a.get(f"{URL}/{ref['id']}")).content == content
    # The same content uploaded by B is B's own ref; A deleting its ref leaves B's intact.
    mine = await upload(b, content)
    assert (await a.delete(f"{URL}/{ref['id']}")).status_code == 204
    assert (await a.get(f"{URL}/{ref['id']}")).status_code == 404
    assert (await b.get(f"{URL}/{mine['id']}")).content == content
    # Malformed and unknown ids are simply not found.
    for rid in ("not-an-id", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "..%2F..%2Fetc%2Fpasswd", ref["sha256"]):
        assert (await a.get(f"{URL}/{rid}")).status_code == 404


async def test_permissions(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    viewer = await owner.add_user(["viewer"])
    ref = await upload(member, b"member's file", filename="m.txt")
    assert (await viewer.get(f"{URL}/{ref['id']}")).content == b"member's file"
    await upload(viewer, b"nope", expect=403)
    assert (await viewer.delete(f"{URL}/{ref['id']}")).status_code == 403
    assert (await client.get(f"{URL}/{ref['id']}")).status_code == 401
    assert (await client.post(URL, content=b"x")).status_code == 401
    role = await make_role(owner, ["tasks.*.*"])
    tasks_only = await owner.add_user([role["name"]])
    assert (await tasks_only.get(f"{URL}/{ref['id']}")).status_code == 403
    assert (await member.delete(f"{URL}/{ref['id']}")).status_code == 204
    assert (await member.delete(f"{URL}/{ref['id']}")).status_code == 404


async def test_app_attachments_through_the_python_api(client: httpx.AsyncClient, nx: Nexus,
                                                      store: BlobStore) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner)
    info = await store.put_bytes(b"%PDF-1.7 attachment", content_type=None)
    assert info.content_type == "application/pdf"
    async with UnitOfWork(nx.db, system_context(owner.org_id)) as uow:
        ref = await store.add_ref(uow, info.sha256, app="tasks", resource="tasks", record_id=task["id"],
                                  filename="../spec.pdf")
    assert ref["filename"] == "spec.pdf" and ref["size"] == info.size
    assert [r["id"] for r in await store.refs_for(owner.org_id, "tasks", "tasks", task["id"])] == [ref["id"]]
    r = await owner.get(f"{URL}/{ref['id']}")
    assert r.status_code == 200 and r.content == b"%PDF-1.7 attachment"
    assert r.headers["content-disposition"].startswith("inline;")
    # Reading an attachment follows the owning resource's permission.
    role = await make_role(owner, ["blobs.files.read"])
    files_only = await owner.add_user([role["name"]])
    assert (await files_only.get(f"{URL}/{ref['id']}")).status_code == 403
    # The upload API does not delete another app's attachment.
    assert (await owner.delete(f"{URL}/{ref['id']}")).status_code == 409
    other = await new_org(client, nx)
    assert await store.get_ref(other.org_id, ref["id"]) is None
    async with UnitOfWork(nx.db, system_context(other.org_id)) as uow:
        assert await store.remove_ref(uow, ref["id"]) is None
        assert await store.remove_refs(uow, app="tasks", resource="tasks", record_id=task["id"]) == 0
    async with UnitOfWork(nx.db, system_context(owner.org_id)) as uow:
        assert await store.remove_refs(uow, app="tasks", resource="tasks", record_id=task["id"]) == 1
    assert await store.get_ref(owner.org_id, ref["id"]) is None
    # A ref needs stored content.
    async with UnitOfWork(nx.db, system_context(owner.org_id)) as uow:
        with pytest.raises(Problem):
            await store.add_ref(uow, "0" * 64, app="tasks", resource="tasks")


# ------------------------------------------------------------------ names and types


HOSTILE = {
    "../../etc/passwd": "passwd",
    "..\\..\\windows\\system.ini": "system.ini",
    "evil\r\nSet-Cookie: a=b.txt": "evilSet-Cookie_ a=b.txt",
    'quo"te\\d".txt': 'd_.txt',
    "\u202egpj.exe": "gpj.exe",
    "..": "file",
    "": "file",
    "résumé 📄.pdf": "résumé 📄.pdf",
    "a/b/<script>.html": "_script_.html",
}


def test_safe_filename_unit() -> None:
    for raw, want in HOSTILE.items():
        assert safe_filename(raw) == want, raw
    long = "x" * 300 + ".txt"
    assert len(safe_filename(long)) == 200 and safe_filename(long).endswith(".txt")


_CD = re.compile(r"""^(inline|attachment); filename="[A-Za-z0-9._ ()+,=@-]+"; filename\*=UTF-8''[A-Za-z0-9!#$&+\-.^_`|~%]+$""")


async def test_hostile_filenames_are_neutralised(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner = await new_org(client, nx)
    for raw, want in HOSTILE.items():
        ref = await upload(owner, b"x", ctype="text/plain", filename=raw)
        assert ref["filename"] == want, raw
        cd = (await owner.get(f"{URL}/{ref['id']}")).headers["content-disposition"]
        assert _CD.match(cd), cd
        assert "\r" not in cd and "\n" not in cd and "/" not in cd and "\\" not in cd
    ref = await upload(owner, b"x", ctype="text/plain", filename="résumé 📄.pdf")
    cd = (await owner.get(f"{URL}/{ref['id']}")).headers["content-disposition"]
    assert cd == "inline; filename=\"resume .pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%F0%9F%93%84.pdf"
    # ?filename= works too, and a raw UTF-8 header is read as UTF-8.
    r = await owner.post(f"{URL}?filename={quote('../q.txt')}", content=b"y")
    assert r.json()["filename"] == "q.txt"
    r = await owner.post(URL, content=b"y", headers={"X-Filename": "naïve.txt".encode()})
    assert r.json()["filename"] == "naïve.txt"


def test_content_disposition_unit() -> None:
    assert content_disposition("attachment", 'a"b') == "attachment; filename=\"a_b\"; filename*=UTF-8''a_b"
    assert content_disposition("inline", "日本.txt") == "inline; filename=\".txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"


async def test_active_content_is_served_as_attachment(client: httpx.AsyncClient, nx: Nexus,
                                                      store: BlobStore) -> None:
    owner = await new_org(client, nx)
    cases = [
        (b"<html><script>alert(1)</script></html>", "text/html", "attachment"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/svg+xml", "attachment"),
        (b"<!doctype html><script>alert(1)</script>", None, "attachment"),  # sniffed as HTML
        (b"<?xml version='1.0'?><svg/>", None, "attachment"),
        (b"plain words", "text/plain", "inline"),
        (b"\x89PNG\r\n\x1a\n....", None, "inline"),
        (b"{}", "application/json", "attachment"),
        (b"alert(1)", "text/javascript", "attachment"),
        (b"<p>hi</p>", "TEXT/HTML; charset=UTF-8", "attachment"),
    ]
    for content, ctype, disposition in cases:
        ref = await upload(owner, content, ctype=ctype, filename="f")
        r = await owner.get(f"{URL}/{ref['id']}")
        assert r.headers["content-disposition"].startswith(disposition + ";"), (content, ctype)
        assert r.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in r.headers["content-security-policy"]
    ref = await upload(owner, b"plain", ctype="text/plain")
    r = await owner.get(f"{URL}/{ref['id']}?download=1")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["content-type"] == "text/plain"


def test_sniff_unit() -> None:
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"GIF89a") == "image/gif"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff(b"PK\x03\x04") == "application/zip"
    assert sniff(b"\x00\x01\x02") == "application/octet-stream"
    assert sniff("héllo".encode()) == "text/plain; charset=utf-8"
    assert sniff("héllo".encode()[:2]) == "text/plain; charset=utf-8"  # a character cut at the end
    assert sniff(b"\xff\xfe\xfa hello world") == "application/octet-stream"


# ------------------------------------------------------------------ garbage collection


async def test_garbage_collection(client: httpx.AsyncClient, nx: Nexus, store: BlobStore) -> None:
    owner = await new_org(client, nx)
    old_content = b"old orphan " + secrets.token_bytes(8)
    old_orphan = await store.put_bytes(old_content)
    new_orphan = await store.put_bytes(b"new orphan " + secrets.token_bytes(8))
    kept = await upload(owner, b"referenced " + secrets.token_bytes(8))
    released = await upload(owner, b"released " + secrets.token_bytes(8))
    for sha in (old_orphan.sha256, kept["sha256"], released["sha256"]):
        await backdate(nx, sha, hours=2)
    staging = store.backend.staging_dir
    staging.mkdir(parents=True, exist_ok=True)
    stale = staging / "ABANDONED.part"
    stale.write_bytes(b"half an upload")
    os.utime(stale, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    fresh = staging / "INFLIGHT.part"
    fresh.write_bytes(b"an upload going on")

    report = await store.collect_garbage(grace=timedelta(hours=1))
    assert report.blobs >= 1 and report.staged >= 1 and report.failed == 0
    assert await blob_row(nx, old_orphan.sha256) is None and not await exists(store, old_orphan.sha256)
    with pytest.raises(BlobMissing):
        await store.read_bytes(old_orphan.sha256)
    for sha in (new_orphan.sha256, kept["sha256"], released["sha256"]):  # recent, or referenced
        assert await blob_row(nx, sha) is not None and await exists(store, sha)
    assert not stale.exists() and fresh.exists()
    fresh.unlink()

    # Deleting the last ref makes the content collectable (its upload was 2 h ago).
    assert (await owner.delete(f"{URL}/{released['id']}")).status_code == 204
    await store.collect_garbage(grace=timedelta(hours=1))
    assert await blob_row(nx, released["sha256"]) is None and not await exists(store, released["sha256"])
    assert (await owner.get(f"{URL}/{kept['id']}")).status_code == 200

    # Uploading collected content again stores it again.
    again = await store.put_bytes(old_content)
    assert again.sha256 == old_orphan.sha256 and await exists(store, again.sha256)
    assert await store.read_bytes(again.sha256) == old_content


async def test_uploading_again_protects_old_content(client: httpx.AsyncClient, nx: Nexus,
                                                    store: BlobStore) -> None:
    """An upload of content that is stored, unreferenced and old touches its row before it
    returns, so a collection between the upload and its add_ref cannot take the content."""
    content = b"revived " + secrets.token_bytes(8)
    first = await store.put_bytes(content)
    await backdate(nx, first.sha256, hours=5)
    await store.put_bytes(content)  # e.g. a second upload, whose add_ref is still to come
    await store.collect_garbage(grace=timedelta(hours=1))
    assert await blob_row(nx, first.sha256) is not None
    assert await store.read_bytes(first.sha256) == content


async def test_gc_command(nx: Nexus, settings: Settings, store: BlobStore) -> None:
    orphan = await store.put_bytes(b"cli orphan " + secrets.token_bytes(8))
    await backdate(nx, orphan.sha256, hours=3)
    if store is nx.blobs and isinstance(store.backend, LocalBlobBackend):  # type: ignore[attr-defined]
        code = await blobs_mod.gc_command(settings, argparse.Namespace(grace_hours=1.0))
        assert code == 0
    else:  # the command builds its store from settings (the local folder); collect S3 here
        await store.collect_garbage(timedelta(hours=1))
    assert await blob_row(nx, orphan.sha256) is None
    assert not await exists(store, orphan.sha256)


async def test_gc_is_scheduled(nx: Nexus, store: BlobStore) -> None:
    jobs = getattr(nx, "jobs", None)
    if jobs is None:
        pytest.skip("this build has no job queue; the blob store runs its own daily loop")
    assert blobs_mod.GC_JOB in jobs.types and jobs.schedules[blobs_mod.GC_JOB].job_name == blobs_mod.GC_JOB
    orphan = await store.put_bytes(b"job orphan " + secrets.token_bytes(8))
    await backdate(nx, orphan.sha256, hours=30)
    await jobs.types[blobs_mod.GC_JOB].handler(None, {"grace_hours": 24})
    assert await blob_row(nx, orphan.sha256) is None and not await exists(store, orphan.sha256)


async def test_daily_claim_without_a_job_queue(nx: Nexus) -> None:
    """The fallback loop's claim: one process per day gets the run."""
    name = f"test-daily-{secrets.token_hex(4)}"
    assert await blobs_mod.claim_daily_run(nx.db, name) is True
    assert await blobs_mod.claim_daily_run(nx.db, name) is False
    async with nx.db.transaction() as conn:  # a day later
        await conn.execute("UPDATE kernel_lease SET expires_at = ? WHERE name = ?",
                           [nx.db.ts(utcnow() - timedelta(seconds=1)), name])
    assert await blobs_mod.claim_daily_run(nx.db, name) is True
    async with nx.db.transaction() as conn:
        await conn.execute("DELETE FROM kernel_lease WHERE name = ?", [name])


# ------------------------------------------------------------------ back end specifics


async def test_large_upload_round_trip(client: httpx.AsyncClient, nx: Nexus, store: BlobStore,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """11 MiB: on S3 a multipart upload (5 MiB parts, each with its SHA-256 checksum)."""
    if isinstance(store.backend, S3BlobBackend):
        monkeypatch.setattr(store.backend, "multipart_threshold", 5 * 1024 * 1024)
        monkeypatch.setattr(store.backend, "part_size", 5 * 1024 * 1024)
    owner = await new_org(client, nx)
    content = os.urandom(11 * 1024 * 1024 + 123)
    ref = await upload(owner, content)
    assert ref["sha256"] == hashlib.sha256(content).hexdigest()
    r = await owner.get(f"{URL}/{ref['id']}")
    assert r.content == content
    edge = 5 * 1024 * 1024
    r = await owner.get(f"{URL}/{ref['id']}", headers={"Range": f"bytes={edge - 10}-{edge + 10}"})
    assert r.status_code == 206 and r.content == content[edge - 10:edge + 11]
    assert await store.read_bytes(ref["sha256"], verify=True) == content
    if isinstance(store.backend, S3BlobBackend):
        head = (await store.backend.client()).head_object(Bucket=store.backend.bucket,
                                                           Key=store.backend.key(ref["sha256"]))
        assert head["Metadata"]["sha256"] == ref["sha256"]


async def test_s3_object_layout_and_metadata(nx: Nexus, store: BlobStore) -> None:
    backend = store.backend
    info = await store.put_bytes(b"layout " + secrets.token_bytes(8))
    if isinstance(backend, LocalBlobBackend):
        path = backend.path(info.sha256)
        assert path == backend.root / info.sha256[:2] / info.sha256[2:4] / info.sha256
        assert path.read_bytes().startswith(b"layout ")
        assert not any(p.suffix == ".part" for p in backend.staging_dir.iterdir())
        return
    assert isinstance(backend, S3BlobBackend)
    c = await backend.client()
    key = f"blobs/{info.sha256[:2]}/{info.sha256[2:4]}/{info.sha256}"
    assert backend.key(info.sha256) == key
    head = c.head_object(Bucket=backend.bucket, Key=key)
    assert head["Metadata"] == {"sha256": info.sha256}
    assert head["ContentLength"] == info.size
    assert not list(backend.staging_dir.glob("*.part"))


def test_blob_url_parsing(tmp_path: Path) -> None:
    local = backend_from_url(f"file://{tmp_path}/b", tmp_path)
    assert isinstance(local, LocalBlobBackend) and local.root == tmp_path / "b"
    rel = backend_from_url("file://blobs-here", tmp_path)
    assert isinstance(rel, LocalBlobBackend) and rel.root == (tmp_path / "blobs-here").resolve()
    s3 = backend_from_url("s3://my-bucket/some/prefix?endpoint=http://127.0.0.1:9000&region=eu-west-1"
                          "&access_key=AK&secret_key=SK", tmp_path)
    assert isinstance(s3, S3BlobBackend)
    assert (s3.bucket, s3.prefix, s3.region, s3.addressing) == ("my-bucket", "some/prefix/", "eu-west-1", "path")
    assert s3.key("ab" * 32) == "some/prefix/ab/ab/" + "ab" * 32
    env_creds = S3BlobBackend("s3://b-bucket", tmp_path, env={"AWS_DEFAULT_REGION": "ca-central-1"})
    assert env_creds.access_key is None and env_creds.region == "ca-central-1" and env_creds.addressing == "auto"
    with pytest.raises(ConfigError, match="unknown parameters") as exc:
        backend_from_url("s3://b?endpoint=http://x&secret_key=TOPSECRET&acess_key=typo", tmp_path)
    assert "TOPSECRET" not in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        backend_from_url("s3://b?secret_key=TOPSECRET", tmp_path)
    assert "TOPSECRET" not in str(exc.value)
    with pytest.raises(ConfigError):
        backend_from_url("s3://b?endpoint=ftp://x", tmp_path)
    with pytest.raises(ConfigError):
        backend_from_url("s3://b?part_size_mb=1", tmp_path)
    assert "TOPSECRET" not in blobs_mod.redact_blob_url("s3://b?access_key=a&secret_key=TOPSECRET&x=1")
