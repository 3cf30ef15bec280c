"""Directory and provisioning: SCIM 2.0 at /scim/v2 and LDAP / Active Directory sync.

Imported by identity's models, resources and routes (one line each), so that the
aggregation stays small; see docs/apps/identity.md "Directory: LDAP/AD sync and SCIM 2.0".
"""

from __future__ import annotations

from typing import Any


def setup(nx: Any) -> None:
    """Jobs and sign-in by LDAP bind; called from identity's routes.setup."""
    from . import ldap

    ldap.install(nx)
    signin = nx.state.get("identity.signin")
    if signin is not None:
        signin.directory = ldap.LdapSignIn(nx)
