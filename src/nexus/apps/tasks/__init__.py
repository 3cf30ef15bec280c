"""Tasks: projects, tasks with subtasks, workflow, due dates, recurrence, labels, comments."""

from nexus.kernel.apps import AppManifest

manifest = AppManifest(
    name="tasks",
    title="Tasks",
    category="Productivity",
    port=8223,
    catalog_number=10,
    depends=("identity",),
    description="Projects and tasks with subtasks, due dates, recurrence, labels, checklists and comments.",
    icon="check-square",
)
