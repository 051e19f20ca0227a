"""One lead as the care team works it: what the lead page shows, and every action it offers.

Each action takes the version of the lead the coordinator had on screen (`seen_version`) and
goes through `crm.concurrency.lock_lead`, so a save based on an outdated screen is refused
with StaleEdit (who changed it, when) instead of silently overwriting a colleague's change.
Services never commit; the caller's unit of work does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from crm import audit, catalog, clinic_settings, pipeline
from crm.access import Actor, Perm, require
from crm.clinic_settings import ClinicConfig
from crm.concurrency import bump, lock_lead
from crm.enums import CLOSED_STAGES, Channel, ContactMethod, Outcome, Stage
from crm.errors import InvalidInput, InvalidTransition, NotFound, ReasonRequired
from crm.models import Contact, ContactAttempt, Lead, Note, Service, ServiceArea, User
from crm.timeutil import as_utc, utcnow
from crm.triage import badges, placement, sla_state
from crm.validation import (
    MSG_REACH,
    FieldErrors,
    email_key,
    format_phone_national,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_zip,
)

__all__ = [
    "SECTION_MOVES",
    "LeadView",
    "add_note",
    "get_lead",
    "log_attempt",
    "mailto_url",
    "manual_moves",
    "move",
    "reasons_for",
    "set_next_action",
    "tel_url",
    "update_contact",
]

S = Stage

# Moves the consult, screening and infusion sections make, because each needs the record
# behind it (a booked consult, a provider's screening decision, an appointment). The lead
# page's move buttons offer every other allowed move.
SECTION_MOVES: frozenset[tuple[Stage, Stage]] = frozenset(
    {
        (S.CONTACTED, S.CONSULT_SCHEDULED),
        (S.CONSULT_SCHEDULED, S.CONSULT_COMPLETED),
        (S.CONSULT_SCHEDULED, S.CONTACTED),
        (S.CONSULT_COMPLETED, S.NOT_ELIGIBLE),
        (S.SCREENING, S.CLEARED),
        (S.SCREENING, S.NOT_ELIGIBLE),
        (S.CLEARED, S.INFUSION_SCHEDULED),
        (S.INFUSION_SCHEDULED, S.INFUSION_COMPLETED),
        (S.INFUSION_SCHEDULED, S.CLEARED),
    }
)

NOTE_MAX = 10_000
ATTEMPT_NOTE_MAX = 2_000
CLOSED_NOTE_MAX = 2_000
NEXT_ACTION_MAX = 200
OTHER = "Other"
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


# Everything the lead page header and forms show, as plain data.
@dataclass(frozen=True)
class LeadView:
    id: int
    reference: str
    version: int
    stage: str
    stage_label: str
    is_open: bool
    urgent: bool
    crisis_reason: str | None
    first_name: str
    last_name: str
    name: str
    email: str | None
    phone: str | None
    phone_display: str | None
    tel_url: str | None
    mailto_url: str | None
    zip_code: str | None
    city: str | None
    preferred_contact: str | None
    best_time: str | None
    do_not_contact: bool
    service: str
    area: str
    source: str
    heard_about: str | None
    owner_id: int | None
    owner: str
    attempts: int
    created_at: datetime
    first_response_due_at: datetime | None
    first_response_at: datetime | None
    sla: str
    sla_late: bool
    next_action: str | None
    next_action_due_at: datetime | None
    due_at: datetime | None
    badges: tuple[str, ...]
    closed_reason: str | None
    closed_note: str | None
    updated_at: datetime
    updated_by_id: int | None
    updated_by: str | None
    moves: tuple[str, ...]


def tel_url(phone: str | None) -> str | None:
    """A click-to-call link, only for a stored E.164 number (nothing else gets into the URL)."""
    if phone and _E164.fullmatch(phone):
        return f"tel:{phone}"
    return None


def mailto_url(email: str | None) -> str | None:
    """A mailto link for a valid address, percent-encoded so no character can break out."""
    if not email:
        return None
    try:
        normalized = normalize_email(email)
    except ValueError:
        return None
    return "mailto:" + quote(normalized or "", safe="@.")


def manual_moves(stage: Stage | str) -> list[Stage]:
    """The allowed moves the lead page offers as buttons (pipeline order)."""
    src = Stage(stage)
    return [dst for dst in pipeline.allowed_moves(src) if (src, dst) not in SECTION_MOVES]


def reasons_for(stage: Stage | str, config: ClinicConfig) -> list[str]:
    """The configured reasons a move to `stage` must pick from (empty when none is asked)."""
    if Stage(stage) == S.LOST:
        return list(config.lost_reasons)
    if Stage(stage) == S.NOT_ELIGIBLE:
        return list(config.not_eligible_reasons)
    return []


def _label(user: User | None) -> str | None:
    return (user.name or user.email) if user else None


def get_lead(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    record_view: bool = False,
    now: datetime | None = None,
    config: ClinicConfig | None = None,
) -> LeadView:
    """The lead as its page shows it; `record_view` writes the "lead.view" audit event."""
    require(actor, Perm.LEADS_READ)
    now = now or utcnow()
    config = config or clinic_settings.load(session)
    owner, editor = aliased(User), aliased(User)
    found = session.exec(
        select(Lead, Contact, Service.name, ServiceArea.name, owner, editor)  # type: ignore[call-overload]
        .join(Contact, col(Contact.id) == Lead.contact_id)
        .outerjoin(Service, col(Service.id) == Lead.service_id)
        .outerjoin(ServiceArea, col(ServiceArea.id) == Lead.service_area_id)
        .outerjoin(owner, owner.id == Lead.owner_id)
        .outerjoin(editor, editor.id == Lead.updated_by_id)
        .where(Lead.id == lead_id)
        .execution_options(populate_existing=True)
    ).first()
    if found is None:
        raise NotFound(f"Lead {lead_id} does not exist.")
    lead, contact, service, area, owner_user, editor_user = found
    if record_view:
        audit.record(
            session,
            actor_id=actor.id,
            action="lead.view",
            lead_id=lead.id,
            entity="lead",
            entity_id=lead.id,
        )
    due = as_utc(lead.due_at) if lead.due_at else None
    overdue = bool(lead.is_open and due is not None and due < now)
    sla_text, sla_late = sla_state(
        first_response_due_at=lead.first_response_due_at,
        first_response_at=lead.first_response_at,
        now=now,
        config=config,
    )
    return LeadView(
        id=lead.id or 0,
        reference=lead.reference,
        version=lead.version,
        stage=lead.stage,
        stage_label=Stage(lead.stage).label,
        is_open=lead.is_open,
        urgent=lead.urgent,
        crisis_reason=lead.crisis_reason,
        first_name=contact.first_name,
        last_name=contact.last_name,
        name=f"{contact.first_name} {contact.last_name}".strip(),
        email=contact.email,
        phone=contact.phone,
        phone_display=format_phone_national(contact.phone) if contact.phone else None,
        tel_url=tel_url(contact.phone),
        mailto_url=mailto_url(contact.email),
        zip_code=contact.zip_code,
        city=contact.city,
        preferred_contact=contact.preferred_contact,
        best_time=contact.best_time,
        do_not_contact=contact.do_not_contact,
        service=service or "",
        area=placement(area, lead.out_of_area),
        source=lead.source,
        heard_about=lead.heard_about,
        owner_id=lead.owner_id,
        owner=_label(owner_user) or "",
        attempts=lead.attempts,
        created_at=as_utc(lead.created_at),
        first_response_due_at=lead.first_response_due_at,
        first_response_at=lead.first_response_at,
        sla=sla_text if lead.is_open else "",
        sla_late=sla_late and lead.is_open,
        next_action=lead.next_action,
        next_action_due_at=lead.next_action_due_at,
        due_at=due,
        badges=badges(
            urgent=lead.urgent,
            resubmitted=lead.resubmitted,
            possible_duplicate=lead.possible_duplicate_of_id is not None,
            out_of_area=lead.out_of_area,
            overdue=overdue,
        ),
        closed_reason=lead.closed_reason,
        closed_note=lead.closed_note,
        updated_at=as_utc(lead.updated_at),
        updated_by_id=lead.updated_by_id,
        updated_by=_label(editor_user),
        moves=tuple(s.value for s in manual_moves(lead.stage)),
    )


def _recompute_due(lead: Lead) -> None:
    """What the queue sorts on: the first-response deadline until answered, then the next action."""
    candidates: list[datetime] = []
    if lead.next_action_due_at is not None:
        candidates.append(as_utc(lead.next_action_due_at))
    if lead.first_response_at is None and lead.first_response_due_at is not None:
        deadline = as_utc(lead.first_response_due_at)
        if lead.urgent:  # an urgent lead is due the moment it arrives
            deadline = min(deadline, as_utc(lead.created_at))
        candidates.append(deadline)
    lead.due_at = min(candidates) if candidates else None


def _text(value: str | None, *, limit: int, what: str) -> str | None:
    text = (value or "").strip()
    if "\x00" in text:
        raise InvalidInput(f"The {what} contains a character that can't be stored.")
    if len(text) > limit:
        raise InvalidInput(f"The {what} is too long ({len(text):,} characters; at most {limit:,}).")
    return text or None


def log_attempt(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    seen_version: int | None,
    channel: Channel | str,
    outcome: Outcome | str,
    note: str | None = None,
    now: datetime | None = None,
) -> int:
    """Log a call, text, email or voicemail; returns the lead's new version.

    The first attempt stops the speed-to-lead clock; reaching a new lead moves it to contacted.
    """
    require(actor, Perm.LEADS_WRITE)
    try:
        channel, outcome = Channel(channel), Outcome(outcome)
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    note = _text(note, limit=ATTEMPT_NOTE_MAX, what="note")
    now = now or utcnow()
    lead = lock_lead(session, lead_id=lead_id, seen_version=seen_version)
    attempt = ContactAttempt(
        lead_id=lead_id,
        actor_id=actor.id,
        at=now,
        channel=channel.value,
        outcome=outcome.value,
        note=note,
    )
    session.add(attempt)
    lead.attempts += 1
    first = lead.first_response_at is None
    if first:
        lead.first_response_at = now
    _recompute_due(lead)
    session.flush()
    audit.record(
        session,
        actor_id=actor.id,
        action="lead.attempt",
        lead_id=lead_id,
        entity="contactattempt",
        entity_id=attempt.id,
        details={"channel": channel.value, "outcome": outcome.value, "first_response": first},
        at=now,
    )
    if outcome == Outcome.REACHED and Stage(lead.stage) == S.NEW:
        pipeline.transition(session=session, lead=lead, to=S.CONTACTED, actor_id=actor.id, at=now)
    else:
        bump(session, lead, actor_id=actor.id, at=now)
    session.flush()
    return lead.version


def add_note(
    *, session: Session, actor: Actor, lead_id: int, body: str, now: datetime | None = None
) -> int:
    """Add a note to the lead's timeline; returns the note's id.

    A note changes nothing already on the lead, so it needs no version check: two people
    writing notes at once both keep theirs.
    """
    require(actor, Perm.LEADS_WRITE)
    text = _text(body, limit=NOTE_MAX, what="note")
    if text is None:
        raise InvalidInput("Write the note first.")
    if session.get(Lead, lead_id) is None:
        raise NotFound(f"Lead {lead_id} does not exist.")
    now = now or utcnow()
    note = Note(lead_id=lead_id, actor_id=actor.id, at=now, body=text)
    session.add(note)
    session.flush()
    audit.record(
        session,
        actor_id=actor.id,
        action="lead.note",
        lead_id=lead_id,
        entity="note",
        entity_id=note.id,
        at=now,
    )
    return note.id or 0


def set_next_action(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    seen_version: int | None,
    action: str | None,
    due: datetime | None,
    now: datetime | None = None,
) -> int:
    """Set (or clear) what happens next and when it is due; the queue sorts on it."""
    require(actor, Perm.LEADS_WRITE)
    text = _text(action, limit=NEXT_ACTION_MAX, what="next action")
    if due is not None and due.tzinfo is None:
        raise InvalidInput("The due time needs a time zone.")
    if text is None and due is not None:
        raise InvalidInput("Say what the next action is.")
    now = now or utcnow()
    lead = lock_lead(session, lead_id=lead_id, seen_version=seen_version)
    before = {"next_action": lead.next_action, "next_action_due_at": lead.next_action_due_at}
    lead.next_action = text
    lead.next_action_due_at = as_utc(due) if due else None
    _recompute_due(lead)
    after = {"next_action": lead.next_action, "next_action_due_at": lead.next_action_due_at}
    bump(session, lead, actor_id=actor.id, at=now)
    audit.record(
        session,
        actor_id=actor.id,
        action="lead.next_action",
        lead_id=lead_id,
        entity="lead",
        entity_id=lead_id,
        details={k: [before[k], after[k]] for k in after},
        at=now,
    )
    session.flush()
    return lead.version


# The contact fields the lead page edits, with the label errors use.
CONTACT_FIELDS: dict[str, str] = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "phone": "Phone",
    "zip_code": "ZIP code",
    "city": "City",
    "preferred_contact": "Preferred contact",
    "best_time": "Best time to reach",
}


def _validated_contact(values: Mapping[str, Any]) -> dict[str, Any]:
    """The contact fields normalized exactly as intake does; FieldErrors lists every problem."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}

    def check(name: str, normalize: Any) -> None:
        raw = values.get(name)
        if raw is not None and not isinstance(raw, str):
            errors[name] = "Enter this as plain text"
            return
        try:
            clean[name] = normalize(raw)
        except ValueError as err:
            errors[name] = str(err)

    check("first_name", lambda v: normalize_name(v, field="first_name"))
    check("last_name", lambda v: normalize_name(v, field="last_name"))
    check("email", normalize_email)
    check("phone", normalize_phone)
    check("zip_code", normalize_zip)
    check("city", lambda v: normalize_name(v, field="city") or None)
    check("best_time", lambda v: (v or "").strip()[:200] or None)

    def contact_method(v: str | None) -> str | None:
        text = (v or "").strip().lower()
        if text and text not in {m.value for m in ContactMethod}:
            raise ValueError("Choose call, text or email")
        return text or None

    check("preferred_contact", contact_method)
    if not errors:
        if not clean.get("first_name") and not clean.get("last_name"):
            errors["first_name"] = "Enter a first or last name"
        if not clean.get("email") and not clean.get("phone"):
            errors["email"] = errors["phone"] = MSG_REACH
    if errors:
        raise FieldErrors(errors)
    clean["do_not_contact"] = bool(values.get("do_not_contact", False))
    return clean


def update_contact(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    seen_version: int | None,
    values: Mapping[str, Any],
    now: datetime | None = None,
) -> int:
    """Correct the person's contact details (validated as intake validates them).

    A new ZIP code or city places the lead in its service area again.
    """
    require(actor, Perm.LEADS_WRITE)
    clean = _validated_contact(values)
    now = now or utcnow()
    lead = lock_lead(session, lead_id=lead_id, seen_version=seen_version)
    contact = session.get(Contact, lead.contact_id)
    if contact is None:
        raise NotFound(f"Lead {lead_id} has no contact.")
    before = {k: getattr(contact, k) for k in clean}
    changed = audit.diff(before, clean)
    if not changed:
        return lead.version
    for key, value in clean.items():
        setattr(contact, key, value)
    # Cut to the column's size as intake does: lower() can lengthen a name ("İ" -> "i̇").
    contact.name_key = f"{contact.first_name} {contact.last_name}".strip().lower()[:170]
    contact.email_key = email_key(contact.email) if contact.email else None
    contact.updated_at = now
    contact.version += 1
    session.add(contact)
    if {"zip_code", "city"} & changed.keys():
        area = catalog.resolve_area(
            catalog.area_rules(session), zip_code=contact.zip_code, city=contact.city
        )
        lead.service_area_id = area.id if area else None
        lead.out_of_area = area is None
    bump(session, lead, actor_id=actor.id, at=now)
    audit.record(
        session,
        actor_id=actor.id,
        action="lead.update",
        lead_id=lead_id,
        entity="contact",
        entity_id=contact.id,
        details=changed,
        at=now,
    )
    session.flush()
    return lead.version


def move(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    seen_version: int | None,
    to: Stage | str,
    reason: str | None = None,
    note: str | None = None,
    now: datetime | None = None,
    config: ClinicConfig | None = None,
) -> int:
    """Move the lead along an allowed move offered by the lead page (reopening included).

    Lost and not eligible need a reason from the clinic's list; "Other" needs a note too.
    """
    require(actor, Perm.LEADS_WRITE)
    dst = Stage(to)
    note = _text(note, limit=CLOSED_NOTE_MAX, what="note")
    reason = (reason or "").strip() or None
    config = config or clinic_settings.load(session)
    reasons = reasons_for(dst, config)
    if dst in pipeline.NEEDS_REASON:
        if reason is None:
            raise ReasonRequired(f"Say why the lead is {dst.label.lower()}.")
        if reasons and reason not in reasons:
            raise ReasonRequired(f"Choose one of the reasons: {', '.join(reasons)}.")
        if reason == OTHER and not note:
            raise ReasonRequired('Add a note saying what "Other" means.')
    now = now or utcnow()
    lead = lock_lead(session, lead_id=lead_id, seen_version=seen_version)
    src = Stage(lead.stage)
    if (src, dst) in SECTION_MOVES:
        raise InvalidTransition(
            f"{dst.label} is set from the consult, screening or infusion section of the lead page."
        )
    reopening = pipeline.is_reopening(src, dst)
    pipeline.transition(
        session=session, lead=lead, to=dst, actor_id=actor.id, reason=reason, note=note, at=now
    )
    if dst == S.CONTACTED and lead.first_response_at is None:
        lead.first_response_at = now  # reached somehow: the speed-to-lead clock stops
    if reopening:
        lead.next_action_due_at = lead.next_action_due_at or now  # back in the queue, due now
    if dst not in CLOSED_STAGES:
        _recompute_due(lead)
    session.add(lead)
    session.flush()
    return lead.version
