"""OpenID Connect provider and OAuth 2.1 authorization server (docs/apps/identity.md, ADR 0006)."""
