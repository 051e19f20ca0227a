"""Sign a staff member in through the real login page (browser tests).

Usage::

    with db.session_scope(db.ensure_ready(db.get_engine(url))) as s:
        users.create_user(session=s, email="pat@clinic.test", password=PASSWORD, role=Role.CARE_TEAM)
    sign_in(page, srv.base_url, "pat@clinic.test", PASSWORD)   # lands on the workspace

Streamlit's password box carries a "Show password" button, so `get_by_label("Password")`
matches two elements: use `exact=True` as below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.support.browser import wait_for_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

PASSWORD = "correct horse battery 42"


def sign_in(
    page: Page, base_url: str, email: str, password: str = PASSWORD, *, timeout: float = 30_000
) -> None:
    """Fill the login form, press "Sign in", and wait until the session cookie is set."""
    page.goto(base_url.rstrip("/") + "/login")
    wait_for_app(page)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    # The app sends the browser to /auth/session, which sets the cookie and returns to "/".
    page.wait_for_function(
        "() => !location.pathname.startsWith('/login') && !location.pathname.startsWith('/auth')",
        timeout=timeout,
    )
    page.wait_for_selector('[data-testid="stSidebarNav"]', timeout=timeout)
    wait_for_app(page)
