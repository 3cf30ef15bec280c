"""SCIM 2.0 (RFC 7643/7644) at /scim/v2: tokens, users, groups and their roles, filters,
sorting, paging, PATCH as Okta and Azure AD send it, ETags, errors and hostile input."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from nexus.kernel.http.app import Nexus
from tests.apps.identity.scim_helpers import (
    CORE_GROUP,
    CORE_USER,
    ENTERPRISE,
    TOKENS,
    Scim,
    assert_scim_error,
    connect_scim,
)
from tests.factories import audit_rows, make_role, token_for

USERS = "/api/v1/identity/users"
GROUPS_API = "/api/v1/identity/directory-groups"


async def nexus_user(scim: Scim, user_id: str) -> dict[str, Any]:
    r = await scim.owner.get(f"{USERS}/{user_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def ids(scim: Scim, flt: str, path: str = "/Users", **params: Any) -> list[str]:
    r = await scim.get(path, params={"filter": flt, **params})
    assert r.status_code == 200, (flt, r.text)
    return [x["id"] for x in r.json()["Resources"]]


# -- tokens ------------------------------------------------------------------------------------


async def test_token_is_shown_once_stored_hashed_revocable_and_scoped(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    assert scim.token.startswith("nxscim_")
    secret = scim.token.split("_", 2)[2]
    async with nx.db.reader() as c:
        stored = await c.fetchval("SELECT secret_hash FROM identity_scim_token WHERE id = ?", [scim.token_id])
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    listed = (await scim.owner.get(TOKENS)).json()["items"]
    assert all("token" not in t and "secret_hash" not in t for t in listed)
    assert (await scim.get("/Users")).status_code == 200
    # Wrong, malformed or missing tokens, and ordinary NEXUS tokens, are refused in the SCIM schema.
    for header in ({}, {"Authorization": "Bearer nxscim_x"}, {"Authorization": scim.token},
                   {"Authorization": f"Bearer {scim.token}x"}, {"Authorization": f"Bearer {scim.owner.token}"}):
        r = await client.get("/scim/v2/Users", headers=header)
        assert_scim_error(r, 401)
        assert "WWW-Authenticate" in r.headers
    # Members cannot issue tokens; a revoked token stops at once.
    member = await scim.owner.add_user(["member"])
    assert (await member.post(TOKENS, json={"name": "x"})).status_code == 403
    r = await scim.owner.post(f"{TOKENS}/{scim.token_id}/revoke")
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert_scim_error(await scim.get("/Users"), 401)
    # A token acts with its issuer's authority: an admin who is deactivated takes theirs along.
    admin = await scim.owner.add_user(["admin"])
    admins = await connect_scim(client, nx, owner=admin)
    assert (await admins.get("/Users")).status_code == 200
    assert (await scim.owner.post(f"{USERS}/{admin.user_id}/deactivate")).status_code == 200
    assert_scim_error(await admins.get("/Users"), 401)
    actions = {r["action"] for r in await audit_rows(nx, scim.owner.org_id, resource="scim-tokens")}
    assert {"created", "revoked"} <= actions


async def test_orgs_do_not_see_each_other(client: httpx.AsyncClient, nx: Nexus) -> None:
    a, b = await connect_scim(client, nx), await connect_scim(client, nx)
    user = await a.user("shared@corp.example")
    group = await a.group("Shared")
    assert_scim_error(await b.get(f"/Users/{user['id']}"), 404)
    assert_scim_error(await b.patch(f"/Users/{user['id']}", [{"op": "replace", "path": "active", "value": False}]), 404)
    assert_scim_error(await b.delete(f"/Groups/{group['id']}"), 404)
    assert await ids(b, 'userName eq "shared@corp.example"') == []
    # The same userName in another org is another user.
    other = await b.user("shared@corp.example")
    assert other["id"] != user["id"]
    # Group members must be of the same org.
    r = await b.post("/Groups", json={"schemas": [CORE_GROUP], "displayName": "x", "members": [{"value": user["id"]}]})
    assert_scim_error(r, 400, "invalidValue")


# -- discovery ---------------------------------------------------------------------------------


async def test_discovery_endpoints(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    spc = (await scim.get("/ServiceProviderConfig")).json()
    assert spc["patch"]["supported"] and spc["filter"]["supported"] and spc["etag"]["supported"]
    assert spc["sort"]["supported"] and spc["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    rts = (await scim.get("/ResourceTypes")).json()
    assert {r["id"] for r in rts["Resources"]} == {"User", "Group"}
    user_rt = (await scim.get("/ResourceTypes/User")).json()
    assert user_rt["schemaExtensions"][0]["schema"] == ENTERPRISE
    schemas = (await scim.get("/Schemas")).json()
    assert {s["id"] for s in schemas["Resources"]} == {CORE_USER, CORE_GROUP, ENTERPRISE}
    r = await scim.get(f"/Schemas/{CORE_USER}")
    assert r.status_code == 200 and any(a["name"] == "userName" for a in r.json()["attributes"])
    assert_scim_error(await scim.get("/Schemas/urn:nope"), 404)
    assert_scim_error(await scim.get("/Nope"), 404)
    assert_scim_error(await scim.post("/Bulk", json={}), 400, "invalidSyntax")
    assert_scim_error(await scim.post("/.search", json={}), 501)
    assert spc["bulk"] == {"supported": True, "maxOperations": 100, "maxPayloadSize": 1_000_000}


# -- users -------------------------------------------------------------------------------------


async def test_create_user_makes_a_nexus_user(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx, default_roles=["viewer"])
    r = await scim.post("/Users", json={
        "schemas": [CORE_USER, ENTERPRISE], "userName": "Ada@Corp.test", "externalId": "00u1",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada.lovelace@corp.example", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}], "active": True,
        ENTERPRISE: {"department": "Engines", "employeeNumber": "42"}, "password": "s3cret-passw0rd",
    })
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/scim+json")
    body = r.json()
    assert r.headers["Location"] == body["meta"]["location"] and r.headers["ETag"] == body["meta"]["version"]
    assert body["userName"] == "Ada@Corp.test" and body["externalId"] == "00u1" and body["active"] is True
    assert body[ENTERPRISE]["department"] == "Engines" and "password" not in body
    assert body["meta"]["resourceType"] == "User" and body["meta"]["created"]
    user = await nexus_user(scim, body["id"])
    assert user["email"] == "ada.lovelace@corp.example" and user["name"] == "Ada Lovelace"
    assert user["roles"] == ["viewer"] and user["status"] == "active"
    # The password it set works for NEXUS sign-in, and is nowhere in the audit trail.
    assert (await token_for(client, "ada.lovelace@corp.example", "s3cret-passw0rd", scim.owner.org_slug)).status_code == 200
    rows = await audit_rows(nx, scim.owner.org_id, record_id=body["id"])
    assert {r["actor_kind"] for r in rows if r["action"] != "signed_in"} == {"scim"}
    assert "s3cret" not in str(rows)
    assert (await scim.get(f"/Users/{body['id']}")).json() == body
    # userName is unique, whatever its case.
    assert_scim_error(await scim.post("/Users", json={"schemas": [CORE_USER], "userName": "ada@corp.TEST"}),
                      409, "uniqueness")
    # A user without any address gets a reserved one that reaches nobody.
    bare = await scim.user("not-an-address")
    assert (await nexus_user(scim, bare["id"]))["email"].endswith("@users.invalid")


async def test_existing_nexus_user_is_linked_not_duplicated(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    colleague = await scim.owner.add_user(["member"], email="grace@corp.example")
    r = await scim.post("/Users", json={"schemas": [CORE_USER], "userName": "grace@corp.example"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] == colleague.user_id
    assert "directory_linked" in {a["action"] for a in await audit_rows(nx, scim.owner.org_id,
                                                                         record_id=colleague.user_id)}
    # A SCIM token of an admin cannot take over the owner.
    admin = await scim.owner.add_user(["admin"])
    admins = await connect_scim(client, nx, owner=admin)
    r = await admins.post("/Users", json={"schemas": [CORE_USER], "userName": scim.owner.email})
    assert_scim_error(r, 403)


async def test_bad_user_bodies_are_refused_and_change_nothing(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    cases = [
        (b"{not json", "application/scim+json", 400, "invalidSyntax"),
        (b"[]", "application/scim+json", 400, "invalidSyntax"),
        (b'{"schemas": ["%s"]}' % CORE_USER.encode(), "application/scim+json", 400, None),
        (b'{"schemas": ["%s"], "userName": "   "}' % CORE_USER.encode(), "application/scim+json", 400, None),
        (b'{"schemas": ["%s"], "userName": "x", "active": "maybe"}' % CORE_USER.encode(), "application/scim+json",
         400, None),
        (b'{"schemas": ["%s"], "userName": "%s"}' % (CORE_USER.encode(), b"x" * 400), "application/scim+json", 400,
         None),
        (b'{"schemas": ["%s"], "userName": "x", "password": "short"}' % CORE_USER.encode(), "application/scim+json",
         400, "invalidValue"),
        (b'{"userName": "x"}', "text/plain", 415, None),
    ]
    for body, ctype, status, scim_type in cases:
        r = await scim.client.post("/scim/v2/Users", content=body,
                                   headers={"Authorization": f"Bearer {scim.token}", "Content-Type": ctype})
        assert_scim_error(r, status, scim_type)
    assert (await scim.get("/Users")).json()["totalResults"] == 0
    assert len((await scim.owner.get(USERS)).json()["items"]) == 1  # only the owner


# -- filters, sorting, paging ------------------------------------------------------------------


@pytest.fixture
def people() -> list[dict[str, Any]]:
    return [
        {"userName": "ann@corp.example", "displayName": "Ann", "title": "Engineer",
         "emails": [{"value": "ann@corp.example", "type": "work", "primary": True},
                    {"value": "ann@home.example", "type": "home"}],
         ENTERPRISE: {"department": "R&D", "employeeNumber": "3"}},
        {"userName": "bert@corp.example", "displayName": "Bert", "title": "Manager",
         "emails": [{"value": "bert@corp.example", "type": "work"}, {"value": "bert@home.example", "type": "home"}],
         ENTERPRISE: {"department": "Sales", "employeeNumber": "1"}},
        {"userName": "cleo@other.example", "displayName": "Cleo", "nickName": "100%_sure",
         "emails": [{"value": "cleo@other.example", "type": "home"}], "active": False},
    ]


async def test_filters(client: httpx.AsyncClient, nx: Nexus, people: list[dict[str, Any]]) -> None:
    scim = await connect_scim(client, nx)
    made = {}
    for p in people:
        schemas = [CORE_USER, ENTERPRISE] if ENTERPRISE in p else [CORE_USER]
        made[p["displayName"]] = await scim.user(**{"schemas": schemas, **p})
    ann, bert, cleo = made["Ann"]["id"], made["Bert"]["id"], made["Cleo"]["id"]
    cases = {
        'userName eq "ANN@corp.example"': [ann],  # userName is caseExact false
        'userName ne "ann@corp.example"': [bert, cleo],
        'userName co "@corp"': [ann, bert],
        'userName sw "b"': [bert],
        'userName ew "other.example"': [cleo],
        'title pr': [ann, bert],
        'not (title pr)': [cleo],
        'active eq false': [cleo],
        'active eq true and title eq "manager"': [bert],
        'displayName eq "Ann" or displayName eq "Cleo"': [ann, cleo],
        'emails[type eq "work" and value co "bert"]': [bert],
        'emails[type eq "home" and value ew "corp.example"]': [],  # the work address does not count
        'emails.type eq "home"': [ann, bert, cleo],
        'emails co "home.example"': [ann, bert],
        f'{ENTERPRISE}:department eq "r&d"': [ann],
        f'{ENTERPRISE}:employeeNumber gt "1"': [ann],
        f'{CORE_USER}:userName eq "bert@corp.example"': [bert],
        'nickName eq "100%_sure"': [cleo],
        'nickName co "%"': [cleo],
        'nickName co "0_"': [],  # "_" is a character, not a LIKE wildcard
        f'id eq "{ann}"': [ann],
        'meta.created gt "2000-01-01T00:00:00Z"': [ann, bert, cleo],
        'meta.lastModified lt "2000-01-01T00:00:00Z"': [],
        '(userName sw "a" or userName sw "b") and not (emails[type eq "work" and primary eq true])': [bert],
    }
    for flt, expected in cases.items():
        assert sorted(await ids(scim, flt)) == sorted(expected), flt
    # Deactivating in NEXUS is seen by filters at once.
    assert (await scim.owner.post(f"{USERS}/{ann}/deactivate")).status_code == 200
    assert sorted(await ids(scim, "active eq false")) == sorted([ann, cleo])


@pytest.mark.parametrize("flt", [
    'userName eq "x" or 1=1', "userName eq 'x'", 'userName eq "x") OR 1=1 --', 'userName eq', 'eq "x"',
    'nope eq "x"', 'userName xx "x"', 'emails[value eq "x"', 'active gt true', 'meta.created gt "yesterday"',
    'emails[type eq "work"][value eq "x"]', 'userName eq "x"; DROP TABLE identity_user; --',
    'name.givenName[value eq "x"]',
    " or ".join(['userName eq "x"'] * 60), "userName eq \"" + "x" * 5000 + "\"",
])
async def test_malformed_or_hostile_filters_are_400(flt: str, client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    await scim.user("victim@corp.example")
    r = await scim.get("/Users", params={"filter": flt})
    assert_scim_error(r, 400, "invalidFilter")
    refused = await audit_rows(nx, scim.owner.org_id, action="filter_refused")
    assert len(refused) == 1 and refused[0]["after"]["filter"] == flt[:500] and refused[0]["actor_kind"] == "scim"


async def test_filter_values_cannot_inject_sql(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    await scim.user("victim@corp.example")
    other = await connect_scim(client, nx)
    await other.user("stranger@corp.example")
    for value in ['x" or "1"="1', "x' OR '1'='1", "x') OR 1=1 --", "%", "_%", "\\", "x\\' OR 1=1 --",
                  "' UNION SELECT id FROM identity_user --"]:
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        for op in ("eq", "co", "sw", "gt"):
            got = await ids(scim, f'userName {op} "{quoted}"')
            if op == "gt":
                continue  # an ordering over text; it may match, but only in this org
            assert got == [] or (op == "co" and value in ("%", "_%") and False), (value, op, got)
    everything = await ids(scim, 'userName gt ""')
    assert len(everything) == 1  # never another org's users
    async with nx.db.reader() as c:
        assert await c.fetchval("SELECT count(*) FROM identity_user") > 2  # nothing was dropped


async def test_sorting_and_paging(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    for i, n in enumerate(names):
        await scim.user(f"{n}@corp.example", displayName=n.title(), **{"schemas": [CORE_USER, ENTERPRISE],
                                                                    ENTERPRISE: {"employeeNumber": str(10 - i)}})
    await scim.user("zulu@corp.example")  # no displayName: sorts last either way
    r = await scim.get("/Users", params={"sortBy": "displayName"})
    got = [u.get("displayName") for u in r.json()["Resources"]]
    assert got == ["Alpha", "Bravo", "Charlie", "Delta", "Echo", None]
    r = await scim.get("/Users", params={"sortBy": "displayName", "sortOrder": "descending"})
    assert [u.get("displayName") for u in r.json()["Resources"]] == ["Echo", "Delta", "Charlie", "Bravo", "Alpha",
                                                                     None]
    r = await scim.get("/Users", params={"sortBy": "userName", "startIndex": 2, "count": 2})
    body = r.json()
    assert body["totalResults"] == 6 and body["startIndex"] == 2 and body["itemsPerPage"] == 2
    assert [u["userName"] for u in body["Resources"]] == ["bravo@corp.example", "charlie@corp.example"]
    r = await scim.get("/Users", params={"count": 0})
    assert r.json()["totalResults"] == 6 and r.json()["Resources"] == []
    r = await scim.get("/Users", params={"startIndex": 0, "count": -5})  # clamped as RFC 7644 §3.4.2.4 says
    assert r.json()["startIndex"] == 1 and r.json()["Resources"] == []
    r = await scim.get("/Users", params={"startIndex": 99})
    assert r.json()["Resources"] == [] and r.json()["totalResults"] == 6
    r = await scim.get("/Users", params={"filter": 'userName sw "a"', "attributes": "userName,emails.value"})
    assert r.json()["Resources"] == [{"schemas": [CORE_USER, ENTERPRISE], "id": r.json()["Resources"][0]["id"],
                                      "userName": "alpha@corp.example"}]
    r = await scim.get("/Users", params={"excludedAttributes": "meta,displayName", "count": 1, "sortBy": "userName"})
    assert "meta" not in r.json()["Resources"][0] and "displayName" not in r.json()["Resources"][0]
    r = await scim.post("/Users/.search", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                                                "filter": 'displayName pr', "sortBy": "displayName", "count": 2})
    assert [u["displayName"] for u in r.json()["Resources"]] == ["Alpha", "Bravo"]
    assert_scim_error(await scim.get("/Users", params={"sortBy": "nope"}), 400, "invalidValue")
    assert_scim_error(await scim.get("/Users", params={"sortBy": "userName", "sortOrder": "sideways"}), 400)
    assert_scim_error(await scim.get("/Users", params={"count": "ten"}), 400, "invalidValue")


# -- PATCH, PUT, ETags, DELETE -------------------------------------------------------------------


async def test_patch_as_azure_ad_and_okta_send_it(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    r = await scim.post("/Users", json={"schemas": [CORE_USER], "userName": "lin@corp.example", "password": "first-pass-1",
                                        "emails": [{"value": "lin@corp.example", "type": "work", "primary": True}]})
    user = r.json()
    uid = user["id"]
    session = await token_for(client, "lin@corp.example", "first-pass-1", scim.owner.org_slug)
    access = session.json()["access_token"]
    # Azure AD: capitalised ops, booleans as strings, path-less replace with dotted keys.
    r = await scim.patch(f"/Users/{uid}", [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "value": {"name.givenName": "Lin", "title": "Analyst"}},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "lin.new@corp.example"},
    ])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active"] is False and body["name"]["givenName"] == "Lin" and body["title"] == "Analyst"
    assert body["emails"] == [{"value": "lin.new@corp.example", "type": "work", "primary": True}]
    nexus = await nexus_user(scim, uid)
    assert nexus["status"] == "deactivated" and nexus["email"] == "lin.new@corp.example"
    # Deactivation ended the user's session.
    assert (await client.get("/api/v1/identity/me", headers={"Authorization": f"Bearer {access}"})).status_code == 401
    assert (await token_for(client, "lin.new@corp.example", "first-pass-1", scim.owner.org_slug)).status_code == 400
    # Okta: path-less replace of the whole state.
    r = await scim.patch(f"/Users/{uid}", [{"op": "replace", "value": {"active": True, "displayName": "Lin L."}}])
    assert r.status_code == 200 and r.json()["active"] is True
    assert (await nexus_user(scim, uid))["name"] == "Lin L."
    # Remove with a filtered path, add a value to a multi-valued attribute, set a password.
    r = await scim.patch(f"/Users/{uid}", [
        {"op": "add", "path": "emails", "value": [{"value": "lin@home.example", "type": "home"}]},
        {"op": "remove", "path": "title"},
        {"op": "replace", "path": "password", "value": "second-pass-2"},
    ])
    assert r.status_code == 200, r.text
    assert "title" not in r.json() and len(r.json()["emails"]) == 2 and "password" not in r.json()
    r = await scim.patch(f"/Users/{uid}", [{"op": "remove", "path": 'emails[type eq "home"]'}])
    assert [e["type"] for e in r.json()["emails"]] == ["work"]
    assert (await token_for(client, "lin.new@corp.example", "second-pass-2", scim.owner.org_slug)).status_code == 200
    # Bad operations are refused and change nothing.
    before = (await scim.get(f"/Users/{uid}")).json()
    for ops in ([{"op": "frobnicate", "path": "title", "value": "x"}],
                [{"op": "replace", "path": "nope", "value": "x"}],
                [{"op": "replace", "path": "id", "value": "x"}],
                [{"op": "replace", "path": "groups", "value": [{"value": "x"}]}],
                [{"op": "remove", "path": "userName"}],
                [{"op": "replace", "path": 'emails[type eq "work"', "value": "x"}],
                [{"op": "replace", "path": "title", "value": "ok"}, {"op": "remove"}]):
        r = await scim.patch(f"/Users/{uid}", ops)
        assert 400 <= r.status_code < 500, (ops, r.text)
        assert r.headers["content-type"].startswith("application/scim+json")
    r = await scim.request("PATCH", f"/Users/{uid}", json={"Operations": []})
    assert_scim_error(r, 400)
    assert (await scim.get(f"/Users/{uid}")).json() == before


async def test_put_and_etags(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    user = await scim.user("pat@corp.example", title="Old", nickName="P")
    uid, etag = user["id"], user["meta"]["version"]
    r = await scim.get(f"/Users/{uid}", headers={"If-None-Match": etag})
    assert r.status_code == 304
    r = await scim.put(f"/Users/{uid}", json={"schemas": [CORE_USER], "userName": "pat@corp.example",
                                              "displayName": "Pat", "active": True},
                       headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert "title" not in r.json() and r.json()["displayName"] == "Pat"
    assert r.headers["ETag"] != etag
    # A stale ETag changes nothing.
    for method, kw in (("PUT", {"json": {"schemas": [CORE_USER], "userName": "pat@corp.example"}}),
                       ("PATCH", {"json": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                           "Operations": [{"op": "replace", "path": "title", "value": "x"}]}}),
                       ("DELETE", {})):
        assert_scim_error(await scim.request(method, f"/Users/{uid}", headers={"If-Match": etag}, **kw), 412)
    assert (await scim.get(f"/Users/{uid}")).json()["displayName"] == "Pat"
    # A NEXUS-side change moves the version too.
    current = (await scim.get(f"/Users/{uid}")).json()["meta"]["version"]
    await scim.owner.post(f"{USERS}/{uid}/deactivate")
    assert (await scim.get(f"/Users/{uid}")).json()["meta"]["version"] != current
    # PUT cannot rename onto someone else.
    await scim.user("other@corp.example")
    r = await scim.put(f"/Users/{uid}", json={"schemas": [CORE_USER], "userName": "OTHER@corp.example"})
    assert_scim_error(r, 409, "uniqueness")


async def test_delete_user(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    user = await scim.user("gone@corp.example", password="gone-password-1")
    group = await scim.group("Team", [user["id"]])
    r = await scim.delete(f"/Users/{user['id']}")
    assert r.status_code == 204
    assert_scim_error(await scim.get(f"/Users/{user['id']}"), 404)
    assert_scim_error(await scim.delete(f"/Users/{user['id']}"), 404)
    assert "members" not in (await scim.get(f"/Groups/{group['id']}")).json()
    assert (await scim.owner.get(f"{USERS}/{user['id']}")).status_code == 404  # deleted in NEXUS (restorable)
    assert (await token_for(client, "gone@corp.example", "gone-password-1", scim.owner.org_slug)).status_code == 400
    # Provisioned again later, the same address comes back as the same (restored) user.
    again = await scim.user("gone@corp.example")
    assert again["id"] == user["id"]
    # Deleted by an admin in NEXUS: gone from SCIM too, and provisioning it again works.
    assert (await scim.owner.delete(f"{USERS}/{user['id']}")).status_code == 204
    assert_scim_error(await scim.get(f"/Users/{user['id']}"), 404)
    assert await ids(scim, 'userName eq "gone@corp.example"') == []
    assert (await scim.user("gone@corp.example"))["id"] == user["id"]


# -- groups and roles --------------------------------------------------------------------------


async def test_groups_grant_their_mapped_roles(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    role = await make_role(scim.owner, ["tasks.tasks.read"], name="readers")
    ann, bob = await scim.user("ann@corp.example"), await scim.user("bob@corp.example")
    group = await scim.group("Engineering", [ann["id"]])
    gid = group["id"]
    assert group["members"][0]["value"] == ann["id"] and group["members"][0]["type"] == "User"
    assert (await scim.get(f"/Users/{ann['id']}")).json()["groups"][0]["value"] == gid
    # An admin maps the group to a role: members hold it at once.
    r = await scim.owner.patch(f"{GROUPS_API}/{gid}", json={"roles": [role["name"]]})
    assert r.status_code == 200, r.text
    assert sorted((await nexus_user(scim, ann["id"]))["roles"]) == ["member", "readers"]
    # Azure AD adds and removes members with PATCH.
    r = await scim.patch(f"/Groups/{gid}", [{"op": "Add", "path": "members", "value": [{"value": bob["id"]}]}])
    assert r.status_code == 200, r.text
    assert "readers" in (await nexus_user(scim, bob["id"]))["roles"]
    r = await scim.patch(f"/Groups/{gid}", [{"op": "Remove", "path": f'members[value eq "{ann["id"]}"]'}])
    assert [m["value"] for m in r.json()["members"]] == [bob["id"]]
    assert (await nexus_user(scim, ann["id"]))["roles"] == ["member"]
    assert await ids(scim, f'members[value eq "{bob["id"]}"]', "/Groups") == [gid]
    assert await ids(scim, 'displayName eq "engineering"', "/Groups") == [gid]
    # Okta renames and replaces members with PUT.
    r = await scim.put(f"/Groups/{gid}", json={"schemas": [CORE_GROUP], "displayName": "Eng",
                                               "members": [{"value": ann["id"]}]})
    assert r.status_code == 200 and r.json()["displayName"] == "Eng"
    assert "readers" in (await nexus_user(scim, ann["id"]))["roles"]
    assert "readers" not in (await nexus_user(scim, bob["id"]))["roles"]
    # Deleting the group takes its roles away.
    assert (await scim.delete(f"/Groups/{gid}")).status_code == 204
    assert (await nexus_user(scim, ann["id"]))["roles"] == ["member"]
    assert_scim_error(await scim.get(f"/Groups/{gid}"), 404)
    # Unknown members and mapping to roles the admin does not hold are refused.
    r = await scim.post("/Groups", json={"schemas": [CORE_GROUP], "displayName": "x", "members": [{"value": "nope"}]})
    assert_scim_error(r, 400, "invalidValue")
    g2 = await scim.group("Admins")
    admin = await scim.owner.add_user(["admin"])
    assert (await admin.patch(f"{GROUPS_API}/{g2['id']}", json={"roles": ["owner"]})).status_code == 403
    actions = {r["action"] for r in await audit_rows(nx, scim.owner.org_id, resource="directory-groups")}
    assert {"created", "updated", "members_changed", "deleted"} <= actions


async def test_group_token_cannot_escalate(client: httpx.AsyncClient, nx: Nexus) -> None:
    """A group an owner mapped to admin, filled by a token of a mere user manager, does not
    make its members admins beyond the token issuer's own authority."""
    owner_scim = await connect_scim(client, nx)
    manager_role = await make_role(owner_scim.owner, ["identity.users.read", "identity.users.update",
                                                      "identity.users.create", "identity.scim-tokens.create",
                                                      "identity.roles.read"], name="user-managers")
    manager = await owner_scim.owner.add_user([manager_role["name"]])
    scim = await connect_scim(client, nx, owner=manager, default_roles=[manager_role["name"]])
    u = await scim.user("climber@corp.example")
    g = await scim.group("Would-be admins", [])
    assert (await owner_scim.owner.patch(f"{GROUPS_API}/{g['id']}", json={"roles": ["admin"]})).status_code == 200
    r = await scim.patch(f"/Groups/{g['id']}", [{"op": "add", "path": "members", "value": [{"value": u["id"]}]}])
    assert_scim_error(r, 403)
    assert (await nexus_user(owner_scim, u["id"]))["roles"] == ["user-managers"]





# -- bulk --------------------------------------------------------------------------------------

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


async def test_bulk_with_bulk_id_references(client: httpx.AsyncClient, nx: Nexus) -> None:
    scim = await connect_scim(client, nx)
    r = await scim.post("/Bulk", json={"schemas": [BULK], "Operations": [
        {"method": "POST", "bulkId": "u1", "path": "/Users",
         "data": {"schemas": [CORE_USER], "userName": "bulk1@corp.example"}},
        {"method": "POST", "bulkId": "g1", "path": "/Groups",
         "data": {"schemas": [CORE_GROUP], "displayName": "Bulk", "members": [{"value": "bulkId:u1"}]}},
        {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Bulked"}]}},
        {"method": "POST", "bulkId": "dup", "path": "/Users",
         "data": {"schemas": [CORE_USER], "userName": "BULK1@corp.example"}},
        {"method": "DELETE", "path": "/Users/nope"},
        {"method": "GET", "path": "/Users"},
        {"method": "POST", "bulkId": "g2", "path": "/Groups",
         "data": {"schemas": [CORE_GROUP], "displayName": "x", "members": [{"value": "bulkId:never"}]}},
    ]})
    assert r.status_code == 200, r.text
    ops = r.json()["Operations"]
    assert [o["status"] for o in ops] == ["201", "201", "200", "409", "404", "400", "409"], ops
    uid = ops[0]["location"].rsplit("/", 1)[1]
    group = (await scim.get(f"/Groups/{ops[1]['location'].rsplit('/', 1)[1]}")).json()
    assert group["members"][0]["value"] == uid
    assert (await scim.get(f"/Users/{uid}")).json()["title"] == "Bulked"
    assert ops[3]["response"]["scimType"] == "uniqueness"
    # failOnErrors stops after that many errors; what ran before stays.
    r = await scim.post("/Bulk", json={"schemas": [BULK], "failOnErrors": 1, "Operations": [
        {"method": "DELETE", "path": "/Users/nope"},
        {"method": "POST", "bulkId": "later", "path": "/Users",
         "data": {"schemas": [CORE_USER], "userName": "never@corp.example"}},
    ]})
    assert [o["status"] for o in r.json()["Operations"]] == ["404"]
    assert await ids(scim, 'userName eq "never@corp.example"') == []
    too_many = [{"method": "DELETE", "path": f"/Users/x{i}"} for i in range(101)]
    assert_scim_error(await scim.post("/Bulk", json={"schemas": [BULK], "Operations": too_many}), 413, "tooMany")
