"""Staff accounts: add people, change roles and flags, disable, reset passwords."""

import streamlit as st

from crm import auth, users
from crm.enums import Role
from crm.errors import CRMError
from crm.timeutil import format_local
from ui import context

ROLE_LABELS = {
    Role.CARE_TEAM: "Care team",
    Role.PROVIDER: "Provider",
    Role.MANAGER: "Manager",
    Role.ADMIN: "Administrator",
}

actor = context.actor()
tz = context.clinic().timezone
st.title("Staff accounts")

flash = st.session_state.pop("users_flash", None)
if flash:
    st.success(flash)

with context.session() as s:
    rows = users.list_users(session=s, actor=actor)

st.dataframe(
    [
        {
            "Email": r.email,
            "Name": r.name,
            "Role": ROLE_LABELS[r.role],
            "Provider": r.is_provider,
            "Active": r.active,
            "Away": r.away,
            "Last sign-in": format_local(r.last_login_at, tz),
            "Locked until": format_local(r.locked_until, tz),
        }
        for r in rows
    ],
    hide_index=True,
    key="users_table",
)


def _done(message: str) -> None:
    st.session_state["users_flash"] = message
    st.rerun()


add, edit = st.tabs(["Add a staff member", "Change an account"])

with add, st.form("users_add_form", clear_on_submit=False):
    email = st.text_input("Email", key="users_add_email")
    name = st.text_input("Name", key="users_add_name", max_chars=120)
    role = st.selectbox("Role", list(Role), format_func=ROLE_LABELS.get, key="users_add_role")
    provider = st.checkbox(
        "Holds consults and makes screening decisions (provider)", key="users_add_provider"
    )
    st.caption(
        f"A first password for them (at least {auth.MIN_PASSWORD_LENGTH} characters); "
        "give it to them in person and ask them to change it."
    )
    password = st.text_input(
        "Password", type="password", key="users_add_password", autocomplete="new-password"
    )
    confirm = st.text_input(
        "Password again", type="password", key="users_add_confirm", autocomplete="new-password"
    )
    if st.form_submit_button("Add staff member", type="primary"):
        if password != confirm:
            st.error("The two passwords are not the same.")
        else:
            try:
                with context.session() as s:
                    user = users.add_user(
                        session=s,
                        actor=actor,
                        email=email,
                        password=password,
                        role=role,
                        name=name,
                        is_provider=provider,
                    )
                    added = user.email
            except CRMError as err:
                st.error(str(err))
            else:
                _done(f"Added {added}.")

with edit:
    chosen = st.selectbox(
        "Account",
        rows,
        format_func=lambda r: f"{r.email}" + ("" if r.active else " (disabled)"),
        key="users_edit_pick",
        index=None,
        placeholder="Choose an account",
    )
    if chosen is not None:
        with st.form("users_edit_form"):
            new_name = st.text_input(
                "Name", value=chosen.name, key=f"users_edit_name_{chosen.id}", max_chars=120
            )
            new_role = st.selectbox(
                "Role",
                list(Role),
                index=list(Role).index(chosen.role),
                format_func=ROLE_LABELS.get,
                key=f"users_edit_role_{chosen.id}",
            )
            new_provider = st.checkbox(
                "Provider", value=chosen.is_provider, key=f"users_edit_provider_{chosen.id}"
            )
            new_away = st.checkbox(
                "Away (no new leads assigned)",
                value=chosen.away,
                key=f"users_edit_away_{chosen.id}",
            )
            if st.form_submit_button("Save changes"):
                try:
                    with context.session() as s:
                        users.update_user(
                            session=s,
                            actor=actor,
                            user_id=chosen.id,
                            name=new_name,
                            role=new_role,
                            is_provider=new_provider,
                            away=new_away,
                        )
                except CRMError as err:
                    st.error(str(err))
                else:
                    _done(f"Saved {chosen.email}.")
        with st.form("users_reset_form", clear_on_submit=True):
            st.write("Reset password (signs them out everywhere and clears a lockout)")
            new_password = st.text_input(
                "New password",
                type="password",
                key="users_reset_password",
                autocomplete="new-password",
            )
            if st.form_submit_button("Reset password"):
                try:
                    with context.session() as s:
                        users.reset_password(
                            session=s, actor=actor, user_id=chosen.id, password=new_password
                        )
                except CRMError as err:
                    st.error(str(err))
                else:
                    _done(f"Password reset for {chosen.email}.")
        label = "Disable account" if chosen.active else "Enable account"
        if st.button(label, key="users_toggle_active", type="secondary"):
            try:
                with context.session() as s:
                    users.set_active(
                        session=s, actor=actor, user_id=chosen.id, active=not chosen.active
                    )
            except CRMError as err:
                st.error(str(err))
            else:
                _done(
                    f"{'Disabled' if chosen.active else 'Enabled'} {chosen.email}; "
                    + ("their sessions ended." if chosen.active else "they can sign in again.")
                )
