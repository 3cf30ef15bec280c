"""Boundary check (DESIGN.md §2): an app imports another app only through its public.py
or events.py. import-linter checks that the kernel imports no app; this checks every
pair of apps without listing them, so a new app is covered the day it is added."""

from __future__ import annotations

import sys

import grimp

ALLOWED = ("public", "events")


def main() -> int:
    graph = grimp.build_graph("nexus", cache_dir=None)
    bad = []
    for importer in sorted(graph.modules):
        parts = importer.split(".")
        if len(parts) < 3 or parts[1] != "apps":
            continue
        app = parts[2]
        for imported in graph.find_modules_directly_imported_by(importer):
            ip = imported.split(".")
            if len(ip) < 3 or ip[1] != "apps" or ip[2] == app:
                continue
            if len(ip) == 4 and ip[3] in ALLOWED:
                continue
            bad.append(f"{importer} imports {imported} (use nexus.apps.{ip[2]}.public or .events)")
    for line in bad:
        print(line)
    print(f"boundaries: {'broken' if bad else 'kept'} ({len(bad)} violation(s))")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
