"""Declared resources (DESIGN.md §3): a model, schemas and a few lists of field names
yield list/get/create/update/delete/restore, import/export, actions and metadata.

An app declares:

    tasks = Resource(app="tasks", name="tasks", model=Task, create=TaskCreate,
                     filters=("status", "assignee_id"), sorts=("due_at",), search=("title",),
                     references={"assignee_id": "identity.users"}, service=TaskService)

and every state change runs through `service` (a `RecordService`) inside one unit of work.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import PydanticUndefined

from nexus.kernel.cache import TTLCache
from nexus.kernel.errors import Problem, validation
from nexus.kernel.records import TableSpec, UnitOfWork
from nexus.kernel.schema_base import Schema

__all__ = ["CONFIGURATION", "Action", "RecordRule", "RecordService", "Resource", "Schema", "View", "pydantic_errors"]

# The verbs that change a resource: Resource(privileged=CONFIGURATION) makes them admin-only
# (wildcard app grants do not reach them) while everyone who may read still reads.
CONFIGURATION = ("create", "update", "delete", "import")

READONLY = ("id", "org_id", "created_at", "created_by", "updated_at", "updated_by", "version", "deleted_at")


@dataclass(frozen=True)
class Action:
    """A domain action on one record: POST /api/v1/{app}/{resource}/{id}/{name}."""

    name: str
    method: str  # name of the service method: async def m(uow, record, body) -> record
    input: type[BaseModel] | None = None
    permission: str = "update"
    summary: str = ""
    event: str = ""  # the verb of its event, nexus.{app}.{entity}.{event}; default: past tense of name

    @property
    def verb(self) -> str:
        if self.event:
            return self.event
        base = self.name.replace("-", "_")
        return base + ("d" if base.endswith("e") else "ed")


@dataclass(frozen=True)
class View:
    """A named saved filter (`?view=mine`), computed per caller."""

    name: str
    title: str
    where: Callable[[Any, Any], list[tuple[str, list[Any]]]]  # (principal, database) -> conditions
    default_sort: str | None = None


@dataclass(frozen=True)
class RecordRule:
    """Row-level access on top of permissions (DESIGN.md §6 "record rules"): which records of
    a resource a caller may see, and which they may change. Each function returns a SQL
    condition on the resource's table with `?` parameters; the kernel applies it to lists,
    reads, exports, search hits, updates, deletes and actions. Holders of
    `{app}.{resource}.{bypass}` (admins, through `*`) see and change everything."""

    read: Callable[[Any], tuple[str, list[Any]]]
    write: Callable[[Any], tuple[str, list[Any]]] | None = None
    bypass: str = "all"


@dataclass
class Resource:
    app: str
    name: str
    model: Any
    create: type[BaseModel]
    update: type[BaseModel] | None = None
    service: type[RecordService] | None = None
    filters: tuple[str, ...] = ()
    sorts: tuple[str, ...] = ("created_at", "updated_at")
    search: tuple[str, ...] = ()
    default_sort: str = "-created_at"
    references: dict[str, str] = field(default_factory=dict)
    actions: tuple[Action, ...] = ()
    views: tuple[View, ...] = ()
    title: str = ""
    entity: str = ""
    title_field: str | None = None
    importable: bool = True
    description: str = ""
    hidden: tuple[str, ...] = ()
    rule: RecordRule | None = None
    # Global search: who may find a record — None (everyone who may read the resource) or
    # tokens "user:<id>" / "role:<name>" (kernel/search.py). Keep it in step with `rule`.
    search_visibility: Callable[[dict[str, Any]], list[str] | None] | None = None
    # Custom fields per org (kernel/customfields.py): the model has a JSON `custom` column;
    # the create and update schemas take `custom` (added here when the app's lacks it).
    custom_fields: bool = False
    # Verbs ("create", "update", …, or an action's permission) that configure the app rather
    # than work in it: wildcard app grants (a member's `*.*.update`) do not reach them, so they
    # take `*` (admins) or a grant naming the app — see kernel/permissions.py. `CONFIGURATION`
    # is the usual choice: everyone may read, only admins change.
    privileged: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.spec = TableSpec(self.model, self.hidden)
        if self.custom_fields:
            if not self.spec.has("custom") or self.spec.by_name["custom"].kind != "json":
                raise ValueError(f"{self.app}.{self.name}: custom_fields needs a JSON column `custom`")
            if "custom" not in self.create.model_fields:
                self.create = _with_custom(self.create)
            if self.update is not None and "custom" not in self.update.model_fields:
                self.update = _with_custom(self.update, optional=True)
        self.title = self.title or self.name.replace("-", " ").replace("_", " ").capitalize()
        self.entity = self.entity or (self.name[:-1] if self.name.endswith("s") else self.name).replace("-", "_")
        if self.update is None:
            self.update = partial_model(self.create)
        self.filters = tuple(dict.fromkeys((*self.filters, "created_at", "updated_at", "created_by")))
        for name in (*self.filters, *self.sorts, *self.search, *self.references):
            if not self.spec.has(name):
                raise ValueError(f"{self.key}: {name!r} is not a column of {self.spec.name}")
        if self.title_field is None:
            for cand in ("title", "name", "email", "subject", "label"):
                if self.spec.has(cand):
                    self.title_field = cand
                    break
        known_verbs = {"read", "create", "update", "delete", "export", "import", *(a.permission for a in self.actions)}
        for verb in self.privileged:
            if verb not in known_verbs:
                raise ValueError(f"{self.key}: privileged verb {verb!r} is not one of {sorted(known_verbs)}")
        self.service_instance: RecordService = (self.service or RecordService)(self)
        self.action_map = {a.name: a for a in self.actions}
        self.view_map = {v.name: v for v in self.views}
        self.writable = tuple(self.create.model_fields)
        for a in self.actions:
            if not hasattr(self.service_instance, a.method):
                raise ValueError(f"{self.key}: action {a.name} needs {type(self.service_instance).__name__}.{a.method}")

    @property
    def key(self) -> str:
        return f"{self.app}.{self.name}"

    def permission(self, action: str) -> str:
        return f"{self.app}.{self.name}.{action}"

    def read_condition(self, principal: Any) -> tuple[str, list[Any]] | None:
        """The record rule's visibility condition for this caller, or None when all rows are visible."""
        from nexus.kernel.permissions import has_permission

        if self.rule is None or has_permission(principal, self.permission(self.rule.bypass)):
            return None
        return self.rule.read(principal)

    def write_condition(self, principal: Any) -> tuple[str, list[Any]] | None:
        from nexus.kernel.permissions import has_permission

        if self.rule is None or has_permission(principal, self.permission(self.rule.bypass)):
            return None
        return (self.rule.write or self.rule.read)(principal)

    def event_type(self, verb: str) -> str:
        return f"nexus.{self.app}.{self.entity}.{verb}"


class RecordService:
    """Generic use cases for a record type. Subclass per app to add rules and domain verbs;
    the hooks run inside the unit of work, before the write."""

    audited_fields: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, resource: Resource) -> None:
        self.resource = resource
        self.spec = resource.spec
        self.references_resolver: Callable[[str], TableSpec | None] | None = None

    # -- hooks ---------------------------------------------------------------
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        """Validate and derive values; raise Problem(422) to refuse."""

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        """Validate changes against the current record; may add derived changes."""

    async def before_delete(self, uow: UnitOfWork, record: dict[str, Any]) -> None: ...

    async def after_create(self, uow: UnitOfWork, record: dict[str, Any]) -> None: ...

    async def after_update(self, uow: UnitOfWork, before: dict[str, Any], after: dict[str, Any]) -> None: ...

    # -- use cases -----------------------------------------------------------
    async def create(self, uow: UnitOfWork, values: dict[str, Any]) -> dict[str, Any]:
        if self.resource.custom_fields:
            from nexus.kernel.customfields import check_values

            await check_values(uow, self.resource, values, None)
        await self.check_references(uow, values)
        await self.before_create(uow, values)
        record = await uow.insert(self.spec, values)
        await self.after_create(uow, record)
        self.record_change(uow, "created", None, record)
        return record

    async def update(self, uow: UnitOfWork, record_id: str, changes: dict[str, Any],
                     expected_version: int | None = None) -> dict[str, Any]:
        before = await uow.require(self.spec, record_id)
        if expected_version is not None and before["version"] != expected_version:
            raise Problem(412, "The record was changed by someone else; reload it and try again.",
                          extra={"current_version": before["version"]})
        if self.resource.custom_fields:
            from nexus.kernel.customfields import check_values

            await check_values(uow, self.resource, changes, before)
        self.refuse_nulls(changes)
        await self.check_references(uow, changes)
        await self.before_update(uow, before, changes)
        changed = {k: v for k, v in changes.items() if before.get(k) != _comparable(v, before.get(k))}
        if not changed:
            return before
        before, after = await uow.update(self.spec, record_id, changed, expected_version=before["version"])
        await self.after_update(uow, before, after)
        self.record_change(uow, "updated", before, after)
        return after

    async def delete(self, uow: UnitOfWork, record_id: str, expected_version: int | None = None) -> dict[str, Any]:
        record = await uow.require(self.spec, record_id)
        if expected_version is not None and record["version"] != expected_version:
            raise Problem(412, "The record was changed by someone else; reload it and try again.",
                          extra={"current_version": record["version"]})
        await self.before_delete(uow, record)
        before, after = await uow.update(self.spec, record_id, {"deleted_at": uow.now})
        self.record_change(uow, "deleted", before, after)
        return after

    async def restore(self, uow: UnitOfWork, record_id: str) -> dict[str, Any]:
        record = await uow.require(self.spec, record_id, include_deleted=True)
        if record["deleted_at"] is None:
            raise Problem(409, "The record is not deleted.")
        before, after = await uow.update(self.spec, record_id, {"deleted_at": None}, include_deleted=True)
        self.record_change(uow, "restored", before, after)
        return after

    async def change(self, uow: UnitOfWork, record: dict[str, Any], changes: dict[str, Any], verb: str) -> dict[str, Any]:
        """Apply a domain action's changes to a record already loaded, audited under `verb`."""
        before, after = await uow.update(self.spec, record["id"], changes, expected_version=record["version"])
        self.record_change(uow, verb, before, after)
        return after

    # -- helpers -------------------------------------------------------------
    def record_change(self, uow: UnitOfWork, verb: str, before: dict[str, Any] | None,
                      after: dict[str, Any] | None) -> None:
        r = self.resource
        rec = after or before or {}
        uow.audit(r.app, r.name, rec.get("id"), verb, before, after)
        uow.emit(r.event_type(verb), rec.get("id"), {"id": rec.get("id"), "record": after, "previous": before})

    def refuse_nulls(self, changes: dict[str, Any]) -> None:
        errors = [
            {"pointer": f"/{k}", "detail": "may not be null"}
            for k, v in changes.items()
            if v is None and self.spec.has(k) and not self.spec.by_name[k].nullable
        ]
        if errors:
            raise validation(errors)

    async def check_references(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        """Every reference names a live record of the same org: one query per target table.
        Hits are remembered for a few seconds (a record deleted in that window may still be
        referenced once; the alternative is a query per reference on every write)."""
        wanted: dict[str, list[tuple[str, Any]]] = {}
        for fname, target in self.resource.references.items():
            ref_id = values.get(fname)
            if ref_id is not None:
                wanted.setdefault(target, []).append((fname, ref_id))
        if not wanted or self.references_resolver is None:
            return
        errors = []
        org = uow.ctx.org_id
        for target, refs in wanted.items():
            spec = self.references_resolver(target)
            if spec is None:
                continue
            missing = []
            for fname, ref_id in refs:
                if not isinstance(ref_id, str) or len(ref_id) > 64:
                    errors.append((fname, target))
                elif _REF_CACHE.get((spec.name, org, ref_id)) is None:
                    missing.append((fname, ref_id))
            if not missing:
                continue
            ids = list({rid for _, rid in missing})
            sql = f"SELECT id FROM {spec.name} WHERE org_id = ? AND id IN ({','.join('?' * len(ids))})"
            if spec.soft_delete:
                sql += " AND deleted_at IS NULL"
            found = {r[0] for r in await uow.conn.fetch(sql, [org, *ids])}
            for fname, ref_id in missing:
                if ref_id in found:
                    _REF_CACHE.set((spec.name, org, ref_id), True)
                else:
                    errors.append((fname, target))
        if errors:
            raise validation([{"pointer": f"/{f}", "detail": f"no such {t.split('.')[1].rstrip('s')} in this org"}
                              for f, t in errors])


_REF_CACHE = TTLCache(ttl=5.0)


def _comparable(new: Any, old: Any) -> Any:
    """Compare a new value with the stored form (timestamps are text on SQLite)."""
    if old is None or new is None:
        return new
    if isinstance(old, str) and not isinstance(new, str):
        from datetime import datetime

        from nexus.kernel.jsonutil import iso

        if isinstance(new, datetime):
            return iso(new)
        return str(new) if not isinstance(new, (list, dict, bool, int)) else new
    return new


CUSTOM_DESCRIPTION = "This org's custom fields, by name (GET /api/v1/meta lists them); PATCH merges, null removes"


def _with_custom(model: type[BaseModel], optional: bool = False) -> type[BaseModel]:
    from pydantic import Field

    ann: Any = dict[str, Any] | None if optional else dict[str, Any]
    default: Any = None if optional else {}
    return create_model(model.__name__, __base__=model,  # type: ignore[call-overload,no-any-return]
                        custom=(ann, Field(default=default, description=CUSTOM_DESCRIPTION)))


def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """The PATCH schema: every field of the create schema, optional, same constraints."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        new_info = info._copy() if hasattr(info, "_copy") else info
        new_info.default = None
        new_info.default_factory = None
        fields[name] = (ann | None, new_info)  # type: ignore[operator]
    cfg = ConfigDict(extra="forbid", str_strip_whitespace=True)
    return create_model(f"{model.__name__}Patch", __config__=cfg, **fields)  # type: ignore[call-overload,no-any-return]


def pydantic_errors(exc: ValidationError) -> Problem:
    errors = []
    for e in exc.errors(include_url=False, include_input=False):
        if e["type"] == "json_invalid":
            return Problem(400, f"The body is not valid JSON: {e.get('ctx', {}).get('error', e['msg'])}.",
                           type="malformed-json")
        loc = [str(p) for p in e["loc"]]
        pointer = "/" + "/".join(loc) if loc else ""
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        elif e["type"] in ("model_type", "model_attributes_type", "dict_type") and not loc:
            return Problem(422, "The body must be a JSON object.", errors=[{"pointer": "", "detail": msg}])
        errors.append({"pointer": pointer, "detail": msg})
    return validation(errors)


# -- field metadata for /api/v1/meta and OpenAPI --------------------------------

_KIND_TYPE = {"str": "string", "int": "integer", "float": "number", "decimal": "decimal", "bool": "boolean",
              "ts": "datetime", "date": "date", "json": "json"}


def _annotation_info(ann: Any) -> tuple[str | None, list[Any] | None, bool]:
    """(type, choices, is_list) from a pydantic annotation."""
    origin = get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return _annotation_info(args[0])
    if origin is Literal:
        return "choice", list(get_args(ann)), False
    if origin is typing.Annotated:
        return _annotation_info(get_args(ann)[0])
    if origin in (list, tuple, set, frozenset):
        inner = get_args(ann)
        t, ch, _ = _annotation_info(inner[0]) if inner else ("string", None, False)
        return t, ch, True
    if isinstance(ann, type) and issubclass(ann, Enum):
        return "choice", [m.value for m in ann], False
    return None, None, False


def describe_fields(resource: Resource) -> list[dict[str, Any]]:
    spec = resource.spec
    create_fields = resource.create.model_fields
    out = []
    for col in spec.columns:
        if col.name == "org_id":
            continue
        info = create_fields.get(col.name)
        ftype = _KIND_TYPE[col.kind]
        choices = None
        is_list = False
        if info is not None:
            t, choices, is_list = _annotation_info(info.annotation)
            if t == "choice":
                ftype = "choice"
        if col.kind == "json" and is_list:
            ftype = "list"
        entry: dict[str, Any] = {
            "name": col.name,
            "label": col.name.replace("_id", "").replace("_", " ").capitalize(),
            "type": ftype,
            "required": bool(info is not None and info.is_required()),
            "nullable": col.nullable,
            "readonly": info is None,
            "filterable": col.name in resource.filters,
            "sortable": col.name in resource.sorts,
            "searchable": col.name in resource.search,
        }
        if choices:
            entry["choices"] = choices
        if col.name in resource.references:
            entry["type"] = "reference"
            entry["reference"] = resource.references[col.name]
        if info is not None:
            if info.description:
                entry["description"] = info.description
            for m in info.metadata:
                for attr in ("max_length", "min_length", "ge", "le", "gt", "lt", "pattern"):
                    v = getattr(m, attr, None)
                    if v is not None:
                        entry[attr] = v
            if not info.is_required() and info.default is not None and info.default is not PydanticUndefined \
                    and not callable(info.default):
                d = info.default
                entry["default"] = d.value if isinstance(d, Enum) else d
        elif col.max_length:
            entry["max_length"] = col.max_length
        if entry["filterable"]:
            from nexus.kernel.query import OPS_BY_KIND

            entry["operators"] = list(OPS_BY_KIND[col.kind])
        _extra_hints(resource, col.name, info, entry)
        out.append(entry)
    columns = {c.name for c in spec.columns}
    for name, info in create_fields.items():
        if name in columns or name in spec.by_name:
            continue
        # Written on create but not stored as such (a user's initial password…).
        t, choices, is_list = _annotation_info(info.annotation)
        entry = {"name": name, "label": name.replace("_", " ").capitalize(),
                 "type": "list" if is_list else ("choice" if t == "choice" else "string"),
                 "required": info.is_required(), "nullable": not info.is_required(), "readonly": False,
                 "create_only": True, "updatable": False, "filterable": False, "sortable": False,
                 "searchable": False}
        if choices:
            entry["choices"] = choices
        if info.description:
            entry["description"] = info.description
        _extra_hints(resource, name, info, entry)
        out.append(entry)
    return out


def _extra_hints(resource: Resource, name: str, info: Any, entry: dict[str, Any]) -> None:
    """What a form needs beyond the type: may PATCH change it, what its list items are,
    and display hints declared with Field(json_schema_extra={"format": "html"})."""
    update_fields = resource.update.model_fields if resource.update is not None else {}
    entry.setdefault("updatable", name in update_fields)
    if info is None:
        return
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if "format" in extra:
        entry["format"] = extra["format"]
    if entry.get("type") == "list":
        inner = _list_inner(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            entry["items"] = {"type": "object", "fields": [
                {"name": n, "type": _scalar_name(f.annotation), "required": f.is_required()}
                for n, f in inner.model_fields.items()]}
        else:
            entry["items"] = {"type": _scalar_name(inner)}


def _list_inner(ann: Any) -> Any:
    origin = get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        return _list_inner(args[0]) if len(args) == 1 else None
    if origin is typing.Annotated:
        return _list_inner(get_args(ann)[0])
    if origin in (list, tuple, set, frozenset):
        inner = get_args(ann)
        return inner[0] if inner else str
    return None


def _scalar_name(ann: Any) -> str:
    t, _, _ = _annotation_info(ann)
    if t == "choice":
        return "choice"
    base = ann
    while get_origin(base) is typing.Annotated:
        base = get_args(base)[0]
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(base, "string")


Handler = Callable[..., Awaitable[Any]]
