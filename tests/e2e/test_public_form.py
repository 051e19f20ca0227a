"""A visitor fills the public form in a real browser, fixes a typo, and the lead is stored."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session, select

from crm import db
from crm.enums import Role
from crm.models import Contact, Lead, Submission
from tests.factories import make_user
from tests.support.browser import launch_browser, screenshot, wait_for_app
from tests.support.server import RunningServer, start_streamlit
from ui.intake_form import CRISIS_QUESTION

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.sqlite3'}"
    engine = db.make_engine(url)
    db.ensure_ready(engine)
    with Session(engine) as s:
        make_user(s, role=Role.ADMIN)  # an installed clinic, past the first-administrator setup
    engine.dispose()
    with start_streamlit(env={"DATABASE_URL": url, "CRM_TIMEZONE": "America/New_York"}) as srv:
        yield srv, url


def test_visitor_fixes_a_typo_and_sees_the_confirmation(server: tuple[RunningServer, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, url = server
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1900})
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(srv.base_url)
            wait_for_app(page)
            expect(page.get_by_role("heading", name="Request a free consultation")).to_be_visible()
            _box(page, "First name *").fill("Maya")
            _box(page, "Last name *").fill("Ortiz")
            _box(page, "Email").fill("maya.ortiz@example")  # the typo
            _box(page, "Mobile phone").fill("(571) 555-0166")
            _box(page, "ZIP code").fill("20147")
            _choose(page, "Preferred way to reach you", "Text message")
            _box(page, "Anything you'd like us to know").fill(
                "Depression for years; nothing has worked. Evenings are best."
            )
            _choose(page, CRISIS_QUESTION, "No")
            page.get_by_text("I agree that the clinic may contact me").click()
            page.get_by_role("button", name="Send my request").click()
            wait_for_app(page)
            expect(
                page.get_by_text("Enter a valid email address, like name@example.com")
            ).to_be_visible()
            expect(_box(page, "First name *")).to_have_value("Maya")
            expect(_box(page, "Anything you'd like us to know")).to_have_value(
                "Depression for years; nothing has worked. Evenings are best."
            )
            screenshot(page, "public_form_with_error")
            assert _count(url, Lead) == 0

            _box(page, "Email").fill("maya.ortiz@example.com")
            page.get_by_role("button", name="Send my request").click()
            wait_for_app(page)
            expect(page.get_by_text("Thank you. We have received your request.")).to_be_visible()
            expect(page.get_by_text("What happens next")).to_be_visible()
            reference = page.locator("code").first.inner_text().strip()
            assert re.fullmatch(r"KC-[2-9A-HJKMNP-TV-Z]{6}", reference)
            expect(page.get_by_text("988")).to_have_count(0)  # not a crisis
            screenshot(page, "public_form_confirmation")
            # No third-party scripts, fonts or trackers: every request stays on the clinic's server.
            outside = [u for u in requested if not u.startswith((srv.base_url, "data:", "blob:"))]
            assert outside == []
        finally:
            browser.close()

    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            lead = s.exec(select(Lead)).one()
            contact = s.get(Contact, lead.contact_id)
            submission = s.exec(select(Submission)).one()
    finally:
        engine.dispose()
    assert lead.reference == reference and not lead.urgent
    assert contact is not None and contact.email == "maya.ortiz@example.com"
    assert contact.phone == "+15715550166" and contact.preferred_contact == "text"
    assert submission.message == "Depression for years; nothing has worked. Evenings are best."


def test_a_visitor_in_crisis_sees_988_first(server: tuple[RunningServer, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, url = server
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 1400})  # a phone
            page.goto(srv.base_url)
            wait_for_app(page)
            _box(page, "First name *").fill("Jordan")
            _box(page, "Last name *").fill("Blake")
            _box(page, "Mobile phone").fill("571 555 0177")
            _choose(page, CRISIS_QUESTION, "Yes")
            page.get_by_text("I agree that the clinic may contact me").click()
            page.get_by_role("button", name="Send my request").click()
            wait_for_app(page)
            crisis = page.get_by_text("Call or text 988", exact=False).first
            thanks = page.get_by_text("Thank you. We have received your request.")
            expect(crisis).to_be_visible()
            expect(page.get_by_text("Call 911 if you are in immediate danger.")).to_be_visible()
            assert crisis.bounding_box()["y"] < thanks.bounding_box()["y"]  # type: ignore[index]
            screenshot(page, "public_form_crisis_confirmation")
        finally:
            browser.close()
    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            lead = s.exec(select(Lead).where(Lead.urgent == True)).one()  # noqa: E712
    finally:
        engine.dispose()
    assert lead.due_at == lead.created_at


def _box(page: Page, label: str) -> Locator:
    return page.get_by_role("textbox", name=label, exact=True)


def _choose(page: Page, question: str, answer: str) -> None:
    """Click a radio option's label, as a person does (the input itself sits under it)."""
    group = page.get_by_role("radiogroup", name=question)
    group.get_by_text(answer, exact=True).click()


def _count(url: str, model: type) -> int:
    engine = db.make_engine(url)
    try:
        with Session(engine) as s:
            return len(s.exec(select(model)).all())
    finally:
        engine.dispose()
