"""SCIM filters and sorting as parameterised SQL.

A filter is parsed by scim2-models (the RFC 7644 §3.4.2.2 grammar) and the tree is turned
into SQL here. Every value a client sends becomes a bound parameter; attribute paths are
looked up in the published schemas and only their canonical, lower-cased names (never the
client's text) reach the statement, so a filter cannot inject SQL.

Attribute values live in `identity_scim_attr` (one row per value; see models.ScimAttr). A few
attributes that NEXUS itself owns (`id`, `active`, `userName`, `externalId`, `displayName`)
are compared against their columns instead, so that a change made in the NEXUS UI (say, a
deactivation) is seen by filters at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scim2_models import (
    Context,
    EnterpriseUser,
    Group,
    InvalidFilterException,
    SCIMException,
    ScimFilter,
    User,
)
from scim2_models.path.expressions import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
UserModel = User[EnterpriseUser]
GroupModel = Group

MAX_FILTER_LENGTH = 4096
MAX_FILTER_TERMS = 50
INDEXED_TEXT = 500  # longer values are kept but not compared case-insensitively (btree entry size)


class ScimError(Exception):
    """An error in the SCIM error schema (RFC 7644 §3.12)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


@dataclass(frozen=True)
class AttrInfo:
    type: str  # string | boolean | decimal | integer | dateTime | reference | binary | complex
    multi: bool
    case_exact: bool


def _schema_attrs(schema: dict[str, Any], prefix: str, out: dict[str, AttrInfo]) -> None:
    for a in schema.get("attributes", []):
        key = prefix + a["name"].lower()
        out[key] = AttrInfo(a["type"], bool(a.get("multiValued")), bool(a.get("caseExact")))
        for s in a.get("subAttributes") or []:
            out[key + "." + s["name"].lower()] = AttrInfo(s["type"], bool(s.get("multiValued")),
                                                         bool(s.get("caseExact")))


def _common(out: dict[str, AttrInfo]) -> None:
    out["id"] = AttrInfo("string", False, True)
    out["externalid"] = AttrInfo("string", False, True)
    out["meta"] = AttrInfo("complex", False, False)
    for name in ("created", "lastmodified"):
        out["meta." + name] = AttrInfo("dateTime", False, False)
    for name in ("resourcetype", "version", "location"):
        out["meta." + name] = AttrInfo("string", False, True)


def schema_json(model: Any) -> dict[str, Any]:
    return model.to_schema().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)  # type: ignore[no-any-return]


USER_SCHEMA = schema_json(User)
ENTERPRISE_SCHEMA = schema_json(EnterpriseUser)
GROUP_SCHEMA = schema_json(Group)

USER_ATTRS: dict[str, AttrInfo] = {}
_schema_attrs(USER_SCHEMA, "", USER_ATTRS)
_schema_attrs(ENTERPRISE_SCHEMA, ENTERPRISE.lower() + ":", USER_ATTRS)
_common(USER_ATTRS)
GROUP_ATTRS: dict[str, AttrInfo] = {}
_schema_attrs(GROUP_SCHEMA, "", GROUP_ATTRS)
_common(GROUP_ATTRS)


def normalise_datetime(value: Any) -> str:
    """Fixed-width UTC text, so that comparing text compares instants."""
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- the attribute index ---------------------------------------------------------------


def index_rows(resource: dict[str, Any], attrs: dict[str, AttrInfo]) -> list[tuple[str, int, str | None, str | None,
                                                                                    float | None]]:
    """(path, item, val, val_ci, num) for every value of a SCIM representation."""
    rows: list[tuple[str, int, str | None, str | None, float | None]] = []

    def scalar(path: str, item: int, value: Any) -> None:
        if value is None or value == "" or isinstance(value, (dict, list)):
            return
        info = attrs.get(path)
        num: float | None = None
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (int, float)):
            text, num = str(value), float(value)
        else:
            text = str(value)
            if info is not None and info.type == "dateTime":
                try:
                    text = normalise_datetime(text)
                except ValueError:
                    pass
        ci = text.lower() if len(text) <= INDEXED_TEXT else None
        rows.append((path, item, text, ci, num))

    def walk(prefix: str, obj: dict[str, Any]) -> None:
        for key, value in obj.items():
            if key == "schemas" or key.startswith("urn:"):
                continue
            path = prefix + key.lower()
            if path in ("meta.location", "groups"):
                continue
            if isinstance(value, list):
                for i, entry in enumerate(value, start=1):
                    if isinstance(entry, dict):
                        rows.append((path, i, None, None, None))  # the entry's marker row
                        for sub, v in entry.items():
                            scalar(path + "." + sub.lower(), i, v)
                    else:
                        scalar(path, i, entry)
            elif isinstance(value, dict):
                for sub, v in value.items():
                    scalar(path + "." + sub.lower(), 0, v)
            else:
                scalar(path, 0, value)

    walk("", resource)
    for key, value in resource.items():
        if key.startswith("urn:") and isinstance(value, dict):
            walk(key.lower() + ":", value)
    return rows


# -- filters -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a filter runs against: the outer table alias and the columns NEXUS owns."""

    rtype: str  # User | Group
    id_column: str
    attrs: dict[str, AttrInfo]
    columns: dict[str, tuple[str, AttrInfo]]  # path -> (SQL expression, info)


def parse_filter(text: str, rtype: str) -> FilterNode:
    if len(text) > MAX_FILTER_LENGTH:
        raise ScimError(400, f"The filter is longer than {MAX_FILTER_LENGTH} characters.", "invalidFilter")
    model = UserModel if rtype == "User" else GroupModel
    try:
        node = ScimFilter[model](text).ast  # type: ignore[valid-type]
    except SCIMException as exc:
        raise ScimError(400, f"The filter is not valid: {exc}", "invalidFilter") from None
    except (ValueError, TypeError) as exc:
        raise ScimError(400, f"The filter is not valid: {exc}", "invalidFilter") from None
    if _terms(node) > MAX_FILTER_TERMS:
        raise ScimError(400, f"The filter has more than {MAX_FILTER_TERMS} terms.", "invalidFilter")
    return node


def _terms(node: FilterNode) -> int:
    if isinstance(node, LogicalExpr):
        return sum(_terms(t) for t in node.terms)
    if isinstance(node, Not):
        return _terms(node.expr)
    if isinstance(node, ValuePath):
        return 1 + _terms(node.val_filter)
    return 1


def _path_key(ap: AttrPath, rtype: str, parent: str | None = None) -> str:
    uri = (ap.uri or "").lower()
    if uri in (CORE_USER.lower(), CORE_GROUP.lower()):
        uri = ""
    base = (uri + ":" if uri else "") + ap.attr.lower()
    if parent is not None:
        base = parent + "." + ap.attr.lower()
    if ap.sub_attr:
        base += "." + ap.sub_attr.lower()
    return base


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class FilterCompiler:
    """Turns a parsed filter into (sql, params) for `WHERE`, correlated on `target.id_column`."""

    def __init__(self, target: Target) -> None:
        self.t = target
        self.params: list[Any] = []
        self.n = 0

    def compile(self, node: FilterNode) -> str:
        return self._node(node, None)

    def _alias(self) -> str:
        self.n += 1
        return f"sa{self.n}"

    def _node(self, node: FilterNode, scope: tuple[str, str] | None) -> str:
        if isinstance(node, LogicalExpr):
            glue = " AND " if node.op == LogicalOperator.and_ else " OR "
            return "(" + glue.join(self._node(t, scope) for t in node.terms) + ")"
        if isinstance(node, Not):
            return "(NOT " + self._node(node.expr, scope) + ")"
        if isinstance(node, ValuePath):
            if scope is not None:
                raise ScimError(400, "A value filter cannot nest another.", "invalidFilter")
            path = _path_key(node.attr_path, self.t.rtype)
            info = self.t.attrs.get(path)
            if info is None or info.type != "complex" or not info.multi:
                raise ScimError(400, f"{node.attr_path} is not a multi-valued complex attribute.", "invalidFilter")
            m = self._alias()
            self.params.append(path)
            inner = self._node(node.val_filter, (m, path))
            return (f"EXISTS (SELECT 1 FROM identity_scim_attr {m} WHERE {m}.resource_id = {self.t.id_column}"
                    f" AND {m}.path = ? AND {m}.item > 0 AND {inner})")
        if isinstance(node, Present):
            return self._present(node.attr_path, scope)
        if isinstance(node, Comparison):
            return self._compare(node, scope)
        raise ScimError(400, "The filter uses an unsupported expression.", "invalidFilter")

    def _resolve(self, ap: AttrPath, scope: tuple[str, str] | None) -> tuple[str, AttrInfo]:
        path = _path_key(ap, self.t.rtype, scope[1] if scope else None)
        info = self.t.attrs.get(path)
        if info is None:
            raise ScimError(400, f"No attribute {ap} in the {self.t.rtype} schema.", "invalidFilter")
        return path, info

    def _present(self, ap: AttrPath, scope: tuple[str, str] | None) -> str:
        path, info = self._resolve(ap, scope)
        if scope is None and path in self.t.columns:
            col, _ = self.t.columns[path]
            return f"({col} IS NOT NULL AND {col} <> '')" if info.type != "boolean" else f"({col} IS NOT NULL)"
        a = self._alias()
        corr = f" AND {a}.item = {scope[0]}.item" if scope else ""
        self.params += [path, _like_escape(path) + ".%"]
        return (f"EXISTS (SELECT 1 FROM identity_scim_attr {a} WHERE {a}.resource_id = {self.t.id_column}{corr}"
                f" AND ({a}.path = ? OR {a}.path LIKE ? ESCAPE '\\'))")

    def _compare(self, node: Comparison, scope: tuple[str, str] | None) -> str:
        path, info = self._resolve(node.attr_path, scope)
        if info.type == "complex":
            # `emails eq "x"` means the entries' value (RFC 7644 §3.4.2.2).
            path, info = path + ".value", self.t.attrs.get(path + ".value") or AttrInfo("string", False, False)
        op = node.op
        if op == CompareOperator.ne:
            return "(NOT " + self._compare(Comparison(node.attr_path, CompareOperator.eq, node.value), scope) + ")"
        value = node.value
        if value is None:
            if op == CompareOperator.eq:
                return "(NOT " + self._present(node.attr_path, scope) + ")"
            raise ScimError(400, f"{op.value} cannot compare with null.", "invalidFilter")
        if scope is None and path in self.t.columns:
            col, cinfo = self.t.columns[path]
            return self._condition(col, col, None, cinfo, op, value)
        a = self._alias()
        corr = f" AND {a}.item = {scope[0]}.item" if scope else ""
        self.params.append(path)
        cond = self._condition(f"{a}.val", f"{a}.val_ci", f"{a}.num", info, op, value)
        return (f"EXISTS (SELECT 1 FROM identity_scim_attr {a} WHERE {a}.resource_id = {self.t.id_column}{corr}"
                f" AND {a}.path = ? AND {cond})")

    def _condition(self, exact_col: str, ci_col: str, num_col: str | None, info: AttrInfo, op: CompareOperator,
                   value: Any) -> str:
        kind = info.type
        if kind == "boolean":
            if op != CompareOperator.eq or not isinstance(value, bool):
                raise ScimError(400, "A boolean attribute takes eq true or eq false.", "invalidFilter")
            self.params.append("true" if value else "false")
            return f"{exact_col} = ?"
        if kind in ("integer", "decimal") and num_col is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ScimError(400, "A number attribute compares with a number.", "invalidFilter")
            if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
                raise ScimError(400, f"{op.value} does not apply to numbers.", "invalidFilter")
            self.params.append(float(value))
            return f"{num_col} {_SQL_OP[op]} ?"
        if kind == "binary" and op not in (CompareOperator.eq,):
            raise ScimError(400, f"{op.value} does not apply to binary attributes.", "invalidFilter")
        text = value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
        if kind == "dateTime":
            try:
                text = normalise_datetime(text)
            except ValueError:
                raise ScimError(400, f"{value!r} is not a date and time.", "invalidFilter") from None
        col = exact_col if info.case_exact else ci_col
        if not info.case_exact:
            text = text.lower()
        if op == CompareOperator.eq:
            self.params.append(text)
            return f"{col} = ?"
        if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
            pattern = _like_escape(text)
            pattern = {"co": f"%{pattern}%", "sw": f"{pattern}%", "ew": f"%{pattern}"}[op.value]
            self.params.append(pattern)
            return f"{col} LIKE ? ESCAPE '\\'"
        if op in _SQL_OP:
            self.params.append(text)
            return f"{col} {_SQL_OP[op]} ?"
        raise ScimError(400, f"Unsupported operator {op.value}.", "invalidFilter")


_SQL_OP = {CompareOperator.gt: ">", CompareOperator.ge: ">=", CompareOperator.lt: "<", CompareOperator.le: "<=",
           CompareOperator.eq: "="}


def sort_expression(target: Target, sort_by: str) -> tuple[str, list[Any]]:
    """An ORDER BY expression for `sortBy` (RFC 7644 §3.4.2.3): the attribute's smallest
    value for multi-valued ones; resources without a value sort last either way."""
    try:
        node = ScimFilter(f"{sort_by} pr").ast
    except (SCIMException, ValueError):
        raise ScimError(400, f"sortBy {sort_by!r} is not an attribute path.", "invalidValue") from None
    if not isinstance(node, Present):
        raise ScimError(400, f"sortBy {sort_by!r} is not an attribute path.", "invalidValue")
    path = _path_key(node.attr_path, target.rtype)
    info = target.attrs.get(path)
    if info is None:
        raise ScimError(400, f"No attribute {sort_by} in the {target.rtype} schema.", "invalidValue")
    if info.type == "complex":
        path += ".value"
        info = target.attrs.get(path) or AttrInfo("string", False, False)
    if path in target.columns:
        return target.columns[path][0], []
    col = "num" if info.type in ("integer", "decimal") else ("val" if info.case_exact else "val_ci")
    return (f"(SELECT MIN(so.{col}) FROM identity_scim_attr so WHERE so.resource_id = {target.id_column}"
            f" AND so.path = ?)", [path])


__all__ = ["AttrInfo", "FilterCompiler", "InvalidFilterException", "ScimError", "Target", "index_rows",
           "parse_filter", "sort_expression"]
