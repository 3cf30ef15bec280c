"""vCard (RFC 6350) in and out for contacts, with the vobject library doing the syntax —
line folding, escaping, parameters — so this module only maps properties to fields.

Export writes vCard 4.0. Import takes 4.0 and 3.0 (what most address books still write);
each card is parsed on its own, so one malformed card is reported with its number and the
others still import.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import vobject
from pydantic import ValidationError

from nexus.kernel.errors import Problem
from nexus.kernel.records import UnitOfWork
from nexus.kernel.resources import pydantic_errors

from .resources import companies, contacts
from .rules import company_key
from .service import COMPANY

if TYPE_CHECKING:
    from nexus.kernel.context import Context
    from nexus.kernel.http.app import Nexus

_CARD = re.compile(r"^BEGIN:VCARD\s*$.*?^END:VCARD\s*$", re.IGNORECASE | re.MULTILINE | re.DOTALL)


def to_vcard(contact: dict[str, Any], company_name: str = "") -> str:
    card = vobject.vCard()
    card.add("version").value = "4.0"
    card.add("uid").value = f"urn:nexus:crm:contact:{contact['id']}"
    card.add("fn").value = contact["name"] or contact.get("email") or "Unnamed"
    card.add("n").value = vobject.vcard.Name(family=contact.get("last_name") or "",
                                             given=contact.get("first_name") or "")
    emails = [e for e in [contact.get("email"), *(contact.get("emails") or [])] if e]
    for i, e in enumerate(emails):
        prop = card.add("email")
        prop.value = e
        if i == 0:
            prop.params["PREF"] = ["1"]
    phones = [p for p in [contact.get("phone"), *(contact.get("phones") or [])] if p]
    for i, p in enumerate(phones):
        prop = card.add("tel")
        prop.value = p
        if i == 0:
            prop.params["PREF"] = ["1"]
    if company_name:
        card.add("org").value = [company_name]
    if contact.get("job_title"):
        card.add("title").value = contact["job_title"]
    if contact.get("address"):
        card.add("adr").value = vobject.vcard.Address(street=contact["address"])
    if contact.get("tags"):
        card.add("categories").value = list(contact["tags"])
    updated = contact.get("updated_at")
    if isinstance(updated, str):
        card.add("rev").value = updated.replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"
    return str(card.serialize())


def split_cards(text: str) -> list[str]:
    """Each BEGIN:VCARD … END:VCARD block (folded lines stay with their card)."""
    return [m.group(0) for m in _CARD.finditer(text.replace("\r\n", "\n").replace("\r", "\n"))]


def _values(card: Any, name: str) -> list[Any]:
    return [c for c in card.contents.get(name, [])]


def _pref_first(props: list[Any]) -> list[str]:
    """Values with PREF (4.0) or TYPE=pref (3.0) first."""
    def rank(p: Any) -> int:
        pref = p.params.get("PREF") or []
        types = [t.lower() for t in p.params.get("TYPE", [])]
        if pref:
            try:
                return int(pref[0])
            except ValueError:
                return 50
        return 1 if "pref" in types else 100
    return [str(p.value).strip() for p in sorted(props, key=rank) if str(p.value).strip()]


def card_to_fields(card: Any) -> tuple[dict[str, Any], str]:
    """(contact fields, company name) from one parsed card."""
    fields: dict[str, Any] = {}
    n = card.contents.get("n")
    if n:
        name = n[0].value
        fields["first_name"] = " ".join(x for x in [name.given, name.additional] if isinstance(x, str) and x)[:100] \
            if not isinstance(name.given, list) else " ".join(name.given)[:100]
        fields["last_name"] = (name.family if isinstance(name.family, str) else " ".join(name.family))[:100]
    if not fields.get("first_name") and not fields.get("last_name"):
        fn = card.contents.get("fn")
        if fn:
            first, _, last = str(fn[0].value).strip().partition(" ")
            fields["first_name"], fields["last_name"] = first[:100], last[:100]
    emails = _pref_first(_values(card, "email"))
    if emails:
        fields["email"], fields["emails"] = emails[0], emails[1:20]
    phones = _pref_first(_values(card, "tel"))
    if phones:
        fields["phone"], fields["phones"] = phones[0].removeprefix("tel:"), [p.removeprefix("tel:") for p in phones[1:20]]
    title = card.contents.get("title")
    if title:
        fields["job_title"] = str(title[0].value)[:200]
    adr = card.contents.get("adr")
    if adr:
        a = adr[0].value
        parts = [getattr(a, k, "") for k in ("street", "city", "region", "code", "country")]
        fields["address"] = ", ".join(" ".join(p) if isinstance(p, list) else p for p in parts if p)[:2000]
    cats = card.contents.get("categories")
    if cats:
        fields["tags"] = [str(c).strip()[:64] for c in cats[0].value if str(c).strip()][:50]
    org = card.contents.get("org")
    company = ""
    if org:
        v = org[0].value
        company = (v[0] if isinstance(v, list) and v else str(v)).strip()[:200]
    return fields, company


def parse_cards(text: str, max_cards: int) -> list[tuple[int, Any, str | None]]:
    """[(card number, parsed card or None, error)], one entry per BEGIN:VCARD block."""
    blocks = split_cards(text)
    if not blocks:
        raise Problem(400, "No vCard found (BEGIN:VCARD … END:VCARD).")
    if len(blocks) > max_cards:
        raise Problem(413, f"At most {max_cards} cards per import.")
    out: list[tuple[int, Any, str | None]] = []
    for i, block in enumerate(blocks, start=1):
        try:
            card = vobject.readOne(block, validate=False, allowQP=True)
            if card.name.upper() != "VCARD":
                raise ValueError("not a VCARD")
            version = card.contents.get("version")
            if version and str(version[0].value).strip() not in ("3.0", "4.0", "2.1"):
                raise ValueError(f"unsupported VERSION {version[0].value}")
            out.append((i, card, None))
        except Exception as exc:  # vobject raises several types for bad input; each is this card's error
            out.append((i, None, f"malformed card: {str(exc)[:200] or type(exc).__name__}"))
    return out


async def import_cards(nx: Nexus, ctx: Context, cards: list[tuple[int, Any, str | None]], *, dry_run: bool,
                       allow_duplicates: bool) -> dict[str, Any]:
    errors: list[dict[str, Any]] = []
    created: list[str] = []

    class _Rollback(Exception):
        pass

    try:
        async with UnitOfWork(nx.db, ctx) as uow:
            for number, card, error in cards:
                if error is not None:
                    errors.append({"card": number, "errors": [{"pointer": "", "detail": error}]})
                    continue
                fields, company_name = card_to_fields(card)
                try:
                    data = contacts.create.model_validate({**fields, "allow_duplicate": allow_duplicates}).model_dump()
                except ValidationError as exc:
                    prob = pydantic_errors(exc)
                    errors.append({"card": number, "errors": prob.errors or [{"pointer": "", "detail": prob.detail}]})
                    continue
                try:
                    if company_name:
                        data["company_id"] = await _company(uow, company_name)
                    rec = await contacts.service_instance.create(uow, data)
                    created.append(rec["id"])
                except Problem as prob:
                    errors.append({"card": number, "errors": prob.errors or [{"pointer": "", "detail": prob.detail}],
                                   **({"candidates": prob.extra["candidates"]} if "candidates" in prob.extra else {})})
            uow.audit("crm", "contacts", None, "imported", None,
                      {"format": "vcard", "cards": len(cards), "created": len(created), "errors": len(errors)})
            if dry_run:
                raise _Rollback
    except _Rollback:
        pass
    return {"cards": len(cards), "created": 0 if dry_run else len(created), "valid": len(created),
            "errors": errors[:1000], "error_count": len(errors), "dry_run": dry_run,
            "ids": [] if dry_run else created}


async def _company(uow: UnitOfWork, name: str) -> str:
    """The org's company of this name (legal form aside), or a new one."""
    found = await uow.find(COMPANY, {"name_norm": company_key(name)}, limit=1)
    if found:
        return str(found[0]["id"])
    rec = await companies.service_instance.create(uow, {"name": name, "domain": None, "parent_id": None,
                                                        "industry": "", "phone": "", "website": "", "address": "",
                                                        "owner_id": None, "tags": [], "custom": {},
                                                        "allow_duplicate": True})
    return str(rec["id"])
