"""Staff accounts in a real browser: first administrator, sign-in that survives a refresh,
idle logout, lockout, disabled accounts, direct URLs, and the audit trail that records it all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlmodel import Session, select

from crm import auth, db, intake, users
from crm.enums import Role
from crm.models import AuditEvent, User
from crm.validation import validate_intake
from tests.support.browser import launch_browser, screenshot, wait_for_app
from tests.support.server import RunningServer, start_streamlit
from tests.support.signin import PASSWORD, sign_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

IDLE_SECONDS = 20
ADMIN = "boss@clinic.test"
CASEY = "casey@clinic.test"
CASEY_PASSWORD = "blue lantern orchard 7"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, str, Path]]:
    """A fresh installation (no accounts yet) with a short idle timeout."""
    folder = tmp_path_factory.mktemp("e2e_accounts")
    url = f"sqlite:///{folder / 'crm.sqlite3'}"
    env = {"DATABASE_URL": url, "CRM_SESSION_IDLE_SECONDS": str(IDLE_SECONDS)}
    with start_streamlit(env=env) as srv:
        yield srv, url, folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_browser(pw)
        yield b
        b.close()


def _page(browser: Browser) -> Page:
    return browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()


def _heading(page: Page, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=text, exact=True)).to_be_visible(timeout=30_000)


def _lead(url: str) -> int:
    engine = db.make_engine(url)
    values = {
        "first_name": "Jamie",
        "last_name": "Morales",
        "email": "jamie.morales@example.com",
        "phone": "(571) 555-0188",
        "zip_code": "20147",
        "service": "Depression (incl. treatment-resistant)",
        "message": "Is ketamine an option for me?",
        "consent": True,
        "crisis_answer": "no",
    }
    with Session(engine) as s:
        result = intake.submit(
            session=s, data=validate_intake(values, mode="public"), actor_id=None, raw=values
        )
        s.commit()
    engine.dispose()
    return result.lead_id


def _actions_of(url: str, email: str) -> list[str]:
    engine = db.make_engine(url)
    with Session(engine) as s:
        user = s.exec(select(User).where(User.email == email)).one()
        rows = s.exec(
            select(AuditEvent.action).where(AuditEvent.actor_id == user.id).order_by(AuditEvent.id)
        ).all()
    engine.dispose()
    return list(rows)


def test_first_admin_adds_a_coordinator_who_works_a_lead_until_the_idle_timeout(
    server: tuple[RunningServer, str, Path], browser: Browser
) -> None:
    from playwright.sync_api import expect

    srv, url, folder = server
    admin = _page(browser)

    # A new installation offers one screen, whatever the address.
    for path in ("/admin_users", "/request_consult", "/"):  # end on "/": no "page not found"
        admin.goto(srv.url(path))
        wait_for_app(admin)
        _heading(admin, "Create the first administrator")
    assert admin.get_by_test_id("stSidebarNav").count() == 0
    screenshot(admin, "accounts_first_admin")
    admin.get_by_label("Email", exact=True).fill(ADMIN)
    admin.get_by_label("Name", exact=True).fill("Blair Boss")
    admin.get_by_label("Password", exact=True).fill(PASSWORD)
    admin.get_by_label("Password again", exact=True).fill(PASSWORD)
    admin.get_by_role("button", name="Create administrator").click()
    wait_for_app(admin)
    _heading(admin, "Staff sign-in")
    expect(admin.get_by_text("Administrator created. Please sign in.")).to_be_visible()
    screenshot(admin, "accounts_login")

    # The administrator signs in and adds a care-team member on the Staff accounts page.
    sign_in(admin, srv.base_url, ADMIN)
    admin.goto(srv.url("/admin_users"))
    wait_for_app(admin)
    _heading(admin, "Staff accounts")
    admin.locator(".st-key-users_add_email input").fill(CASEY)
    admin.locator(".st-key-users_add_name input").fill("Casey Coordinator")
    admin.locator(".st-key-users_add_password input").fill(CASEY_PASSWORD)
    admin.locator(".st-key-users_add_confirm input").fill(CASEY_PASSWORD)
    admin.get_by_role("button", name="Add staff member").click()
    wait_for_app(admin)
    expect(admin.get_by_text(f"Added {CASEY}.")).to_be_visible()
    screenshot(admin, "accounts_admin_users")

    # Casey signs in on their own computer: the cookie is HttpOnly, SameSite=Strict, signed.
    lead_id = _lead(url)
    casey = _page(browser)
    sign_in(casey, srv.base_url, CASEY, CASEY_PASSWORD)
    cookie = {c["name"]: c for c in casey.context.cookies()}[auth.COOKIE_NAME]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert casey.evaluate("document.cookie").find(auth.COOKIE_NAME) == -1  # not readable by scripts
    nav = casey.get_by_test_id("stSidebarNav")
    for hidden in ("Staff accounts", "Clinic settings", "Audit trail", "Pipeline dashboard"):
        expect(nav.get_by_text(hidden, exact=True)).to_have_count(0)

    # ... works a lead: opens it and adds a note.
    casey.goto(srv.url(f"/lead?id={lead_id}"))
    wait_for_app(casey)
    expect(casey.get_by_text("Jamie Morales", exact=True)).to_be_visible()
    casey.get_by_role("tab", name="Add a note").click()
    casey.locator(".st-key-lead_note_body textarea").fill("Left a voicemail, will try again at 3.")
    casey.get_by_role("button", name="Add note").click()
    wait_for_app(casey)
    expect(casey.get_by_text("Note added.")).to_be_visible()

    # ... survives a refresh,
    casey.reload()
    wait_for_app(casey)
    expect(casey.get_by_text("Jamie Morales", exact=True)).to_be_visible()
    expect(casey.get_by_text("Signed in as Casey Coordinator")).to_be_visible()

    # ... and is signed out when idle: the open screen signs itself out, no click needed.
    time.sleep(IDLE_SECONDS + 2)
    _heading(casey, "Staff sign-in")
    expect(casey.get_by_text("signed out after a period without activity")).to_be_visible(
        timeout=30_000
    )
    expect(casey.get_by_text("Jamie Morales", exact=True)).to_have_count(0)
    screenshot(casey, "accounts_idle_signed_out")
    casey.goto(srv.url(f"/lead?id={lead_id}"))  # the old cookie no longer opens anything
    wait_for_app(casey)
    expect(casey.get_by_text("Jamie Morales", exact=True)).to_have_count(0)
    assert _actions_of(url, CASEY)[:1] == ["auth.login"]
    assert {"lead.view", "lead.note", "auth.logout"} <= set(_actions_of(url, CASEY))

    # The administrator (signed out meanwhile too) signs in again and reads it in the trail.
    sign_in(admin, srv.base_url, ADMIN)
    admin.goto(srv.url("/admin_audit"))
    wait_for_app(admin)
    _heading(admin, "Audit trail")
    admin.locator(".st-key-audit_person").click()
    admin.get_by_role("option", name=re.compile("Casey Coordinator")).click()
    wait_for_app(admin)
    grid = admin.get_by_test_id("stDataFrame")
    expect(grid).to_be_visible()
    table = grid.text_content() or ""
    for action in ("auth.login", "lead.view", "lead.note", "auth.logout"):
        assert action in table, action
    assert '{"reason": "idle"}' in table
    screenshot(admin, "accounts_admin_audit")

    # Passwords were never written in clear: not in the database files, not in the log.
    for path in folder.glob("crm.sqlite3*"):
        raw = path.read_bytes()
        assert PASSWORD.encode() not in raw and CASEY_PASSWORD.encode() not in raw
    assert PASSWORD not in srv.log_text() and CASEY_PASSWORD not in srv.log_text()


def test_signing_out_clears_the_cookie_and_ends_the_session(
    server: tuple[RunningServer, str, Path], browser: Browser
) -> None:
    from playwright.sync_api import expect

    srv, url, _folder = server
    _ensure_user(url, "sam@clinic.test", Role.MANAGER)
    page = _page(browser)
    sign_in(page, srv.base_url, "sam@clinic.test")
    old = {c["name"]: c["value"] for c in page.context.cookies()}[auth.COOKIE_NAME]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login$"), timeout=30_000)
    wait_for_app(page)
    _heading(page, "Staff sign-in")
    assert auth.COOKIE_NAME not in {c["name"] for c in page.context.cookies()}
    # Even a copy of the old cookie opens nothing: the session ended on the server.
    page.context.add_cookies([{"name": auth.COOKIE_NAME, "value": old, "url": srv.base_url}])
    page.goto(srv.url("/dashboard"))
    wait_for_app(page)
    _heading(page, "Staff sign-in")
    expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)
    expect(page.get_by_role("heading", name="Pipeline dashboard")).to_have_count(0)


def test_a_tampered_cookie_is_refused(
    server: tuple[RunningServer, str, Path], browser: Browser
) -> None:
    srv, url, _folder = server
    _ensure_user(url, "tess@clinic.test", Role.ADMIN)
    page = _page(browser)
    sign_in(page, srv.base_url, "tess@clinic.test")
    good = {c["name"]: c["value"] for c in page.context.cookies()}[auth.COOKIE_NAME]
    fresh = _page(browser)
    # Change the payload, not the signature's last character: base64's final character can
    # carry unused bits, so changing it may leave the decoded signature, and the cookie, valid.
    forged = ("B" if good[0] != "B" else "C") + good[1:]
    fresh.context.add_cookies([{"name": auth.COOKIE_NAME, "value": forged, "url": srv.base_url}])
    fresh.goto(srv.url("/admin_users"))
    wait_for_app(fresh)
    _heading(fresh, "Request a free consultation")


def test_a_disabled_user_is_out_on_their_next_click(
    server: tuple[RunningServer, str, Path], browser: Browser
) -> None:
    from playwright.sync_api import expect

    srv, url, _folder = server
    _ensure_user(url, ADMIN, Role.ADMIN)  # the administrator who disables her
    _ensure_user(url, "dana@clinic.test", Role.CARE_TEAM)
    page = _page(browser)
    sign_in(page, srv.base_url, "dana@clinic.test")
    engine = db.make_engine(url)
    with Session(engine) as s:
        boss = s.exec(select(User).where(User.email == ADMIN)).one()
        dana = s.exec(select(User).where(User.email == "dana@clinic.test")).one()
        users.disable_user(session=s, actor=auth.actor_from(boss), user_id=dana.id or 0)
        s.commit()
    engine.dispose()
    page.get_by_test_id("stSidebarNav").get_by_text("Consults", exact=True).click()
    wait_for_app(page)
    _heading(page, "Staff sign-in")
    expect(page.get_by_text("You have been signed out.")).to_be_visible()


def test_repeated_wrong_passwords_lock_the_account_with_the_same_message(
    server: tuple[RunningServer, str, Path], browser: Browser
) -> None:
    from playwright.sync_api import expect

    srv, url, _folder = server
    _ensure_user(url, "lee@clinic.test", Role.CARE_TEAM)
    page = _page(browser)
    page.goto(srv.url("/login"))
    wait_for_app(page)
    messages = []
    for attempt in range(auth.ACCOUNT_LOCK_AFTER + 1):
        page.get_by_label("Email", exact=True).fill("lee@clinic.test")
        page.get_by_label("Password", exact=True).fill(
            "not the password" if attempt < 5 else PASSWORD
        )
        page.get_by_role("button", name="Sign in").click()
        wait_for_app(page)
        alert = page.get_by_test_id("stAlertContentError")
        expect(alert).to_be_visible()
        messages.append(alert.inner_text())
        time.sleep(min(2 ** max(attempt - 1, 0), 8) + 0.5)  # past each growing wait
    assert messages[:5] == ["Email or password is not right."] * 5
    assert messages[5].startswith("Too many failed sign-in attempts")  # even the right password
    screenshot(page, "accounts_locked")
    engine = db.make_engine(url)
    with Session(engine) as s:
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "auth.lockout")).all()
    engine.dispose()


def test_on_a_fresh_server_a_direct_staff_url_lands_on_the_public_form(
    tmp_path: Path, browser: Browser
) -> None:
    """Streamlit runs pages/x.py without the router until st.navigation ran once; not here."""
    url = f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    _ensure_user(url, "boss@clinic.test", Role.ADMIN)
    with start_streamlit(env={"DATABASE_URL": url}) as srv:
        page = _page(browser)
        page.goto(srv.url("/admin_users"))  # the very first page this server runs
        wait_for_app(page)
        _heading(page, "Request a free consultation")
        assert page.get_by_test_id("stSidebarNav").count() == 0
        for path in ("/queue", "/admin_audit", "/lead?id=1"):
            page.goto(srv.url(path))
            wait_for_app(page)
            _heading(page, "Request a free consultation")


def _ensure_user(url: str, email: str, role: Role) -> None:
    engine = db.make_engine(url)
    db.ensure_ready(engine)
    with Session(engine) as s:
        if s.exec(select(User).where(User.email == email)).first() is None:
            users.create_user(
                session=s,
                email=email,
                password=PASSWORD,
                role=role,
                name=email.split("@")[0].title(),
            )
            s.commit()
    engine.dispose()
