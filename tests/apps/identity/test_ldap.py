"""LDAP directory sync and sign-in by bind, against a real OpenLDAP server (slapd) that these
tests start with their own configuration and data (tests/apps/identity/ldap_server.py)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_REPLACE

from nexus.apps.identity.directory import ldap as ldapmod
from nexus.kernel.http.app import Nexus
from tests.apps.identity.ldap_server import GROUPS, PEOPLE, SYNC_DN, SYNC_PW, LdapServer, person, slapd
from tests.factories import Actor, audit_rows, make_role, new_org

CONNS = "/api/v1/identity/ldap-connections"
GROUPS_API = "/api/v1/identity/directory-groups"
USERS = "/api/v1/identity/users"

LDIF = (
    person("alice", "Alice Admin", "alice@corp.test", "alice-pw-1")
    + person("bob", "Bob Builder", "bob@corp.test", "bob-pw-1")
    + person("carol", "Carol Gone", "carol@corp.test", "carol-pw-1", "employeeType: disabled\n")
    + f"dn: cn=admins,{GROUPS}\nobjectClass: groupOfNames\ncn: admins\nmember: uid=alice,{PEOPLE}\n\n"
    + f"dn: cn=staff,{GROUPS}\nobjectClass: groupOfNames\ncn: staff\nmember: uid=alice,{PEOPLE}\n"
      f"member: uid=bob,{PEOPLE}\n\n"
)


@pytest.fixture(scope="module")
def directory() -> Iterator[LdapServer]:
    with slapd(LDIF) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="session")
async def own_client(nx: Nexus) -> AsyncIterator[httpx.AsyncClient]:
    """Sign-in failures are counted per client address: these tests use their own."""
    addr = f"203.0.113.{secrets.randbelow(250) + 1}"
    transport = httpx.ASGITransport(app=nx, client=(addr, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://nexus.test") as c:
        yield c


def connection_body(server: LdapServer, **over: Any) -> dict[str, Any]:
    body = {
        "name": "Corp directory", "url": server.url, "bind_dn": SYNC_DN, "bind_password": SYNC_PW,
        "user_base_dn": PEOPLE, "user_filter": "(objectClass=inetOrgPerson)",
        "group_base_dn": GROUPS, "group_filter": "(objectClass=groupOfNames)",
        "disabled_attribute": "employeeType", "disabled_value": "disabled",
    }
    body.update(over)
    return body


async def add_connection(owner: Actor, server: LdapServer, **over: Any) -> dict[str, Any]:
    r = await owner.post(CONNS, json=connection_body(server, **over))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def sync_now(owner: Actor, conn_id: str, full: bool = False) -> dict[str, Any]:
    """The "sync now" action queues a job; the in-process worker runs it."""
    r = await owner.post(f"{CONNS}/{conn_id}/sync", json={"full": full})
    assert r.status_code == 200, r.text
    assert r.json()["last_sync_status"] == "queued"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = (await owner.get(f"{CONNS}/{conn_id}")).json()
        if got["last_sync_status"] in ("ok", "failed"):
            return got  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError("the sync job did not finish")


async def user_by_email(owner: Actor, email: str) -> dict[str, Any]:
    r = await owner.get(USERS, params={"email": email})
    items = r.json()["items"]
    assert len(items) == 1, (email, items)
    return items[0]  # type: ignore[no-any-return]


async def token(client: httpx.AsyncClient, username: str, password: str, org: str | None = None) -> httpx.Response:
    data = {"grant_type": "password", "username": username, "password": password}
    if org:
        data["org"] = org
    return await client.post("/api/v1/auth/token", data=data)


# -- the connection ----------------------------------------------------------------------------


async def test_connection_password_is_sealed_and_test_action_binds(client: httpx.AsyncClient, nx: Nexus,
                                                                   directory: LdapServer) -> None:
    owner = await new_org(client, nx)
    conn = await add_connection(owner, directory)
    assert "bind_password" not in conn and "bind_secret" not in conn and conn["last_sync_status"] is None
    async with nx.db.reader() as c:
        stored = await c.fetchval("SELECT bind_secret FROM identity_ldap_connection WHERE id = ?", [conn["id"]])
    assert stored and SYNC_PW not in stored  # sealed, not stored as typed
    listed = (await owner.get(CONNS)).json()["items"]
    assert all("bind_password" not in i and "bind_secret" not in i for i in listed)
    meta = (await owner.get("/api/v1/meta")).json()
    assert SYNC_PW not in str(meta) and "bind_secret" not in str(meta)
    r = await owner.post(f"{CONNS}/{conn['id']}/test")
    assert r.status_code == 200, r.text
    assert r.json()["test"] == {"ok": True, "detail": "Bound and found 3 users and 2 groups.", "users": 3,
                                "groups": 2}
    shown = (await owner.get(f"{CONNS}/{conn['id']}")).json()  # what the admin page shows afterwards
    assert shown["last_test_result"]["ok"] is True and shown["last_test_at"]
    # A wrong service password: the test says so, and nothing leaks.
    r = await owner.patch(f"{CONNS}/{conn['id']}", json={"bind_password": "wrong"})
    assert r.status_code == 200, r.text
    out = (await owner.post(f"{CONNS}/{conn['id']}/test")).json()["test"]
    assert out["ok"] is False and "invalidCredentials" in out["detail"] and "wrong" not in out["detail"]
    rows = await audit_rows(nx, owner.org_id, record_id=conn["id"])
    assert {"created", "tested", "updated"} <= {r["action"] for r in rows}
    assert all("wrong" not in str(r) and SYNC_PW not in str(r) for r in rows)
    # A failed sync is recorded on the connection.
    failed = await sync_now(owner, conn["id"])
    assert failed["last_sync_status"] == "failed" and "invalidCredentials" in failed["last_sync_result"]["error"]


async def test_bad_connection_settings_are_refused(client: httpx.AsyncClient, nx: Nexus,
                                                   directory: LdapServer) -> None:
    owner = await new_org(client, nx)
    cases = [
        ({"user_filter": "(objectClass=inetOrgPerson"}, "/user_filter"),
        ({"user_filter": "uid=*"}, "/user_filter"),
        ({"url": "http://example.test"}, "/url"),
        ({"schedule": "every minute"}, "/schedule"),
        ({"group_roles": {"admins": ["no-such-role"]}}, "/group_roles"),
        ({"attributes": {"password": "userPassword"}}, "/attributes"),
    ]
    for over, pointer in cases:
        r = await owner.post(CONNS, json=connection_body(directory, **over))
        assert r.status_code == 422, (over, r.text)
        assert any(e["pointer"] == pointer for e in r.json()["errors"]), r.text
    assert (await owner.get(CONNS)).json()["items"] == []
    # An admin cannot map a directory group to the owner role, nor to what they do not hold.
    member = await owner.add_user(["member"])
    r = await member.post(CONNS, json=connection_body(directory))
    assert r.status_code == 403
    admin = await owner.add_user(["admin"])
    r = await admin.post(CONNS, json=connection_body(directory, group_roles={"admins": ["owner"]}))
    assert r.status_code == 403, r.text
    # Another org's connection is not found.
    conn = await add_connection(owner, directory)
    other = await new_org(client, nx)
    assert (await other.get(f"{CONNS}/{conn['id']}")).status_code == 404
    assert (await other.post(f"{CONNS}/{conn['id']}/sync", json={})).status_code == 404


# -- sync --------------------------------------------------------------------------------------


async def test_sync_imports_users_groups_roles_and_follows_changes(client: httpx.AsyncClient, nx: Nexus,
                                                                   directory: LdapServer) -> None:
    owner = await new_org(client, nx)
    staff = await make_role(owner, ["tasks.tasks.read"], name="staff-role")
    conn = await add_connection(owner, directory, group_roles={"cn=admins,ou=groups,dc=corp,dc=test": ["admin"],
                                                               "staff": [staff["name"]]},
                                default_roles=["viewer"])
    done = await sync_now(owner, conn["id"])
    result = done["last_sync_result"]
    assert done["last_sync_status"] == "ok", done
    assert result["incremental"] is False and result["created"] == 3 and result["groups"] == 2, result
    assert done["highwater"]
    alice, bob, carol = [await user_by_email(owner, f"{n}@corp.test") for n in ("alice", "bob", "carol")]
    assert alice["name"] == "Alice Admin" and alice["status"] == "active"
    assert sorted(alice["roles"]) == ["admin", "staff-role", "viewer"]
    assert sorted(bob["roles"]) == ["staff-role", "viewer"]
    assert carol["status"] == "deactivated"  # employeeType: disabled
    groups = {g["display_name"]: g for g in (await owner.get(GROUPS_API)).json()["items"]}
    assert groups["admins"]["roles"] == ["admin"] and groups["staff"]["member_count"] == 2
    assert groups["admins"]["source"] == "ldap"

    # An admin's own grant survives the directory taking its grant away.
    r = await owner.post(f"{USERS}/{bob['id']}/assign-roles", json={"roles": ["viewer", "staff-role", "member"]})
    assert r.status_code == 200, r.text

    # The directory changes: bob leaves staff, carol is enabled, alice leaves the company.
    time.sleep(1.1)  # modifyTimestamp has a one-second resolution
    admin = directory.admin()
    assert admin.modify(f"cn=staff,{GROUPS}", {"member": [(MODIFY_DELETE, [f"uid=bob,{PEOPLE}"])]})
    assert admin.modify(f"uid=carol,{PEOPLE}", {"employeeType": [(MODIFY_DELETE, [])]})
    assert admin.modify(f"cn=admins,{GROUPS}", {"member": [(MODIFY_ADD, [f"uid=carol,{PEOPLE}"])]})
    assert admin.modify(f"cn=admins,{GROUPS}", {"member": [(MODIFY_DELETE, [f"uid=alice,{PEOPLE}"])]})
    assert admin.delete(f"uid=alice,{PEOPLE}")
    admin.unbind()
    done = await sync_now(owner, conn["id"])
    result = done["last_sync_result"]
    assert result["incremental"] is True, result
    assert result["users_in_directory"] == 2 and result["users_changed"] < 3, result
    assert result["deactivated"] == 1 and result["reactivated"] == 1, result
    alice, bob, carol = [await user_by_email(owner, f"{n}@corp.test") for n in ("alice", "bob", "carol")]
    assert alice["status"] == "deactivated"
    assert sorted(bob["roles"]) == ["member", "viewer"]  # staff-role went with the group; member stayed
    assert carol["status"] == "active" and "admin" in carol["roles"]
    # A group mapping changed by an admin applies to the members at once.
    admins = next(g for g in (await owner.get(GROUPS_API)).json()["items"] if g["display_name"] == "admins")
    r = await owner.patch(f"{GROUPS_API}/{admins['id']}", json={"roles": [staff["name"]]})
    assert r.status_code == 200, r.text
    carol = await user_by_email(owner, "carol@corp.test")
    assert "admin" not in carol["roles"] and "staff-role" in carol["roles"]
    actions = {r["action"] for r in await audit_rows(nx, owner.org_id)}
    assert {"synced", "deactivated", "reactivated", "roles_assigned", "created"} <= actions
    # Restore the directory for the other tests.
    admin = directory.admin()
    admin.add(f"uid=alice,{PEOPLE}", ["inetOrgPerson"], {"uid": "alice", "cn": "Alice Admin", "sn": "Admin",
                                                        "givenName": "Alice", "mail": "alice@corp.test",
                                                        "userPassword": "alice-pw-1"})
    admin.modify(f"cn=staff,{GROUPS}", {"member": [(MODIFY_ADD, [f"uid=bob,{PEOPLE}"])]})
    admin.modify(f"cn=admins,{GROUPS}", {"member": [(MODIFY_REPLACE, [f"uid=alice,{PEOPLE}"])]})
    admin.modify(f"uid=carol,{PEOPLE}", {"employeeType": [(MODIFY_REPLACE, ["disabled"])]})
    admin.unbind()


async def test_scheduled_sync_runs_when_due(client: httpx.AsyncClient, nx: Nexus, directory: LdapServer) -> None:
    owner = await new_org(client, nx)
    conn = await add_connection(owner, directory, schedule="*/5 * * * *")
    assert conn["next_sync_at"] is not None
    # Make it due, and let the per-minute tick find it.
    due = conn_due()
    async with nx.db.transaction() as c:
        await c.execute("UPDATE identity_ldap_connection SET next_sync_at = ? WHERE id = ?",
                        [nx.db.ts(due), conn["id"]])
    ctx = type("Ctx", (), {"nexus": nx, "org_id": None})()
    await ldapmod.tick_job(ctx, {})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = (await owner.get(f"{CONNS}/{conn['id']}")).json()
        if got["last_sync_status"] == "ok":
            break
        await asyncio.sleep(0.1)
    assert got["last_sync_status"] == "ok", got
    assert nx.db.read_ts(got["next_sync_at"]) > due  # the next run is in the future again
    assert (await user_by_email(owner, "bob@corp.test"))["status"] == "active"


def conn_due() -> Any:
    from datetime import timedelta

    from nexus.kernel.jsonutil import utcnow

    return utcnow() - timedelta(minutes=1)


# -- sign-in by bind ---------------------------------------------------------------------------


async def test_directory_users_sign_in_with_their_directory_password(
        own_client: httpx.AsyncClient, client: httpx.AsyncClient, nx: Nexus, directory: LdapServer) -> None:
    owner = await new_org(client, nx)
    conn = await add_connection(owner, directory)
    await sync_now(owner, conn["id"])
    org = owner.org_slug
    r = await token(own_client, "alice@corp.test", "alice-pw-1", org)
    assert r.status_code == 200, r.text
    me = (await own_client.get("/api/v1/identity/me",
                               headers={"Authorization": f"Bearer {r.json()['access_token']}"})).json()
    assert me["email"] == "alice@corp.test"
    assert (await token(own_client, "alice@corp.test", "wrong", org)).json()["error"] == "invalid_grant"
    # By directory username too, and in the browser.
    assert (await token(own_client, "bob", "bob-pw-1", org)).status_code == 200
    r = await own_client.post("/api/v1/auth/session", data={"username": "bob", "password": "bob-pw-1", "org": org})
    assert r.status_code == 200, r.text
    # A disabled directory account cannot sign in, even with its password.
    assert (await token(own_client, "carol@corp.test", "carol-pw-1", org)).status_code == 400
    # The directory's password is the one that counts: a change there applies at once.
    admin = directory.admin()
    assert admin.modify(f"uid=bob,{PEOPLE}", {"userPassword": [(MODIFY_REPLACE, ["bob-pw-2"])]})
    admin.unbind()
    assert (await token(own_client, "bob@corp.test", "bob-pw-1", org)).status_code == 400
    assert (await token(own_client, "bob@corp.test", "bob-pw-2", org)).status_code == 200
    admin = directory.admin()
    admin.modify(f"uid=bob,{PEOPLE}", {"userPassword": [(MODIFY_REPLACE, ["bob-pw-1"])]})
    # Someone added to the directory after the last sync signs in and is provisioned then.
    admin.add(f"uid=dave,{PEOPLE}", ["inetOrgPerson"], {"uid": "dave", "cn": "Dave New", "sn": "New",
                                                       "mail": "dave@corp.test", "userPassword": "dave-pw-1"})
    admin.unbind()
    try:
        assert (await token(own_client, "dave@corp.test", "wrong", org)).status_code == 400
        assert (await owner.get(USERS, params={"email": "dave@corp.test"})).json()["items"] == []
        r = await token(own_client, "dave", "dave-pw-1", org)
        assert r.status_code == 200, r.text
        dave = await user_by_email(owner, "dave@corp.test")
        assert dave["status"] == "active" and dave["roles"] == ["member"]
        # A local password set by an admin does not replace the directory's.
        r = await owner.post(f"{USERS}/{dave['id']}/set-password", json={"password": "local-password-9"})
        assert r.status_code == 200
        assert (await token(own_client, "dave@corp.test", "local-password-9", org)).status_code == 400
    finally:
        admin = directory.admin()
        admin.delete(f"uid=dave,{PEOPLE}")
        admin.unbind()
    actions = [r["action"] for r in await audit_rows(nx, owner.org_id)]
    assert "signed_in" in actions and "sign_in_failed" in actions and "directory_provisioned" in actions


@pytest.mark.parametrize("login", [
    "*", "al*", "*)(uid=*", "alice)(|(uid=*", "*)(|(objectClass=*)", "alice@corp.test)(mail=*",
    "\\2a", "alice\x00", "(uid=alice)",
])
async def test_ldap_injection_in_sign_in_names_fails(login: str, own_client: httpx.AsyncClient,
                                                     client: httpx.AsyncClient, nx: Nexus,
                                                     directory: LdapServer) -> None:
    owner = await new_org(client, nx)
    await add_connection(owner, directory)  # not synced: every sign-in goes to the directory
    for password in ("alice-pw-1", "bob-pw-1", "*"):
        r = await token(own_client, login, password, owner.org_slug)
        assert r.status_code == 400, (login, r.text)
        assert r.json()["error"] in ("invalid_grant", "invalid_request")
    assert (await owner.get(USERS, params={"q": "corp.test"})).json()["items"] == []
    conn = (await owner.get(CONNS)).json()["items"][0]
    full = await ldapmod.load_connection(nx.db, owner.org_id, conn["id"])
    assert full is not None
    assert ldapmod.find_sign_in(full, login) is None  # the escaped filter matches nobody
    refused = await audit_rows(nx, owner.org_id, action="sign_in_failed")
    if "\x00" in login:
        assert refused == []  # refused before any lookup (400 invalid_request)
    else:
        assert len(refused) == 3 and all(r["after"]["login"] == login.strip() for r in refused), refused
    assert ldapmod.find_sign_in(full, "alice") is not None  # while a real name still works


def test_active_directory_disabled_bit() -> None:
    conn = {"disabled_attribute": "userAccountControl"}
    entry = ldapmod.Entry("cn=x", {"userAccountControl": ["514"]})  # NORMAL_ACCOUNT | ACCOUNTDISABLE
    assert ldapmod.is_disabled(conn, entry)
    assert not ldapmod.is_disabled(conn, ldapmod.Entry("cn=x", {"userAccountControl": ["512"]}))
    assert ldapmod.attribute_map(conn)["username"] == "sAMAccountName"
    assert ldapmod.attribute_map(conn)["change_marker"] == "uSNChanged"
    presence = {"disabled_attribute": "pwdAccountLockedTime", "disabled_value": ""}
    assert ldapmod.is_disabled(presence, ldapmod.Entry("cn=x", {"pwdAccountLockedTime": ["000001010000Z"]}))
    assert not ldapmod.is_disabled(presence, ldapmod.Entry("cn=x", {}))
