"""Staff page: "Log a phone inquiry" for an inbound call. Logic lives in crm.intake."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from crm import catalog, intake
from crm.access import Perm, can
from crm.errors import CRMError
from crm.validation import FieldErrors
from ui import context, intake_form

PREFIX = "pi"
ERRORS = "pi_errors"
RESULT = "pi_result"
CONTACTED = "pi_contacted_now"
LEAD_PAGE = Path(__file__).parent / "lead.py"


def _save() -> None:
    """Form callback: runs before the page renders, so errors show under their fields."""
    actor = context.actor()
    try:
        with context.session() as session:
            outcome = intake.log_phone_inquiry(
                session=session,
                actor=actor,  # type: ignore[arg-type]  # require() refuses None
                values=intake_form.values(PREFIX),
                contacted_now=bool(st.session_state.get(CONTACTED)),
            )
    except FieldErrors as err:
        st.session_state[ERRORS] = err.errors
        return
    except CRMError as err:
        st.session_state[ERRORS] = {"_form": str(err)}
        return
    st.session_state[ERRORS] = {}
    st.session_state[RESULT] = {
        "lead_id": outcome.intake.lead_id,
        "reference": outcome.intake.reference,
        "urgent": outcome.intake.urgent,
        "created": outcome.intake.created,
        "contacted": outcome.contacted,
    }
    intake_form.clear(PREFIX)
    st.session_state.pop(CONTACTED, None)


st.title("Log a phone inquiry")
actor = context.actor()
if not can(actor, Perm.PHONE_INTAKE):
    st.error("Your role can't log phone inquiries.")
    st.stop()

result = st.session_state.pop(RESULT, None)
if result:
    what = "New lead" if result["created"] else "Added to the caller's open lead"
    done = " and marked as contacted" if result["contacted"] else ""
    st.success(f"{what} {result['reference']} saved{done}.", icon=":material/check_circle:")
    if result["urgent"]:
        st.error(
            "Flagged URGENT (crisis language or a yes to the crisis question): it is at the top "
            "of the queue. If the caller is in danger now, give them 988 (call or text) or 911.",
            icon=":material/emergency:",
        )
    if LEAD_PAGE.exists():
        try:
            st.page_link(
                "pages/lead.py", label="Open the lead", query_params={"id": result["lead_id"]}
            )
        except StreamlitAPIException:  # the lead page isn't in this user's navigation
            pass

st.caption(
    "A name and a phone number or email are enough. The caller's own words become the "
    "first note on the lead."
)
with context.session() as session:
    services = [name for _id, name in catalog.services(session)]
errors: dict[str, str] = st.session_state.get(ERRORS, {})
if "_form" in errors:
    st.error(errors["_form"])
elif errors:
    st.error("Please check the fields marked below.", icon=":material/error:")
with st.form("pi_form", enter_to_submit=False):
    intake_form.render_fields(PREFIX, services=services, errors=errors, mode="phone")
    st.checkbox("Mark as contacted now (I spoke with them)", key=CONTACTED, value=True)
    st.form_submit_button("Save inquiry", type="primary", on_click=_save)
