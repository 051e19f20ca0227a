"""The pipeline: the allowed moves between stages and the one function that makes them."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from crm import audit
from crm.enums import CLOSED_STAGES, Stage
from crm.errors import InvalidTransition, ReasonRequired
from crm.models import Lead, StageChange
from crm.timeutil import utcnow

S = Stage

# Every allowed move, read as "from: to...". Anything not listed is refused.
ALLOWED: dict[Stage, frozenset[Stage]] = {
    S.NEW: frozenset({S.CONTACTED, S.LOST, S.NOT_ELIGIBLE, S.SPAM}),
    S.CONTACTED: frozenset({S.CONSULT_SCHEDULED, S.LOST, S.NOT_ELIGIBLE, S.SPAM}),
    # Back to contacted: a consult no-show or cancellation.
    S.CONSULT_SCHEDULED: frozenset({S.CONSULT_COMPLETED, S.CONTACTED, S.LOST, S.NOT_ELIGIBLE}),
    S.CONSULT_COMPLETED: frozenset({S.SCREENING, S.LOST, S.NOT_ELIGIBLE}),
    S.SCREENING: frozenset({S.CLEARED, S.LOST, S.NOT_ELIGIBLE}),
    S.CLEARED: frozenset({S.INFUSION_SCHEDULED, S.LOST}),
    # Back to cleared: the first infusion was cancelled and needs a new date.
    S.INFUSION_SCHEDULED: frozenset({S.INFUSION_COMPLETED, S.CLEARED, S.LOST}),
    S.INFUSION_COMPLETED: frozenset(),
    # Reopening: a person who comes back, a "not yet" that became a yes, a spam mistake.
    S.LOST: frozenset({S.NEW, S.CONTACTED}),
    S.NOT_ELIGIBLE: frozenset({S.CONTACTED, S.SCREENING}),
    S.SPAM: frozenset({S.NEW}),
}

# Moves that must say why.
NEEDS_REASON: frozenset[Stage] = frozenset({S.LOST, S.NOT_ELIGIBLE})

# The Lead column stamped the first time a lead reaches each stage.
REACHED_COLUMN: dict[Stage, str] = {
    S.CONTACTED: "reached_contacted_at",
    S.CONSULT_SCHEDULED: "reached_consult_scheduled_at",
    S.CONSULT_COMPLETED: "reached_consult_completed_at",
    S.SCREENING: "reached_screening_at",
    S.CLEARED: "reached_cleared_at",
    S.INFUSION_SCHEDULED: "reached_infusion_scheduled_at",
    S.INFUSION_COMPLETED: "reached_infusion_completed_at",
}


def allowed_moves(stage: Stage | str) -> list[Stage]:
    """The stages a lead in `stage` may move to, in pipeline order."""
    targets = ALLOWED[Stage(stage)]
    return [s for s in Stage if s in targets]


def is_reopening(from_stage: Stage | str, to_stage: Stage | str) -> bool:
    """True when the move takes a closed lead back into the open pipeline."""
    return Stage(from_stage) in CLOSED_STAGES and Stage(to_stage) not in CLOSED_STAGES


def check_move(from_stage: Stage | str, to_stage: Stage | str, reason: str | None) -> None:
    """Raise the named error when the move is not allowed or lacks its reason."""
    src, dst = Stage(from_stage), Stage(to_stage)
    if dst not in ALLOWED[src]:
        raise InvalidTransition(f"A lead can't move from {src.label} to {dst.label}.")
    if dst in NEEDS_REASON and not (reason and reason.strip()):
        raise ReasonRequired(f"Say why the lead is {dst.label.lower()}.")


def apply_stage(lead: Lead, to_stage: Stage, at: datetime) -> None:
    """Set the stage and its derived columns (open flag, first-reached stamps, closed info)."""
    lead.stage = to_stage.value
    lead.stage_changed_at = at
    lead.is_open = to_stage not in CLOSED_STAGES
    column = REACHED_COLUMN.get(to_stage)
    if column and getattr(lead, column) is None:
        setattr(lead, column, at)
    if lead.is_open:
        lead.closed_at = None
        lead.closed_reason = None
        lead.closed_note = None
    else:
        lead.closed_at = at


def transition(
    *,
    session: Session,
    lead: Lead,
    to: Stage | str,
    actor_id: int | None,
    reason: str | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> StageChange:
    """Move `lead` to stage `to`, or raise InvalidTransition / ReasonRequired.

    Stamps who and when, writes the stage-change row and the audit event in the caller's
    transaction (the caller commits), and bumps the lead's version.
    """
    to_stage = Stage(to)
    from_stage = Stage(lead.stage)
    check_move(from_stage, to_stage, reason)
    at = at or utcnow()
    seconds = max(0, int((at - lead.stage_changed_at).total_seconds()))
    apply_stage(lead, to_stage, at)
    if to_stage in NEEDS_REASON:
        lead.closed_reason = (reason or "").strip()[:200]
        lead.closed_note = note
    lead.updated_at = at
    lead.updated_by_id = actor_id
    lead.version += 1
    change = StageChange(
        lead_id=lead.id,  # type: ignore[arg-type]
        from_stage=from_stage.value,
        to_stage=to_stage.value,
        actor_id=actor_id,
        at=at,
        seconds_in_previous=seconds,
        reason=reason.strip() if reason else None,
        note=note,
    )
    session.add(lead)
    session.add(change)
    audit.record(
        session,
        actor_id=actor_id,
        action="lead.stage",
        lead_id=lead.id,
        details={"stage": [from_stage.value, to_stage.value], "reason": reason},
        at=at,
    )
    return change
