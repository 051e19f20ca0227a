"""Public page placeholder (the intake issue builds the form)."""

import streamlit as st

st.title("Request a free consultation")
st.write("The consultation form is being set up.")
