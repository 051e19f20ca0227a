"""Staff home: the triage queue. The query, paging and counting live in crm.triage."""

from __future__ import annotations

import math

import streamlit as st

from crm import catalog, triage
from crm.access import Perm, can
from crm.enums import OPEN_STAGES, Source, Stage
from crm.errors import CRMError
from crm.timeutil import format_local
from crm.triage import AREA_OUT, OWNER_ANYONE, OWNER_MINE, OWNER_UNASSIGNED, QueueFilters
from ui import context

PAGE_SIZE = 50
STAGES = "queue_stages"
SEARCH = "queue_search"
OWNER = "queue_owner"
AREA = "queue_area"
SERVICE = "queue_service"
SOURCE = "queue_source"
OVERDUE = "queue_overdue"
URGENT = "queue_urgent"
PAGE = "queue_page"
AWAY = "queue_away"
TABLE_N = "queue_table_n"
FILTERS_SEEN = "queue_filters_seen"
LEAD_VIEWED = "lead_viewed"  # the lead page audits a view once per visit; a visit ends here
FLAGS = {"urgent": "URGENT"}
SOURCES = {
    Source.WEB_FORM.value: "Web form",
    Source.PHONE.value: "Phone",
    Source.REFERRAL.value: "Referral",
    Source.IMPORT.value: "Import",
}


def _set_away() -> None:
    actor = context.actor()
    try:
        with context.session() as session:
            triage.set_away(session=session, actor=actor, away=bool(st.session_state[AWAY]))  # type: ignore[arg-type]
    except CRMError as err:
        st.session_state["queue_error"] = str(err)


def _filters(actor_id: int) -> QueueFilters:
    """The filters as chosen in the widgets (read before they render: counts label the stages)."""
    owner = st.session_state.get(OWNER, OWNER_ANYONE)
    return QueueFilters(
        stages=tuple(st.session_state.get(STAGES) or ()),
        owner=owner,
        area=st.session_state.get(AREA),
        service_id=st.session_state.get(SERVICE),
        source=st.session_state.get(SOURCE),
        overdue_only=bool(st.session_state.get(OVERDUE)),
        urgent_only=bool(st.session_state.get(URGENT)),
        search=st.session_state.get(SEARCH) or "",
    )


st.title("Triage queue")
actor = context.actor()
if not can(actor, Perm.LEADS_READ) or actor is None:
    st.error("Your role can't see the queue.")
    st.stop()
st.session_state.pop(LEAD_VIEWED, None)
if error := st.session_state.pop("queue_error", None):
    st.error(error)

config = context.clinic()
with context.session() as session:
    members = triage.team(session=session)
    areas = catalog.areas(session)
    services = catalog.services(session, active_only=False)
    if AWAY not in st.session_state:
        st.session_state[AWAY] = triage.is_away(session=session, actor=actor)

member_names = {m.id: m.label for m in members}
area_names = {a_id: name for a_id, name in areas}
service_names = {s_id: name for s_id, name in services}

filters = _filters(actor.id)
if st.session_state.get(FILTERS_SEEN) != filters:
    st.session_state[FILTERS_SEEN] = filters
    st.session_state[PAGE] = 1  # new filters start at the first page
page_number = int(st.session_state.get(PAGE) or 1)

try:
    with context.session() as session:
        result = triage.queue_page(
            session=session,
            actor=actor,
            filters=filters,
            page=page_number,
            page_size=PAGE_SIZE,
            config=config,
        )
except CRMError as err:
    st.error(str(err))
    st.stop()

counts = result.stage_counts
with st.container(horizontal=True, gap="medium"):
    st.metric("All open", f"{sum(counts.values()):,}")
    for stage in OPEN_STAGES:
        st.metric(stage.label, f"{counts.get(stage.value, 0):,}")
# The labels stay fixed (no counts in them): the browser sends a pill back by its label.
st.pills(
    "Stage",
    options=[s.value for s in OPEN_STAGES],
    selection_mode="multi",
    format_func=lambda s: Stage(s).label,
    key=STAGES,
    persist_state="session",
)

search_col, owner_col, area_col, service_col, source_col = st.columns([3, 2, 2, 2, 2])
with search_col:
    st.text_input(
        "Search",
        key=SEARCH,
        placeholder="Name, email, phone (any format) or reference",
        persist_state="session",
    )
with owner_col:
    owner_options: list[str | int] = [OWNER_ANYONE, OWNER_MINE, OWNER_UNASSIGNED]
    owner_options += [m.id for m in members if m.id != actor.id]
    st.selectbox(
        "Owner",
        owner_options,
        key=OWNER,
        format_func=lambda o: {
            OWNER_ANYONE: "Anyone",
            OWNER_MINE: "Mine",
            OWNER_UNASSIGNED: "Unassigned",
        }.get(o, member_names.get(o, str(o))),  # type: ignore[call-overload]
        persist_state="session",
    )
with area_col:
    st.selectbox(
        "Service area",
        [None, *area_names, AREA_OUT],
        key=AREA,
        format_func=lambda a: (
            "Any" if a is None else "Out of area" if a == AREA_OUT else area_names.get(a, str(a))
        ),
        persist_state="session",
    )
with service_col:
    st.selectbox(
        "Service",
        [None, *service_names],
        key=SERVICE,
        format_func=lambda s: "Any" if s is None else service_names.get(s, str(s)),
        persist_state="session",
    )
with source_col:
    st.selectbox(
        "Source",
        [None, *SOURCES],
        key=SOURCE,
        format_func=lambda s: "Any" if s is None else SOURCES.get(s, s),
        persist_state="session",
    )
toggle_a, toggle_b, summary, away_box = st.columns([1, 1, 3, 1], vertical_alignment="center")
with away_box:
    st.toggle(
        "I'm away",
        key=AWAY,
        on_change=_set_away,
        help="Round-robin gives new leads to the others while you're away.",
    )
with toggle_a:
    st.toggle("Overdue only", key=OVERDUE, persist_state="session")
with toggle_b:
    st.toggle("Urgent only", key=URGENT, persist_state="session")
with summary:
    found = "more than 10,000" if result.total is None else f"{result.total:,}"
    note = ""
    if result.search is not None and result.search.kind == "invalid_phone":
        note = " · type the whole phone number, with its area code"
    elif result.open_only:
        note = " · many names start that way: open leads only (type more to include closed ones)"
    elif result.search is not None:
        note = " · closed leads included"
    st.caption(f"{found} leads{note}")

tz = config.timezone
table = [
    {
        "Age": row.age,
        "Name": row.name,
        "Flags": " · ".join(FLAGS.get(b, b) for b in row.badges),
        "Service": row.service,
        "Area": row.area,
        "Stage": row.stage_label,
        "Owner": row.owner,
        "Attempts": row.attempts,
        "Next action": row.next_action,
        "Due": format_local(row.due_at, tz, "%b %d, %I:%M %p") if row.due_at else "",
        "Speed to lead": row.sla,
        "Ref": row.reference,
    }
    for row in result.rows
]
if not table:
    st.info("No leads match these filters.")
else:
    # A fresh key per visit: the selection that opened a lead doesn't reopen it on return.
    table_key = f"queue_table_{st.session_state.get(TABLE_N, 0)}"
    event = st.dataframe(
        table,
        hide_index=True,
        on_select="rerun",
        selection_mode="single-row",
        key=table_key,
        column_config={
            "Attempts": st.column_config.NumberColumn(width="small"),
            "Age": st.column_config.TextColumn(width="small"),
            "Flags": st.column_config.TextColumn(width="medium"),
        },
    )
    selected = event.selection.rows if event is not None else []  # type: ignore[union-attr]
    if selected:
        st.session_state[TABLE_N] = st.session_state.get(TABLE_N, 0) + 1
        st.switch_page("pages/lead.py", query_params={"id": str(result.rows[selected[0]].lead_id)})
    st.caption("Click a row to open the lead.")

pages = (
    math.ceil(triage.TOTAL_CAP / PAGE_SIZE)
    if result.total is None
    else max(1, math.ceil(result.total / PAGE_SIZE))
)
if pages > 1:
    st.pagination(pages, key=PAGE)
