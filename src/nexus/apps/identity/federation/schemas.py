"""What the federation API takes: IdP connections and SAML service-provider registrations."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from nexus.kernel.schema_base import Schema

from ..schemas import RoleName

Slug = Annotated[str, StringConstraints(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Text200 = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Url = Annotated[str, StringConstraints(min_length=8, max_length=1000, pattern=r"^https?://[^\s]+$")]
Xml = Annotated[str, StringConstraints(min_length=20, max_length=200_000)]
ClaimName = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class RoleRule(Schema):
    claim: ClaimName = Field(description="Claim (OIDC) or attribute (SAML) to look at, e.g. groups")
    value: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        description="Value that grants the role, e.g. nexus-admins")
    role: RoleName


class IdentityProviderCreate(Schema):
    slug: Slug = Field(description="Short name used in sign-in URLs")
    name: Text200 = Field(description="Shown on the sign-in button: Sign in with <name>")
    protocol: Literal["saml", "oidc"]
    enabled: bool = True
    issuer: Url | None = Field(default=None, description="OIDC issuer (its /.well-known/openid-configuration is read)")
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    client_secret: Annotated[str, StringConstraints(min_length=1, max_length=2000)] | None = Field(
        default=None, description="Stored encrypted; never returned")
    scopes: Annotated[str, StringConstraints(max_length=500, pattern=r"^[\x21\x23-\x5b\x5d-\x7e ]*$")] = \
        "openid email profile"
    saml_metadata_xml: Xml | None = Field(default=None,
                                          description="The IdP's SAML metadata; fills entity id, SSO URL and certificate")
    saml_entity_id: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    saml_sso_url: Url | None = None
    saml_certificate: Annotated[str, StringConstraints(min_length=20, max_length=20_000)] | None = Field(
        default=None, description="The IdP's signing certificate (PEM or base64)")
    allow_idp_initiated: bool = Field(default=False, description="Accept unsolicited SAML responses (IdP-initiated)")
    attribute_map: dict[Literal["email", "name", "subject"], ClaimName] = Field(
        default_factory=dict, description="Which claim/attribute holds the email, the name and the subject")
    role_map: list[RoleRule] = Field(default_factory=list, max_length=100)
    default_roles: list[RoleName] = Field(default_factory=lambda: ["member"], max_length=20)
    jit_provisioning: bool = Field(default=True, description="Create accounts on first sign-in")
    sync_roles: bool = Field(default=True, description="Re-apply the role map on every sign-in")

    @field_validator("scopes")
    @classmethod
    def _openid(cls, v: str) -> str:
        if v and "openid" not in v.split():
            raise ValueError("must include openid")
        return v


class ServiceProviderCreate(Schema):
    name: Text200
    metadata_xml: Xml = Field(description="The service provider's SAML metadata (entity id, ACS URL, certificates)")
    enabled: bool = True
