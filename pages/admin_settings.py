"""Clinic settings: areas and services, reasons, targets, hours, providers, email, API keys."""

from collections.abc import Callable
from datetime import time
from zoneinfo import available_timezones

import streamlit as st
from sqlmodel import Session

from crm import clinic_admin, scheduling
from crm.clinic_settings import WEEKDAYS
from crm.errors import CRMError
from crm.timeutil import format_local
from ui import context

actor = context.actor()
st.title("Clinic settings")
st.caption("Changes apply at once, without a restart, and are recorded in the audit trail.")

flash = st.session_state.pop("settings_flash", None)
if flash:
    st.success(flash)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _apply(action: Callable[[Session], object], message: str, clear: tuple[str, ...] = ()) -> None:
    """Run one change in its own unit of work; show the domain's message if it is refused."""
    try:
        with context.session() as s:
            action(s)
    except CRMError as err:
        st.error(str(err))
        return
    st.cache_data.clear()  # pages may cache catalogue lookups; a change shows on the next run
    for key in clear:  # e.g. a typed password: it must not sit in the form after saving
        st.session_state.pop(key, None)
    st.session_state["settings_flash"] = message
    st.rerun()


with context.session() as s:
    config = clinic_admin.view_settings(session=s, actor=actor)
    areas = clinic_admin.list_areas(session=s, actor=actor)
    services = clinic_admin.list_services(session=s, actor=actor)
    keys = clinic_admin.list_api_keys(session=s, actor=actor)
    providers = scheduling.list_providers(session=s)

tabs = st.tabs(
    ["Service areas", "Services", "Pipeline", "Hours", "Providers", "Email", "Website and API"]
)

# --- Service areas ---------------------------------------------------------------------------
with tabs[0]:
    st.dataframe(
        [
            {
                "Area": a.name,
                "Counties": ", ".join(a.counties),
                "Cities": ", ".join(a.cities),
                "ZIP codes": ", ".join(a.zip_codes),
                "Active": a.active,
                "Order": a.sort_order,
            }
            for a in areas
        ],
        hide_index=True,
        key="settings_areas_table",
    )
    area = st.selectbox(
        "Area to edit",
        [None, *areas],
        key="settings_area_pick",
        format_func=lambda a: "Add a new area" if a is None else a.name,
    )
    suffix = area.id if area else "new"
    with st.form(f"settings_area_form_{suffix}"):
        name = st.text_input(
            "Name",
            value=area.name if area else "",
            max_chars=120,
            key=f"settings_area_name_{suffix}",
        )
        counties = st.text_area(
            "Counties, one per line (e.g. Loudoun County, VA)",
            value="\n".join(area.counties) if area else "",
            key=f"settings_area_counties_{suffix}",
        )
        cities = st.text_area(
            "Cities, one per line",
            value="\n".join(area.cities) if area else "",
            key=f"settings_area_cities_{suffix}",
        )
        zips = st.text_area(
            "ZIP codes, one per line or separated by commas",
            value="\n".join(area.zip_codes) if area else "",
            key=f"settings_area_zips_{suffix}",
        )
        c1, c2 = st.columns(2)
        active = c1.checkbox(
            "Active", value=area.active if area else True, key=f"settings_area_active_{suffix}"
        )
        order = c2.number_input(
            "Order in lists",
            value=area.sort_order if area else len(areas),
            step=1,
            key=f"settings_area_order_{suffix}",
        )
        if st.form_submit_button("Save area", type="primary"):
            _apply(
                lambda s: clinic_admin.save_area(
                    session=s,
                    actor=actor,
                    area_id=area.id if area else None,
                    name=name,
                    counties=_lines(counties),
                    cities=_lines(cities),
                    zip_codes=_lines(zips.replace(",", "\n")),
                    active=active,
                    sort_order=int(order),
                ),
                f"Saved the service area {name.strip()}.",
            )

# --- Services --------------------------------------------------------------------------------
with tabs[1]:
    st.dataframe(
        [
            {
                "Service": v.name,
                "Description": v.description,
                "Active": v.active,
                "Order": v.sort_order,
            }
            for v in services
        ],
        hide_index=True,
        key="settings_services_table",
    )
    service = st.selectbox(
        "Service to edit",
        [None, *services],
        key="settings_service_pick",
        format_func=lambda v: "Add a new service" if v is None else v.name,
    )
    suffix = service.id if service else "new"
    with st.form(f"settings_service_form_{suffix}"):
        name = st.text_input(
            "Name",
            value=service.name if service else "",
            max_chars=120,
            key=f"settings_service_name_{suffix}",
        )
        description = st.text_area(
            "Description",
            value=service.description if service else "",
            max_chars=500,
            key=f"settings_service_description_{suffix}",
        )
        c1, c2 = st.columns(2)
        active = c1.checkbox(
            "Offered (shown on the form)",
            value=service.active if service else True,
            key=f"settings_service_active_{suffix}",
        )
        order = c2.number_input(
            "Order in lists",
            value=service.sort_order if service else len(services),
            step=1,
            key=f"settings_service_order_{suffix}",
        )
        if st.form_submit_button("Save service", type="primary"):
            _apply(
                lambda s: clinic_admin.save_service(
                    session=s,
                    actor=actor,
                    service_id=service.id if service else None,
                    name=name,
                    description=description,
                    active=active,
                    sort_order=int(order),
                ),
                f"Saved the service {name.strip()}.",
            )

# --- Pipeline --------------------------------------------------------------------------------
with tabs[2], st.form("settings_pipeline_form"):
    c1, c2, c3 = st.columns(3)
    first_response = c1.number_input(
        "First-response target (minutes, business hours)",
        min_value=1,
        max_value=1440,
        value=config.first_response_minutes,
        key="settings_first_response",
    )
    slot = c2.number_input(
        "Consult slot length (minutes)",
        min_value=5,
        max_value=120,
        value=config.consult_slot_minutes,
        key="settings_slot",
    )
    series = c3.number_input(
        "Planned infusion series length",
        min_value=1,
        max_value=30,
        value=config.infusion_series_length,
        key="settings_series",
    )
    lost = st.text_area(
        "Lost reasons, one per line", value="\n".join(config.lost_reasons), key="settings_lost"
    )
    not_eligible = st.text_area(
        "Not-eligible reasons, one per line",
        value="\n".join(config.not_eligible_reasons),
        key="settings_not_eligible",
    )
    if st.form_submit_button("Save", type="primary"):
        _apply(
            lambda s: clinic_admin.update_settings(
                session=s,
                actor=actor,
                changes={
                    "first_response_minutes": first_response,
                    "consult_slot_minutes": slot,
                    "infusion_series_length": series,
                    "lost_reasons": _lines(lost),
                    "not_eligible_reasons": _lines(not_eligible),
                },
            ),
            "Saved the pipeline settings.",
        )

# --- Hours -----------------------------------------------------------------------------------
with tabs[3], st.form("settings_hours_form"):
    zones = sorted(available_timezones())
    timezone = st.selectbox(
        "Time zone",
        zones,
        index=zones.index(config.timezone) if config.timezone in zones else 0,
        key="settings_timezone",
    )
    hours: dict[str, list[str] | None] = {}
    for day in WEEKDAYS:
        span = config.business_hours.get(day)
        c1, c2, c3 = st.columns([1, 2, 2])
        is_open = c1.checkbox(day.title(), value=span is not None, key=f"settings_open_{day}")
        opens = c2.time_input(
            "Opens",
            value=time.fromisoformat(span[0]) if span else time(8),
            key=f"settings_opens_{day}",
            step=900,
        )
        closes = c3.time_input(
            "Closes",
            value=time.fromisoformat(span[1]) if span else time(18),
            key=f"settings_closes_{day}",
            step=900,
        )
        hours[day] = [opens.strftime("%H:%M"), closes.strftime("%H:%M")] if is_open else None
    if st.form_submit_button("Save hours", type="primary"):
        _apply(
            lambda s: clinic_admin.update_settings(
                session=s, actor=actor, changes={"timezone": timezone, "business_hours": hours}
            ),
            "Saved the business hours.",
        )

# --- Providers -------------------------------------------------------------------------------
with tabs[4]:
    if not providers:
        st.info("No providers yet. Mark a staff account as a provider on the Staff accounts page.")
    else:
        provider = st.selectbox(
            "Provider", providers, format_func=lambda p: p.name, key="settings_provider_pick"
        )
        with context.session() as s:
            windows = scheduling.get_availability(session=s, provider_id=provider.id)
        text = "\n".join(f"{WEEKDAYS[d]} {a:%H:%M}-{b:%H:%M}" for d, a, b in windows)
        with st.form(f"settings_availability_form_{provider.id}"):
            st.caption("One window per line: day and hours, e.g. 'mon 09:00-12:00'. Clinic time.")
            value = st.text_area(
                "Weekly availability", value=text, key=f"settings_availability_{provider.id}"
            )
            if st.form_submit_button("Save availability", type="primary"):
                try:
                    parsed = clinic_admin.parse_windows(value)
                except CRMError as err:
                    st.error(str(err))
                else:
                    _apply(
                        lambda s: scheduling.set_availability(
                            session=s, actor=actor, provider_id=provider.id, windows=parsed
                        ),
                        f"Saved the availability of {provider.name}.",
                    )

# --- Email -----------------------------------------------------------------------------------
with tabs[5], st.form("settings_email_form"):
    oncall = st.text_input(
        "On-call email for urgent leads", value=config.oncall_email, key="settings_oncall"
    )
    c1, c2 = st.columns([3, 1])
    smtp_host = c1.text_input("SMTP server", value=config.smtp_host, key="settings_smtp_host")
    smtp_port = c2.number_input(
        "Port", min_value=1, max_value=65535, value=config.smtp_port, key="settings_smtp_port"
    )
    smtp_user = st.text_input(
        "SMTP user name", value=config.smtp_username, key="settings_smtp_user"
    )
    smtp_password = st.text_input(
        "SMTP password",
        type="password",
        key="settings_smtp_password",
        placeholder="unchanged" if config.smtp_password else "not set",
        autocomplete="new-password",
    )
    clear_password = st.checkbox("Remove the stored SMTP password", key="settings_smtp_clear")
    smtp_from = st.text_input(
        "Send as (from address)", value=config.smtp_from, key="settings_smtp_from"
    )
    starttls = st.checkbox("Use STARTTLS", value=config.smtp_starttls, key="settings_smtp_starttls")
    if st.form_submit_button("Save email settings", type="primary"):
        changes = {
            "oncall_email": oncall,
            "smtp_host": smtp_host,
            "smtp_port": smtp_port,
            "smtp_username": smtp_user,
            "smtp_from": smtp_from,
            "smtp_starttls": starttls,
        }
        if smtp_password or clear_password:
            changes["smtp_password"] = "" if clear_password else smtp_password
        _apply(
            lambda s: clinic_admin.update_settings(session=s, actor=actor, changes=changes),
            "Saved the email settings.",
            clear=("settings_smtp_password", "settings_smtp_clear"),
        )

# --- Website and API keys --------------------------------------------------------------------
with tabs[6]:
    with st.form("settings_website_form"):
        thank_you = st.text_input(
            "Thank-you page for website form posts (optional)",
            value=config.thank_you_url,
            key="settings_thank_you",
            placeholder="https://www.example-clinic.com/thank-you",
        )
        if st.form_submit_button("Save", type="primary"):
            _apply(
                lambda s: clinic_admin.update_settings(
                    session=s, actor=actor, changes={"thank_you_url": thank_you}
                ),
                "Saved the thank-you page.",
            )
    st.subheader("API keys")
    shown = st.session_state.pop("settings_new_key", None)
    if shown:
        st.warning("Copy this key now: it is not stored and cannot be shown again.")
        st.code(shown, language=None)
    tz = config.timezone
    if not keys:
        st.caption("No API keys yet.")
    else:
        st.dataframe(
            [
                {
                    "Name": k["name"],
                    "Starts with": k["prefix"] + "…",
                    "Allowed origins": " ".join(k["allowed_origins"])
                    or "(none: server-to-server only)",
                    "Created": format_local(k["created_at"], tz),
                    "Last used": format_local(k["last_used_at"], tz),
                    "State": "active" if k["active"] else "revoked",
                }
                for k in keys
            ],
            hide_index=True,
            key="settings_keys_table",
        )
    with st.form("settings_key_form", clear_on_submit=True):
        key_name = st.text_input("New key name", key="settings_key_name", max_chars=80)
        origins = st.text_area(
            "Allowed website origins, one per line (e.g. `https://www.example-clinic.com`)",
            key="settings_key_origins",
        )
        if st.form_submit_button("Create key"):
            try:
                with context.session() as s:
                    plaintext = clinic_admin.create_api_key(
                        session=s, actor=actor, name=key_name, allowed_origins=_lines(origins)
                    )
            except CRMError as err:
                st.error(str(err))
            else:
                st.session_state["settings_new_key"] = plaintext
                st.session_state["settings_flash"] = f"Created the API key {key_name.strip()}."
                st.rerun()
    active_keys = [k["name"] for k in keys if k["active"]]
    if active_keys:
        c1, c2 = st.columns([3, 1])
        to_revoke = c1.selectbox("Revoke a key", active_keys, key="settings_revoke_pick")
        if c2.button("Revoke", key="settings_revoke"):
            _apply(
                lambda s: clinic_admin.revoke_api_key(session=s, actor=actor, name=to_revoke),
                f"Revoked the API key {to_revoke}.",
            )
