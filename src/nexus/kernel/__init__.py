"""Platform mechanisms every app uses. The kernel imports no app (checked in CI)."""
