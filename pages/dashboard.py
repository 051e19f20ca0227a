"""Staff page: the managers' pipeline dashboard. What each figure counts: crm.metrics."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from crm import export, metrics
from crm.access import Perm, can
from crm.errors import PermissionDenied
from crm.metrics import By, Filters, FunnelRow, Period, duration_text
from crm.timeutil import utcnow
from ui import context
from ui import dashboard_charts as charts

EMPTY = "No leads in this period."
COUNTS = {  # thousands separators in the tables' count columns
    name: st.column_config.NumberColumn(format="localized")
    for name in ("Stays", "Open now", "Overdue now", "First contacts (period)")
}


# Query results are cached for a minute per filter set (plain dataclasses, never ORM objects):
# a change made elsewhere shows up here within 60 seconds.
@st.cache_data(ttl=60, show_spinner=False)
def _options() -> dict[str, list[tuple[Any, str]]]:
    with context.session() as s:
        return {
            "areas": metrics.groups(s, By.SERVICE_AREA),
            "services": metrics.groups(s, By.SERVICE),
            "sources": metrics.groups(s, By.SOURCE),
            "owners": metrics.owners(s),
        }


@st.cache_data(ttl=60, show_spinner="Counting...")
def _dashboard(f: Filters, today: date) -> metrics.Dashboard:
    return metrics.dashboard(engine=context.engine(), filters=f, today=today, now=utcnow())


@st.cache_data(ttl=60, show_spinner=False)
def _funnel(f: Filters, by: By) -> list[FunnelRow]:
    with context.session() as s:
        return metrics.funnel(s, f, by)


def _record_download(what: str, rows: int, filters: dict[str, Any]) -> None:
    """Download-button callback: the export goes into the audit trail."""
    with context.session() as s:
        export.record_download(session=s, actor=actor, what=what, rows=rows, filters=filters)  # type: ignore[arg-type]


def download(rows: list[dict[str, Any]], what: str, key: str) -> None:
    """A CSV download of `rows` for people allowed to export; recorded when clicked."""
    if not can(actor, Perm.EXPORT) or not rows:
        return
    st.download_button(
        f"Download CSV ({len(rows)} rows)",
        data=export.to_csv(rows),
        file_name=f"{key.removeprefix('dash_dl_')}_{filters.start}_{filters.end}.csv",
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click=_record_download,
        args=(what, len(rows), filter_summary),
    )


def pct(x: float | None) -> str:
    """A share as people read it: whole percent, with a decimal below 10% (0.5%, not 0%)."""
    if x is None:
        return "-"
    return f"{x:.1%}" if 0 < x < 0.1 else f"{x:.0%}"


def pct_delta(cur: float | None, prev: float | None) -> str | None:
    return None if cur is None or prev is None else f"{(cur - prev) * 100:+.1f} pts"


def time_delta(cur: int | None, prev: int | None) -> str | None:
    if cur is None or prev is None:
        return None
    return ("+" if cur >= prev else "-") + duration_text(abs(cur - prev))


st.title("Pipeline dashboard")
actor = context.actor()
try:
    metrics.authorize(actor)
except PermissionDenied as err:
    st.error(str(err))
    st.stop()

tz = context.clinic().timezone
today = metrics.local_today(tz)
options = _options()
labels = {kind: dict(pairs) for kind, pairs in options.items()}

# --- Filters ---------------------------------------------------------------------------------
cols = st.columns([1.3, 1.2, 1.2, 1, 1])
period = Period(
    cols[0].selectbox(
        "Inquiry date",
        list(Period),
        index=1,
        format_func=lambda p: Period(p).label,
        key="dash_period",
    )
    or Period.LAST_30_DAYS
)
if period == Period.CUSTOM:
    picked = cols[0].date_input(
        "From - to (inclusive)",
        value=(today - timedelta(days=29), today),
        max_value=today,
        key="dash_range",
    )
    start, end = (picked[0], picked[-1]) if isinstance(picked, tuple) and picked else (today, today)
else:
    start, end = metrics.period_dates(period, today)


def _pick(col: Any, label: str, kind: str, placeholder: str) -> tuple[Any, ...]:
    chosen = col.multiselect(
        label,
        [k for k, _ in options[kind]],
        format_func=lambda k: labels[kind].get(k, str(k)),
        placeholder=placeholder,
        key=f"dash_{kind}",
    )
    return tuple(sorted(chosen, key=str))


filters = Filters(
    start=start,
    end=end,
    tz=tz,
    areas=_pick(cols[1], "Service area", "areas", "All areas"),
    services=_pick(cols[2], "Service", "services", "All services"),
    sources=_pick(cols[3], "Source", "sources", "All sources"),
    owners=_pick(cols[4], "Owner", "owners", "Everyone"),
)
previous = filters.previous()
filter_summary = {
    "from": filters.start.isoformat(),
    "to": filters.end.isoformat(),
    "areas": [labels["areas"].get(k) for k in filters.areas],
    "services": [labels["services"].get(k) for k in filters.services],
    "sources": list(filters.sources),
    "owners": [labels["owners"].get(k) for k in filters.owners],
}
st.caption(
    f"The leads whose inquiry came in from {start:%b %d, %Y} to {end:%b %d, %Y} "
    f"(clinic time, {tz}), spam left out, and what became of them; compared with "
    f"{previous.start:%b %d} to {previous.end:%b %d, %Y}. Figures refresh within a minute "
    "of changes elsewhere."
)

# --- Headline figures -------------------------------------------------------------------------
data = _dashboard(filters, today)
cur, prev = data.current, data.previous
if cur.inquiries == 0:
    st.info(EMPTY, icon=":material/inbox:")
else:
    row1, row2 = st.columns(5), st.columns(5)
    row1[0].metric(
        "New inquiries", f"{cur.inquiries:,}", f"{cur.inquiries - prev.inquiries:+,}",
        help="Leads whose inquiry came in during the period (spam excluded).",
    )  # fmt: skip
    row1[1].metric(
        "Median time to first contact", duration_text(cur.first_contact_median_s),
        time_delta(cur.first_contact_median_s, prev.first_contact_median_s), delta_color="inverse",
        help=f"Inquiry to first contact, over the {cur.first_contacted} leads contacted so far "
        "(leads not contacted yet are left out). Median = the lower middle value.",
    )  # fmt: skip
    row1[2].metric(
        "Contacted within target", pct(cur.within_target_share),
        pct_delta(cur.within_target_share, prev.within_target_share),
        help=f"{cur.within_target} of {cur.with_target} leads with a response target were first "
        "contacted by it; leads not contacted yet count as missed.",
    )  # fmt: skip
    row1[3].metric(
        "Consult booked", pct(cur.consult_booked_rate),
        pct_delta(cur.consult_booked_rate, prev.consult_booked_rate),
        help=f"{cur.consult_scheduled} of {cur.inquiries} inquiries reached consult scheduled.",
    )  # fmt: skip
    row1[4].metric(
        "Consult show rate", pct(cur.consult_show_rate),
        pct_delta(cur.consult_show_rate, prev.consult_show_rate),
        help=f"{cur.consult_shown} of the {cur.consult_scheduled} leads with a consult booked "
        "completed one.",
    )  # fmt: skip
    row2[0].metric(
        "Screening clear rate", pct(cur.screening_clear_rate),
        pct_delta(cur.screening_clear_rate, prev.screening_clear_rate),
        help=f"{cur.screening_cleared} of the {cur.screening} leads that reached screening were "
        "cleared.",
    )  # fmt: skip
    row2[1].metric(
        "Inquiry → first infusion", pct(cur.conversion_rate),
        pct_delta(cur.conversion_rate, prev.conversion_rate),
        help=f"{cur.first_infusions} of {cur.inquiries} inquiries completed a first infusion. "
        "A recent period has had less time to convert than the one before it.",
    )  # fmt: skip
    row2[2].metric(
        "Inquiry → infusion, median", duration_text(cur.first_infusion_median_s),
        time_delta(cur.first_infusion_median_s, prev.first_infusion_median_s),
        delta_color="inverse",
        help="Median time from inquiry to first infusion completed, over the "
        f"{cur.first_infusions} leads that completed one.",
    )  # fmt: skip
    row2[3].metric(
        "Urgent leads", f"{cur.urgent:,}", f"{cur.urgent - prev.urgent:+,}", delta_color="off",
        help="Leads flagged for crisis wording.",
    )  # fmt: skip
    row2[4].metric(
        "Urgent: time to contact", duration_text(cur.urgent_first_contact_median_s),
        time_delta(cur.urgent_first_contact_median_s, prev.urgent_first_contact_median_s),
        delta_color="inverse",
        help=f"Median time from inquiry to first contact, over the {cur.urgent_first_contacted} "
        "urgent leads contacted so far.",
    )  # fmt: skip
    download(
        [{"figure": k, "this period": v, "previous period": prev.as_dict()[k]}
         for k, v in cur.as_dict().items()],
        "Headline figures", "dash_dl_headline",
    )  # fmt: skip

# --- Funnel ---------------------------------------------------------------------------------
st.subheader("Funnel: how many of the period's leads reached each stage")
by = By(
    st.segmented_control(
        "Break down by", list(By), format_func=lambda b: By(b).label, default=By.SERVICE_AREA,
        key="dash_by",
    )
    or By.SERVICE_AREA
)  # fmt: skip
if cur.inquiries == 0:
    st.info(EMPTY, icon=":material/inbox:")
else:
    rows = data.funnel if by == By.SERVICE_AREA else _funnel(filters, by)
    order = list(dict.fromkeys(r.group for r in rows))
    st.altair_chart(charts.funnel_chart(rows, order), width="content")
    table = pd.DataFrame(
        {g: [f"{r.reached:,} ({pct(r.step_rate)})" for r in rows if r.group == g] for g in order},
        index=[r.stage_label for r in rows if r.group == order[0]],
    )
    st.caption(
        "Each cell: leads that reached the stage (of those that reached the stage before, the "
        "share that got here). A lead that skipped a stage didn't reach it."
    )
    st.dataframe(table, width="stretch")
    download(
        [{by.label: r.group, "stage": r.stage_label, "reached": r.reached,
          "reached the stage before": r.previous, "reached both": r.from_previous,
          "step conversion": r.step_rate, "share of inquiries": r.overall_rate} for r in rows],
        f"Funnel by {by.label.lower()}", f"dash_dl_funnel_{by.value}",
    )  # fmt: skip

# --- Trend ----------------------------------------------------------------------------------
st.subheader("Weekly inquiries and first infusions per service area, last 12 months")
trend = data.trend
area_colors = metrics.group_colors(options["areas"])
if not trend:
    st.info("No leads in the last 12 months.", icon=":material/inbox:")
else:
    st.caption(
        "Weeks run Monday to Sunday, clinic time; the last point is the week under way. The "
        "area, service, source and owner filters apply; the period doesn't."
    )
    left, right = st.columns(2)
    left.altair_chart(
        charts.trend_chart(trend, area_colors, "inquiries", "Inquiries, by week of inquiry"),
        width="stretch",
    )
    right.altair_chart(
        charts.trend_chart(
            trend, area_colors, "first_infusions", "First infusions, by week completed"
        ),
        width="stretch",
    )
    download(
        [{"week starting": r.week_start, "service area": r.area, "inquiries": r.inquiries,
          "first infusions": r.first_infusions} for r in trend],
        "Weekly trend", "dash_dl_trend",
    )  # fmt: skip

# --- Time in stage --------------------------------------------------------------------------
st.subheader("Days the period's leads spent in each stage before moving on")
times = data.stage_times
if not times:
    st.info(EMPTY if cur.inquiries == 0 else "No stage changes yet.", icon=":material/inbox:")
else:
    left, right = st.columns([1, 1])
    left.altair_chart(charts.stage_time_chart(times), width="stretch")
    right.dataframe(
        pd.DataFrame(
            [{"Stage": r.stage_label, "Stays": r.stays, "Median days": round(r.median_days, 1),
              "90th percentile days": round(r.p90_days, 1)} for r in times]
        ),
        hide_index=True,
        column_config=COUNTS,
    )  # fmt: skip
    right.caption("From the stage-change log; a stay still under way isn't counted.")
    download([r.as_dict() for r in times], "Time in stage", "dash_dl_stage_time")

# --- Why leads leave ------------------------------------------------------------------------
st.subheader("Why the period's leads left: lost and not-eligible reasons by service area")
reasons = data.reasons
if not reasons:
    st.info(
        EMPTY if cur.inquiries == 0 else "No lost or not-eligible leads.", icon=":material/inbox:"
    )
else:
    st.caption("Leads that are lost or not eligible now, with the reason given when they closed.")
    left, right = st.columns(2)
    for col, outcome, title in (
        (left, "lost", "Lost: leads per reason"),
        (right, "not_eligible", "Not eligible: leads per reason"),
    ):
        part = [r for r in reasons if r.outcome == outcome]
        if part:
            col.altair_chart(charts.reasons_chart(part, area_colors, title), width="stretch")
        else:
            col.caption(f"{title}: none.")
    download(
        [{"outcome": r.outcome_label, "service area": r.area, "reason": r.reason,
          "leads": r.leads} for r in reasons],
        "Lost and not-eligible reasons", "dash_dl_reasons",
    )  # fmt: skip

# --- Team -----------------------------------------------------------------------------------
st.subheader("Team: open and overdue leads now, speed to first contact in the period")
team = data.team
team_rows = [
    {"Care-team member": r.owner, "Open now": r.open, "Overdue now": r.overdue,
     "First contacts (period)": r.responded,
     "Median time to first contact": duration_text(r.first_response_median_s)}
    for r in team
]  # fmt: skip
if not team_rows:
    st.info("No open leads and no care-team members.", icon=":material/inbox:")
else:
    st.dataframe(pd.DataFrame(team_rows), hide_index=True, column_config=COUNTS)
    download([r.as_dict() for r in team], "Team workload", "dash_dl_team")
