"""The append-only audit trail: every view, change and export of a lead, every login."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from crm.models import AuditEvent
from crm.timeutil import utcnow


def record(
    session: Session,
    *,
    actor_id: int | None,
    action: str,
    lead_id: int | None = None,
    entity: str | None = None,
    entity_id: str | int | None = None,
    details: dict[str, Any] | None = None,
    actor_email: str | None = None,
    ip: str | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Add one audit event to the caller's transaction (committed with the change it records).

    `action` is a dotted name such as "lead.view", "lead.update", "lead.stage", "export.csv",
    "auth.login"; `details` holds before/after values as {"field": [before, after]}.
    """
    event = AuditEvent(
        at=at or utcnow(),
        actor_id=actor_id,
        actor_email=actor_email,
        action=action,
        lead_id=lead_id,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        details=json.dumps(details or {}, default=str, ensure_ascii=False),
        ip=ip,
    )
    session.add(event)
    return event


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """The fields whose value changed, as {"field": [before, after]}."""
    return {k: [before.get(k), v] for k, v in after.items() if before.get(k) != v}
