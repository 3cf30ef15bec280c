"""vCard 4.0 (RFC 6350) export and import of contacts: a round trip keeps every field, folded
lines and escaped characters are read, 3.0 cards are taken, malformed cards are reported one
by one while the others import."""

from __future__ import annotations

import httpx
import vobject

from nexus.kernel.http.app import Nexus
from tests.apps.crm.helpers import CRM, make_company, make_contact
from tests.factories import new_org

VCF = {"Content-Type": "text/vcard"}
LONG_TITLE = "Vice President of Research; Development, Special Projects & Everything Else That Needs Doing"


async def test_round_trip_keeps_every_field(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    acme = await make_company(owner, name="Acme; Tools, Ltd")
    zoe = await make_contact(owner, first_name="Zoë", last_name="O'Brien", email="zoe@example.com",
                             emails=["z@alt.example", "zz@x.example"], phone="+44 20 7946 0958",
                             phones=["+1 555 0100"], job_title=LONG_TITLE, address="1 Long Road, Flat 2\nLondon",
                             tags=["vip", "a,b"], company_id=acme["id"])
    await make_contact(owner, first_name="Bob", last_name="Plain")
    r = await owner.get(f"{CRM}/contacts/vcard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/vcard")
    text = r.text
    assert text.count("BEGIN:VCARD") == 2 and "VERSION:4.0" in text
    assert "\r\n " in text  # the long title is folded (RFC 6350 §3.2)
    assert "Research\\; Development\\, Special" in text.replace("\r\n ", "")  # and escaped
    # Another vCard parser reads what we wrote.
    parsed = list(vobject.readComponents(text))
    zcard = next(c for c in parsed if c.fn.value.startswith("Zo"))
    assert [e.value for e in zcard.contents["email"]] == ["zoe@example.com", "z@alt.example", "zz@x.example"]
    assert zcard.title.value == LONG_TITLE
    # Import into another org: the same contact, with its company found or made.
    other = await new_org(client, nx)
    r = await other.post(f"{CRM}/contacts/vcard", content=text.encode(), headers=VCF)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 2 and r.json()["errors"] == []
    got = (await other.get(f"{CRM}/contacts", params={"email": "zoe@example.com"})).json()["items"][0]
    for k in ("first_name", "last_name", "email", "emails", "phone", "phones", "job_title", "address", "tags"):
        assert got[k] == zoe[k], k
    company = (await other.get(f"{CRM}/companies/{got['company_id']}")).json()
    assert company["name"] == "Acme; Tools, Ltd"
    # Importing the same cards again: duplicates reported per card, with candidates.
    r = await other.post(f"{CRM}/contacts/vcard", content=text.encode(), headers=VCF)
    assert r.json()["created"] == 0  # Zoë by e-mail and phone, Bob by his full name
    assert [e["card"] for e in r.json()["errors"]] == [1, 2] and all(e["candidates"] for e in r.json()["errors"])
    r = await other.post(f"{CRM}/contacts/vcard", params={"allow_duplicates": "true"}, content=text.encode(),
                         headers=VCF)
    assert r.json()["created"] == 2


async def test_import_handles_folding_escapes_versions_and_bad_cards(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    text = (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada Lovelace\r\nN:Lovelace;Ada;;;\r\n"
        "EMAIL;TYPE=work:ada@work.example\r\nEMAIL;PREF=1:ada@home.example\r\n"
        "TITLE:Analyst\\, first of her kind\\; poet of\r\n  science\r\n"
        "TEL;VALUE=uri;TYPE=voice:tel:+44-20-1234-5678\r\nCATEGORIES:math,history\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Broken\r\nN:;;\r\nEMAIL\r\nthis line has no colon\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\nVERSION:3.0\nFN:Charles Babbage\nN:Babbage;Charles;;;\n"
        "EMAIL;TYPE=INTERNET:cb@engine.example\nEMAIL;TYPE=INTERNET,pref:charles@engine.example\n"
        "ORG:Difference Engine Co\nEND:VCARD\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:No Address\r\nEMAIL:not-an-email\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:9.9\r\nFN:Future\r\nEND:VCARD\r\n"
    )
    r = await owner.post(f"{CRM}/contacts/vcard", params={"dry_run": "true"}, content=text.encode(), headers=VCF)
    assert r.status_code == 200, r.text
    dry = r.json()
    assert dry["cards"] == 5 and dry["valid"] == 2 and dry["created"] == 0
    assert sorted(e["card"] for e in dry["errors"]) == [2, 4, 5]
    assert (await owner.get(f"{CRM}/contacts")).json()["items"] == []
    r = await owner.post(f"{CRM}/contacts/vcard", content=text.encode(), headers=VCF)
    assert r.json()["created"] == 2
    ada = (await owner.get(f"{CRM}/contacts", params={"last_name": "Lovelace"})).json()["items"][0]
    assert ada["email"] == "ada@home.example" and ada["emails"] == ["ada@work.example"]
    assert ada["job_title"] == "Analyst, first of her kind; poet of science"
    assert ada["phone"] == "+44-20-1234-5678" and ada["tags"] == ["math", "history"]
    charles = (await owner.get(f"{CRM}/contacts", params={"last_name": "Babbage"})).json()["items"][0]
    assert charles["email"] == "charles@engine.example" and charles["company_id"]
    for body, ctype, status in ((b"hello", "text/vcard", 400), (b"\xff\xfe", "text/vcard", 400),
                                (text.encode(), "application/json", 415)):
        r = await owner.post(f"{CRM}/contacts/vcard", content=body, headers={"Content-Type": ctype})
        assert r.status_code == status, r.text
    viewer = await owner.add_user(["viewer"])
    r = await viewer.post(f"{CRM}/contacts/vcard", content=text.encode(), headers=VCF)
    assert r.status_code == 403
