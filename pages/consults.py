"""Consults: today's or this week's 15-minute phone consults per provider, with their actions."""

from __future__ import annotations

from collections import Counter
from itertools import groupby

import streamlit as st

from crm import scheduling
from crm.access import Perm, can
from crm.enums import ConsultStatus
from crm.scheduling import ConsultView
from crm.timeutil import format_local, to_local
from ui import context
from ui.consult_widgets import (
    CANDIDATE_LABELS,
    DAY_FMT,
    STATUS_LABELS,
    TIME_FMT,
    consult_actions,
    lead_link,
    local_today,
    phone_link,
    show_flash,
    status_badge,
)
from ui.plain import md

PREFIX = "consults_"
ALL_PROVIDERS = 0
OPEN_KEY = f"{PREFIX}open"

actor = context.actor()
config = context.clinic()
st.title("Consults")
if actor is None or not can(actor, Perm.CONSULTS):
    st.error("Your role can't see the consult schedule.")
    st.stop()
show_flash(PREFIX)

with context.session() as s:
    providers = scheduling.list_providers(session=s)
names = {ALL_PROVIDERS: "All providers", **{p.id: p.name for p in providers}}
choices = list(names)
# A provider sees their own consults first; everyone else starts with the whole team.
default = actor.id if actor.is_provider and actor.id in names else ALL_PROVIDERS

left, middle, right = st.columns([2, 2, 1.4])
provider_id = left.selectbox(
    "Provider",
    choices,
    index=choices.index(default),
    format_func=lambda i: names.get(i, "?"),
    key=f"{PREFIX}provider",
)
span = middle.radio("Show", ["Today", "This week"], horizontal=True, key=f"{PREFIX}span")
day = right.date_input("Day", value=local_today(config), key=f"{PREFIX}day", format="MM/DD/YYYY")

bounds = scheduling.day_bounds if span == "Today" else scheduling.week_bounds
start, end = bounds(day, config.timezone)
with context.session() as s:
    rows = scheduling.list_consults(
        session=s, actor=actor, start=start, end=end, provider_id=provider_id or None
    )

counts = Counter(ConsultStatus(r.status) for r in rows)
summary = " · ".join(
    f"{counts[status]} {label.lower()}" for status, (label, _c) in STATUS_LABELS.items()
)
period = (
    format_local(start, config.timezone, "%A %B %d")
    if span == "Today"
    else f"week of {format_local(start, config.timezone, '%B %d')}"
)
st.caption(f"{md(names.get(provider_id, ''))}, {period}: {summary}")

if not rows:
    st.info("No consults in this period.")


def _toggle(consult_id: int) -> None:
    current = st.session_state.get(OPEN_KEY)
    st.session_state[OPEN_KEY] = None if current == consult_id else consult_id


def consult_row(row: ConsultView) -> None:
    """One consult: when, who, how to reach them, its status, and its actions on demand."""
    with st.container(border=True):
        when, lead, phone, status, act = st.columns(
            [1.3, 2.6, 1.8, 1.6, 1.1], vertical_alignment="center"
        )
        when.markdown(f"**{format_local(row.starts_at, config.timezone, TIME_FMT)}**")
        when.caption(f"{(row.ends_at - row.starts_at).seconds // 60} min")
        with lead:
            st.text(row.lead_name)
            lead_link(row.lead_id, row.lead_reference)
        with phone:
            phone_link(row.lead_phone)
        with status:
            status_badge(row.status)
            if row.candidate:
                st.caption(f"Candidate: {CANDIDATE_LABELS[row.candidate].lower()}")
        is_open = st.session_state.get(OPEN_KEY) == row.id
        if row.status != ConsultStatus.CANCELLED:
            act.button(
                "Close" if is_open else "Actions",
                key=f"{PREFIX}toggle_{row.id}",
                icon=":material/expand_less:" if is_open else ":material/more_horiz:",
                on_click=_toggle,
                args=(row.id,),
            )
        if is_open:
            consult_actions(PREFIX, row, providers=providers, config=config)


def local_day(row: ConsultView) -> str:
    return to_local(row.starts_at, config.timezone).strftime(f"%Y-%m-%d|{DAY_FMT}")


rows_by_provider = sorted(rows, key=lambda r: (r.provider_name.lower(), r.provider_id, r.starts_at))
for (_name, _pid), grouped in groupby(
    rows_by_provider, key=lambda r: (r.provider_name, r.provider_id)
):
    provider_rows = list(grouped)
    if provider_id == ALL_PROVIDERS:
        st.subheader(md(provider_rows[0].provider_name), divider="gray")
    for day_key, day_rows in groupby(provider_rows, key=local_day):
        if span != "Today":
            st.markdown(f"**{day_key.split('|', 1)[1]}**")
        for row in day_rows:
            consult_row(row)
