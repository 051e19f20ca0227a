"""The audit trail: who viewed, changed or exported what, filtered and paged; CSV export."""

from datetime import timedelta

import streamlit as st

from crm import audit_view
from crm.errors import CRMError
from crm.timeutil import to_local, utcnow
from ui import context

PER_PAGE = 50
FAMILIES = {
    "Sign-ins and sign-outs": "auth.",
    "Leads": "lead.",
    "Staff accounts": "user.",
    "Settings": "settings.",
    "Exports": "export.",
    "API keys": "apikey.",
}

actor = context.actor()
tz = context.clinic().timezone
st.title("Audit trail")
st.caption("Every sign-in, view, change and export. Nothing here can be edited or deleted.")

with context.session() as s:
    people = audit_view.people(session=s, actor=actor)
    actions = audit_view.actions(session=s, actor=actor)

today = to_local(utcnow(), tz).date()
c1, c2, c3, c4 = st.columns([2, 1.3, 2, 2])
person = c1.selectbox(
    "Person",
    [None, *people],
    format_func=lambda p: "Anyone" if p is None else p[1],
    key="audit_person",
)
lead_text = c2.text_input("Lead id or ref.", key="audit_lead", max_chars=40)
choices = [None, *FAMILIES.values(), *actions]
labels = {v: k for k, v in FAMILIES.items()}
action = c3.selectbox(
    "Action",
    choices,
    key="audit_action",
    format_func=lambda a: "Any action" if a is None else labels.get(a, a),
)
period = c4.date_input(
    "Period",
    value=(today - timedelta(days=6), today),
    max_value=today,
    key="audit_period",
    format="YYYY-MM-DD",
)
start, end = (period[0], period[-1]) if isinstance(period, tuple) and period else (None, None)

try:
    with context.session() as s:
        lead_id = audit_view.lead_id_for(session=s, actor=actor, text=lead_text)
except CRMError as err:
    st.error(str(err))
    st.stop()

filters = audit_view.AuditFilter(
    actor_id=person[0] if person else None,
    lead_id=lead_id,
    action=action,
    start=start,
    end=end,
    tz=tz,
)
with context.session() as s:
    total = audit_view.count(session=s, actor=actor, filters=filters)
pages = max(1, -(-total // PER_PAGE))
st.write(f"{total:,} event(s)")
if total:
    number = st.pagination(pages, key="audit_page") if pages > 1 else 1
    with context.session() as s:
        rows = audit_view.page(
            session=s, actor=actor, filters=filters, number=number, per_page=PER_PAGE
        )
    # st.dataframe shows text inert (st.table would render Markdown a lead typed into details).
    st.dataframe(
        rows,
        hide_index=True,
        key="audit_rows",
        column_config={
            "id": None,
            "when": "When",
            "person": "Person",
            "email": "Email",
            "action": "Action",
            "lead": st.column_config.NumberColumn("Lead", format="%d"),
            "record": "Record",
            "details": st.column_config.TextColumn("Details", width="large"),
            "address": "Address",
        },
    )


def _export() -> bytes:
    """Built only when the button is pressed, so the export is audited when it happens."""
    with context.session() as s:
        return audit_view.export_csv(session=s, actor=actor, filters=filters)


st.download_button(
    "Export CSV",
    data=_export,
    file_name=f"audit-{today.isoformat()}.csv",
    mime="text/csv",
    key="audit_export",
    disabled=total == 0,
    icon=":material/download:",
)
