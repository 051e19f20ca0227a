"""A coordinator logs a phone inquiry and a manager imports a CSV, in headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from crm import db, users
from crm.enums import Role, Source, Stage
from crm.models import Contact, Lead, Note
from tests.support.browser import launch_browser, screenshot, wait_for_app
from tests.support.server import RunningServer, start_streamlit
from tests.support.signin import PASSWORD, sign_in

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.sqlite3'}"
    engine = db.ensure_ready(db.make_engine(url))
    with Session(engine) as s:
        users.create_user(
            session=s, email="casey@clinic.test", password=PASSWORD, role=Role.CARE_TEAM
        )
        users.create_user(session=s, email="mona@clinic.test", password=PASSWORD, role=Role.MANAGER)
        s.commit()
    engine.dispose()
    with start_streamlit(env={"DATABASE_URL": url}) as srv:
        yield srv, url


def _leads(url: str) -> list[tuple[Lead, Contact]]:
    engine = db.make_engine(url)
    with Session(engine) as s:
        rows = s.exec(select(Lead, Contact).join(Contact, Contact.id == Lead.contact_id)).all()
        result = [(lead, contact) for lead, contact in rows]
    engine.dispose()
    return result


def test_a_phone_inquiry_is_logged_and_marked_contacted(server: tuple[RunningServer, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, url = server
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1100})
            sign_in(page, srv.base_url, "casey@clinic.test")
            page.get_by_test_id("stSidebarNav").get_by_text(
                "Log a phone inquiry", exact=True
            ).click()
            wait_for_app(page)
            page.get_by_label("First name", exact=True).fill("Robin")
            page.get_by_label("Last name", exact=True).fill("Ellis")
            page.get_by_label("Mobile phone", exact=True).fill("(703) 555-0177")
            page.get_by_label("What the caller said (their own words)").fill(
                "Heard about infusions from my therapist; <b>not</b> sure about cost."
            )
            page.get_by_role("button", name="Save inquiry").click()
            wait_for_app(page)
            expect(page.get_by_text("Open the lead")).to_be_visible(timeout=15_000)
            screenshot(page, "staff_phone_intake_saved")
        finally:
            browser.close()
    ((lead, contact),) = [(lead, c) for lead, c in _leads(url) if c.last_name == "Ellis"]
    assert (lead.source, lead.stage, contact.phone) == (
        Source.PHONE.value,
        Stage.CONTACTED.value,
        "+17035550177",
    )
    engine = db.make_engine(url)
    with Session(engine) as s:
        notes = s.exec(select(Note.body).where(Note.lead_id == lead.id)).all()
    engine.dispose()
    assert "Heard about infusions from my therapist; <b>not</b> sure about cost." in notes


def test_a_manager_imports_a_csv_and_sees_the_rejected_row(
    server: tuple[RunningServer, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, url = server
    csv_file = tmp_path / "leads.csv"
    csv_file.write_text(
        "Full name,Email,Phone,ZIP\nAna Souza,ana.souza@example.com,,20176\nNo Contact,,,20147\n",
        encoding="utf-8",
    )
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1100})
            sign_in(page, srv.base_url, "mona@clinic.test")
            page.get_by_test_id("stSidebarNav").get_by_text("Import leads", exact=True).click()
            wait_for_app(page)
            page.locator('input[type="file"]').set_input_files(str(csv_file))
            wait_for_app(page)
            page.get_by_role("button", name="Import 1 rows").click()
            wait_for_app(page)
            # The rejected row is listed (in a data grid) and offered as a CSV download.
            expect(page.get_by_role("button", name="Download rejected rows (CSV)")).to_be_visible(
                timeout=15_000
            )
            screenshot(page, "staff_import_done")
        finally:
            browser.close()
    imported = [(lead, c) for lead, c in _leads(url) if c.email == "ana.souza@example.com"]
    assert [lead.source for lead, _c in imported] == [Source.IMPORT.value]
    assert not [c for _lead, c in _leads(url) if c.last_name == "Contact"]
