"""Staff sign-in; on a new installation, the one screen that creates the first administrator."""

import streamlit as st

from crm import auth, users
from crm.errors import CRMError
from ui import auth as ui_auth
from ui import context


def first_admin() -> None:
    st.title("Create the first administrator")
    st.caption(
        "No staff account exists yet. This account manages staff, clinic settings and the audit "
        f"trail. Passwords need at least {auth.MIN_PASSWORD_LENGTH} characters."
    )
    with st.form("setup_form"):
        email = st.text_input("Email", key="setup_email", autocomplete="email")
        name = st.text_input("Name", key="setup_name", max_chars=120)
        password = st.text_input(
            "Password", type="password", key="setup_password", autocomplete="new-password"
        )
        confirm = st.text_input(
            "Password again", type="password", key="setup_confirm", autocomplete="new-password"
        )
        submitted = st.form_submit_button("Create administrator", type="primary")
    if submitted:
        try:
            with context.session() as s:
                users.create_first_admin(
                    session=s, email=email, name=name, password=password, confirm=confirm
                )
        except CRMError as err:
            st.error(str(err))
            return
        st.session_state[ui_auth.NOTICE_KEY] = "Administrator created. Please sign in."
        st.rerun()


def sign_in() -> None:
    st.title("Staff sign-in")
    message = ui_auth.notice()
    if message:
        st.info(message)
    with st.form("login_form"):
        email = st.text_input("Email", key="login_email", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="login_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        with context.session() as s:
            try:
                actor = auth.authenticate(s, email=email, password=password, ip=ui_auth.client_ip())
            except CRMError as err:  # caught inside the unit of work: the failed try is kept
                st.error(str(err))
                return
        ui_auth.sign_in(actor)
        st.success("Signed in. Opening your workspace…")
        ui_auth.pending_redirect()  # the browser fetches its cookie, then reloads the app
        return
    if ui_auth.sso_configured():
        st.divider()
        if ui_auth.sso_signed_in_elsewhere():
            if st.button("Sign out of single sign-on", key="login_sso_logout"):
                st.logout()
        elif st.button("Sign in with single sign-on", key="login_sso"):
            st.login()


if ui_auth.setup_needed():
    first_admin()
else:
    sign_in()
