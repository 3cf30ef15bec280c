"""NEXUS — a self-hosted business operating system."""

__version__ = "0.1.0"
