"""First infusion (the conversion) and the follow-up series (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from crm import infusion
from crm.access import Actor
from crm.enums import AppointmentStatus, Role, Stage
from crm.errors import InvalidInput, PermissionDenied, SlotTaken
from crm.models import AuditEvent, Lead, StageChange
from tests.factories import actor_of, make_lead, make_user

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # 10:00 EDT


@pytest.fixture
def coordinator(session: Session) -> Actor:
    return actor_of(make_user(session, role=Role.CARE_TEAM))


def book(
    session: Session,
    actor: Actor,
    lead: Lead,
    at: datetime,
    room: str | None = "Chair 1",
    **kw: object,
) -> int:
    appointment = infusion.book_infusion(
        session=session,
        actor=actor,
        lead_id=lead.id or 0,
        starts_at=at,
        room=room,
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )
    session.commit()
    return appointment.id or 0


def complete(session: Session, actor: Actor, appointment_id: int, at: datetime) -> None:
    infusion.complete_infusion(session=session, actor=actor, appointment_id=appointment_id, now=at)
    session.commit()


def last_move(session: Session, lead: Lead) -> tuple[str | None, str]:
    row = session.exec(
        select(StageChange).where(StageChange.lead_id == lead.id).order_by(StageChange.id.desc())  # type: ignore[union-attr]
    ).first()
    assert row is not None
    return row.from_stage, row.to_stage


def test_booking_the_first_infusion_schedules_the_lead(
    session: Session, coordinator: Actor
) -> None:
    lead = make_lead(session, stage=Stage.CLEARED)
    appointment_id = book(session, coordinator, lead, DAY)
    session.refresh(lead)
    assert lead.stage == Stage.INFUSION_SCHEDULED
    series = infusion.get_series(session=session, actor=coordinator, lead_id=lead.id or 0)
    (first,) = series.appointments
    assert (first.id, first.number, first.duration_minutes, first.room) == (
        appointment_id,
        1,
        60,
        "Chair 1",
    )
    assert first.ends_at == DAY + timedelta(minutes=60)
    assert series.planned == 6 and series.completed == 0
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "appointment.book")).one()
    assert event.lead_id == lead.id and event.actor_id == coordinator.id


def test_the_first_infusion_waits_for_screening_to_clear(
    session: Session, coordinator: Actor
) -> None:
    lead = make_lead(session, stage=Stage.SCREENING)
    with pytest.raises(InvalidInput, match="once screening has cleared"):
        book(session, coordinator, lead, DAY)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"room": None}, "Choose a room or chair"),
        ({"room": "Chair 9"}, "Choose a room or chair"),
        ({"duration_minutes": 5}, "lasts 15 to 480 minutes"),
        ({"at": NOW - timedelta(hours=1)}, "passed"),
    ],
)
def test_bad_bookings_are_refused(
    session: Session, coordinator: Actor, kwargs: dict[str, object], message: str
) -> None:
    lead = make_lead(session, stage=Stage.CLEARED)
    kwargs = dict(kwargs)  # the parameter dict is shared by both backends' runs
    at = kwargs.pop("at", DAY)
    with pytest.raises(InvalidInput, match=message):
        book(session, coordinator, lead, at, **kwargs)  # type: ignore[arg-type]


def test_completing_the_first_infusion_is_the_conversion(
    session: Session, coordinator: Actor
) -> None:
    lead = make_lead(session, stage=Stage.CLEARED)
    appointment_id = book(session, coordinator, lead, DAY)
    with pytest.raises(InvalidInput, match="hasn't started"):
        complete(session, coordinator, appointment_id, NOW)
    session.rollback()
    complete(session, coordinator, appointment_id, DAY + timedelta(minutes=70))
    session.refresh(lead)
    assert lead.stage == Stage.INFUSION_COMPLETED and not lead.is_open
    assert lead.reached_infusion_completed_at == DAY + timedelta(minutes=70)
    assert last_move(session, lead) == ("infusion_scheduled", "infusion_completed")
    series = infusion.get_series(session=session, actor=coordinator, lead_id=lead.id or 0)
    assert series.completed == 1 and series.first_completed


@pytest.mark.parametrize("how", ["cancel", "no_show"])
def test_a_cancelled_or_missed_first_infusion_sends_the_lead_back_to_cleared(
    session: Session, coordinator: Actor, how: str
) -> None:
    lead = make_lead(session, stage=Stage.CLEARED)
    appointment_id = book(session, coordinator, lead, DAY)
    if how == "cancel":
        infusion.cancel_infusion(
            session=session,
            actor=coordinator,
            appointment_id=appointment_id,
            reason="Sick",
            now=NOW,
        )
    else:
        infusion.mark_infusion_no_show(
            session=session,
            actor=coordinator,
            appointment_id=appointment_id,
            now=DAY + timedelta(minutes=30),
        )
    session.commit()
    session.refresh(lead)
    assert lead.stage == Stage.CLEARED
    assert last_move(session, lead) == ("infusion_scheduled", "cleared")
    # A new date for the first infusion.
    again = book(session, coordinator, lead, DAY + timedelta(days=2))
    series = infusion.get_series(session=session, actor=coordinator, lead_id=lead.id or 0)
    assert [(a.number, a.status) for a in series.appointments] == [
        (1, AppointmentStatus.CANCELLED if how == "cancel" else AppointmentStatus.NO_SHOW),
        (1, AppointmentStatus.BOOKED),
    ]
    assert series.appointments[1].id == again


def test_follow_ups_fill_the_planned_series_without_moving_the_stage(
    session: Session, coordinator: Actor
) -> None:
    lead = make_lead(session, stage=Stage.CLEARED)
    first = book(session, coordinator, lead, DAY)
    with pytest.raises(InvalidInput, match="once the first infusion is completed"):
        book(session, coordinator, lead, DAY + timedelta(days=2))
    session.rollback()
    complete(session, coordinator, first, DAY + timedelta(hours=1))
    follow_ups = [
        book(session, coordinator, lead, DAY + timedelta(days=2 * n)) for n in range(1, 6)
    ]
    session.refresh(lead)
    assert lead.stage == Stage.INFUSION_COMPLETED
    series = infusion.get_series(session=session, actor=coordinator, lead_id=lead.id or 0)
    assert [a.number for a in series.appointments] == [1, 2, 3, 4, 5, 6]
    assert not series.can_book and "All 6 infusions" in (series.booking_blocked or "")
    with pytest.raises(InvalidInput, match="All 6 infusions"):
        book(session, coordinator, lead, DAY + timedelta(days=20))
    session.rollback()
    complete(session, coordinator, follow_ups[0], DAY + timedelta(days=2, hours=1))
    complete(session, coordinator, follow_ups[1], DAY + timedelta(days=4, hours=1))
    series = infusion.get_series(session=session, actor=coordinator, lead_id=lead.id or 0)
    assert (series.completed, series.planned) == (3, 6)
    # A cancelled follow-up frees its number for the next booking.
    infusion.cancel_infusion(
        session=session, actor=coordinator, appointment_id=follow_ups[3], now=NOW
    )
    session.commit()
    assert (
        infusion.get_series(session=session, actor=coordinator, lead_id=lead.id or 0).next_number
        == 5
    )
    session.refresh(lead)
    assert lead.stage == Stage.INFUSION_COMPLETED


def test_a_chair_holds_one_infusion_at_a_time(session: Session, coordinator: Actor) -> None:
    first, second = make_lead(session, stage=Stage.CLEARED), make_lead(session, stage=Stage.CLEARED)
    book(session, coordinator, first, DAY)
    with pytest.raises(SlotTaken, match="Chair 1 is taken from 10:00 AM to 11:00 AM"):
        book(session, coordinator, second, DAY + timedelta(minutes=30))
    session.rollback()
    book(session, coordinator, second, DAY + timedelta(minutes=30), room="Chair 2")
    third = make_lead(session, stage=Stage.CLEARED)
    book(session, coordinator, third, DAY + timedelta(minutes=60))  # right after: free


def test_reading_and_booking_need_permissions(session: Session) -> None:
    lead = make_lead(session, stage=Stage.CLEARED)
    nobody = Actor(id=0, email="x@clinic.test", name="", role=Role.CARE_TEAM)
    infusion.get_series(session=session, actor=nobody, lead_id=lead.id or 0)
    with pytest.raises(PermissionDenied):
        infusion.book_infusion(session=session, actor=None, lead_id=lead.id or 0, starts_at=DAY)  # type: ignore[arg-type]
