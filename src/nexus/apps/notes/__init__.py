"""Notes: notebooks and rich-text notes with tags, pinning, sharing, attachments and history."""

from nexus.kernel.apps import AppManifest

manifest = AppManifest(
    name="notes",
    title="Notes",
    category="Productivity",
    port=8224,
    catalog_number=11,
    depends=("identity",),
    description="Notebooks and rich-text notes: tags, pinning, sharing, attachments, Markdown, version history.",
    icon="notebook",
)
