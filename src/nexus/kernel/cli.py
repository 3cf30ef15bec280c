"""The `nexus` command (DESIGN.md §1): serve, worker, migrate, admin, apps."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from nexus.kernel.apps import discover, load_app, resolve
from nexus.kernel.config import ConfigError, Settings, redact_url


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nexus", description="NEXUS — a self-hosted business operating system")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="migrate if needed, then serve the apps over HTTP")
    serve.add_argument("--host", default=os.environ.get("NEXUS_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--apps", default=None, help="comma-separated subset of apps to serve")
    serve.add_argument("--workers", type=int, default=int(os.environ.get("NEXUS_WORKERS", "1")))
    serve.add_argument("--no-migrate", action="store_true", help="refuse to start if migrations are pending")
    worker = sub.add_parser("worker", help="run background jobs and event consumers only")
    worker.add_argument("--concurrency", type=int, default=None, help="jobs run at once (default 8)")
    sub.add_parser("migrate", help="apply schema migrations")
    sub.add_parser("apps", help="list the installed apps and their catalog ports")
    check = sub.add_parser("check-migrations", help="fail if models and migrations disagree")
    check.set_defaults(fresh=True)
    mk = sub.add_parser("makemigrations", help="autogenerate the next migration for an app (developers)")
    mk.add_argument("app")
    mk.add_argument("-m", "--message", required=True)
    from nexus.kernel import search  # `nexus search reindex`

    search.register_cli(sub)
    from nexus.kernel import blobs  # `nexus blobs gc`

    blobs.register_cli(sub)
    audit = sub.add_parser("audit", help="the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_sub.add_parser("verify", help="check the hash chain; exit 1 if an entry was altered or removed")
    for name in discover():
        mod = load_app(name).cli
        if mod is not None and hasattr(mod, "register"):
            mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"nexus: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    try:
        code = _run(settings, args)
    except ConfigError as exc:
        print(f"nexus: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from nexus.kernel import logs, migrate

    cmd = args.command
    if cmd == "apps":
        for m in discover().values():
            print(f"{m.name:<12} {m.port:>5}  #{m.catalog_number:<3} {m.category:<14} {m.title}")
        return 0
    logs.configure(settings.log_level)
    if hasattr(args, "handler"):
        # App commands (admin create, …) work on a fresh installation too.
        _migrate(settings)
        return int(asyncio.run(args.handler(settings, args)))
    if cmd == "migrate":
        _migrate(settings)
        print(f"migrations applied to {redact_url(settings.database_url)}")
        return 0
    if cmd == "check-migrations":
        _migrate(settings)
        migrate.check(settings)
        print("models and migrations agree")
        return 0
    if cmd == "audit":
        return _audit_verify(settings)
    if cmd == "makemigrations":
        migrate.make_revision(settings, args.app, args.message)
        return 0
    if cmd == "worker":
        _migrate(settings)
        return _worker(settings, args.concurrency)
    if cmd == "serve":
        return _serve(settings, args)
    return 2


def _migrate(settings: Settings) -> None:
    from nexus.kernel import migrate

    _check_database(settings)
    migrate.upgrade(settings)


def _check_database(settings: Settings) -> None:
    from nexus.kernel.db import create_database

    async def probe() -> None:
        db = create_database(settings)
        await db.open()
        await db.ping()
        await db.close()

    asyncio.run(probe())


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from nexus.kernel import migrate

    apps = [a.strip() for a in args.apps.split(",") if a.strip()] if args.apps else None
    try:
        load, serve = resolve(apps)
    except ValueError as exc:
        print(f"nexus: {exc}", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else default_port(apps)
    if args.no_migrate:
        _check_database(settings)
        if migrate.current(settings) != migrate.heads(settings):
            print("nexus: migrations are pending; run `nexus migrate`", file=sys.stderr)
            return 2
    else:
        _migrate(settings)
    base_url = f"http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{port}"  # noqa: S104
    for name in load:
        mod = load_app(name).cli
        if mod is not None and hasattr(mod, "bootstrap"):
            asyncio.run(mod.bootstrap(settings, base_url))
    print(f"  NEXUS is serving {', '.join(serve)} at {base_url}/")
    print(f"  Sign in: open {base_url}/ in a browser (API: POST {base_url}/api/v1/auth/token)")
    print(f"  API docs: {base_url}/api/docs\n", flush=True)
    if apps:
        os.environ["NEXUS_APPS"] = ",".join(apps)
    from granian import Granian
    from granian.constants import Interfaces

    server: Any = Granian(
        "nexus.kernel.http.asgi:create_app",
        address=args.host,
        port=port,
        interface=Interfaces.ASGI,
        workers=args.workers,
        factory=True,
        log_access=False,
        backlog=2048,
    )
    server.serve()
    return 0


def _audit_verify(settings: Settings) -> int:
    from nexus.kernel.audit import seal_once, verify
    from nexus.kernel.db import create_database

    async def run() -> int:
        db = create_database(settings)
        await db.open()
        try:
            while await seal_once(db):
                pass
            result = await verify(db)
        finally:
            await db.close()
        if result.ok:
            print(f"audit trail intact: {result.checked} entries verified; chain head {result.head}")
            return 0
        print(f"audit trail BROKEN: {result.problem} ({result.checked} entries verified before it)")
        return 1

    _check_database(settings)
    return asyncio.run(run())


def default_port(apps: list[str] | None) -> int:
    """All apps share 8000; one app served alone listens on its catalog port."""
    if apps and len(apps) == 1:
        return discover()[apps[0]].port
    return 8000


def _worker(settings: Settings, concurrency: int | None = None) -> int:
    """Background jobs (kernel/jobs.py), schedules and the event dispatcher, without HTTP."""
    import dataclasses
    import signal

    from nexus.kernel.http.app import Nexus

    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # This process is the worker whatever NEXUS_WORKER says (that setting tells `serve`).
        nx = Nexus(dataclasses.replace(settings, worker_mode="inprocess"))
        if concurrency:
            nx.jobs.concurrency = max(1, min(concurrency, 1000))  # type: ignore[attr-defined]
        await nx.startup()
        try:
            types = sorted(nx.jobs.types)  # type: ignore[attr-defined]
            print(f"nexus worker: running {len(types)} job types ({', '.join(types)}) and the event dispatcher",
                  flush=True)
            await stop.wait()
        finally:
            await nx.shutdown()

    asyncio.run(run())
    return 0
