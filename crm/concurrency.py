"""Optimistic concurrency on a lead: a save based on an old version of the lead is refused."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, update
from sqlmodel import Session

from crm.errors import NotFound, StaleEdit
from crm.models import Lead, User


def lock_lead(session: Session, *, lead_id: int, seen_version: int | None = None) -> Lead:
    """Load the lead and claim its row for this transaction, or raise StaleEdit.

    `seen_version` is the version the user had on screen; None means "the version read now".
    The no-op `UPDATE ... WHERE version = :seen` is the check: it waits for a concurrent
    writer (PostgreSQL row lock, SQLite write lock) and then matches no row if that writer
    changed the lead, so two saves based on the same version can't both go through. The
    caller bumps `lead.version` with its change (crm.pipeline.transition does).
    """
    lead = session.get(Lead, lead_id, populate_existing=True)
    if lead is None:
        raise NotFound(f"Lead {lead_id} does not exist.")
    seen = lead.version if seen_version is None else seen_version
    statement = (
        update(Lead)
        .where(Lead.id == lead_id, Lead.version == seen)  # type: ignore[arg-type]
        .values(version=Lead.version)
        .execution_options(synchronize_session=False)
    )
    result = cast(CursorResult, session.execute(statement))  # type: ignore[deprecated]
    if result.rowcount != 1:
        session.refresh(lead)
        raise stale_edit(session, lead)
    session.refresh(lead)
    return lead


def stale_edit(session: Session, lead: Lead) -> StaleEdit:
    """The StaleEdit error naming who last changed `lead` and when."""
    who = None
    if lead.updated_by_id is not None:
        user = session.get(User, lead.updated_by_id)
        who = (user.name or user.email) if user else None
    return StaleEdit(changed_by=who, changed_at=lead.updated_at)


def bump(session: Session, lead: Lead, *, actor_id: int | None, at: datetime) -> None:
    """Record a change to the lead that doesn't move its stage (transition() does its own)."""
    lead.version += 1
    lead.updated_at = at
    lead.updated_by_id = actor_id
    session.add(lead)
