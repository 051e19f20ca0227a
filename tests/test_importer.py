"""CSV import: common column names, per-row validation, rejected rows reported, bad files change nothing."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, func, select

from crm.access import Actor
from crm.enums import Role, Source
from crm.errors import PermissionDenied
from crm.importer import UnreadableFile, import_csv, map_columns, rejected_csv, split_full_name
from crm.models import AuditEvent, Contact, Lead, Submission
from tests.factories import actor_of, make_user


def count(session: Session, model: type) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


GOOD = (
    "First Name,Last Name,E-mail Address,Mobile Phone,ZIP,Service,Lead Source,Created Date,Notes\n"
    "Ana,Silva,ana@example.com,571-555-0101,20147,Anxiety,Google,03/02/2026 09:30,Called twice\n"
    "Ben,Cho,,(703) 555-0102,90210,PTSD,Referral,2026-02-27,\n"
    "Cy,Diaz,not-an-email,,20176,,,,\n"
    "Ana,Silva,ANA@example.com,,,,,,Second row for Ana\n"
    "Dee,Eve,dee@example.com,,123,,,yesterday,\n"
)


def test_valid_rows_are_imported_and_bad_rows_reported(session: Session) -> None:
    report = import_csv(session=session, data=GOOD.encode(), actor_id=None)
    session.commit()
    assert (report.imported, report.attached) == (2, 1)
    assert [n for n, _ in report.rejected] == [4, 6]
    assert report.rejected[0][1] == {"email": "Enter a valid email address, like name@example.com"}
    assert set(report.rejected[1][1]) == {"zip_code", "created_at"}
    assert count(session, Lead) == 2 and count(session, Contact) == 2
    assert count(session, Submission) == 3
    ana = session.exec(select(Contact).where(Contact.email_key == "ana@example.com")).one()
    lead = session.exec(select(Lead).where(Lead.contact_id == ana.id)).one()
    assert lead.source == Source.IMPORT.value and lead.heard_about == "Google"
    assert lead.created_at == datetime(2026, 3, 2, 14, 30, tzinfo=UTC)  # 09:30 New York
    assert lead.resubmitted
    ben = session.exec(select(Contact).where(Contact.phone == "+17035550102")).one()
    ben_lead = session.exec(select(Lead).where(Lead.contact_id == ben.id)).one()
    assert ben_lead.out_of_area and ben_lead.created_at == datetime(2026, 2, 27, 5, 0, tzinfo=UTC)
    assert "import.csv" in session.exec(select(AuditEvent.action)).all()


def test_rejected_rows_download_with_reasons_and_neutralized_formulas(session: Session) -> None:
    data = 'Name,Email\n=HYPERLINK("http://x"),bad\n'
    report = import_csv(session=session, data=data.encode(), actor_id=None)
    rows = list(csv.DictReader(io.StringIO(rejected_csv(report).decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0]["row"] == "2" and rows[0]["Name"].startswith("'=")
    assert "Email: Enter a valid email address" in rows[0]["errors"]


def test_full_name_column_is_split() -> None:
    assert split_full_name("Mary Ann Smith") == ("Mary Ann", "Smith")
    assert split_full_name("Smith, Mary") == ("Mary", "Smith")
    assert split_full_name("Prince") == ("Prince", "")


def test_column_names_match_ignoring_case_spacing_and_punctuation() -> None:
    mapping = map_columns(
        [" FULL NAME ", "e_mail", "Phone #", "Zip Code", "created_at", "Comments"]
    )
    assert mapping == {
        "full_name": " FULL NAME ",
        "email": "e_mail",
        "phone": "Phone #",
        "zip_code": "Zip Code",
        "created_at": "created_at",
        "message": "Comments",
    }
    assert map_columns(["Email Address"]) == {"email": "Email Address"}


def test_semicolon_separated_files_and_a_bom_are_read(session: Session) -> None:
    data = "\ufeffName;Phone\nJo Park;571 555 0177\n".encode()
    report = import_csv(session=session, data=data, actor_id=None)
    assert (report.imported, report.rejected) == (1, [])
    contact = session.exec(select(Contact)).one()
    assert (contact.first_name, contact.last_name, contact.phone) == ("Jo", "Park", "+15715550177")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\xff\xfeN\x00a\x00m\x00e\x00", "UTF-8"),
        ("Name,Email\nJosé,j@example.com\n".encode("cp1252"), "UTF-8"),
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"Colour,Size\nred,9\n", "name column"),
        (b"Name,City\nJo,Ashburn\n", "email or phone"),
        (b"%PDF-1.7\x00\x00binary", "binary"),
    ],
)
def test_a_file_that_cannot_be_read_changes_nothing(
    session: Session, data: bytes, words: str
) -> None:
    with pytest.raises(UnreadableFile, match=words):
        import_csv(session=session, data=data, actor_id=None)
    session.commit()
    assert count(session, Lead) == 0 and count(session, AuditEvent) == 0


def test_import_needs_the_import_permission_when_an_actor_is_given(session: Session) -> None:
    care = Actor(id=1, email="c@clinic.test", name="C", role=Role.CARE_TEAM)
    with pytest.raises(PermissionDenied):
        import_csv(session=session, data=GOOD.encode(), actor_id=None, actor=care)
    manager = make_user(session, role=Role.MANAGER)
    report = import_csv(session=session, data=GOOD.encode(), actor_id=None, actor=actor_of(manager))
    assert report.imported == 2


def test_the_cli_imports_and_writes_the_rejected_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm import db
    from crm.cli import main
    from crm.settings import get_settings

    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        source = tmp_path / "leads.csv"
        source.write_text(GOOD)
        result = CliRunner().invoke(main, ["import", str(source)])
        assert result.exit_code == 0, result.output
        assert "5 rows: 2 new leads, 1 added to existing leads, 2 rejected" in result.output
        assert "row 4: email:" in result.output
        rejected = (tmp_path / "leads.rejected.csv").read_text(encoding="utf-8-sig")
        assert "not-an-email" in rejected and "Dee" in rejected
        with Session(db.get_engine(url)) as s:
            assert count(s, Lead) == 2
        bad = tmp_path / "bad.csv"
        bad.write_bytes(b"Colour\nred\n")
        result = CliRunner().invoke(main, ["import", str(bad)])
        assert result.exit_code == 1 and "No name column" in result.output
    finally:
        get_settings.cache_clear()
