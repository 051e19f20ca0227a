"""Hostile text stays text: HTML, script tags, Markdown images and links, and spreadsheet
formulas typed into the public form (and a staff name) render inert on every staff page in a
real browser, and reach every CSV export neutralized.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session

from crm import access, db, intake, leads, triage, users
from crm.enums import Role
from crm.export import FORMULA_PREFIXES
from crm.validation import validate_intake
from tests.support.browser import launch_browser, screenshot, wait_for_app
from tests.support.server import RunningServer, start_streamlit
from tests.support.signin import PASSWORD, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.e2e

EVIL = "evil.test"
HTML = f'<b>bold</b><img src="http://{EVIL}/html.png" onerror="window.__pwned=1">'
SCRIPT = "<script>window.__pwned=1</script>"
MD_IMAGE = f"![tracker](http://{EVIL}/md.png)"
MD_LINK = f"[urgent, click here](http://{EVIL}/phish)"
FORMULA = f'=HYPERLINK("http://{EVIL}/f","open")'
MESSAGE = f"{HTML} {SCRIPT} {MD_IMAGE} {MD_LINK} :red[red] $x^2$ {FORMULA}"
STAFF_NAME = f'=HYPERLINK("http://{EVIL}/staff","Morgan")'

ADMIN = "ada@clinic.test"
MANAGER = "max@clinic.test"
MORGAN = "morgan@clinic.test"

# What a successful injection would leave in the DOM (or in window).
PROBE = f"""() => ({{
    img: document.querySelectorAll('img[src*="{EVIL}"]').length,
    link: document.querySelectorAll('a[href*="{EVIL}"]').length,
    bold: [...document.querySelectorAll('b')].filter(b => b.textContent === 'bold').length,
    script: [...document.querySelectorAll('script')].filter(s => s.text.includes('__pwned')).length,
    pwned: window.__pwned === 1,
}})"""
LINKS = f"""() => [...document.querySelectorAll('a[href*="{EVIL}"], img[src*="{EVIL}"]')]
    .map(e => e.parentElement.outerHTML.slice(0, 300))"""
CLEAN = {"img": 0, "link": 0, "bold": 0, "script": 0, "pwned": False}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, int]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e_hostile') / 'crm.sqlite3'}"
    engine = db.make_engine(url)
    db.ensure_ready(engine)
    values = {
        "first_name": "<b>Robin</b>",
        "last_name": FORMULA,
        "email": "robin@example.com",
        "phone": "(571) 555-0101",
        "zip_code": "20147",
        "service": "Anxiety",
        "message": MESSAGE,
        "best_time": MD_LINK,
        "heard_about": HTML,
        "consent": True,
        "crisis_answer": "no",
    }
    with Session(engine, expire_on_commit=False) as s:
        users.create_user(session=s, email=ADMIN, password=PASSWORD, role=Role.ADMIN, name="Ada")
        users.create_user(
            session=s, email=MANAGER, password=PASSWORD, role=Role.MANAGER, name="Max"
        )
        morgan = users.create_user(
            session=s, email=MORGAN, password=PASSWORD, role=Role.CARE_TEAM, name=STAFF_NAME
        )
        result = intake.submit(
            session=s, data=validate_intake(values, mode="public"), actor_id=None, raw=values
        )
        s.commit()
        actor = users.auth.actor_from(morgan)
        triage.claim(session=s, actor=actor, lead_id=result.lead_id, seen_version=None)
        leads.add_note(session=s, actor=actor, lead_id=result.lead_id, body=MESSAGE)
        leads.get_lead(session=s, actor=actor, lead_id=result.lead_id, record_view=True)
        s.commit()
    engine.dispose()
    with start_streamlit(env={"DATABASE_URL": url}) as srv:
        yield srv, result.lead_id


def _inert(page: Page, where: str, requests: list[str], problems: list[str]) -> None:
    """Record (not raise) what rendered: one run then names every page that needs a fix."""
    found = page.evaluate(PROBE)
    if found != CLEAN:
        links = page.evaluate(LINKS)
        problems.append(f"{where}: {found} {links}")
    if page.get_by_test_id("stException").count():
        problems.append(f"{where}: an exception is shown")
    leaked = [u for u in requests if EVIL in u]
    if leaked:
        problems.append(f"{where}: the browser fetched {leaked}")


def _cells(data: bytes) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(data.decode("utf-8"))) for cell in row]


def _download(page: Page, button_name: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("button", name=button_name).first.click()
    path = info.value.path()
    assert path is not None
    with open(path, "rb") as handle:
        return handle.read()


def _formula_safe(data: bytes, what: str) -> None:
    risky = [c for c in _cells(data) if c.startswith(FORMULA_PREFIXES) and not _is_number(c)]
    assert risky == [], what


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_hostile_text_is_inert_on_every_staff_page_and_in_every_export(
    server: tuple[RunningServer, int],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    srv, lead_id = server
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            requests: list[str] = []
            problems: list[str] = []
            context = browser.new_context(viewport={"width": 1500, "height": 2200})
            context.on("request", lambda r: requests.append(r.url))
            page = context.new_page()

            # The care team member whose own name is a formula works the queue and the lead.
            sign_in(page, srv.base_url, MORGAN)
            page.goto(srv.url("/"))
            wait_for_app(page)
            expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
            _inert(page, "queue", requests, problems)
            page.goto(srv.url(f"/lead?id={lead_id}"))
            wait_for_app(page)
            body = page.locator("[data-testid=stMain]").text_content() or ""
            for text in (SCRIPT, MD_IMAGE, MD_LINK, "<b>Robin</b>"):
                assert text in body, text  # shown literally, as typed
            _inert(page, "lead page", requests, problems)
            screenshot(page, "hostile_lead")

            # An administrator sees every staff page, the lead and the audit trail.
            admin = browser.new_context(viewport={"width": 1500, "height": 2200})
            admin.on("request", lambda r: requests.append(r.url))
            page = admin.new_page()
            sign_in(page, srv.base_url, ADMIN)
            for path, _title, _icon, _perm in access.STAFF_PAGES:
                slug = "/" + path.removeprefix("pages/").removesuffix(".py")
                page.goto(srv.url(slug + (f"?id={lead_id}" if slug == "/lead" else "")))
                wait_for_app(page)
                _inert(page, f"{slug} (admin)", requests, problems)
            page.goto(srv.url("/admin_audit"))
            wait_for_app(page)
            grid = page.get_by_test_id("stDataFrame")
            expect(grid).to_be_visible()
            assert STAFF_NAME in (grid.text_content() or "")
            screenshot(page, "hostile_audit")
            audit_csv = _download(page, "Export CSV")
            assert "'" + STAFF_NAME in _cells(audit_csv)  # the formula arrives as text
            _formula_safe(audit_csv, "audit export")

            # A manager's dashboard exports (the team table carries the staff name).
            manager = browser.new_context(viewport={"width": 1500, "height": 2200})
            manager.on("request", lambda r: requests.append(r.url))
            page = manager.new_page()
            sign_in(page, srv.base_url, MANAGER)
            page.goto(srv.url("/dashboard"))
            wait_for_app(page)
            _inert(page, "dashboard", requests, problems)
            buttons = page.get_by_role("button", name="Download CSV")
            assert buttons.count() >= 1
            exported = []
            for index in range(buttons.count()):
                with page.expect_download() as info:
                    buttons.nth(index).click()
                path = info.value.path()
                assert path is not None
                with open(path, "rb") as handle:
                    data = handle.read()
                _formula_safe(data, f"dashboard export {index}")
                exported.append(data)
                wait_for_app(page)
            assert exported
            assert problems == []
        finally:
            browser.close()


def test_the_import_report_of_rejected_rows_is_formula_safe(sqlite_session: Session) -> None:
    from crm import importer

    message = MESSAGE.replace('"', "'")
    upload = (
        f'first_name,last_name,email,phone,message\r\n@SUM(A1),+1+2,not-an-email,-3,"{message}"\r\n'
    ).encode()
    report = importer.import_csv(session=sqlite_session, data=upload, actor_id=None)
    assert len(report.rejected) == 1
    data = importer.rejected_csv(report)
    _formula_safe(data, "rejected rows")
    assert "'@SUM(A1)" in _cells(data)
