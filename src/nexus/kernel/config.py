"""Typed settings read from NEXUS_* environment variables (12-factor).

Unset means the embedded default. Bad values fail at start with a message that
names the variable and never echoes a password.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


class ConfigError(Exception):
    """A setting is invalid; the message is safe to print."""


def redact_url(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    host = netloc[1] if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _int(env: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    blob_url: str
    redis_url: str | None
    nats_url: str | None
    admin_email: str | None
    admin_password: str | None
    secret_key: str
    max_body_bytes: int = 1_048_576
    max_import_bytes: int = 20_971_520
    max_import_rows: int = 50_000
    max_upload_bytes: int = 104_857_600  # blobs (kernel/blobs.py): larger uploads get 413
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    log_level: str = "INFO"
    db_pool_size: int = 10
    nats_stream: str = "NEXUS"
    worker_mode: str = "inprocess"  # NEXUS_WORKER: "external" = jobs run in `nexus worker`, not serve
    extra: dict[str, str] = field(default_factory=dict)
    # -- cache, rate limits, metrics, traces (kernel/cache.py, ratelimit.py, metrics.py) --
    redis_prefix: str = "nexus:"
    rate_limits: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    metrics_token: str | None = None
    otel_endpoint: str | None = None
    # -- outgoing mail (kernel/mail.py) --
    smtp_url: str | None = None  # NEXUS_SMTP_URL: smtp://user:pass@host:port, smtps://… (TLS), ?starttls=1
    mail_from: str = "NEXUS <nexus@localhost>"  # NEXUS_MAIL_FROM
    # NEXUS_PUBLIC_URL: the address people and apps reach this installation at (links in mail,
    # the OpenID Connect issuer, SAML endpoints); unset, it is taken from each request's scheme and Host.
    public_url: str | None = None

    @property
    def dialect(self) -> str:
        return "postgresql" if self.database_url.startswith("postgres") else "sqlite"

    @property
    def sqlite_path(self) -> Path:
        assert self.dialect == "sqlite"
        raw = self.database_url.split(":///", 1)[1]
        return Path(raw)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("NEXUS_DATA_DIR") or "./var").resolve()
        db_url = env.get("NEXUS_DATABASE_URL") or f"sqlite:///{data_dir / 'nexus.db'}"
        scheme = db_url.split(":", 1)[0]
        if scheme in ("postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"):
            parts = urlsplit(db_url)
            if not parts.hostname and "host=" not in (parts.query or ""):
                raise ConfigError(f"NEXUS_DATABASE_URL has no host: {redact_url(db_url)}")
            if not parts.path.strip("/"):
                raise ConfigError(f"NEXUS_DATABASE_URL names no database: {redact_url(db_url)}")
        elif scheme == "sqlite":
            if ":///" not in db_url or db_url.endswith(":///"):
                raise ConfigError(f"NEXUS_DATABASE_URL must look like sqlite:///path/to/file.db, got {db_url!r}")
        else:
            raise ConfigError(
                f"NEXUS_DATABASE_URL must be sqlite:///… or postgresql://…, got scheme {scheme!r} "
                f"({redact_url(db_url)})"
            )
        blob_url = env.get("NEXUS_BLOB_URL") or f"file://{data_dir / 'blobs'}"
        if not blob_url.startswith(("file://", "s3://")):
            raise ConfigError(f"NEXUS_BLOB_URL must be file://… or s3://…, got {redact_url(blob_url)}")
        if blob_url.startswith("s3://"):
            from nexus.kernel.blobs import S3BlobBackend  # checks the bucket and parameters

            S3BlobBackend(blob_url, data_dir / "blob-staging", env)
        redis_url = env.get("NEXUS_REDIS_URL") or None
        if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"NEXUS_REDIS_URL must be redis://…, got {redact_url(redis_url)}")
        nats_url = env.get("NEXUS_NATS_URL") or None
        if nats_url and not nats_url.startswith(("nats://", "tls://")):
            raise ConfigError(f"NEXUS_NATS_URL must be nats://…, got {redact_url(nats_url)}")
        admin_email = env.get("NEXUS_ADMIN_EMAIL") or None
        if admin_email and "@" not in admin_email:
            raise ConfigError(f"NEXUS_ADMIN_EMAIL is not an email address: {admin_email!r}")
        admin_password = env.get("NEXUS_ADMIN_PASSWORD") or None
        if admin_password is not None and len(admin_password) < 8:
            raise ConfigError("NEXUS_ADMIN_PASSWORD must be at least 8 characters")
        secret = env.get("NEXUS_SECRET_KEY") or _load_or_create_secret(data_dir)
        if len(secret) < 32:
            raise ConfigError("NEXUS_SECRET_KEY must be at least 32 characters")
        log_level = (env.get("NEXUS_LOG_LEVEL") or "INFO").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"NEXUS_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {log_level!r}")
        return cls(
            data_dir=data_dir,
            database_url=db_url,
            blob_url=blob_url,
            redis_url=redis_url,
            nats_url=nats_url,
            admin_email=admin_email,
            admin_password=admin_password,
            secret_key=secret,
            max_body_bytes=_int(env, "NEXUS_MAX_BODY_BYTES", 1_048_576, 1024, 1 << 30),
            max_import_bytes=_int(env, "NEXUS_MAX_IMPORT_BYTES", 20_971_520, 1024, 1 << 31),
            max_import_rows=_int(env, "NEXUS_MAX_IMPORT_ROWS", 50_000, 1, 10_000_000),
            max_upload_bytes=_int(env, "NEXUS_MAX_UPLOAD_BYTES", 104_857_600, 1024, 1 << 40),
            access_token_ttl=_int(env, "NEXUS_ACCESS_TOKEN_TTL", 900, 30, 86_400),
            refresh_token_ttl=_int(env, "NEXUS_REFRESH_TOKEN_TTL", 30 * 24 * 3600, 300, 365 * 86_400),
            log_level=log_level,
            db_pool_size=_int(env, "NEXUS_DB_POOL_SIZE", 10, 1, 500),
            nats_stream=_stream(env.get("NEXUS_NATS_STREAM") or "NEXUS"),
            worker_mode=_worker_mode(env.get("NEXUS_WORKER") or "inprocess"),
            redis_prefix=_redis_prefix(env.get("NEXUS_REDIS_PREFIX") or "nexus:"),
            rate_limits=parse_rate_limits(env.get("NEXUS_RATE_LIMITS") or ""),
            metrics_token=_metrics_token(env.get("NEXUS_METRICS_TOKEN") or None),
            otel_endpoint=_otel_endpoint(env.get("NEXUS_OTEL_ENDPOINT") or None),
            smtp_url=_smtp_url(env.get("NEXUS_SMTP_URL") or None),
            mail_from=_mail_from(env.get("NEXUS_MAIL_FROM") or "NEXUS <nexus@localhost>"),
            public_url=_public_url(env.get("NEXUS_PUBLIC_URL") or None),
        )


def _public_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigError(f"NEXUS_PUBLIC_URL must be like https://nexus.example.com, got {url!r}")
    return url.rstrip("/")


def _worker_mode(mode: str) -> str:
    mode = mode.strip().lower()
    if mode not in ("inprocess", "external"):
        raise ConfigError(f"NEXUS_WORKER must be inprocess or external, got {mode!r}")
    return mode


def _stream(name: str) -> str:
    if not name.replace("_", "").replace("-", "").isalnum() or len(name) > 64:
        raise ConfigError(f"NEXUS_NATS_STREAM must be letters, digits, - or _, got {name!r}")
    return name


# -- cache, rate limits, metrics, traces ----------------------------------------------------

# Requests per window (seconds) for each route class; see kernel/ratelimit.py.
DEFAULT_RATE_LIMITS: dict[str, tuple[int, int]] = {
    "read": (1200, 60),
    "write": (300, 60),
    "auth": (20, 60),
    "bulk": (10, 60),
}


def parse_rate_limits(raw: str) -> dict[str, tuple[int, int]]:
    """NEXUS_RATE_LIMITS: `class=REQUESTS/SECONDS,…` over the defaults; `class=off` (or 0)
    lifts one class's limit, and `off` alone lifts them all."""
    limits = dict(DEFAULT_RATE_LIMITS)
    raw = raw.strip()
    if not raw:
        return limits
    if raw.lower() in ("off", "none", "0"):
        return {name: (0, window) for name, (_, window) in limits.items()}
    valid = ", ".join(DEFAULT_RATE_LIMITS)
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = name.strip().lower()
        value = value.strip().lower()
        if not eq or name not in DEFAULT_RATE_LIMITS:
            raise ConfigError(f"NEXUS_RATE_LIMITS: {item!r} must be CLASS=REQUESTS/SECONDS with CLASS one of {valid}")
        if value in ("off", "0"):
            limits[name] = (0, limits[name][1])
            continue
        count, slash, window = value.partition("/")
        try:
            n, w = int(count), int(window) if slash else 60
        except ValueError:
            raise ConfigError(f"NEXUS_RATE_LIMITS: {item!r} must be CLASS=REQUESTS/SECONDS, e.g. read=1200/60") from None
        if not 1 <= n <= 1_000_000_000 or not 1 <= w <= 86_400:
            raise ConfigError(f"NEXUS_RATE_LIMITS: {item!r} needs 1 to 10^9 requests per 1 to 86400 seconds")
        limits[name] = (n, w)
    return limits


def _redis_prefix(prefix: str) -> str:
    if len(prefix) > 64 or any(c.isspace() for c in prefix):
        raise ConfigError(f"NEXUS_REDIS_PREFIX must be at most 64 characters without spaces, got {prefix!r}")
    return prefix


def _metrics_token(token: str | None) -> str | None:
    if token is not None and len(token) < 16:
        raise ConfigError("NEXUS_METRICS_TOKEN must be at least 16 characters")
    return token


def _otel_endpoint(url: str | None) -> str | None:
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"NEXUS_OTEL_ENDPOINT must be http(s)://…, got {redact_url(url)}")
    return url


def _smtp_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(f"NEXUS_SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…, got {redact_url(url)}")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ConfigError(f"NEXUS_SMTP_URL has an invalid port: {redact_url(url)}") from None
    return url


def _mail_from(value: str) -> str:
    from email.utils import parseaddr

    if "@" not in parseaddr(value)[1] or "\n" in value or "\r" in value:
        raise ConfigError(f"NEXUS_MAIL_FROM must be an address like 'NEXUS <nexus@example.com>', got {value!r}")
    return value


def _load_or_create_secret(data_dir: Path) -> str:
    """The embedded default keeps one generated key in the data dir, readable only by its owner."""
    path = data_dir / "secret.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key
