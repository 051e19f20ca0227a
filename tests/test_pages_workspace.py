"""AppTests for the care team's workspace: the triage queue and the lead page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import streamlit as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from crm import db, leads
from crm.enums import Role, Stage
from crm.models import AuditEvent, ContactAttempt, Lead, User
from crm.timeutil import utcnow
from tests.factories import actor_of, make_contact, make_lead, make_user

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
ATTEMPT = "FormSubmitter:lead_attempt_form-Log attempt"
NEXT = "FormSubmitter:lead_next_form-Save next action"
CONTACT = "FormSubmitter:lead_contact_form-Save contact details"


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    from crm.settings import get_settings

    get_settings.cache_clear()
    # AppTest's mocked runtime answers every cookie lookup with a truthy MagicMock, which
    # ui.auth would take for a session cookie; a test browser has no cookies.
    monkeypatch.setattr(type(st.context), "cookies", property(lambda _self: {}))
    st.cache_resource.clear()
    db.ensure_ready(db.get_engine(url))
    with Session(db.get_engine(url)) as s:
        make_user(s, role=Role.ADMIN)  # an installed clinic: past the first-administrator setup
    yield url
    get_settings.cache_clear()
    st.cache_resource.clear()


@pytest.fixture
def s(app_db: str) -> Iterator[Session]:
    with Session(db.get_engine(app_db), expire_on_commit=False) as session:
        yield session


def signed_in(user: User) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["auth_actor"] = actor_of(user)
    return at


def open_lead(user: User, lead_id: int) -> AppTest:
    at = signed_in(user)
    at.switch_page("pages/lead.py")
    at.query_params["id"] = str(lead_id)
    at.run()
    assert not at.exception, at.exception
    return at


def names_in_queue(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["Name"]) if at.dataframe else []


# --- the queue -------------------------------------------------------------------------------------


def test_the_queue_lists_open_leads_urgent_first_with_counts(s: Session) -> None:
    me = make_user(s)
    now = utcnow()
    make_lead(
        s,
        contact=make_contact(s, first_name="Later", last_name="One"),
        due_at=now + timedelta(hours=1),
    )
    make_lead(s, contact=make_contact(s, first_name="Urgent", last_name="Two"), urgent=True)
    make_lead(
        s,
        contact=make_contact(s, first_name="Late", last_name="Three"),
        due_at=now - timedelta(hours=1),
    )
    make_lead(s, contact=make_contact(s, first_name="Gone", last_name="Four"), stage=Stage.LOST)
    at = signed_in(me).run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Triage queue"]
    assert names_in_queue(at) == ["Urgent Two", "Late Three", "Later One"]
    metrics = {m.label: m.value for m in at.metric}
    assert (
        metrics["All open"] == "3" and metrics["New inquiry"] == "3" and metrics["Contacted"] == "0"
    )
    flags = list(at.dataframe[0].value["Flags"])
    assert flags[0].startswith("URGENT") and "overdue" in flags[1]


def test_a_phone_number_typed_any_way_finds_the_person(s: Session) -> None:
    me = make_user(s)
    make_lead(
        s, contact=make_contact(s, first_name="Dana", last_name="Reyes", phone="+15715550100")
    )
    make_lead(
        s, contact=make_contact(s, first_name="Maya", last_name="Ortiz", phone="+15715550111")
    )
    at = signed_in(me).run()
    at.text_input(key="queue_search").input("(571) 555-0100").run()
    assert names_in_queue(at) == ["Dana Reyes"]
    at.text_input(key="queue_search").input("571.555.0111").run()
    assert names_in_queue(at) == ["Maya Ortiz"]


def test_filters_by_owner_and_stage(s: Session) -> None:
    me = make_user(s)
    make_lead(s, contact=make_contact(s, first_name="Mine", last_name="A"), owner_id=me.id)
    make_lead(
        s, contact=make_contact(s, first_name="Nobodys", last_name="B"), stage=Stage.CONTACTED
    )
    at = signed_in(me).run()
    at.selectbox(key="queue_owner").set_value("mine").run()
    assert names_in_queue(at) == ["Mine A"]
    at.selectbox(key="queue_owner").set_value("anyone").run()
    at.button_group(key="queue_stages").select("contacted").run()
    assert names_in_queue(at) == ["Nobodys B"]


def test_marking_myself_away_is_saved(s: Session) -> None:
    me = make_user(s)
    at = signed_in(me).run()
    at.toggle(key="queue_away").set_value(True).run()
    assert not at.exception
    s.expire_all()
    user = s.get(User, me.id)
    assert user is not None and user.away


def test_an_empty_queue_says_so(s: Session) -> None:
    at = signed_in(make_user(s)).run()
    assert any("No leads match" in i.value for i in at.info)


# --- the lead page ------------------------------------------------------------------------------------


def test_opening_a_lead_is_audited_once_per_visit(s: Session) -> None:
    me = make_user(s)
    lead = make_lead(s)
    at = open_lead(me, lead.id or 0)
    at.run()
    at.run()
    views = s.exec(select(AuditEvent).where(AuditEvent.action == "lead.view")).all()
    assert len(views) == 1 and views[0].lead_id == lead.id and views[0].actor_id == me.id


def test_what_the_lead_wrote_is_shown_as_plain_text(s: Session) -> None:
    me = make_user(s)
    contact = make_contact(s, first_name="**Bold**", last_name="[link](http://x.test)")
    lead = make_lead(s, contact=contact, urgent=True, crisis_reason='message mentions "end it"')
    at = open_lead(me, lead.id or 0)
    texts = [t.value for t in at.text]
    assert "**Bold** [link](http://x.test)" in texts
    assert 'Why it was flagged: message mentions "end it"' in texts
    markdown = " ".join(m.value for m in at.markdown)
    assert "**Bold**" not in markdown and "http://x.test" not in markdown
    assert any("Crisis flag" in e.value and "988" in e.value for e in at.error)


def test_logging_a_reached_call_moves_a_new_lead_to_contacted(s: Session) -> None:
    me = make_user(s)
    lead = make_lead(s)
    at = open_lead(me, lead.id or 0)
    at.selectbox(key="lead_attempt_channel").set_value("call")
    at.selectbox(key="lead_attempt_outcome").set_value("reached")
    at.text_area(key="lead_attempt_note").input("Wants a consult on Tuesday")
    at.button(key=ATTEMPT).click().run()
    assert not at.exception and not at.error
    assert any("Contact attempt logged" in m.value for m in at.success)
    s.expire_all()
    stored = s.get(Lead, lead.id)
    assert stored is not None and stored.stage == Stage.CONTACTED.value and stored.attempts == 1
    attempt = s.exec(select(ContactAttempt)).one()
    assert attempt.note == "Wants a consult on Tuesday"
    assert at.text_area(key="lead_attempt_note").value == ""  # cleared after the save
    assert any("Call · Reached" in m.value for m in at.markdown)  # on the timeline


def test_a_stale_save_is_refused_and_keeps_what_was_typed(s: Session) -> None:
    me = make_user(s, name="Me")
    colleague = make_user(s, name="Jo Colleague")
    lead = make_lead(s)
    at = open_lead(me, lead.id or 0)
    # Jo saves a change while the page is open.
    leads.set_next_action(
        session=s,
        actor=actor_of(colleague),
        lead_id=lead.id or 0,
        seen_version=1,
        action="Jo's plan",
        due=None,
    )
    s.commit()
    at.text_input(key="lead_next_action").input("My plan")
    at.button(key=NEXT).click().run()
    assert not at.exception
    assert any("Jo Colleague" in e.value and "Not saved" in e.value for e in at.error)
    assert at.text_input(key="lead_next_action").value == "My plan"
    s.expire_all()
    stored = s.get(Lead, lead.id)
    assert stored is not None and stored.next_action == "Jo's plan"
    # Having seen Jo's change, the save goes through.
    at.button(key="lead_accept_change").click().run()
    at.text_input(key="lead_next_action").input("My plan")
    at.button(key=NEXT).click().run()
    assert not at.error
    s.expire_all()
    stored = s.get(Lead, lead.id)
    assert stored is not None and stored.next_action == "My plan"


def test_the_move_buttons_are_the_allowed_ones(s: Session) -> None:
    me = make_user(s)
    lead = make_lead(s, stage=Stage.CONTACTED)
    at = open_lead(me, lead.id or 0)
    moves = {b.label for b in at.button if (b.key or "").startswith("lead_move_")}
    assert moves == {"Lost", "Not eligible", "Spam / duplicate"}  # a consult is booked below


def test_losing_a_lead_asks_why_and_other_needs_a_note(s: Session) -> None:
    me = make_user(s)
    lead = make_lead(s)
    at = open_lead(me, lead.id or 0)
    at.button(key="lead_move_lost").click().run()
    assert at.session_state["lead_move_to"] == "lost"
    at.selectbox(key="lead_move_reason").set_value("Other")
    at.button(key="FormSubmitter:lead_move_form-Move to Lost").click().run()
    assert any('"Other"' in e.value for e in at.error)
    s.expire_all()
    stored = s.get(Lead, lead.id)
    assert stored is not None and stored.stage == Stage.NEW.value
    at.text_area(key="lead_move_note").input("Moved abroad")
    at.button(key="FormSubmitter:lead_move_form-Move to Lost").click().run()
    assert not at.error
    s.expire_all()
    stored = s.get(Lead, lead.id)
    assert stored is not None and stored.stage == Stage.LOST.value
    assert (stored.closed_reason, stored.closed_note) == ("Other", "Moved abroad")
    reopen = {b.label for b in at.button if (b.key or "").startswith("lead_move_")}
    assert reopen == {"Reopen as New inquiry", "Reopen as Contacted"}


def test_claiming_from_the_lead_page(s: Session) -> None:
    me = make_user(s, name="Casey")
    lead = make_lead(s)
    at = open_lead(me, lead.id or 0)
    at.button(key="lead_claim").click().run()
    assert not at.exception
    s.expire_all()
    stored = s.get(Lead, lead.id)
    assert stored is not None and stored.owner_id == me.id
    assert any("Claimed by Casey" in m.value for m in at.markdown)


def test_an_invalid_phone_keeps_the_form_and_names_the_field(s: Session) -> None:
    me = make_user(s)
    lead = make_lead(s)
    at = open_lead(me, lead.id or 0)
    at.text_input(key="lead_contact_phone").input("555")
    at.button(key=CONTACT).click().run()
    assert any("phone number" in e.value for e in at.error)
    assert at.text_input(key="lead_contact_phone").value == "555"
    at.text_input(key="lead_contact_phone").input("(703) 555-0142")
    at.button(key=CONTACT).click().run()
    assert not at.error
    s.expire_all()
    stored = s.get(Lead, lead.id)
    assert stored is not None
    from crm.models import Contact

    contact = s.get(Contact, stored.contact_id)
    assert contact is not None and contact.phone == "+17035550142"


def test_without_an_id_the_page_points_to_the_queue(s: Session) -> None:
    at = signed_in(make_user(s))
    at.switch_page("pages/lead.py").run()
    assert not at.exception
    assert any("Open a lead" in i.value for i in at.info)


def test_a_colleagues_change_shows_in_fields_i_did_not_touch(s: Session) -> None:
    me = make_user(s, name="Me")
    colleague = make_user(s, name="Jo Colleague")
    lead = make_lead(
        s, contact=make_contact(s, first_name="Dana", last_name="Reyes", phone="+15715550100")
    )
    at = open_lead(me, lead.id or 0)
    leads.update_contact(
        session=s,
        actor=actor_of(colleague),
        lead_id=lead.id or 0,
        seen_version=1,
        values={"first_name": "Dana", "last_name": "Reyes", "phone": "(703) 555-0142"},
    )
    s.commit()
    at.text_input(key="lead_contact_city").input("Ashburn")
    at.button(key=CONTACT).click().run()
    assert any("Jo Colleague" in e.value for e in at.error)  # refused: the screen was outdated
    assert at.text_input(key="lead_contact_phone").value == "(703) 555-0142"  # theirs shows
    assert at.text_input(key="lead_contact_city").value == "Ashburn"  # mine stays
    at.button(key="lead_accept_change").click().run()
    at.button(key=CONTACT).click().run()
    assert not at.error
    from crm.models import Contact

    s.expire_all()
    contact = s.get(Contact, lead.contact_id)
    assert contact is not None
    assert (contact.phone, contact.city) == ("+17035550142", "Ashburn")
