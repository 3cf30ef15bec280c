"""The contract battery for the federation resources (IdP connections, SAML SP registrations):
CRUD, tenancy, concurrency, idempotency, bad input, export. They are administrators' settings:
identity is a privileged app, so members and viewers neither read nor change them."""

from __future__ import annotations

from typing import Any

import httpx

from nexus.kernel.http.app import Nexus
from tests.contract import ResourceContract
from tests.factories import Actor, new_org


def sp_metadata(entity_id: str) -> str:
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'entityID="{entity_id}"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
        f'Location="{entity_id.rsplit("/", 1)[0]}/acs" index="0"/></md:SPSSODescriptor></md:EntityDescriptor>'
    )


class _AdminsOnly(ResourceContract):
    async def test_viewer_reads_but_cannot_write(self, client: httpx.AsyncClient, nx: Nexus) -> None:
        owner = await new_org(client, nx)
        rec = await self.create(owner)
        for role in ("viewer", "member"):
            someone = await owner.add_user([role])
            assert (await someone.get(f"{self.path}/{rec['id']}")).status_code == 403
            assert (await someone.get(self.path)).status_code == 403
            assert (await someone.post(self.path, json=await self.payload(owner, 9))).status_code == 403
            assert (await someone.patch(f"{self.path}/{rec['id']}", json=self.update)).status_code == 403
            assert (await someone.delete(f"{self.path}/{rec['id']}")).status_code == 403


class TestIdentityProvidersContract(_AdminsOnly):
    path = "/api/v1/identity/identity-providers"
    valid = {"slug": "acme", "name": "Acme SSO", "protocol": "oidc", "issuer": "https://idp.example.com",
             "client_id": "nexus"}
    update = {"name": "Acme single sign-on", "enabled": False}
    unique_field = "slug"
    importable = False
    invalid = [
        ({"slug": "Bad Slug", "name": "x", "protocol": "oidc"}, "/slug"),
        ({"slug": "x1", "name": "x", "protocol": "ldap"}, "/protocol"),
        ({"slug": "x2", "name": "x", "protocol": "oidc", "issuer": "javascript:alert(1)"}, "/issuer"),
        ({"slug": "x3", "name": "x", "protocol": "oidc", "issuer": "https://i.test", "client_id": "c",
          "role_map": [{"claim": "groups", "value": "a", "role": "no-such-role"}]}, "/role_map/0/role"),
        ({"slug": "x4", "name": "x", "protocol": "saml"}, "/saml_entity_id"),
        ({"slug": "x5", "name": "x", "protocol": "oidc", "issuer": "https://i.test", "client_id": "c",
          "attribute_map": {"password": "x"}}, "/attribute_map/password/[key]"),
    ]


class TestSamlServiceProvidersContract(_AdminsOnly):
    path = "/api/v1/identity/saml-sps"
    valid = {"name": "Team wiki", "metadata_xml": sp_metadata("https://wiki.example.test/saml/metadata")}
    update = {"name": "Wiki", "enabled": False}
    importable = False
    invalid = [
        ({"name": "x", "metadata_xml": "<x>not metadata at all, really not</x>"}, "/metadata_xml"),
        ({"name": "", "metadata_xml": sp_metadata("https://a.test/md")}, "/name"),
    ]

    async def payload(self, actor: Actor, n: int = 0) -> dict[str, Any]:
        return {"name": f"App {n}", "metadata_xml": sp_metadata(f"https://app-{n}.{actor.org_slug}.test/saml/metadata")}
