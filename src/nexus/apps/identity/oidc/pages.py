"""Server-rendered pages of the provider (consent, errors, signed out), in the Hub's style:
the same tokens (colours, radii, type) as web/src/styles/tokens.css, no script at all."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

_CSS = """
:root{--bg:#f5f6fb;--surface:#fff;--surface-2:#f3f4f9;--border:#e2e5ef;--text:#151a2d;--muted:#576079;
--primary:#4f46e5;--primary-hover:#4338ca;--primary-soft:#eef0ff;--danger-soft:#fef1f1;--danger-text:#b42318;
--radius:12px;--font:ui-sans-serif,system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif}
@media (prefers-color-scheme:dark){:root{--bg:#0f1220;--surface:#171b2e;--surface-2:#1e2338;--border:#2a3050;
--text:#e8eaf3;--muted:#a3a9c2;--primary-soft:#23264a;--danger-soft:#3a1d22;--danger-text:#fca5a5}}
*{box-sizing:border-box}body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);
color:var(--text);font:0.875rem/1.5 var(--font)}
main{width:min(440px,calc(100vw - 32px));background:var(--surface);border:1px solid var(--border);
border-radius:var(--radius);box-shadow:0 4px 12px -2px rgb(16 24 40/.08);padding:32px;display:grid;gap:16px}
.brand{display:flex;align-items:center;gap:8px;font-weight:700;letter-spacing:.02em}
.brand img{width:24px;height:24px}h1{font-size:1.25rem;margin:0}p{margin:0}.muted{color:var(--muted)}
ul{margin:0;padding:12px 16px 12px 32px;background:var(--surface-2);border-radius:8px}li{margin:2px 0}
.actions{display:flex;gap:8px;justify-content:flex-end}
button{font:inherit;height:36px;padding:0 16px;border-radius:8px;border:1px solid var(--border);
background:var(--surface);color:var(--text);cursor:pointer}
button.primary{background:var(--primary);border-color:var(--primary);color:#fff}
button.primary:hover{background:var(--primary-hover)}button:focus-visible{outline:none;box-shadow:0 0 0 3px rgb(79 70 229/.35)}
.alert{background:var(--danger-soft);color:var(--danger-text);padding:12px;border-radius:8px}
code{font-family:ui-monospace,monospace}
"""

SCOPE_TEXT = {
    "openid": "Know who you are (your account id)",
    "profile": "See your name, organisation and roles",
    "email": "See your email address",
    "offline_access": "Stay signed in when you are away (refresh tokens)",
    "api": "Use NEXUS on your behalf, with all of your permissions",
}


def scope_text(scope: str) -> str:
    if scope in SCOPE_TEXT:
        return SCOPE_TEXT[scope]
    app, _, rest = scope.partition(".")
    resource, _, action = rest.partition(".")
    what = "everything" if resource == "*" else resource.replace("-", " ")
    where = "every app" if app == "*" else app
    verb = "do anything with" if action == "*" else action
    return f"{verb.capitalize()} {what} in {where} ({scope})"


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (f"<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
            f"content='width=device-width,initial-scale=1'><title>{escape(title)} · NEXUS</title>"
            f"<meta name=referrer content=no-referrer><style>{_CSS}</style></head><body><main>"
            f"<div class=brand><img src='/icons/icon.svg' alt=''>NEXUS</div>{body}</main></body></html>")
    return HTMLResponse(html, status_code=status, headers={
        "Cache-Control": "no-store",
        # The consent page must never be framed (clickjacking) and runs no script.
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                                   "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "X-Frame-Options": "DENY",
    })


def error_page(detail: str, status: int = 400) -> HTMLResponse:
    return page("Sign-in request refused", f"<h1>This sign-in request cannot be used</h1>"
                f"<div class=alert role=alert>{escape(detail)}</div>"
                "<p class=muted>Go back to the application and try again, or tell its administrator.</p>", status)


def consent_page(client_name: str, user_email: str, scopes: list[str], request: str, csrf: str) -> HTMLResponse:
    items = "".join(f"<li>{escape(scope_text(s))}</li>" for s in scopes)
    return page(f"Allow {client_name}", f"""
<h1>Allow <strong>{escape(client_name)}</strong> to use your account?</h1>
<p class=muted>Signed in as {escape(user_email)}. <strong>{escape(client_name)}</strong> asks to:</p>
<ul>{items}</ul>
<p class=muted>It gets only what is listed here, and only while you use it.</p>
<form method=post action="/oauth/authorize" class=actions>
<input type=hidden name=request value="{escape(request)}">
<input type=hidden name=csrf_token value="{escape(csrf)}">
<button type=submit name=decision value=deny>Deny</button>
<button type=submit name=decision value=allow class=primary autofocus>Allow</button>
</form>""")


def signed_out_page() -> HTMLResponse:
    return page("Signed out", "<h1>You are signed out</h1><p class=muted>You can close this window.</p>"
                "<p><a href='/'>Sign in again</a></p>")
