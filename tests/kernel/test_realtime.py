"""Live delivery from a real server: the WebSocket stream, and the relay to NATS JetStream."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import websockets

from tests.kernel.test_serve import NEXUS, env_for, free_port, wait_ready


def nats_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 4222), timeout=1):
            return True
    except OSError:
        return False


def start_server(tmp: Path, **env: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen([NEXUS, "serve", "--port", str(port)],
                            env=env_for(tmp, NEXUS_ADMIN_EMAIL="rt@test.io", NEXUS_ADMIN_PASSWORD="realtime-pw", **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def sign_in(url: str) -> str:
    r = httpx.post(url + "/api/v1/auth/token",
                   data={"grant_type": "password", "username": "rt@test.io", "password": "realtime-pw"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def test_websocket_pushes_events_live(tmp_path: Path) -> None:
    proc, url = start_server(tmp_path)
    try:
        token = sign_in(url)
        ws_url = url.replace("http", "ws") + "/api/v1/ws"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": "forged"}))
            assert json.loads(await ws.recv())["status"] == 401
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "subscribe", "topics": ["events"]}))
            assert json.loads(await ws.recv())["topics"] == ["events"]
            async with httpx.AsyncClient(base_url=url) as c:
                r = await c.post("/api/v1/tasks/tasks", json={"title": "live"},
                                 headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 201
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg["type"] == "event" and msg["event"]["subject"] == r.json()["id"]:
                    break
            assert msg["event"]["type"] == "nexus.tasks.task.created"
            await ws.send("not json")
            assert json.loads(await ws.recv())["status"] == 400
    finally:
        stop(proc)


@pytest.mark.skipif(not nats_up(), reason="NATS is not running on 127.0.0.1:4222")
async def test_outbox_is_relayed_to_jetstream(tmp_path: Path) -> None:
    import nats

    stream = f"NEXUSTEST{secrets.token_hex(3).upper()}"
    proc, url = start_server(tmp_path, NEXUS_NATS_URL="nats://127.0.0.1:4222", NEXUS_NATS_STREAM=stream)
    nc = await nats.connect("nats://127.0.0.1:4222")
    try:
        token = sign_in(url)
        ids = []
        async with httpx.AsyncClient(base_url=url) as c:
            for i in range(5):
                r = await c.post("/api/v1/tasks/tasks", json={"title": f"relayed {i}"},
                                 headers={"Authorization": f"Bearer {token}"})
                ids.append(r.json()["id"])
        js = nc.jetstream()
        sub = await js.pull_subscribe(f"{stream.lower()}.nexus.tasks.task.created", durable=None, stream=stream)
        got: list[str] = []
        deadline = asyncio.get_running_loop().time() + 15
        while len(got) < 5 and asyncio.get_running_loop().time() < deadline:
            try:
                for m in await sub.fetch(5, timeout=1):
                    got.append(json.loads(m.data)["subject"])
                    await m.ack()
            except nats.errors.TimeoutError:
                pass
        assert got == ids, "relayed in commit order, each once"
    finally:
        stop(proc)
        try:
            await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()
