"""The whole coordinator journey in a real browser, from a web inquiry to the first infusion.

A web lead arrives (crm.intake.submit into the running server's database), the coordinator
finds it at the top of the queue, opens it, claims it, logs the call that reached the person,
books the 15-minute phone consult and records its outcome, fills in the screening checklist;
a provider clears the lead; the coordinator books the first infusion and, once it has started,
marks it completed. The lead's timeline shows every step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import time, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from crm import db, intake, scheduling, screening, users
from crm.enums import Role, Stage
from crm.models import Appointment, AuditEvent, Lead
from crm.timeutil import to_local, utcnow
from crm.validation import validate_intake
from tests.factories import actor_of
from tests.support.browser import launch_browser, screenshot, wait_for_app
from tests.support.server import RunningServer, start_streamlit
from tests.support.signin import PASSWORD, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

TZ = "America/New_York"
COORDINATOR = "casey@clinic.test"
PROVIDER = "ada@clinic.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e_journey') / 'e2e.sqlite3'}"
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
            email=PROVIDER,
            password=PASSWORD,
            role=Role.PROVIDER,
            name="Dr. Ada Rivera",
            is_provider=True,
        )
        s.commit()
        every_day = [(day, time(0, 0), time(23, 45)) for day in range(7)]
        scheduling.set_availability(
            session=s, actor=actor_of(admin), provider_id=ada.id or 0, windows=every_day
        )
        s.commit()
    engine.dispose()
    with start_streamlit(env={"DATABASE_URL": url, "CRM_TIMEZONE": TZ}) as srv:
        yield srv, url


def _web_lead_arrives(url: str) -> int:
    """What the website's form post does, straight into the server's database."""
    values = {
        "first_name": "Jamie",
        "last_name": "Morales",
        "email": "jamie.morales@example.com",
        "phone": "(571) 555-0188",
        "zip_code": "20147",
        "service": "Depression (incl. treatment-resistant)",
        "message": "Three medications haven't helped. **Is** ketamine an option for me?",
        "consent": True,
        "crisis_answer": "no",
    }
    engine = db.make_engine(url)
    with Session(engine) as s:
        data = validate_intake(values, mode="public")
        result = intake.submit(session=s, data=data, actor_id=None, raw=values)
        s.commit()
    engine.dispose()
    return result.lead_id


def _click(page: Page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    wait_for_app(page)


def _said(page: Page, message: str) -> None:
    """A success message containing `message` is on screen."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stAlertContentSuccess").filter(has_text=message)).to_be_visible()


def _keyed(page: Page, key: str) -> str:
    """The CSS selector of a keyed widget (Streamlit marks it with the class st-key-<key>)."""
    return f".st-key-{key}"


def _stage(url: str, lead_id: int) -> str:
    engine = db.make_engine(url)
    with Session(engine) as s:
        lead = s.get(Lead, lead_id)
        assert lead is not None
        stage = lead.stage
    engine.dispose()
    return stage


def test_a_web_lead_goes_all_the_way_to_its_first_infusion(
    server: tuple[RunningServer, str],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, url = server
    lead_id = _web_lead_arrives(url)
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            casey = browser.new_context(viewport={"width": 1500, "height": 2600}).new_page()
            sign_in(casey, srv.base_url, COORDINATOR)

            # The queue: the new inquiry is there; a click on its row opens the lead.
            casey.goto(srv.base_url)
            wait_for_app(casey)
            expect(casey.get_by_role("heading", name="Triage queue")).to_be_visible()
            expect(casey.get_by_test_id("stDataFrame")).to_be_visible()
            screenshot(casey, "journey_queue")
            grid = casey.get_by_test_id("stDataFrame").bounding_box()
            assert grid is not None
            casey.mouse.click(grid["x"] + 18, grid["y"] + 35 + 18)  # the first row's checkbox
            casey.wait_for_url(re.compile(rf"/lead\?id={lead_id}$"), timeout=30_000)
            wait_for_app(casey)
            expect(casey.get_by_text("Jamie Morales", exact=True)).to_be_visible()

            # Claim it and log the call that reached the person.
            _click(casey, "Claim")
            _said(casey, "You own this lead now.")
            casey.locator(_keyed(casey, "lead_attempt_note")).locator("textarea").fill(
                "Reached on the first try; wants a consult."
            )
            _click(casey, "Log attempt")
            _said(casey, "Contact attempt logged.")
            assert _stage(url, lead_id) == Stage.CONTACTED

            # Book the 15-minute phone consult tomorrow, then record its outcome.
            tomorrow = to_local(utcnow() + timedelta(days=1), TZ)
            day_picker = casey.locator(_keyed(casey, "lead_consult_book_day"))
            day_picker.get_by_test_id("stDateInputCalendarButton").click()
            day_label = f"{tomorrow:%B} {tomorrow.day}, {tomorrow.year}"
            casey.get_by_role("button", name=re.compile(re.escape(day_label) + "$")).click()
            wait_for_app(casey)
            expect(casey.locator(_keyed(casey, "lead_consult_book_slot"))).to_be_visible()
            _click(casey, "Book consult")
            _said(casey, "Consult booked for")
            assert _stage(url, lead_id) == Stage.CONSULT_SCHEDULED
            casey.get_by_text("Yes, a candidate", exact=True).click()
            _click(casey, "Save outcome")
            _said(casey, "Consult outcome saved.")
            assert _stage(url, lead_id) == Stage.CONSULT_COMPLETED

            # The coordinator records the screening answers; nothing concerning.
            for item in screening.ITEMS:
                answer = "Yes" if item in screening.REQUIREMENTS else "No"
                row = casey.locator(_keyed(casey, f"lead_screen_{item.value}_answer"))
                row.get_by_text(answer, exact=True).click()
            casey.locator(_keyed(casey, "lead_screen_hypertension_bp_sys")).locator("input").fill(
                "118"
            )
            casey.locator(_keyed(casey, "lead_screen_hypertension_bp_dia")).locator("input").fill(
                "76"
            )
            _click(casey, "Save answers")
            _said(casey, "Saved 9 answers.")

            # A provider signs in on their own computer and clears the lead.
            ada = browser.new_context(viewport={"width": 1500, "height": 2600}).new_page()
            sign_in(ada, srv.base_url, PROVIDER)
            ada.goto(srv.url(f"/lead?id={lead_id}"))
            wait_for_app(ada)
            ada.locator(_keyed(ada, "lead_screen_outcome")).get_by_text(
                "Cleared for infusion", exact=True
            ).click()
            _click(ada, "Record outcome")
            _said(ada, "Screening outcome recorded: cleared for infusion.")
            assert _stage(url, lead_id) == Stage.CLEARED

            # Back to the coordinator: book the first infusion (tomorrow 9:00 by default).
            casey.reload()
            wait_for_app(casey)
            _click(casey, "Book the first infusion")
            _said(casey, "First infusion booked for")
            assert _stage(url, lead_id) == Stage.INFUSION_SCHEDULED

            # The day comes: the infusion has started, so it can be marked completed.
            engine = db.make_engine(url)
            with Session(engine) as s:
                s.exec(  # type: ignore[call-overload]
                    update(Appointment)
                    .where(Appointment.lead_id == lead_id)  # type: ignore[arg-type]
                    .values(starts_at=utcnow() - timedelta(minutes=70))
                )
                s.commit()
            engine.dispose()
            casey.reload()
            wait_for_app(casey)
            _click(casey, "Completed")
            _said(casey, "Infusion marked completed.")
            assert _stage(url, lead_id) == Stage.INFUSION_COMPLETED

            # The timeline tells the whole story.
            casey.reload()
            wait_for_app(casey)
            for step in (
                "Web form submission",
                "Claimed by Casey Coordinator",
                "Call · Reached",
                "Stage: New inquiry → Contacted",
                "Stage: Contacted → Consult scheduled",
                "Stage: Consult scheduled → Consult completed",
                "Screening answers recorded (9)",
                "Screening decision: cleared",
                "Stage: Screening → Cleared",
                "Stage: Cleared → First infusion scheduled",
                "First infusion completed",
                "Stage: First infusion scheduled → First infusion completed",
            ):
                expect(casey.get_by_text(step, exact=True).first).to_be_visible()
            expect(
                casey.get_by_text(re.compile(r"^Consult booked for .* with Dr\. Ada Rivera$"))
            ).to_be_visible()
            expect(casey.get_by_text(re.compile(r"^First infusion booked for "))).to_be_visible()
            expect(
                casey.get_by_text(
                    "Three medications haven't helped. **Is** ketamine an option for me?"
                )
            ).to_be_visible()
            screenshot(casey, "journey_lead_timeline")
        finally:
            browser.close()

    engine = db.make_engine(url)
    with Session(engine) as s:
        lead = s.get(Lead, lead_id)
        assert lead is not None and lead.stage == Stage.INFUSION_COMPLETED and not lead.is_open
        assert lead.first_response_at is not None and lead.attempts == 1
        views = s.exec(
            select(AuditEvent).where(
                AuditEvent.lead_id == lead_id, AuditEvent.action == "lead.view"
            )
        ).all()
        assert {v.actor_id for v in views} >= {lead.owner_id}
    engine.dispose()
