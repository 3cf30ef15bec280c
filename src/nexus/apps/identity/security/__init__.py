"""Multi-factor and account security: TOTP and recovery codes, WebAuthn passkeys, the MFA step
of sign-in, step-up, password policy and reset by mail, sessions and sign-in history."""

from __future__ import annotations

from typing import Any

from .routes import ROUTES


def setup(nx: Any) -> None:
    from . import reset

    jobs = nx.state.get("jobs")
    if jobs is not None and reset.JOB not in jobs.types:
        jobs.register(reset.JOB, reset.send_reset_mail, max_attempts=5, timeout=60)


__all__ = ["ROUTES", "setup"]
