"""API keys over HTTP: shown once, stored hashed, scoped to (never beyond) their owner's
permissions, revocable, owned per user, with last-used time."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta

import httpx

from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow
from tests.factories import audit_rows, make_api_key, make_role, new_org, with_credential

KEYS = "/api/v1/identity/api-keys"
ME = "/api/v1/identity/me"
USERS = "/api/v1/identity/users"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def secret_of(key: str) -> str:
    return key.split("_", 2)[2]


async def stored_key(nx: Nexus, key_id: str) -> dict:
    async with nx.db.reader() as conn:
        row = await conn.fetchrow("SELECT prefix, secret_hash, last_used_at, revoked_at FROM identity_api_key"
                                  " WHERE id = ?", [key_id])
    assert row is not None
    return dict(zip(("prefix", "secret_hash", "last_used_at", "revoked_at"), row, strict=True))


# -- shown once, stored hashed ------------------------------------------------------------


async def test_key_is_shown_once_and_stored_hashed(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner, ["identity.users.read"], name="CI")
    key = created["key"]
    assert key.startswith(f"nxk_{created['prefix']}_")
    assert created["name"] == "CI" and created["user_id"] == owner.user_id
    assert created["permissions"] == ["identity.users.read"]
    assert created["revoked_at"] is None and created["last_used_at"] is None
    assert "secret_hash" not in created
    secret = secret_of(key)
    row = await stored_key(nx, created["id"])
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    responses = [
        await owner.get(f"{KEYS}/{created['id']}"),
        await owner.get(KEYS),
        await owner.get(KEYS, params={"q": "CI"}),
        await owner.get(f"{KEYS}/export", params={"format": "csv"}),
        await owner.get(f"{KEYS}/export", params={"format": "json"}),
        await owner.patch(f"{KEYS}/{created['id']}", json={"name": "CI runner"}),
        await owner.get("/api/v1/meta"),
    ]
    for r in responses:
        assert r.status_code == 200, r.text
        assert secret not in r.text and key not in r.text
        assert "secret_hash" not in r.text and row["secret_hash"] not in r.text
        assert '"key"' not in r.text
    got = responses[0].json()
    assert set(created) - set(got) == {"key"}
    header = next(csv.reader(io.StringIO(responses[3].text)))
    assert "prefix" in header and "secret_hash" not in header and "key" not in header
    rows = await audit_rows(nx, owner.org_id, resource="api-keys", record_id=created["id"])
    assert [r["action"] for r in rows] == ["created", "updated"]
    assert secret not in str(rows) and row["secret_hash"] not in str(rows)


async def test_idempotent_retry_does_not_store_the_key(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(KEYS, json={"name": "retry"}, headers={"Idempotency-Key": "key-once"})
    assert r.status_code == 201
    secret = secret_of(r.json()["key"])
    async with nx.db.reader() as conn:
        rows = await conn.fetch("SELECT body FROM kernel_idempotency WHERE org_id = ?", [owner.org_id])
    assert all(secret.encode() not in bytes(row[0]) for row in rows)


# -- using a key ------------------------------------------------------------------------------


async def test_key_works_as_bearer_and_x_api_key(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner)
    for headers in (bearer(created["key"]), {"X-API-Key": created["key"]}, {"x-api-key": f" {created['key']} "}):
        r = await client.get(USERS, headers=headers)
        assert r.status_code == 200, r.text
    me = (await client.get(ME, headers=bearer(created["key"]))).json()
    assert me["auth"]["kind"] == "api_key" and me["auth"]["api_key_id"] == created["id"]
    assert me["permissions"] == ["*"]  # empty means all of the owner's


async def test_last_used_time_is_recorded(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner)
    assert (await stored_key(nx, created["id"]))["last_used_at"] is None
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200
    got = (await owner.get(f"{KEYS}/{created['id']}")).json()
    assert got["last_used_at"] is not None
    listed = (await owner.get(KEYS, params={"sort": "-last_used_at"})).json()["items"]
    assert listed[0]["id"] == created["id"]


async def test_bad_keys_are_401(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner)
    key = created["key"]
    for bad in ("nxk_", "nxk_nounderscore", f"nxk_{created['prefix']}_wrong-secret", key[:-2],
                f"nxk_0000000000000000_{secret_of(key)}", key + "x"):
        for headers in (bearer(bad), {"X-API-Key": bad}):
            r = await client.get(ME, headers=headers)
            assert r.status_code == 401, (bad, r.text)
            assert r.headers["content-type"] == "application/problem+json"
    assert (await client.get(ME, headers=bearer(key))).status_code == 200


# -- scopes ---------------------------------------------------------------------------------


async def test_scoped_key_can_do_only_its_scope(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner, ["identity.users.read", "tasks.tasks.read"])
    keyed = with_credential(owner, created["key"])
    assert (await keyed.get(USERS)).status_code == 200
    assert (await keyed.get("/api/v1/tasks/tasks")).status_code == 200
    r = await keyed.post(USERS, json={"email": f"x@{owner.org_slug}.test", "name": "X"})
    assert r.status_code == 403 and r.json()["permission"] == "identity.users.create"
    assert (await keyed.post("/api/v1/tasks/tasks", json={"title": "x"})).status_code == 403
    assert (await keyed.get("/api/v1/identity/roles")).status_code == 403
    me = (await keyed.get(ME)).json()
    assert sorted(me["permissions"]) == ["identity.users.read", "tasks.tasks.read"]
    assert me["roles"] == ["owner"]


async def test_key_never_exceeds_its_owner(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    for perms in (["identity.users.create"], ["*"], ["identity.*.*"], ["identity.roles.update"],
                  ["tasks.tasks.read", "identity.users.delete"]):
        r = await member.post(KEYS, json={"name": "too much", "permissions": perms})
        assert r.status_code == 403, (perms, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    viewer = await owner.add_user(["viewer"])
    assert (await viewer.post(KEYS, json={"name": "v"})).status_code == 403
    created = await make_api_key(member, ["tasks.tasks.read", "tasks.tasks.create", "*.*.read"])
    keyed = with_credential(member, created["key"])
    assert (await keyed.post("/api/v1/tasks/tasks", json={"title": "by key"})).status_code == 201
    # *.*.read does not reach the privileged identity app beyond what the owner holds there.
    assert (await keyed.get(USERS)).status_code == 403
    # The owner loses permissions: the key loses them too, at once.
    r = await owner.post(f"{USERS}/{member.user_id}/deactivate")
    assert r.status_code == 200
    assert (await keyed.get("/api/v1/tasks/tasks")).status_code == 401
    assert (await owner.post(f"{USERS}/{member.user_id}/reactivate")).status_code == 200
    assert (await keyed.get("/api/v1/tasks/tasks")).status_code == 200


async def test_role_change_narrows_a_key(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    role = await make_role(owner, ["tasks.tasks.read", "tasks.tasks.create", "identity.api-keys.create"])
    user = await owner.add_user([role["name"]])
    created = await make_api_key(user, ["tasks.tasks.create"])
    keyed = with_credential(user, created["key"])
    assert (await keyed.post("/api/v1/tasks/tasks", json={"title": "x"})).status_code == 201
    r = await owner.patch(f"/api/v1/identity/roles/{role['id']}", json={"permissions": ["tasks.tasks.read"]})
    assert r.status_code == 200, r.text
    assert (await keyed.post("/api/v1/tasks/tasks", json={"title": "x"})).status_code == 403
    assert (await keyed.get(ME)).json()["permissions"] == []


async def test_a_key_cannot_mint_a_wider_key(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    narrow = await make_api_key(owner, ["identity.api-keys.create", "tasks.tasks.read"])
    keyed = with_credential(owner, narrow["key"])
    assert (await keyed.post(KEYS, json={"name": "wider", "permissions": ["*"]})).status_code == 403
    r = await keyed.post(KEYS, json={"name": "all of mine"})
    assert r.status_code == 201, r.text
    minted = r.json()
    assert sorted(minted["permissions"]) == ["identity.api-keys.create", "tasks.tasks.read"]
    me = (await client.get(ME, headers=bearer(minted["key"]))).json()
    assert sorted(me["permissions"]) == ["identity.api-keys.create", "tasks.tasks.read"]


async def test_patch_cannot_widen_a_key(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    role = await make_role(owner, ["identity.api-keys.*", "tasks.tasks.read"])
    user = await owner.add_user([role["name"]])
    created = await make_api_key(user, ["tasks.tasks.read"])
    url = f"{KEYS}/{created['id']}"
    assert (await user.patch(url, json={"permissions": ["tasks.tasks.delete"]})).status_code == 403
    assert (await user.patch(url, json={"permissions": ["*"]})).status_code == 403
    assert (await user.patch(url, json={"permissions": ["identity.api-keys.read"]})).status_code == 200
    me = (await client.get(ME, headers=bearer(created["key"]))).json()
    assert me["permissions"] == ["identity.api-keys.read"]  # applied at once


# -- expiry -----------------------------------------------------------------------------------


async def test_expiry(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    past = (utcnow() - timedelta(hours=1)).isoformat()
    r = await owner.post(KEYS, json={"name": "stale", "expires_at": past})
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/expires_at"
    soon = (utcnow() + timedelta(days=1)).replace(tzinfo=None).isoformat()  # naive: taken as UTC
    created = await make_api_key(owner, expires_at=soon)
    assert created["expires_at"] is not None
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200
    async with nx.db.transaction() as conn:
        await conn.execute("UPDATE identity_api_key SET expires_at = ? WHERE id = ?",
                           [nx.db.ts(utcnow() - timedelta(seconds=1)), created["id"]])
    nx.auth.invalidate_all()
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 401
    r = await owner.post(KEYS, json={"name": "bad", "expires_at": "next tuesday"})
    assert r.status_code == 422


# -- revocation -------------------------------------------------------------------------------


async def test_revoke_action(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner)
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200  # cached now
    r = await owner.post(f"{KEYS}/{created['id']}/revoke")
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"] is not None and "key" not in r.json()
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 401
    again = await owner.post(f"{KEYS}/{created['id']}/revoke")
    assert again.status_code == 200 and again.json()["revoked_at"] == r.json()["revoked_at"]
    assert [a["action"] for a in await audit_rows(nx, owner.org_id, action="revoked", record_id=created["id"])] \
        == ["revoked"]


async def test_delete_revokes(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner)
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200
    assert (await owner.delete(f"{KEYS}/{created['id']}")).status_code == 204
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 401
    assert (await owner.get(f"{KEYS}/{created['id']}")).status_code == 404


async def test_revoke_endpoint_accepts_an_api_key(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner)
    r = await client.post("/api/v1/auth/revoke", data={"token": created["key"]})
    assert r.status_code == 200
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 401
    assert (await owner.get(f"{KEYS}/{created['id']}")).json()["revoked_at"] is not None
    # A wrong secret for a real prefix revokes nothing.
    other = await make_api_key(owner)
    forged = f"nxk_{other['prefix']}_not-the-secret"
    assert (await client.post("/api/v1/auth/revoke", data={"token": forged})).status_code == 200
    assert (await client.get(ME, headers=bearer(other["key"]))).status_code == 200


# -- ownership and tenancy ---------------------------------------------------------------------


async def test_members_manage_only_their_own_keys(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    alice = await owner.add_user(["member"])
    bob = await owner.add_user(["member"])
    bobs = await make_api_key(bob)
    url = f"{KEYS}/{bobs['id']}"
    assert (await alice.post(f"{url}/revoke")).status_code == 404
    assert (await alice.delete(url)).status_code == 404
    assert (await alice.patch(url, json={"name": "mine"})).status_code == 403  # members may not update keys
    assert (await client.get(ME, headers=bearer(bobs["key"]))).status_code == 200
    assert (await bob.post(f"{url}/revoke")).status_code == 200
    # An admin manages everyone's keys.
    bobs2 = await make_api_key(bob)
    admin = await owner.add_user(["admin"])
    assert (await admin.delete(f"{KEYS}/{bobs2['id']}")).status_code == 204
    assert (await client.get(ME, headers=bearer(bobs2["key"]))).status_code == 401


async def test_members_see_only_their_own_keys(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    alice = await owner.add_user(["member"])
    bob = await owner.add_user(["member"])
    bobs = await make_api_key(bob)
    alices = await make_api_key(alice)
    listed = (await alice.get(KEYS)).json()["items"]
    assert [k["id"] for k in listed] == [alices["id"]]
    assert (await alice.get(KEYS, params={"user_id": bob.user_id})).json()["items"] == []
    assert (await alice.get(f"{KEYS}/{bobs['id']}")).status_code == 404
    # Admins see everyone's.
    everyone = {k["id"] for k in (await owner.get(KEYS, params={"limit": 500})).json()["items"]}
    assert {alices["id"], bobs["id"]} <= everyone
    exported = (await owner.get(f"{KEYS}/export", params={"format": "json"})).json()
    assert {alices["id"], bobs["id"]} <= {k["id"] for k in exported}


async def test_another_orgs_keys_are_404(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    created = await make_api_key(owner)
    stranger = await new_org(client, nx)
    url = f"{KEYS}/{created['id']}"
    for r in (await stranger.get(url), await stranger.patch(url, json={"name": "mine"}),
              await stranger.delete(url), await stranger.post(f"{url}/revoke"),
              await stranger.post(f"{url}/restore")):
        assert r.status_code == 404, r.text
    assert created["id"] not in {k["id"] for k in (await stranger.get(KEYS)).json()["items"]}
    assert (await client.get(ME, headers=bearer(created["key"]))).status_code == 200
    # The key itself only ever acts in its own org.
    keyed = with_credential(owner, created["key"])
    assert (await keyed.get(f"{USERS}/{stranger.user_id}")).status_code == 404


async def test_keys_are_not_importable_and_input_is_checked(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(f"{KEYS}/import", json=[{"name": "x"}])
    assert r.status_code == 405
    for body, pointer in (({"name": ""}, "/name"), ({"name": "x", "permissions": ["nope"]}, "/permissions/0"),
                          ({"name": "x", "secret_hash": "0" * 64}, "/secret_hash"),
                          ({"name": "x", "user_id": owner.user_id}, "/user_id"),
                          ({"name": "x", "prefix": "abc"}, "/prefix")):
        r = await owner.post(KEYS, json=body)
        assert r.status_code == 422, (body, r.text)
        assert any(e["pointer"] == pointer for e in r.json()["errors"]), r.text


async def test_demoted_owner_key_loses_permissions(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    admin = await owner.add_user(["admin"])
    created = await make_api_key(admin, ["identity.users.create", "identity.users.read"])
    keyed = with_credential(admin, created["key"])
    assert (await keyed.get(USERS)).status_code == 200
    r = await owner.post(f"{USERS}/{admin.user_id}/assign-roles", json={"roles": ["viewer"]})
    assert r.status_code == 200, r.text
    me = (await keyed.get(ME)).json()
    assert me["permissions"] == ["identity.users.read"]
    r = await keyed.post(USERS, json={"email": f"k@{owner.org_slug}.test", "name": "K"})
    assert r.status_code == 403
