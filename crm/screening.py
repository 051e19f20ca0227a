"""Screening: the medical checklist per lead and its outcome (cleared / not eligible / review).

Who decides (the front desk never makes the clinical call):
- Anyone on the care team (Perm.SCREENING_ANSWER) records answers and may send the lead to
  "needs provider review".
- Only a provider (Perm.SCREENING_DECIDE: the provider role, or any account with the provider
  flag) may clear a lead or rule it not eligible, whatever the checklist says. That is stricter
  than "a provider must clear a checklist with a concerning answer" on purpose: an all-clear
  checklist is still a clinical judgement, and a coordinator who could clear it could also
  clear one whose answers were typed in wrong.
- A provider who clears a lead with concerning answers must write a note saying why.

An answer is concerning when it could stop the infusion: for a contraindication (pregnancy,
substance use, ...) a "yes" or "unknown"; for a requirement (a driver home, records received)
a "no" or "unknown"; for hypertension also a high reading or no reading at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session, col, select

from crm import audit
from crm.access import Actor, Perm, require
from crm.concurrency import bump, lock_lead
from crm.enums import Answer, ScreeningItem, ScreeningOutcome, Stage
from crm.errors import InvalidInput, NotFound, ReasonRequired, StaleEdit
from crm.models import Lead, ScreeningAnswer, ScreeningDecision, User
from crm.pipeline import transition
from crm.timeutil import as_utc, utcnow

I = ScreeningItem  # noqa: E741 - reads as a table below

# Answering "yes" (or not knowing) is the worry.
CONTRAINDICATIONS: tuple[ScreeningItem, ...] = (
    I.PREGNANCY,
    I.SUBSTANCE_USE,
    I.CARDIOVASCULAR,
    I.HYPERTENSION,
    I.PSYCHOSIS,
    I.LIVER_CARDIAC,
    I.MEDICATIONS,
)
# Answering "no" (or not knowing) is the worry.
REQUIREMENTS: tuple[ScreeningItem, ...] = (I.DRIVER_ARRANGED, I.RECORDS_RECEIVED)
ITEMS: tuple[ScreeningItem, ...] = CONTRAINDICATIONS + REQUIREMENTS

QUESTIONS: dict[ScreeningItem, str] = {
    I.PREGNANCY: "Pregnant, or could be pregnant?",
    I.SUBSTANCE_USE: "History of substance use?",
    I.CARDIOVASCULAR: "Cardiovascular or severe heart disease?",
    I.HYPERTENSION: "Acute or uncontrolled high blood pressure?",
    I.PSYCHOSIS: "History of psychosis, schizophrenia, hallucinations or delusions?",
    I.LIVER_CARDIAC: "Liver or cardiac conditions?",
    I.MEDICATIONS: "Takes current medications the provider must review? (list them in the note)",
    I.DRIVER_ARRANGED: "Someone arranged to drive them home after each infusion?",
    I.RECORDS_RECEIVED: "Medical records or referral received?",
}

# A reading at or above either number needs a provider's eye (ACC/AHA stage 2 hypertension).
HIGH_SYSTOLIC = 140
HIGH_DIASTOLIC = 90
NOTE_MAX = 1000
REASON_MAX = 500

OUTCOME_LABELS: dict[ScreeningOutcome, str] = {
    ScreeningOutcome.CLEARED: "Cleared for infusion",
    ScreeningOutcome.NOT_ELIGIBLE: "Not eligible",
    ScreeningOutcome.NEEDS_REVIEW: "Needs provider review",
}


def concern(
    item: ScreeningItem | str,
    answer: Answer | str,
    bp_systolic: int | None = None,
    bp_diastolic: int | None = None,
) -> str | None:
    """Why this answer needs a provider's judgement, or None when it is the reassuring one."""
    item, answer = ScreeningItem(item), Answer(answer)
    if answer == Answer.UNKNOWN:
        return "not known yet"
    if item in REQUIREMENTS and answer == Answer.NO:
        return "not yet"
    if item in CONTRAINDICATIONS and answer == Answer.YES:
        return "yes"
    if item == I.HYPERTENSION:
        if bp_systolic is None or bp_diastolic is None:
            return "no blood-pressure reading"
        if bp_systolic >= HIGH_SYSTOLIC or bp_diastolic >= HIGH_DIASTOLIC:
            return f"high reading {bp_systolic}/{bp_diastolic}"
    return None


# One answer as given on the form.
@dataclass(frozen=True)
class AnswerInput:
    answer: Answer | str = Answer.UNKNOWN
    note: str | None = None
    bp_systolic: int | None = None
    bp_diastolic: int | None = None


# One checklist line as the lead page shows it.
@dataclass(frozen=True)
class ItemState:
    item: ScreeningItem
    question: str
    answer: Answer
    note: str | None
    bp_systolic: int | None
    bp_diastolic: int | None
    updated_at: datetime | None
    updated_by: str | None
    concern: str | None

    @property
    def is_requirement(self) -> bool:
        return self.item in REQUIREMENTS


@dataclass(frozen=True)
class DecisionView:
    outcome: ScreeningOutcome
    reason: str | None
    decided_by: str | None
    decided_at: datetime


@dataclass(frozen=True)
class Checklist:
    lead_id: int
    lead_stage: Stage
    lead_version: int
    items: list[ItemState]
    decisions: list[DecisionView] = field(default_factory=list)

    @property
    def concerns(self) -> list[str]:
        """One line per concerning item, e.g. "Pregnant, or could be pregnant? yes"."""
        return [f"{i.question} {i.concern}" for i in self.items if i.concern]

    @property
    def answered(self) -> int:
        return sum(1 for i in self.items if i.updated_at is not None)

    @property
    def changed_at(self) -> datetime | None:
        """When an answer last changed: a decision is refused if it moved since."""
        stamps = [i.updated_at for i in self.items if i.updated_at is not None]
        return max(stamps) if stamps else None

    @property
    def latest(self) -> DecisionView | None:
        return self.decisions[0] if self.decisions else None


def _names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    users = session.exec(select(User).where(col(User.id).in_(ids))).all()
    return {u.id or 0: u.name or u.email for u in users}


def _rows(session: Session, lead_id: int) -> dict[ScreeningItem, ScreeningAnswer]:
    rows = session.exec(select(ScreeningAnswer).where(ScreeningAnswer.lead_id == lead_id)).all()
    return {ScreeningItem(r.item): r for r in rows if r.item in ScreeningItem._value2member_map_}


def _checklist(session: Session, lead: Lead) -> Checklist:
    rows = _rows(session, lead.id or 0)
    decisions = session.exec(
        select(ScreeningDecision)
        .where(ScreeningDecision.lead_id == lead.id)
        .order_by(col(ScreeningDecision.decided_at).desc(), col(ScreeningDecision.id).desc())
    ).all()
    names = _names(
        session,
        {r.updated_by_id for r in rows.values() if r.updated_by_id}
        | {d.decided_by_id for d in decisions if d.decided_by_id},
    )
    items = []
    for item in ITEMS:
        row = rows.get(item)
        answer = Answer(row.answer) if row else Answer.UNKNOWN
        sys_, dia = (row.bp_systolic, row.bp_diastolic) if row else (None, None)
        items.append(
            ItemState(
                item=item,
                question=QUESTIONS[item],
                answer=answer,
                note=row.note if row else None,
                bp_systolic=sys_,
                bp_diastolic=dia,
                updated_at=as_utc(row.updated_at) if row else None,
                updated_by=names.get(row.updated_by_id or 0) if row else None,
                concern=concern(item, answer, sys_, dia),
            )
        )
    return Checklist(
        lead_id=lead.id or 0,
        lead_stage=Stage(lead.stage),
        lead_version=lead.version,
        items=items,
        decisions=[
            DecisionView(
                outcome=ScreeningOutcome(d.outcome),
                reason=d.reason,
                decided_by=names.get(d.decided_by_id or 0),
                decided_at=as_utc(d.decided_at),
            )
            for d in decisions
        ],
    )


def get_checklist(*, session: Session, actor: Actor, lead_id: int) -> Checklist:
    """The lead's checklist (every item, unanswered ones as unknown) and its decisions."""
    require(actor, Perm.LEADS_READ)
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise NotFound(f"Lead {lead_id} does not exist.")
    return _checklist(session, lead)


def _clean(
    item: ScreeningItem, given: AnswerInput
) -> tuple[Answer, str | None, int | None, int | None]:
    try:
        answer = Answer(given.answer)
    except ValueError:
        raise InvalidInput(f"{QUESTIONS[item]} Answer yes, no or unknown.") from None
    note = (given.note or "").strip() or None
    if note and len(note) > NOTE_MAX:
        raise InvalidInput(
            f"The note on “{QUESTIONS[item]}” is too long (at most {NOTE_MAX} characters)."
        )
    sys_, dia = given.bp_systolic, given.bp_diastolic
    if item != I.HYPERTENSION:
        return answer, note, None, None
    if (sys_ is None) != (dia is None):
        raise InvalidInput("Give both blood-pressure numbers (systolic and diastolic), or neither.")
    if sys_ is not None and dia is not None:
        if not (60 <= sys_ <= 300 and 30 <= dia <= 200 and sys_ > dia):
            raise InvalidInput(f"{sys_}/{dia} is not a plausible blood-pressure reading.")
    return answer, note, sys_, dia


def save_answers(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    answers: Mapping[ScreeningItem | str, AnswerInput],
    seen: Mapping[ScreeningItem | str, datetime | None] | None = None,
    now: datetime | None = None,
) -> Checklist:
    """Record checklist answers; the first answers move a consult-completed lead to screening.

    `seen` holds, per item, the `updated_at` the user had on screen: an item someone else
    changed since is refused with StaleEdit rather than overwritten.
    """
    require(actor, Perm.SCREENING_ANSWER)
    now = now or utcnow()
    cleaned = {ScreeningItem(k): _clean(ScreeningItem(k), v) for k, v in answers.items()}
    lead = lock_lead(session, lead_id=lead_id)
    if Stage(lead.stage) in (Stage.LOST, Stage.SPAM):
        raise InvalidInput(f"This lead is {Stage(lead.stage).label.lower()}: reopen it first.")
    rows = _rows(session, lead_id)
    seen_at = {ScreeningItem(k): v for k, v in (seen or {}).items()}
    changes: dict[str, list[object]] = {}
    for item, (answer, note, sys_, dia) in cleaned.items():
        row = rows.get(item)
        if item in seen_at and row is not None and as_utc(row.updated_at) != seen_at[item]:
            who = (
                _names(session, {row.updated_by_id}).get(row.updated_by_id or 0)
                if row.updated_by_id
                else None
            )
            raise StaleEdit(changed_by=who, changed_at=as_utc(row.updated_at))
        before = (row.answer, row.note, row.bp_systolic, row.bp_diastolic) if row else None
        after = (answer.value, note, sys_, dia)
        if before == after:
            continue
        if row is None:
            row = ScreeningAnswer(lead_id=lead_id, item=item.value)
        row.answer, row.note, row.bp_systolic, row.bp_diastolic = after
        row.updated_by_id = actor.id
        row.updated_at = now
        session.add(row)
        changes[item.value] = [_describe(before), _describe(after)]
    if changes:
        audit.record(
            session,
            actor_id=actor.id,
            action="screening.answer",
            lead_id=lead_id,
            entity="screening",
            details=changes,
            at=now,
        )
        if Stage(lead.stage) == Stage.CONSULT_COMPLETED:
            transition(session=session, lead=lead, to=Stage.SCREENING, actor_id=actor.id, at=now)
    session.flush()
    return _checklist(session, lead)


def _describe(values: tuple[object, ...] | None) -> dict[str, object] | None:
    if values is None:
        return None
    answer, note, sys_, dia = values
    described: dict[str, object] = {"answer": answer, "note": note}
    if sys_ is not None:
        described["bp"] = f"{sys_}/{dia}"
    return described


def _to_screening(session: Session, lead: Lead, actor: Actor, now: datetime) -> None:
    """Bring the lead to the screening stage when the decision starts from before it."""
    if Stage(lead.stage) in (Stage.CONSULT_COMPLETED, Stage.NOT_ELIGIBLE):
        transition(session=session, lead=lead, to=Stage.SCREENING, actor_id=actor.id, at=now)


def decide(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    outcome: ScreeningOutcome | str,
    reason: str | None = None,
    note: str | None = None,
    seen_version: int | None = None,
    seen_checklist_at: datetime | None = None,
    now: datetime | None = None,
) -> ScreeningDecision:
    """Record a screening outcome and move the lead (see the module docstring for who may).

    Cleared: screening -> cleared (a note is required over concerning answers).
    Not eligible: -> not eligible with `reason` (a clinic reason) and an optional note.
    Needs provider review: the lead waits in screening with the note saying what to look at.
    `seen_checklist_at` is `Checklist.changed_at` as the decider saw it: a decision taken on
    a checklist that changed since is refused with StaleEdit.
    """
    require(actor, Perm.SCREENING_ANSWER)
    outcome = ScreeningOutcome(outcome)
    if outcome != ScreeningOutcome.NEEDS_REVIEW:
        require(actor, Perm.SCREENING_DECIDE)
    now = now or utcnow()
    reason = (reason or "").strip() or None
    note = (note or "").strip() or None
    lead = lock_lead(session, lead_id=lead_id, seen_version=seen_version)
    checklist = _checklist(session, lead)
    if checklist.changed_at != seen_checklist_at and seen_checklist_at is not None:
        changed = [i for i in checklist.items if i.updated_at == checklist.changed_at]
        raise StaleEdit(
            changed_by=changed[0].updated_by if changed else None, changed_at=checklist.changed_at
        )
    stage = Stage(lead.stage)
    allowed_from = {Stage.CONSULT_COMPLETED, Stage.SCREENING, Stage.NOT_ELIGIBLE}
    if outcome == ScreeningOutcome.NOT_ELIGIBLE:
        allowed_from = {Stage.CONSULT_COMPLETED, Stage.SCREENING}
    if stage not in allowed_from:
        raise InvalidInput(
            f"A lead in {stage.label} can't be screened as {OUTCOME_LABELS[outcome].lower()}."
        )
    concerns = checklist.concerns
    if outcome == ScreeningOutcome.CLEARED:
        if concerns and not note:
            raise ReasonRequired(
                "Clearing with concerning answers needs your clinical note: " + "; ".join(concerns)
            )
        _to_screening(session, lead, actor, now)
        transition(
            session=session, lead=lead, to=Stage.CLEARED, actor_id=actor.id, at=now, note=note
        )
        stored = note
    elif outcome == ScreeningOutcome.NOT_ELIGIBLE:
        if not reason:
            raise ReasonRequired("Say why the lead is not eligible.")
        transition(
            session=session,
            lead=lead,
            to=Stage.NOT_ELIGIBLE,
            actor_id=actor.id,
            reason=reason,
            note=note,
            at=now,
        )
        stored = f"{reason}: {note}" if note else reason
    else:
        _to_screening(session, lead, actor, now)
        if Stage(lead.stage) == stage:
            bump(session, lead, actor_id=actor.id, at=now)  # others must see the decision
        stored = note
    decision = ScreeningDecision(
        lead_id=lead_id,
        outcome=outcome.value,
        reason=stored[:REASON_MAX] if stored else None,
        decided_by_id=actor.id,
        decided_at=now,
    )
    session.add(decision)
    previous = checklist.latest.outcome.value if checklist.latest else None
    audit.record(
        session,
        actor_id=actor.id,
        action="screening.decide",
        lead_id=lead_id,
        entity="screening",
        details={
            "outcome": [previous, outcome.value],
            "reason": [None, decision.reason],
            "concerns": concerns,
        },
        at=now,
    )
    session.flush()
    return decision
