"""Service areas and the service catalogue: clinic data, seeded from DOMAIN.md, editable."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import zipcodes
from sqlmodel import Session, col, select

from crm.models import Service, ServiceArea

# The clinic's own areas (Loudoun County, Virginia). The most specific match wins:
# a listed ZIP code, then a city, then a county.
DEFAULT_AREAS: list[dict[str, list[str] | str]] = [
    {"name": "Ashburn", "cities": ["Ashburn"], "zip_codes": ["20146", "20147", "20148", "20149"]},
    {"name": "Leesburg", "cities": ["Leesburg"], "zip_codes": ["20175", "20176", "20177", "20178"]},
    {"name": "Lansdowne", "cities": ["Lansdowne"], "zip_codes": []},
    {"name": "Loudoun County", "counties": ["Loudoun County, VA"]},
]

DEFAULT_SERVICES: list[str] = [
    "Depression (incl. treatment-resistant)",
    "Anxiety",
    "PTSD",
    "OCD",
    "Bipolar depression",
    "Chronic pain (CRPS, fibromyalgia, neuropathic)",
    "Suicidal thoughts",
    "Substance use",
    "Spravato nasal spray",
    "Not sure yet",
]

OUT_OF_AREA = "Out of area"

# Intake resolves an area and a service for every inquiry; the catalogue changes rarely.
# Reads are kept this long per process and database; a change saved through the settings
# page clears them at commit, other processes see it within this time.
CACHE_SECONDS = 5.0
_cache: dict[tuple[Any, str], tuple[float, Any]] = {}
_cache_lock = threading.Lock()
T = TypeVar("T")


def _cached(session: Session, name: str, load: Callable[[], list[T]]) -> list[T]:
    key = (session.get_bind().engine.url, name)  # a URL is an immutable, hashable tuple
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and now - hit[0] < CACHE_SECONDS:
        return list(hit[1])
    value = load()
    with _cache_lock:
        _cache[key] = (now, tuple(value))
    return list(value)


def invalidate() -> None:
    """Forget cached catalogue reads (called when the clinic edits areas or services)."""
    with _cache_lock:
        _cache.clear()


@dataclass(frozen=True)
class AreaRule:
    """A service area's matching rules, plain data (cached per request, never ORM objects)."""

    id: int
    name: str
    counties: frozenset[str]
    cities: frozenset[str]
    zip_codes: frozenset[str]


def seed_defaults(session: Session) -> None:
    """Insert the default areas and services into an empty catalogue (idempotent)."""
    if session.exec(select(ServiceArea.id).limit(1)).first() is None:
        for order, area in enumerate(DEFAULT_AREAS):
            session.add(
                ServiceArea(
                    name=str(area["name"]),
                    counties=json.dumps(area.get("counties", [])),
                    cities=json.dumps(area.get("cities", [])),
                    zip_codes=json.dumps(area.get("zip_codes", [])),
                    sort_order=order,
                )
            )
    if session.exec(select(Service.id).limit(1)).first() is None:
        for order, name in enumerate(DEFAULT_SERVICES):
            session.add(Service(name=name, sort_order=order))
    session.flush()


def area_rules(session: Session) -> list[AreaRule]:
    """The active service areas with their matching rules."""
    return _cached(session, "area_rules", lambda: _load_area_rules(session))


def _load_area_rules(session: Session) -> list[AreaRule]:
    rows = session.exec(
        select(ServiceArea)
        .where(col(ServiceArea.active).is_(True))
        .order_by(col(ServiceArea.sort_order))
    ).all()
    return [
        AreaRule(
            id=a.id or 0,
            name=a.name,
            counties=frozenset(c.lower() for c in json.loads(a.counties)),
            cities=frozenset(c.lower() for c in json.loads(a.cities)),
            zip_codes=frozenset(json.loads(a.zip_codes)),
        )
        for a in rows
    ]


@lru_cache(maxsize=4096)
def zip_place(zip_code: str) -> tuple[str, str, str] | None:
    """(city, county, state) of a US ZIP code from the offline `zipcodes` data, or None."""
    try:
        matches = zipcodes.matching(zip_code[:5])
    except (ValueError, TypeError):
        return None
    if not matches:
        return None
    m = matches[0]
    return (m.get("city") or "", m.get("county") or "", m.get("state") or "")


def resolve_area(
    rules: list[AreaRule], *, zip_code: str | None, city: str | None = None
) -> AreaRule | None:
    """The service area a ZIP code (or city) falls in, or None for out of area."""
    zip5 = (zip_code or "")[:5]
    for rule in rules:
        if zip5 and zip5 in rule.zip_codes:
            return rule
    place = zip_place(zip5) if zip5 else None
    cities = [c.lower() for c in (city, place[0] if place else None) if c]
    for wanted in cities:
        for rule in rules:
            if wanted in rule.cities:
                return rule
    if place:
        county = f"{place[1]}, {place[2]}".lower()
        for rule in rules:
            if county in rule.counties:
                return rule
    return None


def services(session: Session, *, active_only: bool = True) -> list[tuple[int, str]]:
    """The service catalogue as (id, name), in display order."""
    return _cached(session, f"services:{active_only}", lambda: _load_services(session, active_only))


def _load_services(session: Session, active_only: bool) -> list[tuple[int, str]]:
    query = select(col(Service.id), col(Service.name)).order_by(
        col(Service.sort_order), col(Service.name)
    )
    if active_only:
        query = query.where(col(Service.active).is_(True))
    return [(int(i or 0), n) for i, n in session.exec(query).all()]


def areas(session: Session) -> list[tuple[int, str]]:
    """The service areas as (id, name), in display order."""
    query = select(col(ServiceArea.id), col(ServiceArea.name)).order_by(col(ServiceArea.sort_order))
    return [(int(i or 0), n) for i, n in session.exec(query).all()]
