"""Every lead enters here: web form, HTTP API, phone inquiry or CSV import.

`submit()` stores one validated inquiry: it recognizes a returning person (one person, one
contact), adds a re-submission to their open lead instead of opening a second one, flags
crisis language and possible duplicates for a human, places the lead in a service area and
starts the first-response clock. It commits nothing: the caller owns the transaction.
"""

from __future__ import annotations

import json
import secrets
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, or_, text
from sqlmodel import Session, col, select

from crm import audit, catalog, clinic_settings, crisis, notify, sla, triage
from crm.access import Actor, Perm, require
from crm.clinic_settings import ClinicConfig
from crm.enums import Channel, Outcome, Source, Stage
from crm.models import Contact, ContactAttempt, Lead, Note, StageChange, Submission
from crm.pipeline import transition
from crm.settings import get_settings
from crm.timeutil import as_utc, utcnow
from crm.validation import IntakeInput, Mode, email_key, validate_intake

__all__ = [
    "CRISIS_RESOURCES",
    "IntakeResult",
    "PhoneIntakeResult",
    "log_phone_inquiry",
    "new_reference",
    "next_steps",
    "submit",
    "submit_form",
]

# Crockford-style base32 without the look-alikes (0/O, 1/I/L, U): easy to read out on a call.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_PREFIX = "KC-"
REFERENCE_LENGTH = 6
# Raw-submission keys that carry a credential and are never stored.
_SECRET_KEYS = frozenset({"api_key", "apikey", "x_api_key"})


# What the caller (page, API, importer) needs to answer the person.
@dataclass(frozen=True)
class IntakeResult:
    lead_id: int
    reference: str
    urgent: bool
    created: bool
    resubmitted: bool
    spam: bool


# A phone inquiry's result, plus whether the lead was moved to contacted on the spot.
@dataclass(frozen=True)
class PhoneIntakeResult:
    intake: IntakeResult
    contacted: bool


# Shown first, prominently, to anyone whose inquiry reads as a crisis (US resources).
CRISIS_RESOURCES: tuple[str, ...] = (
    "Call or text 988 to reach the Suicide & Crisis Lifeline: free, confidential, 24 hours a day.",
    "Call 911 if you are in immediate danger.",
)
_CONTACT_VERB = {"call": "call", "text": "text", "email": "email"}


def next_steps(config: ClinicConfig, *, preferred_contact: str | None) -> list[str]:
    """What the person can expect after sending the form, in the clinic's own terms."""
    verb = _CONTACT_VERB.get(preferred_contact or "", "contact")
    return [
        f"A member of our patient care team will {verb} you {sla.describe_first_response(config)}.",
        "Together you'll book your free phone consultation with one of our providers. It "
        f"takes about {config.consult_slot_minutes} minutes: ask anything about the "
        "treatment, what to expect, side effects and cost.",
        "Nothing is decided or booked until you have spoken with us.",
    ]


def new_reference() -> str:
    """A random short reference such as "KC-7QH3XK" (30^6, about 729 million values)."""
    return REFERENCE_PREFIX + "".join(
        secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH)
    )


def submit(
    *,
    session: Session,
    data: IntakeInput,
    actor_id: int | None,
    raw: Mapping[str, Any],
    api_key_id: int | None = None,
    received_at: datetime | None = None,
    config: ClinicConfig | None = None,
) -> IntakeResult:
    """Store one validated inquiry and return what to tell the person (the caller commits).

    A filled honeypot (`data.website`) stores nothing and answers like a success, so a bot
    learns nothing. `config` may be passed by callers that already hold the clinic settings.
    """
    if data.website:
        return IntakeResult(0, new_reference(), False, False, False, True)
    received = as_utc(received_at) if received_at else utcnow()
    config = config or clinic_settings.load(session)
    flag = crisis.assess(message=data.message, crisis_answer=data.crisis_answer)
    crisis_reason = _join_reasons(flag.reasons)
    service_id = _service_id(session, data.service)
    raw_json = _raw_json(raw)
    source = data.source or Source.WEB_FORM.value
    key = email_key(data.email) if data.email else None

    _lock_identity(session, key, data.phone)
    contact = _find_contact(session, key, data.phone)
    if contact is not None:
        _refresh_contact(contact, data, received)
        session.add(contact)
        open_lead = session.exec(
            select(Lead)
            .where(Lead.contact_id == contact.id, Lead.is_open == True)  # noqa: E712
            .order_by(col(Lead.created_at).desc(), col(Lead.id).desc())
            .limit(1)
        ).first()
        if open_lead is not None:
            _resubmit(
                session,
                lead=open_lead,
                data=data,
                urgent=flag.urgent,
                crisis_reason=crisis_reason,
                service_id=service_id,
                actor_id=actor_id,
                received=received,
            )
            _add_submission(
                session,
                open_lead,
                contact,
                data,
                source,
                service_id,
                crisis_reason,
                raw_json,
                api_key_id,
                received,
            )
            _add_callers_words(session, open_lead, data, source, actor_id, received)
            if flag.urgent:
                _alert_after_commit(session, open_lead, config)
            return IntakeResult(
                lead_id=open_lead.id or 0,
                reference=open_lead.reference,
                urgent=open_lead.urgent,
                created=False,
                resubmitted=True,
                spam=False,
            )
        duplicate_of = None
    else:
        contact = _new_contact(data, received)
        duplicate_of = _possible_duplicate(session, contact)
        session.add(contact)
        session.flush()

    area = catalog.resolve_area(catalog.area_rules(session), zip_code=data.zip_code)
    first_due = sla.first_response_due(received, config)
    lead = Lead(
        reference=_unique_reference(session),
        contact_id=contact.id,  # type: ignore[arg-type]
        source=source,
        service_id=service_id,
        service_area_id=area.id if area else None,
        out_of_area=area is None,
        heard_about=data.heard_about,
        stage=Stage.NEW.value,
        is_open=True,
        urgent=flag.urgent,
        crisis_reason=crisis_reason,
        created_at=received,
        updated_at=received,
        updated_by_id=actor_id,
        stage_changed_at=received,
        first_response_due_at=first_due,
        # An urgent lead is due the moment it arrives, so it tops the queue.
        due_at=received if flag.urgent else first_due,
        possible_duplicate_of_id=duplicate_of,
    )
    session.add(lead)
    session.flush()
    session.add(
        StageChange(
            lead_id=lead.id,  # type: ignore[arg-type]
            from_stage=None,
            to_stage=Stage.NEW.value,
            actor_id=actor_id,
            at=received,
        )
    )
    _add_submission(
        session,
        lead,
        contact,
        data,
        source,
        service_id,
        crisis_reason,
        raw_json,
        api_key_id,
        received,
    )
    _add_callers_words(session, lead, data, source, actor_id, received)
    audit.record(
        session,
        actor_id=actor_id,
        action="lead.create",
        lead_id=lead.id,
        entity="lead",
        entity_id=lead.id,
        details={
            "reference": lead.reference,
            "source": source,
            "urgent": lead.urgent,
            "returning_contact": bool(contact.created_at < received),
            "possible_duplicate_of": duplicate_of,
            "api_key_id": api_key_id,
        },
        at=received,
    )
    _assign_new_lead(session, lead, config)
    if flag.urgent:
        _alert_after_commit(session, lead, config)
    return IntakeResult(
        lead_id=lead.id or 0,
        reference=lead.reference,
        urgent=lead.urgent,
        created=True,
        resubmitted=False,
        spam=False,
    )


def submit_form(
    *,
    session: Session,
    values: Mapping[str, Any],
    mode: Mode,
    actor_id: int | None = None,
    api_key_id: int | None = None,
    received_at: datetime | None = None,
    config: ClinicConfig | None = None,
) -> IntakeResult:
    """Validate raw form values with the clinic's services, then submit; raises FieldErrors."""
    # The forms offer the catalogue as choices; the API and imports may name anything.
    names = (
        [name for _id, name in catalog.services(session)] if mode in ("public", "phone") else None
    )
    data = validate_intake(
        values,
        mode=mode,
        check_deliverability=get_settings().check_email_deliverability,
        services=names,
    )
    return submit(
        session=session,
        data=data,
        actor_id=actor_id,
        raw=dict(values),
        api_key_id=api_key_id,
        received_at=received_at,
        config=config,
    )


def log_phone_inquiry(
    *,
    session: Session,
    actor: Actor,
    values: Mapping[str, Any],
    contacted_now: bool,
    config: ClinicConfig | None = None,
) -> PhoneIntakeResult:
    """A coordinator logs an inbound call; optionally records it as the first reach-out."""
    require(actor, Perm.PHONE_INTAKE)
    form = {**values, "source": Source.PHONE.value}
    result = submit_form(
        session=session, values=form, mode="phone", actor_id=actor.id, config=config
    )
    contacted = False
    if contacted_now:
        lead = session.get(Lead, result.lead_id)
        if lead is not None:
            record_reached_by_phone(session=session, lead=lead, actor_id=actor.id)
            contacted = lead.stage == Stage.CONTACTED.value
    return PhoneIntakeResult(intake=result, contacted=contacted)


def record_reached_by_phone(*, session: Session, lead: Lead, actor_id: int | None) -> None:
    """Log a reached call and move a new lead to contacted (the first response is done)."""
    now = utcnow()
    session.add(
        ContactAttempt(
            lead_id=lead.id,  # type: ignore[arg-type]
            actor_id=actor_id,
            at=now,
            channel=Channel.CALL.value,
            outcome=Outcome.REACHED.value,
            note="Inbound call logged at intake",
        )
    )
    lead.attempts += 1
    if lead.first_response_at is None:
        lead.first_response_at = now
    lead.due_at = lead.next_action_due_at
    audit.record(
        session,
        actor_id=actor_id,
        action="lead.attempt",
        lead_id=lead.id,
        details={"channel": Channel.CALL.value, "outcome": Outcome.REACHED.value},
        at=now,
    )
    if lead.stage == Stage.NEW.value:
        transition(session=session, lead=lead, to=Stage.CONTACTED, actor_id=actor_id, at=now)
    else:
        lead.version += 1
        lead.updated_at = now
        lead.updated_by_id = actor_id
        session.add(lead)


# --- steps of submit() -------------------------------------------------------------------------


def _alert_after_commit(session: Session, lead: Lead, config: ClinicConfig) -> None:
    """Email the on-call address about an urgent submission once it is committed.

    Every intake path (form, phone, API, import) comes through here, and the alert only
    leaves after the caller's commit: an alert about a rolled-back lead would point nowhere.
    """
    lead_id, reference = lead.id or 0, lead.reference
    event.listen(
        session,
        "after_commit",
        lambda _s: notify.notify_urgent_lead(lead_id=lead_id, reference=reference, config=config),
        once=True,
    )


def _assign_new_lead(session: Session, lead: Lead, config: ClinicConfig) -> None:
    """Round-robin assignment of a new lead, when the clinic turned it on."""
    triage.assign_round_robin(session=session, lead=lead, config=config)


def _lock_identity(session: Session, key: str | None, phone: str | None) -> None:
    """Serialize concurrent submissions of the same person so both find one contact.

    PostgreSQL: a transaction-scoped advisory lock per email/phone. SQLite: a no-op write
    that takes the database's write lock now (SQLite serializes writers anyway), so the
    lookup that follows sees whatever a concurrent submission has just committed.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        for ident in sorted(filter(None, (key, phone))):
            lock_id = zlib.crc32(ident.encode("utf-8")) - 2**31
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_id})
    elif dialect == "sqlite":
        session.execute(text("UPDATE contact SET version = version WHERE 1 = 0"))


def _find_contact(session: Session, key: str | None, phone: str | None) -> Contact | None:
    """The existing contact with this email (preferred) or phone number, oldest first."""
    conditions = []
    if key:
        conditions.append(col(Contact.email_key) == key)
    if phone:
        conditions.append(col(Contact.phone) == phone)
    if not conditions:
        return None
    matches = session.exec(select(Contact).where(or_(*conditions)).order_by(col(Contact.id))).all()
    for contact in matches:
        if key and contact.email_key == key:
            return contact
    return matches[0] if matches else None


def _new_contact(data: IntakeInput, received: datetime) -> Contact:
    return Contact(
        first_name=data.first_name,
        last_name=data.last_name,
        name_key=_name_key(data.first_name, data.last_name),
        email=data.email,
        email_key=email_key(data.email) if data.email else None,
        phone=data.phone,
        zip_code=data.zip_code,
        preferred_contact=data.preferred_contact,
        best_time=data.best_time,
        consent=data.consent,
        consent_at=received if data.consent else None,
        created_at=received,
        updated_at=received,
    )


def _refresh_contact(contact: Contact, data: IntakeInput, received: datetime) -> None:
    """Fill what the returning person adds; never overwrite what we matched them on."""
    changed = False
    for name in ("email", "phone", "zip_code", "first_name", "last_name"):
        if not getattr(contact, name) and getattr(data, name):
            setattr(contact, name, getattr(data, name))
            changed = True
    if contact.email and not contact.email_key:
        contact.email_key = email_key(contact.email)
    contact.name_key = _name_key(contact.first_name, contact.last_name)
    # How and when to reach them: the latest answer is the one that counts.
    for name in ("preferred_contact", "best_time"):
        if getattr(data, name) and getattr(data, name) != getattr(contact, name):
            setattr(contact, name, getattr(data, name))
            changed = True
    if data.consent and not contact.consent:
        contact.consent = True
        contact.consent_at = received
        changed = True
    if changed:
        contact.updated_at = received
        contact.version += 1


def _possible_duplicate(session: Session, contact: Contact) -> int | None:
    """The newest lead of another contact with the same name and ZIP, if any (flag, never merge)."""
    if not contact.name_key or not contact.zip_code:
        return None
    zip5 = contact.zip_code[:5]
    return session.exec(
        select(Lead.id)
        .join(Contact, col(Contact.id) == col(Lead.contact_id))
        .where(
            Contact.name_key == contact.name_key,
            func.substr(Contact.zip_code, 1, 5) == zip5,
        )
        .order_by(col(Lead.created_at).desc(), col(Lead.id).desc())
        .limit(1)
    ).first()


def _resubmit(
    session: Session,
    *,
    lead: Lead,
    data: IntakeInput,
    urgent: bool,
    crisis_reason: str | None,
    service_id: int | None,
    actor_id: int | None,
    received: datetime,
) -> None:
    """The person wrote again while their lead is open: mark it, escalate it if needed."""
    escalated = urgent and not lead.urgent
    lead.resubmitted = True
    lead.resubmitted_at = received
    if urgent:
        lead.urgent = True
        lead.crisis_reason = _join_reasons(tuple(filter(None, (lead.crisis_reason, crisis_reason))))
        lead.due_at = received if lead.due_at is None else min(as_utc(lead.due_at), received)
    if lead.service_id is None and service_id is not None:
        lead.service_id = service_id
    if not lead.heard_about and data.heard_about:
        lead.heard_about = data.heard_about
    lead.updated_at = received
    lead.updated_by_id = actor_id
    lead.version += 1
    session.add(lead)
    audit.record(
        session,
        actor_id=actor_id,
        action="lead.resubmit",
        lead_id=lead.id,
        entity="lead",
        entity_id=lead.id,
        details={"source": data.source, "urgent": lead.urgent, "escalated": escalated},
        at=received,
    )


def _add_submission(
    session: Session,
    lead: Lead,
    contact: Contact,
    data: IntakeInput,
    source: str,
    service_id: int | None,
    crisis_reason: str | None,
    raw_json: str,
    api_key_id: int | None,
    received: datetime,
) -> None:
    session.add(
        Submission(
            lead_id=lead.id,  # type: ignore[arg-type]
            contact_id=contact.id,  # type: ignore[arg-type]
            received_at=received,
            source=source,
            service_id=service_id,
            message=data.message,  # exactly as typed
            crisis_answer=data.crisis_answer,
            crisis_reason=crisis_reason,
            raw=raw_json,
            api_key_id=api_key_id,
        )
    )


def _add_callers_words(
    session: Session,
    lead: Lead,
    data: IntakeInput,
    source: str,
    actor_id: int | None,
    received: datetime,
) -> None:
    """On a phone inquiry the caller's own words become a note on the lead."""
    if source == Source.PHONE.value and data.message:
        note = Note(lead_id=lead.id, actor_id=actor_id, at=received, body=data.message)  # type: ignore[arg-type]
        session.add(note)


def _service_id(session: Session, name: str | None) -> int | None:
    if not name:
        return None
    wanted = " ".join(name.casefold().split())
    for service_id, service_name in catalog.services(session, active_only=False):
        if " ".join(service_name.casefold().split()) == wanted:
            return service_id
    return None


def _unique_reference(session: Session) -> str:
    for _ in range(20):
        reference = new_reference()
        if session.exec(select(Lead.id).where(Lead.reference == reference)).first() is None:
            return reference
    raise RuntimeError("could not find a free lead reference")  # 20 collisions in 729M: broken RNG


def _raw_json(raw: Mapping[str, Any]) -> str:
    """The submission as received, minus credentials; ASCII-escaped so any text is storable."""
    cleaned = {
        str(k): v
        for k, v in raw.items()
        if str(k).strip().lower().replace("-", "_") not in _SECRET_KEYS
    }
    return json.dumps(cleaned, default=str, ensure_ascii=True, sort_keys=True)


def _join_reasons(reasons: tuple[str, ...]) -> str | None:
    if not reasons:
        return None
    joined = "; ".join(reasons)
    return joined if len(joined) <= 1000 else joined[:997] + "..."


def _name_key(first: str, last: str) -> str:
    return " ".join(f"{first} {last}".lower().split())[:170]
