"""CRM routes beyond the generated ones: the pipeline board, the forecast, reports, record
timelines, stage history, org settings, the public web-to-lead endpoint and vCards. Thin:
reads go to insight.py, writes to the service."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import date
from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.cache import cache_of
from nexus.kernel.context import system_context
from nexus.kernel.errors import Problem, bad_request, not_found
from nexus.kernel.http.app import client_addr, nexus_of, read_body
from nexus.kernel.http.crud import query_params
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.ids import is_id
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.permissions import require
from nexus.kernel.records import UnitOfWork
from nexus.kernel.resources import Resource, pydantic_errors

from . import events, insight, vcard
from .resources import companies, contacts, deals, leads, pipelines, stages, web_forms
from .schemas import SettingsInput, WebLeadInput
from .service import SETTINGS

_TL_RESOURCES = {"contacts": contacts, "companies": companies, "deals": deals}


def _one(params: dict[str, list[str]], key: str) -> str | None:
    v = params.get(key)
    if not v:
        return None
    if len(v) > 1:
        raise bad_request(f"Parameter {key!r} is given more than once.", pointer=f"/query/{key}")
    return v[0]


def _only(params: dict[str, list[str]], allowed: set[str]) -> None:
    unknown = set(params) - allowed
    if unknown:
        raise bad_request(f"Unknown parameter {sorted(unknown)[0]!r}; this takes {', '.join(sorted(allowed))}.",
                          pointer=f"/query/{sorted(unknown)[0]}")


def _limit(params: dict[str, list[str]], default: int, top: int) -> int:
    raw = _one(params, "limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise bad_request(f"limit must be an integer from 1 to {top}.", pointer="/query/limit")
    return int(raw)


def _date(params: dict[str, list[str]], key: str) -> date | None:
    raw = _one(params, key)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"{key} must be a date (YYYY-MM-DD).", pointer=f"/query/{key}") from None


def _id(params: dict[str, list[str]], key: str) -> str | None:
    raw = _one(params, key)
    if raw is not None and not is_id(raw):
        raise bad_request(f"{key} is not an id.", pointer=f"/query/{key}")
    return raw


async def _visible(req: Request, r: Resource, record_id: str) -> tuple[Any, dict[str, Any]]:
    """The caller may read the record (permission, org, record rule) or it is 404."""
    nx = nexus_of(req)
    p = await nx.principal(req)
    require(p, r.permission("read"))
    if not is_id(record_id):
        raise not_found(r.entity)
    sql = f"SELECT {r.spec.select_list} FROM {r.spec.name} WHERE org_id = ? AND id = ? AND deleted_at IS NULL"
    args: list[Any] = [p.org_id, record_id]
    rule = r.read_condition(p)
    if rule is not None:
        sql += f" AND ({rule[0]})"
        args += rule[1]
    async with nx.db.reader() as conn:
        row = await conn.fetchrow(sql, args)
    if row is None:
        raise not_found(r.entity)
    return p, r.spec.to_dict(nx.db.dialect, row)


def _wants_csv(req: Request, params: dict[str, list[str]]) -> bool:
    fmt = _one(params, "format")
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise bad_request("format must be json or csv.", pointer="/query/format")
        return fmt == "csv"
    accept = req.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _report_response(req: Request, params: dict[str, list[str]], body: dict[str, Any], name: str) -> Response:
    if _wants_csv(req, params):
        return Response(insight.as_csv(body["rows"]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="crm-{name}.csv"'})
    return json_response(body)


async def _stages_of(req: Request, pipeline_id: str) -> tuple[Any, dict[str, Any], list[dict[str, Any]]]:
    nx = nexus_of(req)
    p, pipeline = await _visible(req, pipelines, pipeline_id)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(f"SELECT {stages.spec.select_list} FROM crm_stage WHERE org_id = ? AND pipeline_id = ?"
                                " AND deleted_at IS NULL ORDER BY position, id", [p.org_id, pipeline_id])
    return p, pipeline, [stages.spec.to_dict(nx.db.dialect, r) for r in rows]


# -- board and forecast ----------------------------------------------------------------------------


def _users_table(nx: Any) -> str | None:
    """Identity's user table, through the kernel's resource registry (no import of identity)."""
    spec = nx.table_for("identity.users")
    return spec.name if spec is not None else None


async def board(req: Request) -> Response:
    """The pipeline board: a column per stage with count, totals and the first cards."""
    nx = nexus_of(req)
    params = query_params(req)
    _only(params, {"limit", "owner_id"})
    p, pipeline, stage_list = await _stages_of(req, req.path_params["id"])
    require(p, deals.permission("read"))
    body = await insight.board(nx.db, nx.cursors, p.org_id, pipeline, stage_list, _limit(params, 20, insight.MAX_COLUMN),
                               _id(params, "owner_id"), _users_table(nx))
    return json_response(body)


async def board_column(req: Request) -> Response:
    """The next cards of one board column (cursor from the board or the previous page)."""
    nx = nexus_of(req)
    params = query_params(req)
    _only(params, {"limit", "owner_id", "cursor"})
    p, _pipeline, stage_list = await _stages_of(req, req.path_params["id"])
    require(p, deals.permission("read"))
    stage_id = req.path_params["stage_id"]
    if stage_id not in {s["id"] for s in stage_list}:
        raise not_found("stage")
    body = await insight.column_page(nx.db, nx.cursors, p.org_id, stage_id, _limit(params, 20, insight.MAX_COLUMN),
                                     _id(params, "owner_id"), _one(params, "cursor"), _users_table(nx))
    return json_response(body)


async def forecast(req: Request) -> Response:
    """Weighted and committed totals by month or quarter, owner and pipeline, in the org currency."""
    nx = nexus_of(req)
    p = await nx.principal(req)
    require(p, deals.permission("read"))
    params = query_params(req)
    _only(params, {"period", "from", "to", "group_by", "pipeline_id", "owner_id", "format"})
    period = _one(params, "period") or "quarter"
    if period not in ("month", "quarter"):
        raise bad_request("period must be month or quarter.", pointer="/query/period")
    group_raw = _one(params, "group_by")
    group_by = tuple(g for g in (group_raw.split(",") if group_raw is not None else ["owner", "pipeline"]) if g)
    if any(g not in insight.GROUPS for g in group_by) or len(set(group_by)) != len(group_by):
        raise bad_request("group_by takes owner and/or pipeline, comma-separated.", pointer="/query/group_by")
    start, end = _date(params, "from"), _date(params, "to")
    if start is None or end is None:
        d0, d1 = insight.default_range(period, utcnow().date())
        start, end = start or d0, end or d1
    if end < start or (end - start).days > 366 * 5:
        raise bad_request("from must come before to, at most five years apart.", pointer="/query/to")
    body = await insight.forecast(nx.db, p.org_id, period=period, start=start, end=end, group_by=group_by,
                                  pipeline_id=_id(params, "pipeline_id"), owner_id=_id(params, "owner_id"))
    return _report_response(req, params, body, "forecast")


# -- reports -------------------------------------------------------------------------------------------


def _range(params: dict[str, list[str]]) -> tuple[date, date]:
    today = utcnow().date()
    start = _date(params, "from") or date(today.year, 1, 1)
    end = _date(params, "to") or today
    if end < start or (end - start).days > 366 * 10:
        raise bad_request("from must come before to, at most ten years apart.", pointer="/query/to")
    return start, end


async def report(req: Request) -> Response:
    """pipeline | conversion | win-rate | sales-cycle | activities, as JSON or CSV."""
    nx = nexus_of(req)
    p = await nx.principal(req)
    name = req.path_params["name"]
    params = query_params(req)
    if name in ("pipeline", "conversion"):
        _only(params, {"pipeline_id", "from", "to", "format"})
        pipeline_id = _id(params, "pipeline_id")
        if pipeline_id is None:
            raise bad_request("pipeline_id is required.", pointer="/query/pipeline_id")
        p, pipeline, stage_list = await _stages_of(req, pipeline_id)
        require(p, deals.permission("read"))
        if name == "pipeline":
            body = await insight.pipeline_report(nx.db, p.org_id, pipeline, stage_list)
        else:
            start, end = _range(params)
            body = await insight.conversion_report(nx.db, p.org_id, pipeline, stage_list, start, end)
    elif name in ("win-rate", "sales-cycle"):
        require(p, deals.permission("read"))
        _only(params, {"from", "to", "format"})
        start, end = _range(params)
        body = await insight.win_report(nx.db, p.org_id, start, end)
    elif name == "activities":
        require(p, "crm.activities.read")
        _only(params, {"from", "to", "format"})
        start, end = _range(params)
        body = await insight.activity_report(nx.db, p.org_id, start, end)
    else:
        raise not_found("report")
    return _report_response(req, params, body, name)


# -- timelines and stage history ---------------------------------------------------------------------------


async def timeline(req: Request) -> Response:
    """What happened to a contact, company or deal, newest first."""
    nx = nexus_of(req)
    r = _TL_RESOURCES[req.scope["path"].split("/")[4]]  # /api/v1/crm/{contacts|companies|deals}/{id}/timeline
    params = query_params(req)
    _only(params, {"limit", "cursor", "kind"})
    p, record = await _visible(req, r, req.path_params["id"])
    kinds = [k for k in (_one(params, "kind") or "").split(",") if k] or None
    if kinds and (len(kinds) > 20 or any(len(k) > 32 for k in kinds)):
        raise bad_request("kind takes up to 20 comma-separated kinds.", pointer="/query/kind")
    body = await insight.timeline(nx.db, nx.cursors, p.org_id, record["id"], _limit(params, 50, 200),
                                  _one(params, "cursor"), kinds)
    return json_response(body)


async def stage_history(req: Request) -> Response:
    """The stages a deal went through, with the time spent in each."""
    nx = nexus_of(req)
    p, deal = await _visible(req, deals, req.path_params["id"])
    async with nx.db.reader() as conn:
        rows = await conn.fetch(
            "SELECT h.id, h.stage_id, s.name, s.kind, h.pipeline_id, h.entered_at, h.left_at, h.entered_by"
            " FROM crm_stage_history h LEFT JOIN crm_stage s ON s.id = h.stage_id AND s.org_id = h.org_id"
            " WHERE h.org_id = ? AND h.deal_id = ? ORDER BY h.entered_at, h.id", [p.org_id, deal["id"]])
    now = utcnow()
    items = []
    for hid, stage_id, name, kind, pipeline_id, entered, left, by in rows:
        t0, t1 = nx.db.read_ts(entered), nx.db.read_ts(left) if left is not None else None
        items.append({"id": hid, "stage_id": stage_id, "stage": name, "kind": kind, "pipeline_id": pipeline_id,
                      "entered_at": nx.db.ts(t0) if nx.db.dialect == "sqlite" else t0,
                      "left_at": (nx.db.ts(t1) if nx.db.dialect == "sqlite" else t1) if t1 else None,
                      "entered_by": by, "seconds_in_stage": round(((t1 or now) - t0).total_seconds(), 3)})  # type: ignore[operator]
    return json_response({"items": items})


# -- settings ---------------------------------------------------------------------------------------------


async def get_settings(req: Request) -> Response:
    nx = nexus_of(req)
    p = await nx.principal(req)
    require(p, "crm.deals.read")
    async with nx.db.reader() as conn:
        row = await conn.fetchrow("SELECT currency, fiscal_year_start_month FROM crm_settings WHERE org_id = ?"
                                  " AND deleted_at IS NULL ORDER BY created_at LIMIT 1", [p.org_id])
    return json_response({"currency": row[0] if row else "USD", "fiscal_year_start_month": int(row[1]) if row else 1})


async def put_settings(req: Request) -> Response:
    """The org currency (forecasts and totals are converted to it) and fiscal year start."""
    nx = nexus_of(req)
    ctx = await nx.context(req)
    require(ctx.principal, "crm.settings.update")
    from nexus.kernel.http.app import parse_json_body

    body = await parse_json_body(req, SettingsInput)
    values = body.model_dump()
    async with UnitOfWork(nx.db, ctx) as uow:
        found = await uow.find(SETTINGS, limit=1)
        if found:
            before, after = await uow.update(SETTINGS, found[0]["id"], values)
        else:
            before, after = None, await uow.insert(SETTINGS, values)
        uow.audit("crm", "settings", after["id"], "updated", before, after)
        uow.emit("nexus.crm.settings.updated", after["id"], {"id": after["id"], "record": after, "previous": before})
    return json_response(values)


# -- web-to-lead (public) ------------------------------------------------------------------------------------

TICKET_MAX_AGE = 86_400


def _ticket_key(nx: Any) -> bytes:
    return hashlib.sha256(b"nexus-crm-web-form\x00" + nx.settings.secret_key.encode()).digest()


def make_ticket(nx: Any, form_id: str, issued: int) -> str:
    sig = hmac.new(_ticket_key(nx), f"{form_id}.{issued}".encode(), "sha256").hexdigest()[:32]
    return f"{issued}.{sig}"


def _ticket_age(nx: Any, form_id: str, ticket: str) -> float | None:
    issued_raw = ticket.partition(".")[0]
    if not issued_raw.isdigit() or len(issued_raw) > 12:
        return None
    if not hmac.compare_digest(make_ticket(nx, form_id, int(issued_raw)), ticket):
        return None
    return time.time() - int(issued_raw)


async def _form(req: Request) -> dict[str, Any]:
    nx = nexus_of(req)
    token = req.path_params["token"]
    if not (16 <= len(token) <= 64) or not all(c.isalnum() or c in "-_" for c in token):
        raise not_found("form")
    async with nx.db.reader() as conn:
        row = await conn.fetchrow(f"SELECT {web_forms.spec.select_list} FROM crm_web_form WHERE token = ?"
                                  " AND deleted_at IS NULL AND active = ?", [token, True])
    if row is None:
        raise not_found("form")
    return web_forms.spec.to_dict(nx.db.dialect, row)


def _cors(req: Request, form: dict[str, Any]) -> dict[str, str]:
    """Only the form's own websites may post to it from a browser."""
    origin = req.headers.get("origin")
    if origin is None or origin.rstrip("/") not in [o.rstrip("/") for o in form["allowed_origins"]]:
        raise Problem(403, "This website may not post to this form.", type="origin-not-allowed")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


async def web_lead_preflight(req: Request) -> Response:
    form = await _form(req)
    headers = _cors(req, form)
    headers.update({"Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": "600"})
    return Response(status_code=204, headers=headers)


async def web_lead_ticket(req: Request) -> Response:
    """A signed ticket the form posts back, so a post sooner than the form's minimum fill time
    (a bot) is refused."""
    nx = nexus_of(req)
    form = await _form(req)
    headers = _cors(req, form)
    return json_response({"ticket": make_ticket(nx, form["id"], int(time.time())),
                          "min_fill_seconds": form["min_fill_seconds"]}, headers=headers)


async def web_lead(req: Request) -> Response:
    """Create a lead from a website form: public, per-form token, origin allow-list, rate limit
    per form and client address, honeypot field and minimum fill time."""
    nx = nexus_of(req)
    form = await _form(req)
    headers = _cors(req, form)
    addr = client_addr(req) or "unknown"
    window = int(time.time() // 3600)
    hits = await cache_of(nx).incr(f"crm:w2l:{form['id']}:{addr}:{window}", ttl=3600)
    if hits > form["rate_per_hour"]:
        raise Problem(429, "Too many submissions from this address; try again later.",
                      headers={"Retry-After": str(3600 - int(time.time()) % 3600), **headers})
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    raw = await read_body(req, 64_000)
    try:
        if media == "application/json":
            data = WebLeadInput.model_validate_json(raw or b"{}")
        elif media == "application/x-www-form-urlencoded":
            try:
                fields = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=50, strict_parsing=False)
            except (UnicodeDecodeError, ValueError):
                raise Problem(400, "The form body is not valid.", headers=headers) from None
            data = WebLeadInput.model_validate({k: v[0] for k, v in fields.items()})
        else:
            raise Problem(415, "Post the form as application/x-www-form-urlencoded or application/json.",
                          headers=headers)
    except ValidationError as exc:
        prob = pydantic_errors(exc)
        prob.headers = {**(prob.headers or {}), **headers}
        raise prob from None
    if data.website_url:
        raise Problem(422, "The submission was refused as spam.", type="spam", headers=headers)
    if form["min_fill_seconds"] > 0:
        age = _ticket_age(nx, form["id"], data.ticket) if data.ticket else None
        if age is None or age > TICKET_MAX_AGE:
            raise Problem(422, "The form ticket is missing or expired; reload the form.", type="form-ticket",
                          headers=headers)
        if age < form["min_fill_seconds"]:
            raise Problem(422, "The form was sent too quickly after it was shown.", type="spam", headers=headers)
    ctx = system_context(form["org_id"], req.scope.get("nexus.request_id"))
    values = {"name": data.name, "email": data.email, "phone": data.phone, "company_name": data.company_name,
              "message": data.message, "source": form["source"], "website": "", "territory": "", "owner_id": None,
              "amount": None, "currency": None, "tags": [], "custom": {}, "allow_duplicate": True}
    async with UnitOfWork(nx.db, ctx) as uow:
        lead = await leads.service_instance.create(uow, values)
        uow.audit("crm", "web-forms", form["id"], "lead_received", None,
                  {"lead_id": lead["id"], "client_addr": addr, "origin": req.headers.get("origin")})
    return json_response({"received": True}, status=201, headers=headers)


# -- vCard ------------------------------------------------------------------------------------------------------


async def vcard_export(req: Request) -> Response:
    nx = nexus_of(req)
    ctx = await nx.context(req)
    require(ctx.principal, contacts.permission("export"))
    params = query_params(req)
    _only(params, {"id", "company_id"})
    ids = [i for i in params.get("id", []) if is_id(i)][:1000]
    sql = f"SELECT {contacts.spec.select_list} FROM crm_contact WHERE org_id = ? AND deleted_at IS NULL"
    args: list[Any] = [ctx.org_id]
    if params.get("id"):
        if not ids:
            raise bad_request("id must name contacts.", pointer="/query/id")
        sql += f" AND id IN ({','.join('?' * len(ids))})"
        args += ids
    company_id = _id(params, "company_id")
    if company_id:
        sql += " AND company_id = ?"
        args.append(company_id)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(sql + " ORDER BY name, id LIMIT 50000", args)
        records = [contacts.spec.to_dict(nx.db.dialect, r) for r in rows]
        company_ids = list({r["company_id"] for r in records if r["company_id"]})
        names: dict[str, str] = {}
        for i in range(0, len(company_ids), 500):
            chunk = company_ids[i:i + 500]
            for cid, cname in await conn.fetch(
                    f"SELECT id, name FROM crm_company WHERE org_id = ? AND id IN ({','.join('?' * len(chunk))})",
                    [ctx.org_id, *chunk]):
                names[cid] = cname
    async with UnitOfWork(nx.db, ctx) as uow:
        uow.audit("crm", "contacts", None, "exported", None, {"format": "vcard", "count": len(records)})
    text = "".join(vcard.to_vcard(r, names.get(r["company_id"] or "") or "") for r in records)
    return Response(text, media_type="text/vcard; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="contacts.vcf"'})


async def vcard_import(req: Request) -> Response:
    """Contacts from a vCard file (3.0 or 4.0): each card is created or reported with its error."""
    nx = nexus_of(req)
    ctx = await nx.context(req)
    require(ctx.principal, contacts.permission("create"))
    require(ctx.principal, contacts.permission("import"))
    params = query_params(req)
    _only(params, {"dry_run", "allow_duplicates"})
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in ("text/vcard", "text/x-vcard", "text/directory"):
        raise Problem(415, "Send the cards as text/vcard.")
    raw = await read_body(req, nx.settings.max_import_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request(f"The file is not valid UTF-8 (byte {exc.start}).") from None
    if "\x00" in text:
        raise bad_request("The file contains NUL characters.")
    dry_run = (_one(params, "dry_run") or "false").lower() in ("1", "true", "yes")
    allow_dup = (_one(params, "allow_duplicates") or "false").lower() in ("1", "true", "yes")
    cards = vcard.parse_cards(text, nx.settings.max_import_rows)
    result = await vcard.import_cards(nx, ctx, cards, dry_run=dry_run, allow_duplicates=allow_dup)
    return json_response(result)


async def setup(nx: Any) -> None:
    events.subscribe(nx)


_TL = "/api/v1/crm/{resource}/{id}/timeline"
ROUTES = [
    RouteDef("GET", "/api/v1/crm/pipelines/{id}/board", board, tags=("crm",),
             summary="Pipeline board: columns by stage with totals and first cards"),
    RouteDef("GET", "/api/v1/crm/pipelines/{id}/board/{stage_id}", board_column, tags=("crm",),
             summary="More cards of one board column"),
    RouteDef("GET", "/api/v1/crm/forecast", forecast, tags=("crm",),
             summary="Forecast by period, owner and pipeline (weighted, committed), JSON or CSV"),
    RouteDef("GET", "/api/v1/crm/reports/{name}", report, tags=("crm",),
             summary="Reports: pipeline, conversion, win-rate, sales-cycle, activities (JSON or CSV)"),
    *(RouteDef("GET", _TL.replace("{resource}", name), timeline, tags=("crm",), summary=f"Timeline of one of {name}")
      for name in _TL_RESOURCES),
    RouteDef("GET", "/api/v1/crm/deals/{id}/stage-history", stage_history, tags=("crm",),
             summary="Stages the deal went through, with time in each"),
    RouteDef("GET", "/api/v1/crm/settings", get_settings, tags=("crm",), summary="Org currency and fiscal year"),
    RouteDef("PUT", "/api/v1/crm/settings", put_settings, tags=("crm",), summary="Set org currency and fiscal year",
             request_schema=SettingsInput),
    RouteDef("GET", "/api/v1/crm/web-to-lead/{token}/ticket", web_lead_ticket, tags=("crm",), public=True,
             summary="A ticket for a website form (minimum fill time)"),
    RouteDef("OPTIONS", "/api/v1/crm/web-to-lead/{token}/ticket", web_lead_preflight, tags=("crm",), public=True),
    RouteDef("POST", "/api/v1/crm/web-to-lead/{token}", web_lead, tags=("crm",), public=True, status=201,
             summary="Create a lead from a website form (public)", request_schema=WebLeadInput),
    RouteDef("OPTIONS", "/api/v1/crm/web-to-lead/{token}", web_lead_preflight, tags=("crm",), public=True),
    RouteDef("GET", "/api/v1/crm/contacts/vcard", vcard_export, tags=("crm",),
             summary="Contacts as vCard 4.0 (RFC 6350)"),
    RouteDef("POST", "/api/v1/crm/contacts/vcard", vcard_import, tags=("crm",), request_media="text/vcard",
             summary="Import contacts from vCard 3.0/4.0 (per-card results; dry_run)"),
]
