"""RFC 9457 problem details. Every error a client sees is one of these, never a stack trace."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://nexus.dev/problems/"

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    423: "Locked",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raise anywhere below a route; the HTTP layer renders it as application/problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        type: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.type = type or _slug(status)
        self.title = title or _TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self, instance: str | None = None, request_id: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": self.type if self.type.startswith(("http", "about:")) else PROBLEM_BASE + self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            out["instance"] = instance
        if self.errors:
            out["errors"] = self.errors
        if request_id:
            out["request_id"] = request_id
        out.update(self.extra)
        return out


def _slug(status: int) -> str:
    return _TITLES.get(status, "error").lower().replace(" ", "-")


def bad_request(detail: str, pointer: str | None = None) -> Problem:
    errors = [{"pointer": pointer, "detail": detail}] if pointer else None
    return Problem(400, detail, errors=errors)


def not_found(what: str = "record") -> Problem:
    return Problem(404, f"No such {what}.")


def forbidden(permission: str) -> Problem:
    return Problem(403, f"You lack the permission {permission!r}.", extra={"permission": permission})


def unauthenticated(detail: str = "A valid bearer token or API key is required.") -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="nexus"'})


def validation(errors: list[dict[str, Any]], detail: str = "The request body is invalid.") -> Problem:
    return Problem(422, detail, errors=errors)
