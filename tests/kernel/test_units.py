"""Pure kernel rules: settings, ids, permissions."""

from __future__ import annotations

import pytest

from nexus.kernel.config import ConfigError, Settings, redact_url
from nexus.kernel.context import Principal
from nexus.kernel.ids import is_id, new_id
from nexus.kernel.permissions import (
    PRIVILEGED_APPS,
    PRIVILEGED_PERMISSIONS,
    has_permission,
    valid_permission_name,
)


def test_ids_are_monotonic_and_valid() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(is_id(i) for i in ids[:10])
    assert not is_id("../etc/passwd") and not is_id("01ARZ3NDEKTSV4RRFFQ69G5FA")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEXUS_DATABASE_URL": "mysql://root@localhost/x"}, "sqlite:///… or postgresql://"),
        ({"NEXUS_DATABASE_URL": "postgresql://user:s3cret@/x"}, "no host"),
        ({"NEXUS_DATABASE_URL": "postgresql://user:s3cret@db/"}, "names no database"),
        ({"NEXUS_BLOB_URL": "ftp://x"}, "NEXUS_BLOB_URL"),
        ({"NEXUS_REDIS_URL": "http://x"}, "NEXUS_REDIS_URL"),
        ({"NEXUS_NATS_URL": "http://x"}, "NEXUS_NATS_URL"),
        ({"NEXUS_ADMIN_EMAIL": "nobody"}, "NEXUS_ADMIN_EMAIL"),
        ({"NEXUS_ADMIN_PASSWORD": "short"}, "at least 8"),
        ({"NEXUS_SECRET_KEY": "short"}, "at least 32"),
        ({"NEXUS_MAX_BODY_BYTES": "lots"}, "must be an integer"),
        ({"NEXUS_MAX_BODY_BYTES": "1"}, "between"),
        ({"NEXUS_LOG_LEVEL": "LOUD"}, "NEXUS_LOG_LEVEL"),
    ],
)
def test_bad_settings_are_named(tmp_path, env: dict[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"NEXUS_DATA_DIR": str(tmp_path), **env})
    assert message in str(exc.value)
    assert "s3cret" not in str(exc.value)


def test_defaults_are_embedded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = Settings.from_env({"NEXUS_DATA_DIR": str(tmp_path)})
    assert s.dialect == "sqlite" and s.sqlite_path == tmp_path / "nexus.db"
    assert s.blob_url == f"file://{tmp_path / 'blobs'}"
    assert s.redis_url is None and s.nats_url is None
    key = (tmp_path / "secret.key").read_text()
    assert len(key) >= 32 and Settings.from_env({"NEXUS_DATA_DIR": str(tmp_path)}).secret_key == key
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_redact_url() -> None:
    assert redact_url("postgresql://bob:pw@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert redact_url("postgresql://db/x") == "postgresql://db/x"


def test_permission_wildcards() -> None:
    p = Principal("u", "o", "user", frozenset({"*.*.read", "tasks.tasks.*", "crm.*.create"}))
    assert has_permission(p, "tasks.tasks.read")
    assert has_permission(p, "tasks.tasks.delete")
    assert has_permission(p, "crm.deals.create")
    assert not has_permission(p, "crm.deals.delete")
    assert has_permission(p, "notes.notes.read")
    PRIVILEGED_APPS.add("identity")
    assert not has_permission(p, "identity.users.read"), "wildcard apps do not reach privileged apps"
    assert has_permission(Principal("u", "o", "user", frozenset({"*"})), "identity.users.delete")
    assert has_permission(Principal("u", "o", "user", frozenset({"identity.users.read"})), "identity.users.read")
    assert valid_permission_name("tasks.*.read") and valid_permission_name("*")


def test_privileged_permissions_take_a_grant_naming_the_app() -> None:
    """A resource's configuration verbs (Resource(privileged=…)): a member's wildcard grants
    read it and reach its neighbours, not its writes; `*` or naming the app does."""
    from pydantic import BaseModel

    from nexus.apps.notes.models import Note as Widget  # any record model: the table is not used
    from nexus.kernel.resources import CONFIGURATION, Resource

    class WidgetIn(BaseModel):
        title: str

    r = Resource(app="unitpriv", name="widgets", model=Widget, create=WidgetIn, privileged=CONFIGURATION)
    PRIVILEGED_PERMISSIONS.update(r.permission(v) for v in r.privileged)
    member = Principal("u", "o", "user", frozenset({"*.*.read", "*.*.create", "*.*.update", "*.widgets.*", "*.*.*"}))
    assert has_permission(member, "unitpriv.widgets.read")
    assert has_permission(member, "unitpriv.gadgets.update"), "only the declared resource is privileged"
    for verb in CONFIGURATION:
        assert not has_permission(member, f"unitpriv.widgets.{verb}")
    assert has_permission(Principal("u", "o", "user", frozenset({"*"})), "unitpriv.widgets.update")
    for grant in ("unitpriv.*.*", "unitpriv.*.update", "unitpriv.widgets.*", "unitpriv.widgets.update"):
        assert has_permission(Principal("u", "o", "user", frozenset({grant})), "unitpriv.widgets.update"), grant
    try:
        Resource(app="unitpriv", name="widgets2", model=Widget, create=WidgetIn, privileged=("approve",))
    except ValueError as exc:
        assert "approve" in str(exc)
    else:
        raise AssertionError("an unknown privileged verb is refused")
    assert not valid_permission_name("tasks.read") and not valid_permission_name("a.b.c.d")
    assert not valid_permission_name("tasks.tasks.re ad")
