"""Clinic settings stored in the database: they change without a restart and are audited."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlmodel import Session, select

from crm import audit
from crm.models import ClinicSetting
from crm.settings import get_settings
from crm.timeutil import utcnow

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _default_hours() -> dict[str, list[str] | None]:
    hours: dict[str, list[str] | None] = {d: ["08:00", "18:00"] for d in WEEKDAYS[:5]}
    hours.update({"sat": None, "sun": None})
    return hours


# Every clinic setting with its default; the admin page edits these.
@dataclass
class ClinicConfig:
    timezone: str = field(default_factory=lambda: get_settings().timezone)
    first_response_minutes: int = 15
    business_hours: dict[str, list[str] | None] = field(default_factory=_default_hours)
    consult_slot_minutes: int = 15
    infusion_series_length: int = 6
    infusion_duration_minutes: int = 60
    rooms: list[str] = field(default_factory=lambda: ["Chair 1", "Chair 2"])
    lost_reasons: list[str] = field(
        default_factory=lambda: [
            "Unreachable",
            "Not interested",
            "Cost",
            "Chose another provider",
            "Out of area",
            "Other",
        ]
    )
    not_eligible_reasons: list[str] = field(
        default_factory=lambda: [
            "Pregnancy",
            "Substance use history",
            "Cardiovascular disease",
            "Uncontrolled hypertension",
            "Psychosis or schizophrenia history",
            "Liver or cardiac condition",
            "Medication interaction",
            "No driver available",
            "Other",
        ]
    )
    round_robin: bool = False
    oncall_email: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    thank_you_url: str = ""


SECRET_KEYS = frozenset({"smtp_password"})


def load(session: Session) -> ClinicConfig:
    """The clinic's settings: stored values over the defaults."""
    config = ClinicConfig()
    known = {f.name for f in fields(ClinicConfig)}
    for row in session.exec(select(ClinicSetting)).all():
        if row.key in known:
            setattr(config, row.key, json.loads(row.value))
    return config


def save(session: Session, *, actor_id: int | None, changes: dict[str, Any]) -> ClinicConfig:
    """Store changed settings and audit each before/after (secrets masked)."""
    current = load(session)
    known = {f.name for f in fields(ClinicConfig)}
    unknown = set(changes) - known
    if unknown:
        raise KeyError(f"Unknown clinic setting(s): {', '.join(sorted(unknown))}")
    before = asdict(current)
    changed = audit.diff(before, changes)
    now = utcnow()
    for key in changed:
        row = session.get(ClinicSetting, key)
        value = json.dumps(changes[key])
        if row is None:
            row = ClinicSetting(key=key, value=value)
        row.value = value
        row.updated_at = now
        row.updated_by_id = actor_id
        session.add(row)
        setattr(current, key, changes[key])
    if changed:
        masked = {k: (["***", "***"] if k in SECRET_KEYS else v) for k, v in changed.items()}
        audit.record(session, actor_id=actor_id, action="settings.update", details=masked)
    return current
