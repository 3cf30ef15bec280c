"""Declared resources: an org's IdP connections and its SAML service-provider registrations.
Admins manage them through the generic API (identity.identity-providers.*, identity.saml-sps.*)."""

from __future__ import annotations

from typing import Any

from nexus.kernel.errors import validation
from nexus.kernel.records import UnitOfWork
from nexus.kernel.resources import RecordService, Resource

from .. import service as identity
from . import models, schemas
from .keys import normalise_certificate
from .oidc import check_issuer_url
from .saml import parse_idp_metadata, parse_sp_metadata


class IdentityProviderService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        if await uow.find(self.spec, {"slug": values["slug"]}, include_deleted=True):
            raise validation([{"pointer": "/slug", "detail": "an identity provider with this slug exists"}])
        await self._check(uow, values, values)

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if "protocol" in changes and changes["protocol"] != before["protocol"]:
            raise validation([{"pointer": "/protocol", "detail": "cannot change; create another connection"}])
        if "slug" in changes and changes["slug"] != before["slug"] and \
                await uow.find(self.spec, {"slug": changes["slug"]}, include_deleted=True):
            raise validation([{"pointer": "/slug", "detail": "an identity provider with this slug exists"}])
        await self._check(uow, {**before, **changes}, changes)

    async def _check(self, uow: UnitOfWork, merged: dict[str, Any], out: dict[str, Any]) -> None:
        """Validate the connection as a whole; write derived values (sealed secret, fields read
        from metadata) into `out`, the values that will be stored."""
        errors: list[dict[str, str]] = []
        secret = out.pop("client_secret", None)
        if merged["protocol"] == "oidc":
            if not merged.get("issuer"):
                errors.append({"pointer": "/issuer", "detail": "required for OpenID Connect"})
            else:
                try:
                    check_issuer_url(merged["issuer"])
                except ValueError as exc:
                    errors.append({"pointer": "/issuer", "detail": str(exc)})
            if not merged.get("client_id"):
                errors.append({"pointer": "/client_id", "detail": "required for OpenID Connect"})
            if secret:
                # Sealed with the installation's key (NEXUS_SECRET_KEY): opened only to call the IdP.
                out["client_secret_sealed"] = uow.db.secret_box.seal(secret)
        else:
            if secret:
                errors.append({"pointer": "/client_secret", "detail": "only for OpenID Connect"})
            if out.get("saml_metadata_xml"):
                try:
                    md = parse_idp_metadata(out["saml_metadata_xml"])
                except ValueError as exc:
                    errors.append({"pointer": "/saml_metadata_xml", "detail": str(exc)})
                else:
                    out.update(saml_entity_id=md["entity_id"], saml_sso_url=md["sso_url"],
                               saml_certificate=md["certificate"])
                    merged.update(out)
            for f in ("saml_entity_id", "saml_sso_url", "saml_certificate"):
                if not merged.get(f):
                    errors.append({"pointer": f"/{f}", "detail": "required for SAML (or paste the IdP metadata)"})
            if merged.get("saml_entity_id"):
                # Responses are matched to their connection by issuer: one connection per IdP.
                for other in await uow.find(self.spec, {"saml_entity_id": merged["saml_entity_id"]}):
                    if other["id"] != merged.get("id"):
                        errors.append({"pointer": "/saml_entity_id",
                                       "detail": f"the connection {other['slug']!r} already trusts this IdP"})
            if out.get("saml_certificate") and not out.get("saml_metadata_xml"):
                try:
                    out["saml_certificate"] = normalise_certificate(out["saml_certificate"])
                except ValueError as exc:
                    errors.append({"pointer": "/saml_certificate", "detail": str(exc)})
        roles = {r["name"] for r in await uow.find(identity.ROLE, {})}
        for i, rule in enumerate(merged.get("role_map") or []):
            role = rule["role"] if isinstance(rule, dict) else rule.role
            if role not in roles or role == "owner":
                errors.append({"pointer": f"/role_map/{i}/role",
                               "detail": "no such role" if role not in roles else "owner cannot be granted by an IdP"})
        for i, role in enumerate(merged.get("default_roles") or []):
            if role not in roles or role == "owner":
                errors.append({"pointer": f"/default_roles/{i}",
                               "detail": "no such role" if role not in roles else "owner cannot be granted by an IdP"})
        if errors:
            raise validation(errors)
        if "role_map" in out:
            out["role_map"] = [r if isinstance(r, dict) else r.model_dump() for r in out["role_map"]]
        # A connection may grant only what the admin configuring it holds.
        if uow.ctx.principal.kind != "system":
            perms = [p for r in await uow.find(identity.ROLE, {}) if r["name"] in _granted(merged)
                     for p in r["permissions"]]
            identity._no_escalation(uow.ctx.principal, perms, "a role this connection grants")


def _granted(values: dict[str, Any]) -> set[str]:
    out = set(values.get("default_roles") or [])
    for rule in values.get("role_map") or []:
        out.add(rule["role"] if isinstance(rule, dict) else rule.role)
    return out


class ServiceProviderService(RecordService):
    async def before_create(self, uow: UnitOfWork, values: dict[str, Any]) -> None:
        await self._read_metadata(uow, values, None)

    async def before_update(self, uow: UnitOfWork, before: dict[str, Any], changes: dict[str, Any]) -> None:
        if "metadata_xml" in changes:
            await self._read_metadata(uow, changes, before["id"])

    async def _read_metadata(self, uow: UnitOfWork, values: dict[str, Any], self_id: str | None) -> None:
        try:
            md = parse_sp_metadata(values["metadata_xml"])
        except ValueError as exc:
            raise validation([{"pointer": "/metadata_xml", "detail": str(exc)}]) from None
        for other in await uow.find(self.spec, {"entity_id": md["entity_id"]}, include_deleted=True):
            if other["id"] != self_id:
                raise validation([{"pointer": "/metadata_xml", "detail": "this service provider is registered"}])
        values["entity_id"] = md["entity_id"]
        values["acs_url"] = md["acs_url"]


identity_providers = Resource(
    app="identity", name="identity-providers", model=models.IdentityProvider,
    create=schemas.IdentityProviderCreate, service=IdentityProviderService, entity="identity_provider",
    hidden=("client_secret_sealed",), importable=False,
    filters=("protocol", "enabled", "slug"), sorts=("name", "created_at"), search=("name", "slug", "issuer"),
    default_sort="name", title_field="name",
    description="External identity providers (SAML 2.0 or OpenID Connect) people sign in with.",
)

saml_sps = Resource(
    app="identity", name="saml-sps", model=models.ServiceProvider, create=schemas.ServiceProviderCreate,
    service=ServiceProviderService, entity="saml_sp", importable=False,
    filters=("enabled", "entity_id"), sorts=("name", "created_at"), search=("name", "entity_id"),
    default_sort="name", title_field="name",
    description="SAML service providers that sign their users in with NEXUS as the identity provider.",
)

RESOURCES = [identity_providers, saml_sps]
