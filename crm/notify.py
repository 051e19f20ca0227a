"""The urgent-lead alert: an email to the clinic's on-call address when a crisis flag fires.

The email carries the lead's reference and a link into the CRM, never the person's name or
words: mailboxes, phones' lock screens and mail relays are not where health information
belongs. It is sent after the lead is committed, from a background worker, so neither a
slow mail server nor a failing one delays or breaks the intake; failures are logged.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from concurrent.futures import Future, ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from crm.clinic_settings import ClinicConfig
from crm.settings import get_settings

__all__ = ["alert_configured", "build_alert", "notify_urgent_lead", "send_alert"]

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 15
# Two workers: alerts go out in parallel when several arrive at once, but a flood of
# urgent leads cannot start an unbounded number of SMTP connections.
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="crm-alert")


def alert_configured(config: ClinicConfig) -> bool:
    """True when the clinic has set a mail server and an on-call address."""
    return bool(config.smtp_host.strip() and config.oncall_email.strip())


def lead_link(lead_id: int, base_url: str | None = None) -> str:
    """The CRM address of a lead's page."""
    return f"{(base_url or get_settings().base_url).rstrip('/')}/lead?id={lead_id}"


def build_alert(
    *, lead_id: int, reference: str, config: ClinicConfig, base_url: str | None = None
) -> EmailMessage:
    """The alert email (reference and link only: no name, no message, no contact details)."""
    link = lead_link(lead_id, base_url)
    sender = config.smtp_from.strip() or config.smtp_username.strip() or config.oncall_email
    msg = EmailMessage()
    msg["Subject"] = f"Urgent inquiry {reference}: review now"
    msg["From"] = sender
    msg["To"] = config.oncall_email.strip()
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="crm.local")
    msg.set_content(
        "A new inquiry was flagged as urgent (crisis answer or crisis wording).\n"
        "It is at the top of the care team's queue. Please review it now.\n\n"
        f"Reference: {reference}\n"
        f"Open it in the CRM: {link}\n\n"
        "The person's details are only in the CRM, not in this email.\n"
    )
    return msg


def send_alert(msg: EmailMessage, config: ClinicConfig) -> None:
    """Send `msg` through the clinic's SMTP server (implicit TLS on 465, else STARTTLS if set)."""
    host, port = config.smtp_host.strip(), int(config.smtp_port or 587)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if port == 465:
        smtp = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT_SECONDS)
    with smtp:
        smtp.ehlo()
        if port != 465 and config.smtp_starttls:
            smtp.starttls(context=context)
            smtp.ehlo()
        if config.smtp_username:
            smtp.login(config.smtp_username, config.smtp_password)
        smtp.send_message(msg)


def _deliver(lead_id: int, reference: str, config: ClinicConfig, base_url: str | None) -> None:
    try:
        msg = build_alert(lead_id=lead_id, reference=reference, config=config, base_url=base_url)
        send_alert(msg, config)
    except Exception:  # noqa: BLE001 - an alert failure must never reach the person submitting
        log.exception("Urgent-lead alert for %s (lead %s) was not sent", reference, lead_id)
    else:
        log.info("Urgent-lead alert for %s sent to the on-call address", reference)


def notify_urgent_lead(
    *, lead_id: int, reference: str, config: ClinicConfig, base_url: str | None = None
) -> Future[None] | None:
    """Queue the alert for a committed urgent lead; None when SMTP is not configured.

    Call it after the commit (an alert about a lead that was rolled back would point
    nowhere). Returns the future so tests can wait for it; callers need not.
    """
    if not alert_configured(config):
        return None
    return _executor.submit(_deliver, lead_id, reference, config, base_url)
