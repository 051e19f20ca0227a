"""The managers' pipeline dashboard: every figure, computed in SQL, the same on both backends.

What is counted (read this before reading a number on the dashboard):

- **Cohort.** A period selects the leads whose inquiry (``Lead.created_at``) falls in it,
  by calendar day in the clinic's time zone: a day runs from local midnight to the next
  local midnight, and the bounds are converted to UTC before they reach SQL, so a lead at
  2026-03-02 04:30 UTC belongs to Sunday 2026-03-01 in New York. Every figure except the
  weekly trend and the team's open/overdue counts describes what became of that cohort.
- **Spam.** Leads whose stage is *spam* now are left out of every figure (a spam lead that
  was reopened is a real lead again and counts).
- **Filters.** Service area, service, source and owner narrow every figure, the trend and
  the team table included. Leads placed in no service area (out of area, or nothing to place
  them by) form the area "Out of area" (key 0); leads with no service, "Service not given"
  (key 0); leads with no owner, "Unassigned" (key 0).
- **Reached a stage.** A lead reached a stage when its first-reached stamp
  (``Lead.reached_<stage>_at``, kept by ``crm.pipeline.transition``) is set; every lead
  reached *New inquiry*. A lead that skipped a stage did not reach it, and a lead that went
  back and forward again is counted once.
- **Durations** are whole seconds between the two timestamps, each truncated to the second.
- **Medians and percentiles** use the nearest-rank method: the p-th percentile of n sorted
  values is the value at 1-based rank ceil(p * n). The median is the 50th percentile, the
  lower middle value when n is even. Both backends compute it with ROW_NUMBER() and
  COUNT() windows over integers, so SQLite and PostgreSQL return the same value.
- **Rates** are ratios of two counts (None when the denominator is 0).

The CLI (``python -m crm metrics``) and the page call the same functions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Engine,
    Integer,
    Select,
    Table,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
    values,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session
from sqlmodel.sql.sqltypes import UTCDateTime

from crm import catalog
from crm.access import Actor, Perm, require
from crm.enums import FUNNEL, Source, Stage
from crm.errors import NotFound
from crm.models import Lead, StageChange, User
from crm.pipeline import REACHED_COLUMN

LEAD: Table = Lead.__table__  # type: ignore[attr-defined]
CHANGE: Table = StageChange.__table__  # type: ignore[attr-defined]
L = LEAD.c

INFUSED = REACHED_COLUMN[Stage.INFUSION_COMPLETED]
MEDIAN = Fraction(1, 2)
P90 = Fraction(9, 10)
DAY_SECONDS = 86_400

OUT_OF_AREA_LABEL = "Out of area"
NO_SERVICE_LABEL = "Service not given"
UNASSIGNED_LABEL = "Unassigned"
ALL_LABEL = "All leads"

# --- Colours: one palette, used by every chart so a stage or an area keeps its colour --------

STAGE_COLORS: dict[Stage, str] = {
    Stage.NEW: "#9ecae1",
    Stage.CONTACTED: "#6baed6",
    Stage.CONSULT_SCHEDULED: "#4292c6",
    Stage.CONSULT_COMPLETED: "#2171b5",
    Stage.SCREENING: "#74c476",
    Stage.CLEARED: "#41ab5d",
    Stage.INFUSION_SCHEDULED: "#238b45",
    Stage.INFUSION_COMPLETED: "#005a32",
    Stage.LOST: "#fd8d3c",
    Stage.NOT_ELIGIBLE: "#d94801",
    Stage.SPAM: "#bdbdbd",
}
# Service areas take these in catalogue order; "Out of area" is always grey, the total black.
GROUP_PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
)
NONE_COLOR = "#8c8c8c"
ALL_COLOR = "#222222"


def group_colors(groups: Sequence[tuple[int | str, str]]) -> dict[str, str]:
    """Label -> colour for (key, label) groups in display order; key 0 / "" is grey."""
    colors: dict[str, str] = {ALL_LABEL: ALL_COLOR}
    i = 0
    for key, label in groups:
        if key in (0, ""):
            colors[label] = NONE_COLOR
        else:
            colors[label] = GROUP_PALETTE[i % len(GROUP_PALETTE)]
            i += 1
    return colors


# --- Periods and filters ------------------------------------------------------------------------


class Period(StrEnum):
    THIS_WEEK = "this_week"
    LAST_30_DAYS = "last_30_days"
    THIS_QUARTER = "this_quarter"
    CUSTOM = "custom"

    @property
    def label(self) -> str:
        return {
            Period.THIS_WEEK: "This week",
            Period.LAST_30_DAYS: "Last 30 days",
            Period.THIS_QUARTER: "This quarter",
            Period.CUSTOM: "Custom range",
        }[self]


def period_dates(period: Period | str, today: date) -> tuple[date, date]:
    """First and last day (inclusive, local) of a preset period that ends today.

    This week starts on Monday; last 30 days is today and the 29 days before; this quarter
    starts on the first day of January, April, July or October.
    """
    p = Period(period)
    if p == Period.THIS_WEEK:
        return today - timedelta(days=today.weekday()), today
    if p == Period.LAST_30_DAYS:
        return today - timedelta(days=29), today
    if p == Period.THIS_QUARTER:
        return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today
    raise ValueError("A custom period has no preset dates")


def local_today(tz: str, now: datetime | None = None) -> date:
    """Today's date in the clinic's time zone."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(tz)).date()


def local_midnight_utc(day: date, tz: str) -> datetime:
    """The UTC instant at which `day` starts in zone `tz`."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


# What the dashboard is looking at: a cohort period plus the narrowing filters (plain data,
# hashable, so the page can cache results keyed by it).
@dataclass(frozen=True)
class Filters:
    start: date
    end: date  # inclusive
    tz: str = "America/New_York"
    areas: tuple[int, ...] = ()  # 0 = out of area
    services: tuple[int, ...] = ()  # 0 = service not given
    sources: tuple[str, ...] = ()
    owners: tuple[int, ...] = ()  # 0 = unassigned

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("The period ends before it starts")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The same filters over the period of the same length just before this one."""
        return replace(
            self,
            start=self.start - timedelta(days=self.days),
            end=self.start - timedelta(days=1),
        )

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[from, to) in UTC: local midnight of the first day to local midnight after the last."""
        return (
            local_midnight_utc(self.start, self.tz),
            local_midnight_utc(self.end + timedelta(days=1), self.tz),
        )


def _key_in(col: Any, keys: tuple[int, ...]) -> ColumnElement[bool]:
    """`col IN keys`, where key 0 stands for NULL."""
    real = [k for k in keys if k != 0]
    conds: list[ColumnElement[bool]] = []
    if real:
        conds.append(col.in_(real))
    if 0 in keys:
        conds.append(col.is_(None))
    return or_(*conds)


def _conditions(f: Filters, *, cohort: bool = True) -> list[ColumnElement[bool]]:
    """WHERE terms on `lead`: not spam, the narrowing filters and (if cohort) the period."""
    conds: list[ColumnElement[bool]] = [L.stage != Stage.SPAM.value]
    if cohort:
        lo, hi = f.utc_bounds()
        conds += [L.created_at >= lo, L.created_at < hi]
    if f.areas:
        conds.append(_key_in(L.service_area_id, f.areas))
    if f.services:
        conds.append(_key_in(L.service_id, f.services))
    if f.sources:
        conds.append(L.source.in_(list(f.sources)))
    if f.owners:
        conds.append(_key_in(L.owner_id, f.owners))
    return conds


# --- SQL helpers ----------------------------------------------------------------------------------


class epoch_seconds(FunctionElement[int]):
    """Whole seconds since 1970 of a stored UTC timestamp, truncated (same on both backends)."""

    type = BigInteger()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff'. SQLite rounds a fraction to milliseconds (so
    # 59.9995 becomes the next second): cut it off to truncate like PostgreSQL's date_trunc.
    (arg,) = element.clauses
    whole = func.substr(arg, 1, 19)
    if sqlite3.sqlite_version_info >= (3, 38):
        return compiler.process(func.unixepoch(whole), **kw)  # twice as fast as strftime
    return compiler.process(cast(func.strftime("%s", whole), Integer), **kw)


@compiles(epoch_seconds)
def _epoch_default(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    (arg,) = element.clauses
    return (
        f"CAST(EXTRACT(EPOCH FROM date_trunc('second', {compiler.process(arg, **kw)})) AS BIGINT)"
    )


def seconds_between(start: Any, end: Any) -> ColumnElement[int]:
    """end - start in whole seconds (each truncated to the second)."""
    return epoch_seconds(end) - epoch_seconds(start)  # type: ignore[return-value]


def nearest_rank(n: int, p: Fraction) -> int:
    """The 1-based rank of the p-th percentile of n values: ceil(p * n)."""
    return (n * p.numerator + p.denominator - 1) // p.denominator


# Percentiles of one group: how many values there were, and the value at each wanted point.
@dataclass(frozen=True)
class Spread:
    n: int
    at: dict[Fraction, int]


def _materialized(cte: CTE) -> CTE:
    """`cte` computed once and kept (AS MATERIALIZED: PostgreSQL 12+, SQLite 3.35+), so that the
    planner cannot fold it into the next join and rescan its source there for every row."""
    cte = cte.prefix_with("MATERIALIZED", dialect="postgresql")
    if sqlite3.sqlite_version_info >= (3, 35):
        cte = cte.prefix_with("MATERIALIZED", dialect="sqlite")
    return cte


def _rank(n: Any, p: Fraction) -> Any:
    """ceil(p * n) in SQL integer arithmetic (n an integer column or expression)."""
    return (n * p.numerator + (p.denominator - 1)) // p.denominator


def _percentiles(
    session: Session,
    values_query: Select,  # type: ignore[type-arg]
    points: Sequence[Fraction] = (MEDIAN,),
    bucket: int = 3600,
) -> dict[tuple[Any, ...], Spread]:
    """Nearest-rank percentiles of integer column `v` per group of the query's other columns.

    One statement, in two steps so that only a few rows are ever ranked one by one: count the
    values per group and `bucket`-wide band of v (a small histogram), find from the running
    counts the band that holds each wanted rank, then number only the rows of those bands.
    Exact, and the same on both backends (integer arithmetic throughout).
    """
    sub = values_query.subquery()
    keys = [c for c in sub.c if c.name != "v"]
    d = select(*keys, sub.c.v, (sub.c.v // bucket).label("b")).cte("d")
    dk = [d.c[k.name] for k in keys]
    h = select(*dk, d.c.b, func.count().label("c")).group_by(*dk, d.c.b).subquery()
    hk = [h.c[k.name] for k in keys]
    part = hk or None
    running = cast(func.sum(h.c.c).over(partition_by=part, order_by=h.c.b), BigInteger)
    cum = select(
        *hk,
        h.c.b,
        (running - h.c.c).label("before"),
        cast(func.sum(h.c.c).over(partition_by=part), BigInteger).label("n"),
        h.c.c,
    ).subquery()
    holds = or_(
        *(and_(cum.c.before < _rank(cum.c.n, p), _rank(cum.c.n, p) <= cum.c.before + cum.c.c)
          for p in points)
    )  # fmt: skip
    # The few (group, band) pairs that hold a wanted rank, and the rows of those bands only
    # (an IN over a subquery: both backends probe a small hashed set per row).
    t = select(cum).where(holds).cte("t")
    tk = [t.c[k.name] for k in keys]
    rows = _materialized(select(d).where(tuple_(*dk, d.c.b).in_(select(*tk, t.c.b))).cte("f"))
    rk = [rows.c[k.name] for k in keys]
    ranked = (
        select(
            *rk,
            rows.c.v,
            (
                t.c.before + func.row_number().over(partition_by=[*rk, rows.c.b], order_by=rows.c.v)
            ).label("r"),
            t.c.n,
        )
        .select_from(
            rows.join(t, and_(*(a == b for a, b in zip(rk, tk, strict=True)), rows.c.b == t.c.b))
        )
        .subquery()
    )
    at_rank = [ranked.c.r == _rank(ranked.c.n, p) for p in points]
    out: dict[tuple[Any, ...], Spread] = {}
    for row in session.connection().execute(select(ranked).where(or_(*at_rank))):
        *group, v, r, n = tuple(row)
        spread = out.setdefault(tuple(group), Spread(n=int(n), at={}))
        for p in points:
            if nearest_rank(int(n), p) == r:
                spread.at[p] = int(v)
    return out


def _nth(values: CTE, column_name: str, p: Fraction = MEDIAN) -> Any:
    """A scalar subquery: the nearest-rank percentile of one column of `values` (NULLs left out).

    ORDER BY v LIMIT 1 OFFSET rank - 1 with the rank counted in the same statement (one
    snapshot): cheaper than numbering every row with a window function.
    """
    v = values.c[column_name]
    n = select(func.count(v)).scalar_subquery()
    # ceil(p * n) - 1 == (n * num - 1) // den for n >= 1; for n = 0 both backends truncate
    # -1 // den to 0 (toward zero): never a negative OFFSET, and n appears once.
    offset = (n * p.numerator - 1) // p.denominator
    return select(v).where(v.is_not(None)).order_by(v).limit(1).offset(offset).scalar_subquery()


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _count_if(cond: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count().filter(cond)


def _reached(stage: Stage) -> ColumnElement[bool]:
    """The lead reached `stage` at least once (every lead reached NEW)."""
    if stage == Stage.NEW:
        return L.id.is_not(None)
    return L[REACHED_COLUMN[stage]].is_not(None)


def _days(seconds: int | None) -> float | None:
    return None if seconds is None else seconds / DAY_SECONDS


# --- Headline figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Headline:
    """The headline figures of one cohort; each field's comment says what it counts."""

    # Leads whose inquiry falls in the period (spam excluded).
    inquiries: int
    # Leads with a first contact (first_response_at set).
    first_contacted: int
    # Median seconds from inquiry to first contact (first_response_at - created_at), over
    # first-contacted leads only: a lead not contacted yet has no time to count.
    first_contact_median_s: int | None
    # Leads with a first-response target (first_response_due_at set): the denominator of the
    # share within target. A lead not contacted yet counts here but not in the numerator, so
    # the share of a period that includes today can still rise.
    with_target: int
    # Leads first contacted at or before their target (first_response_at <= first_response_due_at).
    within_target: int
    # Leads that reached consult scheduled, consult completed, screening, cleared and first
    # infusion completed (module docstring: "reached").
    consult_scheduled: int
    consult_completed: int
    # Leads that reached both consult scheduled and consult completed (show-rate numerator).
    consult_shown: int
    screening: int
    cleared: int
    # Leads that reached both screening and cleared (clear-rate numerator).
    screening_cleared: int
    first_infusions: int
    # Median seconds from inquiry to first infusion completed, over converted leads only.
    first_infusion_median_s: int | None
    # Leads flagged urgent (crisis wording); of those, first-contacted and their median seconds.
    urgent: int
    urgent_first_contacted: int
    urgent_first_contact_median_s: int | None

    @property
    def within_target_share(self) -> float | None:
        """within_target / with_target."""
        return _rate(self.within_target, self.with_target)

    @property
    def consult_booked_rate(self) -> float | None:
        """consult_scheduled / inquiries."""
        return _rate(self.consult_scheduled, self.inquiries)

    @property
    def consult_show_rate(self) -> float | None:
        """Of the leads that reached consult scheduled, the share that reached consult completed."""
        return _rate(self.consult_shown, self.consult_scheduled)

    @property
    def screening_clear_rate(self) -> float | None:
        """Of the leads that reached screening, the share that reached cleared."""
        return _rate(self.screening_cleared, self.screening)

    @property
    def conversion_rate(self) -> float | None:
        """first_infusions / inquiries: inquiry to first infusion completed."""
        return _rate(self.first_infusions, self.inquiries)

    @property
    def first_infusion_median_days(self) -> float | None:
        return _days(self.first_infusion_median_s)

    def as_dict(self) -> dict[str, Any]:
        """The counts, medians and derived rates, JSON-ready."""
        data = asdict(self)
        for name in (
            "within_target_share",
            "consult_booked_rate",
            "consult_show_rate",
            "screening_clear_rate",
            "conversion_rate",
            "first_infusion_median_days",
        ):
            data[name] = getattr(self, name)
        return data


def headline(session: Session, f: Filters) -> Headline:
    """The headline figures of the cohort `f`: one query of counts, one of medians."""
    where = _conditions(f)
    contacted = L.first_response_at.is_not(None)
    infused = _reached(Stage.INFUSION_COMPLETED)
    counts = (
        session.connection()
        .execute(
            select(
                func.count(),
                _count_if(contacted),
                _count_if(L.first_response_due_at.is_not(None)),
                _count_if(L.first_response_at <= L.first_response_due_at),
                _count_if(_reached(Stage.CONSULT_SCHEDULED)),
                _count_if(_reached(Stage.CONSULT_COMPLETED)),
                _count_if(
                    and_(_reached(Stage.CONSULT_SCHEDULED), _reached(Stage.CONSULT_COMPLETED))
                ),
                _count_if(_reached(Stage.SCREENING)),
                _count_if(_reached(Stage.CLEARED)),
                _count_if(and_(_reached(Stage.SCREENING), _reached(Stage.CLEARED))),
                _count_if(infused),
                _count_if(L.urgent),
                _count_if(and_(L.urgent, contacted)),
            ).where(*where)
        )
        .one()
    )
    n = [int(x or 0) for x in counts]
    # The three medians in one statement over the cohort's durations, read from the index once.
    to_contact = seconds_between(L.created_at, L.first_response_at)
    durations = _materialized(
        select(
            to_contact.label("contact"),
            case((L.urgent, to_contact)).label("urgent"),
            seconds_between(L.created_at, L[INFUSED]).label("infusion"),
        )
        .where(*where, or_(contacted, infused))
        .cte("durations")
    )
    medians = (
        session.connection()
        .execute(select(*(_nth(durations, name) for name in ("contact", "urgent", "infusion"))))
        .one()
    )

    def median(i: int) -> int | None:
        return None if medians[i] is None else int(medians[i])

    return Headline(
        inquiries=n[0],
        first_contacted=n[1],
        first_contact_median_s=median(0),
        with_target=n[2],
        within_target=n[3],
        consult_scheduled=n[4],
        consult_completed=n[5],
        consult_shown=n[6],
        screening=n[7],
        cleared=n[8],
        screening_cleared=n[9],
        first_infusions=n[10],
        first_infusion_median_s=median(2),
        urgent=n[11],
        urgent_first_contacted=n[12],
        urgent_first_contact_median_s=median(1),
    )


# --- Funnel -------------------------------------------------------------------------------------


class By(StrEnum):
    """What the funnel is broken down by."""

    SERVICE_AREA = "service_area"
    SERVICE = "service"
    SOURCE = "source"

    @property
    def label(self) -> str:
        return {By.SERVICE_AREA: "Service area", By.SERVICE: "Service", By.SOURCE: "Source"}[self]


def source_label(value: str) -> str:
    return value.replace("_", " ").capitalize()


def _group_key(by: By) -> ColumnElement[Any]:
    if by == By.SERVICE_AREA:
        return func.coalesce(L.service_area_id, 0)
    if by == By.SERVICE:
        return func.coalesce(L.service_id, 0)
    return L.source


def groups(session: Session, by: By | str) -> list[tuple[int | str, str]]:
    """Every (key, label) of a breakdown in display order; key 0 is "none" (last)."""
    by = By(by)
    if by == By.SERVICE_AREA:
        return [*catalog.areas(session), (0, OUT_OF_AREA_LABEL)]
    if by == By.SERVICE:
        return [*catalog.services(session, active_only=False), (0, NO_SERVICE_LABEL)]
    return [(s.value, source_label(s.value)) for s in Source]


# One stage of one group's funnel.
@dataclass(frozen=True)
class FunnelRow:
    group_key: int | str | None  # None for the total over all groups
    group: str
    stage: str
    stage_label: str
    reached: int  # leads that reached this stage at least once
    previous: int  # leads that reached the previous stage (inquiries for NEW)
    from_previous: int  # leads that reached both the previous stage and this one
    inquiries: int  # the group's cohort size

    @property
    def step_rate(self) -> float | None:
        """from_previous / previous: of those who reached the stage before, the share who got here."""
        return _rate(self.from_previous, self.previous)

    @property
    def overall_rate(self) -> float | None:
        """reached / inquiries."""
        return _rate(self.reached, self.inquiries)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "step_rate": self.step_rate, "overall_rate": self.overall_rate}


def funnel(session: Session, f: Filters, by: By | str = By.SERVICE_AREA) -> list[FunnelRow]:
    """How many leads of the cohort reached each funnel stage, per group and in total.

    Rows come stage by stage for the total first, then for each group with leads, in the
    groups' display order.
    """
    by = By(by)
    key = _group_key(by).label("k")
    cols: list[ColumnElement[Any]] = []
    for prev, stage in zip(FUNNEL, FUNNEL[1:], strict=False):
        cols.append(_count_if(_reached(stage)))
        cols.append(_count_if(and_(_reached(prev), _reached(stage))))
    rows = (
        session.connection()
        .execute(select(key, func.count(), *cols).where(*_conditions(f)).group_by(key))
        .all()
    )
    by_key = {row[0]: [int(x) for x in row[1:]] for row in rows}
    totals = [sum(vals[i] for vals in by_key.values()) for i in range(1 + len(cols))]
    labels = groups(session, by)
    known = {k for k, _ in labels}
    labels += [(k, f"#{k}") for k in by_key if k not in known]  # e.g. a removed source value
    out: list[FunnelRow] = []
    for gkey, glabel, vals in [(None, ALL_LABEL, totals)] + [
        (k, lbl, by_key[k]) for k, lbl in labels if k in by_key
    ]:
        inquiries = vals[0]
        previous = inquiries
        out.append(
            FunnelRow(
                gkey,
                glabel,
                Stage.NEW.value,
                Stage.NEW.label,
                inquiries,
                inquiries,
                inquiries,
                inquiries,
            )
        )
        for i, stage in enumerate(FUNNEL[1:]):
            reached, both = vals[1 + 2 * i], vals[2 + 2 * i]
            out.append(
                FunnelRow(
                    gkey, glabel, stage.value, stage.label, reached, previous, both, inquiries
                )
            )
            previous = reached
    return out


# --- Weekly trend -------------------------------------------------------------------------------


# One week of one service area: inquiries that week, first infusions completed that week.
@dataclass(frozen=True)
class TrendRow:
    week_start: date  # Monday, local
    area_key: int
    area: str
    inquiries: int
    first_infusions: int


def week_starts(today: date, weeks: int) -> list[date]:
    """The Mondays of the last `weeks` weeks, the current week last."""
    monday = today - timedelta(days=today.weekday())
    return [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]


def trend(session: Session, f: Filters, *, today: date, weeks: int = 52) -> list[TrendRow]:
    """Weekly inquiries (by inquiry week) and first infusions (by the week the first infusion
    was completed) per service area, over the `weeks` weeks ending with today's week.

    Weeks run Monday 00:00 to Monday 00:00 local time. The period filter does not apply (the
    trend always shows the last weeks), the other filters do. Every area with any lead in
    the window gets a row for every week (zeros included).
    """
    starts = week_starts(today, weeks)
    bounds = [
        (i, local_midnight_utc(d, f.tz), local_midnight_utc(d + timedelta(days=7), f.tz))
        for i, d in enumerate(starts)
    ]
    w = (
        values(
            column("i", Integer), column("s", UTCDateTime()), column("e", UTCDateTime()), name="w"
        )
        .data(bounds)
        .cte("w")
    )
    where = _conditions(f, cohort=False)
    labels = groups(session, By.SERVICE_AREA)
    keys = [int(k) for k, _ in labels if not f.areas or k in f.areas]

    # One index range count per (week, area) instead of grouping every lead of the year: the
    # area-first indexes hand each count its rows already in place, with no temporary b-tree.
    def weekly(
        area_test: Callable[[Any], ColumnElement[bool]], area: Any, areas: Any = None
    ) -> Select:  # type: ignore[type-arg]
        def count(stamp: Any) -> Any:
            return (
                select(func.count())
                .where(area_test(area), stamp >= w.c.s, stamp < w.c.e, *where)
                .scalar_subquery()
            )

        # Every week times every area, on purpose: an explicit cross join says so.
        grid = w.join(areas, true()) if areas is not None else w
        return select(w.c.i, area, count(L.created_at), count(L[INFUSED])).select_from(grid)

    parts = []
    real = [k for k in keys if k != 0]
    if real:
        a = values(column("a", Integer), name="a").data([(k,) for k in real]).cte("a")
        parts.append(weekly(lambda x: L.service_area_id == x, a.c.a, a))
    if 0 in keys:
        parts.append(weekly(lambda _x: L.service_area_id.is_(None), literal(0)))
    counts: dict[tuple[int, int], list[int]] = {}
    if parts:
        for i, k, inquiries, infusions in session.connection().execute(union_all(*parts)):
            if inquiries or infusions:
                counts[(int(k), int(i))] = [int(inquiries), int(infusions)]
    areas_seen = {a for a, _ in counts}
    out: list[TrendRow] = []
    for key, label in labels:
        if key not in areas_seen:
            continue
        for i, start in enumerate(starts):
            inq, inf = counts.get((int(key), i), [0, 0])
            out.append(TrendRow(start, int(key), label, inq, inf))
    return out


# --- Time in stage ------------------------------------------------------------------------------


# How long the cohort's leads stayed in one stage before moving on (finished stays only).
@dataclass(frozen=True)
class StageTime:
    stage: str
    stage_label: str
    stays: int
    median_s: int
    p90_s: int

    @property
    def median_days(self) -> float:
        return self.median_s / DAY_SECONDS

    @property
    def p90_days(self) -> float:
        return self.p90_s / DAY_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "median_days": self.median_days, "p90_days": self.p90_days}


def time_in_stage(session: Session, f: Filters) -> list[StageTime]:
    """Median and 90th percentile time in each open funnel stage, from the stage-change log.

    A stay is one StageChange row of a cohort lead leaving that stage (`from_stage`), lasting
    `seconds_in_previous`; a lead that passed a stage twice contributes two stays, and the
    stay a lead is in now (not finished) is not counted. Stays in lost, not eligible and
    spam (before a reopening) are left out.
    """
    # NOT IN, not IN (the funnel's stages): an IN list would make SQLite seek the stay index
    # once per listed stage for every lead, instead of once per lead.
    left_out = [Stage.INFUSION_COMPLETED, Stage.LOST, Stage.NOT_ELIGIBLE, Stage.SPAM]
    sc = CHANGE.c
    query = (
        select(sc.from_stage.label("k"), sc.seconds_in_previous.label("v"))
        .select_from(CHANGE.join(LEAD, sc.lead_id == L.id))
        .where(
            *_conditions(f),
            sc.from_stage.not_in([s.value for s in left_out]),
            sc.seconds_in_previous.is_not(None),
        )
    )
    spreads = _percentiles(session, query, (MEDIAN, P90), bucket=3600)  # stays: hours to weeks
    return [
        StageTime(s.value, s.label, sp.n, sp.at[MEDIAN], sp.at[P90])
        for s in FUNNEL
        if (sp := spreads.get((s.value,)))
    ]


# --- Why leads leave ----------------------------------------------------------------------------


# How many cohort leads are lost / not eligible now, for one reason in one service area.
@dataclass(frozen=True)
class ReasonRow:
    outcome: str  # Stage.LOST or Stage.NOT_ELIGIBLE
    outcome_label: str
    area_key: int
    area: str
    reason: str
    leads: int


NO_REASON_LABEL = "(no reason recorded)"


def leave_reasons(session: Session, f: Filters) -> list[ReasonRow]:
    """Reasons of the cohort's leads that are lost or not eligible now, by service area.

    Read from `Lead.closed_reason` of leads whose current stage is lost or not eligible: a
    lead that was lost, came back and went on is not counted as lost. Sorted by outcome, then
    most frequent reason first.
    """
    area = func.coalesce(L.service_area_id, 0).label("a")
    reason = func.coalesce(L.closed_reason, "").label("r")
    # "Not one of the other stages" rather than "IN (lost, not eligible)": with an IN list
    # SQLite walks the stage index over every lost lead ever, not the period's cohort
    # (ix_lead_cohort covers this query).
    others = [s.value for s in Stage if s not in (Stage.LOST, Stage.NOT_ELIGIBLE)]
    query = (
        select(L.stage, area, reason, func.count())
        .where(*_conditions(f), L.stage.not_in(others))
        .group_by(L.stage, area, reason)
    )
    names = dict(groups(session, By.SERVICE_AREA))
    rows = [
        ReasonRow(
            stage,
            Stage(stage).label,
            int(a),
            str(names.get(int(a), f"#{a}")),
            r or NO_REASON_LABEL,
            int(n),
        )
        for stage, a, r, n in session.connection().execute(query)
    ]
    order = {k: i for i, (k, _) in enumerate(groups(session, By.SERVICE_AREA))}
    return sorted(
        rows,
        key=lambda r: (
            r.outcome != Stage.LOST.value,
            -r.leads,
            r.reason,
            order.get(r.area_key, 99),
        ),
    )


# --- Team ---------------------------------------------------------------------------------------


# One care-team member's workload and speed.
@dataclass(frozen=True)
class TeamRow:
    owner_id: int  # 0 = unassigned
    owner: str
    open: int  # leads open now (any inquiry date)
    overdue: int  # of those, due before now
    responded: int  # cohort leads of theirs with a first contact
    first_response_median_s: int | None  # median over `responded`

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def team(session: Session, f: Filters, *, now: datetime) -> list[TeamRow]:
    """Per owner: open and overdue leads now, and the median first-response time in the cohort.

    Open = the lead's stage is open now, whatever its inquiry date; overdue = open and its
    `due_at` (first-response target, then next action) is before `now`. The median is over the
    cohort's leads with a first contact, by their current owner. Active care-team members with
    nothing show as zeros; leads with no owner show as "Unassigned".
    """
    owner = func.coalesce(L.owner_id, 0).label("k")
    load = {
        int(k): (int(o), int(d))
        for k, o, d in session.connection().execute(
            select(owner, func.count(), _count_if(L.due_at < now))
            .where(*_conditions(f, cohort=False), L.is_open)
            .group_by(owner)
        )
    }
    speed = _percentiles(
        session,
        select(owner, seconds_between(L.created_at, L.first_response_at).label("v")).where(
            *_conditions(f), L.first_response_at.is_not(None)
        ),
        bucket=300,  # first contacts take minutes to hours: 5-minute bands
    )
    ids = set(load) | {int(k[0]) for k in speed}
    people = (
        session.connection()
        .execute(
            select(User.id, User.name, User.email, User.role, User.active)  # type: ignore[call-overload]
        )
        .all()
    )
    names = {int(i): (name or email) for i, name, email, _role, _active in people}
    if not f.owners:
        ids |= {int(i) for i, _n, _e, role, active in people if role == "care_team" and active}
    else:
        ids &= set(f.owners) | ({0} if 0 in f.owners else set())
        ids |= {o for o in f.owners if o in names}
    rows = []
    for k in ids:
        sp = speed.get((k,))
        o, d = load.get(k, (0, 0))
        rows.append(
            TeamRow(
                k,
                names.get(k, f"#{k}") if k else UNASSIGNED_LABEL,
                o,
                d,
                sp.n if sp else 0,
                sp.at.get(MEDIAN) if sp else None,
            )
        )
    return sorted(rows, key=lambda r: (r.owner_id == 0, r.owner.lower()))


# --- Everything the page shows, and the CLI report -----------------------------------------------


# Everything the page shows for one filter set (plain data: the page caches it).
@dataclass(frozen=True)
class Dashboard:
    filters: Filters
    current: Headline
    previous: Headline
    funnel: list[FunnelRow]  # by service area
    trend: list[TrendRow]
    stage_times: list[StageTime]
    reasons: list[ReasonRow]
    team: list[TeamRow]


def dashboard(
    *, engine: Engine, filters: Filters, today: date, now: datetime, workers: int = 4
) -> Dashboard:
    """Every section of the page for `filters`, its queries run side by side.

    Each section is one call of the functions above on its own connection (SQLite in WAL
    mode and PostgreSQL both serve concurrent readers, and the database works outside the
    GIL), so the page waits for the slowest section rather than for the sum of them.
    """
    sections: dict[str, Callable[[Session], Any]] = {
        "current": lambda s: headline(s, filters),
        "previous": lambda s: headline(s, filters.previous()),
        "funnel": lambda s: funnel(s, filters, By.SERVICE_AREA),
        "trend": lambda s: trend(s, filters, today=today),
        "stage_times": lambda s: time_in_stage(s, filters),
        "reasons": lambda s: leave_reasons(s, filters),
        "team": lambda s: team(s, filters, now=now),
    }

    def run(section: Callable[[Session], Any]) -> Any:
        with Session(engine) as s:
            return section(s)

    # Slowest first, so the long ones start at once when there are fewer workers than sections.
    order = ["stage_times", "current", "previous", "team", "trend", "funnel", "reasons"]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dashboard") as pool:
        futures = {name: pool.submit(run, sections[name]) for name in order}
        return Dashboard(filters=filters, **{name: f.result() for name, f in futures.items()})


def authorize(actor: Actor | None) -> Actor:
    """The dashboard shows aggregates only, but it is still a manager's view."""
    return require(actor, Perm.DASHBOARD)


def owners(session: Session) -> list[tuple[int, str]]:
    """Staff who can own leads, for the owner filter: (id, name), plus (0, Unassigned)."""
    rows = session.connection().execute(
        select(User.id, User.name, User.email).where(User.active).order_by(User.name)  # type: ignore[call-overload, arg-type]
    )
    return [(int(i), n or e) for i, n, e in rows] + [(0, UNASSIGNED_LABEL)]


def report(session: Session, f: Filters, by: By | str = By.SERVICE_AREA) -> dict[str, Any]:
    """The funnel and headline figures (this period and the one before) as JSON-ready data."""
    prev = f.previous()
    return {
        "period": {"from": f.start.isoformat(), "to": f.end.isoformat(), "timezone": f.tz},
        "previous_period": {"from": prev.start.isoformat(), "to": prev.end.isoformat()},
        "filters": {
            "areas": list(f.areas),
            "services": list(f.services),
            "sources": list(f.sources),
            "owners": list(f.owners),
        },
        "by": By(by).value,
        "headline": headline(session, f).as_dict(),
        "previous": headline(session, prev).as_dict(),
        "funnel": [row.as_dict() for row in funnel(session, f, by)],
    }


def _resolve(kind: str, text: str, known: list[tuple[int, str]], none_words: set[str]) -> int:
    wanted = text.strip().lower()
    if wanted in none_words or wanted == "0":
        return 0
    for key, label in known:
        if wanted == str(key) or wanted == label.lower():
            return key
    names = ", ".join(label for _k, label in known)
    raise NotFound(f"No {kind} {text!r}. Known: {names}")


def resolve_filters(
    session: Session,
    *,
    start: date,
    end: date,
    tz: str,
    areas: Sequence[str] = (),
    services: Sequence[str] = (),
    sources: Sequence[str] = (),
    owners: Sequence[str] = (),
) -> Filters:
    """Filters from names or ids as a person types them (the CLI's options); NotFound if unknown."""
    area_list = catalog.areas(session)
    service_list = catalog.services(session, active_only=False)
    people = session.connection().execute(select(User.id, User.email))  # type: ignore[call-overload]
    owner_list = [(int(i), str(e)) for i, e in people]
    for s in sources:
        if s not in {x.value for x in Source}:
            raise NotFound(f"No source {s!r}. Known: {', '.join(x.value for x in Source)}")
    return Filters(
        start=start,
        end=end,
        tz=tz,
        areas=tuple(_resolve("service area", a, area_list, {"out", "out of area"}) for a in areas),
        services=tuple(_resolve("service", s, service_list, {"none"}) for s in services),
        sources=tuple(sources),
        owners=tuple(_resolve("staff member", o, owner_list, {"unassigned"}) for o in owners),
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def duration_text(seconds: int | float | None) -> str:
    """A duration as people read it: 45s, 12m, 3.5h, 2.0d ("-" for none)."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < DAY_SECONDS:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / DAY_SECONDS:.1f}d"


def report_text(data: dict[str, Any]) -> str:
    """`report()` as a plain-text summary for the terminal."""
    cur, prev = data["headline"], data["previous"]
    period, before = data["period"], data["previous_period"]
    lines = [
        f"Inquiries {period['from']} to {period['to']} ({period['timezone']}), "
        f"previous period {before['from']} to {before['to']}",
        "",
    ]
    figures: list[tuple[str, str, Callable[[Any], str]]] = [
        ("New inquiries", "inquiries", str),
        ("Median time to first contact", "first_contact_median_s", duration_text),
        ("Contacted within target", "within_target_share", _pct),
        ("Consult booked rate", "consult_booked_rate", _pct),
        ("Consult show rate", "consult_show_rate", _pct),
        ("Screening clear rate", "screening_clear_rate", _pct),
        ("Inquiry to first infusion", "conversion_rate", _pct),
        ("Median inquiry to first infusion", "first_infusion_median_s", duration_text),
        ("Urgent leads", "urgent", str),
        ("Urgent: median time to first contact", "urgent_first_contact_median_s", duration_text),
    ]
    for label, key, fmt in figures:
        lines.append(f"{label:<40}{fmt(cur[key]):>10}   (before: {fmt(prev[key])})")
    lines += ["", f"Funnel by {By(data['by']).label.lower()}: reached (step conversion)"]
    group = None
    for row in data["funnel"]:
        if row["group"] != group:
            group = row["group"]
            lines.append(f"  {group}")
        lines.append(
            f"    {row['stage_label']:<28}{row['reached']:>8}  {_pct(row['step_rate']):>7}"
        )
    return "\n".join(lines)
