"""Health, readiness, OpenAPI document and interactive API docs."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from nexus.kernel.errors import Problem
from nexus.kernel.http.responses import json_response
from nexus.kernel.http.routing import RouteDef


async def healthz(req: Request) -> Response:
    """Liveness: the process answers."""
    return json_response({"status": "ok"})


async def readyz(req: Request) -> Response:
    """Readiness: the database answers and its schema is at the current migration."""
    nx = req.scope["nexus"]
    checks: dict[str, str] = {}
    try:
        await nx.db.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if checks["database"] == "ok":
        checks["migrations"] = "current" if await nx.migrations_current() else "pending"
    ready = checks.get("database") == "ok" and checks.get("migrations") == "current"
    return json_response({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


async def openapi(req: Request) -> Response:
    """The OpenAPI 3.1 description of every served endpoint."""
    from nexus.kernel.http.openapi import build_openapi

    nx = req.scope["nexus"]
    doc = nx.state.get("openapi")
    if doc is None:
        doc = nx.state["openapi"] = build_openapi(nx)
    return json_response(doc)


_DOCS = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>NEXUS API</title>
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script src="/api/docs/static/docs-init.js"></script></body></html>"""
_INIT = b"""window.ui = SwaggerUIBundle({url: '/api/openapi.json', dom_id: '#ui', deepLinking: true,
persistAuthorization: true});"""


async def docs(req: Request) -> Response:
    """Interactive API documentation (Swagger UI, served from the installed package)."""
    return HTMLResponse(_DOCS, headers={"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"})


async def docs_static(req: Request) -> Response:
    name = req.scope["path_params"]["name"]
    if name == "docs-init.js":
        return Response(_INIT, media_type="application/javascript")
    import swagger_ui_bundle

    base = Path(swagger_ui_bundle.swagger_ui_path)
    if name not in ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"):
        raise Problem(404, "No such file.")
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response((base / name).read_bytes(), media_type=ctype, headers={"Cache-Control": "public, max-age=86400"})


ROUTES = [
    RouteDef("GET", "/healthz", healthz, public=True, tags=("system",), summary="Liveness"),
    RouteDef("GET", "/readyz", readyz, public=True, tags=("system",), summary="Readiness"),
    RouteDef("GET", "/api/openapi.json", openapi, public=True, tags=("system",), summary="OpenAPI document"),
    RouteDef("GET", "/api/docs", docs, public=True, tags=("system",), summary="API docs"),
    RouteDef("GET", "/api/docs/static/{name}", docs_static, public=True, tags=("system",), summary="API docs assets"),
]
