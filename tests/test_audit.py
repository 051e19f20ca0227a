"""The audit trail: append-only in the code and in the database; browsing, paging, export."""

from __future__ import annotations

import ast
import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, select

from crm import audit, audit_view
from crm.enums import Role
from crm.errors import NotFound, PermissionDenied
from crm.models import AuditEvent
from tests.factories import actor_of, make_lead, make_user

ROOT = Path(__file__).resolve().parent.parent
UTC_TZ = "UTC"


# --- Append-only ----------------------------------------------------------------------------


def test_the_database_refuses_to_change_or_delete_an_audit_event(session: Session) -> None:
    audit.record(session, actor_id=None, action="test.event", details={"x": 1})
    session.commit()
    for statement in ("UPDATE auditevent SET action = 'forged'", "DELETE FROM auditevent"):
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(text(statement))
        session.rollback()
    assert session.exec(select(AuditEvent.action)).all() == ["test.event"]


def test_the_orm_cannot_change_an_audit_event_either(session: Session) -> None:
    event = audit.record(session, actor_id=None, action="test.event")
    session.commit()
    event.action = "forged"
    session.add(event)
    with pytest.raises(DBAPIError):
        session.commit()
    session.rollback()
    session.delete(session.get(AuditEvent, event.id))
    with pytest.raises(DBAPIError):
        session.commit()


def test_postgresql_refuses_truncate_too(pg_server) -> None:  # noqa: ANN001 - conftest fixture
    """SQLite has no TRUNCATE; on PostgreSQL it would bypass row triggers, so it has its own."""
    from crm import db

    engine = db.make_engine(pg_server.create_database("crm_audit_truncate"))
    db.ensure_ready(engine)
    with Session(engine) as session, pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("TRUNCATE auditevent"))
    engine.dispose()


def _writes_audit_events(tree: ast.AST) -> list[str]:
    """Places that update or delete AuditEvent rows (ORM or SQL text)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
            name = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if name in {"update", "delete"} and any(
                isinstance(a, ast.Name) and a.id == "AuditEvent" for a in node.args
            ):
                found.append(f"{name}(AuditEvent) line {node.lineno}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            lowered = " ".join(node.value.lower().split())
            for verb in ("update auditevent", "delete from auditevent", "truncate auditevent"):
                if verb in lowered and "trigger" not in lowered:
                    found.append(f"SQL {verb!r} line {node.lineno}")
    return found


def test_nothing_in_the_app_updates_or_deletes_audit_events() -> None:
    offenders = {}
    for folder in ("crm", "pages", "ui"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            hits = _writes_audit_events(ast.parse(path.read_text(), str(path)))
            if hits:
                offenders[str(path.relative_to(ROOT))] = hits
    assert offenders == {}


def test_the_scan_would_catch_an_update_or_delete() -> None:
    sample = (
        "session.exec(delete(AuditEvent))\nsession.exec(update(AuditEvent).values(action='x'))\n"
        "conn.execute(text('DELETE FROM auditevent'))\n"
    )
    assert len(_writes_audit_events(ast.parse(sample))) == 3


# --- Browsing --------------------------------------------------------------------------------


def _fill(session: Session) -> tuple:
    admin = make_user(session, role=Role.ADMIN, name="Ada Admin")
    pat = make_user(session, role=Role.CARE_TEAM, name="Pat Care")
    lead = make_lead(session)
    t0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    for n in range(120):
        audit.record(
            session,
            actor_id=pat.id,
            action="lead.view",
            lead_id=lead.id,
            at=t0 + timedelta(minutes=n),
        )
    audit.record(
        session,
        actor_id=admin.id,
        action="user.create",
        entity="user",
        entity_id=pat.id,
        at=t0 + timedelta(days=1),
        details={"email": pat.email},
    )
    audit.record(
        session,
        actor_id=pat.id,
        actor_email=pat.email,
        action="auth.login",
        at=t0 + timedelta(days=2),
    )
    audit.record(
        session,
        actor_id=None,
        action="auth.login_failed",
        at=t0 + timedelta(days=2),
        details={"reason": "unknown account"},
    )
    session.commit()
    return actor_of(admin), pat, lead


def test_filters_by_person_lead_action_family_and_period(session: Session) -> None:
    admin, pat, lead = _fill(session)
    f = audit_view.AuditFilter
    assert audit_view.count(session=session, actor=admin, filters=f()) == 123
    assert audit_view.count(session=session, actor=admin, filters=f(actor_id=pat.id)) == 121
    assert audit_view.count(session=session, actor=admin, filters=f(lead_id=lead.id)) == 120
    assert audit_view.count(session=session, actor=admin, filters=f(action="auth.")) == 2
    assert audit_view.count(session=session, actor=admin, filters=f(action="auth.login")) == 1
    assert audit_view.count(session=session, actor=admin, filters=f(action="auth_")) == 0
    day = audit_view.AuditFilter(start=date(2026, 3, 11), end=date(2026, 3, 11), tz=UTC_TZ)
    assert audit_view.count(session=session, actor=admin, filters=day) == 1
    assert audit_view.actions(session=session, actor=admin) == [
        "auth.login",
        "auth.login_failed",
        "lead.view",
        "user.create",
    ]


def test_the_period_is_read_in_the_clinic_time_zone(session: Session) -> None:
    admin, _pat, _lead = _fill(session)
    # 12:00-13:59 UTC on Mar 10 is 08:00-09:59 in New York (EDT): all on Mar 10 there, none on Mar 9.
    ny = "America/New_York"
    on_10th = audit_view.AuditFilter(
        action="lead.view", start=date(2026, 3, 10), end=date(2026, 3, 10), tz=ny
    )
    on_9th = audit_view.AuditFilter(
        action="lead.view", start=date(2026, 3, 9), end=date(2026, 3, 9), tz=ny
    )
    assert audit_view.count(session=session, actor=admin, filters=on_10th) == 120
    assert audit_view.count(session=session, actor=admin, filters=on_9th) == 0


def test_pages_are_cut_in_sql_newest_first(session: Session) -> None:
    admin, pat, lead = _fill(session)
    filters = audit_view.AuditFilter(lead_id=lead.id, tz=UTC_TZ)
    first = audit_view.page(session=session, actor=admin, filters=filters, number=1, per_page=50)
    third = audit_view.page(session=session, actor=admin, filters=filters, number=3, per_page=50)
    assert len(first) == 50 and len(third) == 20
    assert first[0]["when"] == "2026-03-10 13:59:00" and third[-1]["when"] == "2026-03-10 12:00:00"
    assert first[0]["person"] == "Pat Care" and first[0]["email"] == pat.email
    failed = audit_view.page(
        session=session, actor=admin, filters=audit_view.AuditFilter(action="auth.login_failed")
    )
    assert (
        failed[0]["person"] == "system" and failed[0]["details"] == '{"reason": "unknown account"}'
    )


def test_a_lead_is_found_by_id_or_reference(session: Session) -> None:
    admin, _pat, lead = _fill(session)
    assert (
        audit_view.lead_id_for(session=session, actor=admin, text=f" {lead.reference.lower()} ")
        == lead.id
    )
    assert audit_view.lead_id_for(session=session, actor=admin, text=str(lead.id)) == lead.id
    assert audit_view.lead_id_for(session=session, actor=admin, text="") is None
    with pytest.raises(NotFound):
        audit_view.lead_id_for(session=session, actor=admin, text="NOPE-1")


def test_the_export_is_spreadsheet_safe_and_is_itself_audited(session: Session) -> None:
    admin, pat, _lead = _fill(session)
    audit.record(
        session, actor_id=pat.id, action="lead.note", details={"body": '=HYPERLINK("http://x")'}
    )
    session.commit()
    filters = audit_view.AuditFilter(actor_id=pat.id, tz=UTC_TZ)
    data = audit_view.export_csv(session=session, actor=admin, filters=filters)
    session.commit()
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert len(rows) == 122
    assert rows[0]["action"] == "lead.note" and rows[0]["details"].startswith('{"body"')
    export = session.exec(select(AuditEvent).where(AuditEvent.action == "export.csv")).one()
    assert export.actor_id == admin.id
    details = json.loads(export.details)
    assert (
        details["what"] == "audit"
        and details["rows"] == 122
        and details["filters"]["actor_id"] == pat.id
    )


def test_formula_cells_are_neutralized_in_the_export(session: Session) -> None:
    admin, _pat, _lead = _fill(session)
    audit.record(session, actor_id=None, actor_email="=cmd|' /C calc'!A0", action="test.formula")
    session.commit()
    data = audit_view.export_csv(
        session=session, actor=admin, filters=audit_view.AuditFilter(action="test.formula")
    )
    row = next(csv.DictReader(io.StringIO(data.decode())))
    assert row["person"].startswith("'=") and row["email"].startswith("'=")


def test_an_empty_export_still_has_its_header(session: Session) -> None:
    admin, _pat, _lead = _fill(session)
    data = audit_view.export_csv(
        session=session, actor=admin, filters=audit_view.AuditFilter(action="nothing")
    )
    assert data.decode().splitlines() == ["id,when,person,email,action,lead,record,details,address"]


@pytest.mark.parametrize("role", [Role.CARE_TEAM, Role.PROVIDER, Role.MANAGER])
def test_only_administrators_read_the_trail(sqlite_session: Session, role: Role) -> None:
    actor = actor_of(make_user(sqlite_session, role=role))
    f = audit_view.AuditFilter()
    for call in (
        lambda: audit_view.count(session=sqlite_session, actor=actor, filters=f),
        lambda: audit_view.page(session=sqlite_session, actor=actor, filters=f),
        lambda: audit_view.actions(session=sqlite_session, actor=actor),
        lambda: audit_view.people(session=sqlite_session, actor=actor),
        lambda: audit_view.export_csv(session=sqlite_session, actor=actor, filters=f),
    ):
        with pytest.raises(PermissionDenied):
            call()
