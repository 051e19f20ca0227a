"""AppTests for the intake screens: the public form, phone intake and CSV import."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from crm import db
from crm.enums import Role, Source, Stage
from crm.models import AuditEvent, Lead, Note, Submission
from tests.factories import actor_of, make_user

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
SUBMIT = "FormSubmitter:rc_form-Send my request"
PHONE_SUBMIT = "FormSubmitter:pi_form-Save inquiry"


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    from crm.settings import get_settings

    get_settings.cache_clear()
    # AppTest's mocked runtime answers every cookie lookup with a (truthy) MagicMock, which
    # ui.auth would take for a session cookie; a test browser has no cookies.
    monkeypatch.setattr(type(st.context), "cookies", property(lambda _self: {}))
    st.cache_resource.clear()  # ui.context caches the engine of whichever test ran first
    db.ensure_ready(db.get_engine(url))
    with Session(db.get_engine(url)) as s:
        make_user(s, role=Role.ADMIN)  # an installed clinic: past the first-administrator setup
    yield url
    get_settings.cache_clear()
    st.cache_resource.clear()


def leads(url: str) -> list[Lead]:
    with Session(db.get_engine(url)) as s:
        return list(s.exec(select(Lead)).all())


def public_form() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    return at


def fill(at: AppTest, **values: str) -> None:
    for name, value in values.items():
        at.text_input(key=f"rc_{name}").input(value)


def test_a_typo_shows_the_error_under_the_field_and_keeps_everything_typed(app_db: str) -> None:
    at = public_form()
    fill(at, first_name="Maya", last_name="Ortiz", email="maya@example", phone="", zip_code="20147")
    at.text_area(key="rc_message").input("Long COVID left me  exhausted.\nHelp?")
    at.selectbox(key="rc_service").select("Anxiety")
    at.radio(key="rc_preferred_contact").set_value("email")
    at.checkbox(key="rc_consent").check()
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert "Enter a valid email address, like name@example.com" in errors
    assert len(errors) == 2  # the summary and the one field
    assert at.text_input(key="rc_first_name").value == "Maya"
    assert at.text_input(key="rc_email").value == "maya@example"
    assert at.text_area(key="rc_message").value == "Long COVID left me  exhausted.\nHelp?"
    assert at.selectbox(key="rc_service").value == "Anxiety"
    assert at.radio(key="rc_preferred_contact").value == "email"
    assert at.checkbox(key="rc_consent").value is True
    assert leads(app_db) == []

    at.text_input(key="rc_email").input("maya@example.com")
    at.button(key=SUBMIT).click().run()
    assert not at.exception and not at.error
    assert "Thank you. We have received your request." in [s.value for s in at.success]
    reference = at.code[0].value
    steps = " ".join(m.value for m in at.markdown)
    assert "will email you within 15 minutes during business hours" in steps
    assert "about 15 minutes" in steps
    stored = leads(app_db)
    assert len(stored) == 1 and stored[0].reference == reference
    with Session(db.get_engine(app_db)) as s:
        message = s.exec(select(Submission.message)).one()
    assert message == "Long COVID left me  exhausted.\nHelp?"


def test_every_required_field_is_reported_at_once(app_db: str) -> None:
    at = public_form()
    at.button(key=SUBMIT).click().run()
    errors = {e.value for e in at.error}
    assert {
        "Enter your first name",
        "Enter your last name",
        "Give an email address or a mobile phone number so we can reach you",
        "Please tick the box to agree that the clinic may contact you",
    } <= errors


def test_a_yes_to_the_crisis_question_shows_988_before_anything_else(app_db: str) -> None:
    at = public_form()
    fill(at, first_name="Sam", last_name="Lee", phone="571 555 0142")
    at.radio(key="rc_crisis_answer").set_value("yes")
    at.checkbox(key="rc_consent").check()
    at.button(key=SUBMIT).click().run()
    assert not at.exception
    texts = [m.value for m in at.markdown]
    first_crisis = next(i for i, t in enumerate(texts) if "988" in t)
    first_next_step = next(i for i, t in enumerate(texts) if "patient care team" in t)
    assert first_crisis < first_next_step
    assert any("911" in t for t in texts)
    assert at.error[0].value.startswith("**If you are thinking about harming yourself")
    assert leads(app_db)[0].urgent


def test_crisis_words_in_the_message_also_show_the_resources(app_db: str) -> None:
    at = public_form()
    fill(at, first_name="Kim", last_name="Ng", email="kim@example.com")
    at.text_area(key="rc_message").input("honestly I just want to end it all")
    at.radio(key="rc_crisis_answer").set_value("unsure")
    at.checkbox(key="rc_consent").check()
    at.button(key=SUBMIT).click().run()
    assert any("988" in m.value for m in at.markdown)


def test_a_bot_filling_the_honeypot_gets_the_thank_you_and_no_lead(app_db: str) -> None:
    at = public_form()
    fill(at, first_name="Bot", last_name="Bot", email="bot@example.com")
    at.text_input(key="intake_website").input("http://cheap-pills.example")
    at.checkbox(key="rc_consent").check()
    at.button(key=SUBMIT).click().run()
    assert "Thank you. We have received your request." in [s.value for s in at.success]
    assert at.code[0].value.startswith("KC-")
    assert leads(app_db) == []


def test_the_honeypot_is_hidden_with_css(app_db: str) -> None:
    at = public_form()
    css = " ".join(h.proto.body for h in at.html)
    assert ".st-key-intake_website" in css and "display: none" in css


def test_markup_typed_by_a_visitor_is_never_rendered(app_db: str) -> None:
    at = public_form()
    fill(
        at,
        first_name="![x](http://evil.example/p.png)",
        last_name="<b>Lee</b>",
        email="x@example.com",
    )
    at.checkbox(key="rc_consent").check()
    at.button(key=SUBMIT).click().run()
    rendered = " ".join(m.value for m in at.markdown)
    assert "evil.example" not in rendered and "<b>" not in rendered


def staff_app(url: str, role: Role = Role.CARE_TEAM) -> tuple[AppTest, int]:
    with Session(db.get_engine(url)) as s:
        user = make_user(s, role=role)
        actor = actor_of(user)
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["auth_actor"] = actor
    at.run()
    return at, actor.id


def test_phone_intake_creates_a_phone_lead_with_the_callers_words(app_db: str) -> None:
    at, user_id = staff_app(app_db)
    at.switch_page("pages/phone_intake.py").run()
    assert not at.exception
    at.text_input(key="pi_first_name").input("Rosa")
    at.button(key=PHONE_SUBMIT).click().run()
    assert "Give an email address or a mobile phone number so we can reach you" in [
        e.value for e in at.error
    ]
    assert at.text_input(key="pi_first_name").value == "Rosa"
    at.text_input(key="pi_phone").input("703.555.0123")
    at.text_area(key="pi_message").input("My daughter said ketamine helped her friend.")
    at.button(key=PHONE_SUBMIT).click().run()
    assert not at.exception
    assert any("saved and marked as contacted" in s.value for s in at.success)
    assert at.text_input(key="pi_first_name").value == ""  # cleared for the next call
    (lead,) = leads(app_db)
    assert lead.source == Source.PHONE.value and lead.stage == Stage.CONTACTED.value
    assert lead.attempts == 1 and lead.first_response_at is not None
    with Session(db.get_engine(app_db)) as s:
        note = s.exec(select(Note)).one()
    assert note.body == "My daughter said ketamine helped her friend." and note.actor_id == user_id


def test_phone_intake_can_leave_the_lead_new(app_db: str) -> None:
    at, _ = staff_app(app_db)
    at.switch_page("pages/phone_intake.py").run()
    at.text_input(key="pi_last_name").input("Diaz")
    at.text_input(key="pi_email").input("diaz@example.com")
    at.checkbox(key="pi_contacted_now").uncheck()
    at.button(key=PHONE_SUBMIT).click().run()
    (lead,) = leads(app_db)
    assert lead.stage == Stage.NEW.value and lead.attempts == 0


def test_an_anonymous_visitor_cannot_reach_phone_intake(app_db: str) -> None:
    at = public_form()
    with pytest.raises(ValueError):
        at.switch_page("pages/phone_intake.py").run()


CSV = (
    b"Full Name,Email,Phone,Zip\n"
    b"Ana Silva,ana@example.com,,20147\n"
    b"Bo Li,bad-email,,20147\n"
    b"Cy Diaz,,571 555 0133,90210\n"
)


def test_import_page_previews_imports_and_offers_the_rejected_rows(app_db: str) -> None:
    at, _ = staff_app(app_db, Role.MANAGER)
    at.switch_page("pages/import_leads.py").run()
    assert not at.exception
    at.file_uploader[0].upload("leads.csv", CSV, "text/csv")
    at.run()
    assert [m.value for m in at.metric] == ["3", "2", "1"]
    at.button(key="il_import").click().run()
    assert not at.exception
    assert at.success[0].value == "3 rows: 2 new leads, 0 added to existing leads, 1 rejected"
    assert len(leads(app_db)) == 2
    assert len(at.file_uploader) == 1  # a fresh, empty uploader: the file can't be imported twice
    at.download_button(key="il_download").click().run()
    assert not at.exception
    with Session(db.get_engine(app_db)) as s:
        actions = s.exec(select(AuditEvent.action)).all()
    assert "import.csv" in actions and "export.csv" in actions


def test_import_page_explains_an_unreadable_file(app_db: str) -> None:
    at, _ = staff_app(app_db, Role.MANAGER)
    at.switch_page("pages/import_leads.py").run()
    at.file_uploader[0].upload("leads.csv", b"\xff\xfe\x00garbage", "text/csv")
    at.run()
    assert any("UTF-8" in e.value for e in at.error)
    assert leads(app_db) == []


def test_care_team_cannot_reach_the_import_page(app_db: str) -> None:
    at, _ = staff_app(app_db, Role.CARE_TEAM)
    with pytest.raises(ValueError):
        at.switch_page("pages/import_leads.py").run()
