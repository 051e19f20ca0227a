"""Storage on both backends: pragmas, relations, the stage log, double-booking refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, exc, text
from sqlmodel import Session, select

from crm import catalog
from crm.enums import Stage
from crm.models import Consult, Lead, ServiceArea, StageChange
from crm.pipeline import transition
from tests.factories import make_contact, make_lead, make_user


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert c.execute(text("PRAGMA busy_timeout")).scalar() == 10000


def test_defaults_are_seeded_once(engine: Engine) -> None:
    from crm import db

    db._ready.discard(str(engine.url))
    db.ensure_ready(engine)
    with Session(engine) as s:
        names = [a.name for a in s.exec(select(ServiceArea).order_by(ServiceArea.sort_order))]
        assert names == ["Ashburn", "Leesburg", "Lansdowne", "Loudoun County"]
        assert len(catalog.services(s)) == len(catalog.DEFAULT_SERVICES)


def test_a_contact_can_have_several_leads_and_stage_history_persists(session: Session) -> None:
    contact = make_contact(session)
    first = make_lead(session, contact=contact, created_at=datetime(2025, 1, 5, 15, 0, tzinfo=UTC))
    transition(session=session, lead=first, to=Stage.LOST, actor_id=None, reason="Cost")
    session.commit()
    second = make_lead(session, contact=contact)
    leads = session.exec(select(Lead).where(Lead.contact_id == contact.id).order_by(Lead.id)).all()
    assert [lead.id for lead in leads] == [first.id, second.id]
    log = session.exec(select(StageChange).where(StageChange.lead_id == first.id)).all()
    assert [(c.from_stage, c.to_stage, c.reason) for c in log] == [("new", "lost", "Cost")]


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(Lead(reference="X1", contact_id=999999, source="web_form", stage="new"))
    with pytest.raises(exc.IntegrityError):
        session.commit()


def test_database_refuses_a_second_consult_in_the_same_provider_slot(session: Session) -> None:
    provider = make_user(session, is_provider=True)
    lead_a, lead_b = make_lead(session), make_lead(session)
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    for lead in (lead_a, lead_b):
        session.add(Consult(lead_id=lead.id, provider_id=provider.id, starts_at=at, ends_at=at + timedelta(minutes=15)))
        if lead is lead_a:
            session.commit()
    with pytest.raises(exc.IntegrityError):
        session.commit()
    session.rollback()
    # A cancelled consult frees the slot.
    first = session.exec(select(Consult)).one()
    first.status = "cancelled"
    session.add(first)
    session.commit()
    session.add(Consult(lead_id=lead_b.id, provider_id=provider.id, starts_at=at, ends_at=at + timedelta(minutes=15)))
    session.commit()


def test_timestamps_round_trip_as_aware_utc(session: Session) -> None:
    at = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # the morning US clocks spring forward, in UTC
    lead = make_lead(session, created_at=at)
    session.expire_all()
    stored = session.get(Lead, lead.id)
    assert stored is not None and stored.created_at == at and stored.created_at.utcoffset() == timedelta(0)
