"""Every NEXUS app is a package here with the same shape (DESIGN.md §2)."""
