"""GET /metrics (kernel/metrics.py): request counters and latency histograms by route
template, database pool, outbox and jobs gauges, access control, optional traces."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from nexus.kernel import migrate
from nexus.kernel.config import Settings, parse_rate_limits
from nexus.kernel.events import MAX_ATTEMPTS
from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import utcnow
from nexus.kernel.metrics import enable_tracing, metrics_of, record_webhook_failure
from tests.conftest import _pg_admin, make_settings
from tests.factories import client_at, make_task, new_org

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(nx: Nexus, **headers: str) -> Samples:
    async with client_at(nx, "127.0.0.1") as c:
        r = await c.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


RES = "/api/v1/{app}/{resource}"
ONE = "/api/v1/{app}/{resource}/{id}"


async def test_requests_are_counted_by_route_template_method_and_status(client: httpx.AsyncClient,
                                                                         nx: Nexus) -> None:
    owner = await new_org(client, nx)
    task = await make_task(owner)
    before = await scrape(nx)
    for _ in range(2):
        assert (await owner.get(f"/api/v1/tasks/tasks/{task['id']}")).status_code == 200
    assert (await owner.get("/api/v1/tasks/tasks/nope")).status_code == 404
    assert (await owner.post("/api/v1/tasks/tasks", json={"title": "m"})).status_code == 201
    assert (await client.get("/api/v1/no/such/thing/at/all")).status_code == 404
    assert (await owner.get("/api/v1/identity/me")).status_code == 200
    after = await scrape(nx)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    total = "nexus_http_requests_total"
    assert delta(total, route=ONE, method="GET", status="200") == 2
    assert delta(total, route=ONE, method="GET", status="404") == 1
    assert delta(total, route=RES, method="POST", status="201") == 1
    assert delta(total, route="<unmatched>", method="GET", status="404") == 1
    assert delta(total, route="/api/v1/identity/me", method="GET", status="200") == 1
    hist = "nexus_http_request_duration_seconds"
    assert delta(f"{hist}_count", route=ONE, method="GET") == 3
    assert delta(f"{hist}_bucket", route=ONE, method="GET", le="+Inf") == 3
    assert delta(f"{hist}_bucket", route=ONE, method="GET", le="10.0") == 3
    assert delta(f"{hist}_sum", route=ONE, method="GET") > 0
    # No raw path (record ids) ever becomes a label.
    assert not any(task["id"] in str(labels) for (_, labels) in after)
    assert value(after, "nexus_db_pool_size") >= 1
    assert 0 <= value(after, "nexus_db_pool_idle") <= value(after, "nexus_db_pool_max")
    assert value(after, "nexus_db_up") == 1
    assert value(after, "nexus_build_info", version=_version_label(after), database=nx.settings.dialect,
                 cache="memory") == 1


def _version_label(samples: Samples) -> str:
    for name, labels in samples:
        if name == "nexus_build_info":
            return dict(labels)["version"]
    raise AssertionError("no nexus_build_info")


async def test_metrics_are_refused_to_other_addresses_without_a_token(client: httpx.AsyncClient) -> None:
    r = await client.get("/metrics")  # the test client's address is 198.51.100.7
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "NEXUS_METRICS_TOKEN" in r.json()["detail"]


async def test_openmetrics_is_served_when_asked_for(nx: Nexus) -> None:
    async with client_at(nx, "::1") as c:
        r = await c.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


# -- a NEXUS of its own: a fresh database, a token, no dispatcher ---------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def quiet(backend: str) -> AsyncIterator[Nexus]:
    """A NEXUS on a database of its own with no background work: nothing dispatches its
    outbox, so its gauges can be set up exactly."""
    data_dir = Path(tempfile.mkdtemp(prefix="nexus-test-metrics-"))
    db_name = None
    if backend == "postgresql":
        db_name = f"nexus_test_metrics_{os.getpid()}_{secrets.token_hex(4)}"
        await _pg_admin(f'CREATE DATABASE "{db_name}"')
    s = make_settings(backend, data_dir, db_name)
    s = dataclasses.replace(s, metrics_token="t" * 32, rate_limits=parse_rate_limits("off"))
    await asyncio.to_thread(migrate.upgrade, s)
    nx = Nexus(s, run_background=False)
    await nx.startup()
    metrics_of(nx).db_interval = 0
    metrics_of(nx).dead_letter_interval = 0
    yield nx
    await nx.shutdown()
    shutil.rmtree(data_dir, ignore_errors=True)
    if db_name:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


TOKEN = {"Authorization": "Bearer " + "t" * 32}


async def test_a_configured_token_is_required_from_everyone(quiet: Nexus) -> None:
    async with client_at(quiet, "198.51.100.7") as far, client_at(quiet, "127.0.0.1") as near:
        for c in (far, near):
            r = await c.get("/metrics")
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
            assert (await c.get("/metrics", headers={"Authorization": "Bearer " + "x" * 32})).status_code == 401
            assert (await c.get("/metrics", headers={"Authorization": "Basic " + "t" * 32})).status_code == 401
            r = await c.get("/metrics", headers=TOKEN)
            assert r.status_code == 200 and "nexus_outbox_pending" in r.text


async def insert_event(nx: Nexus, *, age: float, dispatched: bool = False, attempts: int = 0) -> str:
    from nexus.kernel.ids import new_id

    event_id = new_id()
    at = utcnow() - timedelta(seconds=age)
    async with nx.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO kernel_outbox (id, org_id, type, source, subject, time, data, actor_id, dispatched_at,"
            " attempts, error) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [event_id, new_id(), "nexus.test.thing.happened", "/nexus/test", None, nx.db.ts(at), nx.db.json({}),
             None, nx.db.ts(utcnow()) if dispatched else None, attempts, "Boom: failed" if attempts else None])
    return event_id


async def test_outbox_gauges_follow_the_outbox(quiet: Nexus) -> None:
    s = await scrape(quiet, **TOKEN)
    assert value(s, "nexus_outbox_pending") == 0 and value(s, "nexus_outbox_lag_seconds") == 0
    assert value(s, "nexus_outbox_dead_letters_total") == 0
    old = await insert_event(quiet, age=120)
    await insert_event(quiet, age=5)
    await insert_event(quiet, age=300, dispatched=True)  # delivered: no lag
    await insert_event(quiet, age=50, dispatched=True, attempts=MAX_ATTEMPTS)  # dead-lettered
    await insert_event(quiet, age=50, dispatched=True, attempts=2)  # delivered after retries
    s = await scrape(quiet, **TOKEN)
    assert value(s, "nexus_outbox_pending") == 2
    assert 119 <= value(s, "nexus_outbox_lag_seconds") < 130
    assert value(s, "nexus_outbox_dead_letters_total") == 1
    async with quiet.db.transaction() as conn:
        await conn.execute("UPDATE kernel_outbox SET dispatched_at = ? WHERE id = ?", [quiet.db.ts(utcnow()), old])
    s = await scrape(quiet, **TOKEN)
    assert value(s, "nexus_outbox_pending") == 1
    assert 4 <= value(s, "nexus_outbox_lag_seconds") < 15
    async with quiet.db.transaction() as conn:
        await conn.execute("UPDATE kernel_outbox SET dispatched_at = ? WHERE dispatched_at IS NULL",
                           [quiet.db.ts(utcnow())])
    s = await scrape(quiet, **TOKEN)
    assert value(s, "nexus_outbox_pending") == 0 and value(s, "nexus_outbox_lag_seconds") == 0


class FakeJobs:
    def __init__(self) -> None:
        self.depth = 0

    async def queue_depth(self) -> int:
        return self.depth

    def oldest_queued_age(self) -> float:
        return 42.5 if self.depth else 0.0

    async def counts(self) -> dict[str, int]:
        return {"queued": self.depth, "dead": 2}


async def test_jobs_gauges_read_the_job_queue(quiet: Nexus, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = getattr(quiet, "jobs", None)
    if jobs is not None and hasattr(jobs, "queue_depth"):  # the real queue, when this build has one
        s = await scrape(quiet, **TOKEN)
        assert value(s, "nexus_jobs_queue_depth", queue="default") == await jobs.queue_depth()
    fake = FakeJobs()
    monkeypatch.setattr(quiet, "jobs", fake, raising=False)
    s = await scrape(quiet, **TOKEN)
    assert value(s, "nexus_jobs_queue_depth", queue="default") == 0
    assert value(s, "nexus_jobs_oldest_age_seconds", queue="default") == 0
    fake.depth = 7
    s = await scrape(quiet, **TOKEN)
    assert value(s, "nexus_jobs_queue_depth", queue="default") == 7
    assert value(s, "nexus_jobs_oldest_age_seconds", queue="default") == 42.5
    assert value(s, "nexus_jobs", status="queued") == 7 and value(s, "nexus_jobs", status="dead") == 2


async def test_webhook_failures_and_rate_limit_rejections_are_counted(quiet: Nexus) -> None:
    s = await scrape(quiet, **TOKEN)
    base = value(s, "nexus_webhook_failures_total")
    record_webhook_failure(quiet)
    record_webhook_failure(quiet, 2)
    expected = base + 3
    sender = quiet.state.get("webhooks.sender")  # the webhooks subsystem's own count, when built in
    if sender is not None and hasattr(sender, "failures"):
        sender.failures += 5
        expected += 5
    quiet.state["ratelimit"].rejections["auth"] += 4
    s = await scrape(quiet, **TOKEN)
    assert value(s, "nexus_webhook_failures_total") == expected
    assert value(s, "nexus_ratelimit_rejections_total", **{"class": "auth"}) >= 4
    assert ("nexus_ratelimit_rejections_total", frozenset({("class", "read")})) in s


async def test_a_rejected_request_shows_in_the_metrics(client: httpx.AsyncClient, nx: Nexus,
                                                       settings: Settings) -> None:
    owner = await new_org(client, nx)
    s = dataclasses.replace(settings, rate_limits=parse_rate_limits("read=1/86400"))
    tight = Nexus(s, run_background=False)
    await tight.startup()
    try:
        async with client_at(tight) as c:
            assert (await c.get("/api/v1/identity/me", headers=owner.headers)).status_code == 200
            assert (await c.get("/api/v1/identity/me", headers=owner.headers)).status_code == 429
        got = await scrape(tight)
        assert value(got, "nexus_ratelimit_rejections_total", **{"class": "read"}) == 1
        assert value(got, "nexus_http_requests_total", route="/api/v1/identity/me", method="GET", status="429") == 1
    finally:
        await tight.shutdown()


# -- OpenTelemetry (optional) ----------------------------------------------------------------


async def test_each_request_becomes_a_span_continuing_the_callers_trace(client: httpx.AsyncClient, nx: Nexus,
                                                                         settings: Settings) -> None:
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, StatusCode

    owner = await new_org(client, nx)
    traced = Nexus(dataclasses.replace(settings), run_background=False)
    exporter: Any = InMemorySpanExporter()
    assert enable_tracing(traced, exporter, batch=False) is not None
    await traced.startup()
    try:
        trace_id = secrets.token_hex(16)
        parent_id = secrets.token_hex(8)
        async with client_at(traced) as c:
            r = await c.get("/api/v1/tasks/tasks", headers={**owner.headers,
                                                            "traceparent": f"00-{trace_id}-{parent_id}-01"})
            assert r.status_code == 200
            await c.get("/api/v1/nothing/here/at/all")
        spans = exporter.get_finished_spans()
        assert len(spans) == 2
        span = spans[0]
        assert span.name == f"GET {RES}" and span.kind == SpanKind.SERVER
        assert format(span.context.trace_id, "032x") == trace_id
        assert span.parent is not None and format(span.parent.span_id, "016x") == parent_id
        attrs = dict(span.attributes or {})
        assert attrs["http.route"] == RES and attrs["http.response.status_code"] == 200
        assert attrs["http.request.method"] == "GET" and attrs["nexus.request_id"] == r.headers["x-request-id"]
        assert span.end_time is not None and span.start_time is not None and span.end_time > span.start_time
        other = spans[1]
        assert other.name == "GET" and other.parent is None and other.status.status_code != StatusCode.ERROR
    finally:
        await traced.shutdown()


def test_tracing_is_off_without_an_endpoint(nx: Nexus) -> None:
    assert "tracing" not in nx.state
