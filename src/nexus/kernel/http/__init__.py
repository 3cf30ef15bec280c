"""HTTP: one ASGI application for any subset of apps (DESIGN.md §4)."""
