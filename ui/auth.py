"""Who is signed in on this script run: the session cookie, single sign-on, or (AppTest) state.

Precedence on each run:
1. a session started in this browser tab (its token is in `st.session_state`), so the moments
   between "Sign in" and the cookie arriving work too;
2. the signed session cookie (`crm_session`), read from `st.context.cookies`: how a refresh or
   a new tab stays signed in;
3. single sign-on (`st.user`), when `.streamlit/secrets.toml` configures `[auth]`;
4. an Actor placed in `st.session_state["auth_actor"]` with no cookie (AppTest's way in),
   accepted only while that account is active in the database.
Every path re-reads the account, so a disabled user is out on their next action.
"""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import streamlit as st

from crm import audit, auth, users
from crm.access import Actor
from ui import context

TOKEN_KEY = "auth_token"
NOTICE_KEY = "auth_notice"
REDIRECT_KEY = "auth_redirect"
SSO_KEY = "auth_sso"
SSO_REFUSED_KEY = "auth_sso_refused"
SSO_REFUSED = (
    "Your single sign-on account does not match an active staff account. "
    "Ask an administrator to add you."
)
# A cookie already found ended: not checked (or announced) again in this tab.
DEAD_COOKIE_KEY = "auth_dead_cookie"

_REASONS = {
    "idle": "You were signed out after a period without activity. Please sign in again.",
    "expired": "Your session reached its time limit. Please sign in again.",
    "disabled": "You have been signed out.",
    "ended": "You have been signed out.",
}


def client_ip() -> str:
    """The browser's address as the server sees it ("localhost" for local connections)."""
    try:
        ip = st.context.ip_address
    except Exception:  # noqa: BLE001 - no client context
        return "localhost"
    return ip if isinstance(ip, str) and ip else "localhost"


def session_cookie() -> str | None:
    """The session cookie the browser sent when this tab connected (None in AppTest)."""
    value = st.context.cookies.get(auth.COOKIE_NAME)
    return value if isinstance(value, str) and value else None


def sso_configured() -> bool:
    """True when `.streamlit/secrets.toml` has an `[auth]` section (OIDC via st.login)."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets file at all
        return False


def setup_needed() -> bool:
    """True until the first account exists."""
    with context.session() as s:
        return not users.has_users(s)


def _sign_out_locally(reason: str | None) -> None:
    for key in (context.ACTOR_KEY, TOKEN_KEY, SSO_KEY):
        st.session_state.pop(key, None)
    st.session_state[DEAD_COOKIE_KEY] = session_cookie()
    if reason in _REASONS:
        st.session_state[NOTICE_KEY] = _REASONS[reason]


def _from_token(token: str, *, by_cookie: bool, touch: bool = True) -> Actor | None:
    with context.session() as s:
        if by_cookie:
            check = auth.resume_session(s, cookie=token, touch=touch)
        else:
            check = auth.resume_session(s, token=token, touch=touch)
    if check.actor is None:
        _sign_out_locally(check.reason)
        return None
    st.session_state[context.ACTOR_KEY] = check.actor
    if check.token:
        st.session_state[TOKEN_KEY] = check.token
    return check.actor


def _from_sso() -> Actor | None:
    if not sso_configured():
        return None
    try:
        if not st.user.is_logged_in:
            return None
        email = st.user.get("email")
        verified = st.user.get("email_verified")
    except Exception:  # noqa: BLE001 - auth not set up correctly: behave as signed out
        return None
    with context.session() as s:
        # An identity provider that says the address is unverified proves nothing about it.
        actor = (
            None if verified is False else auth.sso_actor(s, email=str(email) if email else None)
        )
        if actor is None:
            st.session_state[NOTICE_KEY] = SSO_REFUSED
            if not st.session_state.get(SSO_REFUSED_KEY):
                st.session_state[SSO_REFUSED_KEY] = True
                audit.record(
                    s,
                    actor_id=None,
                    action="auth.login_failed",
                    ip=client_ip(),
                    details={"reason": "single sign-on account is not an active staff account"},
                )
            return None
        token = auth.start_session(s, actor=actor, ip=client_ip(), via="sso")
    st.session_state[TOKEN_KEY] = token
    st.session_state[SSO_KEY] = True
    st.session_state[context.ACTOR_KEY] = actor
    return actor


def current_actor() -> Actor | None:
    """The signed-in staff member for this run, or None (see the module docstring)."""
    token = st.session_state.get(TOKEN_KEY)
    if token:
        was_sso = st.session_state.get(SSO_KEY, False)
        actor = _from_token(token, by_cookie=False)
        if actor is None and was_sso:
            st.logout()  # else the identity provider's cookie would sign them straight back in
        return actor
    cookie = session_cookie()
    if cookie and cookie != st.session_state.get(DEAD_COOKIE_KEY):
        actor = _from_token(cookie, by_cookie=True)
        if actor is not None or not sso_configured():
            return actor
    actor = _from_sso()
    if actor is not None:
        return actor
    value = st.session_state.get(context.ACTOR_KEY)
    if isinstance(value, Actor) and not cookie:
        with context.session() as s:
            fresh = auth.active_actor(s, actor_id=value.id)
        if fresh is None:
            _sign_out_locally("disabled")
            return None
        st.session_state[context.ACTOR_KEY] = fresh
        return fresh
    st.session_state.pop(context.ACTOR_KEY, None)
    return None


def sign_in(actor: Actor) -> None:
    """After a password check: open a server session; pending_redirect() then fetches the cookie."""
    with context.session() as s:
        token = auth.start_session(s, actor=actor, ip=client_ip())
    st.session_state[TOKEN_KEY] = token
    st.session_state[context.ACTOR_KEY] = actor
    st.session_state.pop(NOTICE_KEY, None)
    st.session_state[REDIRECT_KEY] = "/auth/session?ticket=" + quote(auth.login_ticket(token))


def _navigate(url: str) -> None:
    """Send the browser to `url` (a route of this server), e.g. to collect the cookie."""
    st.html(
        f"<script>window.location.replace({json.dumps(url)});</script>",
        unsafe_allow_javascript=True,
    )


def pending_redirect() -> None:
    """Emit the one-time redirect that trades a fresh sign-in for a cookie, or clears it."""
    url = st.session_state.pop(REDIRECT_KEY, None)
    if url:
        _navigate(url)


def sign_out() -> None:
    """End the session server-side, then let /auth/logout clear the cookie."""
    token = st.session_state.get(TOKEN_KEY)
    cookie = session_cookie()
    sso = st.session_state.get(SSO_KEY, False)
    with context.session() as s:
        auth.end_session(s, token=token, cookie=cookie, reason="signed out")
    _sign_out_locally(None)
    st.session_state[NOTICE_KEY] = "You are signed out."
    if sso:
        st.logout()
    st.session_state[REDIRECT_KEY] = "/auth/logout"
    st.rerun()


def idle_watch() -> None:
    """Re-check the session now and then, so an idle screen signs itself out unattended."""
    seconds = auth.idle_limit().total_seconds()
    every = timedelta(seconds=max(2.0, min(60.0, seconds / 3)))

    @st.fragment(run_every=every)
    def _watch() -> None:
        token = st.session_state.get(TOKEN_KEY)
        if not token:
            return
        with context.session() as s:
            check = auth.resume_session(s, token=token, touch=False)
        if check.actor is None:
            _sign_out_locally(check.reason)
            st.rerun(scope="app")

    _watch()


def sso_signed_in_elsewhere() -> bool:
    """True when the identity provider signed someone in whom no staff account matches."""
    if not sso_configured():
        return False
    try:
        return bool(st.user.is_logged_in)
    except Exception:  # noqa: BLE001
        return False


def has_notice() -> bool:
    """True when the sign-in page has a message waiting (someone was just signed out)."""
    return bool(st.session_state.get(NOTICE_KEY))


def notice() -> str | None:
    """A one-time message for the sign-in page (why the person was signed out)."""
    return st.session_state.pop(NOTICE_KEY, None)


def account_box(actor: Actor) -> None:
    """Who is signed in, and the way out, at the foot of the sidebar."""
    with st.sidebar:
        st.text(f"Signed in as {actor.label}\n{actor.role.replace('_', ' ')}")
        if st.button("Sign out", key="auth_sign_out", icon=":material/logout:"):
            sign_out()
