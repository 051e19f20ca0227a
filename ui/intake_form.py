"""The inquiry fields shared by the public form and the phone-intake page.

Widgets are keyed by page prefix, so Streamlit keeps everything typed across a failed submit;
each field's error (from crm.validation.FieldErrors) is shown directly under that field.
"""

from __future__ import annotations

from typing import Any, Literal

import streamlit as st

from crm.validation import MESSAGE_MAX, NAME_MAX, SHORT_TEXT_MAX

FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "preferred_contact",
    "best_time",
    "service",
    "zip_code",
    "message",
    "heard_about",
    "crisis_answer",
    "consent",
)
CONTACT_LABELS = {"call": "Phone call", "text": "Text message", "email": "Email"}
CRISIS_LABELS = {"yes": "Yes", "no": "No", "unsure": "Prefer not to say"}
CRISIS_QUESTION = "Are you having thoughts of harming yourself or ending your life?"
CALLER_CRISIS_QUESTION = (
    "Did the caller mention thoughts of harming themselves or ending their life?"
)
PRIVACY_NOTICE = (
    "We use what you share only to answer your request and arrange your consultation. "
    "It is kept confidential, seen only by our care team, never sold or shared with "
    "advertisers. This page uses no third-party trackers."
)


def field_error(errors: dict[str, str], name: str) -> None:
    """The error for one field, shown right under it."""
    if name in errors:
        st.error(errors[name], icon=":material/error:")


def render_fields(
    prefix: str,
    *,
    services: list[str],
    errors: dict[str, str],
    mode: Literal["public", "phone"],
) -> None:
    """Every inquiry field, in the order a person fills them in (call inside st.form)."""
    public = mode == "public"
    you = "your " if public else ""

    def key(name: str) -> str:
        return f"{prefix}_{name}"

    left, right = st.columns(2)
    with left:
        st.text_input(
            "First name" + (" *" if public else ""),
            key=key("first_name"),
            max_chars=NAME_MAX,
            autocomplete="given-name" if public else "off",
        )
        field_error(errors, "first_name")
    with right:
        st.text_input(
            "Last name" + (" *" if public else ""),
            key=key("last_name"),
            max_chars=NAME_MAX,
            autocomplete="family-name" if public else "off",
        )
        field_error(errors, "last_name")
    left, right = st.columns(2)
    with left:
        st.text_input(
            "Email",
            key=key("email"),
            type="email",
            validate="",  # the server's message, shown under the field, is the one that counts
            placeholder="name@example.com",
            autocomplete="email" if public else "off",
        )
        field_error(errors, "email")
    with right:
        st.text_input(
            "Mobile phone",
            key=key("phone"),
            type="phone",
            placeholder="(571) 555-0100",
            autocomplete="tel" if public else "off",
        )
        field_error(errors, "phone")
    st.caption(f"Give {you}email or mobile phone number, or both.")
    left, right = st.columns(2)
    with left:
        st.radio(
            "Preferred way to reach " + ("you" if public else "them"),
            options=list(CONTACT_LABELS),
            format_func=CONTACT_LABELS.__getitem__,
            index=None,
            horizontal=True,
            key=key("preferred_contact"),
        )
        field_error(errors, "preferred_contact")
    with right:
        st.text_input(
            "Best time to reach " + ("you" if public else "them"),
            key=key("best_time"),
            max_chars=SHORT_TEXT_MAX,
            placeholder="e.g. weekday mornings",
        )
        field_error(errors, "best_time")
    left, right = st.columns(2)
    with left:
        st.selectbox(
            "What " + ("are you" if public else "are they") + " seeking help with?",
            options=services,
            index=None,
            placeholder="Choose one",
            key=key("service"),
        )
        field_error(errors, "service")
    with right:
        st.text_input(
            "ZIP code",
            key=key("zip_code"),
            max_chars=10,
            placeholder="20147",
            autocomplete="postal-code" if public else "off",
        )
        field_error(errors, "zip_code")
    st.text_area(
        "Anything you'd like us to know" if public else "What the caller said (their own words)",
        key=key("message"),
        max_chars=MESSAGE_MAX,
        height=120,
    )
    field_error(errors, "message")
    st.text_input(
        "How did " + ("you" if public else "they") + " hear about us?",
        key=key("heard_about"),
        max_chars=SHORT_TEXT_MAX,
    )
    field_error(errors, "heard_about")
    crisis_question = CRISIS_QUESTION if public else CALLER_CRISIS_QUESTION
    st.radio(
        crisis_question,
        options=list(CRISIS_LABELS),
        format_func=CRISIS_LABELS.__getitem__,
        index=None,
        horizontal=True,
        key=key("crisis_answer"),
    )
    field_error(errors, "crisis_answer")
    if public:
        st.caption(PRIVACY_NOTICE)
    st.checkbox(
        "I agree that the clinic may contact me by phone, text or email about my request. *"
        if public
        else "The caller agreed that we may contact them by phone, text or email",
        key=key("consent"),
    )
    field_error(errors, "consent")


def values(prefix: str) -> dict[str, Any]:
    """What the person typed, as validate_intake() reads it."""
    return {name: st.session_state.get(f"{prefix}_{name}") for name in FIELDS}


def clear(prefix: str) -> None:
    """Empty the form (call from a callback, before the widgets render)."""
    for name in FIELDS:
        st.session_state.pop(f"{prefix}_{name}", None)
