"""The free 15-minute phone consult: provider availability, free slots, booking and outcomes.

Availability is wall time in the clinic's zone; slots and consults are stored in UTC. A
provider is never double-booked: the partial unique index `ux_consult_provider_slot` makes
the database refuse a second live consult at the same start, whatever the application saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from crm import audit, clinic_settings
from crm.access import Actor, Perm, require
from crm.clinic_settings import ClinicConfig
from crm.concurrency import bump, lock_lead
from crm.enums import CLOSED_STAGES, Candidate, ConsultStatus, ConsultTopic, Stage
from crm.errors import InvalidInput, NotFound, SlotTaken
from crm.models import Consult, Contact, Lead, ProviderAvailability, User
from crm.pipeline import transition
from crm.timeutil import as_utc, format_local, utcnow

NOTES_MAX = 5000
REASON_MAX = 500


# --- Providers and their weekly availability ------------------------------------------------


@dataclass(frozen=True)
class ProviderOption:
    """An active provider, as a picker shows them."""

    id: int
    name: str


def list_providers(*, session: Session) -> list[ProviderOption]:
    """Active staff members with the provider flag, by name."""
    rows = session.exec(
        select(User).where(col(User.is_provider).is_(True), col(User.active).is_(True))
    ).all()
    options = [ProviderOption(id=u.id or 0, name=u.name or u.email) for u in rows]
    return sorted(options, key=lambda p: p.name.lower())


def _provider(session: Session, provider_id: int) -> User:
    user = session.get(User, provider_id)
    if user is None or not user.is_provider:
        raise NotFound("That staff member is not a provider.")
    return user


def _normalize_windows(windows: Iterable[tuple[int, time, time]]) -> list[tuple[int, time, time]]:
    cleaned: list[tuple[int, time, time]] = []
    for weekday, start, end in windows:
        if not 0 <= int(weekday) <= 6:
            raise InvalidInput(f"Weekday must be 0 (Monday) to 6 (Sunday), got {weekday}.")
        start = start.replace(second=0, microsecond=0, tzinfo=None)
        end = end.replace(second=0, microsecond=0, tzinfo=None)
        if start >= end:
            raise InvalidInput(f"A window must end after it starts ({start:%H:%M}-{end:%H:%M}).")
        cleaned.append((int(weekday), start, end))
    cleaned.sort()
    for (day_a, _start_a, end_a), (day_b, start_b, _end_b) in zip(
        cleaned, cleaned[1:], strict=False
    ):
        if day_a == day_b and start_b < end_a:
            raise InvalidInput("Two availability windows overlap on the same day.")
    return cleaned


def get_availability(*, session: Session, provider_id: int) -> list[tuple[int, time, time]]:
    """The provider's weekly windows as (weekday, start, end), Monday = 0, clinic wall time."""
    rows = session.exec(
        select(ProviderAvailability).where(ProviderAvailability.provider_id == provider_id)
    ).all()
    return sorted((r.weekday, r.start_time, r.end_time) for r in rows)


def set_availability(
    *,
    session: Session,
    actor: Actor,
    provider_id: int,
    windows: list[tuple[int, time, time]],
) -> list[tuple[int, time, time]]:
    """Replace the provider's weekly windows (an admin, or the provider for themself)."""
    own_hours = actor is not None and actor.id == provider_id and actor.is_provider
    if not own_hours:
        require(actor, Perm.SETTINGS)
    _provider(session, provider_id)
    cleaned = _normalize_windows(windows)
    before = get_availability(session=session, provider_id=provider_id)
    for row in session.exec(
        select(ProviderAvailability).where(ProviderAvailability.provider_id == provider_id)
    ).all():
        session.delete(row)
    for weekday, start, end in cleaned:
        session.add(
            ProviderAvailability(
                provider_id=provider_id, weekday=weekday, start_time=start, end_time=end
            )
        )
    if before != cleaned:
        audit.record(
            session,
            actor_id=actor.id,
            action="availability.update",
            entity="user",
            entity_id=provider_id,
            details={"windows": [_describe_windows(before), _describe_windows(cleaned)]},
        )
    session.flush()
    return cleaned


def _describe_windows(windows: Sequence[tuple[int, time, time]]) -> list[str]:
    names = clinic_settings.WEEKDAYS
    return [f"{names[d]} {s:%H:%M}-{e:%H:%M}" for d, s, e in windows]


# --- Free slots ---------------------------------------------------------------------------------


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants where the clinic-local `day` starts and the next one starts."""
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def week_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """The UTC instants bounding the clinic-local week (Monday to Sunday) holding `day`."""
    monday = day - timedelta(days=day.weekday())
    return day_bounds(monday, tz)[0], day_bounds(monday + timedelta(days=7), tz)[0]


def candidate_slots(
    windows: Sequence[tuple[int, time, time]], day: date, *, tz: str, minutes: int
) -> list[datetime]:
    """Every slot start (UTC) inside the windows for `day`, before anything is taken.

    Slots are stepped in real time from the window's start, so on a DST change day a
    window covers the hours that really exist (none at 2:30 on a spring-forward morning,
    both 1:30s on a fall-back one).
    """
    zone = ZoneInfo(tz)
    step = timedelta(minutes=minutes)
    slots: set[datetime] = set()
    for weekday, start, end in windows:
        if weekday != day.weekday():
            continue
        at = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
        stop = datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
        while at + step <= stop:
            slots.add(at)
            at += step
    return sorted(slots)


def _taken(
    session: Session,
    provider_id: int,
    start: datetime,
    end: datetime,
    *,
    exclude: int | None = None,
) -> list[tuple[datetime, datetime]]:
    """(start, end) of the provider's live consults overlapping [start, end)."""
    statement = select(Consult.starts_at, Consult.ends_at).where(
        Consult.provider_id == provider_id,
        Consult.status != ConsultStatus.CANCELLED.value,
        Consult.starts_at < end,
        Consult.ends_at > start,
    )
    if exclude is not None:
        statement = statement.where(Consult.id != exclude)
    rows = session.exec(statement).all()
    return [(as_utc(s), as_utc(e)) for s, e in rows]


def free_slots(
    *,
    session: Session,
    provider_id: int,
    day: date,
    config: ClinicConfig,
    now: datetime | None = None,
) -> list[datetime]:
    """The provider's bookable slot starts (UTC) on clinic-local `day`: in their availability,
    of `config.consult_slot_minutes`, not past, not overlapping a live consult."""
    user = session.get(User, provider_id)
    if user is None or not user.is_provider or not user.active:
        return []
    now = now or utcnow()
    step = timedelta(minutes=config.consult_slot_minutes)
    windows = get_availability(session=session, provider_id=provider_id)
    slots = [
        s
        for s in candidate_slots(
            windows, day, tz=config.timezone, minutes=config.consult_slot_minutes
        )
        if s > now
    ]
    if not slots:
        return []
    taken = _taken(session, provider_id, slots[0], slots[-1] + step)
    return [
        s for s in slots if not any(s < t_end and s + step > t_start for t_start, t_end in taken)
    ]


# --- Booking ------------------------------------------------------------------------------------


def _open_lead(session: Session, lead_id: int, seen_version: int | None) -> Lead:
    lead = lock_lead(session, lead_id=lead_id, seen_version=seen_version)
    if Stage(lead.stage) in CLOSED_STAGES:
        raise InvalidInput(f"This lead is {Stage(lead.stage).label.lower()}: reopen it first.")
    return lead


def _booked_consult(
    session: Session, lead_id: int, *, exclude: int | None = None
) -> Consult | None:
    statement = select(Consult).where(
        Consult.lead_id == lead_id, Consult.status == ConsultStatus.BOOKED.value
    )
    if exclude is not None:
        statement = statement.where(Consult.id != exclude)
    return session.exec(statement).first()


def _check_slot(
    session: Session,
    *,
    provider_id: int,
    starts_at: datetime,
    config: ClinicConfig,
    now: datetime,
    replacing: int | None = None,
) -> datetime:
    """The slot start as stored, or the named error saying why it can't be booked."""
    provider = _provider(session, provider_id)
    if not provider.active:
        raise InvalidInput(f"{provider.name or provider.email} is not active.")
    starts_at = as_utc(starts_at, config.timezone).replace(second=0, microsecond=0)
    local_day = starts_at.astimezone(ZoneInfo(config.timezone)).date()
    if starts_at <= now:
        raise InvalidInput("That time has passed; pick a later slot.")
    windows = get_availability(session=session, provider_id=provider_id)
    if starts_at not in candidate_slots(
        windows, local_day, tz=config.timezone, minutes=config.consult_slot_minutes
    ):
        raise InvalidInput(
            f"{format_local(starts_at, config.timezone)} is not one of "
            f"{provider.name or provider.email}'s consult slots."
        )
    ends_at = starts_at + timedelta(minutes=config.consult_slot_minutes)
    if _taken(session, provider_id, starts_at, ends_at, exclude=replacing):
        raise _slot_taken(provider, starts_at, config)
    return starts_at


def _slot_taken(provider: User, starts_at: datetime, config: ClinicConfig) -> SlotTaken:
    return SlotTaken(
        f"{provider.name or provider.email} already has a consult at "
        f"{format_local(starts_at, config.timezone)}. Pick another slot."
    )


def _insert_consult(
    session: Session,
    *,
    lead: Lead,
    provider_id: int,
    starts_at: datetime,
    actor: Actor,
    config: ClinicConfig,
    now: datetime,
) -> Consult:
    """Insert the consult; the database refusing a second live consult becomes SlotTaken.

    On SlotTaken the whole transaction is rolled back (the caller's session is clean again),
    so a losing booking leaves nothing behind: no consult, no stage change, no audit event.
    """
    consult = Consult(
        lead_id=lead.id,  # type: ignore[arg-type]
        provider_id=provider_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=config.consult_slot_minutes),
        status=ConsultStatus.BOOKED.value,
        booked_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(consult)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        provider = session.get(User, provider_id)
        assert provider is not None
        raise _slot_taken(provider, starts_at, config) from None
    return consult


def book_consult(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    provider_id: int,
    starts_at: datetime,
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Consult:
    """Book the lead's consult in one of the provider's free slots (raises SlotTaken if gone).

    A new or contacted lead moves to consult scheduled; a lead further along keeps its stage
    (a follow-up call). A lead has at most one booked consult: change it with rebook.
    """
    require(actor, Perm.CONSULTS)
    now = now or utcnow()
    config = clinic_settings.load(session)
    lead = _open_lead(session, lead_id, seen_version)
    existing = _booked_consult(session, lead_id)
    if existing is not None:
        raise InvalidInput(
            f"This lead already has a consult booked for "
            f"{format_local(existing.starts_at, config.timezone)}; rebook or cancel it instead."
        )
    starts_at = _check_slot(
        session, provider_id=provider_id, starts_at=starts_at, config=config, now=now
    )
    consult = _insert_consult(
        session,
        lead=lead,
        provider_id=provider_id,
        starts_at=starts_at,
        actor=actor,
        config=config,
        now=now,
    )
    _move_to_scheduled(session, lead, actor, now)
    audit.record(
        session,
        actor_id=actor.id,
        action="consult.book",
        lead_id=lead.id,
        entity="consult",
        entity_id=consult.id,
        details={"provider_id": [None, provider_id], "starts_at": [None, starts_at.isoformat()]},
        at=now,
    )
    session.flush()
    return consult


def _move_to_scheduled(session: Session, lead: Lead, actor: Actor, now: datetime) -> None:
    stage = Stage(lead.stage)
    if stage == Stage.NEW:
        # Booking a call means the person was reached; the log shows both steps.
        transition(
            session=session,
            lead=lead,
            to=Stage.CONTACTED,
            actor_id=actor.id,
            at=now,
            note="Reached: consult booked",
        )
        if lead.first_response_at is None:
            # Reached: the speed-to-lead clock stops and no longer orders the queue.
            lead.first_response_at = now
            lead.due_at = lead.next_action_due_at
        stage = Stage.CONTACTED
    if stage == Stage.CONTACTED:
        transition(
            session=session, lead=lead, to=Stage.CONSULT_SCHEDULED, actor_id=actor.id, at=now
        )
    else:
        bump(session, lead, actor_id=actor.id, at=now)


def _consult_for_update(
    session: Session, actor: Actor, consult_id: int, seen_version: int | None
) -> tuple[Consult, Lead]:
    require(actor, Perm.CONSULTS)
    consult = session.get(Consult, consult_id)
    if consult is None:
        raise NotFound(f"Consult {consult_id} does not exist.")
    lead = lock_lead(session, lead_id=consult.lead_id, seen_version=seen_version)
    session.refresh(consult)
    return consult, lead


def _back_to_contacted(
    session: Session, lead: Lead, actor: Actor, now: datetime, note: str
) -> None:
    if (
        Stage(lead.stage) == Stage.CONSULT_SCHEDULED
        and _booked_consult(session, lead.id or 0) is None
    ):
        transition(
            session=session, lead=lead, to=Stage.CONTACTED, actor_id=actor.id, at=now, note=note
        )
    else:
        bump(session, lead, actor_id=actor.id, at=now)


def _set_status(consult: Consult, status: ConsultStatus, now: datetime) -> str:
    before = consult.status
    consult.status = status.value
    consult.updated_at = now
    return before


def _end_booked(
    session: Session,
    consult: Consult,
    lead: Lead,
    actor: Actor,
    status: ConsultStatus,
    now: datetime,
    *,
    note: str,
    action: str,
    details: dict[str, list[object]] | None = None,
) -> None:
    """A booked consult that won't happen (cancelled, missed): the lead goes back to contacted."""
    before = _set_status(consult, status, now)
    session.add(consult)
    session.flush()
    _back_to_contacted(session, lead, actor, now, note=note)
    audit.record(
        session,
        actor_id=actor.id,
        action=action,
        lead_id=lead.id,
        entity="consult",
        entity_id=consult.id,
        details={"status": [before, consult.status], **(details or {})},
        at=now,
    )


def cancel_consult(
    *,
    session: Session,
    actor: Actor,
    consult_id: int,
    reason: str | None = None,
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Consult:
    """Cancel a booked consult (the slot frees up); the lead goes back to contacted."""
    now = now or utcnow()
    consult, lead = _consult_for_update(session, actor, consult_id, seen_version)
    if consult.status != ConsultStatus.BOOKED.value:
        raise InvalidInput(
            f"Only a booked consult can be cancelled (this one is {consult.status})."
        )
    reason_text = (reason or "").strip()[:REASON_MAX] or None
    _end_booked(
        session,
        consult,
        lead,
        actor,
        ConsultStatus.CANCELLED,
        now,
        note="Consult cancelled",
        action="consult.cancel",
        details={"reason": [None, reason_text]},
    )
    return consult


def mark_no_show(
    *,
    session: Session,
    actor: Actor,
    consult_id: int,
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Consult:
    """The person missed the call: the consult is a no-show and the lead goes back to contacted."""
    now = now or utcnow()
    consult, lead = _consult_for_update(session, actor, consult_id, seen_version)
    if consult.status != ConsultStatus.BOOKED.value:
        raise InvalidInput(
            f"Only a booked consult can be a no-show (this one is {consult.status})."
        )
    if as_utc(consult.starts_at) > now:
        raise InvalidInput("This consult hasn't started yet; it can't be a no-show.")
    _end_booked(
        session,
        consult,
        lead,
        actor,
        ConsultStatus.NO_SHOW,
        now,
        note="Consult no-show",
        action="consult.no_show",
    )
    return consult


def rebook_consult(
    *,
    session: Session,
    actor: Actor,
    consult_id: int,
    starts_at: datetime,
    provider_id: int | None = None,
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Consult:
    """Move a booked (or missed) consult to a new slot in one transaction; returns the new one.

    A booked consult is cancelled, a no-show stays on record; if the new slot is gone
    (SlotTaken) nothing changes: the old booking stands.
    """
    now = now or utcnow()
    config = clinic_settings.load(session)
    consult, lead = _consult_for_update(session, actor, consult_id, seen_version)
    if consult.status not in (ConsultStatus.BOOKED.value, ConsultStatus.NO_SHOW.value):
        raise InvalidInput(
            f"Only a booked or missed consult can be rebooked (this one is {consult.status})."
        )
    if Stage(lead.stage) in CLOSED_STAGES:
        raise InvalidInput(f"This lead is {Stage(lead.stage).label.lower()}: reopen it first.")
    other = _booked_consult(session, lead.id or 0, exclude=consult.id)
    if other is not None:
        raise InvalidInput("This lead already has another consult booked; rebook that one.")
    provider_id = provider_id or consult.provider_id
    old = {
        "provider_id": consult.provider_id,
        "starts_at": as_utc(consult.starts_at).isoformat(),
        "status": consult.status,
    }
    starts_at = _check_slot(
        session,
        provider_id=provider_id,
        starts_at=starts_at,
        config=config,
        now=now,
        replacing=consult.id,
    )
    if consult.status == ConsultStatus.BOOKED.value:
        # Free the old slot first: the new one may be the same start with another provider.
        _set_status(consult, ConsultStatus.CANCELLED, now)
        session.add(consult)
        session.flush()
    new = _insert_consult(
        session,
        lead=lead,
        provider_id=provider_id,
        starts_at=starts_at,
        actor=actor,
        config=config,
        now=now,
    )
    _move_to_scheduled(session, lead, actor, now)
    audit.record(
        session,
        actor_id=actor.id,
        action="consult.rebook",
        lead_id=lead.id,
        entity="consult",
        entity_id=new.id,
        details={
            "consult_id": [consult.id, new.id],
            "provider_id": [old["provider_id"], provider_id],
            "starts_at": [old["starts_at"], starts_at.isoformat()],
            "old_status": [old["status"], consult.status],
        },
        at=now,
    )
    session.flush()
    return new


def parse_topics(value: str | None) -> list[ConsultTopic]:
    """The topics stored on a consult, in enum order."""
    stored = {v.strip() for v in (value or "").split(",") if v.strip()}
    return [t for t in ConsultTopic if t.value in stored]


def complete_consult(
    *,
    session: Session,
    actor: Actor,
    consult_id: int,
    candidate: Candidate | str,
    topics: Iterable[ConsultTopic | str] = (),
    notes: str = "",
    seen_version: int | None = None,
    now: datetime | None = None,
) -> Consult:
    """Record the consult's outcome; the lead moves to consult completed.

    Saving again on a completed consult corrects its outcome (audited before/after).
    """
    now = now or utcnow()
    try:
        candidate = Candidate(candidate)
        chosen = {ConsultTopic(t) for t in topics}
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    notes = (notes or "").strip()
    if len(notes) > NOTES_MAX:
        raise InvalidInput(f"Notes are too long ({len(notes)} characters; at most {NOTES_MAX}).")
    consult, lead = _consult_for_update(session, actor, consult_id, seen_version)
    if consult.status not in (ConsultStatus.BOOKED.value, ConsultStatus.COMPLETED.value):
        raise InvalidInput(
            f"Only a booked consult can be completed (this one is {consult.status})."
        )
    before = {
        "status": consult.status,
        "candidate": consult.candidate,
        "topics": consult.topics,
        "outcome_notes": consult.outcome_notes,
    }
    consult.status = ConsultStatus.COMPLETED.value
    consult.candidate = candidate.value
    consult.topics = ",".join(t.value for t in ConsultTopic if t in chosen)
    consult.outcome_notes = notes or None
    consult.updated_at = now
    session.add(consult)
    if Stage(lead.stage) == Stage.CONSULT_SCHEDULED:
        transition(
            session=session, lead=lead, to=Stage.CONSULT_COMPLETED, actor_id=actor.id, at=now
        )
    else:
        bump(session, lead, actor_id=actor.id, at=now)
    after = {
        "status": consult.status,
        "candidate": consult.candidate,
        "topics": consult.topics,
        "outcome_notes": consult.outcome_notes,
    }
    audit.record(
        session,
        actor_id=actor.id,
        action="consult.complete",
        lead_id=lead.id,
        entity="consult",
        entity_id=consult.id,
        details=audit.diff(before, after),
        at=now,
    )
    session.flush()
    return consult


# --- Reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsultView:
    """One consult with what the Consults page and the lead page show beside it."""

    id: int
    lead_id: int
    lead_reference: str
    lead_name: str
    lead_phone: str | None
    lead_stage: str
    lead_version: int
    provider_id: int
    provider_name: str
    starts_at: datetime
    ends_at: datetime
    status: str
    candidate: str | None
    topics: tuple[ConsultTopic, ...]
    outcome_notes: str | None


def list_consults(
    *,
    session: Session,
    actor: Actor,
    start: datetime | None = None,
    end: datetime | None = None,
    provider_id: int | None = None,
    lead_id: int | None = None,
) -> list[ConsultView]:
    """Consults starting in [start, end), for one provider and/or lead, in time order."""
    require(actor, Perm.LEADS_READ)
    statement = (
        select(Consult, Lead, Contact, User)
        .join(Lead, col(Lead.id) == Consult.lead_id)
        .join(Contact, col(Contact.id) == Lead.contact_id)
        .join(User, col(User.id) == Consult.provider_id)
    )
    if start is not None:
        statement = statement.where(Consult.starts_at >= start)
    if end is not None:
        statement = statement.where(Consult.starts_at < end)
    if provider_id is not None:
        statement = statement.where(Consult.provider_id == provider_id)
    if lead_id is not None:
        statement = statement.where(Consult.lead_id == lead_id)
    statement = statement.order_by(col(Consult.starts_at), col(Consult.id))
    views = []
    for consult, lead, contact, provider in session.exec(statement).all():
        views.append(
            ConsultView(
                id=consult.id or 0,
                lead_id=lead.id or 0,
                lead_reference=lead.reference,
                lead_name=f"{contact.first_name} {contact.last_name}".strip() or "(no name)",
                lead_phone=contact.phone,
                lead_stage=lead.stage,
                lead_version=lead.version,
                provider_id=provider.id or 0,
                provider_name=provider.name or provider.email,
                starts_at=as_utc(consult.starts_at),
                ends_at=as_utc(consult.ends_at),
                status=consult.status,
                candidate=consult.candidate,
                topics=tuple(parse_topics(consult.topics)),
                outcome_notes=consult.outcome_notes,
            )
        )
    return views


@dataclass(frozen=True)
class LeadConsults:
    """A lead's consults (oldest first) with the lead's stage and version, for its page."""

    lead_id: int
    stage: Stage
    version: int
    is_open: bool
    consults: list[ConsultView]

    @property
    def booked(self) -> ConsultView | None:
        return next((c for c in self.consults if c.status == ConsultStatus.BOOKED), None)


def lead_consults(*, session: Session, actor: Actor, lead_id: int) -> LeadConsults:
    """Everything the lead page's consult section shows."""
    require(actor, Perm.LEADS_READ)
    lead = session.get(Lead, lead_id, populate_existing=True)
    if lead is None:
        raise NotFound(f"Lead {lead_id} does not exist.")
    return LeadConsults(
        lead_id=lead_id,
        stage=Stage(lead.stage),
        version=lead.version,
        is_open=lead.is_open,
        consults=list_consults(session=session, actor=actor, lead_id=lead_id),
    )
