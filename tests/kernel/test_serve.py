"""`nexus serve` as a user runs it: a real server process (granian) on a fresh data dir."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from nexus.kernel.cli import default_port
from tests.factories import free_port

NEXUS = str(Path(sys.executable).parent / "nexus")


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env.update({"NEXUS_DATA_DIR": str(tmp), "NEXUS_LOG_LEVEL": "WARNING", "NEXUS_PASSWORD_HASH": "fast", **extra})
    return env


def wait_ready(url: str, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, **env: str) -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        proc = subprocess.Popen([NEXUS, "serve", "--port", str(port), *args], env=env_for(tmp_path, **env),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, proc)
        return proc, url

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def test_first_start_prints_generated_admin_and_serves(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proc, url = served()
    banner = ""
    while "API docs:" not in banner:
        banner += proc.stdout.readline()
    email = re.search(r"email:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
    password = re.search(r"password:\s+(\S+)", banner).group(1)  # type: ignore[union-attr]
    assert email == "admin@example.com" and len(password) >= 12
    r = httpx.post(url + "/api/v1/auth/token", data={"grant_type": "password", "username": email, "password": password})
    assert r.status_code == 200, r.text
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = httpx.post(url + "/api/v1/tasks/tasks", json={"title": "From a real server"}, headers=h)
    assert r.status_code == 201 and r.headers["x-request-id"]
    assert (tmp_path / "nexus.db").exists()


def test_admin_from_environment_and_app_subset(served) -> None:  # type: ignore[no-untyped-def]
    env = {"NEXUS_ADMIN_EMAIL": "boss@acme.test", "NEXUS_ADMIN_PASSWORD": "s3cret-pass"}
    _, identity_url = served("--apps", "identity", **env)
    _, tasks_url = served("--apps", "tasks", **env)
    form = {"grant_type": "password", "username": "boss@acme.test", "password": "s3cret-pass"}
    # Serving only Tasks: identity's routes are not served there, but its tokens are honoured.
    assert httpx.post(tasks_url + "/api/v1/auth/token", data=form).status_code == 404
    r = httpx.post(identity_url + "/api/v1/auth/token", data=form)
    assert r.status_code == 200, r.text
    h = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert httpx.get(tasks_url + "/api/v1/tasks/tasks").status_code == 401
    r = httpx.post(tasks_url + "/api/v1/tasks/tasks", json={"title": "split deployment"}, headers=h)
    assert r.status_code == 201, r.text
    assert httpx.get(identity_url + "/api/v1/tasks/tasks", headers=h).status_code == 404
    assert httpx.get(identity_url + "/api/v1/identity/me", headers=h).status_code == 200


def test_default_ports() -> None:
    assert default_port(None) == 8000
    assert default_port(["tasks"]) == 8223
    assert default_port(["identity"]) == 8100
    assert default_port(["tasks", "identity"]) == 8000


def test_unreachable_database_is_named_without_password(tmp_path: Path) -> None:
    env = env_for(tmp_path, NEXUS_DATABASE_URL="postgresql://bob:hunter2@127.0.0.1:1/nexus")
    r = subprocess.run([NEXUS, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "postgresql://bob:***@127.0.0.1:1/nexus" in r.stderr and "hunter2" not in r.stderr + r.stdout


def test_bad_setting_stops_start(tmp_path: Path) -> None:
    env = env_for(tmp_path, NEXUS_MAX_BODY_BYTES="huge")
    r = subprocess.run([NEXUS, "serve", "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "NEXUS_MAX_BODY_BYTES" in r.stderr


def test_apps_lists_catalog() -> None:
    r = subprocess.run([NEXUS, "apps"], capture_output=True, text=True, timeout=60, env=env_for(Path("/tmp")))
    assert r.returncode == 0
    assert re.search(r"tasks\s+8223", r.stdout) and re.search(r"identity\s+8100", r.stdout)
