"""End-to-end tests of the web app (the Hub): a real `nexus serve` and Debian's Chromium,
driven by Playwright. They skip, saying why, when Chromium, Playwright or the built web app
(`cd web && npm ci && npm run build`) is missing. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("NEXUS_E2E_CHROMIUM", "/usr/bin/chromium"))
WEB_INDEX = ROOT / "src" / "nexus" / "static" / "web" / "index.html"
SHOTS = ROOT / "test-artifacts" / "screenshots"
NEXUS = str(Path(sys.executable).parent / "nexus")
ADMIN = ("admin@example.com", "admin-pass-123")
OTHER_ADMIN = ("boss@second.test", "second-pass-123")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def missing() -> str | None:
    if not os.environ.get("NEXUS_E2E"):
        # Playwright's sync API keeps an event loop running in the test process, which breaks
        # every asyncio test collected after it: browser tests get a process of their own
        # (`make test` runs them so, with NEXUS_E2E=1).
        return "browser tests run in their own process: NEXUS_E2E=1 pytest tests/e2e (make test does)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[test]')"
    if not WEB_INDEX.exists():
        return f"the web app is not built ({WEB_INDEX.relative_to(ROOT)}; cd web && npm ci && npm run build)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end browser tests (real server, Chromium)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing()
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=f"e2e: {reason}"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUS_")}
    env.update({
        "NEXUS_DATA_DIR": str(data_dir),
        "NEXUS_LOG_LEVEL": "WARNING",
        "NEXUS_PASSWORD_HASH": "fast",
        "NEXUS_ADMIN_EMAIL": ADMIN[0],
        "NEXUS_ADMIN_PASSWORD": ADMIN[1],
        # Every sign-in of the suite comes from 127.0.0.1: the default auth budget (20 a
        # minute per address) would turn a later sign-in into a 429.
        "NEXUS_RATE_LIMITS": "auth=1000/60",
    })
    return env


class Server:
    def __init__(self, url: str, data_dir: Path, env: dict[str, str]) -> None:
        self.url = url
        self.data_dir = data_dir
        self.env = env

    def token(self, email: str, password: str, org: str | None = None) -> dict[str, str]:
        form = {"grant_type": "password", "username": email, "password": password}
        if org:
            form["org"] = org
        r = httpx.post(self.url + "/api/v1/auth/token", data=form)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def api(self, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
        r = httpx.request(method, self.url + path, headers=headers, **kw)
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="nexus-e2e-"))
    env = _env(data_dir)
    port = _free_port()
    proc = subprocess.Popen([NEXUS, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"nexus serve exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("nexus serve did not become ready")
            time.sleep(0.2)
        if 'id="root"' not in httpx.get(url + "/").text:
            pytest.skip("e2e: this server does not serve the built web app at /")
        # A second organisation, to show that one org never sees another's data.
        out = subprocess.run([NEXUS, "admin", "create", "--email", OTHER_ADMIN[0], "--password", OTHER_ADMIN[1],
                              "--org", "second"], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        yield Server(url, data_dir, env)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    ctx = browser.new_context(base_url=server.url, viewport={"width": 1366, "height": 860}, color_scheme="light")
    ctx.set_default_timeout(15_000)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors: {errors}"


def shot(page: Any, name: str, *, full: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    if full:
        page.evaluate("window.scrollTo(0, 0)")  # sticky bars would otherwise be drawn mid-page
    page.wait_for_timeout(250)  # let transitions settle
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def sign_in(page: Any, email: str, password: str, org: str | None = None) -> None:
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    if org:
        page.get_by_role("button", name="Sign in to a specific organisation").click()
        page.get_by_label("Organisation").fill(org)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("combobox", name="Search everything").wait_for()


def sign_out(page: Any) -> None:
    page.get_by_role("button", name="Account menu").click()
    page.get_by_role("menuitem", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
