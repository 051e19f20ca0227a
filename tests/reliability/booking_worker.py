"""A coordinator's app process, reduced to its bookings: run in a separate OS process by
test_multiprocess.py (multiprocessing, spawn), booking one consult per slot in step with
another such process through a shared barrier."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from crm import db, scheduling
from crm.access import Actor
from crm.errors import SlotTaken


def book_in_step(
    db_url: str,
    actor: Actor,
    provider_id: int,
    plan: list[tuple[int, datetime]],
    now: datetime,
    barrier: Any,
    results: Any,
) -> None:
    """For each (lead, slot): wait for the other process, then book; report each outcome."""
    engine = db.make_engine(db_url)
    outcomes: list[tuple[str, str, str]] = []
    try:
        for lead_id, slot in plan:
            barrier.wait(60)
            with Session(engine, expire_on_commit=False) as session:
                try:
                    consult = scheduling.book_consult(
                        session=session,
                        actor=actor,
                        lead_id=lead_id,
                        provider_id=provider_id,
                        starts_at=slot,
                        now=now,
                    )
                    session.commit()
                    outcomes.append(("booked", slot.isoformat(), str(consult.id)))
                except SlotTaken as err:
                    session.rollback()
                    outcomes.append(("taken", slot.isoformat(), str(err)))
                except Exception as err:  # noqa: BLE001 - reported to the test
                    session.rollback()
                    outcomes.append(("error", slot.isoformat(), repr(err)))
    finally:
        engine.dispose()
        results.put((actor.id, outcomes))
