"""GET /api/v1/audit: the org's audit trail, filtered by actor, record, app and time.

Anyone who may read a record may read that record's history (the History tab); the
whole trail needs `audit.trail.read`, which wildcard grants do not reach."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.http.crud import query_params
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.jsonutil import dumps
from nexus.kernel.models import AuditEntry
from nexus.kernel.permissions import has_permission, require
from nexus.kernel.query import fetch_page
from nexus.kernel.records import TableSpec

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

AUDIT = TableSpec(AuditEntry)
FILTERS = ("actor_id", "actor_kind", "app", "resource", "record_id", "action", "at", "request_id")


async def list_audit(req: Request) -> Response:
    """The audit trail, newest first."""
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    params = query_params(req)
    one = {k: params[k][0] if params.get(k) else None for k in ("app", "resource", "record_id")}
    record_scoped = all(one.values()) and has_permission(p, f"{one['app']}.{one['resource']}.read")
    if not record_scoped:
        require(p, "audit.trail.read")
    page = await fetch_page(nx.db, nx.cursors, AUDIT, p.org_id, params, filters=FILTERS, sorts=("at",),
                            default_sort="-at")
    return Response(dumps(page), media_type="application/json")

ROUTES = [RouteDef("GET", "/api/v1/audit", list_audit, tags=("audit",), summary="The audit trail")]
