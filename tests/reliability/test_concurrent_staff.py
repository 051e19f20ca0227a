"""Concurrent staff: two sessions act on the same lead, or book the same consult slot, at the
same moment (two threads, each with its own database session, as two Streamlit sessions
are). Exactly one wins, the other gets a clear refusal, nothing is half-written. Each race
runs ROUNDS times on both backends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from crm import clinic_settings, leads, scheduling
from crm.access import Actor
from crm.enums import Role, Stage
from crm.errors import SlotTaken, StaleEdit
from crm.models import AuditEvent, Consult, Contact, ContactAttempt, Lead, StageChange
from crm.timeutil import as_utc
from tests.factories import actor_of, make_lead, make_user

ROUNDS = 10
TZ = "America/New_York"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIRST_SLOT = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)  # Monday 09:00 in New York
ALL_DAY = [(d, time(0), time(23, 59)) for d in range(7)]


def race(engine: Engine, *actions: Callable[..., Any]) -> dict[int, Any]:
    """Call each action(session=...) in its own thread and session, released together.

    Returns each one's result, or the error it raised (its transaction rolled back).
    """
    barrier = threading.Barrier(len(actions), timeout=10)
    outcomes: dict[int, Any] = {}

    def run(i: int) -> None:
        with Session(engine, expire_on_commit=False) as session:
            barrier.wait()
            try:
                outcomes[i] = actions[i](session=session)
                session.commit()
            except Exception as err:  # noqa: BLE001 - the assertions look at it
                session.rollback()
                outcomes[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == len(actions), f"a session hung: {outcomes}"
    return outcomes


def one_winner(outcomes: dict[int, Any], refusal: type[Exception]) -> tuple[int, int]:
    """(winner, loser): exactly one action succeeded and the other was refused with `refusal`."""
    losers = [i for i, o in outcomes.items() if isinstance(o, refusal)]
    winners = [i for i, o in outcomes.items() if not isinstance(o, Exception)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    return winners[0], losers[0]


def audit_actions(session: Session, lead_id: int) -> list[tuple[str, int | None]]:
    rows = session.exec(
        select(AuditEvent.action, AuditEvent.actor_id)
        .where(AuditEvent.lead_id == lead_id)
        .order_by(col(AuditEvent.id))
    ).all()
    return [(action, actor_id) for action, actor_id in rows]


@pytest.fixture
def staff(engine: Engine) -> list[Actor]:
    with Session(engine, expire_on_commit=False) as setup:
        return [actor_of(make_user(setup, name=name)) for name in ("Alice Ames", "Bo Brandt")]


def contact_values(round_no: int, i: int) -> dict[str, Any]:
    return {
        "first_name": f"Round{round_no}",
        "last_name": f"Editor{i}",
        "email": f"round{round_no}.by{i}@example.com",
        "phone": f"(571) 555-01{i}{round_no % 10}",
        "zip_code": ("20147", "90210")[i],
        "city": "",
        "preferred_contact": ("call", "text")[i],
        "best_time": f"after {i + 5} pm",
        "do_not_contact": False,
    }


def test_two_people_saving_contact_details_at_once_one_wins_nothing_half_written(
    engine: Engine, staff: list[Actor]
) -> None:
    for round_no in range(ROUNDS):
        with Session(engine, expire_on_commit=False) as setup:
            lead = make_lead(setup)
            contact_version = setup.get(Contact, lead.contact_id).version  # type: ignore[union-attr]
        lead_id, seen = lead.id or 0, lead.version
        values = [contact_values(round_no, i) for i in range(2)]

        outcomes = race(
            engine,
            *(
                partial(
                    leads.update_contact,
                    actor=staff[i],
                    lead_id=lead_id,
                    seen_version=seen,
                    values=values[i],
                )
                for i in range(2)
            ),
        )
        won, lost = one_winner(outcomes, StaleEdit)
        refusal: StaleEdit = outcomes[lost]
        with Session(engine) as check:
            stored = check.get(Lead, lead_id)
            assert stored is not None
            contact = check.get(Contact, stored.contact_id)
            assert contact is not None
            assert stored.version == seen + 1 == outcomes[won]
            assert stored.updated_by_id == staff[won].id
            # The refusal says who changed the lead and when.
            assert refusal.changed_by == staff[won].name and staff[won].name in str(refusal)
            assert refusal.changed_at is not None
            assert as_utc(refusal.changed_at) == as_utc(stored.updated_at)
            # All of the winner's change, none of the loser's.
            mine, theirs = values[won], values[lost]
            assert (contact.first_name, contact.last_name) == (
                mine["first_name"],
                mine["last_name"],
            )
            assert contact.email == mine["email"] and contact.zip_code == mine["zip_code"]
            assert contact.best_time == mine["best_time"]
            assert contact.preferred_contact == mine["preferred_contact"]
            assert theirs["email"] != contact.email and theirs["last_name"] != contact.last_name
            assert contact.version == contact_version + 1
            assert audit_actions(check, lead_id) == [("lead.update", staff[won].id)]


def test_a_call_logged_while_someone_closes_the_lead_one_wins_nothing_half_written(
    engine: Engine, staff: list[Actor]
) -> None:
    with Session(engine) as s:
        reason = next(
            r for r in leads.reasons_for(Stage.LOST, clinic_settings.load(s)) if r != leads.OTHER
        )
    wins = {0: 0, 1: 0}
    for _round in range(ROUNDS):
        with Session(engine, expire_on_commit=False) as setup:
            lead = make_lead(setup)
        lead_id, seen = lead.id or 0, lead.version

        call = partial(
            leads.log_attempt,
            actor=staff[0],
            lead_id=lead_id,
            seen_version=seen,
            channel="call",
            outcome="reached",
            note="Reached: wants a consult",
        )
        close = partial(
            leads.move,
            actor=staff[1],
            lead_id=lead_id,
            seen_version=seen,
            to=Stage.LOST,
            reason=reason,
        )
        outcomes = race(engine, call, close)
        won, _lost = one_winner(outcomes, StaleEdit)
        wins[won] += 1
        with Session(engine) as check:
            stored = check.get(Lead, lead_id)
            assert stored is not None and stored.version == seen + 1
            attempts = check.exec(
                select(func.count()).where(ContactAttempt.lead_id == lead_id)
            ).one()
            moves = check.exec(
                select(StageChange.from_stage, StageChange.to_stage).where(
                    StageChange.lead_id == lead_id
                )
            ).all()
            if won == 0:
                assert stored.stage == Stage.CONTACTED and stored.is_open
                assert attempts == 1 and stored.attempts == 1
                assert [tuple(m) for m in moves] == [(Stage.NEW, Stage.CONTACTED)]
                assert stored.closed_reason is None
            else:
                assert stored.stage == Stage.LOST and not stored.is_open
                assert attempts == 0 and stored.attempts == 0
                assert stored.first_response_at is None
                assert [tuple(m) for m in moves] == [(Stage.NEW, Stage.LOST)]
            assert {actor for _a, actor in audit_actions(check, lead_id)} == {staff[won].id}
    print(f"\n[{engine.dialect.name}] the call won {wins[0]} times, the close {wins[1]} times")


def test_two_coordinators_booking_one_slot_at_once_never_double_book(
    engine: Engine, staff: list[Actor]
) -> None:
    with Session(engine, expire_on_commit=False) as setup:
        clinic_settings.save(setup, actor_id=None, changes={"timezone": TZ})
        admin = actor_of(make_user(setup, role=Role.ADMIN))
        doctor = make_user(setup, role=Role.PROVIDER, name="Dr. Rivera")
        scheduling.set_availability(
            session=setup, actor=admin, provider_id=doctor.id or 0, windows=ALL_DAY
        )
        setup.commit()
    for round_no in range(ROUNDS):
        slot = FIRST_SLOT + timedelta(minutes=15 * round_no)
        with Session(engine, expire_on_commit=False) as setup:
            pair = [make_lead(setup) for _ in range(2)]

        bookings = [
            partial(
                scheduling.book_consult,
                actor=staff[i],
                lead_id=pair[i].id or 0,
                provider_id=doctor.id or 0,
                starts_at=slot,
                now=NOW,
            )
            for i in range(2)
        ]
        outcomes = race(engine, *bookings)
        won, lost = one_winner(outcomes, SlotTaken)
        consult_id = outcomes[won].id
        assert "already has a consult" in str(outcomes[lost])
        with Session(engine) as check:
            consults = check.exec(select(Consult).where(Consult.starts_at == slot)).all()
            assert [(c.id, c.lead_id) for c in consults] == [(consult_id, pair[won].id)]
            winner = check.get(Lead, pair[won].id)
            loser = check.get(Lead, pair[lost].id)
            assert winner is not None and winner.stage == Stage.CONSULT_SCHEDULED
            assert loser is not None and loser.stage == Stage.NEW
            assert loser.version == pair[lost].version and loser.first_response_at is None
            assert (
                check.exec(select(func.count()).where(StageChange.lead_id == pair[lost].id)).one()
                == 0
            )
            assert audit_actions(check, pair[lost].id or 0) == []
            assert (
                check.exec(select(func.count()).where(Consult.lead_id == pair[lost].id)).one() == 0
            )
