"""Custom fields per org (kernel subsystem): typed fields an org adds to any resource that
declares `custom_fields=True` — without code, in forms, lists, filters, imports and exports.

* Definitions are records of `/api/v1/customfields/fields` (kernel_custom_field): a resource
  key ("crm.contacts"), a name, and a type — text, number, date, choice (with choices) or
  reference (to another resource, e.g. "crm.companies").
* Values live in the record's `custom` JSON column. The generic create and update check them
  against the org's definitions (unknown names, types, choices, required, references to live
  records of the same org) and answer 422 with a pointer `/custom/<name>`; PATCH merges
  `custom` into the stored values (null removes one).
* Lists filter on them with `custom.<name>[op]=value` (typed operators like columns have),
  `/api/v1/meta` lists them under `custom_fields`, and CSV export/import carry them as
  `custom.<name>` columns.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from nexus.kernel.cache import TTLCache
from nexus.kernel.errors import Problem, bad_request, validation
from nexus.kernel.models import CustomField
from nexus.kernel.permissions import PRIVILEGED_PERMISSIONS
from nexus.kernel.records import UnitOfWork
from nexus.kernel.resources import CONFIGURATION, RecordService, Resource
from nexus.kernel.schema_base import Schema

if TYPE_CHECKING:
    from nexus.kernel.db import Conn, Database
    from nexus.kernel.http.app import Nexus

TYPES = ("text", "number", "date", "choice", "reference")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
OPS = {
    "text": ("eq", "ne", "in", "isnull", "startswith"),
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "isnull"),
    "date": ("eq", "ne", "gt", "gte", "lt", "lte", "isnull"),
    "choice": ("eq", "ne", "in", "nin", "isnull"),
    "reference": ("eq", "in", "isnull"),
}
MAX_TEXT = 10_000
MAX_FIELDS = 200  # per resource and org
_SQL_OP = {"eq": "=", "ne": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

# Definitions of (org, resource): read on every write of an opted-in resource, so they are
# remembered briefly; this process forgets them at once when it changes one.
_CACHE = TTLCache(ttl=5.0)
_ALL: dict[str, Resource] = {}  # every resource of the process, to check targets and opt-ins


class CustomFieldCreate(Schema):
    resource: Annotated[str, StringConstraints(min_length=3, max_length=130)] = Field(
        description='The resource the field is added to, "app.resource" (e.g. crm.contacts)')
    name: Annotated[str, StringConstraints(pattern=NAME.pattern)] = Field(
        description="Lower-case key: filters use custom.<name>, exports a custom.<name> column")
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: Literal["text", "number", "date", "choice", "reference"]
    choices: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=100)]],
                       Field(max_length=200)] = []
    reference: Annotated[str, StringConstraints(max_length=130)] | None = Field(
        default=None, description='For type reference: the target resource, "app.resource"')
    required: bool = False
    position: Annotated[int, Field(ge=0, le=10_000)] = 0
    description: Annotated[str, StringConstraints(max_length=2000)] = ""

    @model_validator(mode="after")
    def _shape(self) -> CustomFieldCreate:
        if self.type == "choice" and not self.choices:
            raise ValueError("a choice field needs choices")
        if self.type != "choice" and self.choices:
            raise ValueError("only a choice field takes choices")
        if (self.type == "reference") != (self.reference is not None):
            raise ValueError("a reference field, and only one, names its target resource")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("choices must be different")
        return self


class CustomFieldUpdate(Schema):
    """The key, type and target of a field are fixed once values exist; the rest may change."""

    label: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    choices: Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=100)]],
                       Field(max_length=200)] | None = None
    required: bool | None = None
    position: Annotated[int, Field(ge=0, le=10_000)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None


class CustomFieldService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        target = _ALL.get(values["resource"])
        if target is None or not target.custom_fields:
            opted = sorted(k for k, r in _ALL.items() if r.custom_fields)
            raise validation([{"pointer": "/resource",
                               "detail": f"takes no custom fields; these do: {', '.join(opted) or 'none'}"}])
        if values.get("reference") is not None and values["reference"] not in _ALL:
            raise validation([{"pointer": "/reference", "detail": "no such resource"}])
        if target.spec.has(values["name"]):
            raise validation([{"pointer": "/name", "detail": "is a built-in field of this resource"}])
        existing = await uow.find(self.spec, {"resource": values["resource"]})
        if any(f["name"] == values["name"] for f in existing):
            raise validation([{"pointer": "/name", "detail": "this resource has a field with this name"}])
        if len(existing) >= MAX_FIELDS:
            raise Problem(409, f"A resource takes at most {MAX_FIELDS} custom fields.")
        _forget(uow, values["resource"])

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if before["type"] == "choice" and changes.get("choices") == []:
            raise validation([{"pointer": "/choices", "detail": "a choice field needs choices"}])
        if before["type"] != "choice" and changes.get("choices"):
            raise validation([{"pointer": "/choices", "detail": "only a choice field takes choices"}])
        _forget(uow, before["resource"])

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None:
        _forget(uow, record["resource"])

    async def restore(self, uow: UnitOfWork, record_id: str) -> dict[str, Any]:
        rec = await uow.require(self.spec, record_id, include_deleted=True, what="custom field")
        if rec["deleted_at"] is not None and await uow.find(self.spec, {"resource": rec["resource"],
                                                                         "name": rec["name"]}):
            raise Problem(409, "A field with this name exists; delete or rename it first.")
        _forget(uow, rec["resource"])
        return await super().restore(uow, record_id)


def _forget(uow: UnitOfWork, resource_key: str) -> None:
    key = (uow.ctx.org_id, resource_key)
    _CACHE.delete(key)
    uow.after_commit.append(lambda: _CACHE.delete(key))


def fields_resource() -> Resource:
    return Resource(
        app="customfields", name="fields", model=CustomField, create=CustomFieldCreate, update=CustomFieldUpdate,
        service=CustomFieldService, entity="custom_field", title="Custom fields", title_field="label",
        filters=("resource", "name", "type"), sorts=("position", "name", "created_at"),
        default_sort="position", description="Fields an organisation adds to records, typed, without code.",
        privileged=CONFIGURATION,
    )


# -- reading definitions -----------------------------------------------------------------


async def definitions(conn: Conn, db: Database, org_id: str, resource_key: str) -> list[dict[str, Any]]:
    """The org's live fields of a resource, in form order."""
    key = (org_id, resource_key)
    got = _CACHE.get(key)
    if got is not None:
        return got  # type: ignore[no-any-return]
    spec = _spec()
    rows = await conn.fetch(
        f"SELECT {spec.select_list} FROM {spec.name} WHERE org_id = ? AND resource = ? AND deleted_at IS NULL"
        " ORDER BY position, name", [org_id, resource_key])
    out = [spec.to_dict(db.dialect, r) for r in rows]
    _CACHE.set(key, out)
    return out


async def definitions_for(db: Database, org_id: str, resource_key: str) -> list[dict[str, Any]]:
    async with db.reader() as conn:
        return await definitions(conn, db, org_id, resource_key)


_SPEC: list[Any] = []


def _spec() -> Any:
    if not _SPEC:
        from nexus.kernel.records import TableSpec

        _SPEC.append(TableSpec(CustomField))
    return _SPEC[0]


def describe(defs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Definitions as /api/v1/meta field entries (name custom.<name>)."""
    out = []
    for d in defs:
        entry: dict[str, Any] = {
            "name": f"custom.{d['name']}", "key": d["name"], "label": d["label"],
            "type": d["type"], "required": d["required"], "nullable": not d["required"], "readonly": False,
            "updatable": True, "filterable": True, "sortable": False, "searchable": False, "custom": True,
            "operators": list(OPS[d["type"]]), "description": d["description"],
        }
        if d["type"] == "choice":
            entry["choices"] = d["choices"]
        if d["type"] == "reference":
            entry["reference"] = d["reference"]
        out.append(entry)
    return out


# -- checking values -------------------------------------------------------------------------


def _coerce(ftype: str, value: Any, d: dict[str, Any]) -> Any:
    """A value of the field's type (CSV cells arrive as text), or ValueError."""
    if ftype == "text":
        if not isinstance(value, str):
            raise ValueError("must be text")
        if len(value) > MAX_TEXT:
            raise ValueError(f"at most {MAX_TEXT} characters")
        return value
    if ftype == "number":
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            num = Decimal(str(value).strip()) if isinstance(value, (str, int, float)) else None
        except InvalidOperation:
            num = None
        if num is None or not num.is_finite() or abs(num) >= Decimal("1e15"):
            raise ValueError("must be a number")
        return int(num) if num == num.to_integral_value() else float(num)
    if ftype == "date":
        if not isinstance(value, str):
            raise ValueError("must be a date (YYYY-MM-DD)")
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if ftype == "choice":
        if value not in d["choices"]:
            raise ValueError(f"must be one of {', '.join(d['choices'])}")
        return value
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise ValueError("must be the id of a record")
    return value


async def check_values(uow: UnitOfWork, resource: Resource, values: dict[str, Any],
                       before: dict[str, Any] | None) -> None:
    """Validate (and on update, merge) `values["custom"]` in place; 422 on any bad value."""
    if before is not None and "custom" not in values:
        return
    given = values.get("custom")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise validation([{"pointer": "/custom", "detail": "must be an object"}])
    defs = {d["name"]: d for d in await definitions(uow.conn, uow.db, uow.ctx.org_id, resource.key)}
    merged: dict[str, Any] = dict(before.get("custom") or {}) if before is not None else {}
    errors: list[dict[str, str]] = []
    refs: dict[str, list[tuple[str, str]]] = {}
    for name, value in given.items():
        d = defs.get(name)
        if d is None:
            errors.append({"pointer": f"/custom/{name}", "detail": "no such custom field"})
            continue
        if value is None or value == "":
            merged.pop(name, None)
            continue
        try:
            merged[name] = _coerce(d["type"], value, d)
        except ValueError as exc:
            errors.append({"pointer": f"/custom/{name}", "detail": str(exc)})
            continue
        if d["type"] == "reference":
            refs.setdefault(d["reference"], []).append((name, merged[name]))
    for name, d in defs.items():
        if d["required"] and merged.get(name) is None and not any(e["pointer"] == f"/custom/{name}" for e in errors):
            errors.append({"pointer": f"/custom/{name}", "detail": "is required"})
    for target_key, pairs in refs.items():
        target = _ALL.get(target_key)
        if target is None:
            continue
        ids = list({v for _, v in pairs})
        sql = (f"SELECT id FROM {target.spec.name} WHERE org_id = ? AND id IN ({','.join('?' * len(ids))})"
               + (" AND deleted_at IS NULL" if target.spec.soft_delete else ""))
        found = {r[0] for r in await uow.conn.fetch(sql, [uow.ctx.org_id, *ids])}
        errors += [{"pointer": f"/custom/{n}", "detail": f"no such {target.entity} in this org"}
                   for n, v in pairs if v not in found]
    if errors:
        raise validation(errors)
    values["custom"] = merged


# -- filtering ------------------------------------------------------------------------------------


def filter_sql(db: Database, table: str, d: dict[str, Any], op: str, raw: str, key: str) -> tuple[str, list[Any]]:
    """One `custom.<name>[op]=raw` condition on the JSON column, every value bound."""
    from nexus.kernel.query import MAX_IN, _like_escape

    ftype = d["type"]
    if op not in OPS[ftype]:
        raise bad_request(f"Operator {op!r} does not apply to custom.{d['name']}; use one of "
                          f"{', '.join(OPS[ftype])}.", pointer=f"/query/{key}")
    if db.dialect == "sqlite":
        expr, path = f"json_extract({table}.custom, ?)", [f'$."{d["name"]}"']
    else:
        expr, path = f"({table}.custom ->> ?)", [d["name"]]
        if ftype == "number":
            expr = f"({table}.custom ->> ?)::numeric"

    def value(v: str) -> Any:
        try:
            out = _coerce(ftype, v, d) if ftype != "choice" else v
        except ValueError as exc:
            raise bad_request(f"{v[:100]!r}: custom.{d['name']} {exc}.", pointer=f"/query/{key}") from None
        return Decimal(str(out)) if ftype == "number" and db.dialect == "postgresql" else out

    if op == "isnull":
        flag = raw.lower() in ("true", "1", "yes")
        if raw.lower() not in ("true", "1", "yes", "false", "0", "no"):
            raise bad_request(f"{key} takes true or false.", pointer=f"/query/{key}")
        return (f"{expr} IS NULL" if flag else f"{expr} IS NOT NULL"), path
    if op in ("in", "nin"):
        items = [v for v in raw.split(",") if v != ""]
        if not items or len(items) > MAX_IN:
            raise bad_request(f"{key} takes 1 to {MAX_IN} comma-separated values.", pointer=f"/query/{key}")
        return (f"{expr} {'IN' if op == 'in' else 'NOT IN'} ({','.join('?' * len(items))})",
                [*path, *(value(v) for v in items)])
    if op == "startswith":
        return f"{expr} LIKE ? ESCAPE '\\'", [*path, _like_escape(raw) + "%"]
    return f"{expr} {_SQL_OP[op]} ?", [*path, value(raw)]


def _know(nx: Nexus) -> None:
    """Every resource of the process (apps' and kernel subsystems'), for targets and opt-ins."""
    _ALL.update(nx.all_resources)


def install(nx: Nexus) -> None:
    resource = fields_resource()
    # Defining fields reshapes every form and export of the org: an admin's job, not something
    # a member's `*.*.create` reaches. Everyone reads them; values are edited with the record's
    # own permission.
    PRIVILEGED_PERMISSIONS.update(resource.permission(v) for v in resource.privileged)
    resource.service_instance.references_resolver = nx.table_for
    nx.resources[("customfields", "fields")] = resource
    nx.all_resources[resource.key] = resource

    async def know_all() -> None:  # subsystems installed after this one add resources too
        _know(nx)

    nx.on("startup", know_all)
    _know(nx)
    from nexus.kernel.events import EventType, record_event_schema

    for verb in ("created", "updated", "deleted", "restored"):
        nx.events.register_type(EventType(resource.event_type(verb), "1", f"A custom field was {verb}.",
                                          record_event_schema(resource.event_type(verb)), resource.key))


__all__ = ["TYPES", "check_values", "definitions", "definitions_for", "describe", "filter_sql", "install"]
