"""Sign in with an external identity provider, and be one for other services.

* SAML 2.0 (pysaml2 + xmlsec1): NEXUS as service provider for each org's IdP connections
  (SP- and IdP-initiated, signed assertions required, encrypted assertions supported) and
  as identity provider for the service providers an org registers.
* OpenID Connect: NEXUS as relying party of an org's external OIDC providers
  (authorization code + PKCE + state + nonce, ID token verified against the IdP's JWKS).

Both end in the ordinary NEXUS session (identity/session.py cookies) after just-in-time
provisioning and attribute-to-role mapping.
"""
