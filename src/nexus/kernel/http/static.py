"""Serves the built web app (web/ → src/nexus/static/web) at `/`, with the SPA fallback:
any non-API path that is not a file gets index.html, so deep links survive a reload."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from nexus.kernel.errors import Problem

WEB_DIR = Path(__file__).resolve().parent.parent.parent / "static" / "web"

_NOT_BUILT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>NEXUS</title></head>
<body style="font-family:system-ui;max-width:40rem;margin:4rem auto;line-height:1.5">
<h1>NEXUS is running</h1><p>The web app has not been built in this installation
(<code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>, or <code>make run</code> does it when Node.js is present).</p>
<p>The API is available: <a href="/api/docs">interactive API docs</a>.</p></body></html>"""

_SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _file_response(path: Path) -> Response:
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    headers = dict(_SECURITY)
    if "/assets/" in path.as_posix():
        headers["Cache-Control"] = "public, max-age=31536000, immutable"  # content-hashed names
    else:
        headers["Cache-Control"] = "no-cache"
    if path.name == "index.html":
        headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
        )
    return Response(path.read_bytes(), media_type=ctype, headers=headers)


async def serve_web(req: Request) -> Response:
    if req.scope["method"] not in ("GET", "HEAD"):
        raise Problem(405, "Only GET is allowed here.", headers={"Allow": "GET"})
    index = WEB_DIR / "index.html"
    if not index.is_file():
        return HTMLResponse(_NOT_BUILT, headers=_SECURITY)
    rel = req.scope["path"].lstrip("/")
    if rel:
        candidate = (WEB_DIR / rel).resolve()
        if candidate.is_file() and candidate.is_relative_to(WEB_DIR):
            return _file_response(candidate)
        if "." in rel.rsplit("/", 1)[-1]:
            raise Problem(404, "No such file.")
    return _file_response(index)
