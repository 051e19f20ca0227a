"""Clinic settings as the admin page changes them: validation messages, areas, services, keys."""

from __future__ import annotations

import json
from datetime import time

import pytest
from sqlmodel import Session, select

from crm import catalog, clinic_admin, clinic_settings
from crm.clinic_admin import SettingsInvalid
from crm.enums import Role
from crm.models import AuditEvent, Service
from tests.factories import actor_of, make_user


def _admin(session: Session):  # noqa: ANN202
    return actor_of(make_user(session, role=Role.ADMIN))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"first_response_minutes": 0}, "between 1 and 1440"),
        ({"first_response_minutes": "soon"}, "whole number"),
        ({"consult_slot_minutes": 500}, "between 5 and 120"),
        ({"infusion_series_length": 0}, "between 1 and 30"),
        ({"smtp_port": 70000}, "between 1 and 65535"),
        ({"timezone": "Mars/Olympus"}, "not a time zone"),
        ({"lost_reasons": ["Cost", " cost "]}, "listed twice"),
        ({"lost_reasons": []}, "at least one lost reason"),
        ({"business_hours": {"mon": ["09:00", "17:00"]}}, "every day of the week"),
        ({"oncall_email": "not an email"}, "not a valid email"),
        ({"thank_you_url": "javascript:alert(1)"}, "full web address"),
        ({"smtp_host": "smtp.example.com; rm -rf"}, "host name"),
        ({"no_such_setting": 1}, "Unknown setting"),
    ],
)
def test_bad_values_are_refused_with_a_message(changes: dict, message: str) -> None:
    with pytest.raises(SettingsInvalid, match=message):
        clinic_admin.validate(changes)


def test_business_hours_must_open_before_they_close_and_some_day_open() -> None:
    hours = {d: None for d in clinic_settings.WEEKDAYS}
    with pytest.raises(SettingsInvalid, match="open at least one day"):
        clinic_admin.validate({"business_hours": hours})
    hours["mon"] = ["18:00", "08:00"]
    with pytest.raises(SettingsInvalid, match="close after it opens"):
        clinic_admin.validate({"business_hours": hours})
    hours["mon"] = ["8:00", "18:00"]
    with pytest.raises(SettingsInvalid, match="HH:MM"):
        clinic_admin.validate({"business_hours": hours})
    hours["mon"] = ["08:00", "18:00"]
    assert clinic_admin.validate({"business_hours": hours})["business_hours"]["mon"] == [
        "08:00",
        "18:00",
    ]


def test_good_values_are_cleaned_and_saved_with_an_audit_event(session: Session) -> None:
    admin = _admin(session)
    config = clinic_admin.update_settings(
        session=session,
        actor=admin,
        changes={
            "first_response_minutes": "10",
            "lost_reasons": ["  Cost ", "", "No  answer"],
            "timezone": "America/Chicago",
            "smtp_password": "hunter22hunter22",
        },
    )
    session.commit()
    assert config.first_response_minutes == 10 and config.lost_reasons == ["Cost", "No answer"]
    assert clinic_settings.load(session).timezone == "America/Chicago"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "settings.update")).one()
    assert "hunter22" not in event.details and event.actor_id == admin.id
    shown = clinic_admin.view_settings(session=session, actor=admin)
    assert shown.smtp_password == "********"


def test_service_areas_are_validated_created_edited_and_used_for_placement(
    session: Session,
) -> None:
    admin = _admin(session)
    with pytest.raises(SettingsInvalid, match="five digits"):
        clinic_admin.save_area(
            session=session,
            actor=admin,
            area_id=None,
            name="Sterling",
            counties=[],
            cities=[],
            zip_codes=["2016"],
        )
    with pytest.raises(SettingsInvalid, match="with their state"):
        clinic_admin.save_area(
            session=session,
            actor=admin,
            area_id=None,
            name="Fairfax",
            counties=["Fairfax County"],
            cities=[],
            zip_codes=[],
        )
    with pytest.raises(SettingsInvalid, match="at least one county, city or ZIP"):
        clinic_admin.save_area(
            session=session,
            actor=admin,
            area_id=None,
            name="Empty",
            counties=[],
            cities=[],
            zip_codes=[],
        )
    with pytest.raises(SettingsInvalid, match="already exists"):
        clinic_admin.save_area(
            session=session,
            actor=admin,
            area_id=None,
            name="ashburn",
            counties=[],
            cities=["x"],
            zip_codes=[],
        )
    area_id = clinic_admin.save_area(
        session=session,
        actor=admin,
        area_id=None,
        name="Sterling",
        counties=[],
        cities=["Sterling"],
        zip_codes=["20164", "20164"],
    )
    session.commit()
    rule = catalog.resolve_area(catalog.area_rules(session), zip_code="20164")
    assert rule is not None and rule.name == "Sterling"
    clinic_admin.save_area(
        session=session,
        actor=admin,
        area_id=area_id,
        name="Sterling",
        counties=[],
        cities=["Sterling"],
        zip_codes=["20165"],
        active=True,
    )
    session.commit()
    events = session.exec(select(AuditEvent).where(AuditEvent.entity == "servicearea")).all()
    assert [e.action for e in events] == ["area.create", "area.update"]
    assert json.loads(events[1].details) == {"zip_codes": ['["20164"]', '["20165"]']}


def test_services_are_created_and_renamed(session: Session) -> None:
    admin = _admin(session)
    new_id = clinic_admin.save_service(
        session=session, actor=admin, service_id=None, name="Migraine"
    )
    clinic_admin.save_service(
        session=session, actor=admin, service_id=new_id, name="Migraine", active=False
    )
    session.commit()
    service = session.get(Service, new_id)
    assert service is not None and not service.active
    assert "Migraine" not in [n for _i, n in catalog.services(session)]
    with pytest.raises(SettingsInvalid, match="already exists"):
        clinic_admin.save_service(session=session, actor=admin, service_id=None, name="anxiety")


def test_weekly_availability_is_read_from_lines() -> None:
    assert clinic_admin.parse_windows("mon 09:00-12:00\n\n  Tuesday 9:30 - 17:00 ") == [
        (0, time(9), time(12)),
        (1, time(9, 30), time(17)),
    ]
    with pytest.raises(SettingsInvalid, match="Line 1"):
        clinic_admin.parse_windows("someday 09:00-12:00")
    with pytest.raises(SettingsInvalid, match="end after it starts"):
        clinic_admin.parse_windows("fri 12:00-09:00")


def test_a_saved_service_area_places_the_next_inquiry_at_once(session: Session) -> None:
    """Intake caches the catalogue; a change saved on the settings page clears that cache."""

    admin = actor_of(make_user(session, role=Role.ADMIN))
    assert catalog.resolve_area(catalog.area_rules(session), zip_code="20164") is not None
    area_id = clinic_admin.save_area(
        session=session,
        actor=admin,
        area_id=None,
        name="Sterling",
        counties=[],
        cities=[],
        zip_codes=["20164"],
    )
    session.commit()
    placed = catalog.resolve_area(catalog.area_rules(session), zip_code="20164")
    assert placed is not None and placed.id == area_id
