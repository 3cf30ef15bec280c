"""Users and roles over HTTP: who may create, change and deactivate whom, what may be granted,
the last owner, secrets kept out of every response, and the audit trail."""

from __future__ import annotations

import csv
import io
import secrets

import httpx

from nexus.apps.identity import service
from nexus.kernel.http.app import Nexus
from tests.factories import (
    PASSWORD,
    Actor,
    audit_rows,
    client_at,
    make_api_key,
    make_role,
    new_org,
    sign_in,
    token_for,
)

USERS = "/api/v1/identity/users"
ROLES = "/api/v1/identity/roles"
ME = "/api/v1/identity/me"
SECRET_FIELDS = ("password_hash", "failed_logins", "locked_until", "secret_hash")


def email_in(actor: Actor) -> str:
    return f"u-{secrets.token_hex(4)}@{actor.org_slug}.test"


async def create_user(actor: Actor, roles: list[str] | None = None, password: str | None = PASSWORD,
                      **extra: object) -> httpx.Response:
    body: dict = {"email": email_in(actor), "name": "Someone", **extra}
    if password is not None:
        body["password"] = password
    if roles is not None:
        body["roles"] = roles
    return await actor.post(USERS, json=body)


def assert_no_secrets(text: str) -> None:
    for name in SECRET_FIELDS:
        assert name not in text, name
    assert "$argon2" not in text


# -- creating people ------------------------------------------------------------------------


async def test_admin_creates_user_who_can_sign_in(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    admin = await owner.add_user(["admin"])
    r = await create_user(admin, ["member"], timezone="Europe/Paris")
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["status"] == "active" and user["roles"] == ["member"] and user["timezone"] == "Europe/Paris"
    assert user["created_by"] == admin.user_id
    assert_no_secrets(r.text)
    assert (await token_for(client, user["email"], org=owner.org_slug)).status_code == 200
    rows = await audit_rows(nx, owner.org_id, action="created", record_id=user["id"])
    assert rows and rows[0]["actor_id"] == admin.user_id
    assert "password_hash" not in rows[0]["after"]
    async with nx.db.reader() as conn:
        stored = await conn.fetchval("SELECT password_hash FROM identity_user WHERE id = ?", [user["id"]])
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_user_without_password_is_invited(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await create_user(owner, password=None)
    assert r.status_code == 201 and r.json()["status"] == "invited"
    assert r.json()["roles"] == ["member"]
    async with client_at(nx) as c:
        assert (await token_for(c, r.json()["email"], "any password", org=owner.org_slug)).status_code == 400


async def test_set_password_activates_an_invited_user(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    user = (await create_user(owner, password=None)).json()
    r = await owner.post(f"{USERS}/{user['id']}/set-password", json={"password": "a new password"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert_no_secrets(r.text)
    assert (await token_for(client, user["email"], "a new password", org=owner.org_slug)).status_code == 200


async def test_bad_user_input_is_422(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    existing = await owner.add_user(["member"])
    cases = [
        ({"email": "not-an-email", "name": "X"}, "/email"),
        ({"email": email_in(owner), "name": ""}, "/name"),
        ({"email": email_in(owner), "name": "X", "password": "short"}, "/password"),
        ({"email": email_in(owner), "name": "X", "roles": ["no-such-role"]}, "/roles"),
        ({"email": email_in(owner), "name": "X", "roles": ["Bad Role"]}, "/roles/0"),
        ({"email": email_in(owner), "name": "X", "timezone": "Mars/Olympus"}, "/timezone"),
        ({"email": existing.email.upper(), "name": "X"}, "/email"),
        ({"email": email_in(owner), "name": "X", "password_hash": "$argon2id$x"}, "/password_hash"),
        ({"email": email_in(owner), "name": "X", "status": "active"}, "/status"),
    ]
    before = len((await owner.get(USERS, params={"limit": 500})).json()["items"])
    for body, pointer in cases:
        r = await owner.post(USERS, json=body)
        assert r.status_code == 422, (body, r.text)
        assert any(e["pointer"] == pointer for e in r.json()["errors"]), (pointer, r.json())
    assert len((await owner.get(USERS, params={"limit": 500})).json()["items"]) == before


async def test_deleted_users_email_is_not_reused_silently(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    assert (await owner.delete(f"{USERS}/{member.user_id}")).status_code == 204
    r = await owner.post(USERS, json={"email": member.email, "name": "Again", "password": PASSWORD})
    assert r.status_code == 422
    assert "restore" in r.json()["errors"][0]["detail"]


async def test_member_and_viewer_cannot_administer(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    target = await owner.add_user(["viewer"])
    for role in ("member", "viewer"):
        actor = await owner.add_user([role])
        assert (await actor.get(USERS)).status_code == 200
        assert (await actor.get(f"{USERS}/{target.user_id}")).status_code == 200
        forbidden = [
            await create_user(actor, ["viewer"]),
            await actor.post(ROLES, json={"name": "mine", "permissions": []}),
            await actor.patch(f"{USERS}/{target.user_id}", json={"name": "Renamed"}),
            await actor.post(f"{USERS}/{target.user_id}/assign-roles", json={"roles": ["admin"]}),
            await actor.post(f"{USERS}/{actor.user_id}/assign-roles", json={"roles": ["admin"]}),
            await actor.post(f"{USERS}/{target.user_id}/deactivate"),
            await actor.post(f"{USERS}/{target.user_id}/set-password", json={"password": "hijacked!!"}),
            await actor.delete(f"{USERS}/{target.user_id}"),
            await actor.post(f"{USERS}/import", json=[{"email": email_in(owner), "name": "X"}]),
            await actor.get(f"{USERS}/export"),
        ]
        for r in forbidden:
            assert r.status_code == 403, r.text
            assert r.headers["content-type"] == "application/problem+json"
    me = (await target.get(ME)).json()
    assert me["roles"] == ["viewer"] and me["name"] != "Renamed"


# -- roles and escalation ---------------------------------------------------------------------


async def test_builtin_roles_exist_and_are_fixed(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    roles = {r["name"]: r for r in (await owner.get(ROLES)).json()["items"]}
    assert {"owner", "admin", "member", "viewer"} <= set(roles)
    for name, (_desc, perms) in service.BUILTIN_ROLES.items():
        assert roles[name]["builtin"] is True and roles[name]["permissions"] == perms
        rid = roles[name]["id"]
        assert (await owner.patch(f"{ROLES}/{rid}", json={"permissions": ["*"]})).status_code == 409
        assert (await owner.delete(f"{ROLES}/{rid}")).status_code == 409
    r = await owner.post(ROLES, json={"name": "admin", "permissions": []})
    assert r.status_code == 422
    r = await owner.post(ROLES, json={"name": "custom", "permissions": [], "builtin": True})
    assert r.status_code == 422


async def test_custom_role_grants_its_permissions(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    role = await make_role(owner, ["tasks.tasks.read"])
    user = await owner.add_user([role["name"]])
    me = (await user.get(ME)).json()
    assert me["roles"] == [role["name"]] and me["permissions"] == ["tasks.tasks.read"]
    assert (await user.get("/api/v1/tasks/tasks")).status_code == 200
    assert (await user.post("/api/v1/tasks/tasks", json={"title": "x"})).status_code == 403
    assert (await user.get(USERS)).status_code == 403
    # A change to the role applies at once, to a token already in use.
    r = await owner.patch(f"{ROLES}/{role['id']}", json={"permissions": ["tasks.tasks.read", "tasks.tasks.create"]})
    assert r.status_code == 200, r.text
    assert (await user.post("/api/v1/tasks/tasks", json={"title": "x"})).status_code == 201
    # Deleting the role takes its permissions away; restoring gives them back.
    assert (await owner.delete(f"{ROLES}/{role['id']}")).status_code == 204
    assert (await user.get("/api/v1/tasks/tasks")).status_code == 403
    assert (await owner.post(f"{ROLES}/{role['id']}/restore")).status_code == 200
    assert (await user.get("/api/v1/tasks/tasks")).status_code == 200
    actions = [r["action"] for r in await audit_rows(nx, owner.org_id, resource="roles", record_id=role["id"])]
    assert actions == ["created", "updated", "deleted", "restored"]


async def test_app_wide_pattern_role(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    role = await make_role(owner, ["tasks.*.*"])
    user = await owner.add_user([role["name"]])
    assert (await user.post("/api/v1/tasks/tasks", json={"title": "x"})).status_code == 201
    assert (await user.get(USERS)).status_code == 403


async def test_any_app_pattern_roles(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    for perms in (["*.tasks.*"], ["*.*.*"]):
        role = await make_role(owner, perms)
        user = await owner.add_user([role["name"]])
        assert (await user.post("/api/v1/tasks/tasks", json={"title": "x"})).status_code == 201, perms
        assert (await user.get(USERS)).status_code == 403  # identity is privileged: no wildcard app reaches it


async def test_deleted_role_name_is_refused_not_a_crash(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    role = await make_role(owner, ["tasks.tasks.read"], name="temp")
    assert (await owner.delete(f"{ROLES}/{role['id']}")).status_code == 204
    r = await owner.post(ROLES, json={"name": "temp", "permissions": []})
    assert r.status_code == 422, r.text
    other = await make_role(owner, [], name="other")
    r = await owner.patch(f"{ROLES}/{other['id']}", json={"name": "temp"})
    assert r.status_code == 422, r.text
    assert (await owner.post(f"{ROLES}/{role['id']}/restore")).status_code == 200


async def test_nobody_grants_a_permission_they_do_not_hold(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    role_admin = await make_role(owner, ["identity.roles.*", "tasks.tasks.read", "tasks.projects.*"])
    manager = await owner.add_user([role_admin["name"]])
    for perms in (["tasks.tasks.delete"], ["tasks.*.read"], ["*.*.read"], ["*"], ["identity.users.create"],
                  ["tasks.tasks.read", "tasks.tasks.update"], ["tasks.*.*"]):
        r = await manager.post(ROLES, json={"name": f"r-{secrets.token_hex(3)}", "permissions": perms})
        assert r.status_code == 403, (perms, r.text)
    for perms in (["tasks.tasks.read"], ["tasks.projects.delete", "tasks.projects.*"], ["identity.roles.read"], []):
        r = await manager.post(ROLES, json={"name": f"r-{secrets.token_hex(3)}", "permissions": perms})
        assert r.status_code == 201, (perms, r.text)
    mine = r.json()
    r = await manager.patch(f"{ROLES}/{mine['id']}", json={"permissions": ["tasks.tasks.delete"]})
    assert r.status_code == 403
    # The role they hold themselves cannot be widened by them either.
    r = await manager.patch(f"{ROLES}/{role_admin['id']}", json={"permissions": ["*"]})
    assert r.status_code == 403
    assert (await manager.get(ME)).json()["permissions"] == sorted(role_admin["permissions"])


async def test_users_are_created_only_with_roles_one_holds(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    helper = await make_role(owner, ["identity.users.read"])
    user_admin = await make_role(owner, ["identity.users.*", "identity.roles.read"])
    hr = await owner.add_user([user_admin["name"]])
    before = len((await owner.get(USERS, params={"limit": 500})).json()["items"])
    for roles in (["admin"], ["owner"], ["member"], ["viewer"], [helper["name"], "admin"]):
        r = await create_user(hr, roles)
        assert r.status_code == 403, (roles, r.text)
    assert len((await owner.get(USERS, params={"limit": 500})).json()["items"]) == before
    # What they hold, they may grant; an admin is no owner.
    assert (await create_user(hr, [helper["name"]])).status_code == 201
    assert (await create_user(hr, [helper["name"], user_admin["name"]])).status_code == 201
    admin = await owner.add_user(["admin"])
    assert (await create_user(admin, ["owner"])).status_code == 403
    assert (await create_user(admin, ["admin", "member"])).status_code == 201
    assert (await create_user(owner, ["owner"])).status_code == 201


async def test_roles_are_assigned_only_by_those_who_hold_them(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    helper = await make_role(owner, ["identity.users.read"])
    user_admin = await make_role(owner, ["identity.users.*", "identity.roles.read"])
    hr = await owner.add_user([user_admin["name"]])
    target = await owner.add_user([helper["name"]])
    uid = target.user_id
    for roles in (["admin"], ["owner"], ["member"], ["viewer"], [helper["name"], "admin"]):
        r = await hr.post(f"{USERS}/{uid}/assign-roles", json={"roles": roles})
        assert r.status_code == 403, (roles, r.text)
        r = await hr.post(f"{USERS}/{hr.user_id}/assign-roles", json={"roles": [user_admin["name"], *roles]})
        assert r.status_code == 403, (roles, r.text)
    assert (await target.get(ME)).json()["roles"] == [helper["name"]]
    # What they hold, they may grant.
    r = await hr.post(f"{USERS}/{uid}/assign-roles", json={"roles": [helper["name"], user_admin["name"]]})
    assert r.status_code == 200, r.text


async def test_nobody_disables_a_more_powerful_account(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    second_owner = await owner.add_user(["owner"])
    user_admin = await make_role(owner, ["identity.users.*", "identity.roles.read"])
    hr = await owner.add_user([user_admin["name"]])
    admin = await owner.add_user(["admin"])
    for target in (admin, owner):
        url = f"{USERS}/{target.user_id}"
        assert (await hr.post(f"{url}/deactivate")).status_code == 403
        assert (await hr.delete(url)).status_code == 403
    # An admin is not an owner: owners are changed by owners only (even with another owner left).
    for target in (owner, second_owner):
        url = f"{USERS}/{target.user_id}"
        assert (await admin.post(f"{url}/deactivate")).status_code == 403
        assert (await admin.delete(url)).status_code == 403
    for a in (owner, second_owner, admin):
        assert (await a.get(ME)).json()["status"] == "active"
    # Admins still administer everyone else.
    member = await owner.add_user(["member"])
    assert (await admin.post(f"{USERS}/{member.user_id}/deactivate")).status_code == 200


async def test_nobody_takes_over_a_more_powerful_account(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    user_admin = await make_role(owner, ["identity.users.*", "identity.roles.read"])
    hr = await owner.add_user([user_admin["name"]])
    admin = await owner.add_user(["admin"])
    for target in (admin, owner):
        url = f"{USERS}/{target.user_id}"
        assert (await hr.post(f"{url}/set-password", json={"password": "taken over!"})).status_code == 403
        assert (await hr.post(f"{url}/assign-roles", json={"roles": []})).status_code == 403
    # An admin is not an owner: owners are changed by owners only.
    url = f"{USERS}/{owner.user_id}"
    assert (await admin.post(f"{url}/set-password", json={"password": "taken over!"})).status_code == 403
    assert (await admin.post(f"{url}/assign-roles", json={"roles": ["member"]})).status_code == 403
    assert (await admin.post(f"{USERS}/{admin.user_id}/assign-roles", json={"roles": ["owner"]})).status_code == 403
    me = (await owner.get(ME)).json()
    assert me["roles"] == ["owner"] and me["status"] == "active"
    assert (await token_for(client, owner.email, org=owner.org_slug)).status_code == 200
    # Admins still administer everyone else.
    member = await owner.add_user(["member"])
    r = await admin.post(f"{USERS}/{member.user_id}/assign-roles", json={"roles": ["admin"]})
    assert r.status_code == 200 and r.json()["roles"] == ["admin"]


async def test_assign_roles_applies_at_once_and_is_audited(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    assert (await member.post(ROLES, json={"name": "x", "permissions": []})).status_code == 403
    r = await owner.post(f"{USERS}/{member.user_id}/assign-roles", json={"roles": ["admin", "admin", "member"]})
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["admin", "member"]
    assert r.headers["etag"] == f'"{member.user_id}.{r.json()["version"]}"'
    assert (await owner.get(f"{USERS}/{member.user_id}")).json()["roles"] == ["admin", "member"]
    assert (await member.get(ME)).json()["roles"] == ["admin", "member"]
    assert (await member.post(ROLES, json={"name": "x", "permissions": []})).status_code == 201
    rows = await audit_rows(nx, owner.org_id, action="roles_assigned", record_id=member.user_id)
    assert len(rows) == 1
    assert rows[0]["before"]["roles"] == ["member"] and rows[0]["after"]["roles"] == ["admin", "member"]
    assert rows[0]["actor_id"] == owner.user_id
    assert_no_secrets(str(rows[0]))
    r = await owner.post(f"{USERS}/{member.user_id}/assign-roles", json={"roles": ["nope"]})
    assert r.status_code == 422
    r = await owner.post(f"{USERS}/{member.user_id}/assign-roles", json={"roles": []})
    assert r.status_code == 200 and r.json()["roles"] == []
    assert (await member.get(USERS)).status_code == 403
    assert (await member.get(ME)).json()["permissions"] == []


# -- the last owner -------------------------------------------------------------------------


async def test_org_keeps_an_active_owner_on_deactivate_and_delete(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    url = f"{USERS}/{owner.user_id}"
    assert (await owner.post(f"{url}/deactivate")).status_code == 409
    assert (await owner.delete(url)).status_code == 409
    second = await owner.add_user(["owner"])
    third = await owner.add_user(["owner"])
    # Owners deactivate and delete other owners, as long as an active one remains.
    assert (await owner.post(f"{USERS}/{second.user_id}/deactivate")).status_code == 200
    assert (await owner.delete(f"{USERS}/{third.user_id}")).status_code == 204
    assert (await owner.get(ME)).json()["roles"] == ["owner"]


async def test_org_keeps_an_active_owner(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    url = f"{USERS}/{owner.user_id}"
    assert (await owner.post(f"{url}/assign-roles", json={"roles": ["admin"]})).status_code == 409
    second = await owner.add_user(["owner"])
    # A deactivated second owner does not count.
    assert (await owner.post(f"{USERS}/{second.user_id}/deactivate")).status_code == 200
    assert (await owner.post(f"{url}/assign-roles", json={"roles": ["admin"]})).status_code == 409
    assert (await owner.post(f"{USERS}/{second.user_id}/reactivate")).status_code == 200
    r = await owner.post(f"{url}/assign-roles", json={"roles": ["admin"]})
    assert r.status_code == 200, r.text
    me = (await owner.get(ME)).json()
    assert me["roles"] == ["admin"]
    # The last owner, seen from the admin who was one: cannot be removed by them.
    second = await sign_in(client, nx, second.email, owner.org_slug)  # deactivation ended their session
    r = await second.post(f"{USERS}/{second.user_id}/assign-roles", json={"roles": ["member"]})
    assert r.status_code == 409
    assert (await owner.post(f"{USERS}/{second.user_id}/deactivate")).status_code == 403


async def test_owner_demotes_another_owner(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    second = await owner.add_user(["owner"])
    r = await owner.post(f"{USERS}/{second.user_id}/assign-roles", json={"roles": ["member"]})
    assert r.status_code == 200 and r.json()["roles"] == ["member"]
    assert (await second.get(ME)).json()["roles"] == ["member"]


# -- deactivation, passwords, deletion -----------------------------------------------------


async def test_deactivate_ends_every_way_in(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    key = await make_api_key(member, ["identity.users.read"])
    keyed = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.get(USERS, headers=keyed)).status_code == 200
    r = await owner.post(f"{USERS}/{member.user_id}/deactivate")
    assert r.status_code == 200 and r.json()["status"] == "deactivated"
    assert_no_secrets(r.text)
    assert (await member.get(ME)).status_code == 401
    assert (await client.get(USERS, headers=keyed)).status_code == 401
    assert (await client.post("/api/v1/auth/token", data={"grant_type": "refresh_token",
                                                          "refresh_token": member.refresh_token})).status_code == 400
    assert (await token_for(client, member.email, org=owner.org_slug)).status_code == 400
    # Deactivating twice changes nothing; reactivating brings sign-in (not old sessions) back.
    again = await owner.post(f"{USERS}/{member.user_id}/deactivate")
    assert again.status_code == 200 and again.json()["version"] == r.json()["version"]
    r = await owner.post(f"{USERS}/{member.user_id}/reactivate")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert (await owner.post(f"{USERS}/{member.user_id}/reactivate")).status_code == 409
    assert (await member.get(ME)).status_code == 401
    assert (await token_for(client, member.email, org=owner.org_slug)).status_code == 200
    assert (await client.get(USERS, headers=keyed)).status_code == 200
    actions = [r["action"] for r in await audit_rows(nx, owner.org_id, resource="users", record_id=member.user_id)]
    assert "deactivated" in actions and "reactivated" in actions


async def test_nobody_deactivates_or_deletes_themselves(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    admin = await owner.add_user(["admin"])
    assert (await admin.post(f"{USERS}/{admin.user_id}/deactivate")).status_code == 409
    assert (await admin.delete(f"{USERS}/{admin.user_id}")).status_code == 409
    assert (await admin.get(ME)).status_code == 200


async def test_set_password_replaces_it_and_ends_other_sessions(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    async with client_at(nx) as c:
        for _ in range(service.MAX_FAILED_BEFORE_LOCK):
            await token_for(c, member.email, "wrong password", org=owner.org_slug)
        assert (await token_for(c, member.email, org=owner.org_slug)).status_code == 429
    r = await owner.post(f"{USERS}/{member.user_id}/set-password", json={"password": "brand new secret"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert_no_secrets(r.text)
    assert (await member.get(ME)).status_code == 401
    async with client_at(nx) as c:
        assert (await token_for(c, member.email, org=owner.org_slug)).status_code == 400
        assert (await token_for(c, member.email, "brand new secret", org=owner.org_slug)).status_code == 200
    assert (await owner.post(f"{USERS}/{member.user_id}/set-password", json={"password": "short"})).status_code == 422
    assert (await owner.post(f"{USERS}/{member.user_id}/set-password", json={})).status_code == 422
    rows = await audit_rows(nx, owner.org_id, action="password_set", record_id=member.user_id)
    assert len(rows) == 1
    assert_no_secrets(str(rows[0]))
    assert "brand new secret" not in str(rows[0])


async def test_owner_sets_own_password_and_keeps_this_session(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(f"{USERS}/{owner.user_id}/set-password", json={"password": "my own new one"})
    assert r.status_code == 200, r.text
    assert (await owner.get(ME)).status_code == 200


async def test_deleted_user_cannot_sign_in(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    assert (await owner.delete(f"{USERS}/{member.user_id}")).status_code == 204
    assert (await member.get(ME)).status_code == 401
    assert (await token_for(client, member.email, org=owner.org_slug)).status_code == 400
    assert (await owner.post(f"{USERS}/{member.user_id}/restore")).status_code == 200
    assert (await token_for(client, member.email, org=owner.org_slug)).status_code == 200


# -- tenancy ----------------------------------------------------------------------------------


async def test_another_orgs_users_are_404(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    stranger = await new_org(client, nx)
    url = f"{USERS}/{member.user_id}"
    for r in (
        await stranger.get(url),
        await stranger.patch(url, json={"name": "Mine now"}),
        await stranger.delete(url),
        await stranger.post(f"{url}/deactivate"),
        await stranger.post(f"{url}/reactivate"),
        await stranger.post(f"{url}/restore"),
    ):
        assert r.status_code == 404, r.text
    assert member.user_id not in {u["id"] for u in (await stranger.get(USERS, params={"limit": 500})).json()["items"]}
    roles = (await owner.get(ROLES)).json()["items"]
    for role in roles:
        assert (await stranger.get(f"{ROLES}/{role['id']}")).status_code == 404
    assert (await member.get(ME)).status_code == 200
    assert (await token_for(client, member.email, org=owner.org_slug)).status_code == 200


async def test_another_orgs_users_are_404_for_actions_with_a_body(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    stranger = await new_org(client, nx)
    url = f"{USERS}/{member.user_id}"
    assert (await stranger.post(f"{url}/assign-roles", json={"roles": ["viewer"]})).status_code == 404
    assert (await stranger.post(f"{url}/set-password", json={"password": "taken over!"})).status_code == 404
    assert (await token_for(client, member.email, org=owner.org_slug)).status_code == 200
    assert (await member.get(ME)).json()["roles"] == ["member"]


async def test_roles_of_another_org_cannot_be_assigned(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    stranger = await new_org(client, nx)
    theirs = await make_role(stranger, ["tasks.tasks.read"])
    member = await owner.add_user(["member"])
    r = await owner.post(f"{USERS}/{member.user_id}/assign-roles", json={"roles": [theirs["name"]]})
    assert r.status_code == 422


# -- secrets never leave ----------------------------------------------------------------------


async def test_secrets_are_in_no_user_response(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    member = await owner.add_user(["member"])
    async with client_at(nx) as c:
        await token_for(c, member.email, "wrong password", org=owner.org_slug)
    responses = [
        await owner.get(USERS),
        await owner.get(USERS, params={"q": member.email}),
        await owner.get(f"{USERS}/{member.user_id}"),
        await owner.get(f"{USERS}/export", params={"format": "csv"}),
        await owner.get(f"{USERS}/export", params={"format": "json"}),
        await owner.patch(f"{USERS}/{member.user_id}", json={"name": "Renamed"}),
        await owner.get(ME),
        await member.get(ME),
        await owner.get("/api/v1/meta"),
    ]
    for r in responses:
        assert r.status_code == 200, r.text
        assert_no_secrets(r.text)
    header = next(csv.reader(io.StringIO(responses[3].text)))
    assert "email" in header and not set(header) & set(SECRET_FIELDS)
    for params in ({"failed_logins": "1"}, {"password_hash": "x"}, {"sort": "password_hash"},
                   {"locked_until[gte]": "2020-01-01T00:00:00Z"}):
        assert (await owner.get(USERS, params=params)).status_code == 400, params
    meta = responses[-1].json()
    fields = {f["name"] for a in meta["apps"] for res in a["resources"] if res["path"] == USERS for f in res["fields"]}
    assert "email" in fields and not fields & set(SECRET_FIELDS)
    for r in (await owner.post(f"{USERS}/{member.user_id}/deactivate"),
              await owner.post(f"{USERS}/{member.user_id}/reactivate"),
              await owner.delete(f"{USERS}/{member.user_id}"),
              await owner.post(f"{USERS}/{member.user_id}/restore"),
              await owner.get(USERS, params={"deleted": "include"})):
        assert r.status_code in (200, 204), r.text
        assert_no_secrets(r.text)


async def test_import_creates_users_with_roles_checked(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    admin = await owner.add_user(["admin"])
    rows = [{"email": email_in(owner), "name": "A", "roles": ["viewer"], "password": PASSWORD},
            {"email": email_in(owner), "name": "B"}]
    r = await admin.post(f"{USERS}/import", json=rows)
    assert r.status_code == 200 and r.json()["created"] == 2, r.text
    r = await admin.post(f"{USERS}/import", json=[{"email": email_in(owner), "name": "C", "roles": ["owner"]}])
    assert r.status_code == 422 and r.json()["created"] == 0
    csv_body = f"email,name,roles,password_hash\n{email_in(owner)},D,viewer,$argon2id$forged\n"
    r = await admin.post(f"{USERS}/import", content=csv_body.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 400
    assert (await token_for(client, rows[0]["email"], org=owner.org_slug)).status_code == 200


async def test_two_owners_removing_each_other_at_once_leave_one(client: httpx.AsyncClient, nx: Nexus) -> None:
    import asyncio

    owner = await new_org(client, nx)
    second = await owner.add_user(["owner"])
    results = await asyncio.gather(
        owner.post(f"{USERS}/{second.user_id}/deactivate"),
        second.post(f"{USERS}/{owner.user_id}/deactivate"),
    )
    assert sorted(r.status_code for r in results) in ([200, 401], [200, 409]), [r.text for r in results]
    async with nx.db.reader() as conn:
        active = await conn.fetchval(
            "SELECT count(*) FROM identity_user WHERE org_id = ? AND status = 'active'", [owner.org_id])
    assert active == 1
