"""Placeholder home page: open leads by stage (the triage queue replaces it)."""

import streamlit as st
from sqlmodel import func, select

from crm.enums import Stage
from crm.models import Lead
from ui import context

st.title("Leads by stage")
with context.session() as s:
    counts = dict(s.exec(select(Lead.stage, func.count()).group_by(Lead.stage)).all())
st.dataframe(
    [{"Stage": stage.label, "Leads": counts.get(stage.value, 0)} for stage in Stage],
    hide_index=True,
)
