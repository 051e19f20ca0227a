"""A coordinator signs in and works the Consults page in a real browser (screenshot kept)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from crm import db, scheduling, screening, users
from crm.enums import Role, ScreeningItem, Stage
from crm.models import Consult, Lead
from crm.timeutil import to_local, utcnow
from tests.factories import actor_of, make_contact, make_lead
from tests.support import signin
from tests.support.browser import launch_browser, screenshot, wait_for_app
from tests.support.server import RunningServer, start_streamlit

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

TZ = "America/New_York"
PASSWORD = "correct horse battery 42"
COORDINATOR = "casey@clinic.test"


def _today() -> date:
    return to_local(utcnow(), TZ).date()


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(TZ))


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, str, int, int]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e_consults') / 'e2e.sqlite3'}"
    engine = db.make_engine(url)
    db.ensure_ready(engine)
    with Session(engine, expire_on_commit=False) as s:
        admin = users.create_user(
            session=s,
            email="admin@clinic.test",
            password=PASSWORD,
            role=Role.ADMIN,
            name="Alex Admin",
        )
        users.create_user(
            session=s,
            email=COORDINATOR,
            password=PASSWORD,
            role=Role.CARE_TEAM,
            name="Casey Coordinator",
        )
        ada = users.create_user(
            session=s,
            email="ada@clinic.test",
            password=PASSWORD,
            role=Role.PROVIDER,
            name="Dr. Ada Rivera",
            is_provider=True,
        )
        ben = users.create_user(
            session=s,
            email="ben@clinic.test",
            password=PASSWORD,
            role=Role.PROVIDER,
            name="Dr. Ben Cho",
            is_provider=True,
        )
        s.commit()
        all_day = [(d, time(0), time(23, 59)) for d in range(7)]
        for provider in (ada, ben):
            scheduling.set_availability(
                session=s, actor=actor_of(admin), provider_id=provider.id or 0, windows=all_day
            )
        s.commit()
        people = [
            ("Maria", "Lopez", "+15715550100", ada, 0, "booked"),
            ("John", "Park", "+17035550142", ada, 1, "completed"),
            ("Kim", "Nguyen", "+15715550177", ben, 0, "no_show"),
            ("Sam", "O'Neil", "+12025550190", ben, 2, "booked"),
        ]
        maria_consult = 0
        for i, (first, last, phone, provider, hour, status) in enumerate(people):
            contact = make_contact(s, first_name=first, last_name=last, phone=phone)
            lead = make_lead(s, stage=Stage.CONSULT_SCHEDULED, contact=contact)
            start = _at(_today(), hour, 15 * i)
            consult = Consult(
                lead_id=lead.id or 0,
                provider_id=provider.id or 0,
                starts_at=start,
                ends_at=start + timedelta(minutes=15),
                status=status,
                candidate="yes" if status == "completed" else None,
            )
            s.add(consult)
            s.commit()
            if first == "Maria":
                maria_consult = consult.id or 0
        # A lead half-way through screening, for the lead page's sections.
        rosa = make_lead(
            s,
            stage=Stage.CONSULT_COMPLETED,
            contact=make_contact(s, first_name="Rosa", last_name="Diaz"),
        )
        yesterday = _at(_today() - timedelta(days=1), 10)
        s.add(
            Consult(
                lead_id=rosa.id or 0,
                provider_id=ada.id or 0,
                starts_at=yesterday,
                ends_at=yesterday + timedelta(minutes=15),
                status="completed",
                candidate="yes",
                topics="cost,driving",
                outcome_notes="Tried two SSRIs. Asked about cost and who drives her home.",
            )
        )
        s.commit()
        screening.save_answers(
            session=s,
            actor=actor_of(ada),
            lead_id=rosa.id or 0,
            answers={
                ScreeningItem.PREGNANCY: screening.AnswerInput("no"),
                ScreeningItem.HYPERTENSION: screening.AnswerInput(
                    "no", bp_systolic=148, bp_diastolic=88
                ),
                ScreeningItem.MEDICATIONS: screening.AnswerInput("yes", note="Sertraline 100 mg"),
                ScreeningItem.DRIVER_ARRANGED: screening.AnswerInput("yes", note="Sister"),
            },
        )
        s.commit()
        rosa_id = rosa.id or 0
    engine.dispose()
    with start_streamlit(env={"DATABASE_URL": url, "CRM_TIMEZONE": TZ}) as srv:
        yield srv, url, maria_consult, rosa_id


def sign_in(page: Page, srv: RunningServer, email: str) -> None:
    # Waits for the sign-in redirect to finish: a goto while it is in flight gets aborted.
    signin.sign_in(page, srv.base_url, email, PASSWORD)


def test_coordinator_sees_todays_consults_and_marks_a_no_show(
    server: tuple[RunningServer, str, int, int],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, url, maria_consult, _rosa = server
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            sign_in(page, srv, COORDINATOR)
            page.goto(srv.url("/consults"))
            wait_for_app(page)
            expect(page.get_by_role("heading", name="Consults")).to_be_visible()
            for name in ("Maria Lopez", "John Park", "Kim Nguyen", "Sam O'Neil"):
                expect(page.get_by_text(name, exact=True)).to_be_visible()
            call = page.locator('a[href="tel:+15715550100"]')
            expect(call).to_have_text("(571) 555-0100")
            screenshot(page, "consults_page")

            # Streamlit marks each keyed widget with the class st-key-<key>.
            page.locator(f".st-key-consults_toggle_{maria_consult} button").click()
            wait_for_app(page)
            page.get_by_role("tab", name="No-show or cancel").click()
            page.locator(f".st-key-consults_{maria_consult}_no_show button").click()
            wait_for_app(page)
            expect(
                page.get_by_text("Marked as a no-show; the lead is back to contacted.")
            ).to_be_visible()
            screenshot(page, "consults_page_after_no_show")
        finally:
            browser.close()
    engine = db.make_engine(url)
    with Session(engine) as s:
        consult = s.get(Consult, maria_consult)
        assert consult is not None and consult.status == "no_show"
        lead = s.exec(select(Lead).where(Lead.id == consult.lead_id)).one()
        assert lead.stage == Stage.CONTACTED
    engine.dispose()


def test_provider_sees_the_screening_sections_on_the_lead_page(
    server: tuple[RunningServer, str, int, int],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, _url, _maria, rosa = server
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 3400})
            sign_in(page, srv, "ada@clinic.test")
            page.goto(srv.url(f"/lead?id={rosa}"))
            wait_for_app(page)
            expect(page.get_by_role("heading", name="Phone consult")).to_be_visible(timeout=20_000)
            expect(page.get_by_role("heading", name="Screening")).to_be_visible()
            expect(page.get_by_text("Tried two SSRIs.", exact=False).first).to_be_visible()
            expect(page.get_by_text("Cleared for infusion")).to_be_visible()  # a provider's choice
            screenshot(page, "lead_sections_provider")
        finally:
            browser.close()
