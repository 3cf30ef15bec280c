"""Blobs: a content-addressed file store (DESIGN.md §1; ADR 0005).

* Content is named by its SHA-256 and stored once however often it is uploaded.
* An org reaches content only through a *ref* of its own (`kernel_blob_ref`): knowing a
  hash gives nothing; another org's ref is simply not found (404).
* Uploads are streamed: read chunk by chunk, hashed and counted as they arrive (413 past
  the limit), spooled to a staging file — never whole in memory — then moved into place
  (local folder) or uploaded with its SHA-256 checksum (S3) under its hash.
* Two back ends behind one interface: `LocalBlobBackend` (`file:///path`, the default) and
  `S3BlobBackend` (`s3://bucket/prefix?endpoint=…`), chosen by NEXUS_BLOB_URL.
* Garbage collection deletes content no ref has used for a grace period.

Python API for apps (Notes attachments and the like):

    info = await nx.blobs.put_stream(chunks, content_type="image/png")
    async with UnitOfWork(nx.db, ctx) as uow:
        ref = await nx.blobs.add_ref(uow, info.sha256, app="notes", resource="notes",
                                     record_id=note_id, filename="photo.png")
    async for chunk in nx.blobs.open_range(ref["sha256"], verify=True): ...

HTTP: POST /api/v1/blobs, GET|HEAD|DELETE /api/v1/blobs/{ref_id} (see the route handlers).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
import os
import re
import time
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from nexus.kernel.config import ConfigError, Settings
from nexus.kernel.errors import Problem, not_found
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.ids import is_id, new_id
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.permissions import require

if TYPE_CHECKING:
    from datetime import datetime

    from nexus.kernel.db import Database
    from nexus.kernel.http.app import Nexus
    from nexus.kernel.records import UnitOfWork

log = logging.getLogger("nexus.blobs")

READ_CHUNK = 256 * 1024  # bytes per chunk sent to a client
SPOOL_BATCH = 1024 * 1024  # bytes gathered before one write (and hash) in a worker thread
STALE_STAGING = timedelta(days=1)  # staging files older than this are abandoned uploads
_SHA = re.compile(r"^[0-9a-f]{64}$")


class BlobError(Exception):
    """The store could not do what was asked."""


class BlobMissing(BlobError):
    """The content of a known blob is not in the back end (lost or deleted)."""


class BlobCorrupt(BlobError):
    """The content read back differs from what was stored (length or SHA-256)."""


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: str
    size: int
    content_type: str


@dataclass(slots=True)
class GcReport:
    blobs: int = 0  # blobs deleted (content and row)
    bytes: int = 0  # their total size
    staged: int = 0  # abandoned staging files removed
    failed: int = 0  # blobs whose content could not be deleted (kept; retried next time)


def too_large(limit: int) -> Problem:
    return Problem(413, f"The upload is larger than the limit of {limit} bytes.", extra={"limit": limit})


def is_sha256(value: str) -> bool:
    return bool(_SHA.match(value))


# ============================================================== back ends


class BlobBackend(Protocol):
    """Where content lives. Every method is safe to call concurrently and idempotent."""

    kind: str
    staging_dir: Path  # where uploads are spooled before `store`

    async def exists(self, sha256: str) -> bool: ...

    async def store(self, sha256: str, staged: Path, size: int) -> None:
        """Put the staged file (already fsynced, hash verified) under its hash; consumes it."""

    def read(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes start..end inclusive (0 <= start <= end < size). BlobMissing if absent."""

    async def delete(self, sha256: str) -> None: ...

    async def close(self) -> None: ...


def _fan_out(sha256: str) -> str:
    """ab/cd/abcd…: two levels of 256 directories keep any one directory small."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobBackend:
    """Files under a folder, named by hash: <root>/ab/cd/abcd…; written to a staging file
    in the same file system, fsynced, then renamed into place (atomic: a reader sees all
    of a blob or none of it), and the directory fsynced so the rename survives a crash."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.staging_dir = root / ".staging"

    def path(self, sha256: str) -> Path:
        return self.root / _fan_out(sha256)

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.path(sha256).is_file)

    async def store(self, sha256: str, staged: Path, size: int) -> None:
        await asyncio.to_thread(self._store, sha256, staged, size)

    def _store(self, sha256: str, staged: Path, size: int) -> None:
        target = self.path(sha256)
        try:
            if target.stat().st_size == size:
                staged.unlink(missing_ok=True)  # already here: stored once
                return
        except FileNotFoundError:
            pass
        made = [d for d in (target.parent.parent, target.parent) if not d.is_dir()]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(staged, 0o440)
        os.replace(staged, target)
        _fsync_dir(target.parent)
        for d in made:
            _fsync_dir(d.parent)

    async def read(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        try:
            f: BinaryIO = await asyncio.to_thread(open, self.path(sha256), "rb")
        except FileNotFoundError:
            raise BlobMissing(sha256) from None
        try:
            await asyncio.to_thread(f.seek, start)
            left = end - start + 1
            while left > 0:
                data = await asyncio.to_thread(f.read, min(READ_CHUNK, left))
                if not data:
                    raise BlobCorrupt(f"{sha256} is shorter than recorded")
                left -= len(data)
                yield data
        finally:
            f.close()

    async def delete(self, sha256: str) -> None:
        await asyncio.to_thread(self._delete, sha256)

    def _delete(self, sha256: str) -> None:
        path = self.path(sha256)
        path.unlink(missing_ok=True)
        for d in (path.parent, path.parent.parent):
            try:
                d.rmdir()  # only when empty
            except OSError:
                break

    async def close(self) -> None:
        return None


_S3_PARAMS = frozenset({"endpoint", "region", "access_key", "secret_key", "addressing", "part_size_mb",
                        "multipart_threshold_mb"})
_MiB = 1024 * 1024


class S3BlobBackend:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2…), keyed like the local
    folder (<prefix>ab/cd/abcd…) so either can be copied onto the other with `aws s3 sync`.

    boto3 (AWS's own client) runs in a small dedicated thread pool (ADR 0005). Each object
    carries its SHA-256 twice: as the S3 checksum (ChecksumSHA256, which the server verifies
    on upload; per part for multipart uploads) and as metadata `x-amz-meta-sha256`.
    """

    kind = "s3"

    def __init__(self, url: str, staging_dir: Path, env: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ConfigError(f"NEXUS_BLOB_URL must look like s3://bucket[/prefix]?endpoint=…, got {redact_blob_url(url)}")
        self.bucket = parts.netloc
        prefix = unquote(parts.path).strip("/")
        self.prefix = prefix + "/" if prefix else ""
        q = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = set(q) - _S3_PARAMS
        if unknown:
            raise ConfigError(f"NEXUS_BLOB_URL has unknown parameters {sorted(unknown)}; "
                              f"known: {', '.join(sorted(_S3_PARAMS))}")
        env = dict(os.environ if env is None else env)
        self.endpoint = q.get("endpoint") or None
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError("NEXUS_BLOB_URL: endpoint must be http(s)://host[:port]")
        self.region = q.get("region") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.access_key = q.get("access_key") or None
        self.secret_key = q.get("secret_key") or None
        if bool(self.access_key) != bool(self.secret_key):
            raise ConfigError("NEXUS_BLOB_URL: give both access_key and secret_key, or neither "
                              "(then AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the AWS credential chain)")
        self.addressing = q.get("addressing") or ("path" if self.endpoint else "auto")
        if self.addressing not in ("path", "virtual", "auto"):
            raise ConfigError("NEXUS_BLOB_URL: addressing must be path, virtual or auto")
        try:
            self.part_size = int(q.get("part_size_mb") or 16) * _MiB
            self.multipart_threshold = int(q.get("multipart_threshold_mb") or 64) * _MiB
        except ValueError:
            raise ConfigError("NEXUS_BLOB_URL: part_size_mb and multipart_threshold_mb are whole numbers") from None
        if not 5 * _MiB <= self.part_size <= 5 * 1024 * _MiB:
            raise ConfigError("NEXUS_BLOB_URL: part_size_mb must be between 5 and 5120 (S3's part limits)")
        self.staging_dir = staging_dir
        self._pool: ThreadPoolExecutor | None = None
        self._client: Any = None
        self._client_lock = asyncio.Lock()

    def key(self, sha256: str) -> str:
        return self.prefix + _fan_out(sha256)

    async def _call(self, fn: Callable[..., Any], /, *args: Any, **kw: Any) -> Any:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="nexus-s3")
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    async def client(self) -> Any:
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await self._call(self._make_client)
        return self._client

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(aws_access_key_id=self.access_key,
                                        aws_secret_access_key=self.secret_key, region_name=self.region)
        config = Config(
            s3={"addressing_style": self.addressing},
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=16,
            connect_timeout=10,
            read_timeout=60,
            # Send only the checksums we choose (SHA-256): the newer default CRC32 trailers
            # are refused by several S3-compatible servers.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return session.client("s3", endpoint_url=self.endpoint, config=config)

    @staticmethod
    def _status(exc: Exception) -> int | None:
        resp = getattr(exc, "response", None)
        if not isinstance(resp, dict):
            return None
        code = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code is None and resp.get("Error", {}).get("Code") in ("NoSuchKey", "NotFound", "404"):
            return 404
        return int(code) if code is not None else None

    async def exists(self, sha256: str) -> bool:
        c = await self.client()
        try:
            await self._call(c.head_object, Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            if self._status(exc) == 404:
                return False
            raise
        return True

    async def store(self, sha256: str, staged: Path, size: int) -> None:
        try:
            if await self.exists(sha256):
                return
            c = await self.client()
            if size < self.multipart_threshold:
                await self._call(self._put_small, c, sha256, staged, size)
            else:
                await self._put_multipart(c, sha256, staged)
        finally:
            await asyncio.to_thread(staged.unlink, missing_ok=True)

    def _put_small(self, c: Any, sha256: str, staged: Path, size: int) -> None:
        with open(staged, "rb") as f:
            c.put_object(Bucket=self.bucket, Key=self.key(sha256), Body=f, ContentLength=size,
                         ContentType="application/octet-stream", Metadata={"sha256": sha256},
                         ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode())

    async def _put_multipart(self, c: Any, sha256: str, staged: Path) -> None:
        key = self.key(sha256)
        up = await self._call(c.create_multipart_upload, Bucket=self.bucket, Key=key, ChecksumAlgorithm="SHA256",
                              ContentType="application/octet-stream", Metadata={"sha256": sha256})
        upload_id = up["UploadId"]
        done: list[dict[str, Any]] = []
        try:
            f: BinaryIO = await asyncio.to_thread(open, staged, "rb")
            try:
                number = 0
                while True:
                    data = await asyncio.to_thread(f.read, self.part_size)
                    if not data:
                        break
                    number += 1
                    checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
                    part = await self._call(c.upload_part, Bucket=self.bucket, Key=key, UploadId=upload_id,
                                            PartNumber=number, Body=data, ChecksumSHA256=checksum)
                    done.append({"PartNumber": number, "ETag": part["ETag"], "ChecksumSHA256": checksum})
            finally:
                f.close()
            await self._call(c.complete_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id,
                             MultipartUpload={"Parts": done})
        except BaseException:
            with contextlib.suppress(Exception):
                await self._call(c.abort_multipart_upload, Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    async def read(self, sha256: str, start: int, end: int) -> AsyncIterator[bytes]:
        c = await self.client()
        try:
            resp = await self._call(c.get_object, Bucket=self.bucket, Key=self.key(sha256), Range=f"bytes={start}-{end}")
        except Exception as exc:
            if self._status(exc) in (404, 416):
                raise BlobMissing(sha256) from None
            raise
        body = resp["Body"]
        try:
            left = end - start + 1
            while left > 0:
                data = await self._call(body.read, min(READ_CHUNK, left))
                if not data:
                    raise BlobCorrupt(f"{sha256} is shorter than recorded")
                left -= len(data)
                yield data
        finally:
            with contextlib.suppress(Exception):
                await self._call(body.close)

    async def delete(self, sha256: str) -> None:
        c = await self.client()
        try:
            await self._call(c.delete_object, Bucket=self.bucket, Key=self.key(sha256))
        except Exception as exc:
            if self._status(exc) != 404:
                raise

    async def close(self) -> None:
        pool, self._pool, self._client = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=False)


def redact_blob_url(url: str) -> str:
    """The blob URL with any secret_key (or password) hidden, for messages and logs."""
    url = re.sub(r"(secret_key=)[^&]*", r"\1***", url)
    return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", url)


def backend_from_url(url: str, data_dir: Path, env: dict[str, str] | None = None) -> BlobBackend:
    if url.startswith("file://"):
        path = Path(unquote(url[len("file://"):]))
        if not str(path):
            raise ConfigError("NEXUS_BLOB_URL: file:// needs a folder, e.g. file:///var/lib/nexus/blobs")
        return LocalBlobBackend(path if path.is_absolute() else (data_dir / path).resolve())
    if url.startswith("s3://"):
        return S3BlobBackend(url, data_dir / "blob-staging", env)
    raise ConfigError(f"NEXUS_BLOB_URL must be file://… or s3://…, got {redact_blob_url(url)}")


# ============================================================== content types and names

_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}"
_MEDIA = re.compile(rf"^({_TOKEN})/({_TOKEN})$")
_CHARSET = re.compile(r"charset\s*=\s*\"?([a-z0-9._:-]{1,40})\"?")
# Served inline; everything else (HTML, SVG, XML, scripts…) is an attachment so that an
# uploaded page can never run as our origin (stored XSS).
INLINE_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp",
    "application/pdf", "text/plain",
    "audio/mpeg", "audio/ogg", "audio/wav", "audio/webm", "audio/flac", "audio/aac",
    "video/mp4", "video/webm", "video/ogg",
})
DEFAULT_TYPE = "application/octet-stream"


def normalise_content_type(value: str | None) -> str | None:
    """`type/subtype` lower-cased with at most a charset; None when absent or malformed."""
    if not value:
        return None
    head, _, params = value.strip().lower().partition(";")
    head = head.strip()
    if not _MEDIA.match(head):
        return None
    m = _CHARSET.search(params)
    return f"{head}; charset={m.group(1)}" if m else head


def sniff(head: bytes) -> str:
    """A content type from the first bytes, for uploads that did not declare one."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "text/html"
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in text):
        return "image/svg+xml"
    if text.startswith(b"<?xml"):
        return "application/xml"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
                return DEFAULT_TYPE
        return "text/plain; charset=utf-8"
    return DEFAULT_TYPE


_UNSAFE_NAME = re.compile(r'[<>:"|?*]')
_ASCII_SAFE = re.compile(r"[^A-Za-z0-9._ ()+,=@-]")
# RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~"
_ATTR_CHARS = "!#$&+-.^_`|~"


def safe_filename(name: str | None) -> str:
    """A file name that is only a name: no directories, no control or bidi characters, no
    characters Windows refuses, no leading dots; at most 200 characters; 'file' if nothing
    is left."""
    if not name:
        return "file"
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")  # Cc, Cf (bidi), Cs, Co, Cn
    name = _UNSAFE_NAME.sub("_", name).strip().lstrip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and 0 < len(ext) <= 16 else name[:200]
    return name or "file"


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266: an ASCII `filename` for old clients and the exact name as RFC 8187 `filename*`."""
    name = safe_filename(filename)
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = _ASCII_SAFE.sub("_", fallback).strip() or "file"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"


# ============================================================== the store


_BLOB_UPSERT = (
    "INSERT INTO kernel_blob (sha256, size, content_type, created_at, touched_at) VALUES (?,?,?,?,?)"
    " ON CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at"
)
_REF_INSERT = (
    "INSERT INTO kernel_blob_ref (id, org_id, sha256, app, resource, record_id, filename, content_type,"
    " created_at, created_by) VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_REF_SELECT = (
    "SELECT r.id, r.sha256, b.size, r.content_type, r.filename, r.app, r.resource, r.record_id, r.created_at,"
    " r.created_by FROM kernel_blob_ref r JOIN kernel_blob b ON b.sha256 = r.sha256"
)
_REF_FIELDS = ("id", "sha256", "size", "content_type", "filename", "app", "resource", "record_id", "created_at",
               "created_by")


class BlobStore:
    """The Python API (module docstring): content in a back end, metadata in the database."""

    def __init__(self, db: Database, backend: BlobBackend, max_upload_bytes: int) -> None:
        self.db = db
        self.backend = backend
        self.max_upload_bytes = max_upload_bytes

    # -- writing content --------------------------------------------------------------
    async def put_stream(self, chunks: AsyncIterable[bytes], *, limit: int | None = None,
                         content_type: str | None = None, declared_size: int | None = None,
                         expected_sha256: str | None = None) -> BlobInfo:
        """Store a stream of bytes; returns its hash, size and content type (declared, else
        sniffed). 413 Problem past `limit` (default NEXUS_MAX_UPLOAD_BYTES) — checked against
        `declared_size` before reading and against the bytes as they arrive; 400 Problem if
        `expected_sha256` is given and the content differs (nothing is stored then)."""
        limit = limit or self.max_upload_bytes
        if declared_size is not None and declared_size > limit:
            raise too_large(limit)
        staging = self.backend.staging_dir
        await asyncio.to_thread(staging.mkdir, parents=True, exist_ok=True)
        staged = staging / f"{new_id()}.part"
        h = hashlib.sha256()
        f: BinaryIO = await asyncio.to_thread(_create_exclusive, staged)
        try:
            size = 0
            head = b""
            pending: list[bytes] = []
            buffered = 0
            try:
                async for chunk in chunks:
                    if not chunk:
                        continue
                    size += len(chunk)
                    if size > limit:
                        raise too_large(limit)
                    if len(head) < 512:
                        head += chunk[: 512 - len(head)]
                    pending.append(chunk)
                    buffered += len(chunk)
                    if buffered >= SPOOL_BATCH:
                        data = b"".join(pending)
                        pending, buffered = [], 0
                        await asyncio.to_thread(_write_hashed, f, h, data)
                if pending:
                    await asyncio.to_thread(_write_hashed, f, h, b"".join(pending))
                await asyncio.to_thread(_sync_close, f)
            finally:
                f.close()
            sha = h.hexdigest()
            if expected_sha256 is not None and expected_sha256.lower() != sha:
                raise Problem(400, "The content does not match the SHA-256 the client sent.",
                              errors=[{"pointer": "/headers/X-Content-SHA256", "detail": f"the content's is {sha}"}])
            declared = normalise_content_type(content_type)
            ctype = declared if declared and declared != DEFAULT_TYPE else sniff(head) if head else DEFAULT_TYPE
            # Touch the row first, then store: garbage collection (which locks the row, then
            # deletes content, then the row) can then never delete content we just stored.
            await self._touch(sha, size, ctype)
            await self.backend.store(sha, staged, size)
        finally:
            await asyncio.to_thread(staged.unlink, missing_ok=True)
        return BlobInfo(sha, size, ctype)

    async def put_bytes(self, data: bytes, *, content_type: str | None = None, limit: int | None = None) -> BlobInfo:
        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put_stream(one(), content_type=content_type, limit=limit, declared_size=len(data))

    async def _touch(self, sha256: str, size: int, content_type: str) -> None:
        db = self.db
        now = db.ts(utcnow())
        async with db.transaction() as conn:
            await conn.execute(_BLOB_UPSERT, [sha256, size, content_type, now, now])

    # -- refs ---------------------------------------------------------------------------
    async def add_ref(self, uow: UnitOfWork, sha256: str, *, app: str, resource: str, record_id: str | None = None,
                      filename: str | None = None, content_type: str | None = None) -> dict[str, Any]:
        """Give the unit of work's org a ref to stored content (committed with the unit of work).

        Only pass a hash this code path obtained from put_* (or from a ref of the same org):
        a ref is what grants access, so a hash taken from a client would let anyone who
        knows a hash read it."""
        if not is_sha256(sha256):
            raise ValueError("sha256 must be 64 lower-case hex digits")
        row = await uow.conn.fetchrow("SELECT size, content_type FROM kernel_blob WHERE sha256 = ?", [sha256])
        if row is None:
            raise not_found("blob")
        ref = {
            "id": new_id(), "sha256": sha256, "size": int(row[0]),
            "content_type": normalise_content_type(content_type) or row[1], "filename": safe_filename(filename),
            "app": app, "resource": resource, "record_id": record_id, "created_at": uow.now,
            "created_by": uow.ctx.user_id,
        }
        db = self.db
        await uow.write(_REF_INSERT, [ref["id"], uow.ctx.org_id, sha256, app, resource, record_id, ref["filename"],
                                      ref["content_type"], db.ts(uow.now), ref["created_by"]])
        ref["created_at"] = _iso(db, uow.now)
        return ref

    async def get_ref(self, org_id: str, ref_id: str) -> dict[str, Any] | None:
        """One of the org's refs with its blob's size; None for an unknown id or another org's."""
        if not is_id(ref_id):
            return None
        async with self.db.reader() as conn:
            row = await conn.fetchrow(_REF_SELECT + " WHERE r.org_id = ? AND r.id = ?", [org_id, ref_id])
        return None if row is None else self._ref(row)

    async def refs_for(self, org_id: str, app: str, resource: str, record_id: str | None) -> list[dict[str, Any]]:
        """The org's refs owned by one record (oldest first)."""
        async with self.db.reader() as conn:
            rows = await conn.fetch(
                _REF_SELECT + " WHERE r.org_id = ? AND r.app = ? AND r.resource = ? AND r.record_id = ? ORDER BY r.id",
                [org_id, app, resource, record_id])
        return [self._ref(r) for r in rows]

    async def remove_ref(self, uow: UnitOfWork, ref_id: str) -> dict[str, Any] | None:
        """Remove one of the org's refs; returns it, or None if there was none. The content
        stays until garbage collection finds it unreferenced past the grace period."""
        if not is_id(ref_id):
            return None
        row = await uow.conn.fetchrow(_REF_SELECT + " WHERE r.org_id = ? AND r.id = ?", [uow.ctx.org_id, ref_id])
        if row is None:
            return None
        await uow.conn.execute("DELETE FROM kernel_blob_ref WHERE org_id = ? AND id = ?", [uow.ctx.org_id, ref_id])
        return self._ref(row)

    async def remove_refs(self, uow: UnitOfWork, *, app: str, resource: str, record_id: str) -> int:
        """Remove every ref a record owns (e.g. when the record is purged)."""
        return await uow.conn.execute(
            "DELETE FROM kernel_blob_ref WHERE org_id = ? AND app = ? AND resource = ? AND record_id = ?",
            [uow.ctx.org_id, app, resource, record_id])

    def _ref(self, row: Any) -> dict[str, Any]:
        ref = dict(zip(_REF_FIELDS, row, strict=True))
        ref["size"] = int(ref["size"])
        ref["created_at"] = _iso(self.db, ref["created_at"])
        return ref

    # -- reading content ----------------------------------------------------------------
    async def stat(self, sha256: str) -> BlobInfo | None:
        async with self.db.reader() as conn:
            row = await conn.fetchrow("SELECT size, content_type FROM kernel_blob WHERE sha256 = ?", [sha256])
        return None if row is None else BlobInfo(sha256, int(row[0]), row[1])

    async def open_range(self, sha256: str, start: int = 0, end: int | None = None, *,
                         verify: bool = False, size: int | None = None) -> AsyncGenerator[bytes, None]:
        """The content's bytes start..end (inclusive; end defaults to the last byte).

        verify=True re-hashes the whole content while it streams and raises BlobCorrupt
        at the end if it differs from its name (whole-content reads only). BlobMissing
        when the store has no such content."""
        if size is None:
            info = await self.stat(sha256)
            if info is None:
                raise BlobMissing(sha256)
            size = info.size
        if end is None:
            end = size - 1
        if start < 0 or end >= size or (start > end and size > 0):
            raise ValueError(f"range {start}-{end} is outside 0-{size - 1}")
        whole = start == 0 and end == size - 1
        if verify and not whole:
            raise ValueError("verify=True needs the whole content")
        h = hashlib.sha256() if verify else None
        if size > 0:
            async for chunk in self.backend.read(sha256, start, end):
                if h is not None:
                    h.update(chunk)
                yield chunk
        if h is not None and h.hexdigest() != sha256:
            log.error("blob content does not match its hash",
                      extra={"fields": {"sha256": sha256, "backend": self.backend.kind}})
            raise BlobCorrupt(sha256)

    async def read_bytes(self, sha256: str, *, verify: bool = True) -> bytes:
        """The whole content in memory (for small blobs only), verified by default."""
        return b"".join([c async for c in self.open_range(sha256, verify=verify)])

    # -- garbage collection -------------------------------------------------------------
    async def collect_garbage(self, grace: timedelta = timedelta(hours=1), *, now: datetime | None = None,
                              batch: int = 500) -> GcReport:
        """Delete content (and its row) that no ref uses and that nobody uploaded within
        `grace`, plus staging files of uploads abandoned for a day. Safe to run in several
        processes at once, and while uploads go on (each blob is locked, re-checked and
        deleted in one transaction; uploads touch the row before storing content)."""
        db = self.db
        cutoff = (now or utcnow()) - grace
        report = GcReport()
        after = ""
        while True:
            async with db.reader() as conn:
                rows = await conn.fetch(
                    "SELECT sha256 FROM kernel_blob b WHERE touched_at < ? AND sha256 > ?"
                    " AND NOT EXISTS (SELECT 1 FROM kernel_blob_ref r WHERE r.sha256 = b.sha256)"
                    " ORDER BY sha256 LIMIT ?", [db.ts(cutoff), after, batch])
            for (sha,) in rows:
                try:
                    size = await self._collect_one(sha, cutoff)
                except Exception:
                    log.exception("blob garbage collection failed", extra={"fields": {"sha256": sha}})
                    report.failed += 1
                    continue
                if size is not None:
                    report.blobs += 1
                    report.bytes += size
            if len(rows) < batch:
                break
            after = rows[-1][0]
        report.staged = await asyncio.to_thread(
            _sweep_staging, self.backend.staging_dir, time.time() - max(grace, STALE_STAGING).total_seconds())
        if report.blobs or report.staged or report.failed:
            log.info("blob garbage collected", extra={"fields": {"blobs": report.blobs, "bytes": report.bytes,
                                                                 "staged": report.staged, "failed": report.failed}})
        return report

    async def _collect_one(self, sha256: str, cutoff: datetime) -> int | None:
        db = self.db
        lock = " FOR UPDATE" if db.dialect == "postgresql" else ""  # SQLite: the transaction locks the file
        async with db.transaction() as conn:
            row = await conn.fetchrow(f"SELECT size FROM kernel_blob WHERE sha256 = ? AND touched_at < ?{lock}",
                                      [sha256, db.ts(cutoff)])
            if row is None:
                return None
            if await conn.fetchval("SELECT 1 FROM kernel_blob_ref WHERE sha256 = ? LIMIT 1", [sha256]):
                return None
            await self.backend.delete(sha256)
            await conn.execute("DELETE FROM kernel_blob WHERE sha256 = ?", [sha256])
        return int(row[0])

    async def close(self) -> None:
        await self.backend.close()


def _create_exclusive(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _write_hashed(f: BinaryIO, h: Any, data: bytes) -> None:
    h.update(data)  # hashlib releases the GIL for large buffers
    f.write(data)


def _sync_close(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


def _sweep_staging(staging: Path, older_than: float) -> int:
    removed = 0
    try:
        entries = list(staging.iterdir())
    except FileNotFoundError:
        return 0
    for p in entries:
        try:
            if p.suffix == ".part" and p.stat().st_mtime < older_than:
                p.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _iso(db: Database, value: Any) -> str:
    from nexus.kernel.jsonutil import iso

    dt = db.read_ts(value)
    return iso(dt) if dt is not None else ""


def store_of(nx: Nexus) -> BlobStore:
    store: BlobStore = nx.blobs  # type: ignore[attr-defined]
    return store


# ============================================================== HTTP


def _filename_from(req: Request) -> str | None:
    raw = req.headers.get("x-filename")
    if raw is None:
        return req.query_params.get("filename")
    with contextlib.suppress(UnicodeError):
        raw = raw.encode("latin-1").decode("utf-8")  # a client that sent raw UTF-8
    return unquote(raw, errors="replace")


async def upload(req: Request) -> Response:
    """Upload a file as the raw request body."""
    from nexus.kernel.http.app import nexus_of
    from nexus.kernel.records import UnitOfWork

    nx = nexus_of(req)
    ctx = await nx.context(req)
    require(ctx.principal, "blobs.files.create")
    store = store_of(nx)
    ctype = req.headers.get("content-type")
    if ctype and ctype.lower().startswith("multipart/"):
        raise Problem(415, "Send the file itself as the request body (its type in Content-Type, its name in "
                           "X-Filename), not a multipart form.")
    declared: int | None = None
    raw_len = req.headers.get("content-length")
    if raw_len is not None:
        try:
            declared = int(raw_len)
        except ValueError:
            raise Problem(400, "Content-Length is not a number.") from None
    expected = req.headers.get("x-content-sha256")
    if expected is not None and not is_sha256(expected.strip().lower()):
        raise Problem(400, "X-Content-SHA256 must be 64 hex digits.",
                      errors=[{"pointer": "/headers/X-Content-SHA256", "detail": "malformed"}])
    info = await store.put_stream(req.stream(), content_type=ctype, declared_size=declared,
                                  expected_sha256=expected.strip().lower() if expected else None)
    async with UnitOfWork(nx.db, ctx) as uow:
        ref = await store.add_ref(uow, info.sha256, app="blobs", resource="files", filename=_filename_from(req),
                                  content_type=info.content_type)
        uow.audit("blobs", "files", ref["id"], "create", after=ref)
    return json_response(ref, 201, headers={"Location": f"/api/v1/blobs/{ref['id']}", "ETag": f'"{ref["sha256"]}"'})


async def _readable_ref(req: Request) -> tuple[Nexus, dict[str, Any]]:
    from nexus.kernel.http.app import nexus_of

    nx = nexus_of(req)
    p = await nx.principal(req)
    ref = await store_of(nx).get_ref(p.org_id, req.path_params["ref_id"])
    # The upload API's own files need blobs.files.read; an app's attachment needs read
    # access to the app's resource that owns it.
    app_owned = ref is not None and ref["app"] != "blobs"
    require(p, f"{ref['app']}.{ref['resource']}.read" if app_owned and ref else "blobs.files.read")
    if ref is None:
        raise not_found("file")
    if app_owned:
        # The owning record's own rules decide too (a private note's files are private).
        owner = nx.all_resources.get(f"{ref['app']}.{ref['resource']}")
        record_id = ref.get("record_id")
        if owner is None or not record_id:
            raise not_found("file")
        sql = f"SELECT 1 FROM {owner.spec.name} WHERE org_id = ? AND id = ?"
        args: list[Any] = [p.org_id, record_id]
        if owner.spec.soft_delete:
            sql += " AND deleted_at IS NULL"
        cond = owner.read_condition(p)
        if cond is not None:
            sql += f" AND ({cond[0]})"
            args += cond[1]
        async with nx.db.reader() as conn:
            if not await conn.fetchval(sql, args):
                raise not_found("file")
    return nx, ref


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=` range as (start, end) inclusive; None to send the whole content (no
    Range, another unit, a malformed one, or several ranges — RFC 9110 lets a server
    ignore Range); 416 Problem when it cannot be satisfied."""
    if not header:
        return None
    unit, eq, spec = header.strip().partition("=")
    if not eq or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    first, last = first.strip(), last.strip()
    if not dash or (first and not first.isdigit()) or (last and not last.isdigit()) or not (first or last):
        return None
    unsatisfiable = Problem(416, f"The range is outside the content (0-{size - 1}).",
                            headers={"Content-Range": f"bytes */{size}"})
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise unsatisfiable
    return start, min(int(last), size - 1) if last else size - 1


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any((t[2:] if t.startswith("W/") else t) == etag for t in tags)


async def download(req: Request) -> Response:
    """Download a file: Range (one range → 206), If-None-Match (→ 304), ETag = SHA-256."""
    nx, ref = await _readable_ref(req)
    size: int = ref["size"]
    etag = f'"{ref["sha256"]}"'
    ctype: str = ref["content_type"]
    inline = ctype.split(";", 1)[0] in INLINE_TYPES and req.query_params.get("download") not in ("1", "true")
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition("inline" if inline else "attachment", ref["filename"]),
    }
    if not ctype.startswith("application/pdf"):
        headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    inm = req.headers.get("if-none-match")
    if inm is not None and _etag_matches(inm, etag):
        return Response(status_code=304, headers=headers)
    rng = None
    if_range = req.headers.get("if-range")
    if if_range is None or if_range.strip() == etag:
        rng = parse_range(req.headers.get("range"), size)
    status = 200
    start, end = 0, size - 1
    if rng is not None:
        start, end = rng
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    headers["Content-Type"] = ctype
    if req.scope["method"] == "HEAD" or size == 0:
        return Response(b"", status_code=status, headers=headers)
    chunks = store_of(nx).open_range(ref["sha256"], start, end, size=size)
    try:
        first = await anext(chunks)  # fail before the headers go out if the content is gone
    except BlobError as exc:
        log.error("blob content unreadable", extra={"fields": {"sha256": ref["sha256"], "error": repr(exc)}})
        raise Problem(500, "The file's content is missing from the store.") from None

    async def body() -> AsyncIterator[bytes]:
        try:
            yield first
            async for chunk in chunks:
                yield chunk
        finally:
            await chunks.aclose()  # a client that went away: close the file or S3 stream now

    return StreamingResponse(body(), status_code=status, headers=headers, media_type=None)


async def delete(req: Request) -> Response:
    """Delete an uploaded file (its content goes at the next garbage collection)."""
    from nexus.kernel.http.app import nexus_of
    from nexus.kernel.records import UnitOfWork

    nx = nexus_of(req)
    ctx = await nx.context(req)
    require(ctx.principal, "blobs.files.delete")
    store = store_of(nx)
    ref = await store.get_ref(ctx.org_id, req.path_params["ref_id"])
    if ref is None:
        raise not_found("file")
    if ref["app"] != "blobs":
        raise Problem(409, f"This file is attached to a {ref['app']} record; remove it there.")
    async with UnitOfWork(nx.db, ctx) as uow:
        removed = await store.remove_ref(uow, ref["id"])
        if removed is None:
            raise not_found("file")
        uow.audit("blobs", "files", ref["id"], "delete", before=removed)
    return Response(status_code=204)


_REF_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "sha256": {"type": "string"}, "size": {"type": "integer"},
        "content_type": {"type": "string"}, "filename": {"type": "string"}, "app": {"type": "string"},
        "resource": {"type": "string"}, "record_id": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"}, "created_by": {"type": ["string", "null"]},
    },
}

ROUTES = [
    RouteDef("POST", "/api/v1/blobs", upload, tags=("blobs",), status=201, summary="Upload a file (raw body)",
             request_schema={"type": "string", "format": "binary"}, request_media="application/octet-stream",
             response_schema=_REF_SCHEMA),
    RouteDef("GET", "/api/v1/blobs/{ref_id}", download, tags=("blobs",), summary="Download a file (ranges, ETag)"),
    RouteDef("DELETE", "/api/v1/blobs/{ref_id}", delete, tags=("blobs",), status=204, summary="Delete a file"),
]


# ============================================================== wiring

GC_JOB = "blobs.gc"
GC_GRACE = timedelta(hours=1)
GC_EVERY = timedelta(days=1)


async def claim_daily_run(db: Database, name: str, every: timedelta = GC_EVERY) -> bool:
    """True for the one process that gets this period's run of `name` (a row of
    kernel_lease whose expiry is the earliest time of the next run)."""
    now = utcnow()
    until = db.ts(now + every)
    async with db.transaction() as conn:
        n = await conn.execute("UPDATE kernel_lease SET holder = ?, expires_at = ? WHERE name = ? AND expires_at < ?",
                               ["blobs", until, name, db.ts(now)])
        if n == 1:
            return True
        if await conn.fetchval("SELECT 1 FROM kernel_lease WHERE name = ?", [name]):
            return False
        await conn.execute("INSERT INTO kernel_lease (name, holder, expires_at) VALUES (?,?,?)", [name, "blobs", until])
        return True


def _schedule_with_jobs(nx: Nexus, store: BlobStore) -> bool:
    """Hand the daily collection to the job queue (kernel/jobs.py: `register` a job type and
    `schedule` it by cron) when this build has one; False when it has none, so that the
    caller runs its own daily loop instead."""
    jobs = getattr(nx, "jobs", None)
    if jobs is None or not hasattr(jobs, "register") or not hasattr(jobs, "schedule"):
        return False

    async def gc_job(_ctx: Any, payload: dict[str, Any]) -> None:
        hours = float(payload.get("grace_hours", GC_GRACE.total_seconds() / 3600))
        await store_of(nx).collect_garbage(timedelta(hours=hours))

    try:
        jobs.register(GC_JOB, gc_job, max_attempts=3, timeout=3600)
        jobs.schedule(GC_JOB, "43 3 * * *", GC_JOB)  # daily, 03:43 UTC
    except Exception:
        log.warning("could not schedule blob GC with the job queue; running it in-process", exc_info=True)
        return False
    return True


def install(nx: Nexus) -> None:
    """Called by Nexus for the `blobs` kernel subsystem: sets nx.blobs, routes and the daily GC."""
    settings = nx.settings
    store = BlobStore(nx.db, backend_from_url(settings.blob_url, settings.data_dir), settings.max_upload_bytes)
    nx.blobs = store  # type: ignore[attr-defined]
    for rd in ROUTES:
        nx.router.add(rd)
    scheduled = _schedule_with_jobs(nx, store)
    state: dict[str, asyncio.Task[None]] = {}

    async def loop() -> None:
        while True:
            try:
                if await claim_daily_run(nx.db, GC_JOB):
                    await store_of(nx).collect_garbage(GC_GRACE)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("blob garbage collection failed")
            await asyncio.sleep(3600)

    async def start() -> None:
        if not scheduled:
            state["gc"] = asyncio.create_task(loop(), name="nexus-blobs-gc")

    async def stop() -> None:
        task = state.pop("gc", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await store.close()

    nx.on("background", start)
    nx.on("shutdown", stop)


# ============================================================== command line


def register_cli(sub: Any) -> None:
    """`nexus blobs gc [--grace-hours H]`."""
    blobs = sub.add_parser("blobs", help="the file store")
    commands = blobs.add_subparsers(dest="blobs_command", required=True)
    gc = commands.add_parser("gc", help="delete stored files that nothing refers to")
    gc.add_argument("--grace-hours", type=float, default=GC_GRACE.total_seconds() / 3600,
                    help="keep unreferenced files uploaded within this many hours (default 1)")
    gc.set_defaults(handler=gc_command)


async def gc_command(settings: Settings, args: Any) -> int:
    from nexus.kernel.db import create_database

    grace = float(getattr(args, "grace_hours", 1.0))
    if grace < 0:
        print("nexus blobs gc: --grace-hours must not be negative")
        return 2
    db = create_database(settings)
    await db.open()
    store = BlobStore(db, backend_from_url(settings.blob_url, settings.data_dir), settings.max_upload_bytes)
    try:
        report = await store.collect_garbage(timedelta(hours=grace))
    finally:
        await store.close()
        await db.close()
    print(f"blobs gc: deleted {report.blobs} blobs ({report.bytes} bytes), {report.staged} abandoned uploads"
          + (f"; {report.failed} could not be deleted (see the log)" if report.failed else ""))
    return 1 if report.failed else 0
