"""The first-response target counts only business hours, in the clinic's zone, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crm.clinic_settings import ClinicConfig
from crm.sla import business_minutes_between, describe_first_response, first_response_due

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    """A New York wall-clock time as aware UTC (what the database stores)."""
    return datetime(*args, tzinfo=NY).astimezone(UTC)


@pytest.fixture
def config() -> ClinicConfig:
    return ClinicConfig(timezone="America/New_York")


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (ny(2026, 3, 4, 10, 0), ny(2026, 3, 4, 10, 15)),  # Wednesday mid-morning
        (ny(2026, 3, 4, 3, 0), ny(2026, 3, 4, 8, 15)),  # before opening
        (ny(2026, 3, 4, 17, 50), ny(2026, 3, 5, 8, 5)),  # 10 minutes left today
        (ny(2026, 3, 4, 18, 0), ny(2026, 3, 5, 8, 15)),  # exactly at closing
        (ny(2026, 3, 4, 17, 45), ny(2026, 3, 4, 18, 0)),  # due exactly at closing
        (ny(2026, 3, 7, 12, 0), ny(2026, 3, 9, 8, 15)),  # Saturday: next Monday
        (ny(2026, 3, 8, 23, 59), ny(2026, 3, 9, 8, 15)),  # Sunday night
    ],
)
def test_first_response_is_due_within_business_hours(
    config: ClinicConfig, received: datetime, due: datetime
) -> None:
    assert first_response_due(received, config) == due


def test_a_friday_evening_lead_is_due_monday_morning(config: ClinicConfig) -> None:
    assert first_response_due(ny(2026, 2, 27, 17, 55), config) == ny(2026, 3, 2, 8, 10)


def test_the_weekend_the_clocks_spring_forward(config: ClinicConfig) -> None:
    # Friday 17:55 EST -> Monday 08:10 EDT (2026-03-08 is the change): 12:10 UTC, not 13:10.
    due = first_response_due(ny(2026, 3, 6, 17, 55), config)
    assert due == datetime(2026, 3, 9, 12, 10, tzinfo=UTC)
    assert due.astimezone(NY).strftime("%H:%M %Z") == "08:10 EDT"


def test_the_weekend_the_clocks_fall_back(config: ClinicConfig) -> None:
    due = first_response_due(ny(2026, 10, 30, 17, 55), config)
    assert due == datetime(2026, 11, 2, 13, 10, tzinfo=UTC)
    assert due.astimezone(NY).strftime("%H:%M %Z") == "08:10 EST"


def test_minutes_are_real_minutes_across_the_missing_hour() -> None:
    config = ClinicConfig(timezone="America/New_York", business_hours={"sun": ["00:00", "24:00"]})
    received = ny(2026, 3, 8, 1, 50)  # 10 minutes before 02:00 becomes 03:00
    due = first_response_due(received, config)
    assert due - received == timedelta(minutes=15)
    assert due.astimezone(NY).strftime("%H:%M") == "03:05"


def test_minutes_are_real_minutes_across_the_repeated_hour() -> None:
    config = ClinicConfig(timezone="America/New_York", business_hours={"sun": ["00:00", "24:00"]})
    received = datetime(2026, 11, 1, 5, 50, tzinfo=UTC)  # 01:50 EDT, the first 01:50
    due = first_response_due(received, config)
    assert due - received == timedelta(minutes=15)
    assert due.astimezone(NY).strftime("%H:%M %Z") == "01:05 EST"


def test_a_day_with_the_clock_change_is_25_hours_long_when_open_all_day() -> None:
    config = ClinicConfig(timezone="America/New_York", business_hours={"sun": ["00:00", "24:00"]})
    start, end = ny(2026, 11, 1, 0, 0), ny(2026, 11, 2, 0, 0)
    assert business_minutes_between(start, end, config) == 25 * 60


def test_longer_targets_carry_over_several_days(config: ClinicConfig) -> None:
    config.first_response_minutes = 24 * 60  # a full day of business time = 2.4 days of 10 h
    assert first_response_due(ny(2026, 3, 4, 8, 0), config) == ny(2026, 3, 6, 12, 0)


def test_another_time_zone(config: ClinicConfig) -> None:
    config.timezone = "America/Los_Angeles"
    received = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # 07:00 in Los Angeles
    assert first_response_due(received, config) == datetime(2026, 3, 4, 16, 15, tzinfo=UTC)


def test_without_any_business_hours_the_target_is_plain_elapsed_time() -> None:
    config = ClinicConfig(timezone="America/New_York", business_hours={})
    received = ny(2026, 3, 7, 12, 0)
    assert first_response_due(received, config) == received + timedelta(minutes=15)


def test_a_naive_datetime_is_read_as_clinic_wall_time(config: ClinicConfig) -> None:
    assert first_response_due(datetime(2026, 3, 4, 3, 0), config) == ny(2026, 3, 4, 8, 15)


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        (ny(2026, 3, 4, 10, 0), ny(2026, 3, 4, 10, 15), 15),
        (ny(2026, 3, 4, 17, 0), ny(2026, 3, 5, 9, 0), 120),  # overnight gap not counted
        (ny(2026, 3, 6, 17, 55), ny(2026, 3, 9, 8, 10), 15),  # over the DST weekend
        (ny(2026, 3, 7, 9, 0), ny(2026, 3, 8, 17, 0), 0),  # a weekend has none
        (ny(2026, 3, 4, 10, 15), ny(2026, 3, 4, 10, 0), -15),  # late: negative
        (ny(2026, 3, 4, 12, 0), ny(2026, 3, 11, 12, 0), 5 * 600),  # one week
    ],
)
def test_business_minutes_between(
    config: ClinicConfig, start: datetime, end: datetime, minutes: float
) -> None:
    assert business_minutes_between(start, end, config) == pytest.approx(minutes)


def test_due_time_is_that_many_business_minutes_after_receipt(config: ClinicConfig) -> None:
    received = ny(2026, 3, 6, 17, 55)
    for minutes in (1, 15, 60, 600, 1234):
        config.first_response_minutes = minutes
        due = first_response_due(received, config)
        assert business_minutes_between(received, due, config) == pytest.approx(minutes)


def test_describes_the_stated_response_time(config: ClinicConfig) -> None:
    text = describe_first_response(config)
    assert text == "within 15 minutes during business hours (Mon–Fri 8:00 AM–6:00 PM)"
    config.first_response_minutes = 120
    config.business_hours = {"mon": ["09:00", "17:00"], "sat": ["10:00", "14:00"]}
    assert describe_first_response(config) == (
        "within 2 hours during business hours (Mon 9:00 AM–5:00 PM, Sat 10:00 AM–2:00 PM)"
    )
