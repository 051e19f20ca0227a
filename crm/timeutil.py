"""Time helpers: the database stores UTC (aware datetimes); people see the clinic's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Now, as the aware UTC datetime the database stores."""
    return datetime.now(UTC)


def as_utc(value: datetime, tz: str = "UTC") -> datetime:
    """A datetime as aware UTC; a naive value is read as wall time in zone `tz`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(UTC)


def to_local(value: datetime, tz: str) -> datetime:
    """A stored datetime as an aware datetime in the clinic's time zone."""
    return as_utc(value).astimezone(ZoneInfo(tz))


def format_local(value: datetime | None, tz: str, fmt: str = "%a %b %d, %Y %I:%M %p") -> str:
    """A stored datetime as the text staff read, in the clinic's time zone."""
    if value is None:
        return ""
    return to_local(value, tz).strftime(fmt)
