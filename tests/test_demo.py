"""Demo data: reproducible, complete, and consistent with the pipeline's own rules (both backends)."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, delete, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, select

from crm import catalog, crisis, db
from crm.cli import main
from crm.demo import CRISIS_MESSAGES, MESSAGES, TABLE_ORDER, DemoRefused, generate
from crm.enums import CLOSED_STAGES, ConsultStatus, ScreeningOutcome, Source, Stage
from crm.models import (
    Appointment,
    Consult,
    Contact,
    ContactAttempt,
    Lead,
    ScreeningDecision,
    StageChange,
    Submission,
    User,
)
from crm.pipeline import ALLOWED, NEEDS_REASON, REACHED_COLUMN, apply_stage

AS_OF = date(2026, 11, 20)
N = 300
DERIVED = ("stage", "is_open", "stage_changed_at", "closed_at", "closed_reason", "closed_note")


@pytest.fixture
def demo(engine: Engine) -> Engine:
    """The fixture database with 300 demo leads (seed 7, as of a fixed day)."""
    generate(engine=engine, leads=N, seed=7, as_of=AS_OF)
    return engine


def _snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    tables = SQLModel.metadata.tables
    with engine.connect() as conn:
        return {
            name: [
                tuple(r) for r in conn.execute(sa_select(tables[name]).order_by(tables[name].c.id))
            ]
            for name in TABLE_ORDER
        }


def _changes_by_lead(session: Session) -> dict[int, list[StageChange]]:
    out: dict[int, list[StageChange]] = defaultdict(list)
    for change in session.exec(select(StageChange).order_by(StageChange.lead_id, StageChange.id)):
        out[change.lead_id].append(change)
    return out


def test_same_seed_and_day_give_identical_rows(engine: Engine) -> None:
    generate(engine=engine, leads=N, seed=7, as_of=AS_OF)
    first = _snapshot(engine)
    with engine.begin() as conn:
        for name in reversed(TABLE_ORDER[2:]):  # keep the staff: the second run re-uses them
            conn.execute(delete(SQLModel.metadata.tables[name]))
    generate(engine=engine, leads=N, seed=7, as_of=AS_OF)
    assert _snapshot(engine) == first
    assert len(first["lead"]) == N


def test_another_seed_gives_other_rows(engine: Engine, tmp_path: Path) -> None:
    other = db.make_engine(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    db.ensure_ready(other)
    generate(engine=engine, leads=50, seed=7, as_of=AS_OF)
    generate(engine=other, leads=50, seed=8, as_of=AS_OF)
    assert _snapshot(engine)["contact"] != _snapshot(other)["contact"]
    other.dispose()


def test_every_stage_service_area_and_source_appears(demo: Engine) -> None:
    with Session(demo) as session:
        stages = set(session.exec(select(Lead.stage).distinct()))
        services = set(session.exec(select(Lead.service_id).distinct()))
        areas = set(session.exec(select(Lead.service_area_id).distinct()))
        sources = set(session.exec(select(Lead.source).distinct()))
        out_of_area = session.exec(select(func.count()).where(Lead.out_of_area == True)).one()  # noqa: E712
        assert stages == {s.value for s in Stage}
        assert services == {i for i, _ in catalog.services(session)}
        assert areas == {i for i, _ in catalog.areas(session)} | {None}
        assert sources == {s.value for s in Source}
        assert out_of_area > 0


def test_histories_follow_the_pipeline_and_match_the_lead_columns(demo: Engine) -> None:
    with Session(demo) as session:
        changes = _changes_by_lead(session)
        leads = session.exec(select(Lead)).all()
        assert len(leads) == N
        reopened = 0
        for lead in leads:
            log = changes[lead.id or 0]
            created = log[0]
            assert (created.from_stage, created.to_stage, created.at) == (
                None,
                "new",
                lead.created_at,
            )
            replay = Lead(
                reference="x", contact_id=1, source="web_form", stage="new",
                created_at=lead.created_at, stage_changed_at=lead.created_at,
            )  # fmt: skip
            previous = lead.created_at
            for change in log[1:]:
                assert Stage(change.to_stage) in ALLOWED[Stage(change.from_stage)], lead.reference
                assert change.from_stage == replay.stage
                assert change.at > previous
                assert change.seconds_in_previous == int((change.at - previous).total_seconds())
                if Stage(change.to_stage) in NEEDS_REASON:
                    assert change.reason
                if change.from_stage in CLOSED_STAGES and change.to_stage not in CLOSED_STAGES:
                    reopened += 1
                apply_stage(replay, Stage(change.to_stage), change.at)
                if Stage(change.to_stage) in NEEDS_REASON:
                    replay.closed_reason, replay.closed_note = change.reason, change.note
                previous = change.at
            for column in (*DERIVED, *REACHED_COLUMN.values()):
                assert getattr(lead, column) == getattr(replay, column), (lead.reference, column)
            assert lead.version == len(log)
            assert lead.updated_at >= lead.stage_changed_at
        assert reopened > 0


def test_attempts_first_response_and_due_dates(demo: Engine) -> None:
    with Session(demo) as session:
        attempts: dict[int, list[datetime]] = defaultdict(list)
        for lead_id, at in session.exec(select(ContactAttempt.lead_id, ContactAttempt.at)).all():
            attempts[lead_id].append(at)
        for lead in session.exec(select(Lead)):
            mine = attempts.get(lead.id or 0, [])
            assert lead.attempts == len(mine)
            assert lead.first_response_at == (min(mine) if mine else None)
            if lead.reached_contacted_at is not None:
                assert mine, lead.reference
            assert lead.first_response_due_at is not None
            assert lead.first_response_due_at >= lead.created_at
            if lead.first_response_at is None:
                assert lead.due_at == (
                    lead.created_at if lead.urgent else lead.first_response_due_at
                )
            else:
                assert lead.due_at == lead.next_action_due_at
            if lead.is_open and lead.stage != Stage.NEW.value:
                assert lead.next_action and lead.next_action_due_at
            if lead.urgent:
                assert lead.crisis_reason
            if lead.owner_id is None:
                assert lead.first_response_at is None or lead.source == Source.PHONE.value
        urgent = session.exec(select(func.count()).where(Lead.urgent == True)).one()  # noqa: E712
        assert 0 < urgent < N * 0.1


def test_consults_appointments_and_decisions_follow_the_stages(demo: Engine) -> None:
    with Session(demo) as session:
        leads = {lead.id: lead for lead in session.exec(select(Lead))}
        consults = session.exec(select(Consult)).all()
        live = [
            (c.provider_id, c.starts_at)
            for c in consults
            if c.status != ConsultStatus.CANCELLED.value
        ]
        assert len(live) == len(set(live))
        with_consult = {c.lead_id for c in consults}
        assert {i for i, lead in leads.items() if lead.reached_consult_scheduled_at} == with_consult
        assert {c.status for c in consults} >= {"booked", "completed", "no_show"}
        providers = {u.id for u in session.exec(select(User).where(User.is_provider == True))}  # noqa: E712
        assert {c.provider_id for c in consults} <= providers
        with_appointment = set(
            session.exec(select(Appointment.lead_id).where(Appointment.number == 1))
        )
        assert {
            i for i, lead in leads.items() if lead.reached_infusion_scheduled_at
        } == with_appointment
        decisions = session.exec(select(ScreeningDecision)).all()
        cleared = {d.lead_id for d in decisions if d.outcome == ScreeningOutcome.CLEARED.value}
        assert {i for i, lead in leads.items() if lead.reached_cleared_at} == cleared
        assert all(d.reason for d in decisions if d.outcome == ScreeningOutcome.NOT_ELIGIBLE.value)
        # Some no-shows went back to contacted.
        no_show_moves = session.exec(
            select(func.count()).where(
                StageChange.from_stage == Stage.CONSULT_SCHEDULED.value,
                StageChange.to_stage == Stage.CONTACTED.value,
            )
        ).one()
        assert no_show_moves > 0


def test_every_reference_points_at_a_row(demo: Engine) -> None:
    """SQLite loads with foreign-key checks off for speed: check them afterwards (PostgreSQL
    enforced them during the load)."""
    with demo.connect() as conn:
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        leads = conn.execute(sa_select(func.count()).select_from(Lead)).scalar()
        submissions = conn.execute(
            sa_select(func.count(func.distinct(Submission.lead_id)))  # type: ignore[arg-type]
        ).scalar()
        assert leads == submissions == N


def test_in_area_zip_codes_resolve_to_their_area(demo: Engine) -> None:
    with Session(demo) as session:
        rules = catalog.area_rules(session)
        names = dict(catalog.areas(session))
        rows = session.exec(
            select(Lead.service_area_id, Lead.out_of_area, Contact.zip_code, Contact.city).join(
                Contact, Contact.id == Lead.contact_id
            )
        ).all()
        for area_id, out_of_area, zip_code, city in rows:
            rule = catalog.resolve_area(rules, zip_code=zip_code, city=city)
            assert (rule.id if rule else None) == area_id, (zip_code, city)
            assert out_of_area == (area_id is None)
            if area_id is not None and names[area_id] == "Lansdowne":
                assert city == "Lansdowne"
            if zip_code is not None and area_id is None:
                place = catalog.zip_place(zip_code)
                assert place is not None and place[2] in {"VA", "MD", "DC"}


def test_contacts_are_plausible_and_some_people_come_back(demo: Engine) -> None:
    with Session(demo) as session:
        contacts = session.exec(select(Contact)).all()
        emails = [c.email for c in contacts]
        assert len(emails) == len(set(emails))
        for c in contacts:
            assert re.fullmatch(r"[a-z]+\.[a-z]+\.\d+@example\.com", c.email or ""), c.email
            assert c.email_key == (c.email or "").lower()
            assert c.name_key == f"{c.first_name} {c.last_name}".lower()
            assert re.fullmatch(r"\+1\d{3}555\d{4}", c.phone or "")
            assert c.consent
        by_contact: dict[int, list[Lead]] = defaultdict(list)
        for lead in session.exec(select(Lead).order_by(Lead.created_at)):
            by_contact[lead.contact_id].append(lead)
        twice = [leads for leads in by_contact.values() if len(leads) > 1]
        assert twice and all(len(leads) == 2 for leads in twice)
        for earlier, later in twice:
            assert earlier.closed_at is not None and earlier.closed_at < later.created_at


def test_messages_flag_crisis_exactly_when_meant_to() -> None:
    assert all(crisis.scan(m) for m in CRISIS_MESSAGES)
    assert not any(crisis.scan(m) for m in MESSAGES)


def test_refuses_a_database_with_leads_unless_appending(demo: Engine) -> None:
    with Session(demo) as session:
        staff = session.exec(select(func.count()).select_from(User)).one()
    with pytest.raises(DemoRefused):
        generate(engine=demo, leads=10, seed=7, as_of=AS_OF)
    result = generate(engine=demo, leads=20, seed=7, as_of=AS_OF, append=True)
    assert result.counts["lead"] == 20 and result.counts["user"] == 0
    with Session(demo) as session:
        assert session.exec(select(func.count()).select_from(Lead)).one() == N + 20
        assert session.exec(select(func.count()).select_from(User)).one() == staff
        # The id sequences moved past the demo's own ids (PostgreSQL): a normal insert works.
        user = User(email="after-demo@clinic.test", role="care_team")
        session.add(user)
        session.commit()
        assert user.id is not None and user.id > staff


def test_cli_demo_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    args = ["demo", "--leads", "40", "--seed", "3", "--as-of", "2026-01-15", "--database-url", url]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "lead" in first.output and "40" in first.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code != 0
    assert "--append" in again.output
    appended = CliRunner().invoke(main, [*args, "--append"])
    assert appended.exit_code == 0, appended.output
