"""AppTests: the Consults page and the lead page's consult, screening and infusion sections."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from crm import db, scheduling
from crm.access import Actor
from crm.enums import Answer, ConsultStatus, Role, ScreeningItem, Stage
from crm.models import Appointment, Consult, Lead
from crm.timeutil import to_local, utcnow
from tests.factories import actor_of, make_contact, make_lead, make_user

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
HARNESS = str(ROOT / "tests" / "apps" / "lead_sections_app.py")
PAGE = "pages/consults.py"
TZ = "America/New_York"
ALL_DAY = [(d, time(0), time(23, 59)) for d in range(7)]


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("CRM_TIMEZONE", TZ)
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


def session_for(url: str) -> Session:
    return Session(db.get_engine(url), expire_on_commit=False)


def today() -> date:
    return to_local(utcnow(), TZ).date()


def at_local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(TZ))


def other_day_this_week() -> date:
    day = today()
    return day + timedelta(days=1) if day.weekday() == 0 else day - timedelta(days=day.weekday())


def add_consult(
    s: Session, *, lead: Lead, provider_id: int, starts_at: datetime, status: str = "booked"
) -> Consult:
    consult = Consult(
        lead_id=lead.id or 0,
        provider_id=provider_id,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=15),
        status=status,
    )
    s.add(consult)
    s.commit()
    return consult


class Clinic:
    """Two providers, a coordinator and three booked consults (two today, one this week)."""

    def __init__(self, url: str) -> None:
        with session_for(url) as s:
            admin = actor_of(make_user(s, role=Role.ADMIN))
            self.ada = actor_of(make_user(s, role=Role.PROVIDER, name="Dr. Ada Rivera"))
            self.ben = actor_of(make_user(s, role=Role.PROVIDER, name="Dr. Ben Cho"))
            self.coordinator = actor_of(make_user(s, role=Role.CARE_TEAM, name="Casey Coordinator"))
            for provider in (self.ada, self.ben):
                scheduling.set_availability(
                    session=s, actor=admin, provider_id=provider.id, windows=ALL_DAY
                )
            s.commit()
            maria = make_contact(
                s,
                first_name="Maria",
                last_name="**Lopez** [x](http://evil.test)",
                phone="+15715550100",
            )
            self.maria = make_lead(s, stage=Stage.CONSULT_SCHEDULED, contact=maria)
            self.john = make_lead(
                s, stage=Stage.CONSULT_SCHEDULED, contact=make_contact(s, first_name="John")
            )
            self.kim = make_lead(
                s, stage=Stage.CONSULT_SCHEDULED, contact=make_contact(s, first_name="Kim")
            )
            # Local midnight today has always passed: the consult can be marked a no-show.
            self.maria_consult = add_consult(
                s, lead=self.maria, provider_id=self.ada.id, starts_at=at_local(today(), 0)
            )
            self.john_consult = add_consult(
                s, lead=self.john, provider_id=self.ben.id, starts_at=at_local(today(), 0, 15)
            )
            self.kim_consult = add_consult(
                s,
                lead=self.kim,
                provider_id=self.ada.id,
                starts_at=at_local(other_day_this_week(), 0, 30),
            )


def consults_page(actor: Actor) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_actor"] = actor
    at.run()
    at.switch_page(PAGE)
    return at.run()


def shown(value: str) -> str:
    """Markdown-escaped text as the reader sees it."""
    return re.sub(r"\\(.)", r"\1", value)


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def stage_of(url: str, lead_id: int | None) -> str:
    with session_for(url) as s:
        lead = s.get(Lead, lead_id)
        assert lead is not None
        return lead.stage


def button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}: {[b.label for b in at.button]}"
    return matches[0]


# --- Consults page -------------------------------------------------------------------------------


def test_a_provider_sees_their_own_consults_today(app_db: str) -> None:
    clinic = Clinic(app_db)
    at = consults_page(clinic.ada)
    assert not at.exception
    assert at.selectbox(key="consults_provider").value == clinic.ada.id
    names = texts(at)
    assert any(n.startswith("Maria") for n in names)
    assert not any(n.startswith("John") for n in names)
    assert not any(n.startswith("Kim") for n in names)  # another day this week


def test_others_see_every_provider_and_can_choose_one(app_db: str) -> None:
    clinic = Clinic(app_db)
    at = consults_page(clinic.coordinator)
    assert at.selectbox(key="consults_provider").value == 0
    names = texts(at)
    assert any(n.startswith("Maria") for n in names) and any(n.startswith("John") for n in names)
    at.selectbox(key="consults_provider").set_value(clinic.ben.id).run()
    names = texts(at)
    assert any(n.startswith("John") for n in names) and not any(
        n.startswith("Maria") for n in names
    )


def test_the_week_view_adds_the_other_days(app_db: str) -> None:
    clinic = Clinic(app_db)
    at = consults_page(clinic.ada)
    at.radio(key="consults_span").set_value("This week").run()
    names = texts(at)
    assert any(n.startswith("Maria") for n in names) and any(n.startswith("Kim") for n in names)


def test_each_row_has_the_lead_link_the_phone_and_the_status(app_db: str) -> None:
    clinic = Clinic(app_db)
    at = consults_page(clinic.ada)
    md = markdown(at)
    assert "(tel:+15715550100)" in md
    assert r"\(571\) 555\-0100" in md  # national format, Markdown-escaped
    links = [p for p in at.get("page_link")]
    lead_url = f"/lead?id={clinic.maria.id}"
    assert lead_url in md or any(str(clinic.maria.id) in str(p.proto) for p in links)
    assert "Booked" in md
    # The lead's own text is shown as plain text, never as Markdown.
    assert "Maria **Lopez** [x](http://evil.test)" in texts(at)
    assert "http://evil.test)" not in md.replace(r"\(", "(").replace("](http://evil", "")


def test_marking_a_no_show_sends_the_lead_back_to_contacted(app_db: str) -> None:
    clinic = Clinic(app_db)
    at = consults_page(clinic.coordinator)
    at.button(key=f"consults_toggle_{clinic.maria_consult.id}").click().run()
    at.button(key=f"consults_{clinic.maria_consult.id}_no_show").click().run()
    assert not at.exception
    assert [shown(s.value) for s in at.success] == [
        "Marked as a no-show; the lead is back to contacted."
    ]
    assert stage_of(app_db, clinic.maria.id) == Stage.CONTACTED
    assert "No-show" in markdown(at)


def test_recording_the_outcome_completes_the_consult(app_db: str) -> None:
    clinic = Clinic(app_db)
    at = consults_page(clinic.ada)
    key = f"consults_{clinic.maria_consult.id}_"
    at.button(key=f"consults_toggle_{clinic.maria_consult.id}").click().run()
    button(at, "Save outcome").click().run()
    assert "Say whether the person is a candidate" in at.error[0].value
    at.radio(key=f"{key}candidate").set_value("yes")
    at.multiselect(key=f"{key}topics").set_value(["cost", "driving"])
    at.text_area(key=f"{key}notes").input("Wants to start soon.")
    button(at, "Save outcome").click().run()
    assert not at.exception and not at.error
    assert stage_of(app_db, clinic.maria.id) == Stage.CONSULT_COMPLETED
    with session_for(app_db) as s:
        consult = s.get(Consult, clinic.maria_consult.id)
        assert consult is not None
        assert (consult.status, consult.candidate, consult.topics) == (
            "completed",
            "yes",
            "cost,driving",
        )
        assert consult.outcome_notes == "Wants to start soon."


def test_cancel_and_rebook_from_the_page(app_db: str) -> None:
    clinic = Clinic(app_db)
    at = consults_page(clinic.coordinator)
    john = clinic.john_consult.id
    at.button(key=f"consults_toggle_{john}").click().run()
    tomorrow = today() + timedelta(days=1)
    at.date_input(key=f"consults_{john}_rebook_day").set_value(tomorrow).run()
    slot = at.selectbox(key=f"consults_{john}_rebook_slot")
    assert slot.value == at_local(tomorrow, 0).astimezone(ZoneInfo("UTC")).isoformat()
    slot.set_value(at_local(tomorrow, 9, 30).astimezone(ZoneInfo("UTC")).isoformat())
    at.button(key=f"consults_{john}_rebook").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Rebooked for" in at.success[0].value
    with session_for(app_db) as s:
        rows = s.exec(
            select(Consult).where(Consult.lead_id == clinic.john.id).order_by(Consult.id)
        ).all()
        assert [r.status for r in rows] == ["cancelled", "booked"]
        assert rows[1].starts_at == at_local(tomorrow, 9, 30)
    assert stage_of(app_db, clinic.john.id) == Stage.CONSULT_SCHEDULED
    # Cancel Maria's.
    maria = clinic.maria_consult.id
    at.button(key=f"consults_toggle_{maria}").click().run()
    at.text_input(key=f"consults_{maria}_cancel_reason").input("Asked to call next month")
    at.button(key=f"consults_{maria}_cancel").click().run()
    assert stage_of(app_db, clinic.maria.id) == Stage.CONTACTED


def test_a_stale_action_is_refused_with_who_changed_the_lead(app_db: str) -> None:
    clinic = Clinic(app_db)
    at = consults_page(clinic.coordinator)
    at.button(key=f"consults_toggle_{clinic.maria_consult.id}").click().run()
    with session_for(app_db) as s:  # a colleague changes the lead meanwhile
        lead = s.get(Lead, clinic.maria.id)
        assert lead is not None
        lead.version += 1
        lead.updated_by_id = clinic.ben.id
        s.add(lead)
        s.commit()
    at.button(key=f"consults_{clinic.maria_consult.id}_no_show").click().run()
    assert "Dr\\. Ben Cho changed this lead" in at.error[0].value
    assert stage_of(app_db, clinic.maria.id) == Stage.CONSULT_SCHEDULED


# --- Lead page sections ----------------------------------------------------------------------------


def sections(actor: Actor, lead_id: int | None) -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=60)
    at.session_state["auth_actor"] = actor
    at.session_state["harness_lead_id"] = lead_id
    return at.run()


def test_booking_a_consult_from_the_lead_page(app_db: str) -> None:
    clinic = Clinic(app_db)
    with session_for(app_db) as s:
        lead = make_lead(s, stage=Stage.CONTACTED)
    at = sections(clinic.coordinator, lead.id)
    assert not at.exception
    at.selectbox(key="lead_consult_book_provider").set_value(clinic.ben.id).run()
    at.date_input(key="lead_consult_book_day").set_value(today() + timedelta(days=2)).run()
    at.button(key="lead_consult_book").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "Consult booked for" in at.success[0].value
    assert stage_of(app_db, lead.id) == Stage.CONSULT_SCHEDULED
    # The booked consult now offers its actions instead of the booking form.
    assert "lead_consult_book" not in [b.key for b in at.button]
    assert any(b.label == "Save outcome" for b in at.button)


def test_a_refused_booking_keeps_the_chosen_slot(app_db: str) -> None:
    clinic = Clinic(app_db)
    with session_for(app_db) as s:
        lead = make_lead(s, stage=Stage.CONTACTED)
        other = make_lead(s, stage=Stage.CONTACTED)
    at = sections(clinic.coordinator, lead.id)
    day = today() + timedelta(days=3)
    at.date_input(key="lead_consult_book_day").set_value(day).run()
    wanted = at_local(day, 10).astimezone(ZoneInfo("UTC")).isoformat()
    at.selectbox(key="lead_consult_book_provider").set_value(clinic.ada.id).run()
    at.selectbox(key="lead_consult_book_slot").set_value(wanted).run()
    with session_for(app_db) as s:  # another coordinator takes that slot first
        scheduling.book_consult(
            session=s,
            actor=clinic.coordinator,
            lead_id=other.id or 0,
            provider_id=clinic.ada.id,
            starts_at=at_local(day, 10),
        )
        s.commit()
    at.button(key="lead_consult_book").click().run()
    assert "already has a consult" in at.error[0].value
    assert stage_of(app_db, lead.id) == Stage.CONTACTED
    assert at.date_input(key="lead_consult_book_day").value == day
    assert at.selectbox(key="lead_consult_book_provider").value == clinic.ada.id


def test_outcome_notes_show_as_plain_text(app_db: str) -> None:
    clinic = Clinic(app_db)
    with session_for(app_db) as s:
        consult = s.get(Consult, clinic.maria_consult.id)
        assert consult is not None
        consult.status, consult.candidate, consult.outcome_notes = (
            "completed",
            "yes",
            "![pixel](http://x.test/p.png)",
        )
        s.add(consult)
        s.commit()
    at = sections(clinic.ada, clinic.maria.id)
    assert "![pixel](http://x.test/p.png)" in texts(at)
    assert "http://x.test" not in markdown(at)


def fill_checklist(
    at: AppTest, answers: dict[str, str], bp: tuple[int | None, int | None] = (120, 80)
) -> AppTest:
    for item, answer in answers.items():
        at.button_group(key=f"lead_screen_{item}_answer").set_value(answer)
    at.number_input(key="lead_screen_hypertension_bp_sys").set_value(bp[0])
    at.number_input(key="lead_screen_hypertension_bp_dia").set_value(bp[1])
    return button(at, "Save answers").click().run()


ALL_CLEAR = {
    **{i.value: Answer.NO.value for i in ScreeningItem},
    "driver_arranged": Answer.YES.value,
    "records_received": Answer.YES.value,
}


def test_a_coordinator_records_answers_but_only_asks_for_review(app_db: str) -> None:
    clinic = Clinic(app_db)
    with session_for(app_db) as s:
        lead = make_lead(s, stage=Stage.CONSULT_COMPLETED)
    at = sections(clinic.coordinator, lead.id)
    assert not at.exception
    assert at.radio(key="lead_screen_outcome").options == ["Needs provider review"]
    at = fill_checklist(at, ALL_CLEAR)
    assert not at.error, [e.value for e in at.error]
    assert at.success[0].value.startswith("Saved 9 answers")
    assert stage_of(app_db, lead.id) == Stage.SCREENING
    assert "No concerning answers." in [s.value for s in at.success]
    assert at.expander[0].label == "Checklist: 9 of 9 answered"
    at.text_area(key="lead_screen_decision_note").input("Please look at meds")
    button(at, "Record outcome").click().run()
    assert "needs provider review" in at.success[0].value
    assert stage_of(app_db, lead.id) == Stage.SCREENING


def test_a_provider_clears_but_must_explain_concerning_answers(app_db: str) -> None:
    clinic = Clinic(app_db)
    with session_for(app_db) as s:
        lead = make_lead(s, stage=Stage.CONSULT_COMPLETED)
    at = sections(clinic.ada, lead.id)
    assert at.radio(key="lead_screen_outcome").options == [
        "Cleared for infusion",
        "Not eligible",
        "Needs provider review",
    ]
    at = fill_checklist(at, {**ALL_CLEAR, "substance_use": "unknown"})
    assert "History of substance use" in at.warning[0].value
    assert at.radio(key="lead_screen_outcome").value is None  # no clinical decision preselected
    button(at, "Record outcome").click().run()
    assert "Choose the screening outcome" in shown(at.error[0].value)
    at.radio(key="lead_screen_outcome").set_value("cleared")
    button(at, "Record outcome").click().run()
    assert "needs your clinical note" in at.error[0].value
    assert stage_of(app_db, lead.id) == Stage.SCREENING
    at.text_area(key="lead_screen_decision_note").input("Remote history only; sober 10 years.")
    button(at, "Record outcome").click().run()
    assert not at.error
    assert stage_of(app_db, lead.id) == Stage.CLEARED
    assert "Cleared for infusion" in markdown(at)


def test_a_refused_answer_save_keeps_what_was_typed(app_db: str) -> None:
    clinic = Clinic(app_db)
    with session_for(app_db) as s:
        lead = make_lead(s, stage=Stage.CONSULT_COMPLETED)
    at = sections(clinic.coordinator, lead.id)
    at.text_input(key="lead_screen_medications_note").input("Sertraline 50 mg")
    at = fill_checklist(at, {"medications": "yes"}, bp=(120, None))
    assert "both blood-pressure numbers" in shown(at.error[0].value)
    assert at.text_input(key="lead_screen_medications_note").value == "Sertraline 50 mg"
    assert at.button_group(key="lead_screen_medications_answer").value == "yes"
    assert stage_of(app_db, lead.id) == Stage.CONSULT_COMPLETED


def test_booking_and_completing_the_first_infusion(app_db: str) -> None:
    clinic = Clinic(app_db)
    with session_for(app_db) as s:
        lead = make_lead(s, stage=Stage.CLEARED)
    at = sections(clinic.coordinator, lead.id)
    assert "0 of 6 infusions" in at.get("progress")[0].proto.text
    at.date_input(key="lead_inf_day").set_value(today() + timedelta(days=1))
    at.time_input(key="lead_inf_time").set_value(time(10, 30))
    at.selectbox(key="lead_inf_room").set_value("Chair 2")
    button(at, "Book the first infusion").click().run()
    assert not at.error, [e.value for e in at.error]
    assert stage_of(app_db, lead.id) == Stage.INFUSION_SCHEDULED
    with session_for(app_db) as s:
        appt = s.exec(select(Appointment).where(Appointment.lead_id == lead.id)).one()
        assert (appt.room, appt.duration_minutes) == ("Chair 2", 60)
        assert appt.starts_at == at_local(today() + timedelta(days=1), 10, 30)
        appt.starts_at = utcnow() - timedelta(hours=2)  # the day has come
        s.add(appt)
        s.commit()
    at.run()
    at.button(key=f"lead_inf_{appt.id}_complete").click().run()
    assert not at.error
    assert stage_of(app_db, lead.id) == Stage.INFUSION_COMPLETED
    assert "1 of 6 infusions" in at.get("progress")[0].proto.text
    assert any(b.label == "Book infusion 2" for b in at.button)


def test_the_consults_page_status_for_every_state(app_db: str) -> None:
    clinic = Clinic(app_db)
    with session_for(app_db) as s:
        for status in (ConsultStatus.COMPLETED, ConsultStatus.CANCELLED):
            lead = make_lead(s, stage=Stage.CONTACTED)
            add_consult(
                s,
                lead=lead,
                provider_id=clinic.ada.id,
                starts_at=at_local(today(), 1),
                status=status.value,
            )
    at = consults_page(clinic.ada)
    md = markdown(at)
    for label in ("Booked", "Completed", "Cancelled"):
        assert label in md
