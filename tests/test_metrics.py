"""Dashboard figures on a hand-built data set whose every number is worked out below.

Clinic time zone America/New_York (EST = UTC-5 until 2026-03-08 02:00, EDT = UTC-4 after).
The period is March 2026 (local); the previous period of the same length is Jan 29 - Feb 28.

March cohort (created_at UTC -> local day), with each lead's journey (times UTC):

L1  Ashburn    web   Anxiety  Alice  03-02 14:00 (03-02)  first contact +600s (target +15m: in)
    contacted 03-02 14:10, consult sched 03-03 14:10, completed 03-05 14:10, screening 03-06 14:10,
    cleared 03-09 14:10, infusion sched 03-10 14:10, infusion completed 03-14 14:00 (12 days)
L2  Ashburn    phone  Anxiety Alice  03-02 04:30 (03-01 23:30 local: first day of March)
    first contact 03-02 14:30 = +36000s, target 13:15 (missed). contacted 03-02 14:30, consult sched
    03-04 14:30, no-show back to contacted 03-05 14:30, consult sched again 03-06 14:30, completed
    03-07 14:30, screening 03-08 14:30, not eligible 03-10 14:30, reopened to screening 03-20 14:30,
    cleared 03-22 14:30, infusion sched 03-23 14:30 (open)
L3  Leesburg   web   PTSD     Bob    03-08 06:30 (03-08 01:30 local, the DST night) urgent
    first contact +300s (in). contacted 03-08 06:35, consult sched 03-08 12:35, lost "Cost" 03-09 12:35
L4  Leesburg   referral PTSD  Bob    03-10 15:00, target 15:15, never contacted (new, overdue)
L5  out of area web  -        -      04-01 03:30 (03-31 23:30 local: last day of March)
    target 04-01 13:15, never contacted; lost "Out of area" 04-01 13:00
L6  Ashburn    import Anxiety Alice  03-15 16:00, first contact +3600s (target +15m: missed)
    skips ahead: not eligible "Pregnancy" 03-16 16:00, reopened to screening 03-18 16:00,
    cleared 03-19 16:00, infusion sched 03-20 16:00, infusion completed 03-25 16:00 (10 days)
L7  Ashburn    spam (urgent, contacted): excluded from every figure
L8  Lansdowne  phone  -       Bob    03-20 13:00, first contact 13:14:59.9 = +899s (in: <= 13:15)
    contacted 03-20 13:15, lost "Unreachable" 03-22 01:15, reopened to contacted 03-25 13:15,
    consult sched 03-26 13:15 (open, overdue since 04-01 12:00)
L9  Leesburg   web   PTSD     -      03-31 15:00 urgent, never contacted (new, overdue)
L10 Lansdowne  web   Anxiety  Alice  03-03 12:00, first contact +1200s (target +15m: missed)
    contacted 03-03 12:20, consult sched 03-04 18:20, completed 03-05 12:20, screening 03-05 18:20,
    not eligible "Cardiovascular disease" 03-07 18:20
L11 Leesburg   web   PTSD     Bob    03-25 14:00, first contact +300s (in)
    contacted 03-25 14:05, lost "Cost" 03-26 14:05

Outside March: P1 Ashburn 03-01 04:30 UTC (02-28 23:30 local, previous period) +1200s (target
+30m: in), contacted, Alice; P2 Ashburn 02-10 15:00 +3000s (target +15m: missed), consult sched,
Bob; X Ashburn 04-01 04:30 UTC (04-01 00:30 local: April) open, Alice. "Now" is 04-02 12:00 UTC.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import Engine, Integer, String, column, values
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from crm import metrics
from crm.enums import Role, Source, Stage
from crm.metrics import By, Filters, Period
from crm.models import Lead, Service, ServiceArea, User
from crm.pipeline import transition
from tests.factories import make_lead, make_user

TZ = "America/New_York"
NOW = datetime(2026, 4, 2, 12, 0, tzinfo=UTC)
MARCH = Filters(start=date(2026, 3, 1), end=date(2026, 3, 31), tz=TZ)
DAY = 86_400


def t(month: int, day: int, hour: int, minute: int = 0, second: float = 0) -> datetime:
    whole = int(second)
    micro = round((second - whole) * 1_000_000)
    return datetime(2026, month, day, hour, minute, whole, micro, tzinfo=UTC)


def journey(
    session: Session,
    created: datetime,
    moves: list[tuple[Stage, datetime, str | None]],
    **fields: object,
) -> Lead:
    source = fields.pop("source", Source.WEB_FORM.value)
    lead = make_lead(session, created_at=created, **fields)
    lead.source = str(source)  # the factory fixes the source; set ours
    for stage, at, reason in moves:
        transition(session=session, lead=lead, to=stage, actor_id=None, reason=reason, at=at)
    session.commit()
    return lead


S = Stage


def build(session: Session) -> dict[str, int]:
    """The data set of the module docstring; returns the ids the tests need."""
    area = {a.name: a.id for a in session.exec(select(ServiceArea)).all()}
    service = {s.name: s.id for s in session.exec(select(Service)).all()}
    alice = make_user(session, name="Alice", role=Role.CARE_TEAM)
    bob = make_user(session, name="Bob", role=Role.CARE_TEAM)
    carol = make_user(session, name="Carol", role=Role.CARE_TEAM)
    make_user(session, name="Manny", role=Role.MANAGER)
    ash, lee, lan = area["Ashburn"], area["Leesburg"], area["Lansdowne"]
    anx, ptsd = service["Anxiety"], service["PTSD"]
    web, phone = Source.WEB_FORM.value, Source.PHONE.value
    A, B = alice.id, bob.id

    def base(created: datetime, contact_s: int | float | None, target_s: int | None = 900) -> dict:
        return {
            "first_response_at": None
            if contact_s is None
            else created + timedelta(seconds=contact_s),
            "first_response_due_at": None
            if target_s is None
            else created + timedelta(seconds=target_s),
        }

    c = t(3, 2, 14)
    journey(
        session, c,
        [(S.CONTACTED, t(3, 2, 14, 10), None), (S.CONSULT_SCHEDULED, t(3, 3, 14, 10), None),
         (S.CONSULT_COMPLETED, t(3, 5, 14, 10), None), (S.SCREENING, t(3, 6, 14, 10), None),
         (S.CLEARED, t(3, 9, 14, 10), None), (S.INFUSION_SCHEDULED, t(3, 10, 14, 10), None),
         (S.INFUSION_COMPLETED, t(3, 14, 14), None)],
        service_area_id=ash, service_id=anx, source=web, owner_id=A, **base(c, 600),
    )  # fmt: skip
    c = t(3, 2, 4, 30)
    journey(
        session, c,
        [(S.CONTACTED, t(3, 2, 14, 30), None), (S.CONSULT_SCHEDULED, t(3, 4, 14, 30), None),
         (S.CONTACTED, t(3, 5, 14, 30), None), (S.CONSULT_SCHEDULED, t(3, 6, 14, 30), None),
         (S.CONSULT_COMPLETED, t(3, 7, 14, 30), None), (S.SCREENING, t(3, 8, 14, 30), None),
         (S.NOT_ELIGIBLE, t(3, 10, 14, 30), "Uncontrolled hypertension"),
         (S.SCREENING, t(3, 20, 14, 30), None), (S.CLEARED, t(3, 22, 14, 30), None),
         (S.INFUSION_SCHEDULED, t(3, 23, 14, 30), None)],
        service_area_id=ash, service_id=anx, source=phone, owner_id=A, due_at=t(4, 3, 12),
        first_response_at=t(3, 2, 14, 30), first_response_due_at=t(3, 2, 13, 15),
    )  # fmt: skip
    c = t(3, 8, 6, 30)
    journey(
        session, c,
        [(S.CONTACTED, t(3, 8, 6, 35), None), (S.CONSULT_SCHEDULED, t(3, 8, 12, 35), None),
         (S.LOST, t(3, 9, 12, 35), "Cost")],
        service_area_id=lee, service_id=ptsd, source=web, owner_id=B, urgent=True, **base(c, 300),
    )  # fmt: skip
    c = t(3, 10, 15)
    journey(
        session, c, [], service_area_id=lee, service_id=ptsd, source=Source.REFERRAL.value,
        owner_id=B, due_at=t(3, 10, 15, 15), **base(c, None),
    )  # fmt: skip
    c = t(4, 1, 3, 30)
    journey(
        session, c, [(S.LOST, t(4, 1, 13), "Out of area")], out_of_area=True, source=web,
        first_response_due_at=t(4, 1, 13, 15),
    )  # fmt: skip
    c = t(3, 15, 16)
    journey(
        session, c,
        [(S.NOT_ELIGIBLE, t(3, 16, 16), "Pregnancy"), (S.SCREENING, t(3, 18, 16), None),
         (S.CLEARED, t(3, 19, 16), None), (S.INFUSION_SCHEDULED, t(3, 20, 16), None),
         (S.INFUSION_COMPLETED, t(3, 25, 16), None)],
        service_area_id=ash, service_id=anx, source=Source.IMPORT.value, owner_id=A, **base(c, 3600),
    )  # fmt: skip
    c = t(3, 12, 10)
    journey(
        session, c, [(S.SPAM, t(3, 12, 11), None)], service_area_id=ash, service_id=anx,
        source=web, owner_id=A, urgent=True, reached_contacted_at=t(3, 12, 10, 5), **base(c, 60),
    )  # fmt: skip
    c = t(3, 20, 13)
    journey(
        session, c,
        [(S.CONTACTED, t(3, 20, 13, 15), None), (S.LOST, t(3, 22, 1, 15), "Unreachable"),
         (S.CONTACTED, t(3, 25, 13, 15), None), (S.CONSULT_SCHEDULED, t(3, 26, 13, 15), None)],
        service_area_id=lan, source=phone, owner_id=B, due_at=t(4, 1, 12), **base(c, 899.9),
    )  # fmt: skip
    c = t(3, 31, 15)
    journey(
        session, c, [], service_area_id=lee, service_id=ptsd, source=web, urgent=True,
        due_at=t(3, 31, 15, 15), **base(c, None),
    )  # fmt: skip
    c = t(3, 3, 12)
    journey(
        session, c,
        [(S.CONTACTED, t(3, 3, 12, 20), None), (S.CONSULT_SCHEDULED, t(3, 4, 18, 20), None),
         (S.CONSULT_COMPLETED, t(3, 5, 12, 20), None), (S.SCREENING, t(3, 5, 18, 20), None),
         (S.NOT_ELIGIBLE, t(3, 7, 18, 20), "Cardiovascular disease")],
        service_area_id=lan, service_id=anx, source=web, owner_id=A, **base(c, 1200),
    )  # fmt: skip
    c = t(3, 25, 14)
    journey(
        session, c, [(S.CONTACTED, t(3, 25, 14, 5), None), (S.LOST, t(3, 26, 14, 5), "Cost")],
        service_area_id=lee, service_id=ptsd, source=web, owner_id=B, **base(c, 300),
    )  # fmt: skip
    # Outside March.
    c = t(3, 1, 4, 30)
    journey(
        session, c, [(S.CONTACTED, t(3, 1, 4, 50), None)], service_area_id=ash, source=web,
        owner_id=A, **base(c, 1200, 1800),
    )  # fmt: skip
    c = t(2, 10, 15)
    journey(
        session, c,
        [(S.CONTACTED, t(2, 10, 15, 50), None), (S.CONSULT_SCHEDULED, t(2, 11, 15), None)],
        service_area_id=ash, source=web, owner_id=B, due_at=t(4, 5, 12), **base(c, 3000),
    )  # fmt: skip
    c = t(4, 1, 4, 30)
    journey(
        session, c, [], service_area_id=ash, source=web, owner_id=A, due_at=t(4, 2, 13),
        **base(c, None),
    )  # fmt: skip
    return {
        "ash": ash, "lee": lee, "lan": lan, "anx": anx, "ptsd": ptsd,
        "alice": A, "bob": B, "carol": carol.id,
    }  # fmt: skip


# --- Periods --------------------------------------------------------------------------------


def test_period_bounds_are_local_midnights_in_utc() -> None:
    assert MARCH.utc_bounds() == (t(3, 1, 5), t(4, 1, 4))  # EST at the start, EDT at the end
    assert MARCH.days == 31
    prev = MARCH.previous()
    assert (prev.start, prev.end) == (date(2026, 1, 29), date(2026, 2, 28))


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (Period.THIS_WEEK, (date(2026, 3, 30), date(2026, 4, 2))),
        (Period.LAST_30_DAYS, (date(2026, 3, 4), date(2026, 4, 2))),
        (Period.THIS_QUARTER, (date(2026, 4, 1), date(2026, 4, 2))),
    ],
)
def test_preset_periods_end_today(period: Period, expected: tuple[date, date]) -> None:
    assert metrics.period_dates(period, date(2026, 4, 2)) == expected


def test_today_is_the_clinic_s_local_date() -> None:
    assert metrics.local_today(TZ, t(4, 2, 3, 59)) == date(2026, 4, 1)
    assert metrics.local_today(TZ, t(4, 2, 4, 0)) == date(2026, 4, 2)


@pytest.mark.parametrize(
    ("n", "p", "rank"),
    [(1, metrics.MEDIAN, 1), (2, metrics.MEDIAN, 1), (5, metrics.MEDIAN, 3), (8, metrics.MEDIAN, 4),
     (10, metrics.P90, 9), (11, metrics.P90, 10), (2, metrics.P90, 2), (5, Fraction(1, 1), 5)],
)  # fmt: skip
def test_nearest_rank_is_ceil_of_p_times_n(n: int, p: Fraction, rank: int) -> None:
    assert metrics.nearest_rank(n, p) == rank


# --- Headline ---------------------------------------------------------------------------------


def test_headline_figures_of_march(session: Session) -> None:
    build(session)
    h = metrics.headline(session, MARCH)
    assert h.inquiries == 10  # L1-L11 without the spam L7
    assert h.first_contacted == 7
    assert (
        h.first_contact_median_s == 899
    )  # 300 300 600 [899] 1200 3600 36000 (L8: 899.9 truncated)
    assert (h.with_target, h.within_target) == (10, 4)  # L1 L3 L8 L11 in; uncontacted count as not
    assert h.within_target_share == 0.4
    assert (h.consult_scheduled, h.consult_completed, h.consult_shown) == (5, 3, 3)
    assert h.consult_booked_rate == 0.5
    assert h.consult_show_rate == 0.6
    assert (h.screening, h.cleared, h.screening_cleared) == (4, 3, 3)
    assert h.screening_clear_rate == 0.75
    assert h.first_infusions == 2
    assert h.conversion_rate == 0.2
    assert h.first_infusion_median_s == 10 * DAY  # lower median of 10 and 12 days
    assert h.first_infusion_median_days == 10.0
    assert (h.urgent, h.urgent_first_contacted, h.urgent_first_contact_median_s) == (2, 1, 300)


def test_headline_figures_of_the_previous_period(session: Session) -> None:
    build(session)
    h = metrics.headline(session, MARCH.previous())
    assert h.inquiries == 2  # P1 (Feb 28, 23:30 local) and P2
    assert h.first_contact_median_s == 1200  # lower median of 1200 and 3000
    assert (h.with_target, h.within_target) == (2, 1)
    assert (h.consult_scheduled, h.consult_show_rate) == (1, 0.0)
    assert h.screening_clear_rate is None
    assert (h.first_infusions, h.conversion_rate, h.first_infusion_median_s) == (0, 0.0, None)
    assert (h.urgent, h.urgent_first_contact_median_s) == (0, None)


def test_an_empty_period_has_zeros_and_no_rates(session: Session) -> None:
    build(session)
    h = metrics.headline(session, Filters(start=date(2025, 1, 1), end=date(2025, 1, 31), tz=TZ))
    assert h.inquiries == 0
    assert h.first_contact_median_s is None
    assert h.consult_booked_rate is None and h.within_target_share is None


@pytest.mark.parametrize(
    ("narrow", "inquiries"),
    [
        ({"areas": ("ash",)}, 3),  # L1 L2 L6
        ({"areas": (0,)}, 1),  # L5, out of area
        ({"areas": ("lee", "lan")}, 6),
        ({"services": ("ptsd",)}, 4),  # L3 L4 L9 L11
        ({"services": (0,)}, 2),  # L5 L8
        ({"sources": ("phone",)}, 2),  # L2 L8
        ({"owners": ("bob",)}, 4),  # L3 L4 L8 L11
        ({"owners": (0,)}, 2),  # L5 L9
        ({"owners": ("alice", 0), "sources": ("web_form",)}, 4),  # L1 L10 L5 L9
    ],
)
def test_filters_narrow_the_cohort(session: Session, narrow: dict, inquiries: int) -> None:
    ids = build(session)
    resolved = {
        name: tuple(ids.get(v, v) if isinstance(v, str) and name != "sources" else v for v in vals)
        for name, vals in narrow.items()
    }
    f = Filters(start=MARCH.start, end=MARCH.end, tz=TZ, **resolved)
    assert metrics.headline(session, f).inquiries == inquiries


# --- Funnel -----------------------------------------------------------------------------------

FUNNEL_TOTAL = [  # stage, reached, previous, reached previous and this one
    ("new", 10, 10, 10),
    ("contacted", 6, 10, 6),
    ("consult_scheduled", 5, 6, 5),
    ("consult_completed", 3, 5, 3),
    ("screening", 4, 3, 3),  # L6 skipped the consult: reached screening without it
    ("cleared", 3, 4, 3),
    ("infusion_scheduled", 3, 3, 3),
    ("infusion_completed", 2, 3, 2),
]
FUNNEL_BY_AREA = {
    "Ashburn": [3, 2, 2, 2, 3, 3, 3, 2],
    "Leesburg": [4, 2, 1, 0, 0, 0, 0, 0],
    "Lansdowne": [2, 2, 2, 1, 1, 0, 0, 0],
    "Out of area": [1, 0, 0, 0, 0, 0, 0, 0],
}


def test_funnel_by_service_area(session: Session) -> None:
    build(session)
    rows = metrics.funnel(session, MARCH, By.SERVICE_AREA)
    total = [(r.stage, r.reached, r.previous, r.from_previous) for r in rows if r.group_key is None]
    assert total == FUNNEL_TOTAL
    groups = list(dict.fromkeys(r.group for r in rows))
    assert groups == ["All leads", "Ashburn", "Leesburg", "Lansdowne", "Out of area"]
    for name, reached in FUNNEL_BY_AREA.items():
        assert [r.reached for r in rows if r.group == name] == reached
    ash = {r.stage: r for r in rows if r.group == "Ashburn"}
    assert (ash["screening"].previous, ash["screening"].from_previous) == (2, 2)
    assert ash["screening"].step_rate == 1.0  # never above 100%, though 3 reached it
    assert ash["infusion_completed"].step_rate == pytest.approx(2 / 3)
    assert ash["infusion_completed"].overall_rate == pytest.approx(2 / 3)
    lee = {r.stage: r for r in rows if r.group == "Leesburg"}
    assert lee["consult_completed"].step_rate == 0.0
    assert lee["screening"].step_rate is None  # nobody reached the stage before


def test_funnel_by_service_and_by_source(session: Session) -> None:
    build(session)
    by_service = metrics.funnel(session, MARCH, By.SERVICE)
    new = {r.group: r.reached for r in by_service if r.stage == "new"}
    assert new == {"All leads": 10, "Anxiety": 4, "PTSD": 4, "Service not given": 2}
    by_source = metrics.funnel(session, MARCH, By.SOURCE)
    new = {r.group: r.reached for r in by_source if r.stage == "new"}
    assert new == {"All leads": 10, "Web form": 6, "Phone": 2, "Referral": 1, "Import": 1}
    done = {r.group: r.reached for r in by_source if r.stage == "infusion_completed"}
    assert done == {"All leads": 2, "Web form": 1, "Phone": 0, "Referral": 0, "Import": 1}


# --- Trend ------------------------------------------------------------------------------------


def test_weekly_trend_counts_in_local_weeks(session: Session) -> None:
    build(session)
    rows = metrics.trend(session, MARCH, today=date(2026, 4, 2), weeks=6)
    weeks = sorted({r.week_start for r in rows})
    assert weeks == [date(2026, 2, 23) + timedelta(weeks=i) for i in range(6)]
    series = {
        (r.area, kind): [getattr(x, kind) for x in rows if x.area == r.area]
        for r in rows
        for kind in ("inquiries", "first_infusions")
    }
    # L2 (Sunday Mar 1, 23:30 local) and P1 (Feb 28) fall in the week of Feb 23; L6 (Sunday
    # Mar 15, noon EDT) in the week of Mar 9; X (Apr 1, 00:30 local) in the current week.
    assert series[("Ashburn", "inquiries")] == [2, 1, 1, 0, 0, 1]
    assert series[("Ashburn", "first_infusions")] == [0, 0, 1, 0, 1, 0]
    assert series[("Leesburg", "inquiries")] == [0, 1, 1, 0, 1, 1]  # L3 on the DST night
    assert series[("Lansdowne", "inquiries")] == [0, 1, 0, 1, 0, 0]
    assert series[("Out of area", "inquiries")] == [0, 0, 0, 0, 0, 1]
    assert series[("Leesburg", "first_infusions")] == [0] * 6


def test_trend_respects_the_narrowing_filters(session: Session) -> None:
    ids = build(session)
    f = Filters(start=MARCH.start, end=MARCH.end, tz=TZ, owners=(ids["bob"],))
    rows = metrics.trend(session, f, today=date(2026, 4, 2), weeks=6)
    assert {r.area for r in rows} == {"Leesburg", "Lansdowne"}
    assert sum(r.inquiries for r in rows) == 4  # L3 L4 L8 L11 (P2 is before the window)


# --- Time in stage --------------------------------------------------------------------------


def test_time_in_stage_from_the_stage_change_log(session: Session) -> None:
    build(session)
    got = {r.stage: (r.stays, r.median_s, r.p90_s) for r in metrics.time_in_stage(session, MARCH)}
    assert got == {
        # 300 300 600 [900] 1200 34200 36000 86400: L4 and L9 are still new (not counted)
        "new": (8, 900, 86_400),
        # L2 and L8 contacted twice: 21600 43200 86400 [86400] 86400 86400 108000 172800
        "contacted": (8, DAY, 2 * DAY),
        "consult_scheduled": (5, DAY, 2 * DAY),  # 64800 86400 [86400] 86400 172800
        "consult_completed": (3, DAY, DAY),  # 21600 [86400] 86400
        "screening": (5, 2 * DAY, 3 * DAY),  # 86400 172800 [172800] 172800 259200
        "cleared": (3, DAY, DAY),
        "infusion_scheduled": (2, 345_000, 5 * DAY),  # [345000] 432000
    }
    first = metrics.time_in_stage(session, MARCH)[0]
    assert (first.stage_label, first.p90_days) == ("New inquiry", 1.0)


# --- Reasons ----------------------------------------------------------------------------------


def test_reasons_of_leads_lost_or_not_eligible_now(session: Session) -> None:
    build(session)
    rows = [(r.outcome, r.area, r.reason, r.leads) for r in metrics.leave_reasons(session, MARCH)]
    # L2, L6 (not eligible) and L8 (lost) were reopened: their old reasons no longer count.
    assert rows == [
        ("lost", "Leesburg", "Cost", 2),
        ("lost", "Out of area", "Out of area", 1),
        ("not_eligible", "Lansdowne", "Cardiovascular disease", 1),
    ]


# --- Team -------------------------------------------------------------------------------------


def test_team_workload_and_speed(session: Session) -> None:
    build(session)
    rows = [(r.owner, r.open, r.overdue, r.responded, r.first_response_median_s)
            for r in metrics.team(session, MARCH, now=NOW)]  # fmt: skip
    assert rows == [
        ("Alice", 3, 0, 4, 1200),  # open L2 P1 X; 600 [1200] 3600 36000
        ("Bob", 3, 2, 3, 300),  # open L4 L8 P2, overdue L4 L8; 300 [300] 899
        ("Carol", 0, 0, 0, None),  # a care-team member with nothing yet
        ("Unassigned", 1, 1, 0, None),  # L9
    ]


def test_team_with_an_owner_filter_shows_only_that_owner(session: Session) -> None:
    ids = build(session)
    f = Filters(start=MARCH.start, end=MARCH.end, tz=TZ, owners=(ids["carol"],))
    assert [(r.owner, r.open) for r in metrics.team(session, f, now=NOW)] == [("Carol", 0)]


# --- Report (the CLI's JSON) ------------------------------------------------------------------


def test_report_holds_both_periods_and_the_funnel(session: Session) -> None:
    build(session)
    data = metrics.report(session, MARCH, By.SERVICE_AREA)
    assert data["period"] == {"from": "2026-03-01", "to": "2026-03-31", "timezone": TZ}
    assert data["previous_period"] == {"from": "2026-01-29", "to": "2026-02-28"}
    assert data["headline"]["inquiries"] == 10
    assert data["headline"]["consult_show_rate"] == 0.6
    assert data["previous"]["inquiries"] == 2
    assert len(data["funnel"]) == 8 * 5


def test_group_colors_are_stable_and_grey_for_none() -> None:
    colors = metrics.group_colors([(1, "Ashburn"), (2, "Leesburg"), (0, "Out of area")])
    assert colors["Ashburn"] == metrics.GROUP_PALETTE[0]
    assert colors["Leesburg"] == metrics.GROUP_PALETTE[1]
    assert colors["Out of area"] == metrics.NONE_COLOR
    assert set(metrics.STAGE_COLORS) == set(Stage)


def test_the_dashboard_bundle_runs_the_same_functions_side_by_side(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as s:
        build(s)
        today = date(2026, 4, 2)
        d = metrics.dashboard(engine=engine, filters=MARCH, today=today, now=NOW)
        assert d.current == metrics.headline(s, MARCH)
        assert d.previous == metrics.headline(s, MARCH.previous())
        assert d.funnel == metrics.funnel(s, MARCH, By.SERVICE_AREA)
        assert d.trend == metrics.trend(s, MARCH, today=today)
        assert d.stage_times == metrics.time_in_stage(s, MARCH)
        assert d.reasons == metrics.leave_reasons(s, MARCH)
        assert d.team == metrics.team(s, MARCH, now=NOW)


@pytest.mark.parametrize("bucket", [1, 7, 3600, 10**9])
def test_grouped_percentiles_equal_a_brute_force_nearest_rank(
    session: Session, bucket: int
) -> None:
    rng = random.Random(bucket)
    rows = [
        (rng.choice("abc"), rng.choice([rng.randint(0, 40), rng.randint(0, 200_000)]))
        for _ in range(rng.randint(150, 300))
    ] + [("d", 5)]  # a group of one
    src = values(column("k", String), column("v", Integer), name="src").data(rows).cte("src")
    points = (metrics.MEDIAN, metrics.P90, Fraction(1, 4), Fraction(1, 1))
    got = metrics._percentiles(session, sa_select(src.c.k, src.c.v), points, bucket=bucket)
    for key in "abcd":
        ordered = sorted(v for k, v in rows if k == key)
        spread = got[(key,)]
        assert spread.n == len(ordered)
        for p in points:
            assert spread.at[p] == ordered[metrics.nearest_rank(len(ordered), p) - 1], (key, p)


def test_an_ungrouped_median_skips_missing_values(session: Session) -> None:
    data = [(None,), (9,), (1,), (None,), (5,), (7,)]
    src = values(column("v", Integer), name="src").data(data).cte("src")
    empty = values(column("v", Integer), name="none").data([(None,)]).cte("none")
    got = (
        session.connection()
        .execute(
            sa_select(
                metrics._nth(src, "v"),
                metrics._nth(src, "v", metrics.P90),
                metrics._nth(empty, "v"),
            )
        )
        .one()
    )
    assert tuple(got) == (5, 9, None)  # 1 5 7 9: lower middle 5, rank ceil(3.6) = 4


# --- The command line -------------------------------------------------------------------------


def test_cli_json_equals_the_functions_output(engine: Engine) -> None:
    from click.testing import CliRunner

    from crm.cli import main

    url = engine.url.render_as_string(hide_password=False)
    with Session(engine, expire_on_commit=False) as s:
        ids = build(s)
        bob_email = s.get(User, ids["bob"]).email  # type: ignore[union-attr]
        plain = metrics.report(s, MARCH, By.SERVICE_AREA)
        narrowed = metrics.report(
            s,
            Filters(
                start=MARCH.start, end=MARCH.end, tz=TZ, areas=(ids["lee"], 0), owners=(ids["bob"],)
            ),
            By.SOURCE,
        )
    runner = CliRunner()
    args = [
        "metrics",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--database-url",
        url,
        "--json",
    ]
    result = runner.invoke(main, [*args, "--by", "service_area"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(json.dumps(plain))
    assert json.loads(result.output)["headline"]["inquiries"] == 10
    result = runner.invoke(
        main, [*args, "--by", "source", "--area", "leesburg", "--area", "out", "--owner", bob_email]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == json.loads(json.dumps(narrowed))
    assert json.loads(result.output)["headline"]["inquiries"] == 3  # L3 L4 L11


def test_cli_text_summary_and_unknown_names(engine: Engine) -> None:
    from click.testing import CliRunner

    from crm.cli import main

    url = engine.url.render_as_string(hide_password=False)
    with Session(engine) as s:
        build(s)
    runner = CliRunner()
    base = ["metrics", "--from", "2026-03-01", "--to", "2026-03-31", "--database-url", url]
    result = runner.invoke(main, base)
    assert result.exit_code == 0, result.output
    assert "New inquiries" in result.output and "Consult show rate" in result.output
    assert "60.0%" in result.output
    result = runner.invoke(main, [*base, "--area", "Atlantis"])
    assert result.exit_code != 0
    assert "No service area 'Atlantis'" in result.output
