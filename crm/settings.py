"""Process settings, read once from environment variables, with defaults that run locally.

Clinic-editable settings (business hours, service areas, ...) live in the database: see
`crm.clinic_settings`. This module holds only what a process needs before it can reach the
database, or what an operator sets per deployment.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = ROOT / "data" / "crm.sqlite3"


@dataclass(frozen=True)
class Settings:
    """Everything the environment may configure, already validated."""

    database_url: str
    timezone: str
    secret_key: str
    base_url: str
    session_idle_minutes: int
    session_max_hours: int
    api_max_body_bytes: int
    api_rate_per_minute: int
    check_email_deliverability: bool

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _int(name: str, default: int, *, minimum: int = 1) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{DEFAULT_DB_PATH}"
    if url.startswith("postgres://") or url.startswith("postgresql://"):
        # The driver we ship is psycopg 3; name it so SQLAlchemy doesn't look for psycopg2.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if not (url.startswith("sqlite:///") or url.startswith("postgresql+psycopg://")):
        raise ConfigError(
            "DATABASE_URL must start with sqlite:/// or postgresql+psycopg://, "
            f"got {url.split('://', 1)[0]!r}"
        )
    return url


def _timezone() -> str:
    name = os.environ.get("CRM_TIMEZONE", "").strip() or "America/New_York"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"CRM_TIMEZONE must be an IANA time zone like America/New_York, got {name!r}"
        ) from None
    return name


def _secret_key(database_url: str) -> str:
    key = os.environ.get("CRM_SECRET_KEY", "").strip()
    if key:
        if len(key) < 32:
            raise ConfigError("CRM_SECRET_KEY must be at least 32 characters long")
        return key
    # No key configured: keep one beside the SQLite file so cookies survive restarts on a
    # single machine. Several processes (PostgreSQL deployments) must set CRM_SECRET_KEY.
    key_file = DEFAULT_DB_PATH.parent / ".secret_key"
    if database_url.startswith("sqlite:///"):
        key_file = Path(database_url.removeprefix("sqlite:///")).parent / ".secret_key"
    try:
        return key_file.read_text().strip()
    except FileNotFoundError:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key


def load_settings() -> Settings:
    """Read and validate the environment; raises ConfigError naming the bad variable."""
    database_url = _database_url()
    return Settings(
        database_url=database_url,
        timezone=_timezone(),
        secret_key=_secret_key(database_url),
        base_url=os.environ.get("CRM_BASE_URL", "http://localhost:8501").rstrip("/"),
        session_idle_minutes=_int("CRM_SESSION_IDLE_MINUTES", 15),
        session_max_hours=_int("CRM_SESSION_MAX_HOURS", 12),
        api_max_body_bytes=_int("CRM_API_MAX_BODY_BYTES", 64 * 1024, minimum=1024),
        api_rate_per_minute=_int("CRM_API_RATE_PER_MINUTE", 600),
        check_email_deliverability=_bool("CRM_CHECK_EMAIL_DELIVERABILITY", False),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
