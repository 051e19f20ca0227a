"""Speed to lead: the first-response deadline, counted only within the clinic's business hours.

Business hours are clinic wall-clock times (`ClinicConfig.business_hours`, e.g. {"mon":
["08:00", "18:00"], "sat": None}) in `ClinicConfig.timezone`. Every window is turned into
aware UTC instants before any arithmetic, so a minute is a real elapsed minute on the days
the clocks change (zoneinfo resolves the local times).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from crm.clinic_settings import WEEKDAYS, ClinicConfig
from crm.timeutil import as_utc

__all__ = [
    "business_minutes_between",
    "describe_hours",
    "describe_first_response",
    "first_response_due",
    "windows",
]

# Longest run of closed days we look through before giving up (a clinic closed for a year
# is a configuration mistake; the target then falls back to plain elapsed minutes).
_MAX_DAYS = 400


def _parse(value: str) -> tuple[time, int]:
    """ "HH:MM" as a time plus a day offset ("24:00" is midnight of the next day)."""
    hours, minutes = (int(part) for part in value.strip().split(":", 1))
    if (hours, minutes) == (24, 0):
        return time(0, 0), 1
    return time(hours, minutes), 0


def _day_window(day: date, config: ClinicConfig, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """The business window of one local date as aware UTC (open, close), or None when closed."""
    hours = config.business_hours.get(WEEKDAYS[day.weekday()])
    if not hours or len(hours) != 2:
        return None
    try:
        (open_t, open_off), (close_t, close_off) = _parse(hours[0]), _parse(hours[1])
    except ValueError:
        return None
    opens = datetime.combine(day + timedelta(days=open_off), open_t, tzinfo=tz).astimezone(UTC)
    closes = datetime.combine(day + timedelta(days=close_off), close_t, tzinfo=tz).astimezone(UTC)
    return (opens, closes) if closes > opens else None


def windows(
    start: datetime, config: ClinicConfig, *, days: int = _MAX_DAYS
) -> Iterator[tuple[datetime, datetime]]:
    """Business windows (aware UTC) that end after `start`, in order, for up to `days` days."""
    tz = ZoneInfo(config.timezone)
    start = as_utc(start)
    first = start.astimezone(tz).date() - timedelta(days=1)  # a window past midnight may still run
    for offset in range(days + 1):
        window = _day_window(first + timedelta(days=offset), config, tz)
        if window and window[1] > start:
            yield window


def first_response_due(received_at: datetime, config: ClinicConfig) -> datetime:
    """When the first response is due: `first_response_minutes` of business time after receipt."""
    received = as_utc(received_at, config.timezone)
    remaining = timedelta(minutes=max(0, config.first_response_minutes))
    for opens, closes in windows(received, config):
        begin = max(opens, received)
        if begin + remaining <= closes:
            return begin + remaining
        remaining -= closes - begin
    # No business hours configured at all: count plain elapsed time rather than never.
    return received + timedelta(minutes=max(0, config.first_response_minutes))


def business_minutes_between(start: datetime, end: datetime, config: ClinicConfig) -> float:
    """Business minutes from start to end (negative when end is earlier): time left, or how late."""
    start, end = as_utc(start, config.timezone), as_utc(end, config.timezone)
    if end < start:
        return -business_minutes_between(end, start, config)
    days = (end - start).days + 2
    total = timedelta()
    for opens, closes in windows(start, config, days=days):
        if opens >= end:
            break
        total += min(closes, end) - max(opens, start)
    return total.total_seconds() / 60


def describe_hours(config: ClinicConfig) -> str:
    """Business hours as people read them: "Mon–Fri 8:00 AM–6:00 PM"."""
    groups: list[tuple[list[str], list[str] | None]] = []
    for day in WEEKDAYS:
        hours = config.business_hours.get(day) or None
        if groups and groups[-1][1] == hours:
            groups[-1][0].append(day)
        else:
            groups.append(([day], hours))
    parts = []
    for days, hours in groups:
        if not hours:
            continue
        span = (
            days[0].capitalize()
            if len(days) == 1
            else f"{days[0].capitalize()}–{days[-1].capitalize()}"
        )
        parts.append(f"{span} {_clock(hours[0])}–{_clock(hours[1])}")
    return ", ".join(parts)


def describe_first_response(config: ClinicConfig) -> str:
    """The clinic's stated response time: "within 15 minutes during business hours (Mon–Fri ...)"."""
    minutes = config.first_response_minutes
    if minutes % 60 == 0 and minutes >= 60:
        amount = f"{minutes // 60} hour" + ("s" if minutes >= 120 else "")
    else:
        amount = f"{minutes} minutes"
    hours = describe_hours(config)
    if not hours:
        return f"within {amount}"
    return f"within {amount} during business hours ({hours})"


def _clock(value: str) -> str:
    try:
        parsed, offset = _parse(value)
    except ValueError:
        return value
    if offset:
        return "midnight"
    return parsed.strftime("%I:%M %p").lstrip("0")
