"""The lead page's services: attempts, notes, next action, contact edits, moves, timeline, and
the rule that nothing is silently overwritten (both backends)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from crm import leads, pipeline, timeline
from crm.access import Actor
from crm.enums import Stage
from crm.errors import InvalidInput, InvalidTransition, ReasonRequired, StaleEdit
from crm.models import (
    Appointment,
    AuditEvent,
    Consult,
    Contact,
    ContactAttempt,
    Lead,
    ScreeningAnswer,
    ScreeningDecision,
    ServiceArea,
    StageChange,
    Submission,
)
from crm.validation import FieldErrors
from tests.factories import actor_of, make_contact, make_lead, make_user

T0 = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


@pytest.fixture
def me(session: Session) -> Actor:
    return actor_of(make_user(session, name="Casey Coordinator"))


def fresh(session: Session, lead: Lead) -> Lead:
    session.expire_all()
    found = session.get(Lead, lead.id)
    assert found is not None
    return found


# --- contact attempts -----------------------------------------------------------------------------


def test_the_first_attempt_stops_the_clock_and_reaching_a_new_lead_makes_it_contacted(
    session: Session, me: Actor
) -> None:
    lead = make_lead(
        session,
        created_at=T0,
        first_response_due_at=T0 + timedelta(minutes=15),
        due_at=T0 + timedelta(minutes=15),
    )
    leads.log_attempt(
        session=session,
        actor=me,
        lead_id=lead.id or 0,
        seen_version=1,
        channel="call",
        outcome="no_answer",
        now=T0 + timedelta(minutes=3),
    )
    session.commit()
    lead = fresh(session, lead)
    assert lead.attempts == 1 and lead.stage == Stage.NEW.value
    assert lead.first_response_at == T0 + timedelta(minutes=3)
    assert lead.due_at is None  # answered, and no next action yet
    leads.log_attempt(
        session=session,
        actor=me,
        lead_id=lead.id or 0,
        seen_version=lead.version,
        channel="call",
        outcome="reached",
        note="Talked for 5 minutes; wants a consult.",
        now=T0 + timedelta(minutes=30),
    )
    session.commit()
    lead = fresh(session, lead)
    assert lead.attempts == 2 and lead.stage == Stage.CONTACTED.value
    assert lead.first_response_at == T0 + timedelta(minutes=3)
    change = session.exec(select(StageChange).where(StageChange.lead_id == lead.id)).one()
    assert (change.from_stage, change.to_stage, change.actor_id) == ("new", "contacted", me.id)
    attempts = session.exec(select(ContactAttempt).where(ContactAttempt.lead_id == lead.id)).all()
    assert [a.outcome for a in attempts] == ["no_answer", "reached"]
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.lead_id == lead.id)).all()
    assert actions.count("lead.attempt") == 2 and "lead.stage" in actions


def test_reaching_a_lead_past_new_does_not_move_it(session: Session, me: Actor) -> None:
    lead = make_lead(session, stage=Stage.SCREENING)
    leads.log_attempt(
        session=session,
        actor=me,
        lead_id=lead.id or 0,
        seen_version=1,
        channel="text",
        outcome="reached",
    )
    session.commit()
    assert fresh(session, lead).stage == Stage.SCREENING.value


@pytest.mark.parametrize("channel, outcome", [("fax", "reached"), ("call", "maybe")])
def test_an_unknown_channel_or_outcome_is_refused(
    session: Session, me: Actor, channel: str, outcome: str
) -> None:
    lead = make_lead(session)
    with pytest.raises(InvalidInput):
        leads.log_attempt(
            session=session,
            actor=me,
            lead_id=lead.id or 0,
            seen_version=1,
            channel=channel,
            outcome=outcome,
        )


# --- nothing silently overwritten ---------------------------------------------------------------------


def test_a_save_from_an_outdated_screen_is_refused_with_who_and_when(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as setup:
        alice = make_user(setup, name="Alice")
        bob = make_user(setup, name="Bob")
        lead = make_lead(setup)
    lead_id, seen = lead.id or 0, lead.version
    # Both opened the lead at the same version; Alice saves first.
    with Session(engine) as a:
        leads.set_next_action(
            session=a,
            actor=actor_of(alice),
            lead_id=lead_id,
            seen_version=seen,
            action="Call back",
            due=T0,
        )
        a.commit()
    with Session(engine) as b, pytest.raises(StaleEdit) as err:
        leads.set_next_action(
            session=b,
            actor=actor_of(bob),
            lead_id=lead_id,
            seen_version=seen,
            action="Email the price list",
            due=T0,
        )
    assert err.value.changed_by == "Alice" and err.value.changed_at is not None
    assert "Alice" in str(err.value)
    with Session(engine) as check:
        stored = check.get(Lead, lead_id)
        assert (
            stored is not None and stored.next_action == "Call back" and stored.version == seen + 1
        )


def test_two_people_saving_the_same_lead_at_once_exactly_one_wins(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as setup:
        people = [make_user(setup, name=f"Person {i}") for i in range(2)]
        lead = make_lead(setup)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def save(i: int) -> None:
        with Session(engine) as s:
            barrier.wait()
            try:
                leads.set_next_action(
                    session=s,
                    actor=actor_of(people[i]),
                    lead_id=lead.id or 0,
                    seen_version=1,
                    action=f"Action {i}",
                    due=None,
                )
                s.commit()
                outcomes.append("saved")
            except StaleEdit:
                outcomes.append("refused")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["refused", "saved"]
    with Session(engine) as check:
        stored = check.get(Lead, lead.id)
        assert stored is not None and stored.version == 2


def test_notes_from_two_people_both_stay(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    other = actor_of(make_user(session))
    leads.add_note(session=session, actor=me, lead_id=lead.id or 0, body="Prefers mornings.")
    leads.add_note(session=session, actor=other, lead_id=lead.id or 0, body="Asked about cost.")
    session.commit()
    notes = [i.text for i in timeline.timeline(session=session, actor=me, lead_id=lead.id or 0)]
    assert "Prefers mornings." in notes and "Asked about cost." in notes


def test_an_empty_note_is_refused(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    with pytest.raises(InvalidInput):
        leads.add_note(session=session, actor=me, lead_id=lead.id or 0, body="   ")


# --- next action ---------------------------------------------------------------------------------------


def test_the_next_action_sets_when_the_lead_is_due(session: Session, me: Actor) -> None:
    lead = make_lead(session, first_response_at=T0)
    due = T0 + timedelta(days=1)
    v = leads.set_next_action(
        session=session, actor=me, lead_id=lead.id or 0, seen_version=1, action="Call back", due=due
    )
    session.commit()
    assert fresh(session, lead).due_at == due
    leads.set_next_action(
        session=session, actor=me, lead_id=lead.id or 0, seen_version=v, action=None, due=None
    )
    session.commit()
    stored = fresh(session, lead)
    assert stored.due_at is None and stored.next_action is None


def test_before_the_first_response_the_deadline_still_counts(session: Session, me: Actor) -> None:
    deadline = T0 + timedelta(minutes=15)
    lead = make_lead(session, first_response_due_at=deadline, due_at=deadline)
    leads.set_next_action(
        session=session,
        actor=me,
        lead_id=lead.id or 0,
        seen_version=1,
        action="Call",
        due=T0 + timedelta(days=2),
    )
    session.commit()
    assert fresh(session, lead).due_at == deadline


def test_a_due_time_without_a_time_zone_is_refused(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    with pytest.raises(InvalidInput):
        leads.set_next_action(
            session=session,
            actor=me,
            lead_id=lead.id or 0,
            seen_version=1,
            action="Call",
            due=datetime(2026, 3, 5, 9, 0),
        )


# --- contact details ----------------------------------------------------------------------------------


def test_contact_edits_are_normalized_like_intake_and_audited(session: Session, me: Actor) -> None:
    contact = make_contact(session, first_name="Dana", last_name="Reyes", zip_code="90210")
    lead = make_lead(session, contact=contact, out_of_area=True)
    leads.update_contact(
        session=session,
        actor=me,
        lead_id=lead.id or 0,
        seen_version=1,
        values={
            "first_name": "  Dana  Maria ",
            "last_name": "Reyes",
            "email": "Dana.Reyes@EXAMPLE.com",
            "phone": "(571) 555-0199",
            "zip_code": "20176",
            "preferred_contact": "Text",
        },
    )
    session.commit()
    session.expire_all()
    stored = session.get(Contact, contact.id)
    assert stored is not None
    assert stored.first_name == "Dana Maria" and stored.name_key == "dana maria reyes"
    assert stored.phone == "+15715550199"
    assert stored.email == "Dana.Reyes@example.com" and stored.email_key == "dana.reyes@example.com"
    assert stored.preferred_contact == "text"
    lead = fresh(session, lead)
    leesburg = session.exec(select(ServiceArea).where(ServiceArea.name == "Leesburg")).one()
    assert lead.service_area_id == leesburg.id and not lead.out_of_area
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "lead.update")).one()
    assert json.loads(event.details)["phone"][1] == "+15715550199"


def test_invalid_contact_details_list_every_problem(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    with pytest.raises(FieldErrors) as err:
        leads.update_contact(
            session=session,
            actor=me,
            lead_id=lead.id or 0,
            seen_version=1,
            values={
                "first_name": "Dana",
                "email": "not-an-email",
                "phone": "555",
                "zip_code": "abc",
            },
        )
    assert set(err.value.errors) == {"email", "phone", "zip_code"}


def test_a_person_must_stay_reachable(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    with pytest.raises(FieldErrors) as err:
        leads.update_contact(
            session=session,
            actor=me,
            lead_id=lead.id or 0,
            seen_version=1,
            values={"first_name": "Dana"},
        )
    assert {"email", "phone"} <= set(err.value.errors)


# --- moves -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
def test_the_move_buttons_are_the_allowed_moves_the_sections_do_not_make(stage: Stage) -> None:
    offered = leads.manual_moves(stage)
    assert set(offered) <= set(pipeline.allowed_moves(stage))
    assert not {(stage, s) for s in offered} & leads.SECTION_MOVES
    assert set(pipeline.allowed_moves(stage)) - set(offered) == {
        dst for src, dst in leads.SECTION_MOVES if src == stage
    }


def test_clearing_a_lead_is_the_screening_sections_job(session: Session, me: Actor) -> None:
    lead = make_lead(session, stage=Stage.SCREENING)
    with pytest.raises(InvalidTransition):
        leads.move(
            session=session, actor=me, lead_id=lead.id or 0, seen_version=1, to=Stage.CLEARED
        )


def test_a_move_the_pipeline_forbids_is_refused(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    with pytest.raises(InvalidTransition):
        leads.move(
            session=session, actor=me, lead_id=lead.id or 0, seen_version=1, to=Stage.SCREENING
        )


@pytest.mark.parametrize(
    "reason, note",
    [(None, None), ("   ", None), ("Because I said so", None), ("Other", None), ("Other", "  ")],
)
def test_lost_needs_a_reason_from_the_list_and_other_needs_a_note(
    session: Session, me: Actor, reason: str | None, note: str | None
) -> None:
    lead = make_lead(session)
    with pytest.raises(ReasonRequired):
        leads.move(
            session=session,
            actor=me,
            lead_id=lead.id or 0,
            seen_version=1,
            to=Stage.LOST,
            reason=reason,
            note=note,
        )


def test_losing_and_reopening_a_lead(session: Session, me: Actor) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    v = leads.move(
        session=session,
        actor=me,
        lead_id=lead.id or 0,
        seen_version=1,
        to=Stage.LOST,
        reason="Cost",
        note="Will call back after the holidays",
    )
    session.commit()
    lost = fresh(session, lead)
    assert not lost.is_open and lost.closed_reason == "Cost"
    assert lost.closed_note == "Will call back after the holidays"
    assert leads.manual_moves(lost.stage) == [Stage.NEW, Stage.CONTACTED]
    leads.move(session=session, actor=me, lead_id=lead.id or 0, seen_version=v, to=Stage.CONTACTED)
    session.commit()
    reopened = fresh(session, lead)
    assert reopened.is_open and reopened.closed_reason is None
    assert reopened.due_at is not None  # back in the queue, due now


def test_not_eligible_takes_a_reason_from_its_own_list(session: Session, me: Actor) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    with pytest.raises(ReasonRequired):
        leads.move(
            session=session,
            actor=me,
            lead_id=lead.id or 0,
            seen_version=1,
            to=Stage.NOT_ELIGIBLE,
            reason="Cost",
        )
    leads.move(
        session=session,
        actor=me,
        lead_id=lead.id or 0,
        seen_version=1,
        to=Stage.NOT_ELIGIBLE,
        reason="Pregnancy",
    )
    session.commit()
    assert fresh(session, lead).stage == Stage.NOT_ELIGIBLE.value


def test_moving_to_contacted_by_hand_stops_the_clock(session: Session, me: Actor) -> None:
    lead = make_lead(session, first_response_due_at=T0, due_at=T0)
    leads.move(session=session, actor=me, lead_id=lead.id or 0, seen_version=1, to=Stage.CONTACTED)
    session.commit()
    stored = fresh(session, lead)
    assert stored.first_response_at is not None and stored.due_at is None


# --- the page's data ---------------------------------------------------------------------------------


def test_viewing_a_lead_is_audited_only_when_asked(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    leads.get_lead(session=session, actor=me, lead_id=lead.id or 0)
    leads.get_lead(session=session, actor=me, lead_id=lead.id or 0, record_view=True)
    session.commit()
    views = session.exec(select(AuditEvent).where(AuditEvent.action == "lead.view")).all()
    assert len(views) == 1 and views[0].actor_id == me.id and views[0].lead_id == lead.id


def test_the_header_carries_contact_links_badges_and_the_crisis_reason(
    session: Session, me: Actor
) -> None:
    contact = make_contact(session, phone="+15715550100", email="dana+clinic@example.com")
    lead = make_lead(
        session,
        contact=contact,
        urgent=True,
        crisis_reason='message mentions "end it"',
        owner_id=me.id,
    )
    view = leads.get_lead(session=session, actor=me, lead_id=lead.id or 0)
    assert view.tel_url == "tel:+15715550100"
    assert view.phone_display == "(571) 555-0100"
    assert view.mailto_url == "mailto:dana%2Bclinic@example.com"
    assert view.owner == "Casey Coordinator"
    assert "urgent" in view.badges and view.crisis_reason == 'message mentions "end it"'
    assert view.moves == ("contacted", "lost", "not_eligible", "spam")


@pytest.mark.parametrize(
    "phone, email",
    [
        ("5715550100", "x@example.com"),
        ("+1571555) [x](javascript:alert(1)", "a@b.c?subject=<script>"),
        ("tel:+15715550100", 'x"@example.com'),
    ],
)
def test_links_are_only_built_from_valid_values(phone: str, email: str) -> None:
    assert leads.tel_url(phone) is None
    url = leads.mailto_url(email)
    assert url is None or (url.startswith("mailto:") and not set(url) & set("<>\"' ()[]"))


# --- timeline ----------------------------------------------------------------------------------------


def test_the_timeline_tells_the_whole_story_newest_first(session: Session, me: Actor) -> None:
    provider = make_user(session, name="Dr. Patel", is_provider=True)
    lead = make_lead(session, created_at=T0)
    lid = lead.id or 0
    session.add(
        Submission(
            lead_id=lid,
            contact_id=lead.contact_id,
            received_at=T0,
            source="web_form",
            message="**Please** call me <b>after 5</b>",
        )
    )
    session.add(StageChange(lead_id=lid, from_stage=None, to_stage="new", at=T0))
    session.commit()
    leads.log_attempt(
        session=session,
        actor=me,
        lead_id=lid,
        seen_version=1,
        channel="call",
        outcome="reached",
        now=T0 + timedelta(hours=2),
    )
    leads.add_note(
        session=session, actor=me, lead_id=lid, body="Wants evenings", now=T0 + timedelta(hours=3)
    )
    session.add(
        Consult(
            lead_id=lid,
            provider_id=provider.id or 0,
            starts_at=T0 + timedelta(days=1),
            ends_at=T0 + timedelta(days=1, minutes=15),
            status="completed",
            booked_by_id=me.id,
            created_at=T0 + timedelta(hours=4),
            updated_at=T0 + timedelta(days=1, minutes=20),
            candidate="yes",
            topics="cost,driving",
            outcome_notes="Good candidate",
        )
    )
    session.add(
        ScreeningAnswer(
            lead_id=lid,
            item="pregnancy",
            answer="no",
            updated_by_id=me.id,
            updated_at=T0 + timedelta(days=2),
        )
    )
    session.add(
        ScreeningDecision(
            lead_id=lid,
            outcome="cleared",
            decided_by_id=provider.id,
            decided_at=T0 + timedelta(days=3),
        )
    )
    session.add(
        Appointment(
            lead_id=lid,
            starts_at=T0 + timedelta(days=5),
            status="completed",
            created_by_id=me.id,
            created_at=T0 + timedelta(days=4),
            completed_at=T0 + timedelta(days=5, hours=1),
        )
    )
    session.commit()
    items = timeline.timeline(session=session, actor=me, lead_id=lid)
    assert [i.at for i in items] == sorted((i.at for i in items), reverse=True)
    kinds = [i.kind for i in items]
    assert kinds[0] == "appointment" and kinds[-1] == "submission"
    titles = [i.title for i in items]
    assert "First infusion completed" in titles
    assert "Screening decision: cleared" in titles
    assert "Stage: New inquiry → Contacted" in titles
    assert "Call · Reached" in titles
    assert any(t.startswith("Consult completed") for t in titles)
    assert any(t.startswith("Consult booked for") and "Dr. Patel" in t for t in titles)
    submission = items[-1]
    assert submission.text == "**Please** call me <b>after 5</b>"  # as typed, for st.text
    stage = next(i for i in items if i.kind == "stage" and "Contacted" in i.title)
    assert stage.meta == "after 2 h in New inquiry" and stage.actor == "Casey Coordinator"


def test_claims_and_next_actions_appear_on_the_timeline(session: Session, me: Actor) -> None:
    from crm import triage

    lead = make_lead(session)
    v = triage.claim(session=session, actor=me, lead_id=lead.id or 0, seen_version=1)
    leads.set_next_action(
        session=session, actor=me, lead_id=lead.id or 0, seen_version=v, action="Call at 5", due=T0
    )
    session.commit()
    items = timeline.timeline(session=session, actor=me, lead_id=lead.id or 0)
    titles = [i.title for i in items]
    assert "Claimed by Casey Coordinator" in titles
    assert "Next action set" in titles
    assert next(i for i in items if i.title == "Next action set").text == "Call at 5"
