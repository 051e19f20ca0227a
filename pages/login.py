"""Staff sign-in placeholder (the staff-accounts issue builds it)."""

import streamlit as st

st.title("Staff sign-in")
