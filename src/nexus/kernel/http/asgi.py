"""The ASGI entry point for servers: `create_app()` builds NEXUS from the environment."""

from __future__ import annotations

import os

from nexus.kernel import logs
from nexus.kernel.config import Settings
from nexus.kernel.http.app import Nexus


def create_app() -> Nexus:
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    apps = os.environ.get("NEXUS_APPS")
    return Nexus(settings, apps.split(",") if apps else None)
