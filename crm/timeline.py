"""A lead's history as one list, newest first: what the person sent and everything staff did.

Each item keeps apart the words we wrote (`title`, `meta`) and the words someone typed
(`text`: the lead's message, a note), so the page can show the typed words as plain text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from crm import clinic_settings
from crm.access import Actor, Perm, require
from crm.enums import Channel, Outcome, ScreeningItem, Source, Stage
from crm.errors import NotFound
from crm.models import (
    Appointment,
    AuditEvent,
    Consult,
    ContactAttempt,
    Lead,
    Note,
    ScreeningAnswer,
    ScreeningDecision,
    StageChange,
    Submission,
    User,
)
from crm.timeutil import as_utc, format_local

__all__ = ["TimelineItem", "timeline"]

# Audit events that belong on the timeline (the others are there as rows of their own).
_AUDITED = ("lead.assign", "lead.next_action", "lead.update")

_SOURCES = {
    Source.WEB_FORM.value: "Web form",
    Source.PHONE.value: "Phone inquiry",
    Source.REFERRAL.value: "Referral",
    Source.IMPORT.value: "Imported",
}
_SCREENING_LABELS = {
    ScreeningItem.PREGNANCY.value: "Pregnancy",
    ScreeningItem.SUBSTANCE_USE.value: "Substance use",
    ScreeningItem.CARDIOVASCULAR.value: "Cardiovascular disease",
    ScreeningItem.HYPERTENSION.value: "Hypertension",
    ScreeningItem.PSYCHOSIS.value: "Psychosis / schizophrenia",
    ScreeningItem.LIVER_CARDIAC.value: "Liver or cardiac condition",
    ScreeningItem.MEDICATIONS.value: "Current medications",
    ScreeningItem.DRIVER_ARRANGED.value: "Driver home arranged",
    ScreeningItem.RECORDS_RECEIVED.value: "Records / referral received",
}


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    # submission, stage, attempt, note, consult, screening, appointment, assignment, update
    kind: str
    title: str  # our words
    actor: str | None = None
    meta: str | None = None  # our words: time in stage, reason, outcome, ...
    text: str | None = None  # someone's own words: show as plain text, never Markdown/HTML


def _label(value: str) -> str:
    return value.replace("_", " ")


def duration(seconds: int | None) -> str:
    """Time in a stage as people say it: "45 min", "3 h 10 min", "2 d 4 h"."""
    if seconds is None:
        return ""
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def timeline(*, session: Session, actor: Actor, lead_id: int) -> list[TimelineItem]:
    """Everything that happened to the lead, newest first."""
    require(actor, Perm.LEADS_READ)
    if session.get(Lead, lead_id) is None:
        raise NotFound(f"Lead {lead_id} does not exist.")
    tz = clinic_settings.load(session).timezone
    names = _Names(session)
    items: list[TimelineItem] = []
    items += _submissions(session, lead_id)
    items += _stage_changes(session, lead_id, names)
    items += _attempts(session, lead_id, names)
    items += _notes(session, lead_id, names)
    items += _consults(session, lead_id, names, tz)
    items += _screening(session, lead_id, names)
    items += _appointments(session, lead_id, names, tz)
    items += _audited(session, lead_id, names, tz)
    # Newest first; for one instant, the order things happen in, reversed.
    return sorted(items, key=lambda i: (as_utc(i.at), _ORDER.get(i.kind, 0)), reverse=True)


# Within one instant (a booking also moves the stage): the cause before its effect.
_ORDER = {"submission": 0, "attempt": 1, "consult": 1, "screening": 1, "appointment": 1, "stage": 2}


class _Names:
    """Staff names by id, read once per timeline."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[int, str] = {}

    def __call__(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        if user_id not in self._cache:
            user = self._session.get(User, user_id)
            self._cache[user_id] = (user.name or user.email) if user else f"user {user_id}"
        return self._cache[user_id]


def _submissions(session: Session, lead_id: int) -> list[TimelineItem]:
    rows = session.exec(select(Submission).where(Submission.lead_id == lead_id)).all()
    return [
        TimelineItem(
            at=s.received_at,
            kind="submission",
            title=f"{_SOURCES.get(s.source, _label(s.source).capitalize())} submission",
            meta="Flagged as a possible crisis" if s.crisis_reason else None,
            text=s.message,
        )
        for s in rows
    ]


def _stage_changes(session: Session, lead_id: int, names: _Names) -> list[TimelineItem]:
    rows = session.exec(select(StageChange).where(StageChange.lead_id == lead_id)).all()
    items = []
    for c in rows:
        to = Stage(c.to_stage).label
        if c.from_stage is None:
            title, meta = f"Lead created: {to}", None
        else:
            before = Stage(c.from_stage).label
            title = f"Stage: {before} → {to}"
            meta = f"after {duration(c.seconds_in_previous)} in {before}"
        if c.reason:
            meta = f"{meta} · reason: {c.reason}" if meta else f"reason: {c.reason}"
        items.append(
            TimelineItem(
                at=c.at, kind="stage", title=title, actor=names(c.actor_id), meta=meta, text=c.note
            )
        )
    return items


def _attempts(session: Session, lead_id: int, names: _Names) -> list[TimelineItem]:
    rows = session.exec(select(ContactAttempt).where(ContactAttempt.lead_id == lead_id)).all()
    return [
        TimelineItem(
            at=a.at,
            kind="attempt",
            title=f"{_choice(Channel, a.channel)} · {_choice(Outcome, a.outcome)}",
            actor=names(a.actor_id),
            text=a.note,
        )
        for a in rows
    ]


def _choice(enum: Any, value: str) -> str:
    try:
        return _label(enum(value).value).capitalize()
    except ValueError:
        return value


def _notes(session: Session, lead_id: int, names: _Names) -> list[TimelineItem]:
    rows = session.exec(select(Note).where(Note.lead_id == lead_id)).all()
    return [
        TimelineItem(at=n.at, kind="note", title="Note", actor=names(n.actor_id), text=n.body)
        for n in rows
    ]


def _consults(session: Session, lead_id: int, names: _Names, tz: str) -> list[TimelineItem]:
    rows = session.exec(select(Consult).where(Consult.lead_id == lead_id)).all()
    items = []
    for c in rows:
        when = format_local(c.starts_at, tz)
        provider = names(c.provider_id) or "a provider"
        items.append(
            TimelineItem(
                at=c.created_at,
                kind="consult",
                title=f"Consult booked for {when} with {provider}",
                actor=names(c.booked_by_id),
            )
        )
        if c.status != "booked":
            meta = []
            if c.candidate:
                meta.append(f"candidate: {_label(c.candidate)}")
            if c.topics:
                meta.append("topics: " + ", ".join(_label(t) for t in c.topics.split(",") if t))
            items.append(
                TimelineItem(
                    at=c.updated_at,
                    kind="consult",
                    title=f"Consult {_label(c.status)} ({when})",
                    meta=" · ".join(meta) or None,
                    text=c.outcome_notes,
                )
            )
    return items


def _screening(session: Session, lead_id: int, names: _Names) -> list[TimelineItem]:
    answers = session.exec(
        select(ScreeningAnswer)
        .where(ScreeningAnswer.lead_id == lead_id)
        .order_by(col(ScreeningAnswer.id))
    ).all()
    # Answers saved together (one save of the checklist) read as one entry.
    groups: dict[tuple[datetime, int | None], list[ScreeningAnswer]] = {}
    for a in answers:
        groups.setdefault((as_utc(a.updated_at), a.updated_by_id), []).append(a)
    items = []
    for (at, by), group in groups.items():
        lines = []
        for a in group:
            line = f"{_SCREENING_LABELS.get(a.item, a.item)}: {a.answer}"
            if a.bp_systolic and a.bp_diastolic:
                line += f" (BP {a.bp_systolic}/{a.bp_diastolic})"
            if a.note:
                line += f" — {a.note}"
            lines.append(line)
        items.append(
            TimelineItem(
                at=at,
                kind="screening",
                title=f"Screening answers recorded ({len(group)})",
                actor=names(by),
                text="\n".join(lines),
            )
        )
    decisions = session.exec(
        select(ScreeningDecision).where(ScreeningDecision.lead_id == lead_id)
    ).all()
    items += [
        TimelineItem(
            at=d.decided_at,
            kind="screening",
            title=f"Screening decision: {_label(d.outcome)}",
            actor=names(d.decided_by_id),
            text=d.reason,
        )
        for d in decisions
    ]
    return items


def _appointments(session: Session, lead_id: int, names: _Names, tz: str) -> list[TimelineItem]:
    rows = session.exec(select(Appointment).where(Appointment.lead_id == lead_id)).all()
    items = []
    for a in rows:
        which = "First infusion" if a.number == 1 else f"Infusion #{a.number}"
        room = f", {a.room}" if a.room else ""
        status = "" if a.status in ("booked", "completed") else f" ({_label(a.status)})"
        items.append(
            TimelineItem(
                at=a.created_at,
                kind="appointment",
                title=f"{which} booked for {format_local(a.starts_at, tz)}{status}",
                actor=names(a.created_by_id),
                meta=f"{a.duration_minutes} min{room}",
            )
        )
        if a.completed_at is not None:
            items.append(
                TimelineItem(at=a.completed_at, kind="appointment", title=f"{which} completed")
            )
    return items


def _audited(session: Session, lead_id: int, names: _Names, tz: str) -> list[TimelineItem]:
    rows = session.exec(
        select(AuditEvent).where(
            AuditEvent.lead_id == lead_id, col(AuditEvent.action).in_(_AUDITED)
        )
    ).all()
    items = []
    for e in rows:
        details: dict[str, Any] = json.loads(e.details or "{}")
        who = names(e.actor_id)
        if e.action == "lead.assign":
            owner = (details.get("owner") or [None, None])[1]
            how = details.get("how")
            if owner is None:
                title = "Unassigned"
            elif how == "claim":
                title = f"Claimed by {owner}"
            elif how == "round_robin":
                title = f"Assigned to {owner} (round-robin)"
            else:
                title = f"Assigned to {owner}"
            items.append(TimelineItem(at=e.at, kind="assignment", title=title, actor=who))
        elif e.action == "lead.next_action":
            action = (details.get("next_action") or [None, None])[1]
            due = (details.get("next_action_due_at") or [None, None])[1]
            meta = None
            if due:
                meta = "due " + format_local(datetime.fromisoformat(due), tz)
            title = "Next action set" if action else "Next action cleared"
            items.append(
                TimelineItem(at=e.at, kind="update", title=title, actor=who, meta=meta, text=action)
            )
        else:
            fields = ", ".join(_label(k) for k in details)
            items.append(
                TimelineItem(
                    at=e.at, kind="update", title="Contact details changed", actor=who, meta=fields
                )
            )
    return items
