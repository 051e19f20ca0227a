"""Staff page: one lead (?id=). Reading and every action live in crm.leads, crm.triage and
crm.timeline; the consult, screening and infusion sections in ui.lead_sections.

Nothing is silently overwritten: each save carries the version of the lead this person has
on screen (`lead_seen`), and a save refused with StaleEdit keeps what they typed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

import streamlit as st
from sqlmodel import Session

from crm import leads, timeline, triage
from crm.access import Actor, Perm, can
from crm.enums import Channel, ContactMethod, Outcome, Stage
from crm.errors import CRMError, NotFound, StaleEdit
from crm.leads import LeadView
from crm.timeutil import as_utc, format_local, to_local, utcnow
from crm.validation import FieldErrors
from ui import context, lead_sections
from ui.plain import md

VIEWED = "lead_viewed"  # the lead whose view is audited for this visit (the queue resets it)
SEEN = "lead_seen"  # {"id": lead id, "version": the version this person works from}
FLASH = "lead_flash"
ERRORS = "lead_errors"
MOVE_TO = "lead_move_to"
BASE = "lead_form_base"  # what each form field was last filled with from the lead
ATTEMPT_KEYS = ("lead_attempt_channel", "lead_attempt_outcome", "lead_attempt_note")
NOTE_KEY = "lead_note_body"
NEXT_KEYS = ("lead_next_action", "lead_next_date", "lead_next_time")
CONTACT_KEYS = {f: f"lead_contact_{f}" for f in leads.CONTACT_FIELDS} | {
    "do_not_contact": "lead_contact_do_not_contact"
}
MOVE_KEYS = ("lead_move_reason", "lead_move_note")
FORM_KEYS = (
    *ATTEMPT_KEYS,
    NOTE_KEY,
    *NEXT_KEYS,
    *CONTACT_KEYS.values(),
    *MOVE_KEYS,
    MOVE_TO,
    BASE,
    "lead_assign_to",
)
CHANNELS = {c.value: c.value.capitalize() for c in Channel}
OUTCOMES = {o.value: o.value.replace("_", " ").capitalize() for o in Outcome}
BADGE_COLORS = {"urgent": "red", "overdue": "orange", "out of area": "gray"}
NAME_CSS = "font-size: 2.25rem; font-weight: 700; line-height: 1.2; padding: 0.25rem 0 0.5rem 0;"
NOBODY = 0


def _lead_id() -> int | None:
    raw = st.query_params.get("id")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _act(
    action: Callable[[Session], int | None], *, done: str, clear: tuple[str, ...] = ()
) -> None:
    """Run one save; on success remember the new version, clear the form and rerun.

    On a refusal the error shows where the person is working and what they typed stays.
    """
    try:
        with context.session() as session:
            version = action(session)
    except FieldErrors as err:
        st.session_state[ERRORS] = err.errors
        st.error("Not saved: " + "; ".join(err.errors.values()))
        return
    except StaleEdit as err:
        st.error(str(err), icon=":material/sync_problem:")
        return
    except CRMError as err:
        st.error(str(err))
        return
    if version is not None:
        st.session_state[SEEN] = {"id": lead_id, "version": version}
    for key in clear:
        st.session_state.pop(key, None)
    st.session_state.pop(ERRORS, None)
    st.session_state[FLASH] = done
    st.rerun()


def _seen_version() -> int | None:
    seen = st.session_state.get(SEEN) or {}
    return seen.get("version") if seen.get("id") == lead_id else None


def _sync(key: str, value: Any) -> None:
    """Show the lead's current `value` in a form field, unless this person has changed the field.

    A field still holding what was last filled in follows the lead (a colleague's saved change
    shows up); a field the person edited keeps their typing until it is saved or they leave.
    """
    base: dict[str, Any] = st.session_state.setdefault(BASE, {})
    untouched = key not in st.session_state or st.session_state[key] == base.get(key)
    if untouched and (key not in st.session_state or base.get(key) != value):
        st.session_state[key] = value
        base[key] = value


# --- the page ----------------------------------------------------------------------------------


def _signed_in() -> Actor:
    actor = context.actor()
    if actor is None or not can(actor, Perm.LEADS_READ):
        st.error("Your role can't open leads.")
        st.stop()
    return actor


def _chosen_lead() -> int:
    lead_id = _lead_id()
    if lead_id is None:
        st.title("Lead")
        st.info("Open a lead from the triage queue.")
        st.page_link("pages/queue.py", label="Go to the queue", icon=":material/inbox:")
        st.stop()
    return lead_id


actor = _signed_in()
lead_id = _chosen_lead()

config = context.clinic()
tz = config.timezone
first_visit = st.session_state.get(VIEWED) != lead_id
if first_visit:
    for key in FORM_KEYS:  # another lead's half-typed input doesn't belong here
        st.session_state.pop(key, None)
try:
    with context.session() as session:
        view: LeadView = leads.get_lead(
            session=session, actor=actor, lead_id=lead_id, record_view=first_visit, config=config
        )
        items = timeline.timeline(session=session, actor=actor, lead_id=lead_id)
        members = triage.team(session=session)
except NotFound:
    st.title("Lead")
    st.error("This lead doesn't exist.")
    st.stop()
except CRMError as err:
    st.error(str(err))
    st.stop()
st.session_state[VIEWED] = lead_id
if first_visit or _seen_version() is None:
    st.session_state[SEEN] = {"id": lead_id, "version": view.version}
elif view.version != _seen_version() and view.updated_by_id == actor.id:
    # This person's own change made elsewhere on the page (a consult booked, a screening saved).
    st.session_state[SEEN] = {"id": lead_id, "version": view.version}
seen = _seen_version()

if flash := st.session_state.pop(FLASH, None):
    st.success(flash, icon=":material/check_circle:")

# --- header --------------------------------------------------------------------------------------

# The name is something the person typed: plain text (st.text), made large by our own CSS.
st.html(f"<style>.st-key-lead_name [data-testid='stText'] {{{NAME_CSS}}}</style>")
st.caption(f"Lead {view.reference} · {view.stage_label}")
with st.container(key="lead_name"):
    st.text(view.name or "(no name)")
if view.crisis_reason:
    st.error(
        "Crisis flag: a clinician must review this now. If the person may be in danger, give them "
        "988 (call or text, the Suicide & Crisis Lifeline) or 911.",
        icon=":material/emergency:",
    )
    st.text(f"Why it was flagged: {view.crisis_reason}")
if view.badges or view.sla:
    # Our own words only (badge names and the SLA text), so Markdown badges are safe here.
    shown = [f":{BADGE_COLORS.get(b, 'blue')}-badge[{b}]" for b in view.badges]
    if view.sla:
        color = "red" if view.sla_late else "green"
        shown.append(f":{color}-badge[:material/timer: speed to lead: {view.sla}]")
    st.markdown(" ".join(shown))
if seen is not None and view.version != seen:
    who = view.updated_by or "someone else"
    st.warning(
        f"{md(who)} changed this lead at {format_local(view.updated_at, tz)} while you had it open. "
        "The page shows their change; saves based on what you saw before are refused until you "
        "take their change on board.",
        icon=":material/sync_problem:",
    )
    if st.button("I've seen their change", key="lead_accept_change"):
        st.session_state[SEEN] = {"id": lead_id, "version": view.version}
        st.rerun()

contact_col, state_col = st.columns(2)
with contact_col:
    st.markdown("**Contact**")
    if view.phone_display:
        phone_text, phone_link = st.columns([2, 1])
        phone_text.text(view.phone_display)
        if view.tel_url:
            phone_link.link_button("Call", view.tel_url, icon=":material/call:")
    if view.email:
        email_text, email_link = st.columns([2, 1])
        email_text.text(view.email)
        if view.mailto_url:
            email_link.link_button("Email", view.mailto_url, icon=":material/mail:")
    details = [
        ("ZIP", view.zip_code),
        ("City", view.city),
        ("Prefers", view.preferred_contact),
        ("Best time", view.best_time),
    ]
    st.text("\n".join(f"{label}: {value}" for label, value in details if value))
    if view.do_not_contact:
        st.warning("Do not contact.", icon=":material/block:")
with state_col:
    st.markdown(f"**Stage:** {md(view.stage_label)}")
    st.markdown(f"**Owner:** {md(view.owner) if view.owner else 'nobody yet'}")
    st.caption(
        f"{md(view.service or 'Service not given')} · {md(view.area)} · received "
        f"{format_local(view.created_at, tz)} · {view.attempts} contact attempt(s)"
    )
    if view.next_action:
        due = (
            f" (due {format_local(view.next_action_due_at, tz)})" if view.next_action_due_at else ""
        )
        st.text(f"Next: {view.next_action}{due}")
    if not view.is_open:
        st.info(f"Closed: {view.stage_label}", icon=":material/archive:")
        if view.closed_reason or view.closed_note:
            st.text(" — ".join(x for x in (view.closed_reason, view.closed_note) if x))

    claim_col, assign_col, assign_btn = st.columns([1, 2, 1], vertical_alignment="bottom")
    with claim_col:
        if view.owner_id != actor.id and can(actor, Perm.LEADS_WRITE):
            label = "Claim" if view.owner_id is None else "Take over"
            if st.button(label, key="lead_claim", type="primary", icon=":material/pan_tool:"):
                _act(
                    lambda s: triage.claim(
                        session=s, actor=actor, lead_id=lead_id, seen_version=seen
                    ),
                    done="You own this lead now.",
                    clear=("lead_assign_to",),
                )
    labels = {NOBODY: "Nobody"} | {m.id: m.label + (" (away)" if m.away else "") for m in members}
    with assign_col:
        _sync("lead_assign_to", view.owner_id or NOBODY)
        st.selectbox(
            "Assign to",
            list(labels),
            key="lead_assign_to",
            format_func=lambda i: labels.get(i, str(i)),
        )
    with assign_btn:
        if st.button("Assign", key="lead_assign"):
            owner_id = st.session_state.get("lead_assign_to") or None
            _act(
                lambda s: triage.assign(
                    session=s, actor=actor, lead_id=lead_id, owner_id=owner_id, seen_version=seen
                ),
                done="Assignment saved.",
                clear=("lead_assign_to",),
            )

# --- moves ---------------------------------------------------------------------------------------


def _move(to: Stage, reason: str | None = None, note: str | None = None) -> None:
    _act(
        lambda s: leads.move(
            session=s,
            actor=actor,
            lead_id=lead_id,
            seen_version=seen,
            to=to,
            reason=reason,
            note=note,
            config=config,
        ),
        done=f"Moved to {to.label}.",
        clear=(*MOVE_KEYS, MOVE_TO),
    )


work, history = st.columns([3, 2], gap="large")
with work:
    moves = [Stage(m) for m in view.moves]
    if moves and can(actor, Perm.LEADS_WRITE):
        st.markdown("**Move the lead**")
        row = st.container(horizontal=True)
        for target in moves:
            reopen = not view.is_open
            label = f"Reopen as {target.label}" if reopen else target.label
            if row.button(label, key=f"lead_move_{target.value}"):
                if leads.reasons_for(target, config):
                    st.session_state[MOVE_TO] = target.value
                else:
                    _move(target)
        pending = st.session_state.get(MOVE_TO)
        if pending:
            target = Stage(pending)
            with st.form("lead_move_form", border=True):
                st.markdown(f"**Why is the lead {md(target.label.lower())}?**")
                st.selectbox("Reason", leads.reasons_for(target, config), key="lead_move_reason")
                st.text_area(
                    "Note", key="lead_move_note", help='Required when the reason is "Other".'
                )
                confirm, cancel = st.columns(2)
                go = confirm.form_submit_button(f"Move to {target.label}", type="primary")
                stop = cancel.form_submit_button("Cancel")
            if stop:
                for key in (*MOVE_KEYS, MOVE_TO):
                    st.session_state.pop(key, None)
                st.rerun()
            if go:
                _move(
                    target,
                    st.session_state.get("lead_move_reason"),
                    st.session_state.get("lead_move_note"),
                )

    attempt_tab, note_tab, next_tab, contact_tab = st.tabs(
        ["Log a contact attempt", "Add a note", "Next action", "Contact details"]
    )
    with attempt_tab, st.form("lead_attempt_form", border=False):
        channel_col, outcome_col = st.columns(2)
        channel_col.selectbox(
            "Channel", list(CHANNELS), key="lead_attempt_channel", format_func=CHANNELS.__getitem__
        )
        outcome_col.selectbox(
            "Outcome", list(OUTCOMES), key="lead_attempt_outcome", format_func=OUTCOMES.__getitem__
        )
        st.text_area("Note", key="lead_attempt_note", max_chars=leads.ATTEMPT_NOTE_MAX)
        if st.form_submit_button("Log attempt", type="primary"):
            values = {k: st.session_state.get(k) for k in ATTEMPT_KEYS}
            _act(
                lambda s: leads.log_attempt(
                    session=s,
                    actor=actor,
                    lead_id=lead_id,
                    seen_version=seen,
                    channel=values["lead_attempt_channel"] or "",
                    outcome=values["lead_attempt_outcome"] or "",
                    note=values["lead_attempt_note"],
                ),
                done="Contact attempt logged.",
                clear=ATTEMPT_KEYS,
            )
    with note_tab, st.form("lead_note_form", border=False):
        st.text_area("Note", key=NOTE_KEY, max_chars=leads.NOTE_MAX)
        if st.form_submit_button("Add note", type="primary"):
            body = st.session_state.get(NOTE_KEY) or ""

            def _note(s: Session) -> None:
                leads.add_note(session=s, actor=actor, lead_id=lead_id, body=body)

            _act(_note, done="Note added.", clear=(NOTE_KEY,))
    with next_tab, st.form("lead_next_form", border=False):
        local_due = to_local(view.next_action_due_at, tz) if view.next_action_due_at else None
        tomorrow = to_local(utcnow(), tz) + timedelta(days=1)
        _sync("lead_next_action", view.next_action or "")
        _sync("lead_next_date", (local_due or tomorrow).date())
        _sync(
            "lead_next_time",
            local_due.time().replace(second=0, microsecond=0) if local_due else time(9, 0),
        )
        st.text_input("Next action", key="lead_next_action", max_chars=leads.NEXT_ACTION_MAX)
        date_col, time_col = st.columns(2)
        date_col.date_input("Due date", key="lead_next_date")
        time_col.time_input("Due time", key="lead_next_time", step=timedelta(minutes=15))
        st.caption("Leave the action empty and save to clear it.")
        if st.form_submit_button("Save next action", type="primary"):
            action_text = st.session_state.get("lead_next_action") or ""
            due_date = st.session_state.get("lead_next_date")
            due_time = st.session_state.get("lead_next_time") or time(9, 0)
            due_at = (
                as_utc(datetime.combine(due_date, due_time), tz)
                if action_text.strip() and due_date
                else None
            )
            _act(
                lambda s: leads.set_next_action(
                    session=s,
                    actor=actor,
                    lead_id=lead_id,
                    seen_version=seen,
                    action=action_text,
                    due=due_at,
                ),
                done="Next action saved.",
                clear=NEXT_KEYS,
            )
    with contact_tab, st.form("lead_contact_form", border=False):
        errors: dict[str, str] = st.session_state.get(ERRORS) or {}
        current = {
            "first_name": view.first_name,
            "last_name": view.last_name,
            "email": view.email or "",
            "phone": view.phone_display or "",
            "zip_code": view.zip_code or "",
            "city": view.city or "",
            "best_time": view.best_time or "",
        }
        for field, value in current.items():
            _sync(CONTACT_KEYS[field], value)
        _sync(CONTACT_KEYS["preferred_contact"], view.preferred_contact)
        _sync(CONTACT_KEYS["do_not_contact"], view.do_not_contact)
        left, right = st.columns(2)
        for i, field in enumerate(current):
            column = left if i % 2 == 0 else right
            column.text_input(leads.CONTACT_FIELDS[field], key=CONTACT_KEYS[field])
            if field in errors:
                column.error(errors[field])
        methods = [None, *(m.value for m in ContactMethod)]
        right.selectbox(
            "Preferred contact",
            methods,
            key=CONTACT_KEYS["preferred_contact"],
            format_func=lambda m: "No preference" if m is None else str(m).capitalize(),
        )
        st.checkbox("Do not contact", key=CONTACT_KEYS["do_not_contact"])
        if st.form_submit_button("Save contact details", type="primary"):
            values = {f: st.session_state.get(k) for f, k in CONTACT_KEYS.items()}
            _act(
                lambda s: leads.update_contact(
                    session=s, actor=actor, lead_id=lead_id, seen_version=seen, values=values
                ),
                done="Contact details saved.",
                clear=tuple(CONTACT_KEYS.values()),
            )

    lead_sections.consult_section(lead_id)
    lead_sections.screening_section(lead_id)
    lead_sections.infusion_section(lead_id)

with history:
    st.subheader("Timeline")
    for item in items:
        with st.container(border=True):
            who = f" · {md(item.actor)}" if item.actor else ""
            st.markdown(f"**{md(item.title)}**")
            st.caption(f"{format_local(item.at, tz)}{who}")
            if item.meta:
                st.caption(md(item.meta))
            if item.text:
                st.text(item.text)
