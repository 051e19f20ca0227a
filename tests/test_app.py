"""The app starts: anonymous visitors get the public form, staff get their workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crm.access import Actor
from crm.enums import Role

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    from crm.settings import get_settings

    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_app_starts_without_an_exception_for_an_anonymous_visitor(app_db: str) -> None:
    from crm import db
    from tests.factories import make_user

    with db.session_scope(db.ensure_ready(db.get_engine(app_db))) as s:
        make_user(s, role=Role.ADMIN)  # past the first-administrator setup screen
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    assert "Request a free consultation" in [t.value for t in at.title]


def test_a_signed_in_staff_member_lands_on_the_queue(app_db: str) -> None:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.session_state["auth_actor"] = Actor(id=1, email="a@clinic.test", name="A", role=Role.CARE_TEAM)
    at.run()
    assert not at.exception
