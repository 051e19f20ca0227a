"""What the clinic-settings page changes: validated settings, service areas, services, API keys.

Each function checks the administrator's permission, validates with messages a person can
act on (SettingsInvalid), and audits the change; the caller commits. Changes apply on the next
script run: nothing here is cached.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import time
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import event, func
from sqlmodel import Session, col, select

from crm import apikeys, audit, catalog, clinic_settings
from crm.access import Actor, Perm, require
from crm.clinic_settings import WEEKDAYS, ClinicConfig
from crm.errors import CRMError, NotFound
from crm.models import Service, ServiceArea


class SettingsInvalid(CRMError):
    """A setting's value can't be used; the message says which and why."""


# --- Clinic settings -------------------------------------------------------------------------

_INT_LIMITS: dict[str, tuple[int, int, str]] = {
    "first_response_minutes": (1, 24 * 60, "The first-response target"),
    "consult_slot_minutes": (5, 120, "The consult slot length"),
    "infusion_series_length": (1, 30, "The planned infusion series length"),
    "infusion_duration_minutes": (15, 480, "The infusion length"),
    "smtp_port": (1, 65535, "The SMTP port"),
}
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _reasons(key: str, value: Any) -> list[str]:
    label = "lost" if key == "lost_reasons" else "not-eligible"
    items = [" ".join(str(v).split()) for v in value if str(v).strip()]
    if not items:
        raise SettingsInvalid(f"Keep at least one {label} reason.")
    if len({i.lower() for i in items}) != len(items):
        raise SettingsInvalid(f"A {label} reason is listed twice.")
    if any(len(i) > 200 for i in items):
        raise SettingsInvalid(f"A {label} reason must be at most 200 characters long.")
    return items


def _hours(value: Any) -> dict[str, list[str] | None]:
    if not isinstance(value, dict) or set(value) != set(WEEKDAYS):
        raise SettingsInvalid("Business hours need an entry for every day of the week.")
    cleaned: dict[str, list[str] | None] = {}
    for day in WEEKDAYS:
        span = value[day]
        if span is None:
            cleaned[day] = None
            continue
        opens, closes = (str(t) for t in span)
        if not (_HHMM.match(opens) and _HHMM.match(closes)):
            raise SettingsInvalid(f"Business hours on {day.title()} must be written as HH:MM.")
        if opens >= closes:
            raise SettingsInvalid(f"On {day.title()} the clinic must close after it opens.")
        cleaned[day] = [opens, closes]
    if all(v is None for v in cleaned.values()):
        raise SettingsInvalid("The clinic must be open at least one day a week.")
    return cleaned


def _email(value: Any, label: str) -> str:
    text = str(value).strip()
    if not text:
        return ""
    try:
        return validate_email(text, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as err:
        raise SettingsInvalid(f"{label} is not a valid email address: {err}") from None


def _url(value: Any) -> str:
    text = str(value).strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in text):
        raise SettingsInvalid("The thank-you URL must be a full web address starting with https://")
    return text


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes cleaned up, or SettingsInvalid naming the first bad value."""
    known = {f for f in ClinicConfig.__dataclass_fields__}
    unknown = set(changes) - known
    if unknown:
        raise SettingsInvalid(f"Unknown setting(s): {', '.join(sorted(unknown))}")
    cleaned: dict[str, Any] = {}
    for key, value in changes.items():
        if key in _INT_LIMITS:
            low, high, label = _INT_LIMITS[key]
            try:
                number = int(value)
            except (TypeError, ValueError):
                raise SettingsInvalid(f"{label} must be a whole number.") from None
            if not low <= number <= high:
                raise SettingsInvalid(f"{label} must be between {low} and {high}.")
            cleaned[key] = number
        elif key == "timezone":
            try:
                ZoneInfo(str(value))
            except (ZoneInfoNotFoundError, ValueError):
                raise SettingsInvalid(
                    f"{value!r} is not a time zone; pick one like America/New_York."
                ) from None
            cleaned[key] = str(value)
        elif key in ("lost_reasons", "not_eligible_reasons"):
            cleaned[key] = _reasons(key, value)
        elif key == "rooms":
            rooms = [" ".join(str(r).split()) for r in value if str(r).strip()]
            if not rooms:
                raise SettingsInvalid("Keep at least one infusion room or chair.")
            cleaned[key] = rooms
        elif key == "business_hours":
            cleaned[key] = _hours(value)
        elif key in ("oncall_email", "smtp_from"):
            cleaned[key] = _email(
                value, "The on-call email" if key == "oncall_email" else "The sender address"
            )
        elif key == "thank_you_url":
            cleaned[key] = _url(value)
        elif key == "smtp_host":
            host = str(value).strip()
            if host and not re.fullmatch(r"[A-Za-z0-9.\-]+", host):
                raise SettingsInvalid("The SMTP server must be a host name like smtp.example.com.")
            cleaned[key] = host
        elif key in ("round_robin", "smtp_starttls"):
            cleaned[key] = bool(value)
        else:
            cleaned[key] = str(value)
    return cleaned


def update_settings(*, session: Session, actor: Actor, changes: dict[str, Any]) -> ClinicConfig:
    """Validate and store settings (audited by clinic_settings.save, secrets masked)."""
    require(actor, Perm.SETTINGS)
    return clinic_settings.save(session, actor_id=actor.id, changes=validate(changes))


def view_settings(*, session: Session, actor: Actor) -> ClinicConfig:
    """The settings as the admin page shows them (the SMTP password never leaves the server)."""
    require(actor, Perm.SETTINGS)
    config = clinic_settings.load(session)
    config.smtp_password = "********" if config.smtp_password else ""
    return config


# --- Service areas and services --------------------------------------------------------------


# A service area as the settings page edits it (lists, not JSON).
@dataclass(frozen=True)
class AreaRow:
    id: int
    name: str
    counties: list[str]
    cities: list[str]
    zip_codes: list[str]
    active: bool
    sort_order: int


def _clean_list(values: list[str]) -> list[str]:
    seen: dict[str, str] = {}
    for v in values:
        text = " ".join(v.split())
        if text and text.lower() not in seen:
            seen[text.lower()] = text
    return list(seen.values())


def list_areas(*, session: Session, actor: Actor) -> list[AreaRow]:
    require(actor, Perm.SETTINGS)
    rows = session.exec(
        select(ServiceArea).order_by(col(ServiceArea.sort_order), col(ServiceArea.name))
    ).all()
    return [
        AreaRow(
            a.id or 0,
            a.name,
            json.loads(a.counties),
            json.loads(a.cities),
            json.loads(a.zip_codes),
            a.active,
            a.sort_order,
        )
        for a in rows
    ]


def save_area(
    *,
    session: Session,
    actor: Actor,
    area_id: int | None,
    name: str,
    counties: list[str],
    cities: list[str],
    zip_codes: list[str],
    active: bool = True,
    sort_order: int = 0,
) -> int:
    """Create (area_id None) or change a service area; returns its id."""
    require(actor, Perm.SETTINGS)
    name = " ".join(name.split())
    if not name or len(name) > 120:
        raise SettingsInvalid("A service area needs a name of 1 to 120 characters.")
    counties, cities, zips = _clean_list(counties), _clean_list(cities), _clean_list(zip_codes)
    bad_zip = [z for z in zips if not re.fullmatch(r"\d{5}", z)]
    if bad_zip:
        raise SettingsInvalid(f"ZIP codes are five digits: {', '.join(bad_zip)}")
    bad_county = [c for c in counties if not re.fullmatch(r".+, [A-Za-z]{2}", c)]
    if bad_county:
        raise SettingsInvalid(
            f"Write counties with their state, like 'Loudoun County, VA': {', '.join(bad_county)}"
        )
    if active and not (counties or cities or zips):
        raise SettingsInvalid("An active service area needs at least one county, city or ZIP code.")
    clash = session.exec(
        select(ServiceArea.id).where(
            func.lower(ServiceArea.name) == name.lower(), ServiceArea.id != (area_id or 0)
        )
    ).first()
    if clash is not None:
        raise SettingsInvalid(f"A service area named {name} already exists.")
    values = {
        "name": name,
        "counties": json.dumps(counties),
        "cities": json.dumps(cities),
        "zip_codes": json.dumps(zips),
        "active": bool(active),
        "sort_order": int(sort_order),
    }
    return _save_row(session, actor, ServiceArea, area_id, values, kind="area", what="service area")


CatalogRow = TypeVar("CatalogRow", ServiceArea, Service)


def _save_row(
    session: Session,
    actor: Actor,
    model: type[CatalogRow],
    row_id: int | None,
    values: dict[str, Any],
    *,
    kind: str,
    what: str,
) -> int:
    """Create (row_id None) or change one catalogue row and audit the fields that changed."""
    row = model(name=values["name"]) if row_id is None else session.get(model, row_id)
    if row is None:
        raise NotFound(f"No such {what}.")
    before = {k: getattr(row, k) for k in values} if row_id is not None else {}
    for key, value in values.items():
        setattr(row, key, value)
    session.add(row)
    session.flush()
    # Intake caches the catalogue; drop it now and again once the change is committed.
    catalog.invalidate()
    for moment in ("after_commit", "after_rollback"):
        event.listen(session, moment, lambda _s: catalog.invalidate(), once=True)
    changed = audit.diff(before, values)
    if changed:
        audit.record(
            session,
            actor_id=actor.id,
            action=f"{kind}.create" if row_id is None else f"{kind}.update",
            entity=str(model.__tablename__),
            entity_id=row.id,
            details=changed,
        )
    return row.id or 0


# A service of the catalogue as the settings page edits it.
@dataclass(frozen=True)
class ServiceRow:
    id: int
    name: str
    description: str
    active: bool
    sort_order: int


def list_services(*, session: Session, actor: Actor) -> list[ServiceRow]:
    require(actor, Perm.SETTINGS)
    rows = session.exec(select(Service).order_by(col(Service.sort_order), col(Service.name))).all()
    return [ServiceRow(s.id or 0, s.name, s.description, s.active, s.sort_order) for s in rows]


def save_service(
    *,
    session: Session,
    actor: Actor,
    service_id: int | None,
    name: str,
    description: str = "",
    active: bool = True,
    sort_order: int = 0,
) -> int:
    """Create (service_id None) or change a service of the catalogue; returns its id."""
    require(actor, Perm.SETTINGS)
    name = " ".join(name.split())
    if not name or len(name) > 120:
        raise SettingsInvalid("A service needs a name of 1 to 120 characters.")
    description = description.strip()
    if len(description) > 500:
        raise SettingsInvalid("A service's description must be at most 500 characters long.")
    clash = session.exec(
        select(Service.id).where(
            func.lower(Service.name) == name.lower(), Service.id != (service_id or 0)
        )
    ).first()
    if clash is not None:
        raise SettingsInvalid(f"A service named {name} already exists.")
    values = {
        "name": name,
        "description": description,
        "active": bool(active),
        "sort_order": int(sort_order),
    }
    return _save_row(session, actor, Service, service_id, values, kind="service", what="service")


# --- API keys (the website's form posts) -----------------------------------------------------


def list_api_keys(*, session: Session, actor: Actor) -> list[dict[str, Any]]:
    require(actor, Perm.API_KEYS)
    return apikeys.list_keys(session=session)


def create_api_key(*, session: Session, actor: Actor, name: str, allowed_origins: list[str]) -> str:
    """A new key's plaintext, to show once."""
    require(actor, Perm.API_KEYS)
    return apikeys.create_key(
        session=session, name=name, allowed_origins=allowed_origins, actor_id=actor.id
    )


def revoke_api_key(*, session: Session, actor: Actor, name: str) -> None:
    require(actor, Perm.API_KEYS)
    apikeys.revoke_key(session=session, name=name, actor_id=actor.id)


def parse_time(text: str) -> time:
    """ "08:30" as a time (SettingsInvalid otherwise)."""
    if not _HHMM.match(text.strip()):
        raise SettingsInvalid(f"{text!r} is not a time like 08:30.")
    hours, minutes = text.strip().split(":")
    return time(int(hours), int(minutes))


def parse_windows(text: str) -> list[tuple[int, time, time]]:
    """Weekly availability typed one window per line ("mon 09:00-12:00") as (weekday, start, end)."""
    windows: list[tuple[int, time, time]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = re.fullmatch(
            r"([A-Za-z]{3})[A-Za-z]*\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})", line
        )
        if not match or match.group(1).lower() not in WEEKDAYS:
            raise SettingsInvalid(
                f"Line {number}: write a day and hours like 'mon 09:00-12:00', got {line!r}."
            )
        day = WEEKDAYS.index(match.group(1).lower())
        start, end = (parse_time(t.zfill(5)) for t in match.group(2, 3))
        if start >= end:
            raise SettingsInvalid(f"Line {number}: the window must end after it starts.")
        windows.append((day, start, end))
    return windows
