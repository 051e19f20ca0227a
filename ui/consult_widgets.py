"""Widgets shared by the Consults page and the lead page: slot picker, consult actions, links.

Every action runs in a widget callback, before the script reruns, so the page then renders
what the action changed and every section reads the lead's fresh version. The outcome is kept
in session state ("flash") and shown at the top of the section on that rerun. A refused save
leaves the typed input in its widgets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime

import streamlit as st
from sqlmodel import Session
from streamlit.errors import StreamlitAPIException

from crm import clinic_settings, scheduling
from crm.access import Actor
from crm.clinic_settings import ClinicConfig
from crm.enums import Candidate, ConsultStatus, ConsultTopic
from crm.errors import CRMError
from crm.leads import tel_url
from crm.scheduling import ConsultView, ProviderOption
from crm.timeutil import format_local, to_local, utcnow
from crm.validation import format_phone_national
from ui import context
from ui.plain import md

STATUS_LABELS: dict[ConsultStatus, tuple[str, str]] = {
    ConsultStatus.BOOKED: ("Booked", "blue"),
    ConsultStatus.COMPLETED: ("Completed", "green"),
    ConsultStatus.NO_SHOW: ("No-show", "orange"),
    ConsultStatus.CANCELLED: ("Cancelled", "gray"),
}
CANDIDATE_LABELS: dict[str, str] = {
    Candidate.YES: "Yes, a candidate",
    Candidate.NO: "Not a candidate",
    Candidate.NEEDS_REVIEW: "Needs review",
}
TOPIC_LABELS: dict[str, str] = {
    ConsultTopic.COST: "Cost",
    ConsultTopic.INSURANCE: "Insurance",
    ConsultTopic.SIDE_EFFECTS: "Side effects",
    ConsultTopic.DRIVING: "Driving home",
}
TIME_FMT = "%-I:%M %p"
DAY_FMT = "%a %b %d"

# --- Outcome messages ---------------------------------------------------------------------


def flash(prefix: str, kind: str, text: str) -> None:
    st.session_state[f"{prefix}flash"] = (kind, text)


def show_flash(prefix: str) -> None:
    """Show (once) what the last action in this section did."""
    message = st.session_state.pop(f"{prefix}flash", None)
    if not message:
        return
    kind, text = message
    if kind == "success":
        st.success(md(text), icon=":material/check_circle:")
    else:
        st.error(md(text), icon=":material/error:")


def run_action(prefix: str, action: Callable[[Session, Actor], str]) -> bool:
    """Run `action` in one unit of work; flash its message or the domain error."""
    actor = context.actor()
    if actor is None:
        flash(prefix, "error", "Please sign in again.")
        return False
    try:
        with context.session() as s:
            message = action(s, actor)
    except CRMError as err:
        flash(prefix, "error", str(err))
        return False
    flash(prefix, "success", message)
    return True


def forget(*keys: str) -> None:
    """Drop widget values so the widgets start from the saved data on the next run."""
    for key in keys:
        st.session_state.pop(key, None)


# --- Small renderers -----------------------------------------------------------------------


def local_today(config: ClinicConfig) -> date:
    return to_local(utcnow(), config.timezone).date()


def when(value: datetime, config: ClinicConfig) -> str:
    return format_local(value, config.timezone, f"{DAY_FMT}, {TIME_FMT}")


def status_badge(status: str) -> None:
    label, color = STATUS_LABELS[ConsultStatus(status)]
    st.badge(label, color=color)  # type: ignore[arg-type]


def lead_link(lead_id: int, reference: str) -> None:
    """A link to the lead page; a plain URL link where the page isn't registered (tests)."""
    label = f"Open lead {md(reference)}"
    try:
        st.page_link("pages/lead.py", label=label, query_params={"id": str(lead_id)})
    except StreamlitAPIException:
        st.markdown(f"[{label}](/lead?id={lead_id})")


def phone_link(phone: str | None) -> None:
    """The phone number in national format as a click-to-call link."""
    url = tel_url(phone)
    if phone and url:
        st.markdown(f":material/call: [{md(format_phone_national(phone))}]({url})")
    else:
        st.caption("No phone number")


# --- Picking a slot --------------------------------------------------------------------------


def slot_picker(
    prefix: str,
    *,
    providers: Sequence[ProviderOption],
    config: ClinicConfig,
    default_provider: int | None = None,
) -> str | None:
    """Provider, day and free-slot pickers; returns the chosen slot (ISO, UTC) or None."""
    if not providers:
        st.info(
            "No provider takes consults yet: an administrator sets provider hours in Clinic settings."
        )
        return None
    ids = [p.id for p in providers]
    names = {p.id: p.name for p in providers}
    left, middle, right = st.columns(3)
    provider_id = left.selectbox(
        "Provider",
        ids,
        index=ids.index(default_provider) if default_provider in ids else 0,
        format_func=lambda i: names.get(i, "?"),
        key=f"{prefix}provider",
    )
    today = local_today(config)
    day = middle.date_input(
        "Day", value=today, min_value=today, key=f"{prefix}day", format="MM/DD/YYYY"
    )
    with context.session() as s:
        slots = scheduling.free_slots(session=s, provider_id=provider_id, day=day, config=config)
    options = [slot.isoformat() for slot in slots]
    if st.session_state.get(f"{prefix}slot") not in options:
        forget(f"{prefix}slot")
    if not options:
        right.selectbox("Time", ["No free slot that day"], disabled=True, key=f"{prefix}noslot")
        return None
    return right.selectbox(
        "Time",
        options,
        format_func=lambda v: format_local(datetime.fromisoformat(v), config.timezone, TIME_FMT),
        key=f"{prefix}slot",
    )


# --- Actions on one consult -------------------------------------------------------------------


def consult_actions(
    prefix: str,
    consult: ConsultView,
    *,
    providers: Sequence[ProviderOption],
    config: ClinicConfig,
) -> None:
    """Record the outcome, mark no-show, cancel or rebook one consult.

    `prefix` is the section's (its flash shows there); widget keys add the consult id.
    """
    key = f"{prefix}{consult.id}_"
    status = ConsultStatus(consult.status)
    tabs: list[str] = []
    if status in (ConsultStatus.BOOKED, ConsultStatus.COMPLETED):
        tabs.append("Record outcome")
    if status == ConsultStatus.BOOKED:
        tabs.append("No-show or cancel")
    if status in (ConsultStatus.BOOKED, ConsultStatus.NO_SHOW):
        tabs.append("Rebook")
    if not tabs:
        return
    panes = dict(zip(tabs, st.tabs(tabs), strict=True))
    if "Record outcome" in panes:
        with panes["Record outcome"]:
            _outcome_form(prefix, key, consult)
    if "No-show or cancel" in panes:
        with panes["No-show or cancel"]:
            started = consult.starts_at <= utcnow()
            st.button(
                "Mark no-show",
                key=f"{key}no_show",
                icon=":material/person_off:",
                disabled=not started,
                help=None if started else "Possible once the consult time has come.",
                on_click=_no_show,
                args=(prefix, consult.id, consult.lead_version),
            )
            st.text_input(
                "Reason for cancelling (optional)", key=f"{key}cancel_reason", max_chars=500
            )
            st.button(
                "Cancel consult",
                key=f"{key}cancel",
                icon=":material/event_busy:",
                on_click=_cancel,
                args=(prefix, key, consult.id, consult.lead_version),
            )
    if "Rebook" in panes:
        with panes["Rebook"]:
            slot = slot_picker(
                f"{key}rebook_",
                providers=providers,
                config=config,
                default_provider=consult.provider_id,
            )
            st.button(
                "Rebook",
                key=f"{key}rebook",
                icon=":material/event_repeat:",
                disabled=slot is None,
                on_click=_rebook,
                args=(prefix, key, consult.id, consult.lead_version),
            )


def _outcome_form(prefix: str, key: str, consult: ConsultView) -> None:
    if consult.status == ConsultStatus.COMPLETED and f"{key}candidate" not in st.session_state:
        st.session_state[f"{key}candidate"] = consult.candidate
        st.session_state[f"{key}topics"] = [t.value for t in consult.topics]
        st.session_state[f"{key}notes"] = consult.outcome_notes or ""
    with st.form(f"{key}outcome_form", border=False):
        st.radio(
            "Candidate for ketamine therapy?",
            [c.value for c in Candidate],
            format_func=lambda v: CANDIDATE_LABELS[v],
            index=None,
            horizontal=True,
            key=f"{key}candidate",
        )
        st.multiselect(
            "Topics raised",
            [t.value for t in ConsultTopic],
            format_func=lambda v: TOPIC_LABELS[v],
            key=f"{key}topics",
        )
        st.text_area("Consult notes", key=f"{key}notes", max_chars=scheduling.NOTES_MAX)
        st.form_submit_button(
            "Save outcome",
            type="primary",
            on_click=_complete,
            args=(prefix, key, consult.id, consult.lead_version),
        )


def _complete(prefix: str, key: str, consult_id: int, seen_version: int) -> None:
    state = st.session_state
    candidate = state.get(f"{key}candidate")
    if candidate is None:
        flash(prefix, "error", "Say whether the person is a candidate (yes, no or needs review).")
        return

    def action(s: Session, actor: Actor) -> str:
        scheduling.complete_consult(
            session=s,
            actor=actor,
            consult_id=consult_id,
            candidate=candidate,
            topics=state.get(f"{key}topics") or [],
            notes=state.get(f"{key}notes") or "",
            seen_version=seen_version,
        )
        return "Consult outcome saved."

    run_action(prefix, action)


def _no_show(prefix: str, consult_id: int, seen_version: int) -> None:
    def action(s: Session, actor: Actor) -> str:
        scheduling.mark_no_show(
            session=s, actor=actor, consult_id=consult_id, seen_version=seen_version
        )
        return "Marked as a no-show; the lead is back to contacted."

    run_action(prefix, action)


def _cancel(prefix: str, key: str, consult_id: int, seen_version: int) -> None:
    reason = st.session_state.get(f"{key}cancel_reason") or None

    def action(s: Session, actor: Actor) -> str:
        scheduling.cancel_consult(
            session=s, actor=actor, consult_id=consult_id, reason=reason, seen_version=seen_version
        )
        return "Consult cancelled; the slot is free again."

    if run_action(prefix, action):
        forget(f"{key}cancel_reason")


def _rebook(prefix: str, key: str, consult_id: int, seen_version: int) -> None:
    state = st.session_state
    slot = state.get(f"{key}rebook_slot")
    provider_id = state.get(f"{key}rebook_provider")
    if not slot:
        flash(prefix, "error", "Pick a free slot first.")
        return

    def action(s: Session, actor: Actor) -> str:
        new = scheduling.rebook_consult(
            session=s,
            actor=actor,
            consult_id=consult_id,
            starts_at=datetime.fromisoformat(slot),
            provider_id=provider_id,
            seen_version=seen_version,
        )
        tz = clinic_settings.load(s).timezone
        return f"Rebooked for {format_local(new.starts_at, tz, f'{DAY_FMT}, {TIME_FMT}')}."

    if run_action(prefix, action):
        forget(f"{key}rebook_slot")


def book_button(prefix: str, lead_id: int, seen_version: int, *, slot: str | None) -> None:
    """The "Book consult" button for the slot picked with slot_picker(prefix + "book_")."""
    st.button(
        "Book consult",
        type="primary",
        icon=":material/event_available:",
        key=f"{prefix}book",
        disabled=slot is None,
        on_click=_book,
        args=(prefix, lead_id, seen_version),
    )


def _book(prefix: str, lead_id: int, seen_version: int) -> None:
    state = st.session_state
    slot = state.get(f"{prefix}book_slot")
    provider_id = state.get(f"{prefix}book_provider")
    if not slot or provider_id is None:
        flash(prefix, "error", "Pick a provider and a free slot first.")
        return

    def action(s: Session, actor: Actor) -> str:
        consult = scheduling.book_consult(
            session=s,
            actor=actor,
            lead_id=lead_id,
            provider_id=provider_id,
            starts_at=datetime.fromisoformat(slot),
            seen_version=seen_version,
        )
        tz = clinic_settings.load(s).timezone
        return (
            f"Consult booked for {format_local(consult.starts_at, tz, f'{DAY_FMT}, {TIME_FMT}')}."
        )

    if run_action(prefix, action):
        forget(f"{prefix}book_slot")
