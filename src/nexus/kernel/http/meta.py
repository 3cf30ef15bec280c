"""GET /api/v1/meta: enough for a client to draw lists and forms for every resource."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.permissions import has_permission
from nexus.kernel.resources import Resource, describe_fields

_PLATFORM_DESCRIPTIONS = {
    "webhooks": "Send this organisation's events to other systems, signed and retried.",
    "customfields": "Fields your organisation adds to records — typed, in forms, filters, imports and exports.",
}
_PLATFORM_TITLES = {"customfields": "Custom fields"}
VERBS = ("read", "create", "update", "delete", "export", "import")


def describe_resource(r: Resource, principal: Any) -> dict[str, Any]:
    perms = {v: has_permission(principal, r.permission(v)) for v in VERBS}
    return {
        "app": r.app,
        "name": r.name,
        "title": r.title,
        "entity": r.entity,
        "path": f"/api/v1/{r.app}/{r.name}",
        "title_field": r.title_field,
        "description": r.description,
        "fields": describe_fields(r),
        "filters": list(r.filters),
        "sorts": list(r.sorts),
        "default_sort": r.default_sort,
        "search": list(r.search),
        "views": [{"name": v.name, "title": v.title} for v in r.views],
        "actions": [
            {"name": a.name, "summary": a.summary, "permission": r.permission(a.permission),
             "allowed": has_permission(principal, r.permission(a.permission)),
             "input": a.input.model_json_schema() if a.input else None}
            for a in r.actions
        ],
        "permissions": perms,
        "events": [r.event_type(v) for v in ("created", "updated", "deleted", "restored")],
    }


async def meta(req: Request) -> Response:
    """Installed apps, their resources, fields, filters, sorts, actions and the caller's permissions."""
    nx = req.scope["nexus"]
    p = await nx.principal(req)
    apps = []
    for name in nx.served:
        m = nx.loaded[name].manifest
        resources = [describe_resource(r, p) for r in nx.loaded[name].resources]
        for r, d in zip(nx.loaded[name].resources, resources, strict=True):
            if r.custom_fields:
                # The org's own fields (kernel/customfields.py), drawn by the generic forms and lists.
                from nexus.kernel.customfields import definitions_for, describe

                d["custom_fields"] = describe(await definitions_for(nx.db, p.org_id, r.key))
        apps.append({
            "name": m.name, "title": m.title, "category": m.category, "port": m.port,
            "catalog_number": m.catalog_number, "icon": m.icon, "description": m.description,
            "resources": [r for r in resources if r["permissions"]["read"]],
        })
    # Kernel subsystems may declare resources of their own (webhook subscriptions): they are
    # listed like an app's, under the subsystem's name, for whoever may read them.
    app_names = {a.name for a in nx.loaded.values()}
    platform: dict[str, list[dict[str, Any]]] = {}
    for (app_name, _), r in nx.resources.items():
        if app_name not in app_names:
            d = describe_resource(r, p)
            if d["permissions"]["read"]:
                platform.setdefault(app_name, []).append(d)
    for app_name, resources in sorted(platform.items()):
        apps.append({"name": app_name, "title": _PLATFORM_TITLES.get(app_name, app_name.replace("-", " ").title()),
                     "category": "Platform",
                     "port": None, "catalog_number": 1000, "icon": "plug",
                     "description": _PLATFORM_DESCRIPTIONS.get(app_name, ""),
                     "resources": resources, "platform": True})
    return json_response({"apps": apps, "user": {"id": p.user_id, "org_id": p.org_id, "roles": list(p.roles)}})


ROUTES = [RouteDef("GET", "/api/v1/meta", meta, tags=("meta",), summary="Describe apps and resources")]
