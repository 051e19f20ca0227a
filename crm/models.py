"""Every table of the CRM, in one module (SQLModel's advice: no circular imports).

Conventions: timestamps are aware UTC (`crm.timeutil.utcnow`); choice columns hold the value
of an enum from `crm.enums` (the enum is the only spelling); JSON is stored as text so the
schema is the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from crm.timeutil import utcnow

# --- Clinic-editable catalogue -------------------------------------------------------------


# Where the clinic serves people; a lead is placed here from its ZIP code or city.
class ServiceArea(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    counties: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    cities: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    zip_codes: str = Field(default="[]", sa_column=Column(Text, nullable=False, server_default="[]"))
    active: bool = True
    sort_order: int = 0


# What a person seeks help with (depression, chronic pain, ...), clinic-editable.
class Service(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)
    description: str = Field(default="", max_length=500)
    active: bool = True
    sort_order: int = 0


# One clinic setting (business hours, SLA, reasons, SMTP, ...) as a JSON value.
class ClinicSetting(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=80)
    value: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")


# --- Staff -----------------------------------------------------------------------------------


# A staff account; role is a crm.enums.Role value.
class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    name: str = Field(default="", max_length=120)
    role: str = Field(max_length=20)
    is_provider: bool = False
    active: bool = True
    away: bool = False
    password_hash: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    failed_logins: int = 0
    locked_until: datetime | None = None
    last_assigned_at: datetime | None = None


# A server-side login session; the cookie carries a signed random token whose hash is `id`.
class AuthSession(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=128)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    ended_at: datetime | None = None
    ip: str | None = Field(default=None, max_length=64)
    # When the one-time login ticket was exchanged for the cookie (a ticket works only once).
    cookie_issued_at: datetime | None = None


# One login try, kept to slow down and lock out repeated failures per account and address.
class LoginAttempt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    email_key: str = Field(max_length=254, index=True)
    ip: str | None = Field(default=None, max_length=64, index=True)
    ok: bool = False


# When a provider takes consults: one row per weekday window, clinic-local wall time.
class ProviderAvailability(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    provider_id: int = Field(foreign_key="user.id", index=True)
    weekday: int = Field(ge=0, le=6)  # Monday = 0, as datetime.weekday()
    start_time: time
    end_time: time


# An API key for the website's form posts; only a hash of the key is stored.
class ApiKey(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80, unique=True)
    key_hash: str = Field(max_length=128, unique=True)
    key_prefix: str = Field(max_length=16)
    allowed_origins: str = Field(default="", max_length=2000)  # space-separated
    created_at: datetime = Field(default_factory=utcnow)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


# --- People and their inquiries --------------------------------------------------------------


# One person. Email and phone are normalized so a returning person is recognized.
class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    first_name: str = Field(default="", max_length=80)
    last_name: str = Field(default="", max_length=80)
    name_key: str = Field(default="", max_length=170, index=True)  # lower("first last")
    email: str | None = Field(default=None, max_length=254)
    email_key: str | None = Field(default=None, max_length=254, index=True)  # lower(email)
    phone: str | None = Field(default=None, max_length=20, index=True)  # E.164
    zip_code: str | None = Field(default=None, max_length=10, index=True)
    city: str | None = Field(default=None, max_length=80)
    preferred_contact: str | None = Field(default=None, max_length=10)
    best_time: str | None = Field(default=None, max_length=200)
    consent: bool = False
    consent_at: datetime | None = None
    do_not_contact: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1


# Columns of the dashboard's covering indexes on lead (also in migration 0005).
COHORT_COLUMNS = (
    "created_at", "stage", "service_area_id", "service_id", "source", "owner_id", "urgent",
    "first_response_at", "first_response_due_at", "reached_contacted_at",
    "reached_consult_scheduled_at", "reached_consult_completed_at", "reached_screening_at",
    "reached_cleared_at", "reached_infusion_scheduled_at", "reached_infusion_completed_at",
    "closed_reason",
)  # fmt: skip
AREA_WEEK_COLUMNS = (
    "service_area_id", "created_at", "stage", "service_id", "source", "owner_id",
)  # fmt: skip
AREA_FIRST_INFUSION_COLUMNS = (
    "service_area_id", "reached_infusion_completed_at", "stage", "service_id", "source", "owner_id",
)  # fmt: skip


# One inquiry journey of a contact through the pipeline (stage is a crm.enums.Stage value).
class Lead(SQLModel, table=True):
    __table_args__ = (
        # The triage queue's order (urgent first, then due soonest, no due date last) plus
        # every column its filters read, so a page of any filter is an index-only scan.
        Index(
            "ix_lead_queue",
            "is_open",
            text("urgent DESC"),
            text("(due_at IS NULL)"),
            "due_at",
            "id",
            "stage",
            "owner_id",
            "service_area_id",
            "out_of_area",
            "service_id",
            "source",
            "contact_id",
        ),
        Index("ix_lead_area_created", "service_area_id", "created_at"),
        # The dashboard (crm.metrics): a period's cohort read from the index alone, and the
        # weekly inquiries and first infusions per service area counted by index ranges.
        Index("ix_lead_cohort", *COHORT_COLUMNS),
        Index("ix_lead_area_week", *AREA_WEEK_COLUMNS),
        Index("ix_lead_area_first_infusion", *AREA_FIRST_INFUSION_COLUMNS),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=20, unique=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    source: str = Field(max_length=20)
    service_id: int | None = Field(default=None, foreign_key="service.id")
    service_area_id: int | None = Field(default=None, foreign_key="servicearea.id")
    out_of_area: bool = False
    heard_about: str | None = Field(default=None, max_length=200)
    stage: str = Field(max_length=30, index=True)
    is_open: bool = True
    urgent: bool = False
    crisis_reason: str | None = Field(default=None, max_length=1000)
    owner_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    stage_changed_at: datetime = Field(default_factory=utcnow)
    # Speed to lead: due by the first-response target within business hours.
    first_response_due_at: datetime | None = None
    first_response_at: datetime | None = None
    next_action: str | None = Field(default=None, max_length=200)
    next_action_due_at: datetime | None = None
    # What the queue sorts on: the first-response deadline until answered, then next action.
    due_at: datetime | None = None
    attempts: int = 0
    resubmitted: bool = False
    resubmitted_at: datetime | None = None
    possible_duplicate_of_id: int | None = Field(default=None, foreign_key="lead.id")
    closed_reason: str | None = Field(default=None, max_length=200)
    closed_note: str | None = Field(default=None, max_length=2000)
    closed_at: datetime | None = None
    # First time the lead reached each stage (kept by crm.pipeline.transition; the funnel).
    reached_contacted_at: datetime | None = None
    reached_consult_scheduled_at: datetime | None = None
    reached_consult_completed_at: datetime | None = None
    reached_screening_at: datetime | None = None
    reached_cleared_at: datetime | None = None
    reached_infusion_scheduled_at: datetime | None = None
    reached_infusion_completed_at: datetime | None = None
    # Optimistic concurrency: every change bumps it; a save with an older version is refused.
    version: int = 1


# The stage-change log: what the dashboard's time-in-stage figures are computed from.
class StageChange(SQLModel, table=True):
    # Time in stage per lead without reading the table (crm.metrics.time_in_stage).
    __table_args__ = (
        Index("ix_stagechange_lead_stay", "lead_id", "from_stage", "seconds_in_previous"),
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    from_stage: str | None = Field(default=None, max_length=30)
    to_stage: str = Field(max_length=30)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    at: datetime = Field(default_factory=utcnow, index=True)
    seconds_in_previous: int | None = None
    reason: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)


# One submission as received (web form, API, phone, import), kept raw for audit.
class Submission(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    received_at: datetime = Field(default_factory=utcnow)
    source: str = Field(max_length=20)
    service_id: int | None = Field(default=None, foreign_key="service.id")
    message: str | None = Field(default=None, sa_column=Column(Text))
    crisis_answer: str | None = Field(default=None, max_length=10)
    crisis_reason: str | None = Field(default=None, max_length=1000)
    raw: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    api_key_id: int | None = Field(default=None, foreign_key="apikey.id")


# The first answer to an API call carrying an Idempotency-Key, replayed on retries.
class IdempotencyRecord(SQLModel, table=True):
    key: str = Field(primary_key=True, max_length=300)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    status_code: int
    body: str = Field(sa_column=Column(Text, nullable=False))


# A call, text or email to the person, with its outcome.
class ContactAttempt(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    at: datetime = Field(default_factory=utcnow)
    channel: str = Field(max_length=20)
    outcome: str = Field(max_length=20)
    note: str | None = Field(default=None, max_length=2000)


# A free-text note on a lead (including the caller's own words from a phone inquiry).
class Note(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id")
    at: datetime = Field(default_factory=utcnow)
    body: str = Field(sa_column=Column(Text, nullable=False))


# The free 15-minute phone consult with a provider. A provider can't hold two live consults
# starting at the same time: the partial unique index makes the database refuse the second.
class Consult(SQLModel, table=True):
    __table_args__ = (
        Index(
            "ux_consult_provider_slot",
            "provider_id",
            "starts_at",
            unique=True,
            sqlite_where=text("status != 'cancelled'"),
            postgresql_where=text("status != 'cancelled'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    provider_id: int = Field(foreign_key="user.id")
    starts_at: datetime = Field(index=True)
    ends_at: datetime
    status: str = Field(default="booked", max_length=20)
    booked_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    outcome_notes: str | None = Field(default=None, sa_column=Column(Text))
    candidate: str | None = Field(default=None, max_length=20)
    topics: str = Field(default="", max_length=200)  # comma-separated ConsultTopic values


# One screening checklist answer (yes / no / unknown) for a lead.
class ScreeningAnswer(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("lead_id", "item"),)

    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    item: str = Field(max_length=40)
    answer: str = Field(default="unknown", max_length=10)
    note: str | None = Field(default=None, max_length=1000)
    bp_systolic: int | None = None
    bp_diastolic: int | None = None
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    updated_at: datetime = Field(default_factory=utcnow)


# A screening outcome: cleared, not eligible (with reason) or needs provider review.
class ScreeningDecision(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    outcome: str = Field(max_length=30)
    reason: str | None = Field(default=None, max_length=500)
    decided_by_id: int | None = Field(default=None, foreign_key="user.id")
    decided_at: datetime = Field(default_factory=utcnow)


# An infusion appointment; number 1 is the first infusion, the conversion the clinic counts.
class Appointment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    lead_id: int = Field(foreign_key="lead.id", index=True)
    number: int = 1
    starts_at: datetime = Field(index=True)
    duration_minutes: int = 60
    room: str | None = Field(default=None, max_length=60)
    status: str = Field(default="booked", max_length=20)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None


# --- Audit -------------------------------------------------------------------------------------


# Append-only: who viewed, changed or exported what. Nothing in the app updates or deletes it.
class AuditEvent(SQLModel, table=True):
    __table_args__ = (Index("ix_audit_lead_at", "lead_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    actor_email: str | None = Field(default=None, max_length=254)
    action: str = Field(max_length=40, index=True)
    lead_id: int | None = Field(default=None)
    entity: str | None = Field(default=None, max_length=40)
    entity_id: str | None = Field(default=None, max_length=80)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False, server_default="{}"))
    ip: str | None = Field(default=None, max_length=64)
