"""IDaaS: organisations, users, roles, sessions, tokens and API keys."""

from nexus.kernel.apps import AppManifest

manifest = AppManifest(
    name="identity",
    title="Identity",
    category="Platform",
    port=8100,
    catalog_number=56,
    description="Users, organisations, roles, sign-in, tokens and API keys.",
    icon="shield",
    privileged=True,
)
