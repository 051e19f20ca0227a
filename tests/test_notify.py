"""The urgent-lead alert email, delivered to a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import inspect
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from crm import notify
from crm.clinic_settings import ClinicConfig
from tests.support import free_port


@dataclass
class Inbox:
    """What the local SMTP server received."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        self.arrived.set()
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _config(port: int, **changes: Any) -> ClinicConfig:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "smtp_from": "crm@clinic.test",
        "oncall_email": "oncall@clinic.test",
    }
    values.update(changes)
    return ClinicConfig(**values)


def test_the_alert_arrives_with_reference_and_link_but_not_the_persons_words(
    smtp: tuple[Inbox, int],
) -> None:
    inbox, port = smtp
    future = notify.notify_urgent_lead(
        lead_id=42, reference="KC-7QH3XK", config=_config(port), base_url="https://crm.clinic.test/"
    )
    assert future is not None
    future.result(timeout=20)
    assert inbox.arrived.wait(10)
    ((recipients, msg),) = inbox.messages
    assert recipients == ["oncall@clinic.test"]
    body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "KC-7QH3XK" in msg["Subject"] and "KC-7QH3XK" in body
    assert "https://crm.clinic.test/lead?id=42" in body
    assert msg["From"] == "crm@clinic.test"


def test_the_email_is_built_without_name_or_message() -> None:
    msg = notify.build_alert(
        lead_id=7, reference="KC-ABCDEF", config=_config(25), base_url="http://x.test"
    )
    text = msg.as_string()
    assert "KC-ABCDEF" in text and "http://x.test/lead?id=7" in text
    # The alert is never handed the lead's name or words, so it cannot leak them.
    params = set(inspect.signature(notify.build_alert).parameters)
    assert params == {"lead_id", "reference", "config", "base_url"}


def test_nothing_is_sent_without_smtp_settings() -> None:
    config = ClinicConfig(oncall_email="oncall@clinic.test")  # no smtp_host
    assert notify.notify_urgent_lead(lead_id=1, reference="KC-X", config=config) is None
    config = ClinicConfig(smtp_host="127.0.0.1")  # no on-call address
    assert notify.notify_urgent_lead(lead_id=1, reference="KC-X", config=config) is None


def test_a_mail_server_that_is_down_is_logged_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="crm.notify")
    config = _config(free_port())  # nothing listens there
    future = notify.notify_urgent_lead(lead_id=3, reference="KC-DOWN22", config=config)
    assert future is not None
    assert future.result(timeout=30) is None
    assert any("KC-DOWN22" in r.getMessage() for r in caplog.records)


def test_starttls_when_configured_never_falls_back_to_clear_text(
    smtp: tuple[Inbox, int], caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port = smtp  # this server offers no STARTTLS
    caplog.set_level(logging.ERROR, logger="crm.notify")
    future = notify.notify_urgent_lead(
        lead_id=5, reference="KC-TLS222", config=_config(port, smtp_starttls=True)
    )
    assert future is not None
    future.result(timeout=20)
    assert inbox.messages == []
    assert any("KC-TLS222" in r.getMessage() for r in caplog.records)


def test_every_intake_path_alerts_after_commit_and_only_then(
    smtp: tuple[Inbox, int], sqlite_engine: Any
) -> None:
    """The phone intake, form and import share intake.submit; its alert waits for the commit."""
    from sqlmodel import Session

    from crm import intake

    inbox, port = smtp
    values = {
        "first_name": "Sam", "last_name": "Rivera", "phone": "(571) 555-0142", "consent": True,
        "message": "I want to end it all", "crisis": "no",
    }
    with Session(sqlite_engine) as session:
        result = intake.submit_form(session=session, values=values, mode="phone", config=_config(port))
        session.rollback()  # a lead that was never stored must not page anyone
    assert result.urgent and not inbox.arrived.wait(1.5)
    with Session(sqlite_engine) as session:
        result = intake.submit_form(session=session, values=values, mode="phone", config=_config(port))
        session.commit()
    assert inbox.arrived.wait(15)
    ((_rcpt, msg),) = inbox.messages
    assert result.reference in msg["Subject"]
    assert "end it all" not in msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
