"""Response helpers: JSON via orjson, problem+json, ETags."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from nexus.kernel.errors import Problem
from nexus.kernel.jsonutil import dumps


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def json_response(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(content), status_code=status, headers=headers, media_type="application/json")


def problem_response(problem: Problem, *, instance: str | None = None, request_id: str | None = None) -> Response:
    return Response(
        dumps(problem.body(instance, request_id)),
        status_code=problem.status,
        headers=problem.headers,
        media_type="application/problem+json",
    )


def etag_for(record: dict[str, Any]) -> str:
    return f'"{record["id"]}.{record["version"]}"'


def parse_if_match(value: str | None, record_id: str) -> int | None:
    """The version an If-Match names; 412 if it names another record, 400 if malformed."""
    if value is None:
        return None
    value = value.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    tag = value.strip('"')
    rid, _, ver = tag.rpartition(".")
    if not rid or not ver.isdigit():
        raise Problem(400, "If-Match must be an ETag returned by this API.", errors=[{"pointer": "/headers/If-Match", "detail": "malformed"}])
    if rid != record_id:
        raise Problem(412, "If-Match names another record.")
    return int(ver)
