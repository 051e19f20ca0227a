"""CSV export: formula cells neutralized, shapes accepted, downloads audited."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlmodel import Session, select

from crm.enums import Role, Stage
from crm.errors import PermissionDenied
from crm.export import neutralize, record_download, to_csv
from crm.models import AuditEvent
from tests.factories import actor_of, make_user


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1 571 555 0100", "'+1 571 555 0100"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ashburn", "Ashburn"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_cells_that_a_spreadsheet_would_run_are_prefixed_with_a_quote(
    value: str, expected: str
) -> None:
    assert neutralize(value) == expected
    assert parse(to_csv([{"v": value}]))[1] == [expected]


def test_numbers_dates_and_missing_values() -> None:
    rows = [
        {
            "n": -3,
            "x": 0.25,
            "ok": True,
            "when": datetime(2026, 3, 1, 5, tzinfo=UTC),
            "d": date(2026, 3, 1),
        },
        {"n": 4, "stage": Stage.LOST},
    ]
    assert parse(to_csv(rows)) == [
        ["n", "x", "ok", "when", "d", "stage"],
        ["-3", "0.25", "yes", "2026-03-01T05:00:00+00:00", "2026-03-01", ""],
        ["4", "", "", "", "", "lost"],
    ]


def test_a_dataframe_and_an_empty_list() -> None:
    frame = pd.DataFrame([{"Area": "=cmd", "Leads": 3}])
    assert parse(to_csv(frame)) == [["Area", "Leads"], ["'=cmd", "3"]]
    assert to_csv([]) == b""


def test_text_with_commas_quotes_and_newlines_round_trips() -> None:
    text = 'He said "no", then\nleft'
    assert parse(to_csv([{"note": text}]))[1] == [text]
    assert to_csv([{"a": "é"}]).decode("utf-8").endswith("é\r\n")


def test_a_download_is_recorded_in_the_audit_trail(session: Session) -> None:
    manager = actor_of(make_user(session, role=Role.MANAGER))
    record_download(
        session=session,
        actor=manager,
        what="Funnel by service area",
        rows=12,
        filters={"from": "2026-03-01"},
    )
    session.commit()
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "export.csv")).one()
    assert (event.actor_id, event.actor_email) == (manager.id, manager.email)
    assert json.loads(event.details) == {
        "what": "Funnel by service area",
        "rows": 12,
        "filters": {"from": "2026-03-01"},
    }


def test_a_care_team_member_cannot_export(session: Session) -> None:
    member = actor_of(make_user(session, role=Role.CARE_TEAM))
    with pytest.raises(PermissionDenied):
        record_download(session=session, actor=member, what="x", rows=1, filters={})
