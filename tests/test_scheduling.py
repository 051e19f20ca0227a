"""The 15-minute phone consult: slots, booking, double-booking refusal, outcomes (both backends)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, func, select

from crm import clinic_settings, scheduling
from crm.access import Actor
from crm.enums import Candidate, ConsultStatus, ConsultTopic, Role, Stage
from crm.errors import InvalidInput, PermissionDenied, SlotTaken, StaleEdit
from crm.models import AuditEvent, Consult, Lead, StageChange
from tests.factories import actor_of, make_lead, make_user

TZ = "America/New_York"
# Fixed clock: tests book in March 2026, "now" is well before.
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MONDAY = date(2026, 3, 9)  # first Monday after the spring-forward change (EDT, UTC-4)
WEEKDAYS_9_TO_10 = [(d, time(9), time(10)) for d in range(5)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def config(session: Session) -> clinic_settings.ClinicConfig:
    clinic_settings.save(session, actor_id=None, changes={"timezone": TZ})
    session.commit()
    return clinic_settings.load(session)


@pytest.fixture
def admin(session: Session) -> Actor:
    return actor_of(make_user(session, role=Role.ADMIN))


@pytest.fixture
def coordinator(session: Session) -> Actor:
    return actor_of(make_user(session, role=Role.CARE_TEAM))


@pytest.fixture
def provider(session: Session, admin: Actor) -> Actor:
    user = make_user(session, role=Role.PROVIDER, name="Dr. Rivera")
    scheduling.set_availability(
        session=session, actor=admin, provider_id=user.id or 0, windows=WEEKDAYS_9_TO_10
    )
    session.commit()
    return actor_of(user)


def book(session: Session, actor: Actor, lead: Lead, provider: Actor, at: datetime) -> Consult:
    consult = scheduling.book_consult(
        session=session,
        actor=actor,
        lead_id=lead.id or 0,
        provider_id=provider.id,
        starts_at=at,
        now=NOW,
    )
    session.commit()
    return consult


def stages(session: Session, lead_id: int) -> list[tuple[str | None, str]]:
    rows = session.exec(
        select(StageChange).where(StageChange.lead_id == lead_id).order_by(StageChange.id)
    ).all()
    return [(r.from_stage, r.to_stage) for r in rows]


# --- Availability ---------------------------------------------------------------------------


def test_availability_round_trips_sorted(session: Session, provider: Actor, admin: Actor) -> None:
    windows = [(2, time(13), time(17)), (0, time(9, 30), time(12))]
    scheduling.set_availability(
        session=session, actor=admin, provider_id=provider.id, windows=windows
    )
    session.commit()
    assert scheduling.get_availability(session=session, provider_id=provider.id) == sorted(windows)
    event = session.exec(
        select(AuditEvent)
        .where(AuditEvent.action == "availability.update")
        .order_by(AuditEvent.id.desc())  # type: ignore[union-attr]
    ).first()
    assert event is not None
    assert json.loads(event.details)["windows"][1] == ["mon 09:30-12:00", "wed 13:00-17:00"]


def test_overlapping_or_backwards_windows_are_refused(
    session: Session, provider: Actor, admin: Actor
) -> None:
    with pytest.raises(InvalidInput, match="overlap"):
        scheduling.set_availability(
            session=session,
            actor=admin,
            provider_id=provider.id,
            windows=[(0, time(9), time(11)), (0, time(10), time(12))],
        )
    with pytest.raises(InvalidInput, match="end after"):
        scheduling.set_availability(
            session=session, actor=admin, provider_id=provider.id, windows=[(0, time(11), time(9))]
        )


def test_a_provider_sets_their_own_hours_but_a_coordinator_cannot(
    session: Session, provider: Actor, coordinator: Actor
) -> None:
    scheduling.set_availability(
        session=session, actor=provider, provider_id=provider.id, windows=[(4, time(8), time(9))]
    )
    with pytest.raises(PermissionDenied):
        scheduling.set_availability(
            session=session,
            actor=coordinator,
            provider_id=provider.id,
            windows=[(4, time(8), time(9))],
        )


# --- Slot generation --------------------------------------------------------------------------


def test_free_slots_are_the_providers_15_minute_slots_on_business_days(
    session: Session, provider: Actor, config: clinic_settings.ClinicConfig
) -> None:
    slots = scheduling.free_slots(
        session=session, provider_id=provider.id, day=MONDAY, config=config, now=NOW
    )
    # 09:00-10:00 EDT on the Monday after the change is 13:00-14:00 UTC.
    assert slots == [
        utc(2026, 3, 9, 13, 0),
        utc(2026, 3, 9, 13, 15),
        utc(2026, 3, 9, 13, 30),
        utc(2026, 3, 9, 13, 45),
    ]
    saturday = MONDAY - timedelta(days=2)
    assert (
        scheduling.free_slots(
            session=session, provider_id=provider.id, day=saturday, config=config, now=NOW
        )
        == []
    )


def test_the_same_wall_time_is_an_hour_earlier_in_utc_after_spring_forward(
    session: Session, provider: Actor, config: clinic_settings.ClinicConfig
) -> None:
    friday_before = date(2026, 3, 6)
    before = scheduling.free_slots(
        session=session, provider_id=provider.id, day=friday_before, config=config, now=NOW
    )
    after = scheduling.free_slots(
        session=session, provider_id=provider.id, day=MONDAY, config=config, now=NOW
    )
    assert before[0] == utc(2026, 3, 6, 14, 0)  # 09:00 EST
    assert after[0] == utc(2026, 3, 9, 13, 0)  # 09:00 EDT


def test_spring_forward_day_has_no_slots_in_the_missing_hour(
    session: Session, provider: Actor, admin: Actor, config: clinic_settings.ClinicConfig
) -> None:
    scheduling.set_availability(
        session=session, actor=admin, provider_id=provider.id, windows=[(6, time(0), time(4))]
    )
    slots = scheduling.free_slots(
        session=session, provider_id=provider.id, day=date(2026, 3, 8), config=config, now=NOW
    )
    local = [s.astimezone(ZoneInfo(TZ)).strftime("%H:%M") for s in slots]
    assert len(slots) == 12  # 00:00-04:00 wall time is three real hours that night
    assert not any(t.startswith("02:") for t in local)
    assert local[:8] == ["00:00", "00:15", "00:30", "00:45", "01:00", "01:15", "01:30", "01:45"]
    assert local[8:] == ["03:00", "03:15", "03:30", "03:45"]
    assert slots[8] - slots[7] == timedelta(minutes=15)  # 01:45 EST -> 03:00 EDT is 15 real minutes


def test_fall_back_day_offers_both_one_oclocks(
    session: Session, provider: Actor, admin: Actor, config: clinic_settings.ClinicConfig
) -> None:
    scheduling.set_availability(
        session=session, actor=admin, provider_id=provider.id, windows=[(6, time(0), time(3))]
    )
    slots = scheduling.free_slots(
        session=session, provider_id=provider.id, day=date(2026, 11, 1), config=config, now=NOW
    )
    assert len(slots) == 16  # 00:00-03:00 wall time is four real hours that night
    assert slots[0] == utc(2026, 11, 1, 4, 0)  # 00:00 EDT
    assert slots[-1] == utc(2026, 11, 1, 7, 45)  # 02:45 EST
    assert utc(2026, 11, 1, 5, 0) in slots and utc(2026, 11, 1, 6, 0) in slots  # 01:00 EDT and EST
    monday = scheduling.free_slots(
        session=session, provider_id=provider.id, day=date(2026, 11, 2), config=config, now=NOW
    )
    assert monday == []  # only Sunday availability now


def test_past_slots_are_not_offered(
    session: Session, provider: Actor, config: clinic_settings.ClinicConfig
) -> None:
    now = utc(2026, 3, 9, 13, 20)  # 09:20 EDT
    slots = scheduling.free_slots(
        session=session, provider_id=provider.id, day=MONDAY, config=config, now=now
    )
    assert slots == [utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 13, 45)]


def test_taken_slots_are_not_offered_and_cancelled_ones_come_back(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    consult = book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 15))
    slots = scheduling.free_slots(
        session=session, provider_id=provider.id, day=MONDAY, config=config, now=NOW
    )
    assert utc(2026, 3, 9, 13, 15) not in slots and len(slots) == 3
    scheduling.cancel_consult(
        session=session, actor=coordinator, consult_id=consult.id or 0, now=NOW
    )
    session.commit()
    slots = scheduling.free_slots(
        session=session, provider_id=provider.id, day=MONDAY, config=config, now=NOW
    )
    assert utc(2026, 3, 9, 13, 15) in slots


def test_slot_length_is_a_setting(
    session: Session, provider: Actor, config: clinic_settings.ClinicConfig
) -> None:
    config.consult_slot_minutes = 20
    slots = scheduling.free_slots(
        session=session, provider_id=provider.id, day=MONDAY, config=config, now=NOW
    )
    assert slots == [utc(2026, 3, 9, 13, 0), utc(2026, 3, 9, 13, 20), utc(2026, 3, 9, 13, 40)]


# --- Booking -------------------------------------------------------------------------------------


def test_booking_moves_a_contacted_lead_to_consult_scheduled_and_is_audited(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    version = lead.version
    consult = book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    session.refresh(lead)
    assert lead.stage == Stage.CONSULT_SCHEDULED
    assert lead.version == version + 1
    assert consult.ends_at == utc(2026, 3, 9, 13, 15)
    assert consult.status == ConsultStatus.BOOKED and consult.booked_by_id == coordinator.id
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "consult.book")).one()
    assert event.lead_id == lead.id and event.actor_id == coordinator.id


def test_booking_a_new_lead_records_contacted_then_scheduled(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.NEW)
    book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    assert stages(session, lead.id or 0) == [
        ("new", "contacted"),
        ("contacted", "consult_scheduled"),
    ]
    session.refresh(lead)
    assert lead.first_response_at == NOW  # reached: the speed-to-lead clock stopped


def test_a_slot_outside_availability_or_in_the_past_is_refused(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    with pytest.raises(InvalidInput, match="not one of"):
        book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 5))  # off the grid
    with pytest.raises(InvalidInput, match="not one of"):
        book(session, coordinator, lead, provider, utc(2026, 3, 9, 18, 0))  # 14:00 local
    with pytest.raises(InvalidInput, match="passed"):
        scheduling.book_consult(
            session=session,
            actor=coordinator,
            lead_id=lead.id or 0,
            provider_id=provider.id,
            starts_at=utc(2026, 3, 9, 13, 0),
            now=utc(2026, 3, 9, 13, 1),
        )


def test_a_provider_is_never_double_booked(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    first, second = (
        make_lead(session, stage=Stage.CONTACTED),
        make_lead(session, stage=Stage.CONTACTED),
    )
    book(session, coordinator, first, provider, utc(2026, 3, 9, 13, 0))
    with pytest.raises(SlotTaken, match="Dr. Rivera already has a consult"):
        book(session, coordinator, second, provider, utc(2026, 3, 9, 13, 0))
    session.rollback()
    session.refresh(second)
    assert second.stage == Stage.CONTACTED


def test_the_database_refuses_a_second_booking_the_app_did_not_see(
    session: Session,
    provider: Actor,
    coordinator: Actor,
    config: clinic_settings.ClinicConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race window: the application's own check saw the slot free; the index still says no."""
    first, second = (
        make_lead(session, stage=Stage.CONTACTED),
        make_lead(session, stage=Stage.CONTACTED),
    )
    book(session, coordinator, first, provider, utc(2026, 3, 9, 13, 0))
    monkeypatch.setattr(scheduling, "_taken", lambda *a, **k: [])
    with pytest.raises(SlotTaken):
        book(session, coordinator, second, provider, utc(2026, 3, 9, 13, 0))
    # Nothing half-written: the session was rolled back, the loser's lead is untouched.
    assert session.exec(select(func.count()).select_from(Consult)).one() == 1
    session.refresh(second)
    assert second.stage == Stage.CONTACTED and second.version == 1
    assert stages(session, second.id or 0) == []
    assert (
        session.exec(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.lead_id == second.id)
        ).one()
        == 0
    )


def test_two_coordinators_booking_the_same_slot_at_once_one_wins(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine, expire_on_commit=False) as setup:
        clinic_settings.save(setup, actor_id=None, changes={"timezone": TZ})
        admin = actor_of(make_user(setup, role=Role.ADMIN))
        doctor = make_user(setup, role=Role.PROVIDER)
        scheduling.set_availability(
            session=setup, actor=admin, provider_id=doctor.id or 0, windows=WEEKDAYS_9_TO_10
        )
        setup.commit()
        coordinators = [actor_of(make_user(setup)) for _ in range(2)]
        leads = [make_lead(setup, stage=Stage.CONTACTED).id or 0 for _ in range(2)]
    slot = utc(2026, 3, 9, 13, 0)
    # PostgreSQL: both bookings pass the application's check, then race to insert; the unique
    # index makes the second wait for the first and then fail. SQLite: the first booking holds
    # the database's write lock, so the second can't look before the first commits; the
    # barrier times out for it (3 s, well under the 10 s busy timeout) and it finds the slot taken.
    barrier = threading.Barrier(2, timeout=3)
    real_taken = scheduling._taken

    def taken_after_both_looked(*args: object, **kwargs: object) -> list[tuple[datetime, datetime]]:
        found = real_taken(*args, **kwargs)  # type: ignore[arg-type]
        seen_free.append(not found)
        try:
            barrier.wait()  # both bookings have looked before either inserts
        except threading.BrokenBarrierError:
            pass
        return found

    seen_free: list[bool] = []
    monkeypatch.setattr(scheduling, "_taken", taken_after_both_looked)
    results: dict[int, object] = {}

    def attempt(i: int) -> None:
        with Session(engine, expire_on_commit=False) as s:
            try:
                consult = scheduling.book_consult(
                    session=s,
                    actor=coordinators[i],
                    lead_id=leads[i],
                    provider_id=doctor.id or 0,
                    starts_at=slot,
                    now=NOW,
                )
                s.commit()
                results[i] = consult.id
            except Exception as err:  # noqa: BLE001 - recorded for the assertions below
                s.rollback()
                results[i] = err

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [i for i, r in results.items() if isinstance(r, int)]
    losers = [i for i, r in results.items() if isinstance(r, SlotTaken)]
    assert len(winners) == 1 and len(losers) == 1, results
    if engine.dialect.name == "postgresql":
        assert seen_free == [True, True]  # the database, not the application, refused the loser
    with Session(engine) as check:
        consults = check.exec(select(Consult)).all()
        assert [c.lead_id for c in consults] == [leads[winners[0]]]
        loser = check.get(Lead, leads[losers[0]])
        assert loser is not None and loser.stage == Stage.CONTACTED and loser.version == 1
        winner = check.get(Lead, leads[winners[0]])
        assert winner is not None and winner.stage == Stage.CONSULT_SCHEDULED


def test_a_lead_has_one_booked_consult_at_a_time(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    with pytest.raises(InvalidInput, match="already has a consult booked"):
        book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 30))


def test_a_save_based_on_an_old_version_of_the_lead_is_refused(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED, updated_by_id=coordinator.id)
    lead.version = 3
    session.add(lead)
    session.commit()
    with pytest.raises(StaleEdit, match="changed this lead"):
        scheduling.book_consult(
            session=session,
            actor=coordinator,
            lead_id=lead.id or 0,
            provider_id=provider.id,
            starts_at=utc(2026, 3, 9, 13, 0),
            seen_version=2,
            now=NOW,
        )


# --- After booking ---------------------------------------------------------------------------


def test_no_show_sends_the_lead_back_to_contacted(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    consult = book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    with pytest.raises(InvalidInput, match="hasn't started"):
        scheduling.mark_no_show(
            session=session, actor=coordinator, consult_id=consult.id or 0, now=NOW
        )
    scheduling.mark_no_show(
        session=session, actor=coordinator, consult_id=consult.id or 0, now=utc(2026, 3, 9, 13, 10)
    )
    session.commit()
    session.refresh(lead)
    assert consult.status == ConsultStatus.NO_SHOW
    assert lead.stage == Stage.CONTACTED
    assert stages(session, lead.id or 0)[-1] == ("consult_scheduled", "contacted")


def test_rebook_moves_the_consult_in_one_step_and_keeps_the_stage(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    old = book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    new = scheduling.rebook_consult(
        session=session,
        actor=coordinator,
        consult_id=old.id or 0,
        starts_at=utc(2026, 3, 10, 13, 30),
        now=NOW,
    )
    session.commit()
    session.refresh(lead)
    assert old.status == ConsultStatus.CANCELLED and new.status == ConsultStatus.BOOKED
    assert new.starts_at == utc(2026, 3, 10, 13, 30)
    assert lead.stage == Stage.CONSULT_SCHEDULED
    assert stages(session, lead.id or 0) == [("contacted", "consult_scheduled")]
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "consult.rebook")).one()
    assert json.loads(event.details)["starts_at"] == [
        "2026-03-09T13:00:00+00:00",
        "2026-03-10T13:30:00+00:00",
    ]


def test_rebook_into_a_taken_slot_changes_nothing(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead, other = (
        make_lead(session, stage=Stage.CONTACTED),
        make_lead(session, stage=Stage.CONTACTED),
    )
    mine = book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    book(session, coordinator, other, provider, utc(2026, 3, 9, 13, 30))
    with pytest.raises(SlotTaken):
        scheduling.rebook_consult(
            session=session,
            actor=coordinator,
            consult_id=mine.id or 0,
            starts_at=utc(2026, 3, 9, 13, 30),
            now=NOW,
        )
    session.rollback()
    session.refresh(mine)
    assert mine.status == ConsultStatus.BOOKED


def test_rebooking_a_no_show_schedules_the_lead_again(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    missed = book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    scheduling.mark_no_show(
        session=session, actor=coordinator, consult_id=missed.id or 0, now=utc(2026, 3, 9, 13, 20)
    )
    session.commit()
    scheduling.rebook_consult(
        session=session,
        actor=coordinator,
        consult_id=missed.id or 0,
        starts_at=utc(2026, 3, 11, 13, 0),
        now=utc(2026, 3, 9, 13, 20),
    )
    session.commit()
    session.refresh(lead)
    assert missed.status == ConsultStatus.NO_SHOW  # the missed call stays on record
    assert lead.stage == Stage.CONSULT_SCHEDULED


def test_cancel_frees_the_slot_and_sends_the_lead_back_to_contacted(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    consult = book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    scheduling.cancel_consult(
        session=session,
        actor=coordinator,
        consult_id=consult.id or 0,
        reason="Asked to call back",
        now=NOW,
    )
    session.commit()
    session.refresh(lead)
    assert lead.stage == Stage.CONTACTED
    other = make_lead(session, stage=Stage.CONTACTED)
    book(session, coordinator, other, provider, utc(2026, 3, 9, 13, 0))  # the slot is free again


def test_completing_records_the_outcome_and_moves_the_lead(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    consult = book(session, coordinator, lead, provider, utc(2026, 3, 9, 13, 0))
    scheduling.complete_consult(
        session=session,
        actor=provider,
        consult_id=consult.id or 0,
        candidate=Candidate.YES,
        topics=[ConsultTopic.DRIVING, ConsultTopic.COST],
        notes="Asked about cost; sister will drive.",
        now=utc(2026, 3, 9, 13, 16),
    )
    session.commit()
    session.refresh(lead)
    assert lead.stage == Stage.CONSULT_COMPLETED
    assert consult.status == ConsultStatus.COMPLETED and consult.candidate == "yes"
    assert consult.topics == "cost,driving"
    assert scheduling.parse_topics(consult.topics) == [ConsultTopic.COST, ConsultTopic.DRIVING]
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "consult.complete")).one()
    details = json.loads(event.details)
    assert details["status"] == ["booked", "completed"] and details["candidate"] == [None, "yes"]
    # A correction later keeps the stage and audits the change.
    scheduling.complete_consult(
        session=session,
        actor=provider,
        consult_id=consult.id or 0,
        candidate="needs_review",
        now=utc(2026, 3, 9, 14),
    )
    session.commit()
    session.refresh(lead)
    assert lead.stage == Stage.CONSULT_COMPLETED and consult.candidate == "needs_review"


def test_list_consults_shows_the_week_per_provider(
    session: Session, provider: Actor, coordinator: Actor, config: clinic_settings.ClinicConfig
) -> None:
    lead = make_lead(session, stage=Stage.CONTACTED)
    book(session, coordinator, lead, provider, utc(2026, 3, 10, 13, 0))
    start, end = scheduling.week_bounds(MONDAY, TZ)
    assert start == utc(2026, 3, 9, 4, 0) and end == utc(2026, 3, 16, 4, 0)
    rows = scheduling.list_consults(
        session=session, actor=coordinator, start=start, end=end, provider_id=provider.id
    )
    assert [(r.lead_id, r.provider_name, r.status) for r in rows] == [
        (lead.id, "Dr. Rivera", "booked")
    ]
    assert rows[0].lead_phone and rows[0].lead_phone.startswith("+1")
    day_start, day_end = scheduling.day_bounds(MONDAY, TZ)
    assert (
        scheduling.list_consults(session=session, actor=coordinator, start=day_start, end=day_end)
        == []
    )
