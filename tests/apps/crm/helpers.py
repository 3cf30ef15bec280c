"""CRM test helpers: pipelines with stages, deals, contacts — made through the API."""

from __future__ import annotations

import secrets
from typing import Any

from tests.factories import Actor

CRM = "/api/v1/crm"

DEFAULT_STAGES = (("Lead in", 10, "open"), ("Qualified", 30, "open"), ("Proposal", 60, "open"),
                  ("Negotiation", 80, "open"), ("Won", 100, "won"), ("Lost", 0, "lost"))


async def make_pipeline(actor: Actor, name: str | None = None, default: bool = True,
                        stages: tuple[tuple[str, int, str], ...] = DEFAULT_STAGES) -> dict[str, Any]:
    """A pipeline with its stages; returns the pipeline with `stages` (in order) added."""
    r = await actor.post(f"{CRM}/pipelines", json={"name": name or f"Sales {secrets.token_hex(2)}",
                                                   "is_default": default})
    assert r.status_code == 201, r.text
    pipeline = r.json()
    made = []
    for i, (sname, prob, kind) in enumerate(stages):
        r = await actor.post(f"{CRM}/stages", json={"pipeline_id": pipeline["id"], "name": sname, "position": i,
                                                   "probability": prob, "kind": kind})
        assert r.status_code == 201, r.text
        made.append(r.json())
    pipeline["stages"] = made
    return pipeline


async def make_deal(actor: Actor, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Deal {secrets.token_hex(3)}", "amount": "1000.00", "currency": "USD", **fields}
    r = await actor.post(f"{CRM}/deals", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_contact(actor: Actor, **fields: Any) -> dict[str, Any]:
    body = {"first_name": "Ada", "last_name": f"L{secrets.token_hex(3)}", **fields}
    r = await actor.post(f"{CRM}/contacts", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def make_company(actor: Actor, **fields: Any) -> dict[str, Any]:
    body = {"name": f"Company {secrets.token_hex(3)}", **fields}
    r = await actor.post(f"{CRM}/companies", json=body)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def act(actor: Actor, path: str, action: str, body: dict[str, Any] | None = None) -> Any:
    kw: dict[str, Any] = {} if body is None else {"json": body}
    return await actor.post(f"{CRM}/{path}/{action}", **kw)
