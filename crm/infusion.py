"""Infusions: the first one (the conversion the clinic counts) and the follow-up series.

Booking the first infusion moves a cleared lead to infusion scheduled; completing it moves the
lead to infusion completed; cancelling it (or a no-show) sends the lead back to cleared for a
new date. Follow-ups (numbers 2..series length) are booked once the first is done and never
move the stage.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session, col, select

from crm import audit, clinic_settings
from crm.access import Actor, Perm, require
from crm.clinic_settings import ClinicConfig
from crm.concurrency import bump, lock_lead
from crm.enums import AppointmentStatus, Stage
from crm.errors import InvalidInput, NotFound, SlotTaken
from crm.models import Appointment, Lead
from crm.pipeline import transition
from crm.timeutil import as_utc, format_local, utcnow

# Booked or done: the appointments that hold a place in the series.
LIVE = (AppointmentStatus.BOOKED.value, AppointmentStatus.COMPLETED.value)
MIN_MINUTES, MAX_MINUTES = 15, 8 * 60


@dataclass(frozen=True)
class AppointmentView:
    id: int
    number: int
    starts_at: datetime
    ends_at: datetime
    duration_minutes: int
    room: str | None
    status: AppointmentStatus
    completed_at: datetime | None


@dataclass(frozen=True)
class Series:
    """The planned series for a lead and where it stands."""

    lead_id: int
    lead_stage: Stage
    lead_version: int
    planned: int
    appointments: list[AppointmentView]

    @property
    def completed(self) -> int:
        return sum(1 for a in self.appointments if a.status == AppointmentStatus.COMPLETED)

    @property
    def first_completed(self) -> bool:
        return any(
            a.number == 1 and a.status == AppointmentStatus.COMPLETED for a in self.appointments
        )

    @property
    def next_number(self) -> int:
        """The lowest series number not held by a booked or completed appointment."""
        held = {a.number for a in self.appointments if a.status.value in LIVE}
        number = 1
        while number in held:
            number += 1
        return number

    @property
    def can_book(self) -> bool:
        """Whether another infusion can be booked now (the reason is in `booking_blocked`)."""
        return self.booking_blocked is None

    @property
    def booking_blocked(self) -> str | None:
        number = self.next_number
        if number == 1:
            if self.lead_stage != Stage.CLEARED:
                return "The first infusion is booked once screening has cleared the lead."
            return None
        if not self.first_completed:
            return "Follow-up infusions are booked once the first infusion is completed."
        if number > self.planned:
            return f"All {self.planned} infusions of the planned series are booked or done."
        return None


def _views(session: Session, lead_id: int) -> list[AppointmentView]:
    rows = session.exec(
        select(Appointment)
        .where(Appointment.lead_id == lead_id)
        .order_by(col(Appointment.starts_at), col(Appointment.id))
    ).all()
    return [
        AppointmentView(
            id=a.id or 0,
            number=a.number,
            starts_at=as_utc(a.starts_at),
            ends_at=as_utc(a.starts_at) + timedelta(minutes=a.duration_minutes),
            duration_minutes=a.duration_minutes,
            room=a.room,
            status=AppointmentStatus(a.status),
            completed_at=as_utc(a.completed_at) if a.completed_at else None,
        )
        for a in rows
    ]


def _series(session: Session, lead: Lead, config: ClinicConfig) -> Series:
    return Series(
        lead_id=lead.id or 0,
        lead_stage=Stage(lead.stage),
        lead_version=lead.version,
        planned=config.infusion_series_length,
        appointments=_views(session, lead.id or 0),
    )


def get_series(*, session: Session, actor: Actor, lead_id: int) -> Series:
    """The lead's infusions (all statuses, in time order) and the planned series length."""
    require(actor, Perm.LEADS_READ)
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise NotFound(f"Lead {lead_id} does not exist.")
    return _series(session, lead, clinic_settings.load(session))


def _room(config: ClinicConfig, room: str | None) -> str | None:
    rooms = [r for r in config.rooms if r.strip()]
    if not rooms:
        return None
    if room is None and len(rooms) == 1:
        return rooms[0]
    if room not in rooms:
        raise InvalidInput(f"Choose a room or chair: {', '.join(rooms)}.")
    return room


def book_infusion(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    starts_at: datetime,
    duration_minutes: int | None = None,
    room: str | None = None,
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Book the next infusion of the series (the first one moves the lead to infusion scheduled)."""
    require(actor, Perm.LEADS_WRITE)
    now = now or utcnow()
    config = clinic_settings.load(session)
    duration = duration_minutes or config.infusion_duration_minutes
    if not MIN_MINUTES <= duration <= MAX_MINUTES:
        raise InvalidInput(f"An infusion lasts {MIN_MINUTES} to {MAX_MINUTES} minutes.")
    starts_at = as_utc(starts_at, config.timezone).replace(second=0, microsecond=0)
    if starts_at <= now:
        raise InvalidInput("That time has passed; pick a later one.")
    room = _room(config, room)
    lead = lock_lead(session, lead_id=lead_id, seen_version=seen_version)
    series = _series(session, lead, config)
    blocked = series.booking_blocked
    if blocked:
        raise InvalidInput(blocked)
    ends_at = starts_at + timedelta(minutes=duration)
    if room is not None:
        _check_room(session, room=room, starts_at=starts_at, ends_at=ends_at, config=config)
    number = series.next_number
    appointment = Appointment(
        lead_id=lead_id,
        number=number,
        starts_at=starts_at,
        duration_minutes=duration,
        room=room,
        status=AppointmentStatus.BOOKED.value,
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(appointment)
    session.flush()
    if number == 1:
        transition(
            session=session, lead=lead, to=Stage.INFUSION_SCHEDULED, actor_id=actor.id, at=now
        )
    else:
        bump(session, lead, actor_id=actor.id, at=now)
    audit.record(
        session,
        actor_id=actor.id,
        action="appointment.book",
        lead_id=lead_id,
        entity="appointment",
        entity_id=appointment.id,
        details={
            "number": [None, number],
            "starts_at": [None, starts_at.isoformat()],
            "duration_minutes": [None, duration],
            "room": [None, room],
        },
        at=now,
    )
    return appointment


def _check_room(
    session: Session, *, room: str, starts_at: datetime, ends_at: datetime, config: ClinicConfig
) -> None:
    """Refuse a room or chair already holding a booked infusion that overlaps.

    No index can say "no overlapping intervals" on both backends, so bookings of one room
    take turns: SQLite's write lock (held since lock_lead) already serializes them; on
    PostgreSQL a transaction-scoped advisory lock per room does.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(f"room:{room}".encode())
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})  # type: ignore[deprecated]
    booked = session.exec(
        select(Appointment).where(
            Appointment.room == room,
            Appointment.status == AppointmentStatus.BOOKED.value,
            Appointment.starts_at < ends_at,
            Appointment.starts_at > starts_at - timedelta(minutes=MAX_MINUTES),
        )
    ).all()
    for other in booked:
        other_end = as_utc(other.starts_at) + timedelta(minutes=other.duration_minutes)
        if other_end > starts_at:
            raise SlotTaken(
                f"{room} is taken from {format_local(other.starts_at, config.timezone, '%I:%M %p')} "
                f"to {format_local(other_end, config.timezone, '%I:%M %p')}; pick another time or room."
            )


def _appointment_for_update(
    session: Session, actor: Actor, appointment_id: int, seen_version: int | None
) -> tuple[Appointment, Lead]:
    require(actor, Perm.LEADS_WRITE)
    appointment = session.get(Appointment, appointment_id)
    if appointment is None:
        raise NotFound(f"Appointment {appointment_id} does not exist.")
    lead = lock_lead(session, lead_id=appointment.lead_id, seen_version=seen_version)
    session.refresh(appointment)
    if appointment.status != AppointmentStatus.BOOKED.value:
        raise InvalidInput(f"This infusion is already {appointment.status.replace('_', ' ')}.")
    return appointment, lead


def _finish(
    session: Session,
    *,
    actor: Actor,
    appointment: Appointment,
    lead: Lead,
    status: AppointmentStatus,
    now: datetime,
    reason: str | None = None,
) -> Appointment:
    before = appointment.status
    appointment.status = status.value
    if status == AppointmentStatus.COMPLETED:
        appointment.completed_at = now
    session.add(appointment)
    first_booked = appointment.number == 1 and Stage(lead.stage) == Stage.INFUSION_SCHEDULED
    if first_booked and status == AppointmentStatus.COMPLETED:
        transition(
            session=session, lead=lead, to=Stage.INFUSION_COMPLETED, actor_id=actor.id, at=now
        )
    elif first_booked:
        label = "cancelled" if status == AppointmentStatus.CANCELLED else "no-show"
        transition(
            session=session,
            lead=lead,
            to=Stage.CLEARED,
            actor_id=actor.id,
            at=now,
            note=f"First infusion {label}",
        )
    else:
        bump(session, lead, actor_id=actor.id, at=now)
    details: dict[str, object] = {
        "status": [before, appointment.status],
        "number": appointment.number,
    }
    if reason:
        details["reason"] = [None, reason.strip()[:500]]
    audit.record(
        session,
        actor_id=actor.id,
        action=f"appointment.{status.value}",
        lead_id=lead.id,
        entity="appointment",
        entity_id=appointment.id,
        details=details,
        at=now,
    )
    session.flush()
    return appointment


def complete_infusion(
    *,
    session: Session,
    actor: Actor,
    appointment_id: int,
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Mark an infusion done; the first one moves the lead to first infusion completed."""
    now = now or utcnow()
    appointment, lead = _appointment_for_update(session, actor, appointment_id, seen_version)
    if as_utc(appointment.starts_at) > now:
        raise InvalidInput("This infusion hasn't started yet; it can't be completed.")
    return _finish(
        session,
        actor=actor,
        appointment=appointment,
        lead=lead,
        status=AppointmentStatus.COMPLETED,
        now=now,
    )


def cancel_infusion(
    *,
    session: Session,
    actor: Actor,
    appointment_id: int,
    reason: str | None = None,
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Cancel a booked infusion; a cancelled first infusion sends the lead back to cleared."""
    now = now or utcnow()
    appointment, lead = _appointment_for_update(session, actor, appointment_id, seen_version)
    return _finish(
        session,
        actor=actor,
        appointment=appointment,
        lead=lead,
        status=AppointmentStatus.CANCELLED,
        now=now,
        reason=reason,
    )


def mark_infusion_no_show(
    *,
    session: Session,
    actor: Actor,
    appointment_id: int,
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Appointment:
    """The person didn't come: like a cancellation, but kept on record as a no-show."""
    now = now or utcnow()
    appointment, lead = _appointment_for_update(session, actor, appointment_id, seen_version)
    if as_utc(appointment.starts_at) > now:
        raise InvalidInput("This infusion hasn't started yet; it can't be a no-show.")
    return _finish(
        session,
        actor=actor,
        appointment=appointment,
        lead=lead,
        status=AppointmentStatus.NO_SHOW,
        now=now,
    )
