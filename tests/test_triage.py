"""The triage queue: order, filters, search in any format, counts, paging and assignment."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text
from sqlmodel import Session, select

from crm import clinic_settings, triage
from crm.access import Actor
from crm.clinic_settings import ClinicConfig
from crm.enums import Role, Source, Stage
from crm.errors import InvalidInput, PermissionDenied, StaleEdit
from crm.intake import submit
from crm.models import AuditEvent, Lead, Service, ServiceArea, User
from crm.triage import QueueFilters
from crm.validation import IntakeInput
from tests.factories import actor_of, make_contact, make_lead, make_user

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York


def page(session: Session, actor: Actor, **filters: object) -> triage.QueuePage:
    return triage.queue_page(
        session=session,
        actor=actor,
        filters=QueueFilters(**filters),  # type: ignore[arg-type]
        now=NOW,
        config=ClinicConfig(timezone="America/New_York"),
    )


def ids(result: triage.QueuePage) -> list[int]:
    return [r.lead_id for r in result.rows]


@pytest.fixture
def me(session: Session) -> Actor:
    return actor_of(make_user(session, name="Casey Coordinator"))


# --- order ---------------------------------------------------------------------------------------


def test_urgent_leads_come_first_then_the_most_overdue_and_no_due_date_last(
    session: Session, me: Actor
) -> None:
    later = make_lead(session, due_at=NOW + timedelta(hours=2))
    no_due = make_lead(session, due_at=None)
    overdue = make_lead(session, due_at=NOW - timedelta(hours=3))
    urgent_later = make_lead(session, urgent=True, due_at=NOW + timedelta(days=1))
    urgent_no_due = make_lead(session, urgent=True, due_at=None)
    soon = make_lead(session, due_at=NOW + timedelta(minutes=5))
    assert ids(page(session, me)) == [
        urgent_later.id,
        urgent_no_due.id,
        overdue.id,
        soon.id,
        later.id,
        no_due.id,
    ]


def test_closed_leads_are_not_in_the_queue(session: Session, me: Actor) -> None:
    open_lead = make_lead(session, stage=Stage.CONTACTED)
    for stage in (Stage.LOST, Stage.NOT_ELIGIBLE, Stage.SPAM, Stage.INFUSION_COMPLETED):
        make_lead(session, stage=stage, closed_reason="x")
    assert ids(page(session, me)) == [open_lead.id]


# --- filters ---------------------------------------------------------------------------------------


def test_filters_narrow_the_queue(session: Session, me: Actor) -> None:
    other = make_user(session, name="Other Person")
    area = session.exec(select(ServiceArea).where(ServiceArea.name == "Leesburg")).one()
    service = session.exec(select(Service).order_by(Service.id)).first()
    assert service is not None
    mine = make_lead(session, owner_id=me.id, stage=Stage.CONTACTED)
    theirs = make_lead(session, owner_id=other.id)
    nobody = make_lead(session, urgent=True, due_at=NOW - timedelta(minutes=1))
    out = make_lead(session, out_of_area=True)
    out.source = Source.PHONE.value
    session.add(out)
    session.commit()
    in_area = make_lead(session, service_area_id=area.id, service_id=service.id)
    future = make_lead(session, due_at=NOW + timedelta(hours=1))

    assert set(ids(page(session, me, owner=triage.OWNER_MINE))) == {mine.id}
    assert set(ids(page(session, me, owner=other.id))) == {theirs.id}
    assert mine.id not in ids(page(session, me, owner=triage.OWNER_UNASSIGNED))
    assert nobody.id in ids(page(session, me, owner=triage.OWNER_UNASSIGNED))
    assert set(ids(page(session, me, stages=(Stage.CONTACTED.value,)))) == {mine.id}
    both = page(session, me, stages=(Stage.CONTACTED.value, Stage.NEW.value))
    assert len(both.rows) == 6
    assert set(ids(page(session, me, area=triage.AREA_OUT))) == {out.id}
    assert set(ids(page(session, me, area=area.id))) == {in_area.id}
    assert set(ids(page(session, me, service_id=service.id))) == {in_area.id}
    assert set(ids(page(session, me, source=Source.PHONE.value))) == {out.id}
    assert set(ids(page(session, me, urgent_only=True))) == {nobody.id}
    assert set(ids(page(session, me, overdue_only=True))) == {nobody.id}
    assert future.id in ids(page(session, me))


# --- search ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "(571) 555-0100",
        "571-555-0100",
        "571.555.0100",
        "5715550100",
        "+1 571 555 0100",
        "1 (571) 555 0100",
    ],
)
def test_a_phone_number_typed_in_any_format_finds_the_person(
    session: Session, me: Actor, typed: str
) -> None:
    lead = make_lead(session, contact=make_contact(session, phone="+15715550100"))
    make_lead(session, contact=make_contact(session, phone="+15715550101"))
    assert ids(page(session, me, search=typed)) == [lead.id]


def test_an_incomplete_phone_number_finds_nobody(session: Session, me: Actor) -> None:
    make_lead(session, contact=make_contact(session, phone="+15715550100"))
    result = page(session, me, search="555-01")
    assert result.rows == [] and result.search is not None
    assert result.search.kind == "invalid_phone"


def test_email_search_ignores_case_and_matches_the_start(session: Session, me: Actor) -> None:
    lead = make_lead(
        session,
        contact=make_contact(
            session, email="Dana.Reyes@Example.com", email_key="dana.reyes@example.com"
        ),
    )
    assert ids(page(session, me, search="DANA.REYES@example.COM")) == [lead.id]
    assert ids(page(session, me, search="dana.reyes@")) == [lead.id]
    assert ids(page(session, me, search="reyes@example.com")) == []


def test_name_search_matches_the_start_of_the_full_name(session: Session, me: Actor) -> None:
    dana = make_lead(session, contact=make_contact(session, first_name="Dana", last_name="Reyes"))
    daniel = make_lead(
        session, contact=make_contact(session, first_name="Daniel", last_name="Ortiz")
    )
    assert set(ids(page(session, me, search="dan"))) == {dana.id, daniel.id}
    assert ids(page(session, me, search="  DANA   reyes ")) == [dana.id]
    assert ids(page(session, me, search="dana r")) == [dana.id]
    assert ids(page(session, me, search="reyes")) == []


@pytest.mark.parametrize("typed", ["%", "_", "d%", "\\"])
def test_search_wildcards_are_taken_literally(session: Session, me: Actor, typed: str) -> None:
    make_lead(session, contact=make_contact(session, first_name="Dana", last_name="Reyes"))
    assert page(session, me, search=typed).rows == []


def test_search_finds_closed_leads_too_so_they_can_be_reopened(session: Session, me: Actor) -> None:
    contact = make_contact(session, first_name="Robin", last_name="Lost", phone="+15715550177")
    lost = make_lead(session, stage=Stage.LOST, contact=contact, closed_reason="Cost")
    assert ids(page(session, me, search="Robin")) == [lost.id]
    assert ids(page(session, me, search="(571) 555-0177")) == [lost.id]
    assert page(session, me, search="Robin").rows[0].stage == Stage.LOST.value


def test_a_reference_finds_its_lead(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    lead.reference = "KC-7QH3XK"
    session.add(lead)
    session.commit()
    assert ids(page(session, me, search="kc-7qh3xk")) == [lead.id]


def test_a_broad_name_search_looks_among_open_leads(
    session: Session, me: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triage, "NAME_PROBE", 1)
    a = make_lead(session, contact=make_contact(session, first_name="Sam", last_name="One"))
    b = make_lead(session, contact=make_contact(session, first_name="Sam", last_name="Two"))
    make_lead(
        session, stage=Stage.LOST, contact=make_contact(session, first_name="Sam", last_name="Gone")
    )
    result = page(session, me, search="sam")
    assert result.open_only
    assert set(ids(result)) == {a.id, b.id}


# --- counts and paging -------------------------------------------------------------------------------


def test_counts_per_stage_cover_every_open_stage(session: Session, me: Actor) -> None:
    make_lead(session)
    make_lead(session)
    make_lead(session, stage=Stage.SCREENING)
    make_lead(session, stage=Stage.LOST, closed_reason="Cost")
    counts = page(session, me).stage_counts
    assert counts[Stage.NEW.value] == 2
    assert counts[Stage.SCREENING.value] == 1
    assert counts[Stage.CLEARED.value] == 0
    assert Stage.LOST.value not in counts


def test_pages_split_the_queue_and_the_total_counts_every_match(
    session: Session, me: Actor
) -> None:
    leads = [make_lead(session, due_at=NOW + timedelta(minutes=i)) for i in range(7)]
    config = ClinicConfig(timezone="America/New_York")
    first = triage.queue_page(
        session=session,
        actor=me,
        filters=QueueFilters(),
        page=1,
        page_size=3,
        now=NOW,
        config=config,
    )
    third = triage.queue_page(
        session=session,
        actor=me,
        filters=QueueFilters(),
        page=3,
        page_size=3,
        now=NOW,
        config=config,
    )
    filtered = triage.queue_page(
        session=session,
        actor=me,
        filters=QueueFilters(owner=triage.OWNER_UNASSIGNED),
        page=1,
        page_size=3,
        now=NOW,
        config=config,
    )
    assert ids(first) == [lead.id for lead in leads[:3]]
    assert ids(third) == [leads[6].id]
    assert first.total == 7 and filtered.total == 7


def test_a_very_long_queue_reports_no_exact_total(
    session: Session, me: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triage, "TOTAL_CAP", 3)
    for _ in range(5):
        make_lead(session)
    result = triage.queue_page(
        session=session,
        actor=me,
        filters=QueueFilters(owner=triage.OWNER_UNASSIGNED),
        page_size=2,
        now=NOW,
        config=ClinicConfig(),
    )
    assert result.total is None


# --- what a row shows ----------------------------------------------------------------------------------


def test_a_row_shows_area_owner_badges_and_the_time_left(session: Session, me: Actor) -> None:
    duplicate_of = make_lead(session)
    lead = make_lead(
        session,
        out_of_area=True,
        urgent=True,
        resubmitted=True,
        possible_duplicate_of_id=duplicate_of.id,
        owner_id=me.id,
        created_at=NOW - timedelta(minutes=5),
        first_response_due_at=NOW + timedelta(minutes=10),
        due_at=NOW - timedelta(minutes=5),
        attempts=0,
    )
    row = next(r for r in page(session, me).rows if r.lead_id == lead.id)
    assert row.area == "Out of area"
    assert row.owner == "Casey Coordinator"
    assert row.age == "5 min"
    assert row.sla == "10 min left" and not row.sla_late
    assert row.badges == ("urgent", "overdue", "re-submitted", "possible duplicate", "out of area")
    assert row.stage_label == "New inquiry"


def test_queue_needs_a_signed_in_staff_member(session: Session) -> None:
    with pytest.raises(PermissionDenied):
        triage.queue_page(session=session, actor=None, filters=QueueFilters())  # type: ignore[arg-type]


# --- speed to lead -------------------------------------------------------------------------------------


CLINIC = ClinicConfig(timezone="America/New_York", first_response_minutes=15)


def test_sla_counts_only_business_minutes() -> None:
    # Due Monday 08:10 New York; it is Friday 17:55: 5 min today + 10 min on Monday are left.
    friday = datetime(2026, 3, 6, 22, 55, tzinfo=UTC)
    monday_due = datetime(2026, 3, 9, 12, 10, tzinfo=UTC)
    text_, late = triage.sla_state(
        first_response_due_at=monday_due, first_response_at=None, now=friday, config=CLINIC
    )
    assert (text_, late) == ("15 min left", False)


def test_sla_reports_how_late_and_stops_at_the_first_attempt() -> None:
    due = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    late = triage.sla_state(
        first_response_due_at=due,
        first_response_at=None,
        now=due + timedelta(minutes=80),
        config=CLINIC,
    )
    assert late == ("1 h 20 min late", True)
    long_late = triage.sla_state(
        first_response_due_at=due,
        first_response_at=None,
        now=due + timedelta(days=9),
        config=CLINIC,
    )
    assert long_late == ("9 d late", True)
    done = triage.sla_state(
        first_response_due_at=due, first_response_at=due, now=due + timedelta(days=1), config=CLINIC
    )
    assert done == ("responded", False)


# --- the query plan (SQLite: the index is what keeps 1,000,000 leads quick) ------------------------------


def _plan(session: Session, statement: object) -> str:
    """SQLite's plan for `statement`, as the driver receives it (IN lists expanded)."""
    connection = session.connection()
    seen: list[tuple[str, object]] = []

    def capture(conn, cursor, sql, params, context, executemany):  # type: ignore[no-untyped-def]
        seen.append((sql, params))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        session.exec(statement).all()  # type: ignore[call-overload]
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    sql, params = seen[0]
    rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()  # type: ignore[arg-type]
    return "\n".join(r[3] for r in rows)


def test_a_queue_page_reads_its_rows_from_the_queue_index_in_order(sqlite_session: Session) -> None:
    me = actor_of(make_user(sqlite_session))
    kwargs = {"actor": me, "now": NOW, "dialect": "sqlite", "page": 1, "page_size": 50}
    for filters in (
        QueueFilters(),
        QueueFilters(owner=triage.OWNER_MINE, stages=("new", "contacted")),
    ):
        plan = _plan(sqlite_session, triage.page_statement(filters, **kwargs))  # type: ignore[arg-type]
        assert "COVERING INDEX ix_lead_queue (is_open=?)" in plan
        assert "RIGHT PART OF ORDER BY" not in plan


def test_a_phone_search_starts_from_the_person(sqlite_session: Session) -> None:
    me = actor_of(make_user(sqlite_session))
    filters = QueueFilters(search="(571) 555-0100", stages=("new",), area=1)
    statement = triage.page_statement(
        filters, actor=me, now=NOW, dialect="sqlite", page=1, page_size=50
    )
    plan = _plan(sqlite_session, statement)
    assert "ix_contact_phone (phone=?)" in plan
    assert "ix_lead_contact_id (contact_id=?)" in plan


def test_open_leads_are_counted_from_the_stage_index(sqlite_session: Session) -> None:
    plan = _plan(sqlite_session, triage.counts_statement())
    assert "COVERING INDEX ix_lead_stage" in plan


def test_the_queue_index_exists_as_the_migration_made_it(sqlite_session: Session) -> None:
    sql = (
        sqlite_session.connection()
        .execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_lead_queue'"))
        .scalar_one()
    )
    assert "urgent DESC" in sql and "(due_at IS NULL)" in sql


# --- assignment ------------------------------------------------------------------------------------------


def test_claiming_makes_me_the_owner_and_is_audited(session: Session, me: Actor) -> None:
    lead = make_lead(session)
    version = triage.claim(
        session=session, actor=me, lead_id=lead.id or 0, seen_version=lead.version
    )
    session.commit()
    session.refresh(lead)
    assert lead.owner_id == me.id and lead.version == version == 2
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "lead.assign")).one()
    assert json.loads(event.details)["how"] == "claim"
    assert event.lead_id == lead.id and event.actor_id == me.id


def test_assigning_to_a_teammate_and_back_to_nobody(session: Session, me: Actor) -> None:
    mate = make_user(session, name="Mate")
    lead = make_lead(session)
    v = triage.assign(
        session=session, actor=me, lead_id=lead.id or 0, owner_id=mate.id, seen_version=1
    )
    triage.assign(session=session, actor=me, lead_id=lead.id or 0, owner_id=None, seen_version=v)
    session.commit()
    session.refresh(lead)
    assert lead.owner_id is None and lead.version == 3


def test_a_lead_cannot_go_to_a_disabled_account(session: Session, me: Actor) -> None:
    gone = make_user(session)
    gone.active = False
    session.add(gone)
    session.commit()
    lead = make_lead(session)
    with pytest.raises(InvalidInput):
        triage.assign(
            session=session, actor=me, lead_id=lead.id or 0, owner_id=gone.id, seen_version=1
        )


def test_claiming_from_an_outdated_screen_is_refused(session: Session, me: Actor) -> None:
    other = make_user(session, name="Quick Colleague")
    lead = make_lead(session)
    triage.claim(session=session, actor=actor_of(other), lead_id=lead.id or 0, seen_version=1)
    session.commit()
    with pytest.raises(StaleEdit) as err:
        triage.claim(session=session, actor=me, lead_id=lead.id or 0, seen_version=1)
    assert err.value.changed_by == "Quick Colleague"


def _round_robin_on(session: Session) -> None:
    clinic_settings.save(session, actor_id=None, changes={"round_robin": True})
    session.commit()


def test_round_robin_is_off_unless_the_clinic_turns_it_on(session: Session) -> None:
    make_user(session)
    lead = make_lead(session)
    assert triage.assign_round_robin(session=session, lead=lead) is None
    assert lead.owner_id is None


def test_round_robin_takes_turns_and_skips_away_and_non_care_team_members(session: Session) -> None:
    _round_robin_on(session)
    a = make_user(session, name="A")
    b = make_user(session, name="B")
    away = make_user(session, name="Away")
    away.away = True
    session.add(away)
    make_user(session, role=Role.MANAGER, name="Manager")
    make_user(session, role=Role.PROVIDER, name="Doctor")
    session.commit()
    owners = []
    for _ in range(4):
        lead = make_lead(session)
        owners.append(triage.assign_round_robin(session=session, lead=lead))
        session.commit()
    assert owners == [a.id, b.id, a.id, b.id]
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "lead.assign")).first()
    assert event is not None and json.loads(event.details)["how"] == "round_robin"


def test_round_robin_with_everyone_away_leaves_the_lead_unassigned(session: Session) -> None:
    _round_robin_on(session)
    user = make_user(session)
    user.away = True
    session.add(user)
    session.commit()
    assert triage.assign_round_robin(session=session, lead=make_lead(session)) is None


def test_intake_gives_each_new_lead_to_the_next_member(session: Session) -> None:
    _round_robin_on(session)
    member = make_user(session)
    data = IntakeInput(first_name="Dana", last_name="Reyes", phone="+15715550134", consent=True)
    result = submit(session=session, data=data, actor_id=None, raw={})
    session.commit()
    lead = session.get(Lead, result.lead_id)
    assert lead is not None and lead.owner_id == member.id


def test_marking_myself_away_takes_me_out_of_the_rotation(session: Session, me: Actor) -> None:
    _round_robin_on(session)
    triage.set_away(session=session, actor=me, away=True)
    session.commit()
    assert triage.is_away(session=session, actor=me)
    assert triage.assign_round_robin(session=session, lead=make_lead(session)) is None
    triage.set_away(session=session, actor=me, away=False)
    session.commit()
    assert triage.assign_round_robin(session=session, lead=make_lead(session)) == me.id
    user = session.get(User, me.id)
    assert user is not None and not user.away
