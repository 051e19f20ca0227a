"""A manager signs in, opens the pipeline dashboard, narrows it and downloads the funnel."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session, select

from crm import db, users
from crm.enums import Role, Stage
from crm.models import AuditEvent, ServiceArea
from crm.pipeline import transition
from crm.timeutil import utcnow
from tests.factories import make_lead
from tests.support.browser import launch_browser, screenshot, wait_for_app
from tests.support.server import RunningServer, start_streamlit

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = pytest.mark.e2e
EMAIL = "manny@clinic.test"
PASSWORD = "correct horse battery 42"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'e2e.sqlite3'}"
    engine = db.make_engine(url)
    db.ensure_ready(engine)
    with Session(engine, expire_on_commit=False) as s:
        users.create_user(
            session=s, email=EMAIL, password=PASSWORD, role=Role.MANAGER, name="Manny"
        )
        s.commit()
        area = {a.name: a.id for a in s.exec(select(ServiceArea)).all()}
        # Minutes old, so every preset period (this week, 30 days, this quarter) holds them.
        created = utcnow() - timedelta(minutes=5)
        for name, contacted in (("Leesburg", True), ("Leesburg", False), ("Ashburn", True)):
            lead = make_lead(s, created_at=created, service_area_id=area[name])
            if contacted:
                transition(
                    session=s,
                    lead=lead,
                    to=Stage.CONTACTED,
                    actor_id=None,
                    at=created + timedelta(minutes=2),
                )
        s.commit()
    engine.dispose()
    with start_streamlit(env={"DATABASE_URL": url, "CRM_TIMEZONE": "America/New_York"}) as srv:
        yield srv, url


def _widget(page: Page, test_id: str, label: str) -> Locator:
    return page.get_by_test_id(test_id).filter(has=page.get_by_text(label, exact=True))


def _metric(page: Page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))
    return box.get_by_test_id("stMetricValue").inner_text().strip()


def test_manager_narrows_the_dashboard_and_downloads_the_funnel(
    server: tuple[RunningServer, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, url = server
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1200}, accept_downloads=True)
            page.goto(srv.url("/login"))
            wait_for_app(page)
            page.get_by_role("textbox", name="Email").fill(EMAIL)
            page.get_by_role("textbox", name="Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            wait_for_app(page)
            # Signing in ends with a redirect through /auth/session (the cookie) and back.
            expect(page.get_by_role("link", name="Pipeline dashboard")).to_be_visible(
                timeout=30_000
            )
            page.goto(srv.url("/dashboard"))
            wait_for_app(page)
            expect(page.get_by_role("heading", name="Pipeline dashboard")).to_be_visible(
                timeout=30_000
            )
            expect(page.get_by_test_id("stMetric").first).to_be_visible()
            assert _metric(page, "New inquiries") == "3"

            # Narrow to one service area, then switch the period.
            _widget(page, "stMultiSelect", "Service area").click()
            page.get_by_role("option", name="Leesburg").click()
            page.keyboard.press("Escape")
            wait_for_app(page)
            assert _metric(page, "New inquiries") == "2"
            _widget(page, "stSelectbox", "Inquiry date").click()
            page.get_by_role("option", name="This quarter").click()
            wait_for_app(page)
            assert _metric(page, "New inquiries") == "2"
            screenshot(page, "dashboard_e2e")

            button = page.get_by_test_id("stDownloadButton").filter(
                has=page.get_by_text("Download CSV (16 rows)")
            )
            with page.expect_download() as info:
                button.get_by_role("button").click()
            saved = tmp_path / "funnel.csv"
            info.value.save_as(saved)
            wait_for_app(page)
        finally:
            browser.close()

    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert len(rows) == 16  # 8 stages for all leads and for Leesburg
    reached = {(r["Service area"], r["stage"]): r["reached"] for r in rows}
    assert reached[("Leesburg", "New inquiry")] == "2"
    assert reached[("Leesburg", "Contacted")] == "1"
    with Session(db.make_engine(url)) as s:
        events = s.exec(select(AuditEvent).where(AuditEvent.action == "export.csv")).all()
    assert len(events) == 1
    details = json.loads(events[0].details)
    assert (details["what"], details["rows"]) == ("Funnel by service area", 16)
    assert details["filters"]["areas"] == ["Leesburg"]
    assert events[0].actor_email == EMAIL
