"""Altair charts of the pipeline dashboard, coloured from crm.metrics' palettes.

A stage keeps its colour in every chart (STAGE_COLORS) and so does a service area (group
colours in catalogue order, out of area grey), so a manager reads them at a glance.
"""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from crm.enums import FUNNEL, Stage
from crm.metrics import STAGE_COLORS, FunnelRow, ReasonRow, StageTime, TrendRow

FUNNEL_LABELS = [s.label for s in FUNNEL]
# Category labels in full, every one shown (Vega-Lite would drop "overlapping" ones).
AXIS = alt.Axis(labelLimit=260, labelOverlap=False)


def _stage_scale(stages: Sequence[Stage]) -> alt.Scale:
    return alt.Scale(domain=[s.label for s in stages], range=[STAGE_COLORS[s] for s in stages])


def _group_scale(colors: dict[str, str], present: Sequence[str]) -> alt.Scale:
    domain = [g for g in colors if g in set(present)]
    return alt.Scale(domain=domain, range=[colors[g] for g in domain])


def funnel_chart(rows: list[FunnelRow], group_order: list[str]) -> alt.FacetChart:
    """One small funnel per group, side by side: leads that reached each stage."""
    data = pd.DataFrame(
        [
            {
                "Group": r.group,
                "Stage": r.stage_label,
                "Leads": r.reached,
                "Step": "" if r.step_rate is None else f"{r.step_rate:.0%}",
            }
            for r in rows
        ]
    )
    base = alt.Chart(data).encode(
        y=alt.Y("Stage:N", sort=FUNNEL_LABELS, title=None, axis=AXIS),
        x=alt.X("Leads:Q", title="Leads that reached the stage"),
    )
    bars = base.mark_bar().encode(
        color=alt.Color("Stage:N", scale=_stage_scale(FUNNEL), legend=None),
        tooltip=["Group", "Stage", "Leads", alt.Tooltip("Step", title="From the stage before")],
    )
    labels = base.mark_text(align="left", dx=3, fontSize=11).encode(text="Leads:Q")
    columns = min(len(group_order), 4)
    return (
        alt.layer(bars, labels, data=data)
        .properties(width=190, height=190)
        .facet(
            facet=alt.Facet(
                "Group:N", sort=group_order, title=None, header=alt.Header(labelFontSize=13)
            ),
            columns=columns,
        )
        .resolve_scale(x="independent")
    )


def trend_chart(rows: list[TrendRow], colors: dict[str, str], field: str, title: str) -> alt.Chart:
    """Weekly counts per service area as lines (field: inquiries or first_infusions)."""
    data = pd.DataFrame(
        [
            {"Week": r.week_start.isoformat(), "Area": r.area, "Leads": getattr(r, field)}
            for r in rows
        ]
    )
    return (
        alt.Chart(data, title=title)
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=alt.X("Week:T", title="Week starting (Monday)"),
            y=alt.Y("Leads:Q", title="Leads"),
            color=alt.Color(
                "Area:N", scale=_group_scale(colors, list(data["Area"])), title="Service area"
            ),
            tooltip=[alt.Tooltip("Week:T", title="Week of"), "Area", "Leads"],
        )
        .properties(height=260)
    )


def stage_time_chart(rows: list[StageTime]) -> alt.LayerChart | alt.FacetChart:
    """Median (bar) and 90th percentile (tick) days in each stage."""
    stages = [Stage(r.stage) for r in rows]
    data = pd.DataFrame(
        [
            {
                "Stage": r.stage_label,
                "Median days": r.median_days,
                "90th percentile days": r.p90_days,
            }
            for r in rows
        ]
    )
    base = alt.Chart(data).encode(
        y=alt.Y(
            "Stage:N", sort=[s.label for s in stages], title=None, axis=alt.Axis(labelLimit=200)
        )
    )
    bars = base.mark_bar().encode(
        x=alt.X("Median days:Q", title="Days in the stage (bar: median, tick: 90th percentile)"),
        color=alt.Color("Stage:N", scale=_stage_scale(stages), legend=None),
        tooltip=[
            "Stage",
            alt.Tooltip("Median days:Q", format=".1f"),
            alt.Tooltip("90th percentile days:Q", format=".1f"),
        ],
    )
    ticks = base.mark_tick(color="#333333", thickness=2, size=18).encode(x="90th percentile days:Q")
    return alt.layer(bars, ticks).properties(height=alt.Step(30))


def reasons_chart(rows: list[ReasonRow], colors: dict[str, str], title: str) -> alt.Chart:
    """Leads per reason, stacked by service area."""
    data = pd.DataFrame([{"Reason": r.reason, "Area": r.area, "Leads": r.leads} for r in rows])
    order = list(data.groupby("Reason")["Leads"].sum().sort_values(ascending=False).index)
    return (
        alt.Chart(data, title=title)
        .mark_bar()
        .encode(
            y=alt.Y("Reason:N", sort=order, title=None, axis=AXIS),
            x=alt.X("sum(Leads):Q", title="Leads"),
            color=alt.Color(
                "Area:N", scale=_group_scale(colors, list(data["Area"])), title="Service area"
            ),
            tooltip=["Reason", "Area", "Leads"],
        )
        .properties(height=alt.Step(26))
    )
