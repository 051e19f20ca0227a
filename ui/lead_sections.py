"""The lead page's consult, screening and infusion sections (the lead page calls these three).

Each section reads its own data, renders, and acts through callbacks (see ui.consult_widgets):
keys start with "lead_consult_", "lead_screen_" and "lead_inf_".
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import streamlit as st
from sqlmodel import Session

from crm import clinic_settings, infusion, scheduling, screening
from crm.access import Actor, Perm, can
from crm.enums import Answer, AppointmentStatus, ConsultStatus, ScreeningOutcome, Stage
from crm.screening import OUTCOME_LABELS, AnswerInput, Checklist
from crm.timeutil import as_utc, format_local, utcnow
from ui import context
from ui.consult_widgets import (
    CANDIDATE_LABELS,
    DAY_FMT,
    TIME_FMT,
    TOPIC_LABELS,
    book_button,
    consult_actions,
    flash,
    forget,
    local_today,
    run_action,
    show_flash,
    slot_picker,
    status_badge,
    when,
)
from ui.plain import md

CONSULT = "lead_consult_"
SCREEN = "lead_screen_"
INF = "lead_inf_"

# --- Consult -------------------------------------------------------------------------------------


def consult_section(lead_id: int) -> None:
    """The lead's phone consults: history, the booked one's actions, or booking a new one."""
    actor = context.actor()
    if actor is None:
        return
    config = context.clinic()
    st.subheader("Phone consult")
    show_flash(CONSULT)
    with context.session() as s:
        data = scheduling.lead_consults(session=s, actor=actor, lead_id=lead_id)
        providers = scheduling.list_providers(session=s)
    for consult in reversed(data.consults):
        if consult.status == ConsultStatus.BOOKED:
            continue
        with st.container(border=True):
            top, badge = st.columns([4, 1], vertical_alignment="center")
            top.markdown(
                f"**{when(consult.starts_at, config)}** with {md(consult.provider_name)}"
            )
            with badge:
                status_badge(consult.status)
            if consult.status == ConsultStatus.COMPLETED:
                topics = ", ".join(TOPIC_LABELS[t] for t in consult.topics) or "none"
                candidate = CANDIDATE_LABELS.get(consult.candidate or "", "not recorded")
                st.caption(f"Candidate: {candidate} · Topics raised: {topics}")
                if consult.outcome_notes:
                    st.text(consult.outcome_notes)
    booked = data.booked
    may_act = can(actor, Perm.CONSULTS)
    if booked is not None:
        with st.container(border=True):
            top, badge = st.columns([4, 1], vertical_alignment="center")
            top.markdown(
                f"**{when(booked.starts_at, config)}** with {md(booked.provider_name)}"
            )
            with badge:
                status_badge(booked.status)
            if may_act:
                consult_actions(CONSULT, booked, providers=providers, config=config)
        return
    if not data.is_open:
        st.caption("This lead is closed; reopen it to book a consult.")
        return
    if not may_act:
        return
    if any(c.status == ConsultStatus.COMPLETED for c in data.consults):
        # The consult took place; another call is the exception, so it stays folded.
        with st.expander("Book a follow-up consult"):
            slot = slot_picker(f"{CONSULT}book_", providers=providers, config=config)
            book_button(CONSULT, lead_id, data.version, slot=slot)
        return
    st.markdown("**Book the free 15-minute phone consult**")
    slot = slot_picker(f"{CONSULT}book_", providers=providers, config=config)
    book_button(CONSULT, lead_id, data.version, slot=slot)


# --- Screening ------------------------------------------------------------------------------------

ANSWER_LABELS = {Answer.YES.value: "Yes", Answer.NO.value: "No", Answer.UNKNOWN.value: "Unknown"}
DECIDE_FROM = (Stage.CONSULT_COMPLETED, Stage.SCREENING, Stage.NOT_ELIGIBLE)


def _keys(item: str) -> tuple[str, str, str, str]:
    return (
        f"{SCREEN}{item}_answer",
        f"{SCREEN}{item}_note",
        f"{SCREEN}{item}_bp_sys",
        f"{SCREEN}{item}_bp_dia",
    )


def _base_key(lead_id: int) -> str:
    return f"{SCREEN}base_{lead_id}"


def _sync_checklist_widgets(lead_id: int, checklist: Checklist) -> None:
    """Fill the form from the saved answers, except items this user is in the middle of changing.

    The values each widget started from (and when that answer was saved) are kept as the
    "base": saving sends only the items changed from it, with that time, so a colleague's
    newer answer to the same item is refused rather than overwritten.
    """
    state = st.session_state
    base: dict[str, tuple[Any, ...]] = state.get(_base_key(lead_id)) or {}
    for item in checklist.items:
        keys = _keys(item.item.value)
        # An item never answered shows no choice, so "unknown" is something someone said.
        answer = item.answer.value if item.updated_at is not None else None
        stored = (answer, item.note or "", item.bp_systolic, item.bp_diastolic)
        started = base.get(item.item.value)
        current = tuple(state.get(k) for k in keys)
        untouched = started is None or current == started[:4] or any(k not in state for k in keys)
        if untouched and (started is None or started != (*stored, item.updated_at)):
            for k, v in zip(keys, stored, strict=True):
                state[k] = v
            base[item.item.value] = (*stored, item.updated_at)
    state[_base_key(lead_id)] = base


def screening_section(lead_id: int) -> None:
    """The screening checklist (answers, notes, blood pressure) and the outcome, by permission."""
    actor = context.actor()
    if actor is None:
        return
    config = context.clinic()
    st.subheader("Screening")
    show_flash(SCREEN)
    with context.session() as s:
        checklist = screening.get_checklist(session=s, actor=actor, lead_id=lead_id)
    latest = checklist.latest
    if latest is not None:
        by = f" by {md(latest.decided_by)}" if latest.decided_by else ""
        st.markdown(
            f"**{OUTCOME_LABELS[latest.outcome]}**{by}, "
            f"{md(format_local(latest.decided_at, config.timezone, f'{DAY_FMT}, {TIME_FMT}'))}"
        )
        if latest.reason:
            st.text(latest.reason)
    _screening_summary(checklist)
    if checklist.lead_stage in (Stage.LOST, Stage.SPAM):
        st.caption("This lead is closed; reopen it to screen.")
        return
    # Before the consult the checklist stays folded: it is filled in during screening.
    started = checklist.lead_stage not in (Stage.NEW, Stage.CONTACTED, Stage.CONSULT_SCHEDULED)
    with st.expander(
        f"Checklist: {checklist.answered} of {len(checklist.items)} answered", expanded=started
    ):
        _checklist_form(
            lead_id, checklist, tz=config.timezone, may_answer=can(actor, Perm.SCREENING_ANSWER)
        )
    if checklist.lead_stage in DECIDE_FROM:
        _decision_form(lead_id, checklist, actor, config.not_eligible_reasons)
    elif not started:
        st.caption("The screening outcome is recorded after the phone consult.")


def _screening_summary(checklist: Checklist) -> None:
    """What needs a provider's eye among the answers given, and how many are still open."""
    concerning = [i for i in checklist.items if i.concern and i.updated_at is not None]
    unanswered = sum(1 for i in checklist.items if i.updated_at is None)
    open_line = (
        f"{unanswered} of {len(checklist.items)} items not answered yet." if unanswered else ""
    )
    if concerning:
        lines = [f"- {md(i.question)} **{md(i.concern or '')}**" for i in concerning]
        if open_line:
            lines.append(f"- {open_line}")
        st.warning(
            "Needs a provider's judgement:\n" + "\n".join(lines),
            icon=":material/medical_information:",
        )
    elif unanswered:
        st.info(open_line, icon=":material/checklist:")
    else:
        st.success("No concerning answers.", icon=":material/task_alt:")


def _checklist_form(lead_id: int, checklist: Checklist, *, tz: str, may_answer: bool) -> None:
    _sync_checklist_widgets(lead_id, checklist)
    with st.form(f"{SCREEN}form", border=False):
        for item in checklist.items:
            answer_key, note_key, sys_key, dia_key = _keys(item.item.value)
            flag = " :material/warning:" if item.concern else ""
            st.markdown(f"{md(item.question)}{flag}")
            answer, note = st.columns([1, 1.2], vertical_alignment="center")
            answer.segmented_control(
                item.question,
                list(ANSWER_LABELS),
                format_func=lambda v: ANSWER_LABELS[v],
                label_visibility="collapsed",
                key=answer_key,
                disabled=not may_answer,
            )
            note.text_input(
                "Note",
                key=note_key,
                max_chars=screening.NOTE_MAX,
                placeholder="Note",
                label_visibility="collapsed",
                disabled=not may_answer,
            )
            if item.updated_by:
                st.caption(
                    f"Answered by {md(item.updated_by)}, "
                    f"{format_local(item.updated_at, tz, DAY_FMT)}"
                )
            if item.item == screening.I.HYPERTENSION:
                sys_col, dia_col, _ = st.columns([1, 1, 1])
                sys_col.number_input(
                    "Systolic",
                    min_value=60,
                    max_value=300,
                    step=1,
                    key=sys_key,
                    disabled=not may_answer,
                )
                dia_col.number_input(
                    "Diastolic",
                    min_value=30,
                    max_value=200,
                    step=1,
                    key=dia_key,
                    disabled=not may_answer,
                )
        left, right = st.columns([1, 1])
        left.form_submit_button(
            "Save answers",
            type="primary",
            disabled=not may_answer,
            on_click=_save_answers,
            args=(lead_id,),
        )
        right.form_submit_button("Reload saved answers", on_click=_reload_answers, args=(lead_id,))


def _reload_answers(lead_id: int) -> None:
    forget(_base_key(lead_id), *(k for item in screening.ITEMS for k in _keys(item.value)))


def _save_answers(lead_id: int) -> None:
    state = st.session_state
    base: dict[str, tuple[Any, ...]] = state.get(_base_key(lead_id)) or {}
    answers: dict[str, AnswerInput] = {}
    seen: dict[str, datetime | None] = {}
    for item in screening.ITEMS:
        keys = _keys(item.value)
        current = tuple(state.get(k) for k in keys)
        started = base.get(item.value)
        if started is not None and current == started[:4]:
            continue
        answer, note, sys_, dia = current
        answers[item.value] = AnswerInput(
            answer=answer or Answer.UNKNOWN,
            note=note,
            bp_systolic=int(sys_) if sys_ is not None else None,
            bp_diastolic=int(dia) if dia is not None else None,
        )
        seen[item.value] = started[4] if started is not None else None
    if not answers:
        flash(SCREEN, "success", "Nothing changed.")
        return

    def action(s: Session, actor: Actor) -> str:
        screening.save_answers(session=s, actor=actor, lead_id=lead_id, answers=answers, seen=seen)
        return f"Saved {len(answers)} answer{'s' if len(answers) != 1 else ''}."

    if run_action(SCREEN, action):
        state.pop(_base_key(lead_id), None)  # start again from what is saved now


def _decision_form(lead_id: int, checklist: Checklist, actor: Actor, reasons: list[str]) -> None:
    provider = can(actor, Perm.SCREENING_DECIDE)
    outcomes = [ScreeningOutcome.NEEDS_REVIEW.value]
    if provider:
        outcomes = [ScreeningOutcome.CLEARED.value, ScreeningOutcome.NOT_ELIGIBLE.value, *outcomes]
    with st.form(f"{SCREEN}decide_form", border=True):
        st.markdown("**Screening outcome**")
        if not provider:
            st.caption(
                "Only a provider can clear a lead or rule it not eligible; send it for provider review."
            )
        st.radio(
            "Outcome",
            outcomes,
            format_func=lambda v: OUTCOME_LABELS[ScreeningOutcome(v)],
            # No preselected clinical decision: a provider picks one on purpose.
            index=None if provider else 0,
            horizontal=True,
            key=f"{SCREEN}outcome",
        )
        if provider:
            st.selectbox("Reason (when not eligible)", reasons, index=None, key=f"{SCREEN}reason")
        st.text_area(
            "Note (a provider clearing over concerning answers must say why)",
            key=f"{SCREEN}decision_note",
            max_chars=screening.REASON_MAX,
        )
        st.form_submit_button(
            "Record outcome",
            type="primary",
            on_click=_decide,
            args=(lead_id, checklist.lead_version, checklist.changed_at),
        )


def _decide(lead_id: int, seen_version: int, seen_checklist_at: datetime | None) -> None:
    state = st.session_state
    outcome = state.get(f"{SCREEN}outcome")
    if outcome is None:
        flash(SCREEN, "error", "Choose the screening outcome.")
        return
    reason = state.get(f"{SCREEN}reason")
    note = state.get(f"{SCREEN}decision_note")

    def action(s: Session, actor: Actor) -> str:
        screening.decide(
            session=s,
            actor=actor,
            lead_id=lead_id,
            outcome=outcome,
            reason=reason,
            note=note,
            seen_version=seen_version,
            seen_checklist_at=seen_checklist_at,
        )
        return f"Screening outcome recorded: {OUTCOME_LABELS[ScreeningOutcome(outcome)].lower()}."

    if run_action(SCREEN, action):
        forget(f"{SCREEN}reason", f"{SCREEN}decision_note")


# --- Infusions -------------------------------------------------------------------------------------

APPOINTMENT_LABELS = {
    AppointmentStatus.BOOKED: ("Booked", "blue"),
    AppointmentStatus.COMPLETED: ("Completed", "green"),
    AppointmentStatus.CANCELLED: ("Cancelled", "gray"),
    AppointmentStatus.NO_SHOW: ("No-show", "orange"),
}


def infusion_section(lead_id: int) -> None:
    """The first infusion and the planned series: progress, appointments, booking."""
    actor = context.actor()
    if actor is None:
        return
    config = context.clinic()
    st.subheader("Infusions")
    show_flash(INF)
    with context.session() as s:
        series = infusion.get_series(session=s, actor=actor, lead_id=lead_id)
    planned = max(series.planned, 1)
    st.progress(
        min(series.completed / planned, 1.0),
        text=f"{series.completed} of {series.planned} infusions in the planned series done",
    )
    may_write = can(actor, Perm.LEADS_WRITE)
    now = utcnow()
    for appt in series.appointments:
        with st.container(border=True):
            what, badge, *buttons = st.columns([4, 1.2, 1.2, 1.2, 1.2], vertical_alignment="center")
            room = f" · {md(appt.room)}" if appt.room else ""
            label = "First infusion" if appt.number == 1 else f"Infusion {appt.number}"
            what.markdown(
                f"**{label}** · {when(appt.starts_at, config)} · {appt.duration_minutes} min{room}"
            )
            text, color = APPOINTMENT_LABELS[appt.status]
            badge.badge(text, color=color)  # type: ignore[arg-type]
            if appt.status != AppointmentStatus.BOOKED or not may_write:
                continue
            started = appt.starts_at <= now
            for column, (action, title) in zip(
                buttons,
                (("complete", "Completed"), ("no_show", "No-show"), ("cancel", "Cancel")),
                strict=True,
            ):
                column.button(
                    title,
                    key=f"{INF}{appt.id}_{action}",
                    disabled=action != "cancel" and not started,
                    help=None
                    if started or action == "cancel"
                    else "Possible once the infusion has started.",
                    on_click=_finish_infusion,
                    args=(action, appt.id, series.lead_version),
                )
    if not may_write:
        return
    blocked = series.booking_blocked
    if blocked:
        st.caption(blocked)
        return
    _booking_form(
        lead_id,
        series.next_number,
        series.lead_version,
        config.infusion_duration_minutes,
        config.rooms,
        local_today(config),
    )


def _booking_form(
    lead_id: int, number: int, seen_version: int, duration: int, rooms: list[str], today: date
) -> None:
    title = "Book the first infusion" if number == 1 else f"Book infusion {number}"
    with st.form(f"{INF}book_form", border=True):
        st.markdown(f"**{title}**")
        day_col, time_col, length_col, room_col = st.columns(4)
        day_col.date_input(
            "Day",
            value=today + timedelta(days=1),
            min_value=today,
            key=f"{INF}day",
            format="MM/DD/YYYY",
        )
        time_col.time_input("Start", value=time(9, 0), step=timedelta(minutes=15), key=f"{INF}time")
        length_col.number_input(
            "Minutes",
            min_value=infusion.MIN_MINUTES,
            max_value=infusion.MAX_MINUTES,
            step=5,
            value=duration,
            key=f"{INF}duration",
        )
        usable = [r for r in rooms if r.strip()]
        if usable:
            room_col.selectbox("Room or chair", usable, key=f"{INF}room")
        st.form_submit_button(
            title, type="primary", on_click=_book_infusion, args=(lead_id, seen_version)
        )


def _book_infusion(lead_id: int, seen_version: int) -> None:
    state = st.session_state
    day, start = state.get(f"{INF}day"), state.get(f"{INF}time")
    if day is None or start is None:
        flash(INF, "error", "Pick a day and a start time.")
        return
    duration = state.get(f"{INF}duration")
    room = state.get(f"{INF}room")

    def action(s: Session, actor: Actor) -> str:
        tz = clinic_settings.load(s).timezone
        starts_at = as_utc(datetime.combine(day, start), tz)
        appt = infusion.book_infusion(
            session=s,
            actor=actor,
            lead_id=lead_id,
            starts_at=starts_at,
            duration_minutes=int(duration) if duration else None,
            room=room,
            seen_version=seen_version,
        )
        label = "First infusion" if appt.number == 1 else f"Infusion {appt.number}"
        return f"{label} booked for {format_local(appt.starts_at, tz, f'{DAY_FMT}, {TIME_FMT}')}."

    run_action(INF, action)


def _finish_infusion(action_name: str, appointment_id: int, seen_version: int) -> None:
    services = {
        "complete": (infusion.complete_infusion, "Infusion marked completed."),
        "no_show": (infusion.mark_infusion_no_show, "Infusion marked as a no-show."),
        "cancel": (infusion.cancel_infusion, "Infusion cancelled."),
    }
    service, message = services[action_name]

    def action(s: Session, actor: Actor) -> str:
        service(session=s, actor=actor, appointment_id=appointment_id, seen_version=seen_version)
        return message

    run_action(INF, action)
