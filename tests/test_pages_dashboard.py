"""AppTest of the pipeline dashboard: managers see the figures, the care team can't get in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import streamlit as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from crm import db
from crm.enums import Role
from crm.metrics import Period
from crm.models import AuditEvent
from tests.factories import actor_of, make_user
from tests.test_metrics import build

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PAGE = "pages/dashboard.py"


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CRM_TIMEZONE", "America/New_York")
    from crm.settings import get_settings

    get_settings.cache_clear()
    # AppTest answers every cookie lookup with a MagicMock, which ui.auth would take for a
    # session cookie; a test browser has no cookies.
    monkeypatch.setattr(type(st.context), "cookies", property(lambda _self: {}))
    st.cache_resource.clear()
    st.cache_data.clear()
    db.ensure_ready(db.get_engine(url))
    yield url
    get_settings.cache_clear()
    st.cache_resource.clear()
    st.cache_data.clear()


def signed_in(url: str, role: Role) -> AppTest:
    with Session(db.get_engine(url), expire_on_commit=False) as s:
        user = make_user(s, role=role, name=f"{role.value} user")
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_actor"] = actor_of(user)
    return at


def march(at: AppTest) -> AppTest:
    """Open the dashboard on the custom range March 2026."""
    at.run()
    at.switch_page(PAGE)
    at.session_state["dash_period"] = Period.CUSTOM
    at.session_state["dash_range"] = (date(2026, 3, 1), date(2026, 3, 31))
    return at.run()


def metric(at: AppTest, label: str) -> tuple[str, str]:
    m = next(m for m in at.metric if m.label == label)
    return m.value, m.delta


def test_a_manager_sees_the_figures_of_the_period(app_db: str) -> None:
    with Session(db.get_engine(app_db), expire_on_commit=False) as s:
        build(s)
    at = march(signed_in(app_db, Role.MANAGER))
    assert not at.exception
    assert at.title[0].value == "Pipeline dashboard"
    assert metric(at, "New inquiries") == ("10", "+8")  # 10 against 2 in the previous period
    assert metric(at, "Median time to first contact") == ("15m", "-5m")  # 899 s vs 1200 s
    assert metric(at, "Contacted within target") == ("40%", "-10.0 pts")
    assert metric(at, "Consult booked")[0] == "50%"
    assert metric(at, "Consult show rate") == ("60%", "+60.0 pts")
    assert metric(at, "Screening clear rate") == ("75%", "")
    assert metric(at, "Inquiry → first infusion") == ("20%", "+20.0 pts")
    assert metric(at, "Inquiry → infusion, median")[0] == "10.0d"
    assert metric(at, "Urgent leads") == ("2", "+2")
    # The funnel table: one column per area (plus all leads), cells "reached (step conversion)".
    table = at.dataframe[0].value
    assert list(table.columns) == ["All leads", "Ashburn", "Leesburg", "Lansdowne", "Out of area"]
    assert table.loc["Screening", "All leads"] == "4 (100%)"
    assert table.loc["Contacted", "Leesburg"] == "2 (50%)"
    keys = {b.key for b in at.download_button}
    assert {"dash_dl_headline", "dash_dl_funnel_service_area", "dash_dl_trend",
            "dash_dl_stage_time", "dash_dl_reasons", "dash_dl_team"} <= keys  # fmt: skip


def test_the_funnel_can_be_broken_down_by_source(app_db: str) -> None:
    with Session(db.get_engine(app_db), expire_on_commit=False) as s:
        build(s)
    at = march(signed_in(app_db, Role.MANAGER))
    at.segmented_control(key="dash_by").set_value("source").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == ["All leads", "Web form", "Phone", "Referral", "Import"]
    assert table.loc["New inquiry", "Phone"] == "2 (100%)"


def test_filters_narrow_every_figure(app_db: str) -> None:
    with Session(db.get_engine(app_db), expire_on_commit=False) as s:
        ids = build(s)
    at = march(signed_in(app_db, Role.MANAGER))
    at.multiselect(key="dash_areas").set_value([ids["lee"]]).run()
    assert not at.exception
    assert metric(at, "New inquiries")[0] == "4"
    assert list(at.dataframe[0].value.columns) == ["All leads", "Leesburg"]


def test_downloading_a_table_is_recorded_in_the_audit_trail(app_db: str) -> None:
    with Session(db.get_engine(app_db), expire_on_commit=False) as s:
        build(s)
    at = march(signed_in(app_db, Role.MANAGER))
    at.download_button(key="dash_dl_funnel_service_area").click().run()
    assert not at.exception
    with Session(db.get_engine(app_db), expire_on_commit=False) as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "export.csv")).one()
    details = json.loads(event.details)
    assert details["what"] == "Funnel by service area"
    assert details["rows"] == 40  # 8 stages x (all leads + 4 areas)
    assert (details["filters"]["from"], details["filters"]["to"]) == ("2026-03-01", "2026-03-31")


def test_an_empty_period_says_so_instead_of_failing(app_db: str) -> None:
    at = march(signed_in(app_db, Role.MANAGER))
    assert not at.exception
    assert "No leads in this period." in [i.value for i in at.info]
    assert not at.metric


def test_a_care_team_member_cannot_open_the_dashboard(app_db: str) -> None:
    at = signed_in(app_db, Role.CARE_TEAM)
    at.run()
    with pytest.raises(ValueError):
        at.switch_page(PAGE).run()


def test_the_page_refuses_a_care_team_member_even_if_reached(app_db: str) -> None:
    at = AppTest.from_file(str(Path(APP).parent / PAGE), default_timeout=60)
    with Session(db.get_engine(app_db), expire_on_commit=False) as s:
        at.session_state["auth_actor"] = actor_of(make_user(s, role=Role.CARE_TEAM))
    at.run()
    assert at.error and "can't" in at.error[0].value
    assert not at.metric
