"""Screening: concerning answers per item, who may decide, stage moves (both backends)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from crm import screening
from crm.access import Actor
from crm.enums import Answer, Role, ScreeningItem, ScreeningOutcome, Stage
from crm.errors import InvalidInput, PermissionDenied, ReasonRequired, StaleEdit
from crm.models import AuditEvent, Lead, ScreeningDecision, StageChange, User
from crm.screening import AnswerInput
from tests.factories import actor_of, make_lead, make_user

I = ScreeningItem  # noqa: E741
A = Answer
NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)

ALL_CLEAR: dict[ScreeningItem | str, AnswerInput] = {
    **{item: AnswerInput(A.NO) for item in screening.CONTRAINDICATIONS},
    I.HYPERTENSION: AnswerInput(A.NO, bp_systolic=122, bp_diastolic=78),
    I.DRIVER_ARRANGED: AnswerInput(A.YES, note="Husband drives"),
    I.RECORDS_RECEIVED: AnswerInput(A.YES),
}


def person(session: Session, role: Role, *, provider: bool = False) -> Actor:
    user = make_user(session, role=role)
    if provider and not user.is_provider:
        user.is_provider = True
        session.add(user)
        session.commit()
    return actor_of(user)


def stages(session: Session, lead_id: int) -> list[tuple[str | None, str]]:
    rows = session.exec(
        select(StageChange).where(StageChange.lead_id == lead_id).order_by(StageChange.id)
    ).all()
    return [(r.from_stage, r.to_stage) for r in rows]


def answered_lead(
    session: Session, answers: dict[ScreeningItem | str, AnswerInput] = ALL_CLEAR
) -> Lead:
    lead = make_lead(session, stage=Stage.CONSULT_COMPLETED)
    coordinator = person(session, Role.CARE_TEAM)
    screening.save_answers(
        session=session, actor=coordinator, lead_id=lead.id or 0, answers=answers, now=NOW
    )
    session.commit()
    session.refresh(lead)
    return lead


# --- Which answers are concerning -------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "answer", "bp", "concerning"),
    [
        (I.PREGNANCY, A.YES, None, True),
        (I.PREGNANCY, A.UNKNOWN, None, True),
        (I.PREGNANCY, A.NO, None, False),
        (I.SUBSTANCE_USE, A.YES, None, True),
        (I.MEDICATIONS, A.YES, None, True),
        (I.PSYCHOSIS, A.NO, None, False),
        # Requirements: a yes is the good answer.
        (I.DRIVER_ARRANGED, A.YES, None, False),
        (I.DRIVER_ARRANGED, A.NO, None, True),
        (I.DRIVER_ARRANGED, A.UNKNOWN, None, True),
        (I.RECORDS_RECEIVED, A.YES, None, False),
        (I.RECORDS_RECEIVED, A.NO, None, True),
        # Hypertension also needs a reading, and a normal one.
        (I.HYPERTENSION, A.NO, (120, 80), False),
        (I.HYPERTENSION, A.NO, None, True),
        (I.HYPERTENSION, A.NO, (150, 85), True),
        (I.HYPERTENSION, A.NO, (130, 95), True),
        (I.HYPERTENSION, A.YES, (120, 80), True),
    ],
)
def test_concerning_answers_per_item(
    item: ScreeningItem, answer: Answer, bp: tuple[int, int] | None, concerning: bool
) -> None:
    sys_, dia = bp or (None, None)
    assert (screening.concern(item, answer, sys_, dia) is not None) is concerning


def test_every_item_is_either_a_contraindication_or_a_requirement() -> None:
    assert set(screening.ITEMS) == set(ScreeningItem)
    assert not set(screening.CONTRAINDICATIONS) & set(screening.REQUIREMENTS)


# --- Recording answers ------------------------------------------------------------------------


def test_an_empty_checklist_is_all_unknown_and_all_concerning(session: Session) -> None:
    lead = make_lead(session, stage=Stage.CONSULT_COMPLETED)
    checklist = screening.get_checklist(
        session=session, actor=person(session, Role.CARE_TEAM), lead_id=lead.id or 0
    )
    assert [i.answer for i in checklist.items] == [A.UNKNOWN] * len(ScreeningItem)
    assert len(checklist.concerns) == len(ScreeningItem)
    assert checklist.answered == 0 and checklist.changed_at is None


def test_first_answers_start_screening_and_are_audited(session: Session) -> None:
    lead = answered_lead(session)
    assert lead.stage == Stage.SCREENING
    assert stages(session, lead.id or 0) == [("consult_completed", "screening")]
    checklist = screening.get_checklist(
        session=session, actor=person(session, Role.CARE_TEAM), lead_id=lead.id or 0
    )
    assert checklist.concerns == []
    hypertension = next(i for i in checklist.items if i.item == I.HYPERTENSION)
    assert (hypertension.bp_systolic, hypertension.bp_diastolic) == (122, 78)
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "screening.answer")).one()
    details = json.loads(event.details)
    assert details["driver_arranged"] == [None, {"answer": "yes", "note": "Husband drives"}]
    assert details["hypertension"][1]["bp"] == "122/78"


def test_saving_the_same_answers_again_writes_nothing(session: Session) -> None:
    lead = answered_lead(session)
    coordinator = person(session, Role.CARE_TEAM)
    screening.save_answers(
        session=session, actor=coordinator, lead_id=lead.id or 0, answers=ALL_CLEAR, now=NOW
    )
    session.commit()
    assert (
        len(session.exec(select(AuditEvent).where(AuditEvent.action == "screening.answer")).all())
        == 1
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (AnswerInput(A.NO, bp_systolic=120), "both blood-pressure numbers"),
        (AnswerInput(A.NO, bp_systolic=80, bp_diastolic=120), "plausible"),
        (AnswerInput("maybe"), "yes, no or unknown"),
        (AnswerInput(A.NO, note="x" * 1001), "too long"),
    ],
)
def test_bad_answers_are_refused(session: Session, given: AnswerInput, message: str) -> None:
    lead = make_lead(session, stage=Stage.CONSULT_COMPLETED)
    with pytest.raises(InvalidInput, match=message):
        screening.save_answers(
            session=session,
            actor=person(session, Role.CARE_TEAM),
            lead_id=lead.id or 0,
            answers={I.HYPERTENSION: given},
        )


def test_an_answer_someone_else_changed_meanwhile_is_not_overwritten(session: Session) -> None:
    lead = answered_lead(session)
    first = screening.get_checklist(
        session=session, actor=person(session, Role.CARE_TEAM), lead_id=lead.id or 0
    )
    seen = {i.item: i.updated_at for i in first.items}
    other = person(session, Role.CARE_TEAM)
    screening.save_answers(
        session=session,
        actor=other,
        lead_id=lead.id or 0,
        answers={I.PREGNANCY: AnswerInput(A.YES)},
        now=NOW + timedelta(minutes=1),
    )
    session.commit()
    with pytest.raises(StaleEdit, match="changed this lead"):
        screening.save_answers(
            session=session,
            actor=person(session, Role.CARE_TEAM),
            lead_id=lead.id or 0,
            answers={I.PREGNANCY: AnswerInput(A.NO)},
            seen=seen,
            now=NOW + timedelta(minutes=2),
        )


# --- Who decides ---------------------------------------------------------------------------------

ROLES = [
    pytest.param(Role.CARE_TEAM, False, False, id="care-team"),
    pytest.param(Role.PROVIDER, False, True, id="provider"),
    pytest.param(Role.MANAGER, False, False, id="manager-without-provider-flag"),
    pytest.param(Role.MANAGER, True, True, id="manager-with-provider-flag"),
    pytest.param(Role.ADMIN, False, False, id="admin-without-provider-flag"),
]


@pytest.mark.parametrize(("role", "flag", "may_decide"), ROLES)
def test_only_providers_clear_even_an_all_clear_checklist(
    session: Session, role: Role, flag: bool, may_decide: bool
) -> None:
    lead = answered_lead(session)
    actor = person(session, role, provider=flag)
    if may_decide:
        screening.decide(
            session=session,
            actor=actor,
            lead_id=lead.id or 0,
            outcome=ScreeningOutcome.CLEARED,
            now=NOW,
        )
        session.commit()
        session.refresh(lead)
        assert lead.stage == Stage.CLEARED
    else:
        with pytest.raises(PermissionDenied):
            screening.decide(
                session=session,
                actor=actor,
                lead_id=lead.id or 0,
                outcome=ScreeningOutcome.CLEARED,
                now=NOW,
            )
        session.rollback()
        session.refresh(lead)
        assert lead.stage == Stage.SCREENING


@pytest.mark.parametrize(("role", "flag", "may_decide"), ROLES)
def test_only_providers_clear_a_checklist_with_a_concerning_answer(
    session: Session, role: Role, flag: bool, may_decide: bool
) -> None:
    lead = answered_lead(session, {**ALL_CLEAR, I.PREGNANCY: AnswerInput(A.UNKNOWN)})
    actor = person(session, role, provider=flag)
    if not may_decide:
        with pytest.raises(PermissionDenied):
            screening.decide(
                session=session,
                actor=actor,
                lead_id=lead.id or 0,
                outcome="cleared",
                note="Checked",
                now=NOW,
            )
        return
    with pytest.raises(ReasonRequired, match="Pregnant, or could be pregnant\\? not known yet"):
        screening.decide(
            session=session, actor=actor, lead_id=lead.id or 0, outcome="cleared", now=NOW
        )
    session.rollback()
    screening.decide(
        session=session,
        actor=actor,
        lead_id=lead.id or 0,
        outcome="cleared",
        note="Negative test on file; spoke with OB.",
        now=NOW,
    )
    session.commit()
    session.refresh(lead)
    assert lead.stage == Stage.CLEARED
    decision = session.exec(select(ScreeningDecision)).one()
    assert (
        decision.reason == "Negative test on file; spoke with OB."
        and decision.decided_by_id == actor.id
    )


@pytest.mark.parametrize(("role", "flag", "may_decide"), ROLES)
def test_only_providers_rule_a_lead_not_eligible(
    session: Session, role: Role, flag: bool, may_decide: bool
) -> None:
    lead = answered_lead(session, {**ALL_CLEAR, I.PSYCHOSIS: AnswerInput(A.YES)})
    actor = person(session, role, provider=flag)
    if not may_decide:
        with pytest.raises(PermissionDenied):
            screening.decide(
                session=session,
                actor=actor,
                lead_id=lead.id or 0,
                outcome="not_eligible",
                reason="Psychosis",
                now=NOW,
            )
        return
    with pytest.raises(ReasonRequired):
        screening.decide(
            session=session, actor=actor, lead_id=lead.id or 0, outcome="not_eligible", now=NOW
        )
    session.rollback()
    screening.decide(
        session=session,
        actor=actor,
        lead_id=lead.id or 0,
        outcome="not_eligible",
        reason="Psychosis or schizophrenia history",
        note="Active symptoms",
        now=NOW,
    )
    session.commit()
    session.refresh(lead)
    assert (
        lead.stage == Stage.NOT_ELIGIBLE
        and lead.closed_reason == "Psychosis or schizophrenia history"
    )
    decision = session.exec(select(ScreeningDecision)).one()
    assert decision.reason == "Psychosis or schizophrenia history: Active symptoms"


@pytest.mark.parametrize(("role", "flag", "may_decide"), ROLES)
def test_anyone_on_the_care_team_asks_for_provider_review(
    session: Session, role: Role, flag: bool, may_decide: bool
) -> None:
    lead = answered_lead(session, {**ALL_CLEAR, I.MEDICATIONS: AnswerInput(A.YES, note="Lithium")})
    version = lead.version
    actor = person(session, role, provider=flag)
    screening.decide(
        session=session,
        actor=actor,
        lead_id=lead.id or 0,
        outcome="needs_review",
        note="Check lithium",
        now=NOW,
    )
    session.commit()
    session.refresh(lead)
    assert lead.stage == Stage.SCREENING and lead.version == version + 1
    checklist = screening.get_checklist(session=session, actor=actor, lead_id=lead.id or 0)
    assert (
        checklist.latest is not None and checklist.latest.outcome == ScreeningOutcome.NEEDS_REVIEW
    )
    assert checklist.latest.reason == "Check lithium"


def test_clearing_straight_after_the_consult_goes_through_screening(session: Session) -> None:
    lead = make_lead(session, stage=Stage.CONSULT_COMPLETED)
    provider = person(session, Role.PROVIDER)
    screening.save_answers(
        session=session, actor=provider, lead_id=lead.id or 0, answers=ALL_CLEAR, now=NOW
    )
    screening.decide(
        session=session, actor=provider, lead_id=lead.id or 0, outcome="cleared", now=NOW
    )
    session.commit()
    assert stages(session, lead.id or 0) == [
        ("consult_completed", "screening"),
        ("screening", "cleared"),
    ]


def test_not_yet_then_cleared_after_blood_pressure_is_stable(session: Session) -> None:
    lead = answered_lead(
        session,
        {**ALL_CLEAR, I.HYPERTENSION: AnswerInput(A.YES, bp_systolic=172, bp_diastolic=104)},
    )
    provider, coordinator = person(session, Role.PROVIDER), person(session, Role.CARE_TEAM)
    screening.decide(
        session=session,
        actor=provider,
        lead_id=lead.id or 0,
        outcome="not_eligible",
        reason="Uncontrolled hypertension",
        now=NOW,
    )
    session.commit()
    later = NOW + timedelta(days=30)
    screening.save_answers(
        session=session,
        actor=coordinator,
        lead_id=lead.id or 0,
        answers={
            I.HYPERTENSION: AnswerInput(
                A.NO, note="Controlled on meds", bp_systolic=128, bp_diastolic=82
            )
        },
        now=later,
    )
    screening.decide(
        session=session, actor=coordinator, lead_id=lead.id or 0, outcome="needs_review", now=later
    )
    session.commit()
    session.refresh(lead)
    assert lead.stage == Stage.SCREENING
    screening.decide(
        session=session, actor=provider, lead_id=lead.id or 0, outcome="cleared", now=later
    )
    session.commit()
    session.refresh(lead)
    assert lead.stage == Stage.CLEARED


def test_a_decision_on_a_checklist_that_changed_meanwhile_is_refused(session: Session) -> None:
    lead = answered_lead(session)
    provider, coordinator = person(session, Role.PROVIDER), person(session, Role.CARE_TEAM)
    seen = screening.get_checklist(session=session, actor=provider, lead_id=lead.id or 0).changed_at
    screening.save_answers(
        session=session,
        actor=coordinator,
        lead_id=lead.id or 0,
        answers={I.PREGNANCY: AnswerInput(A.YES)},
        now=NOW + timedelta(minutes=5),
    )
    session.commit()
    coordinator_name = session.get(User, coordinator.id).name  # type: ignore[union-attr]
    with pytest.raises(StaleEdit, match=coordinator_name):
        screening.decide(
            session=session,
            actor=provider,
            lead_id=lead.id or 0,
            outcome="cleared",
            seen_checklist_at=seen,
            now=NOW + timedelta(minutes=6),
        )


def test_a_cleared_lead_is_not_screened_again(session: Session) -> None:
    lead = make_lead(session, stage=Stage.CLEARED)
    with pytest.raises(InvalidInput):
        screening.decide(
            session=session,
            actor=person(session, Role.PROVIDER),
            lead_id=lead.id or 0,
            outcome="cleared",
        )
