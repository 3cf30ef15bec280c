"""CRM: contacts, companies, leads, deals, pipelines, activities and forecasting."""

from nexus.kernel.apps import AppManifest

manifest = AppManifest(
    name="crm",
    title="CRM",
    category="Business",
    port=8300,
    catalog_number=23,
    depends=("identity", "tasks"),
    description="Contacts, companies, leads and deals through pipelines; activities, timelines and forecasts.",
    icon="briefcase",
    # The org currency and fiscal year (PUT /api/v1/crm/settings) are admin-only, like the
    # resources declared privileged in resources.py.
    privileged_permissions=("crm.settings.update",),
)
