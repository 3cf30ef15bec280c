"""The OpenAPI 3.1 document, generated from resource declarations and route definitions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from nexus.kernel.resources import Resource

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

_KIND_SCHEMA = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "float": {"type": "number"},
    "decimal": {"type": "string", "format": "decimal"}, "bool": {"type": "boolean"},
    "ts": {"type": "string", "format": "date-time"}, "date": {"type": "string", "format": "date"}, "json": {},
}
PROBLEM = {"$ref": "#/components/schemas/Problem"}


def _schema(components: dict[str, Any], model: Any) -> dict[str, Any]:
    if model is None:
        return {}
    if isinstance(model, dict):
        return model
    if isinstance(model, type) and issubclass(model, BaseModel):
        s = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in s.pop("$defs", {}).items():
            components[name] = sub
        components[model.__name__] = s
        return {"$ref": f"#/components/schemas/{model.__name__}"}
    return {}


def _record_schema(r: Resource) -> dict[str, Any]:
    props = {}
    for c in r.spec.columns:
        s: dict[str, Any] = dict(_KIND_SCHEMA[c.kind])
        if c.nullable:
            s = {"anyOf": [s, {"type": "null"}]} if s else {}
        props[c.name] = s
    return {"type": "object", "properties": props, "required": [c.name for c in r.spec.columns if not c.nullable]}


def _errors() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code, text in (("400", "Bad request"), ("401", "Not authenticated"), ("403", "Forbidden"),
                       ("404", "Not found"), ("422", "Validation failed")):
        out[code] = {"description": text, "content": {"application/problem+json": {"schema": PROBLEM}}}
    return out


def build_openapi(nx: Nexus) -> dict[str, Any]:
    components: dict[str, Any] = {
        "Problem": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                           "detail": {"type": "string"}, "instance": {"type": "string"},
                           "errors": {"type": "array", "items": {"type": "object", "properties": {
                               "pointer": {"type": "string"}, "detail": {"type": "string"}}}}},
        }
    }
    paths: dict[str, Any] = {}
    for r in nx.resources.values():
        rec_name = f"{r.app}_{r.entity}".title().replace("_", "")
        components[rec_name] = _record_schema(r)
        rec_ref = {"$ref": f"#/components/schemas/{rec_name}"}
        create_ref = _schema(components, r.create)
        update_ref = _schema(components, r.update)
        base = f"/api/v1/{r.app}/{r.name}"
        tag = [f"{r.app}"]
        list_params = [
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
            {"name": "sort", "in": "query", "schema": {"type": "string"},
             "description": f"One or more of {', '.join(r.sorts)}, comma-separated; prefix - for descending."},
            {"name": "q", "in": "query", "schema": {"type": "string"}},
            {"name": "deleted", "in": "query", "schema": {"enum": ["exclude", "include", "only"]}},
        ] + [{"name": f, "in": "query", "schema": {"type": "string"},
              "description": "Equality; also f[op]=v with op in the field's operators (see /api/v1/meta)."}
             for f in r.filters]
        if r.views:
            list_params.append({"name": "view", "in": "query", "schema": {"enum": [v.name for v in r.views]}})
        paths[base] = {
            "get": {"tags": tag, "summary": f"List {r.title.lower()}", "parameters": list_params,
                    "responses": {"200": {"description": "A page", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"items": {"type": "array", "items": rec_ref},
                                                         "next_cursor": {"type": ["string", "null"]}}}}}},
                                  **_errors()}},
            "post": {"tags": tag, "summary": f"Create a {r.entity}",
                     "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": create_ref}}},
                     "responses": {"201": {"description": "Created", "content": {"application/json": {"schema": rec_ref}}},
                                   **_errors()}},
        }
        id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
        if_match = {"name": "If-Match", "in": "header", "schema": {"type": "string"}}
        paths[base + "/{id}"] = {
            "get": {"tags": tag, "summary": f"Get a {r.entity}", "parameters": [id_param],
                    "responses": {"200": {"description": "The record", "content": {"application/json": {"schema": rec_ref}}},
                                  **_errors()}},
            "patch": {"tags": tag, "summary": f"Change a {r.entity}", "parameters": [id_param, if_match],
                      "requestBody": {"required": True, "content": {"application/json": {"schema": update_ref}}},
                      "responses": {"200": {"description": "Changed", "content": {"application/json": {"schema": rec_ref}}},
                                    "412": {"description": "Stale If-Match"}, **_errors()}},
            "delete": {"tags": tag, "summary": f"Delete a {r.entity} (restorable)", "parameters": [id_param, if_match],
                       "responses": {"204": {"description": "Deleted"}, **_errors()}},
        }
        paths[base + "/{id}/restore"] = {"post": {"tags": tag, "summary": f"Restore a deleted {r.entity}",
                                                   "parameters": [id_param], "responses": {"200": {"description": "Restored"}, **_errors()}}}
        for a in r.actions:
            op: dict[str, Any] = {"tags": tag, "summary": a.summary or a.name, "parameters": [id_param, if_match],
                                  "responses": {"200": {"description": "Done", "content": {"application/json": {"schema": rec_ref}}},
                                                **_errors()}}
            if a.input is not None:
                op["requestBody"] = {"content": {"application/json": {"schema": _schema(components, a.input)}}}
            paths[f"{base}/{{id}}/{a.name}"] = {"post": op}
        paths[base + "/export"] = {"get": {"tags": tag, "summary": f"Export {r.title.lower()} (CSV or JSON, streamed)",
                                           "parameters": [{"name": "format", "in": "query", "schema": {"enum": ["csv", "json"]}}],
                                           "responses": {"200": {"description": "The file"}, **_errors()}}}
        paths[base + "/import"] = {"post": {"tags": tag, "summary": f"Import {r.title.lower()} from CSV or JSON",
                                            "parameters": [{"name": "mode", "in": "query", "schema": {"enum": ["atomic", "partial"]}},
                                                           {"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}],
                                            "requestBody": {"content": {"text/csv": {}, "application/json": {}}},
                                            "responses": {"200": {"description": "Result with per-row errors"}, **_errors()}}}
    for rd in nx.router.all:
        if rd.path.startswith("/api/docs/static"):
            continue
        op = {"tags": list(rd.tags) or ["system"], "summary": rd.summary,
              "responses": {str(rd.status): {"description": "OK"}, **_errors()}}
        if rd.request_schema is not None:
            op["requestBody"] = {"content": {rd.request_media: {"schema": _schema(components, rd.request_schema)}}}
        if rd.response_schema is not None:
            op["responses"][str(rd.status)]["content"] = {"application/json": {"schema": _schema(components, rd.response_schema)}}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in (rd.pattern.groupindex if rd.pattern else {})]
        if params:
            op["parameters"] = params
        if rd.public:
            op["security"] = []
        paths.setdefault(rd.path, {})[rd.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "NEXUS API", "version": "1", "description": "One API for every NEXUS app."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "oauth2": {"type": "oauth2", "flows": {"password": {"tokenUrl": "/api/v1/auth/token", "scopes": {}}}},
        }},
        "security": [{"bearer": []}, {"apiKey": []}],
    }
