"""SCIM 2.0 service provider (RFC 7643 / RFC 7644) at /scim/v2.

A provisioning client (Okta, Azure AD / Entra ID, OneLogin…) authenticates with a SCIM token
an org admin issued, and acts with that admin's authority, in that org only. SCIM Users are
NEXUS users; SCIM Groups are directory groups whose mapped roles their members hold.

Resources are validated and PATCHed with scim2-models; NEXUS keeps the SCIM attributes it
has no column for (name parts, phone numbers, the enterprise extension…) as JSON, and an
index of every value for filters and sorting (scim_query).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

from pydantic import ValidationError
from scim2_models import (
    Context as ScimContext,
)
from scim2_models import (
    PatchOp,
    ResourceType,
    SCIMException,
)
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.auth import hash_secret
from nexus.kernel.context import Context, Principal
from nexus.kernel.errors import Problem
from nexus.kernel.http.app import client_addr, nexus_of, read_body
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.ids import new_id
from nexus.kernel.jsonutil import dumps, iso, loads, utcnow
from nexus.kernel.permissions import has_permission
from nexus.kernel.records import UnitOfWork

from .. import service as identity
from . import service as directory
from .scim_query import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE,
    ENTERPRISE_SCHEMA,
    GROUP_ATTRS,
    GROUP_SCHEMA,
    USER_ATTRS,
    USER_SCHEMA,
    AttrInfo,
    FilterCompiler,
    GroupModel,
    ScimError,
    Target,
    UserModel,
    index_rows,
    parse_filter,
    sort_expression,
)

MEDIA = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
MAX_COUNT = 500
MAX_BODY = 1_000_000
BASE = "/scim/v2"
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")

USER_TARGET = Target("User", "d.id", USER_ATTRS, {
    "id": ("d.id", AttrInfo("string", False, True)),
    "username": ("d.user_name_ci", AttrInfo("string", False, False)),
    "externalid": ("d.external_id", AttrInfo("string", False, True)),
    "active": ("(CASE WHEN u.status = 'deactivated' THEN 'false' ELSE 'true' END)", AttrInfo("boolean", False, True)),
})
GROUP_TARGET = Target("Group", "g.id", GROUP_ATTRS, {
    "id": ("g.id", AttrInfo("string", False, True)),
    "displayname": ("g.display_name_ci", AttrInfo("string", False, False)),
    "externalid": ("g.external_id", AttrInfo("string", False, True)),
})


# -- responses -----------------------------------------------------------------------------


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type=MEDIA)


def error_response(status: int, detail: str, scim_type: str | None = None,
                   headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return scim_response(body, status, headers)


Handler = Callable[[Request, Context], Awaitable[Response]]


def endpoint(fn: Handler, *, auth: bool = True) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate the SCIM token and answer every error in the SCIM error schema."""

    async def run(req: Request) -> Response:
        ctx: Context | None = None
        try:
            ctx = await authenticate(req)
            return await fn(req, ctx)
        except ScimError as exc:
            if ctx is not None and exc.scim_type == "invalidFilter":
                await _audit_refused_filter(req, ctx, exc)
            return error_response(exc.status, exc.detail, exc.scim_type, getattr(exc, "headers", None))
        except SCIMException as exc:
            return error_response(exc.status, exc.detail, exc.scim_type or None)
        except ValidationError as exc:
            return error_response(400, _validation_detail(exc), _scim_type_of(exc))
        except Problem as exc:
            scim_type = {409: "uniqueness"}.get(exc.status)
            if exc.status == 422:
                detail = "; ".join(f"{e.get('pointer', '')}: {e.get('detail', '')}" for e in (exc.errors or [])) \
                    or exc.detail
                return error_response(400, detail, "invalidValue")
            return error_response(exc.status, exc.detail, scim_type, exc.headers or None)

    run.__doc__ = fn.__doc__
    return run


async def _audit_refused_filter(req: Request, ctx: Context, exc: ScimError) -> None:
    """A filter that does not parse is often a probe (SQL injection attempts look like that):
    keep it in the org's audit trail."""
    text = req.query_params.get("filter") or req.scope.get("nexus.scim.filter") or ""
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        uow.audit("identity", "scim", None, "filter_refused", None,
                  {"filter": str(text)[:500], "detail": exc.detail[:300], "path": req.url.path})


def _validation_detail(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors(include_url=False, include_input=False)[:5]:
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    return "; ".join(parts) or "The resource is invalid."


def _scim_type_of(exc: ValidationError) -> str:
    for e in exc.errors(include_url=False, include_input=False):
        ctx = e.get("ctx") or {}
        if isinstance(ctx, dict) and ctx.get("scim_type"):
            return str(ctx["scim_type"])
    return "invalidValue"


# -- authentication --------------------------------------------------------------------------


async def authenticate(req: Request) -> Context:
    """The SCIM token's org and its issuer's authority (a token never exceeds its issuer:
    if the issuer loses identity.users.update or is deactivated, the token stops working)."""
    header = req.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="nexus-scim"'}
    if scheme.lower() != "bearer" or not credential.startswith(directory.SCIM_TOKEN_PREFIX):
        raise ScimErrorWithHeaders(401, "A SCIM bearer token is required.", headers=challenge)
    prefix, _, secret = credential.strip()[len(directory.SCIM_TOKEN_PREFIX):].partition("_")
    nx = nexus_of(req)
    db = nx.db
    async with db.reader() as conn:
        row = await conn.fetchrow(
            "SELECT t.id, t.org_id, t.created_by, t.secret_hash, t.expires_at, t.revoked_at, t.last_used_at,"
            " u.status, u.deleted_at, t.default_roles FROM identity_scim_token t"
            " JOIN identity_user u ON u.id = t.created_by WHERE t.prefix = ? AND t.deleted_at IS NULL",
            [prefix[:32]])
        if row is None or not secret or not secrets.compare_digest(row[3], hash_secret(secret)):
            raise ScimErrorWithHeaders(401, "The SCIM token is not valid.", headers=challenge)
        token_id, org_id, issuer, _h, expires_at, revoked_at, last_used, status, deleted_at, default_roles = row
        now = utcnow()
        exp = db.read_ts(expires_at)
        if revoked_at is not None or (exp is not None and exp < now):
            raise ScimErrorWithHeaders(401, "The SCIM token has been revoked or has expired.", headers=challenge)
        if status != "active" or deleted_at is not None:
            raise ScimErrorWithHeaders(401, "The SCIM token's issuer is no longer active.", headers=challenge)
        perms, roles = await identity.permissions_of(conn, org_id, issuer)
    principal = Principal(user_id=issuer, org_id=org_id, kind="scim", permissions=perms, roles=roles,
                          api_key_id=token_id)
    if not has_permission(principal, "identity.users.update"):
        raise ScimError(403, "The SCIM token's issuer may no longer manage users.")
    last = db.read_ts(last_used)
    if last is None or (now - last).total_seconds() > 60:
        async with db.transaction() as tx:
            await tx.execute("UPDATE identity_scim_token SET last_used_at = ? WHERE id = ?", [db.ts(now), token_id])
    req.scope["nexus.scim.default_roles"] = directory._json_list(default_roles)
    return Context(principal, req.scope.get("nexus.request_id"), client_addr(req))


class ScimErrorWithHeaders(ScimError):
    def __init__(self, status: int, detail: str, scim_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, detail, scim_type)
        self.headers = headers or {}


async def _json_body(req: Request) -> dict[str, Any]:
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in (MEDIA, "application/json"):
        raise ScimError(415, "Send the body as application/scim+json.")
    body = await read_body(req, MAX_BODY)
    try:
        data = loads(body)
    except ValueError:
        raise ScimError(400, "The body is not valid JSON.", "invalidSyntax") from None
    if not isinstance(data, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    return data


def _base_url(req: Request) -> str:
    host = req.headers.get("host") or "localhost"
    return f"{req.url.scheme}://{host}{BASE}"


def _ts(db: Any, value: Any) -> str:
    dt = db.read_ts(value)
    return iso(dt) if dt is not None else ""


# -- discovery -------------------------------------------------------------------------------


async def service_provider_config(req: Request, ctx: Context) -> Response:
    """What this service provider supports (RFC 7643 §5)."""
    return scim_response({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://nexus.dev/docs/apps/identity#directory-ldapad-sync-and-scim-20",
        "patch": {"supported": True},
        "bulk": {"supported": True, "maxOperations": MAX_BULK_OPERATIONS, "maxPayloadSize": MAX_BODY},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": [{
            "type": "oauthbearertoken", "name": "SCIM token", "primary": True,
            "description": "A bearer token an org admin issues under Identity → SCIM tokens.",
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": _base_url(req) + "/ServiceProviderConfig"},
    })


def _resource_types(req: Request) -> list[dict[str, Any]]:
    out = []
    for model, name in ((UserModel, "User"), (GroupModel, "Group")):
        rt = ResourceType.from_resource(model).model_dump(scim_ctx=ScimContext.RESOURCE_QUERY_RESPONSE)
        rt["meta"] = {"resourceType": "ResourceType", "location": f"{_base_url(req)}/ResourceTypes/{name}"}
        out.append(rt)
    return out


def _schemas(req: Request) -> list[dict[str, Any]]:
    out = []
    for s in (USER_SCHEMA, ENTERPRISE_SCHEMA, GROUP_SCHEMA):
        s = dict(s)
        s["meta"] = {"resourceType": "Schema", "location": f"{_base_url(req)}/Schemas/{s['id']}"}
        out.append(s)
    return out


def _list(items: list[dict[str, Any]], total: int | None = None, start: int = 1) -> dict[str, Any]:
    return {"schemas": [LIST_SCHEMA], "totalResults": len(items) if total is None else total,
            "startIndex": start, "itemsPerPage": len(items), "Resources": items}


async def resource_types(req: Request, ctx: Context) -> Response:
    """The resource types: User (with the enterprise extension) and Group."""
    if req.query_params.get("filter"):
        raise ScimError(403, "Filtering discovery endpoints is not supported.")
    return scim_response(_list(_resource_types(req)))


async def resource_type(req: Request, ctx: Context) -> Response:
    for rt in _resource_types(req):
        if rt["id"] == req.path_params["id"]:
            return scim_response(rt)
    raise ScimError(404, "No such resource type.")


async def schemas(req: Request, ctx: Context) -> Response:
    """The schemas of User, the enterprise User extension and Group."""
    if req.query_params.get("filter"):
        raise ScimError(403, "Filtering discovery endpoints is not supported.")
    return scim_response(_list(_schemas(req)))


async def schema(req: Request, ctx: Context) -> Response:
    for s in _schemas(req):
        if s["id"] == req.path_params["id"]:
            return scim_response(s)
    raise ScimError(404, "No such schema.")


# -- representations -------------------------------------------------------------------------

_ACCOUNT_COLS = "d.id, d.user_name, d.external_id, d.data, d.version, d.created_at, d.updated_at"
_USER_COLS = "u.email, u.name, u.status, u.version, u.updated_at"


async def _users(conn: Any, db: Any, org_id: str, ids: list[str], base: str) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await conn.fetch(
        f"SELECT {_ACCOUNT_COLS}, {_USER_COLS} FROM identity_directory_account d JOIN identity_user u ON u.id = d.id"
        f" WHERE d.org_id = ? AND d.source = 'scim' AND u.deleted_at IS NULL AND d.id IN ({marks})", [org_id, *ids])
    groups: dict[str, list[dict[str, Any]]] = {}
    for uid, gid, name in await conn.fetch(
            "SELECT m.user_id, g.id, g.display_name FROM identity_directory_member m JOIN identity_directory_group g"
            f" ON g.id = m.group_id WHERE m.org_id = ? AND g.deleted_at IS NULL AND m.user_id IN ({marks})"
            " ORDER BY g.display_name_ci", [org_id, *ids]):
        groups.setdefault(uid, []).append({"value": gid, "$ref": f"{base}/Groups/{gid}", "display": name,
                                           "type": "direct"})
    out = {}
    for (uid, user_name, external_id, data, version, created, updated, _email, _name, status, u_version,
         u_updated) in rows:
        data = data if isinstance(data, dict) else loads(data) if data else {}
        rep: dict[str, Any] = {"schemas": [CORE_USER] + ([ENTERPRISE] if ENTERPRISE in data else []), "id": uid}
        if external_id:
            rep["externalId"] = external_id
        rep["userName"] = user_name
        rep.update(data)
        if data.get(_ACTIVE_UNSET) != _status_class(status):
            rep["active"] = status != "deactivated"
        rep.pop(_ACTIVE_UNSET, None)
        if groups.get(uid):
            rep["groups"] = groups[uid]
        modified = max(db.read_ts(updated), db.read_ts(u_updated))
        rep["meta"] = {"resourceType": "User", "created": _ts(db, created), "lastModified": iso(modified),
                       "location": f"{base}/Users/{uid}", "version": f'W/"{u_version}-{version}"'}
        out[uid] = rep
    return out


async def _groups(conn: Any, db: Any, org_id: str, ids: list[str], base: str,
                  with_members: bool = True) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await conn.fetch(
        "SELECT id, display_name, external_id, data, version, created_at, updated_at FROM identity_directory_group"
        f" WHERE org_id = ? AND source = 'scim' AND deleted_at IS NULL AND id IN ({marks})", [org_id, *ids])
    members: dict[str, list[dict[str, Any]]] = {}
    if with_members:
        for gid, mid, uname, gname, shown in await conn.fetch(
                "SELECT m.group_id, m.user_id, d.user_name, g.display_name, m.display FROM identity_directory_member m"
                " LEFT JOIN identity_directory_account d ON d.id = m.user_id"
                " LEFT JOIN identity_directory_group g ON g.id = m.user_id AND g.deleted_at IS NULL"
                f" WHERE m.org_id = ? AND m.group_id IN ({marks}) ORDER BY m.user_id", [org_id, *ids]):
            kind = "Group" if gname is not None else "User"
            members.setdefault(gid, []).append({"value": mid, "$ref": f"{base}/{kind}s/{mid}",
                                                "display": shown or (gname if gname is not None else uname),
                                                "type": kind})
    out = {}
    for gid, name, external_id, data, version, created, updated in rows:
        data = data if isinstance(data, dict) else loads(data) if data else {}
        rep: dict[str, Any] = {"schemas": [CORE_GROUP], "id": gid}
        if external_id:
            rep["externalId"] = external_id
        rep["displayName"] = name
        rep.update(data)
        if members.get(gid):
            rep["members"] = members[gid]
        rep["meta"] = {"resourceType": "Group", "created": _ts(db, created), "lastModified": _ts(db, updated),
                       "location": f"{base}/Groups/{gid}", "version": f'W/"{version}"'}
        out[gid] = rep
    return out


def _project(rep: dict[str, Any], req: Request) -> dict[str, Any]:
    """`attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5); id and schemas always stay."""
    attrs = req.query_params.get("attributes")
    excluded = req.query_params.get("excludedAttributes")
    if not attrs and not excluded:
        return rep

    def names(text: str) -> list[tuple[str, str | None]]:
        out = []
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            low = part.lower()
            for core in (CORE_USER.lower() + ":", CORE_GROUP.lower() + ":"):
                if low.startswith(core):
                    low = low[len(core):]
            if low.startswith("urn:"):
                urn, _, attr = low.rpartition(":")
                out.append((urn, attr or None) if "." not in attr else (urn, attr))
            else:
                top, _, sub = low.partition(".")
                out.append((top, sub or None))
        return out

    keys = {k.lower(): k for k in rep}
    if attrs:
        out: dict[str, Any] = {"schemas": rep["schemas"], "id": rep["id"]}
        for top, sub in names(attrs):
            if top.startswith("urn:") and top in keys:
                ext = rep[keys[top]]
                if sub is None:
                    out[keys[top]] = ext
                else:
                    sk = {k.lower(): k for k in ext}
                    if sub in sk:
                        out.setdefault(keys[top], {})[sk[sub]] = ext[sk[sub]]
                continue
            if top not in keys:
                continue
            key = keys[top]
            value = rep[key]
            if sub is None or not isinstance(value, (dict, list)):
                out[key] = value
            elif isinstance(value, dict):
                sk = {k.lower(): k for k in value}
                if sub in sk:
                    out.setdefault(key, {})[sk[sub]] = value[sk[sub]]
            else:
                picked = []
                for entry in value:
                    sk = {k.lower(): k for k in entry}
                    if sub in sk:
                        picked.append({sk[sub]: entry[sk[sub]]})
                out[key] = picked
        return out
    out = dict(rep)
    for top, sub in names(excluded or ""):
        if top in ("id", "schemas") or top not in keys:
            continue
        key = keys[top]
        if sub is None:
            out.pop(key, None)
        elif isinstance(out[key], dict):
            out[key] = {k: v for k, v in out[key].items() if k.lower() != sub}
        elif isinstance(out[key], list):
            out[key] = [{k: v for k, v in e.items() if k.lower() != sub} for e in out[key] if isinstance(e, dict)]
    return out


# -- queries ---------------------------------------------------------------------------------


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ScimError(400, f"{name} must be an integer.", "invalidValue") from None


async def _query(req: Request, ctx: Context, rtype: str, params: dict[str, Any]) -> Response:
    nx = nexus_of(req)
    db = nx.db
    target = USER_TARGET if rtype == "User" else GROUP_TARGET
    start = max(_int_param(params.get("startIndex"), "startIndex") or 1, 1)
    count = _int_param(params.get("count"), "count")
    count = MAX_COUNT if count is None else min(max(count, 0), MAX_COUNT)
    if rtype == "User":
        frm = ("identity_directory_account d JOIN identity_user u ON u.id = d.id"
               " WHERE d.org_id = ? AND d.source = 'scim' AND u.deleted_at IS NULL")
    else:
        frm = "identity_directory_group g WHERE g.org_id = ? AND g.source = 'scim' AND g.deleted_at IS NULL"
    args: list[Any] = [ctx.org_id]
    text = params.get("filter")
    if text:
        compiler = FilterCompiler(target)
        frm += " AND " + compiler.compile(parse_filter(str(text), rtype))
        args += compiler.params
    order = f"{target.id_column} ASC"
    order_args: list[Any] = []
    sort_by = params.get("sortBy")
    if sort_by:
        expr, order_args = sort_expression(target, str(sort_by))
        direction = "DESC" if str(params.get("sortOrder") or "ascending").lower() == "descending" else "ASC"
        if str(params.get("sortOrder") or "ascending").lower() not in ("ascending", "descending"):
            raise ScimError(400, "sortOrder is ascending or descending.", "invalidValue")
        order = f"CASE WHEN {expr} IS NULL THEN 1 ELSE 0 END, {expr} {direction}, {target.id_column} ASC"
        order_args = order_args * 2
    async with db.reader() as conn:
        total = int(await conn.fetchval(f"SELECT count(*) FROM {frm}", args))
        ids: list[str] = []
        if count:
            rows = await conn.fetch(f"SELECT {target.id_column} FROM {frm} ORDER BY {order} LIMIT ? OFFSET ?",
                                    [*args, *order_args, count, start - 1])
            ids = [r[0] for r in rows]
        base = _base_url(req)
        reps = await (_users(conn, db, ctx.org_id, ids, base) if rtype == "User"
                      else _groups(conn, db, ctx.org_id, ids, base))
    items = [_project(reps[i], req) for i in ids if i in reps]
    return scim_response(_list(items, total, start))


async def list_users(req: Request, ctx: Context) -> Response:
    """Users provisioned through SCIM: filter, sortBy/sortOrder, startIndex/count."""
    return await _query(req, ctx, "User", dict(req.query_params))


async def list_groups(req: Request, ctx: Context) -> Response:
    """Groups provisioned through SCIM."""
    return await _query(req, ctx, "Group", dict(req.query_params))


async def _search(req: Request, ctx: Context, rtype: str) -> Response:
    body = await _json_body(req)
    if SEARCH_SCHEMA not in (body.get("schemas") or []):
        raise ScimError(400, f"A search request names the schema {SEARCH_SCHEMA}.", "invalidSyntax")
    params = {k: v for k, v in body.items() if k in ("filter", "sortBy", "sortOrder", "startIndex", "count")}
    req.scope["nexus.scim.filter"] = params.get("filter")
    for k in ("startIndex", "count"):
        if k in params:
            params[k] = str(params[k])
    for k in ("attributes", "excludedAttributes"):
        if isinstance(body.get(k), list):
            req.scope["query_string"] = (req.scope.get("query_string", b"") + b"&" + k.encode() + b"="
                                         + ",".join(body[k]).encode())
    return await _query(req, ctx, rtype, params)


async def search_users(req: Request, ctx: Context) -> Response:
    """POST /Users/.search (RFC 7644 §3.4.3)."""
    return await _search(req, ctx, "User")


async def search_groups(req: Request, ctx: Context) -> Response:
    return await _search(req, ctx, "Group")


async def _one(req: Request, ctx: Context, rtype: str, rid: str) -> dict[str, Any]:
    nx = nexus_of(req)
    async with nx.db.reader() as conn:
        reps = await (_users(conn, nx.db, ctx.org_id, [rid], _base_url(req)) if rtype == "User"
                      else _groups(conn, nx.db, ctx.org_id, [rid], _base_url(req)))
    if rid not in reps:
        raise ScimError(404, f"No such {rtype}.")
    return reps[rid]


def _etag_headers(rep: dict[str, Any], location: bool = False) -> dict[str, str]:
    h = {"ETag": rep["meta"]["version"]}
    if location:
        h["Location"] = rep["meta"]["location"]
    return h


def _check_if_match(req: Request, rep: dict[str, Any]) -> None:
    wanted = req.headers.get("if-match")
    if wanted is None or wanted.strip() == "*":
        return
    tags = [t.strip() for t in wanted.split(",")]
    current = rep["meta"]["version"]
    norm = {t[2:] if t.startswith("W/") else t for t in tags}
    if (current[2:] if current.startswith("W/") else current) not in norm:
        raise ScimError(412, "The resource changed since that version; fetch it again.")


async def get_user(req: Request, ctx: Context) -> Response:
    rep = await _one(req, ctx, "User", req.path_params["id"])
    if _not_modified(req, rep):
        return Response(status_code=304, headers=_etag_headers(rep))
    return scim_response(_project(rep, req), headers=_etag_headers(rep))


async def get_group(req: Request, ctx: Context) -> Response:
    rep = await _one(req, ctx, "Group", req.path_params["id"])
    if _not_modified(req, rep):
        return Response(status_code=304, headers=_etag_headers(rep))
    return scim_response(_project(rep, req), headers=_etag_headers(rep))


def _not_modified(req: Request, rep: dict[str, Any]) -> bool:
    tag = req.headers.get("if-none-match")
    if not tag:
        return False
    current = rep["meta"]["version"]
    return any(t.strip().removeprefix("W/") == current.removeprefix("W/") for t in tag.split(","))


# -- writing users ---------------------------------------------------------------------------

_READONLY_KEYS = ("schemas", "id", "meta", "groups", "userName", "externalId", "active", "password")
# A client that removes `active` leaves the user as they are; the attribute then reads as
# unset (shown again once the user is deactivated, or the client sets it).
_ACTIVE_UNSET = "~activeUnset"


def _status_class(status: str) -> str:
    return "inactive" if status == "deactivated" else "active"


async def _note_active(uow: UnitOfWork, uid: str, unset: bool) -> None:
    """Remember that the client left `active` unset, and in which state the user was then:
    a later change of state in NEXUS shows `active` again."""
    if not unset:
        return
    record = await uow.require(identity.USER, uid)
    acct = await uow.require(directory.ACCOUNT, uid)
    data = dict(acct["data"] or {})
    data[_ACTIVE_UNSET] = _status_class(record["status"])
    await uow.conn.execute("UPDATE identity_directory_account SET data = ? WHERE id = ?", [uow.db.json(data), uid])


def _user_payload(model: Any) -> tuple[dict[str, Any], str | None]:
    """(stored data, new password) from a validated scim2-models User."""
    password = getattr(model, "password", None)
    dump = model.model_dump(scim_ctx=ScimContext.RESOURCE_QUERY_RESPONSE)
    data = {k: v for k, v in dump.items() if k not in _READONLY_KEYS}
    ext = data.get(ENTERPRISE)
    if isinstance(ext, dict):
        ext = {k: v for k, v in ext.items() if k != "schemas"}
        if ext:
            data[ENTERPRISE] = ext
        else:
            data.pop(ENTERPRISE)
    return data, password


def _nexus_email(user_name: str, data: dict[str, Any], user_id: str) -> str:
    emails = [e for e in data.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    chosen = next((e for e in emails if e.get("primary")), None) or \
        next((e for e in emails if e.get("type") == "work"), None) or (emails[0] if emails else None)
    for cand in ((chosen or {}).get("value"), user_name):
        if isinstance(cand, str) and len(cand) <= 320 and _EMAIL.match(cand):
            return cand.lower()
    # No address to sign in with: a reserved one (RFC 2606 .invalid) that reaches nobody.
    return f"scim-{user_id.lower()}@users.invalid"


def _nexus_name(user_name: str, data: dict[str, Any]) -> str:
    name = data.get("name") if isinstance(data.get("name"), dict) else {}
    assert isinstance(name, dict)
    parts = " ".join(p for p in (name.get("givenName"), name.get("familyName")) if isinstance(p, str) and p)
    for cand in (data.get("displayName"), name.get("formatted"), parts, user_name):
        if isinstance(cand, str) and cand.strip():
            return cand.strip()[:200]
    return user_name[:200]


def _validate_user(body: dict[str, Any], ctx: ScimContext) -> Any:
    try:
        model = UserModel.model_validate(body, scim_ctx=ctx)
    except ValidationError as exc:
        raise ScimError(400, _validation_detail(exc), _scim_type_of(exc)) from None
    if not model.user_name or not str(model.user_name).strip():
        raise ScimError(400, "userName is required.", "invalidValue")
    if len(model.user_name) > 320:
        raise ScimError(400, "userName is longer than 320 characters.", "invalidValue")
    if model.external_id is not None and len(model.external_id) > 500:
        raise ScimError(400, "externalId is longer than 500 characters.", "invalidValue")
    return model


async def _reindex(uow: UnitOfWork, rtype: str, rid: str, rep: dict[str, Any]) -> None:
    await uow.conn.execute("DELETE FROM identity_scim_attr WHERE resource_id = ?", [rid])
    rows = index_rows(rep, USER_ATTRS if rtype == "User" else GROUP_ATTRS)
    if rows:
        await uow.conn.executemany(
            "INSERT INTO identity_scim_attr (org_id, resource_id, rtype, path, item, val, val_ci, num)"
            " VALUES (?,?,?,?,?,?,?,?)", [(uow.ctx.org_id, rid, rtype, *r) for r in rows])


async def _user_rep_in(uow: UnitOfWork, req: Request, rid: str) -> dict[str, Any]:
    reps = await _users(uow.conn, uow.db, uow.ctx.org_id, [rid], _base_url(req))
    if rid not in reps:
        raise ScimError(404, "No such User.")
    return reps[rid]


async def _taken_user_name(uow: UnitOfWork, user_name: str, except_id: str | None) -> None:
    found = await uow.conn.fetchval(
        "SELECT id FROM identity_directory_account WHERE org_id = ? AND source = 'scim' AND user_name_ci = ?",
        [uow.ctx.org_id, user_name.lower()])
    if found is not None and found != except_id:
        raise ScimError(409, f"A user with userName {user_name!r} exists.", "uniqueness")


async def _unlink(uow: UnitOfWork, uid: str) -> None:
    await uow.conn.execute("DELETE FROM identity_directory_account WHERE org_id = ? AND id = ? AND source = 'scim'",
                           [uow.ctx.org_id, uid])
    await uow.conn.execute("DELETE FROM identity_scim_attr WHERE resource_id = ?", [uid])


async def _forget_deleted(uow: UnitOfWork, user_name: str) -> None:
    """A user an admin deleted in NEXUS is gone for SCIM too: their userName is free again."""
    rows = await uow.conn.fetch(
        "SELECT d.id FROM identity_directory_account d JOIN identity_user u ON u.id = d.id WHERE d.org_id = ?"
        " AND d.source = 'scim' AND d.user_name_ci = ? AND u.deleted_at IS NOT NULL",
        [uow.ctx.org_id, user_name.lower()])
    for (uid,) in rows:
        await _unlink(uow, uid)


async def _email_owner(uow: UnitOfWork, email: str) -> dict[str, Any] | None:
    found = await uow.find(identity.USER, {"email": email}, include_deleted=True)
    return found[0] if found else None


async def create_user(req: Request, ctx: Context) -> Response:
    """Provision a user. A NEXUS user with the same address that no directory manages yet is
    taken over (linked) instead of duplicated, as Okta and Azure AD expect."""
    model = _validate_user(await _json_body(req), ScimContext.RESOURCE_CREATION_REQUEST)
    data, password = _user_payload(model)
    user_name = model.user_name.strip()
    users = identity.UserService.instance()
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        await _forget_deleted(uow, user_name)
        await _taken_user_name(uow, user_name, None)
        uid = new_id()
        email = _nexus_email(user_name, data, uid)
        existing = await _email_owner(uow, email)
        if existing is not None:
            if existing["deleted_at"] is not None:
                await _unlink(uow, existing["id"])  # deleted in NEXUS: the link went with them
            if await uow.get(directory.ACCOUNT, existing["id"]) is not None:
                raise ScimError(409, f"A user with the address {email!r} is managed by another directory.",
                                "uniqueness")
            await identity._may_manage(uow, existing["id"])
            uid = existing["id"]
            if existing["deleted_at"] is not None:
                await users.restore(uow, uid)
            record = await uow.require(identity.USER, uid)
            record = await users.update(uow, uid, {"name": _nexus_name(user_name, data)})
            uow.audit("identity", "users", uid, "directory_linked", None, {"source": "scim", "userName": user_name})
        else:
            roles = req.scope.get("nexus.scim.default_roles") or ["member"]
            roles = [r["name"] for r in await uow.find(identity.ROLE, {}) if r["name"] in roles]
            record = await users.create(uow, {"id": uid, "email": email, "name": _nexus_name(user_name, data),
                                              "password": None, "roles": roles, "timezone": "UTC"})
        await uow.insert(directory.ACCOUNT, {
            "id": uid, "source": "scim", "user_name": user_name, "user_name_ci": user_name.lower(),
            "external_id": model.external_id, "data": data, "granted_roles": [], "last_seen_at": uow.now})
        await _apply_status(uow, record, model.active, password)
        await _note_active(uow, uid, model.active is None)
        rep = await _user_rep_in(uow, req, uid)
        await _reindex(uow, "User", uid, rep)
    return scim_response(rep, 201, _etag_headers(rep, location=True))


async def _apply_status(uow: UnitOfWork, record: dict[str, Any], active: bool | None,
                        password: str | None) -> None:
    users = identity.UserService.instance()
    if password is not None:
        if not 8 <= len(password) <= 1024:
            raise ScimError(400, "The password must be 8 to 1024 characters.", "invalidValue")
        record = await users.set_password(uow, record, SimpleNamespace(password=password))
    if active is False and record["status"] != "deactivated":
        await users.deactivate(uow, record, None)
    elif active is True and record["status"] == "deactivated":
        await users.reactivate(uow, record, None)


async def _write_user(uow: UnitOfWork, req: Request, uid: str, model: Any) -> dict[str, Any]:
    """Make the stored user match a full representation (PUT, or PATCH's result)."""
    data, password = _user_payload(model)
    user_name = model.user_name.strip()
    await _taken_user_name(uow, user_name, uid)
    users = identity.UserService.instance()
    record = await uow.require(identity.USER, uid)
    email = _nexus_email(user_name, data, uid)
    changes: dict[str, Any] = {"name": _nexus_name(user_name, data)}
    if email != record["email"]:
        other = await _email_owner(uow, email)
        if other is not None and other["id"] != uid:
            raise ScimError(409, f"Another user has the address {email!r}.", "uniqueness")
        changes["email"] = email
    if any(record.get(k) != v for k, v in changes.items()):
        await identity._may_manage(uow, uid)
        record = await users.update(uow, uid, changes)
    await uow.update(directory.ACCOUNT, uid, {
        "user_name": user_name, "user_name_ci": user_name.lower(), "external_id": model.external_id,
        "data": data, "last_seen_at": uow.now})
    await _apply_status(uow, record, model.active, password)
    await _note_active(uow, uid, model.active is None)
    rep = await _user_rep_in(uow, req, uid)
    await _reindex(uow, "User", uid, rep)
    return rep


async def replace_user(req: Request, ctx: Context) -> Response:
    """PUT: the representation replaces the user's SCIM attributes."""
    body = await _json_body(req)
    uid = req.path_params["id"]
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        current = await _user_rep_in(uow, req, uid)
        _check_if_match(req, current)
        model = _validate_user(body, ScimContext.RESOURCE_REPLACEMENT_REQUEST)
        if model.id is not None and model.id != uid:
            raise ScimError(400, "id cannot change.", "mutability")
        rep = await _write_user(uow, req, uid, model)
    return scim_response(rep, headers=_etag_headers(rep))


def _patched(model_cls: Any, current: dict[str, Any], body: dict[str, Any]) -> tuple[Any, bool]:
    try:
        op = PatchOp[model_cls].model_validate(body, scim_ctx=ScimContext.RESOURCE_PATCH_REQUEST)
    except ValidationError as exc:
        raise ScimError(400, _validation_detail(exc), _scim_type_of(exc)) from None
    try:
        obj = model_cls.model_validate(current, scim_ctx=ScimContext.RESOURCE_QUERY_RESPONSE)
    except ValidationError as exc:  # stored data no longer fits the model: refuse rather than guess
        raise ScimError(500, "The stored resource cannot be patched: " + _validation_detail(exc)) from None
    changed = op.patch(obj)
    return obj, changed


async def patch_user(req: Request, ctx: Context) -> Response:
    """PATCH (RFC 7644 §3.5.2): add, replace and remove, with paths, value filters and the
    path-less forms Azure AD and Okta send (`{"op": "Replace", "value": {"active": false}}`)."""
    body = _azure_compat(await _json_body(req))
    uid = req.path_params["id"]
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        current = await _user_rep_in(uow, req, uid)
        _check_if_match(req, current)
        obj, changed = _patched(UserModel, current, body)
        if not changed and getattr(obj, "password", None) is None:
            return scim_response(current, headers=_etag_headers(current))
        if not obj.user_name:
            raise ScimError(400, "userName cannot be removed.", "mutability")
        rep = await _write_user(uow, req, uid, obj)
    return scim_response(rep, headers=_etag_headers(rep))


def _azure_compat(body: dict[str, Any]) -> dict[str, Any]:
    """Azure AD sends booleans as strings ("False") in path-less replaces; read them as booleans."""
    ops = body.get("Operations")
    if not isinstance(ops, list):
        return body
    for op in ops:
        if not isinstance(op, dict):
            continue
        value = op.get("value")
        if isinstance(value, str) and str(op.get("path", "")).lower() == "active" \
                and value.lower() in ("true", "false"):
            op["value"] = value.lower() == "true"
        if isinstance(value, dict):
            for k, v in list(value.items()):
                if k.lower() == "active" and isinstance(v, str) and v.lower() in ("true", "false"):
                    value[k] = v.lower() == "true"
    return body


async def delete_user(req: Request, ctx: Context) -> Response:
    """DELETE: the user is deleted in NEXUS (restorable by an admin, sessions ended) and is
    gone from SCIM. Okta and Azure AD deactivate with `active: false` first; that keeps the
    user and only stops them signing in."""
    uid = req.path_params["id"]
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        current = await _user_rep_in(uow, req, uid)
        _check_if_match(req, current)
        await identity.UserService.instance().delete(uow, uid)
        groups = [r[0] for r in await uow.conn.fetch(
            "SELECT group_id FROM identity_directory_member WHERE org_id = ? AND user_id = ?", [ctx.org_id, uid])]
        await uow.conn.execute("DELETE FROM identity_directory_member WHERE org_id = ? AND user_id = ?",
                               [ctx.org_id, uid])
        for gid in groups:
            await _recount(uow, gid)
        await uow.conn.execute("DELETE FROM identity_directory_account WHERE id = ?", [uid])
        await uow.conn.execute("DELETE FROM identity_scim_attr WHERE resource_id = ?", [uid])
        uow.audit("identity", "users", uid, "directory_unlinked", None, {"source": "scim"})
    return Response(status_code=204)


async def _recount(uow: UnitOfWork, gid: str) -> None:
    n = await uow.conn.fetchval("SELECT count(*) FROM identity_directory_member WHERE org_id = ? AND group_id = ?",
                                [uow.ctx.org_id, gid])
    await uow.conn.execute("UPDATE identity_directory_group SET member_count = ?, version = version + 1"
                           " WHERE id = ?", [int(n), gid])


# -- writing groups --------------------------------------------------------------------------


def _validate_group(body: dict[str, Any], ctx: ScimContext) -> Any:
    try:
        model = GroupModel.model_validate(body, scim_ctx=ctx)
    except ValidationError as exc:
        raise ScimError(400, _validation_detail(exc), _scim_type_of(exc)) from None
    if not model.display_name or not model.display_name.strip():
        raise ScimError(400, "displayName is required.", "invalidValue")
    if len(model.display_name) > 500:
        raise ScimError(400, "displayName is longer than 500 characters.", "invalidValue")
    return model


async def _member_ids(uow: UnitOfWork, model: Any, self_id: str | None) -> list[str]:
    wanted = list(dict.fromkeys(m.value for m in (model.members or []) if m.value))
    if not wanted:
        return []
    if self_id in wanted:
        raise ScimError(400, "A group cannot be its own member.", "invalidValue")
    marks = ",".join("?" * len(wanted))
    found = {r[0] for r in await uow.conn.fetch(
        f"SELECT d.id FROM identity_directory_account d JOIN identity_user u ON u.id = d.id WHERE d.org_id = ?"
        f" AND d.source = 'scim' AND u.deleted_at IS NULL AND d.id IN ({marks})", [uow.ctx.org_id, *wanted])}
    found |= {r[0] for r in await uow.conn.fetch(
        f"SELECT id FROM identity_directory_group WHERE org_id = ? AND source = 'scim' AND deleted_at IS NULL"
        f" AND id IN ({marks})", [uow.ctx.org_id, *wanted])}
    missing = [w for w in wanted if w not in found]
    if missing:
        raise ScimError(400, f"No such member: {', '.join(missing[:5])}.", "invalidValue")
    return wanted


def _group_data(model: Any) -> dict[str, Any]:
    dump = model.model_dump(scim_ctx=ScimContext.RESOURCE_QUERY_RESPONSE)
    return {k: v for k, v in dump.items() if k not in ("schemas", "id", "meta", "displayName", "externalId",
                                                       "members")}


async def _group_rep_in(uow: UnitOfWork, req: Request, gid: str) -> dict[str, Any]:
    reps = await _groups(uow.conn, uow.db, uow.ctx.org_id, [gid], _base_url(req))
    if gid not in reps:
        raise ScimError(404, "No such Group.")
    return reps[gid]


async def _write_group(uow: UnitOfWork, req: Request, gid: str, model: Any, *, created: bool) -> dict[str, Any]:
    members = await _member_ids(uow, model, gid)
    groups = directory.DirectoryGroupService.instance()
    name = model.display_name.strip()
    values = {"display_name": name, "display_name_ci": name.lower(), "external_id": model.external_id,
              "data": _group_data(model)}
    if created:
        record = await uow.insert(directory.GROUP, {"id": gid, "source": "scim", "roles": [], **values,
                                                    "member_count": 0})
        groups.record_change(uow, "created", None, record)
    else:
        before, after = await uow.update(directory.GROUP, gid, values)
        groups.record_change(uow, "updated", before, after)
    shown = {m.value: m.display for m in (model.members or []) if m.value}
    changed = await directory.set_members(uow, gid, members, shown)
    if changed:
        await uow.conn.execute("UPDATE identity_directory_group SET version = version + 1 WHERE id = ?", [gid])
        uow.audit("identity", "directory-groups", gid, "members_changed", None, {"members": members})
        await directory.refresh_roles(uow, changed)
    rep = await _group_rep_in(uow, req, gid)
    await _reindex(uow, "Group", gid, rep)
    return rep


async def create_group(req: Request, ctx: Context) -> Response:
    """Provision a group; an admin maps it to roles under Identity → Directory groups."""
    model = _validate_group(await _json_body(req), ScimContext.RESOURCE_CREATION_REQUEST)
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        rep = await _write_group(uow, req, new_id(), model, created=True)
    return scim_response(rep, 201, _etag_headers(rep, location=True))


async def replace_group(req: Request, ctx: Context) -> Response:
    body = await _json_body(req)
    gid = req.path_params["id"]
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        current = await _group_rep_in(uow, req, gid)
        _check_if_match(req, current)
        model = _validate_group(body, ScimContext.RESOURCE_REPLACEMENT_REQUEST)
        rep = await _write_group(uow, req, gid, model, created=False)
    return scim_response(rep, headers=_etag_headers(rep))


async def patch_group(req: Request, ctx: Context) -> Response:
    """PATCH a group: members added and removed (`members[value eq "…"]`), renamed."""
    body = await _json_body(req)
    gid = req.path_params["id"]
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        current = await _group_rep_in(uow, req, gid)
        _check_if_match(req, current)
        obj, changed = _patched(GroupModel, current, body)
        if not changed:
            return scim_response(current, headers=_etag_headers(current))
        if not obj.display_name:
            raise ScimError(400, "displayName cannot be removed.", "mutability")
        rep = await _write_group(uow, req, gid, obj, created=False)
    return scim_response(rep, headers=_etag_headers(rep))


async def delete_group(req: Request, ctx: Context) -> Response:
    """DELETE a group: its members lose the roles it granted."""
    gid = req.path_params["id"]
    async with UnitOfWork(nexus_of(req).db, ctx) as uow:
        current = await _group_rep_in(uow, req, gid)
        _check_if_match(req, current)
        await directory.DirectoryGroupService.instance().delete(uow, gid)
        await uow.conn.execute("DELETE FROM identity_directory_member WHERE org_id = ? AND user_id = ?",
                               [ctx.org_id, gid])
        await uow.conn.execute("DELETE FROM identity_scim_attr WHERE resource_id = ?", [gid])
    return Response(status_code=204)


BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
MAX_BULK_OPERATIONS = 100
_BULK_PATH = re.compile(r"^/(Users|Groups)(/[^/?#]+)?$")


def _resolve_bulk_ids(value: Any, ids: dict[str, str]) -> Any:
    """Replace "bulkId:<id>" references to resources created earlier in the request."""
    if isinstance(value, str) and value.startswith("bulkId:"):
        ref = value[7:]
        if ref not in ids:
            raise ScimError(409, f"bulkId {ref!r} names no resource created before it.", "invalidValue")
        return ids[ref]
    if isinstance(value, list):
        return [_resolve_bulk_ids(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_bulk_ids(v, ids) for k, v in value.items()}
    return value


async def bulk(req: Request, ctx: Context) -> Response:
    """POST /Bulk (RFC 7644 §3.7): each operation runs as the same request would alone, in
    order, each in its own transaction; `failOnErrors` stops after that many errors."""
    body = await _json_body(req)
    if BULK_REQUEST not in (body.get("schemas") or []):
        raise ScimError(400, f"A bulk request names the schema {BULK_REQUEST}.", "invalidSyntax")
    ops = body.get("Operations")
    if not isinstance(ops, list) or not ops:
        raise ScimError(400, "Operations must be a non-empty list.", "invalidSyntax")
    if len(ops) > MAX_BULK_OPERATIONS:
        raise ScimError(413, f"At most {MAX_BULK_OPERATIONS} operations per request.", "tooMany")
    fail_on = body.get("failOnErrors")
    if fail_on is not None and (not isinstance(fail_on, int) or isinstance(fail_on, bool) or fail_on < 1):
        raise ScimError(400, "failOnErrors is a positive integer.", "invalidValue")
    nx = nexus_of(req)
    ids: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    errors = 0
    for op in ops:
        if fail_on is not None and errors >= fail_on:
            break
        out: dict[str, Any] = {}
        try:
            if not isinstance(op, dict):
                raise ScimError(400, "Each operation is an object.", "invalidSyntax")
            method = str(op.get("method", "")).upper()
            out["method"] = method
            if op.get("bulkId") is not None:
                out["bulkId"] = str(op["bulkId"])
            if method not in ("POST", "PUT", "PATCH", "DELETE"):
                raise ScimError(400, "method is POST, PUT, PATCH or DELETE.", "invalidValue")
            if method == "POST" and not op.get("bulkId"):
                raise ScimError(400, "A POST operation needs a bulkId.", "invalidValue")
            path = re.sub(r"bulkId:([^/]+)", lambda m: str(_resolve_bulk_ids(m.group(0), ids)),
                          str(op.get("path", "")))
            m = _BULK_PATH.match(path)
            if m is None or (method == "POST") != (m.group(2) is None):
                raise ScimError(400, f"{method} {path!r} is not a Users or Groups path of this kind.",
                                "invalidPath")
            data = _resolve_bulk_ids(op.get("data"), ids) if method != "DELETE" else None
            headers = [(b"authorization", req.headers["authorization"].encode()),
                       (b"content-type", MEDIA.encode()), (b"host", (req.headers.get("host") or "").encode())]
            if op.get("version"):
                headers.append((b"if-match", str(op["version"]).encode()))
            payload = dumps(data) if data is not None else b""
            route, params, _ = nx.router.match(method, BASE + path)
            if route is None:
                raise ScimError(404, f"No such endpoint: {path}.")
            sub_scope = {**req.scope, "method": method, "path": BASE + path, "raw_path": (BASE + path).encode(),
                         "query_string": b"", "headers": headers, "path_params": params}
            sent = False

            async def receive(payload: bytes = payload) -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": payload, "more_body": False}

            resp = await route.endpoint(Request(sub_scope, receive))
            status = resp.status_code
            out["status"] = str(status)
            rep = loads(bytes(resp.body)) if resp.body else None
            if status < 300 and isinstance(rep, dict) and "meta" in rep:
                out["location"] = rep["meta"]["location"]
                out["version"] = rep["meta"]["version"]
                if method == "POST" and op.get("bulkId"):
                    ids[str(op["bulkId"])] = rep["id"]
            elif status >= 400:
                errors += 1
                out["response"] = rep
        except ScimError as exc:
            errors += 1
            out["status"] = str(exc.status)
            out["response"] = {"schemas": [ERROR_SCHEMA], "status": str(exc.status), "detail": exc.detail,
                               **({"scimType": exc.scim_type} if exc.scim_type else {})}
        results.append(out)
    return scim_response({"schemas": [BULK_RESPONSE], "Operations": results})


def _r(method: str, path: str, fn: Handler, summary: str) -> RouteDef:
    return RouteDef(method, BASE + path, endpoint(fn), public=True, tags=("scim",), summary=summary,
                    request_media=MEDIA)


async def no_endpoint(req: Request, ctx: Context) -> Response:
    raise ScimError(404, f"No such SCIM endpoint: {req.url.path}.")


async def no_cross_search(req: Request, ctx: Context) -> Response:
    raise ScimError(501, "Search /Users/.search or /Groups/.search; searching every type at once is not supported.")


ROUTES = [
    _r("GET", "/ServiceProviderConfig", service_provider_config, "SCIM service provider configuration"),
    _r("GET", "/ResourceTypes", resource_types, "SCIM resource types"),
    _r("GET", "/ResourceTypes/{id}", resource_type, "One SCIM resource type"),
    _r("GET", "/Schemas", schemas, "SCIM schemas"),
    _r("GET", "/Schemas/{id}", schema, "One SCIM schema"),
    _r("GET", "/Users", list_users, "List or filter SCIM users"),
    _r("POST", "/Users", create_user, "Provision a user"),
    _r("POST", "/Users/.search", search_users, "Search SCIM users"),
    _r("GET", "/Users/{id}", get_user, "One SCIM user"),
    _r("PUT", "/Users/{id}", replace_user, "Replace a SCIM user"),
    _r("PATCH", "/Users/{id}", patch_user, "Patch a SCIM user"),
    _r("DELETE", "/Users/{id}", delete_user, "Delete a SCIM user"),
    _r("GET", "/Groups", list_groups, "List or filter SCIM groups"),
    _r("POST", "/Groups", create_group, "Provision a group"),
    _r("POST", "/Groups/.search", search_groups, "Search SCIM groups"),
    _r("GET", "/Groups/{id}", get_group, "One SCIM group"),
    _r("PUT", "/Groups/{id}", replace_group, "Replace a SCIM group"),
    _r("PATCH", "/Groups/{id}", patch_group, "Patch a SCIM group"),
    _r("DELETE", "/Groups/{id}", delete_group, "Delete a SCIM group"),
    _r("POST", "/Bulk", bulk, "Bulk operations"),
    _r("POST", "/.search", no_cross_search, "Search every type (not supported)"),
    # Anything else under /scim/v2 answers in the SCIM error schema, not with the web app.
    *(_r(m, p, no_endpoint, "Unknown SCIM endpoint")
      for p in ("/{a}", "/{a}/{b}", "/{a}/{b}/{c}") for m in ("GET", "POST", "PUT", "PATCH", "DELETE")),
]
