"""The generic endpoints every declared resource gets (DESIGN.md §3–4)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from nexus.kernel.errors import Problem, bad_request, not_found
from nexus.kernel.http.responses import etag_for, json_response, parse_if_match
from nexus.kernel.idempotency import run_idempotent
from nexus.kernel.ids import is_id
from nexus.kernel.jsonutil import dumps, loads
from nexus.kernel.permissions import require
from nexus.kernel.query import RESERVED, cursor_values, keyset_clause, order_by, parse_list_query
from nexus.kernel.records import UnitOfWork
from nexus.kernel.resources import Resource, _annotation_info, pydantic_errors

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

ROUTES: list[Any] = []


def query_params(req: Request) -> dict[str, list[str]]:
    raw = req.scope.get("query_string", b"")
    if not raw:
        return {}
    try:
        parsed = parse_qs(raw.decode("ascii"), keep_blank_values=True, errors="strict", max_num_fields=200)
    except UnicodeDecodeError:
        raise bad_request("The query string is not valid UTF-8.") from None
    except ValueError:
        raise bad_request("Too many query parameters.") from None
    for key, values in parsed.items():
        if "\x00" in key or any("\x00" in v for v in values):
            raise bad_request("NUL characters are not allowed in the query string.")
    return parsed


async def dispatch_resource(nx: Nexus, req: Request, r: Resource, rest: list[str], method: str) -> Response:
    n = len(rest)
    if n == 0:
        if method in ("GET", "HEAD"):
            return await list_records(nx, req, r)
        if method == "POST":
            return await create_record(nx, req, r)
        raise Problem(405, f"{method} is not allowed here.", headers={"Allow": "GET, POST"})
    if n == 1 and rest[0] == "export":
        if method not in ("GET", "HEAD"):
            raise Problem(405, f"{method} is not allowed here.", headers={"Allow": "GET"})
        return await export_records(nx, req, r)
    if n == 1 and rest[0] == "import":
        if method != "POST":
            raise Problem(405, f"{method} is not allowed here.", headers={"Allow": "POST"})
        return await import_records(nx, req, r)
    record_id = rest[0]
    if not is_id(record_id):
        # Path-like, oversized or otherwise impossible ids: nothing can have them.
        await nx.principal(req)
        raise not_found(r.entity)
    if n == 1:
        if method in ("GET", "HEAD"):
            return await get_record(nx, req, r, record_id)
        if method == "PATCH":
            return await update_record(nx, req, r, record_id)
        if method == "DELETE":
            return await delete_record(nx, req, r, record_id)
        raise Problem(405, f"{method} is not allowed here.", headers={"Allow": "GET, PATCH, DELETE"})
    if n == 2:
        if method != "POST":
            raise Problem(405, f"{method} is not allowed here.", headers={"Allow": "POST"})
        if rest[1] == "restore":
            return await restore_record(nx, req, r, record_id)
        action = r.action_map.get(rest[1])
        if action is not None:
            return await run_action(nx, req, r, record_id, action)
    raise Problem(404, f"No such endpoint: {req.scope['path']}")


# -- reads ---------------------------------------------------------------------


def _deleted_clause(params: dict[str, list[str]]) -> str:
    mode = (params.get("deleted") or ["exclude"])[0]
    if mode == "exclude":
        return " AND deleted_at IS NULL"
    if mode == "only":
        return " AND deleted_at IS NOT NULL"
    if mode == "include":
        return ""
    raise bad_request("deleted must be exclude, include or only.", pointer="/query/deleted")


async def custom_defs(nx: Nexus, r: Resource, org_id: str) -> dict[str, dict[str, Any]] | None:
    """The org's custom fields of the resource by name, or None when it takes none."""
    if not r.custom_fields:
        return None
    from nexus.kernel.customfields import definitions_for

    return {d["name"]: d for d in await definitions_for(nx.db, org_id, r.key)}


def _list_sql(nx: Nexus, req: Request, r: Resource, params: dict[str, list[str]], ctx_org: str,
              principal: Any, custom: dict[str, dict[str, Any]] | None = None) -> tuple[str, list[Any], Any]:
    extra: list[tuple[str, list[Any]]] = []
    default_sort = r.default_sort
    view_name = params["view"][0] if params.get("view") else None
    if view_name:
        view = r.view_map.get(view_name)
        if view is None:
            raise bad_request(f"No view {view_name!r}. Views: {', '.join(r.view_map) or 'none'}.", pointer="/query/view")
        extra = view.where(principal, nx.db)
        default_sort = view.default_sort or default_sort
    lq = parse_list_query(nx.db, r.spec, params, filters=r.filters, sorts=r.sorts, search=r.search,
                          default_sort=default_sort, cursors=nx.cursors, extra_where=extra, custom=custom)
    spec = r.spec
    sql = f"SELECT {spec.select_list} FROM {spec.name} WHERE org_id = ?"
    if spec.soft_delete:
        sql += _deleted_clause(params)
    args: list[Any] = [ctx_org]
    rule = r.read_condition(principal)
    if rule is not None:
        sql += f" AND ({rule[0]})"
        args += rule[1]
    for w in lq.where:
        sql += " AND " + w
    args += lq.params
    if lq.after is not None:
        clause, cargs = keyset_clause(spec, lq.sort, lq.after)
        sql += " AND " + clause
        args += cargs
    sql += " ORDER BY " + order_by(lq.sort)
    return sql, args, lq


async def list_records(nx: Nexus, req: Request, r: Resource) -> Response:
    p = await nx.principal(req)
    require(p, r.permission("read"))
    params = query_params(req)
    custom = await custom_defs(nx, r, p.org_id) if r.custom_fields else None
    sql, args, lq = _list_sql(nx, req, r, params, p.org_id, p, custom)
    sql += " LIMIT ?"
    args.append(lq.limit + 1)
    async with nx.db.reader() as conn:
        rows = await conn.fetch(sql, args)
    dialect = nx.db.dialect
    to_output = r.spec.to_output
    items = [to_output(dialect, row) for row in rows[: lq.limit]]
    next_cursor = None
    if len(rows) > lq.limit:
        next_cursor = nx.cursors.encode(lq.fingerprint, cursor_values(items[-1], lq.sort))
    return Response(dumps({"items": items, "next_cursor": next_cursor}), media_type="application/json")


async def get_record(nx: Nexus, req: Request, r: Resource, record_id: str) -> Response:
    p = await nx.principal(req)
    require(p, r.permission("read"))
    spec = r.spec
    sql = r.__dict__.get("_get_sql")
    if sql is None:
        sql = f"SELECT {spec.select_list} FROM {spec.name} WHERE org_id = ? AND id = ?"
        r.__dict__["_get_sql"] = sql
    if spec.soft_delete and req.scope.get("query_string") != b"deleted=include":
        sql += " AND deleted_at IS NULL"
    args: list[Any] = [p.org_id, record_id]
    rule = r.read_condition(p)
    if rule is not None:
        sql += f" AND ({rule[0]})"
        args += rule[1]
    async with nx.db.reader() as conn:
        row = await conn.fetchrow(sql, args)
    if row is None:
        raise not_found(r.entity)
    record = spec.to_output(nx.db.dialect, row)
    etag = etag_for(record)
    inm = req.headers.get("if-none-match")
    if inm is not None and inm.strip() == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(dumps(record), media_type="application/json", headers={"ETag": etag})


# -- writes --------------------------------------------------------------------


async def enforce_rule(nx: Nexus, principal: Any, r: Resource, record_id: str) -> None:
    """A record the caller may not see is 404; one they may see but not change is 403."""
    read = r.read_condition(principal)
    if read is None:
        return
    base = f"SELECT 1 FROM {r.spec.name} WHERE org_id = ? AND id = ?"
    async with nx.db.reader() as conn:
        if not await conn.fetchval(f"{base} AND ({read[0]})", [principal.org_id, record_id, *read[1]]):
            raise not_found(r.entity)
        write = r.write_condition(principal)
        if write is not None and not await conn.fetchval(f"{base} AND ({write[0]})",
                                                         [principal.org_id, record_id, *write[1]]):
            raise Problem(403, f"You may see this {r.entity} but not change it.")


async def _body(req: Request, nx: Nexus) -> bytes:
    from nexus.kernel.http.app import read_body, require_json

    require_json(req)
    body = await read_body(req)
    if b"\\u0000" in body:
        raise Problem(422, "NUL characters are not allowed in text.", errors=[{"pointer": "", "detail": "contains \\u0000"}])
    return body


def _validate(model: Any, body: bytes) -> Any:
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise pydantic_errors(exc) from None


async def create_record(nx: Nexus, req: Request, r: Resource) -> Response:
    ctx = await nx.context(req)
    require(ctx.principal, r.permission("create"))
    body = await _body(req, nx)
    data = _validate(r.create, body).model_dump()

    async def produce(uow: UnitOfWork) -> tuple[int, dict[str, str], Any]:
        record = await r.service_instance.create(uow, data)
        return 201, {"ETag": etag_for(record), "Location": f"/api/v1/{r.app}/{r.name}/{record['id']}"}, record

    return await run_idempotent(nx.db, ctx, req.headers.get("idempotency-key"), "POST", req.scope["path"], body, produce)


async def update_record(nx: Nexus, req: Request, r: Resource, record_id: str) -> Response:
    ctx = await nx.context(req)
    require(ctx.principal, r.permission("update"))
    await enforce_rule(nx, ctx.principal, r, record_id)
    expected = parse_if_match(req.headers.get("if-match"), record_id)
    body = await _body(req, nx)
    assert r.update is not None
    patch = _validate(r.update, body)
    # Only the fields the client sent — but each with its nested defaults filled in
    # (exclude_unset would also drop a checklist item's default `done`).
    changes = {k: v for k, v in patch.model_dump().items() if k in patch.model_fields_set}
    async with UnitOfWork(nx.db, ctx) as uow:
        record = await r.service_instance.update(uow, record_id, changes, expected)
    return json_response(record, headers={"ETag": etag_for(record)})


async def delete_record(nx: Nexus, req: Request, r: Resource, record_id: str) -> Response:
    ctx = await nx.context(req)
    require(ctx.principal, r.permission("delete"))
    await enforce_rule(nx, ctx.principal, r, record_id)
    expected = parse_if_match(req.headers.get("if-match"), record_id)
    async with UnitOfWork(nx.db, ctx) as uow:
        await r.service_instance.delete(uow, record_id, expected)
    return Response(status_code=204)


async def restore_record(nx: Nexus, req: Request, r: Resource, record_id: str) -> Response:
    ctx = await nx.context(req)
    require(ctx.principal, r.permission("delete"))
    await enforce_rule(nx, ctx.principal, r, record_id)
    async with UnitOfWork(nx.db, ctx) as uow:
        record = await r.service_instance.restore(uow, record_id)
    return json_response(record, headers={"ETag": etag_for(record)})


async def run_action(nx: Nexus, req: Request, r: Resource, record_id: str, action: Any) -> Response:
    ctx = await nx.context(req)
    require(ctx.principal, r.permission(action.permission))
    await enforce_rule(nx, ctx.principal, r, record_id)
    expected = parse_if_match(req.headers.get("if-match"), record_id)
    from nexus.kernel.http.app import read_body

    body = await read_body(req)
    payload = None
    if action.input is not None:
        if body:
            from nexus.kernel.http.app import require_json

            require_json(req)
            if b"\\u0000" in body:
                raise Problem(422, "NUL characters are not allowed in text.")
        payload = _validate(action.input, body)
    elif body.strip() not in (b"", b"{}"):
        raise Problem(422, f"The {action.name} action takes no body.")
    method = getattr(r.service_instance, action.method)

    async def produce(uow: UnitOfWork) -> tuple[int, dict[str, str], Any]:
        record = await uow.require(r.spec, record_id, what=r.entity)
        if expected is not None and record["version"] != expected:
            raise Problem(412, "The record was changed by someone else; reload it and try again.",
                          extra={"current_version": record["version"]})
        out = await method(uow, record, payload)
        return 200, {"ETag": etag_for(out)} if "version" in out else {}, out

    return await run_idempotent(nx.db, ctx, req.headers.get("idempotency-key"), "POST", req.scope["path"], body, produce)


# -- export and import ---------------------------------------------------------


def _export_columns(r: Resource) -> list[str]:
    return [c for c in r.spec.names if c != "org_id"]


async def export_records(nx: Nexus, req: Request, r: Resource) -> Response:
    ctx = await nx.context(req)
    require(ctx.principal, r.permission("export"))
    params = query_params(req)
    fmt = (params.get("format") or ["csv"])[0]
    if fmt not in ("csv", "json"):
        raise bad_request("format must be csv or json.", pointer="/query/format")
    params.pop("cursor", None)
    params.pop("limit", None)
    custom = await custom_defs(nx, r, ctx.org_id)
    base_sql, base_args, lq = _list_sql(nx, req, r, params, ctx.org_id, ctx.principal, custom)
    async with UnitOfWork(nx.db, ctx) as uow:
        uow.audit(r.app, r.name, None, "exported", None,
                  {"format": fmt, "query": {k: v for k, v in params.items()}})
    cols = _export_columns(r)
    spec = r.spec
    dialect = nx.db.dialect
    batch = 1000

    async def rows() -> AsyncIterator[dict[str, Any]]:
        after = None
        while True:
            sql, args = base_sql, list(base_args)
            if after is not None:
                clause, cargs = keyset_clause(spec, lq.sort, after)
                sql = sql.replace(" ORDER BY ", f" AND {clause} ORDER BY ", 1)
                args = [*args[: len(base_args)], *cargs]
            async with nx.db.reader() as conn:
                got = await conn.fetch(sql + f" LIMIT {batch}", args)
            for row in got:
                yield spec.to_dict(dialect, row)
            if len(got) < batch:
                return
            last = spec.to_dict(dialect, got[-1])
            after = [
                spec.encode(nx.db, c, nx.db.read_ts(last[c]) if spec.by_name[c].kind == "ts" else last[c])
                for c, _ in lq.sort
            ] + [last["id"]]

    filename = f"{r.app}-{r.name}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "json":

        async def gen_json() -> AsyncIterator[bytes]:
            yield b"["
            first = True
            async for rec in rows():
                rec.pop("org_id", None)
                yield (b"" if first else b",") + b"\n" + dumps(rec)
                first = False
            yield b"\n]\n"

        return StreamingResponse(gen_json(), media_type="application/json", headers=headers)

    # Custom fields travel as one column each (custom.<name>), so a spreadsheet edits them.
    custom_names = list(custom or ())
    if custom is not None:
        cols = [c for c in cols if c != "custom"]

    async def gen_csv() -> AsyncIterator[bytes]:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow([*cols, *(f"custom.{n}" for n in custom_names)])
        yield buf.getvalue().encode()
        async for rec in rows():
            buf.seek(0)
            buf.truncate()
            extra = rec.get("custom") or {}
            w.writerow([*(_csv_cell(rec[c]) for c in cols), *(_csv_cell(extra.get(n)) for n in custom_names)])
            yield buf.getvalue().encode()

    return StreamingResponse(gen_csv(), media_type="text/csv; charset=utf-8", headers=headers)


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, dict)):
        return dumps(v).decode()
    if hasattr(v, "isoformat"):
        return dumps(v).decode().strip('"')
    s = str(v)
    # Cells starting with these are formulas to spreadsheet programs (CSV injection).
    if s and s[0] in "=+-@\t\r" and not _is_number(s):
        return "'" + s
    return s


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


async def import_records(nx: Nexus, req: Request, r: Resource) -> Response:
    from nexus.kernel.http.app import read_body

    ctx = await nx.context(req)
    require(ctx.principal, r.permission("create"))
    require(ctx.principal, r.permission("import"))
    if not r.importable:
        raise Problem(405, "This resource cannot be imported.")
    params = query_params(req)
    unknown = set(params) - RESERVED
    if unknown:
        raise bad_request(f"Unknown parameter {sorted(unknown)[0]!r}; import takes mode, dry_run and mapping.")
    mapping = _mapping(params)
    mode = (params.get("mode") or ["atomic"])[0]
    if mode not in ("atomic", "partial"):
        raise bad_request("mode must be atomic (all or nothing) or partial.", pointer="/query/mode")
    dry_run = (params.get("dry_run") or ["false"])[0].lower() in ("1", "true", "yes")
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(req, nx.settings.max_import_bytes)
    rows = parse_import(r, media, body, nx.settings.max_import_rows, mapping)
    errors: list[dict[str, Any]] = []
    valid: list[tuple[int, dict[str, Any]]] = []
    for line, raw in rows:
        try:
            valid.append((line, r.create.model_validate(raw).model_dump()))
        except ValidationError as exc:
            prob = pydantic_errors(exc)
            errors.append({"row": line, "errors": prob.errors or [{"pointer": "", "detail": prob.detail}]})

    class _Rollback(Exception):
        pass

    created: list[str] = []
    try:
        async with UnitOfWork(nx.db, ctx) as uow:
            for line, values in valid:
                try:
                    rec = await r.service_instance.create(uow, values)
                    created.append(rec["id"])
                except Problem as prob:
                    # A refusal's own fields (a duplicate's candidates…) stay with its row.
                    errors.append({**prob.extra, "row": line,
                                   "errors": prob.errors or [{"pointer": "", "detail": prob.detail}]})
            uow.audit(r.app, r.name, None, "imported", None, {"rows": len(rows), "created": len(created),
                                                               "errors": len(errors), "mode": mode})
            if dry_run or (errors and mode == "atomic"):
                raise _Rollback
    except _Rollback:
        pass
    errors.sort(key=lambda e: e["row"])
    committed = not dry_run and not (errors and mode == "atomic")
    result = {
        "rows": len(rows),
        "created": len(created) if committed else 0,
        "valid": len(created),
        "errors": errors[:1000],
        "error_count": len(errors),
        "dry_run": dry_run,
        "mode": mode,
        "committed": committed,
        "ids": created if committed else [],
    }
    status = 422 if (errors and mode == "atomic") else 200
    if status == 422:
        body_out = {"type": "https://nexus.dev/problems/import-failed", "title": "Import failed",
                    "status": 422, "detail": f"{len(errors)} of {len(rows)} rows are invalid; nothing was imported.",
                    **result}
        return Response(dumps(body_out), status_code=422, media_type="application/problem+json")
    return json_response(result)


def _mapping(params: dict[str, list[str]]) -> dict[str, str]:
    """?mapping={"Source column": "field", "Ignored column": ""}: the file's names to the
    resource's (custom fields as custom.<name>); an empty target skips the column."""
    raw = (params.get("mapping") or [""])[0]
    if not raw:
        return {}
    try:
        data = loads(raw)
    except ValueError:
        raise bad_request("mapping is not valid JSON.", pointer="/query/mapping") from None
    if not isinstance(data, dict) or len(data) > 500 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 200 and len(v) <= 200 for k, v in data.items()):
        raise bad_request('mapping is a JSON object of column names: {"E-mail": "email"}.', pointer="/query/mapping")
    targets = [v for v in data.values() if v]
    if len(set(targets)) != len(targets):
        raise bad_request("mapping sends two columns to one field.", pointer="/query/mapping")
    return data


_SKIP = "\x00skip"


def parse_import(r: Resource, media: str, body: bytes, max_rows: int,
                 mapping: dict[str, str] | None = None) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise bad_request(f"The file is not valid UTF-8 (byte {exc.start}).") from None
    if "\x00" in text:
        raise bad_request("The file contains NUL characters.")
    readonly = {"id", "org_id", "created_at", "created_by", "updated_at", "updated_by", "version", "deleted_at"}
    writable = set(r.create.model_fields)
    out: list[tuple[int, dict[str, Any]]] = []
    if media == "application/json":
        try:
            data = loads(text)
        except ValueError as exc:
            raise Problem(400, f"The body is not valid JSON: {exc}.", type="malformed-json") from None
        if not isinstance(data, list):
            raise bad_request("A JSON import is an array of objects.")
        if len(data) > max_rows:
            raise Problem(413, f"At most {max_rows} rows per import.")
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise bad_request(f"Item {i} is not an object.", pointer=f"/{i}")
            if mapping:
                item = {mapping.get(k, k): v for k, v in item.items() if mapping.get(k, k)}  # type: ignore[union-attr]
            out.append((i + 1, {k: v for k, v in item.items()  # type: ignore[union-attr]
                                if k not in readonly and not (k in r.spec.by_name and k not in writable
                                                              and k not in r.spec.hidden)}))
        return out
    if media not in ("text/csv", "application/csv"):
        raise Problem(415, "Import takes text/csv or application/json.")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise bad_request("The CSV file is empty.") from None
    except csv.Error as exc:
        raise bad_request(f"The CSV file is malformed: {exc}.") from None
    header = [h.strip() for h in header]
    if mapping:
        missing = [k for k in mapping if k not in header]
        if missing:
            raise bad_request(f"mapping names columns the file lacks: {', '.join(missing[:10])}.",
                              pointer="/query/mapping")
        header = [(mapping[h] or _SKIP) if h in mapping else h for h in header]
        # Two source columns mapped to the same name (or one onto another's) are refused below.
    custom_cols = {h for h in header if r.custom_fields and h.startswith("custom.") and len(h) > 7}
    # Columns of the record that the API does not take (an export's completed_at…) are
    # skipped, so an export re-imports; only names that are not fields at all are refused.
    derived = {h for h in header if h in r.spec.by_name and h not in writable and h not in r.spec.hidden}
    readonly = readonly | derived
    readonly = readonly | {_SKIP}
    unknown = [h for h in header if h not in writable and h not in readonly and h not in custom_cols]
    if unknown:
        raise bad_request(f"Unknown columns: {', '.join(unknown[:10])}. Columns: {', '.join(sorted(writable))}.")
    if len(set(h for h in header if h != _SKIP)) != len([h for h in header if h != _SKIP]):
        raise bad_request("A column appears twice in the header.")
    list_fields = {n for n, f in r.create.model_fields.items() if _annotation_info(f.annotation)[2]}
    try:
        for row in reader:
            if len(out) >= max_rows:
                raise Problem(413, f"At most {max_rows} rows per import.")
            if not any(c.strip() for c in row):
                continue
            line = reader.line_num
            if len(row) != len(header):
                out.append((line, {"__malformed__": f"has {len(row)} cells, the header has {len(header)}"}))
                continue
            fields: dict[str, Any] = {}
            for name, cell in zip(header, row, strict=True):
                if name in readonly or cell == "":
                    continue
                if name in custom_cols:
                    fields.setdefault("custom", {})[name[7:]] = cell
                elif name == "custom" and r.custom_fields and cell.strip().startswith("{"):
                    try:
                        fields.setdefault("custom", {}).update(loads(cell))
                    except (ValueError, TypeError):
                        fields["custom"] = cell
                elif name in list_fields:
                    cell = cell.strip()
                    if cell.startswith("["):
                        try:
                            fields[name] = loads(cell)
                        except ValueError:
                            fields[name] = cell
                    else:
                        fields[name] = [p.strip() for p in cell.split(";") if p.strip()]
                else:
                    fields[name] = cell
            out.append((line, fields))
    except csv.Error as exc:
        raise bad_request(f"The CSV file is malformed at line {reader.line_num}: {exc}.") from None
    return out
