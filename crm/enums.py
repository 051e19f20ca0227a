"""Every choice the CRM stores, spelled once. Columns hold the enum's value."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """Where a lead is in its journey; the allowed moves are in crm.pipeline."""

    NEW = "new"
    CONTACTED = "contacted"
    CONSULT_SCHEDULED = "consult_scheduled"
    CONSULT_COMPLETED = "consult_completed"
    SCREENING = "screening"
    CLEARED = "cleared"
    INFUSION_SCHEDULED = "infusion_scheduled"
    INFUSION_COMPLETED = "infusion_completed"
    LOST = "lost"
    NOT_ELIGIBLE = "not_eligible"
    SPAM = "spam"

    @property
    def label(self) -> str:
        return STAGE_LABELS[self]


STAGE_LABELS: dict[Stage, str] = {
    Stage.NEW: "New inquiry",
    Stage.CONTACTED: "Contacted",
    Stage.CONSULT_SCHEDULED: "Consult scheduled",
    Stage.CONSULT_COMPLETED: "Consult completed",
    Stage.SCREENING: "Screening",
    Stage.CLEARED: "Cleared",
    Stage.INFUSION_SCHEDULED: "First infusion scheduled",
    Stage.INFUSION_COMPLETED: "First infusion completed",
    Stage.LOST: "Lost",
    Stage.NOT_ELIGIBLE: "Not eligible",
    Stage.SPAM: "Spam / duplicate",
}

# The forward path, in order: the funnel the dashboard draws.
FUNNEL: tuple[Stage, ...] = (
    Stage.NEW,
    Stage.CONTACTED,
    Stage.CONSULT_SCHEDULED,
    Stage.CONSULT_COMPLETED,
    Stage.SCREENING,
    Stage.CLEARED,
    Stage.INFUSION_SCHEDULED,
    Stage.INFUSION_COMPLETED,
)
# Stages where the journey has ended (a won lead is closed too: the conversion happened).
CLOSED_STAGES: frozenset[Stage] = frozenset(
    {Stage.INFUSION_COMPLETED, Stage.LOST, Stage.NOT_ELIGIBLE, Stage.SPAM}
)
OPEN_STAGES: tuple[Stage, ...] = tuple(s for s in Stage if s not in CLOSED_STAGES)


class Role(StrEnum):
    """A staff member's role; each includes the one before it (see crm.access)."""

    CARE_TEAM = "care_team"
    PROVIDER = "provider"
    MANAGER = "manager"
    ADMIN = "admin"


class Source(StrEnum):
    WEB_FORM = "web_form"
    PHONE = "phone"
    REFERRAL = "referral"
    IMPORT = "import"


class ContactMethod(StrEnum):
    CALL = "call"
    TEXT = "text"
    EMAIL = "email"


class Channel(StrEnum):
    CALL = "call"
    TEXT = "text"
    EMAIL = "email"
    VOICEMAIL = "voicemail"


class Outcome(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"
    LEFT_MESSAGE = "left_message"
    WRONG_NUMBER = "wrong_number"
    BOUNCED = "bounced"


class ConsultStatus(StrEnum):
    BOOKED = "booked"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"


class Candidate(StrEnum):
    YES = "yes"
    NO = "no"
    NEEDS_REVIEW = "needs_review"


class ConsultTopic(StrEnum):
    COST = "cost"
    INSURANCE = "insurance"
    SIDE_EFFECTS = "side_effects"
    DRIVING = "driving"


class ScreeningItem(StrEnum):
    PREGNANCY = "pregnancy"
    SUBSTANCE_USE = "substance_use"
    CARDIOVASCULAR = "cardiovascular"
    HYPERTENSION = "hypertension"
    PSYCHOSIS = "psychosis"
    LIVER_CARDIAC = "liver_cardiac"
    MEDICATIONS = "medications"
    DRIVER_ARRANGED = "driver_arranged"
    RECORDS_RECEIVED = "records_received"


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class ScreeningOutcome(StrEnum):
    CLEARED = "cleared"
    NOT_ELIGIBLE = "not_eligible"
    NEEDS_REVIEW = "needs_review"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
