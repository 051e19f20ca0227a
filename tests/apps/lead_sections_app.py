"""Test harness: the lead page's consult, screening and infusion sections for one lead.

AppTests set `harness_lead_id` and the signed-in actor in session state before running.
"""

import streamlit as st

from ui import lead_sections

lead_id = int(st.session_state.get("harness_lead_id", 0))
lead_sections.consult_section(lead_id)
lead_sections.screening_section(lead_id)
lead_sections.infusion_section(lead_id)
