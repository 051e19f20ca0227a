"""The pipeline rules, checked over the whole transition table."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from crm.enums import CLOSED_STAGES, Stage
from crm.errors import InvalidTransition, ReasonRequired
from crm.models import AuditEvent, StageChange
from crm.pipeline import ALLOWED, NEEDS_REASON, allowed_moves, check_move, transition
from tests.factories import make_lead, make_user

# In pipeline order (frozensets iterate differently per process, which parallel runs notice).
ALLOWED_PAIRS = [(src, dst) for src in Stage for dst in Stage if dst in ALLOWED[src]]
REFUSED_PAIRS = [
    (src, dst) for src, dst in itertools.product(Stage, Stage) if dst not in ALLOWED[src]
]


def test_every_stage_has_a_row_in_the_table() -> None:
    assert set(ALLOWED) == set(Stage)


@pytest.mark.parametrize(("src", "dst"), ALLOWED_PAIRS, ids=lambda s: s.value)
def test_every_allowed_move_works(sqlite_session: Session, src: Stage, dst: Stage) -> None:
    user = make_user(sqlite_session)
    lead = make_lead(sqlite_session, stage=src)
    before_version = lead.version
    reason = "Cost" if dst in NEEDS_REASON else None
    change = transition(session=sqlite_session, lead=lead, to=dst, actor_id=user.id, reason=reason)
    sqlite_session.commit()
    assert lead.stage == dst.value
    assert lead.version == before_version + 1
    assert lead.is_open == (dst not in CLOSED_STAGES)
    assert (change.from_stage, change.to_stage, change.actor_id) == (src.value, dst.value, user.id)


@pytest.mark.parametrize(("src", "dst"), REFUSED_PAIRS, ids=lambda s: s.value)
def test_every_other_move_is_refused(src: Stage, dst: Stage) -> None:
    with pytest.raises(InvalidTransition):
        check_move(src, dst, reason="some reason")


@pytest.mark.parametrize("dst", sorted(NEEDS_REASON))
def test_lost_and_not_eligible_require_a_reason(sqlite_session: Session, dst: Stage) -> None:
    lead = make_lead(sqlite_session, stage=Stage.CONTACTED)
    for blank in (None, "", "   "):
        with pytest.raises(ReasonRequired):
            transition(session=sqlite_session, lead=lead, to=dst, actor_id=None, reason=blank)
    assert lead.stage == Stage.CONTACTED.value


def test_consult_no_show_goes_back_to_contacted() -> None:
    assert Stage.CONTACTED in allowed_moves(Stage.CONSULT_SCHEDULED)


def test_a_lost_lead_can_be_reopened_and_keeps_its_first_reached_stamps(sqlite_session: Session) -> None:
    lead = make_lead(sqlite_session, stage=Stage.NEW)
    t0 = lead.created_at
    transition(session=sqlite_session, lead=lead, to=Stage.CONTACTED, actor_id=None, at=t0 + timedelta(hours=1))
    transition(session=sqlite_session, lead=lead, to=Stage.LOST, actor_id=None, reason="Unreachable", at=t0 + timedelta(days=2))
    assert not lead.is_open and lead.closed_reason == "Unreachable"
    transition(session=sqlite_session, lead=lead, to=Stage.CONTACTED, actor_id=None, at=t0 + timedelta(days=40))
    sqlite_session.commit()
    assert lead.is_open and lead.closed_reason is None and lead.closed_at is None
    assert lead.reached_contacted_at == t0 + timedelta(hours=1)


def test_transition_logs_time_spent_in_previous_stage_and_audits(sqlite_session: Session) -> None:
    user = make_user(sqlite_session)
    lead = make_lead(sqlite_session)
    transition(
        session=sqlite_session, lead=lead, to=Stage.CONTACTED, actor_id=user.id,
        at=lead.created_at + timedelta(minutes=7),
    )
    sqlite_session.commit()
    change = sqlite_session.exec(select(StageChange).where(StageChange.lead_id == lead.id)).one()
    assert change.seconds_in_previous == 7 * 60
    event = sqlite_session.exec(select(AuditEvent).where(AuditEvent.lead_id == lead.id)).one()
    assert event.action == "lead.stage" and event.actor_id == user.id


def test_a_refused_move_writes_nothing(sqlite_session: Session) -> None:
    lead = make_lead(sqlite_session)
    with pytest.raises(InvalidTransition):
        transition(session=sqlite_session, lead=lead, to=Stage.CLEARED, actor_id=None)
    sqlite_session.commit()
    assert sqlite_session.exec(select(StageChange)).all() == []
    assert lead.stage == Stage.NEW.value and lead.version == 1
