"""API keys for the clinic website's form posts: created once, stored only as a hash.

A key is 32 random bytes (URL-safe base64) behind a short prefix, so a SHA-256 of it is a
safe stored form: there is nothing to brute-force, so a slow password hash would only slow
every request. The prefix (first characters) is kept in clear to tell keys apart in lists.
Lookups go through the unique hash index; the final comparison is constant-time anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import Session, col, select

from crm import audit
from crm.errors import CRMError, NotFound
from crm.models import ApiKey
from crm.timeutil import utcnow

__all__ = [
    "ApiKeyInfo",
    "DuplicateKeyName",
    "InvalidOrigin",
    "authenticate",
    "create_key",
    "hash_key",
    "list_keys",
    "normalize_origin",
    "revoke_key",
    "touch",
]

KEY_PREFIX = "crm_"
NAME_MAX = 80
# last_used_at is a "still in use?" hint for the admin, not a log: write it at most this
# often per key so a busy form doesn't turn every submission into an extra row update.
TOUCH_EVERY = timedelta(minutes=1)


class DuplicateKeyName(CRMError):
    """An API key with this name already exists."""


class InvalidOrigin(CRMError):
    """An allowed origin must look like https://www.example.com (scheme and host only)."""


# What the API needs to know about the key a request presented (plain data, no ORM object).
@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    name: str
    allowed_origins: frozenset[str]
    last_used_at: datetime | None


def hash_key(key: str) -> str:
    """The stored form of a key (hex SHA-256)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def normalize_origin(value: str) -> str:
    """An origin as browsers send it: "https://example.com[:port]", lower-case, no path."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as err:
        raise InvalidOrigin(f"Not a valid origin: {value!r}") from err
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidOrigin(f"An origin needs http:// or https:// and a host: {value!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise InvalidOrigin(f"An origin is scheme and host only, no path: {value!r}")
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}[parts.scheme]
    suffix = f":{port}" if port is not None and port != default_port else ""
    return f"{parts.scheme}://{host}{suffix}"


def create_key(
    *, session: Session, name: str, allowed_origins: list[str], actor_id: int | None
) -> str:
    """Create a key named `name` and return its plaintext (shown once, never stored)."""
    clean_name = " ".join(name.split())
    if not clean_name or len(clean_name) > NAME_MAX:
        raise CRMError(f"An API key name needs 1 to {NAME_MAX} characters")
    origins = sorted({normalize_origin(o) for o in allowed_origins if o.strip()})
    if session.exec(select(ApiKey.id).where(ApiKey.name == clean_name)).first() is not None:
        raise DuplicateKeyName(f"An API key named {clean_name!r} already exists")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=clean_name,
        key_hash=hash_key(key),
        key_prefix=key[:12],
        allowed_origins=" ".join(origins),
        created_by_id=actor_id,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action="apikey.create",
        entity="apikey",
        entity_id=row.id,
        details={"name": clean_name, "allowed_origins": origins, "prefix": row.key_prefix},
    )
    return key


def revoke_key(*, session: Session, name: str, actor_id: int | None) -> None:
    """Refuse every further request made with the key named `name`."""
    row = session.exec(select(ApiKey).where(ApiKey.name == " ".join(name.split()))).first()
    if row is None:
        raise NotFound(f"No API key named {name!r}")
    if row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    session.add(row)
    audit.record(
        session,
        actor_id=actor_id,
        action="apikey.revoke",
        entity="apikey",
        entity_id=row.id,
        details={"name": row.name},
    )


def list_keys(*, session: Session) -> list[dict[str, Any]]:
    """Every key (revoked ones too) as plain rows for a table; never the hash."""
    rows = session.exec(select(ApiKey).order_by(ApiKey.name)).all()
    return [
        {
            "name": r.name,
            "prefix": r.key_prefix,
            "allowed_origins": r.allowed_origins.split(),
            "created_at": r.created_at,
            "last_used_at": r.last_used_at,
            "revoked_at": r.revoked_at,
            "active": r.revoked_at is None,
        }
        for r in rows
    ]


def authenticate(*, session: Session, key: str) -> ApiKeyInfo | None:
    """The active key matching `key`, or None (unknown, malformed or revoked)."""
    if not key or len(key) > 200:
        return None
    wanted = hash_key(key)
    # Plain columns, not the ORM entity: this runs on every API request.
    row = session.execute(
        sa_select(
            col(ApiKey.id),
            col(ApiKey.name),
            col(ApiKey.key_hash),
            col(ApiKey.allowed_origins),
            col(ApiKey.last_used_at),
        )
        .where(col(ApiKey.key_hash) == wanted)
        .where(col(ApiKey.revoked_at).is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, wanted):
        return None
    return ApiKeyInfo(
        id=int(row.id),
        name=row.name,
        allowed_origins=frozenset(row.allowed_origins.split()),
        last_used_at=row.last_used_at,
    )


def touch(*, session: Session, key: ApiKeyInfo, now: datetime | None = None) -> None:
    """Record that `key` was used (at most once per TOUCH_EVERY; the caller commits)."""
    now = now or utcnow()
    last = key.last_used_at
    if last is not None and last.tzinfo is None:  # SQLite hands back naive UTC
        last = last.replace(tzinfo=now.tzinfo)
    if last is not None and now - last < TOUCH_EVERY:
        return
    session.execute(update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_at=now))


def active_origins(*, session: Session) -> frozenset[str]:
    """Every origin any active key allows (what a CORS preflight may be answered for)."""
    rows = session.exec(
        select(ApiKey.allowed_origins).where(ApiKey.revoked_at == None)  # noqa: E711
    ).all()
    return frozenset(o for row in rows for o in row.split())
