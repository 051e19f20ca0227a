"""Intake: one person, one contact; crisis flags; duplicates flagged; nothing lost (both backends)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from crm import intake, triage
from crm.clinic_settings import ClinicConfig
from crm.enums import Outcome, Role, Source, Stage
from crm.errors import PermissionDenied
from crm.intake import REFERENCE_ALPHABET, log_phone_inquiry, submit, submit_form
from crm.models import (
    AuditEvent,
    Contact,
    ContactAttempt,
    Lead,
    Note,
    Service,
    StageChange,
    Submission,
)
from crm.pipeline import transition
from crm.validation import FieldErrors, IntakeInput, validate_intake
from tests.factories import actor_of, make_user

RECEIVED = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # Wednesday 10:00 in New York


def form(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "first_name": "Dana",
        "last_name": "Reyes",
        "email": "dana.reyes@example.com",
        "phone": "(571) 555-0134",
        "zip_code": "20147",
        "service": "Anxiety",
        "message": "Looking for help with anxiety.",
        "consent": True,
        "crisis_answer": "no",
    }
    values.update(overrides)
    return values


def send(session: Session, mode: str = "public", **overrides: Any) -> intake.IntakeResult:
    result = submit_form(
        session=session,
        values=form(**overrides),
        mode=mode,  # type: ignore[arg-type]
        received_at=RECEIVED,
        config=ClinicConfig(timezone="America/New_York"),
    )
    session.commit()
    return result


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_a_new_inquiry_creates_contact_lead_submission_and_stage_row(session: Session) -> None:
    result = send(session)
    assert result.created and not result.resubmitted and not result.spam and not result.urgent
    lead = session.get(Lead, result.lead_id)
    assert lead is not None
    assert lead.reference == result.reference
    assert result.reference.startswith("KC-") and len(result.reference) == 9
    assert set(result.reference[3:]) <= set(REFERENCE_ALPHABET)
    assert lead.stage == Stage.NEW.value and lead.is_open
    assert lead.source == Source.WEB_FORM.value
    service = session.get(Service, lead.service_id)
    assert service is not None and service.name == "Anxiety"
    assert lead.first_response_due_at == datetime(2026, 3, 4, 15, 15, tzinfo=UTC)
    assert lead.due_at == lead.first_response_due_at
    assert lead.service_area_id is not None and not lead.out_of_area
    contact = session.get(Contact, lead.contact_id)
    assert contact is not None
    assert contact.phone == "+15715550134" and contact.email_key == "dana.reyes@example.com"
    assert contact.consent and contact.consent_at is not None
    changes = session.exec(select(StageChange).where(StageChange.lead_id == lead.id)).all()
    assert [(c.from_stage, c.to_stage) for c in changes] == [(None, "new")]
    submissions = session.exec(select(Submission).where(Submission.lead_id == lead.id)).all()
    assert len(submissions) == 1 and submissions[0].message == "Looking for help with anxiety."
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.lead_id == lead.id)).all()
    assert "lead.create" in actions


def test_the_raw_submission_is_kept_without_the_api_key(session: Session) -> None:
    result = send(session, api_key="sk_live_secret", **{"X-API-Key": "also secret"})
    raw = session.exec(select(Submission.raw).where(Submission.lead_id == result.lead_id)).one()
    stored = json.loads(raw)
    assert stored["first_name"] == "Dana"
    assert "api_key" not in stored and "X-API-Key" not in stored
    assert "secret" not in raw


def test_a_second_inquiry_while_the_lead_is_open_attaches_to_it(session: Session) -> None:
    first = send(session)
    second = send(session, email="DANA.REYES@EXAMPLE.COM", phone="", message="Any update?")
    assert second.lead_id == first.lead_id and second.reference == first.reference
    assert second.resubmitted and not second.created
    lead = session.get(Lead, first.lead_id)
    assert lead is not None and lead.resubmitted and lead.resubmitted_at is not None
    assert lead.version == 2
    assert count(session, Lead) == 1 and count(session, Contact) == 1
    messages = session.exec(
        select(Submission.message).where(Submission.lead_id == lead.id).order_by(Submission.id)
    ).all()
    assert messages == ["Looking for help with anxiety.", "Any update?"]
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.lead_id == lead.id)).all()
    assert "lead.resubmit" in actions


def test_phone_numbers_typed_differently_match_the_same_person(session: Session) -> None:
    first = send(session, email="", phone="571-555-0134")
    for typed in ("(571) 555 0134", "+1 571 555 0134", "5715550134", "1.571.555.0134"):
        again = send(session, email="", phone=typed)
        assert again.lead_id == first.lead_id and again.resubmitted
    assert count(session, Contact) == 1


def test_a_resubmission_in_crisis_escalates_the_open_lead(session: Session) -> None:
    first = send(session)
    assert not first.urgent
    second = send(session, message="I don't want to be alive anymore", crisis_answer="no")
    assert second.urgent and second.lead_id == first.lead_id
    lead = session.get(Lead, first.lead_id)
    assert lead is not None and lead.urgent
    assert lead.crisis_reason is not None and "want to be alive" in lead.crisis_reason
    assert lead.due_at == RECEIVED


def test_after_a_closed_lead_a_new_lead_opens_for_the_same_contact(session: Session) -> None:
    first = send(session)
    lead = session.get(Lead, first.lead_id)
    assert lead is not None
    transition(session=session, lead=lead, to=Stage.LOST, actor_id=None, reason="Unreachable")
    session.commit()
    second = send(session, message="I'm ready now.")
    assert second.created and not second.resubmitted and second.lead_id != first.lead_id
    new_lead = session.get(Lead, second.lead_id)
    assert new_lead is not None and new_lead.contact_id == lead.contact_id
    assert count(session, Contact) == 1 and count(session, Lead) == 2


def test_same_name_and_zip_with_other_email_is_flagged_not_merged(session: Session) -> None:
    first = send(session)
    other = send(session, email="dreyes@work.example", phone="(703) 555-0188", first_name=" dana ")
    assert other.created and other.lead_id != first.lead_id
    lead = session.get(Lead, other.lead_id)
    assert lead is not None and lead.possible_duplicate_of_id == first.lead_id
    assert count(session, Contact) == 2
    unrelated = send(session, email="sam@example.com", phone="", first_name="Sam", zip_code="20147")
    unrelated_lead = session.get(Lead, unrelated.lead_id)
    assert unrelated_lead is not None and unrelated_lead.possible_duplicate_of_id is None


def test_a_filled_honeypot_stores_nothing_but_looks_like_success(session: Session) -> None:
    result = send(session, website="http://spam.example")
    assert result.spam and result.reference.startswith("KC-") and result.lead_id == 0
    for model in (Lead, Contact, Submission, StageChange, AuditEvent):
        assert count(session, model) == 0


def test_a_yes_to_the_crisis_question_makes_the_lead_urgent_and_due_now(session: Session) -> None:
    result = send(session, crisis_answer="yes", message="Just want information.")
    assert result.urgent
    lead = session.get(Lead, result.lead_id)
    assert lead is not None and lead.urgent and lead.due_at == RECEIVED
    assert lead.crisis_reason == 'answered "yes" to the crisis question'
    assert lead.stage == Stage.NEW.value and lead.is_open  # escalated, never disqualified


def test_crisis_language_in_the_message_is_flagged_with_its_reason(session: Session) -> None:
    result = send(session, crisis_answer="unsure", message="Some days I think about KILLING MYSELF")
    lead = session.get(Lead, result.lead_id)
    assert lead is not None and lead.urgent
    assert lead.crisis_reason is not None and "killing myself" in lead.crisis_reason
    submission = session.exec(select(Submission).where(Submission.lead_id == lead.id)).one()
    assert submission.crisis_answer == "unsure" and submission.crisis_reason == lead.crisis_reason


def test_a_zip_outside_every_area_is_kept_and_marked_out_of_area(session: Session) -> None:
    result = send(session, zip_code="90210")
    lead = session.get(Lead, result.lead_id)
    assert lead is not None and lead.out_of_area and lead.service_area_id is None
    assert triage.placement(None, True) == "Out of area"


def test_a_phone_inquiry_keeps_the_callers_words_as_the_first_note(session: Session) -> None:
    user = make_user(session)
    result = log_phone_inquiry(
        session=session,
        actor=actor_of(user),
        values={"first_name": "Lee", "phone": "571 555 0199", "message": "Caller: my PTSD..."},
        contacted_now=False,
    )
    session.commit()
    lead = session.get(Lead, result.intake.lead_id)
    assert lead is not None and lead.source == Source.PHONE.value and lead.stage == Stage.NEW.value
    notes = session.exec(select(Note).where(Note.lead_id == lead.id)).all()
    assert [n.body for n in notes] == ["Caller: my PTSD..."] and notes[0].actor_id == user.id
    assert not result.contacted


def test_a_phone_inquiry_can_be_marked_contacted_right_away(session: Session) -> None:
    user = make_user(session)
    result = log_phone_inquiry(
        session=session,
        actor=actor_of(user),
        values={"last_name": "Okafor", "email": "o@example.com"},
        contacted_now=True,
    )
    session.commit()
    assert result.contacted
    lead = session.get(Lead, result.intake.lead_id)
    assert lead is not None and lead.stage == Stage.CONTACTED.value
    assert lead.first_response_at is not None and lead.attempts == 1
    attempt = session.exec(select(ContactAttempt).where(ContactAttempt.lead_id == lead.id)).one()
    assert attempt.outcome == Outcome.REACHED.value and attempt.actor_id == user.id
    stages = session.exec(
        select(StageChange.to_stage).where(StageChange.lead_id == lead.id).order_by(StageChange.id)
    ).all()
    assert stages == ["new", "contacted"]


def test_phone_intake_needs_the_permission(session: Session) -> None:
    with pytest.raises(PermissionDenied):
        log_phone_inquiry(session=session, actor=None, values={}, contacted_now=False)  # type: ignore[arg-type]


def test_a_phone_inquiry_needs_only_a_name_and_one_way_to_reach(session: Session) -> None:
    user = make_user(session, role=Role.CARE_TEAM)
    with pytest.raises(FieldErrors) as err:
        log_phone_inquiry(
            session=session, actor=actor_of(user), values={"first_name": "X"}, contacted_now=False
        )
    assert set(err.value.errors) == {"email", "phone"}


def test_an_import_can_backdate_the_lead(session: Session) -> None:
    when = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)
    data = validate_intake(form(source="import"), mode="import")
    result = submit(session=session, data=data, actor_id=None, raw={}, received_at=when)
    session.commit()
    lead = session.get(Lead, result.lead_id)
    assert lead is not None and lead.created_at == when and lead.source == "import"


def test_an_unknown_service_name_is_stored_without_a_service(session: Session) -> None:
    data = IntakeInput(first_name="A", last_name="B", email="ab@example.com", service="Nope")
    result = submit(session=session, data=data, actor_id=None, raw={})
    lead = session.get(Lead, result.lead_id)
    assert lead is not None and lead.service_id is None


def test_two_simultaneous_submissions_of_a_new_person_make_one_lead(engine: Engine) -> None:
    results: list[intake.IntakeResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        try:
            with Session(engine, expire_on_commit=False) as s:
                barrier.wait()
                results.append(
                    submit_form(session=s, values=form(email="race@example.com"), mode="public")
                )
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len({r.lead_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    with Session(engine) as s:
        assert count(s, Contact) == 1 and count(s, Lead) == 1 and count(s, Submission) == 4


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=_text, first_name=st.text(max_size=100), last_name=_text)
def test_random_text_never_crashes_and_the_message_round_trips(
    sqlite_session: Session, message: str, first_name: str, last_name: str
) -> None:
    values = form(
        message=message,
        first_name=first_name,
        last_name=last_name,
        email=None,
        phone="571 555 0111",
    )
    try:
        result = submit_form(
            session=sqlite_session, values=values, mode="public", received_at=RECEIVED
        )
    except FieldErrors as err:
        assert set(err.errors) <= {"first_name", "last_name", "message"}
        sqlite_session.rollback()
        return
    sqlite_session.commit()
    stored = sqlite_session.exec(
        select(Submission.message)
        .where(Submission.lead_id == result.lead_id)
        .order_by(Submission.id.desc())  # type: ignore[union-attr]
    ).first()
    assert stored == (message if message.strip() else None)
    raw = sqlite_session.exec(
        select(Submission.raw)
        .where(Submission.lead_id == result.lead_id)
        .order_by(Submission.id.desc())  # type: ignore[union-attr]
    ).first()
    assert raw is not None and json.loads(raw)["message"] == message


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=_text)
def test_random_messages_round_trip_on_both_backends(session: Session, message: str) -> None:
    values = form(message=message, email=None, phone="571 555 0112")
    try:
        result = submit_form(session=session, values=values, mode="public", received_at=RECEIVED)
    except FieldErrors:
        session.rollback()
        return
    session.commit()
    stored = session.exec(
        select(Submission.message)
        .where(Submission.lead_id == result.lead_id)
        .order_by(Submission.id.desc())  # type: ignore[union-attr]
    ).first()
    assert stored == (message if message.strip() else None)


def test_a_new_lead_goes_round_robin_when_the_clinic_turned_it_on(session: Session) -> None:
    from crm import clinic_settings

    member = make_user(session, role=Role.CARE_TEAM)
    clinic_settings.save(session, actor_id=None, changes={"round_robin": True})
    session.commit()
    result = submit_form(session=session, values=form(), mode="public", received_at=RECEIVED)
    session.commit()
    lead = session.get(Lead, result.lead_id)
    assert lead is not None and lead.owner_id == member.id
