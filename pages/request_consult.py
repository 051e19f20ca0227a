"""Public page: "Request a free consultation" (no login). Logic lives in crm.intake."""

from __future__ import annotations

import logging

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError

from crm import catalog, intake, sla
from crm.validation import FieldErrors
from ui import context, intake_form

PREFIX = "rc"
ERRORS = "rc_errors"
RESULT = "rc_result"
FAILED = "rc_failed"
HONEYPOT = "intake_website"
log = logging.getLogger(__name__)


def _send() -> None:
    """Form callback: runs before the page renders, so errors show under their fields."""
    values = intake_form.values(PREFIX)
    values["website"] = st.session_state.get(HONEYPOT) or ""
    st.session_state[FAILED] = False
    try:
        with context.session() as session:
            result = intake.submit_form(session=session, values=values, mode="public")
    except FieldErrors as err:
        st.session_state[ERRORS] = err.errors
        return
    except SQLAlchemyError:
        log.exception("public form: could not store an inquiry")
        st.session_state[FAILED] = True
        return
    st.session_state[ERRORS] = {}
    st.session_state[RESULT] = {
        "reference": result.reference,
        "urgent": result.urgent,
        "preferred_contact": values.get("preferred_contact"),
    }


def _start_over() -> None:
    st.session_state.pop(RESULT, None)
    intake_form.clear(PREFIX)
    st.session_state.pop(HONEYPOT, None)


def confirmation(result: dict[str, object]) -> None:
    if result["urgent"]:
        with st.container(border=True):
            st.error(
                "**If you are thinking about harming yourself or ending your life, "
                "please reach out right now:**",
                icon=":material/emergency:",
            )
            for line in intake.CRISIS_RESOURCES:
                st.markdown(f"### {line}")
            st.markdown(
                "You are not alone. We have flagged your request so a member of our clinical "
                "team sees it first."
            )
    st.success("Thank you. We have received your request.", icon=":material/check_circle:")
    st.markdown("Your reference number:")
    st.code(str(result["reference"]), language=None)
    st.subheader("What happens next")
    steps = intake.next_steps(
        context.clinic(), preferred_contact=str(result["preferred_contact"] or "")
    )
    st.markdown("\n".join(f"{n}. {step}" for n, step in enumerate(steps, 1)))
    st.button("Send another request", on_click=_start_over, key="rc_again")


st.title("Request a free consultation")
if RESULT in st.session_state:
    confirmation(st.session_state[RESULT])
    st.stop()

config = context.clinic()
st.markdown(
    "Tell us a little about yourself. Our patient care team will reach out "
    f"{sla.describe_first_response(config)} to book a free, "
    f"{config.consult_slot_minutes}-minute phone consultation with one of our providers."
)
st.info(
    "In crisis right now? Call or text **988** (Suicide & Crisis Lifeline), "
    "or call **911** if you are in immediate danger.",
    icon=":material/support:",
)
with context.session() as session:
    services = [name for _id, name in catalog.services(session)]
errors: dict[str, str] = st.session_state.get(ERRORS, {})
if errors:
    st.error("Please check the fields marked below.", icon=":material/error:")
if st.session_state.get(FAILED):
    st.error(
        "We couldn't save your request just now. Your answers are still here: please try "
        "again in a minute, or call the clinic."
    )
# The honeypot: invisible to people (and to screen readers and the tab order), filled by bots.
st.html(f"<style>.st-key-{HONEYPOT} {{ display: none !important; }}</style>")
with st.form("rc_form", enter_to_submit=False):
    intake_form.render_fields(PREFIX, services=services, errors=errors, mode="public")
    st.text_input("Website", key=HONEYPOT, autocomplete="off")
    st.form_submit_button("Send my request", type="primary", on_click=_send)
st.caption("Fields marked * are required.")
