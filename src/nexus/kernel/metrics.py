"""Prometheus metrics at GET /metrics, and optional OpenTelemetry traces.

Every Nexus has its own `CollectorRegistry` (tests run several in one process). Request
counts and latencies are recorded by an `after_response` hook, labelled by route *template*
(`/api/v1/{app}/{resource}/{id}`), never by raw path. Gauges derived from the database
(outbox, jobs) are read when Prometheus scrapes, with cheap indexed queries, at most every
`db_interval` seconds. docs/operations.md lists every metric and what to alert on.

Access: without NEXUS_METRICS_TOKEN only loopback clients may scrape; with it, every
scraper (loopback included) must send `Authorization: Bearer <token>`.

Traces: when NEXUS_OTEL_ENDPOINT is set and the `otel` extra is installed
(`pip install 'nexus[otel]'`), each request becomes a server span exported over OTLP/HTTP,
continuing the caller's W3C `traceparent` when it sends one.
"""

from __future__ import annotations

import hmac
import inspect
import ipaddress
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.errors import Problem
from nexus.kernel.events import MAX_ATTEMPTS
from nexus.kernel.http.routing import RouteDef

if TYPE_CHECKING:
    from nexus.kernel.http.app import Nexus

log = logging.getLogger("nexus.metrics")

# No `_created` series beside each counter and histogram: they double the series count and
# Prometheus does not need them.
disable_created_metrics()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self, nx: Nexus) -> None:
        self.nx = nx
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("nexus_http_requests", "HTTP requests answered, by route template, method and status.",
                                ["route", "method", "status"], registry=r)
        self.duration = Histogram("nexus_http_request_duration_seconds",
                                  "Time to answer an HTTP request, by route template and method.",
                                  ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        # Failed webhook deliveries counted through record_webhook_failure(); the webhooks
        # sender's own count (nx.state["webhooks.sender"].failures) is added at scrape time.
        self.webhook_failures = 0
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        r.register(_StateCollector(self))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # Database-derived values, refreshed by refresh() before each scrape.
        self.db_interval = 2.0
        self.dead_letter_interval = 60.0
        self.db: dict[str, float] = {}
        self.jobs_depth: dict[str, float] = {}
        self.jobs_age: dict[str, float] = {}
        self.jobs_status: dict[str, float] = {}
        self._db_at = float("-inf")
        self._dead_at = float("-inf")

    # -- requests --------------------------------------------------------------------------
    def observe(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        route = scope.get("nexus.route")
        if route is None:
            route = "<static>" if status < 400 and not scope["path"].startswith("/api/") else "<unmatched>"
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        key = (route, method, status)
        pair = self._children.get(key)
        if pair is None:
            pair = (self.requests.labels(route, method, str(status)), self.duration.labels(route, method))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    # -- scrape ----------------------------------------------------------------------------
    async def refresh(self) -> None:
        now = time.monotonic()
        if now - self._db_at < self.db_interval:
            return
        self._db_at = now
        slow = now - self._dead_at >= self.dead_letter_interval
        if slow:
            self._dead_at = now
        db = self.nx.db
        try:
            async with db.reader() as conn:
                pending = await conn.fetchval("SELECT count(*) FROM kernel_outbox WHERE dispatched_at IS NULL")
                oldest = await conn.fetchval(
                    "SELECT time FROM kernel_outbox WHERE dispatched_at IS NULL ORDER BY id LIMIT 1")
                if slow:
                    # No index covers this: it runs at most every dead_letter_interval seconds.
                    self.db["outbox_dead"] = float(await conn.fetchval(
                        "SELECT count(*) FROM kernel_outbox WHERE dispatched_at IS NOT NULL AND attempts >= ?",
                        [MAX_ATTEMPTS]) or 0)
            self.db["outbox_pending"] = float(pending or 0)
            oldest_at = db.read_ts(oldest) if oldest is not None else None
            self.db["outbox_lag"] = (max(0.0, (datetime.now(UTC) - oldest_at).total_seconds())
                                     if oldest_at is not None else 0.0)
            self.db["up"] = 1.0
        except Exception as exc:
            self.db["up"] = 0.0
            log.warning("metrics: database query failed", extra={"fields": {"error": str(exc)[:300]}})
        jobs = getattr(self.nx, "jobs", None)
        if jobs is not None:
            self.jobs_depth = await _per_queue(jobs, "queue_depth")
            self.jobs_age = await _per_queue(jobs, "oldest_queued_age")
            if slow:
                self.jobs_status = await _per_queue(jobs, "counts")

    def pool_stats(self) -> tuple[float, float, float] | None:
        """(open connections, idle connections, maximum) of the database pool."""
        db = self.nx.db
        pool = getattr(db, "pool", None)
        if pool is not None:
            return float(pool.get_size()), float(pool.get_idle_size()), float(pool.get_max_size())
        if db.dialect == "sqlite":
            # One writer connection (serialised by a lock) and one reader.
            lock = getattr(db, "_write_lock", None)
            busy = 1.0 if lock is not None and lock.locked() else 0.0
            return 2.0, 2.0 - busy, 2.0
        return None


async def _per_queue(jobs: Any, name: str) -> dict[str, float]:
    """Read a jobs statistic (a number or {queue: number}, maybe awaitable) as {queue: value}."""
    fn = getattr(jobs, name, None)
    if fn is None:
        return {}
    try:
        value = fn()
        if inspect.isawaitable(value):
            value = await value
    except Exception as exc:
        log.warning("metrics: jobs statistic failed", extra={"fields": {"stat": name, "error": str(exc)[:300]}})
        return {}
    if isinstance(value, dict):
        return {str(k): float(v or 0) for k, v in value.items()}
    return {"default": float(value or 0)}


class _StateCollector:
    """Gauges read at scrape time from the process (pool, limiter) and from refresh()."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        m = self.m
        nx = m.nx
        pool = m.pool_stats()
        if pool is not None:
            yield GaugeMetricFamily("nexus_db_pool_size", "Open database connections of this process.", value=pool[0])
            yield GaugeMetricFamily("nexus_db_pool_idle", "Idle database connections of this process.", value=pool[1])
            yield GaugeMetricFamily("nexus_db_pool_max", "Most database connections this process opens.", value=pool[2])
        if "up" in m.db:
            yield GaugeMetricFamily("nexus_db_up", "1 when the last metrics query reached the database.",
                                    value=m.db["up"])
        if "outbox_pending" in m.db:
            yield GaugeMetricFamily("nexus_outbox_pending", "Events in the outbox not yet dispatched.",
                                    value=m.db["outbox_pending"])
            yield GaugeMetricFamily("nexus_outbox_lag_seconds",
                                    "Age of the oldest event not yet dispatched (0 when none waits).",
                                    value=m.db["outbox_lag"])
        if "outbox_dead" in m.db:
            yield CounterMetricFamily("nexus_outbox_dead_letters",
                                      "Events dead-lettered after repeated delivery failures.",
                                      value=m.db["outbox_dead"])
        depth = GaugeMetricFamily("nexus_jobs_queue_depth", "Background jobs waiting to run.", labels=["queue"])
        for q, v in sorted(m.jobs_depth.items()):
            depth.add_metric([q], v)
        yield depth
        age = GaugeMetricFamily("nexus_jobs_oldest_age_seconds",
                                "Age of the oldest background job waiting to run (0 when none).", labels=["queue"])
        for q, v in sorted(m.jobs_age.items()):
            age.add_metric([q], v)
        yield age
        if m.jobs_status:
            by_status = GaugeMetricFamily("nexus_jobs", "Background jobs by status (queued, running, done, "
                                          "failed, dead, cancelled).", labels=["status"])
            for st, v in sorted(m.jobs_status.items()):
                by_status.add_metric([st], v)
            yield by_status
        sender = nx.state.get("webhooks.sender")
        yield CounterMetricFamily("nexus_webhook_failures",
                                  "Failed webhook delivery attempts (error, timeout or a non-2xx answer).",
                                  value=float(m.webhook_failures + int(getattr(sender, "failures", 0) or 0)))
        rejected = CounterMetricFamily("nexus_ratelimit_rejections", "Requests refused with 429, by route class.",
                                       labels=["class"])
        limiter = nx.state.get("ratelimit")
        if limiter is not None:
            for cls, n in sorted(limiter.rejections.items()):
                rejected.add_metric([cls], float(n))
        yield rejected
        info = GaugeMetricFamily("nexus_build_info", "Always 1: the version and storage back ends.",
                                 labels=["version", "database", "cache"])
        cache = getattr(nx, "cache", None)
        info.add_metric([_version(), nx.settings.dialect, getattr(cache, "backend", "none")], 1.0)
        yield info


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nexus")
    except PackageNotFoundError:
        return "unknown"


def metrics_of(nx: Nexus) -> Metrics:
    return nx.state["metrics"]  # type: ignore[no-any-return]


def record_webhook_failure(nx: Nexus, n: int = 1) -> None:
    """For the webhooks subsystem: count failed deliveries (no-op without metrics)."""
    m = nx.state.get("metrics")
    if m is not None:
        m.webhook_failures += n


# -- GET /metrics ------------------------------------------------------------------------


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    mapped = getattr(addr, "ipv4_mapped", None)
    return bool(addr.is_loopback or (mapped is not None and mapped.is_loopback))


def authorize(req: Request, token: str | None) -> None:
    if token:
        scheme, _, credential = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), token.encode()):
            raise Problem(401, "Send the metrics token: 'Authorization: Bearer <NEXUS_METRICS_TOKEN>'.",
                          headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return
    client = req.scope.get("client")
    if not _is_loopback(client[0] if client else None):
        raise Problem(403, "Metrics are served to loopback clients only; set NEXUS_METRICS_TOKEN to scrape "
                           "from elsewhere.")


async def metrics_endpoint(req: Request) -> Response:
    """Prometheus metrics (loopback only, or with the NEXUS_METRICS_TOKEN bearer token)."""
    nx: Nexus = req.scope["nexus"]
    authorize(req, nx.settings.metrics_token)
    m = metrics_of(nx)
    await m.refresh()
    encoder, content_type = choose_encoder(req.headers.get("accept", ""))
    return Response(encoder(m.registry), headers={"Content-Type": content_type, "Cache-Control": "no-store"})


# -- OpenTelemetry -------------------------------------------------------------------------


class Tracing:
    """One server span per request, made when the response is done (start and end times
    given explicitly), parented on the caller's `traceparent` when present."""

    def __init__(self, exporter: Any, *, batch: bool = True, service_name: str = "nexus") -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("nexus.http")
        self.propagator = TraceContextTextMapPropagator()
        self._server = SpanKind.SERVER
        self._error = Status(StatusCode.ERROR)

    def record(self, scope: dict[str, Any], status: int, seconds: float) -> None:
        end = time.time_ns()
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"traceparent", b"tracestate")}
        parent = self.propagator.extract(carrier) if carrier else None
        route = scope.get("nexus.route")
        method = scope["method"]
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "http.response.status_code": status,
        }
        if route:
            attributes["http.route"] = route
        rid = scope.get("nexus.request_id")
        if rid:
            attributes["nexus.request_id"] = rid
        span = self.tracer.start_span(f"{method} {route}" if route else method, context=parent, kind=self._server,
                                      attributes=attributes, start_time=end - int(seconds * 1e9))
        if status >= 500:
            span.set_status(self._error)
        span.end(end_time=end)

    async def shutdown(self) -> None:
        self.provider.shutdown()


def enable_tracing(nx: Nexus, exporter: Any = None, *, batch: bool = True) -> Tracing | None:
    """Trace every request to `exporter`, or to OTLP/HTTP at NEXUS_OTEL_ENDPOINT.
    Returns None (and logs why) when the OpenTelemetry packages are not installed."""
    try:
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = (nx.settings.otel_endpoint or "http://127.0.0.1:4318").rstrip("/")
            if not endpoint.endswith("/v1/traces"):
                endpoint += "/v1/traces"
            exporter = OTLPSpanExporter(endpoint=endpoint)
        tracing = Tracing(exporter, batch=batch)
    except ImportError as exc:
        log.warning("NEXUS_OTEL_ENDPOINT is set but OpenTelemetry is not installed (pip install 'nexus[otel]')",
                    extra={"fields": {"missing": exc.name}})
        return None
    nx.state["tracing"] = tracing
    nx.on("after_response", tracing.record)
    nx.on("shutdown", tracing.shutdown)
    return tracing


def install(nx: Nexus) -> None:
    metrics = Metrics(nx)
    nx.state["metrics"] = metrics
    nx.on("after_response", metrics.observe)
    nx.router.add(RouteDef("GET", "/metrics", metrics_endpoint, public=True, tags=("system",),
                           summary="Prometheus metrics"))
    if nx.settings.otel_endpoint:
        enable_tracing(nx)
