"""The app registry: every package under nexus.apps with a `manifest` is an app.

The kernel discovers apps by name at run time (importlib), so it never imports one
statically — the boundary checker holds it to that.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexus.kernel.http.routing import RouteDef
    from nexus.kernel.resources import Resource

APPS_PACKAGE = "nexus.apps"


@dataclass(frozen=True)
class AppManifest:
    name: str
    title: str
    category: str
    port: int
    catalog_number: int
    depends: tuple[str, ...] = ()
    description: str = ""
    icon: str = "app"
    privileged: bool = False  # wildcard grants (`*.*.read`) do not reach it
    # Permissions of its own routes (not a resource's) that wildcard app segments do not reach,
    # e.g. ("crm.settings.update",): granted by `*` or by naming the app (kernel/permissions.py).
    privileged_permissions: tuple[str, ...] = ()


@dataclass
class LoadedApp:
    manifest: AppManifest
    package: ModuleType
    resources: list[Resource] = field(default_factory=list)
    routes: list[RouteDef] = field(default_factory=list)
    setup: Callable[[Any], Awaitable[None] | None] | None = None
    startup: Callable[[Any], Awaitable[None]] | None = None
    cli: ModuleType | None = None

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def migrations_dir(self) -> Path | None:
        d = Path(self.package.__file__ or "").parent / "migrations" / "versions"
        return d if d.is_dir() else None


def discover() -> dict[str, AppManifest]:
    pkg = importlib.import_module(APPS_PACKAGE)
    found: dict[str, AppManifest] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if not info.ispkg:
            continue
        mod = importlib.import_module(f"{APPS_PACKAGE}.{info.name}")
        manifest = getattr(mod, "manifest", None)
        if isinstance(manifest, AppManifest):
            found[manifest.name] = manifest
    return dict(sorted(found.items(), key=lambda kv: kv[1].catalog_number))


def resolve(selected: Iterable[str] | None) -> tuple[list[str], list[str]]:
    """(apps to load, apps to serve): loading pulls in dependencies, serving only what was asked."""
    available = discover()
    if selected is None:
        serve = list(available)
    else:
        serve = []
        for name in selected:
            if name not in available:
                raise ValueError(f"unknown app {name!r}; installed: {', '.join(available)}")
            serve.append(name)
    load: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in load:
            return
        if name in trail:
            raise ValueError(f"app dependency cycle: {' -> '.join((*trail, name))}")
        if name not in available:
            raise ValueError(f"app {trail[-1]!r} depends on missing app {name!r}")
        for dep in available[name].depends:
            visit(dep, (*trail, name))
        load.append(name)

    for name in serve:
        visit(name, ())
    return load, serve


def load_app(name: str) -> LoadedApp:
    package = importlib.import_module(f"{APPS_PACKAGE}.{name}")
    app = LoadedApp(manifest=package.manifest, package=package)
    for sub in ("models", "events"):
        _optional(f"{APPS_PACKAGE}.{name}.{sub}")
    res_mod = _optional(f"{APPS_PACKAGE}.{name}.resources")
    if res_mod is not None:
        app.resources = list(getattr(res_mod, "RESOURCES", []))
    routes_mod = _optional(f"{APPS_PACKAGE}.{name}.routes")
    if routes_mod is not None:
        app.routes = list(getattr(routes_mod, "ROUTES", []))
        app.setup = getattr(routes_mod, "setup", None)
        app.startup = getattr(routes_mod, "startup", None)
    app.cli = _optional(f"{APPS_PACKAGE}.{name}.cli")
    return app


def import_all_models() -> None:
    """Import every app's models so SQLAlchemy's metadata holds every table (for Alembic)."""
    for name in discover():
        _optional(f"{APPS_PACKAGE}.{name}.models")


def _optional(module: str) -> ModuleType | None:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
