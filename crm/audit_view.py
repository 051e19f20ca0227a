"""Reading the audit trail: filter by person, lead, action and period; page in SQL; export.

Administrators only (Perm.AUDIT). Reading never changes the trail; exporting it is itself
recorded ("export.csv" with what="audit").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from crm import export
from crm.access import Actor, Perm, require
from crm.errors import NotFound
from crm.models import AuditEvent, Lead, User
from crm.timeutil import format_local

Q = TypeVar("Q", bound=Any)  # a select() of any shape

EXPORT_LIMIT = 100_000  # rows in one CSV; narrow the filters for more


# What the admin asked to see; dates are clinic-local days, both ends included.
@dataclass(frozen=True)
class AuditFilter:
    actor_id: int | None = None
    lead_id: int | None = None
    action: str | None = None  # "lead.view", or a family like "auth." / "lead."
    start: date | None = None
    end: date | None = None
    tz: str = "UTC"

    def describe(self) -> dict[str, Any]:
        return {
            k: (v.isoformat() if isinstance(v, date) else v)
            for k, v in asdict(self).items()
            if v is not None
        }


def _where(query: Q, f: AuditFilter) -> Q:
    if f.actor_id is not None:
        query = query.where(AuditEvent.actor_id == f.actor_id)
    if f.lead_id is not None:
        query = query.where(AuditEvent.lead_id == f.lead_id)
    if f.action:
        if f.action.endswith("."):
            query = query.where(col(AuditEvent.action).startswith(f.action, autoescape=True))
        else:
            query = query.where(AuditEvent.action == f.action)
    zone = ZoneInfo(f.tz)
    if f.start is not None:
        query = query.where(AuditEvent.at >= datetime.combine(f.start, time(), zone))
    if f.end is not None:
        query = query.where(
            AuditEvent.at < datetime.combine(f.end + timedelta(days=1), time(), zone)
        )
    return query


def count(*, session: Session, actor: Actor, filters: AuditFilter) -> int:
    """How many events match."""
    require(actor, Perm.AUDIT)
    return int(session.exec(_where(select(func.count()).select_from(AuditEvent), filters)).one())


def _rows(
    session: Session, filters: AuditFilter, *, offset: int, limit: int
) -> list[dict[str, Any]]:
    query = (
        _where(
            select(AuditEvent, User.email, User.name).outerjoin(
                User, col(User.id) == AuditEvent.actor_id
            ),
            filters,
        )
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .offset(offset)
        .limit(limit)
    )
    rows = []
    for event, email, name in session.exec(query).all():
        who = (
            name
            or email
            or event.actor_email
            or ("system" if event.actor_id is None else f"user {event.actor_id}")
        )
        rows.append(
            {
                "id": event.id,
                "when": format_local(event.at, filters.tz, "%Y-%m-%d %H:%M:%S"),
                "person": who,
                "email": email or event.actor_email or "",
                "action": event.action,
                "lead": event.lead_id,
                "record": f"{event.entity} {event.entity_id}" if event.entity else "",
                "details": _details(event.details),
                "address": event.ip or "",
            }
        )
    return rows


def _details(raw: str) -> str:
    """The details JSON as one readable line (kept as text: it may hold what a lead typed)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return "" if value in ({}, None) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def page(
    *, session: Session, actor: Actor, filters: AuditFilter, number: int = 1, per_page: int = 50
) -> list[dict[str, Any]]:
    """One page of matching events, newest first (`number` is 1-based)."""
    require(actor, Perm.AUDIT)
    per_page = max(1, min(per_page, 500))
    return _rows(session, filters, offset=(max(1, number) - 1) * per_page, limit=per_page)


def actions(*, session: Session, actor: Actor) -> list[str]:
    """Every action name recorded so far, for the filter's choices."""
    require(actor, Perm.AUDIT)
    return [
        str(a)
        for a in session.exec(
            select(AuditEvent.action).distinct().order_by(AuditEvent.action)
        ).all()
    ]


def lead_id_for(*, session: Session, actor: Actor, text: str) -> int | None:
    """The lead a typed id or reference names (None when empty; NotFound when unknown)."""
    require(actor, Perm.AUDIT)
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    found = session.exec(select(Lead.id).where(func.upper(Lead.reference) == text.upper())).first()
    if found is None:
        raise NotFound(f"No lead with the reference {text}.")
    return int(found)


def people(*, session: Session, actor: Actor) -> list[tuple[int, str]]:
    """Every staff account as (id, label) for the person filter, disabled ones included."""
    require(actor, Perm.AUDIT)
    rows = session.exec(select(User.id, User.name, User.email).order_by(User.email)).all()
    return [(int(i or 0), f"{n} <{e}>" if n else e) for i, n, e in rows]


def export_csv(*, session: Session, actor: Actor, filters: AuditFilter) -> bytes:
    """The matching events as spreadsheet-safe CSV; the export is recorded in the trail."""
    require(actor, Perm.AUDIT)
    rows = _rows(session, filters, offset=0, limit=EXPORT_LIMIT)
    export.record_download(
        session=session, actor=actor, what="audit", rows=len(rows), filters=filters.describe()
    )
    return export.to_csv(rows) if rows else (",".join(_COLUMNS) + "\r\n").encode()


_COLUMNS = ("id", "when", "person", "email", "action", "lead", "record", "details", "address")
