"""The triage queue: which leads the care team works next, how to find one, and who owns it.

The queue is open leads, urgent first, then the most overdue next step first (a lead with no
due date comes last). Paging, filtering, searching and counting all happen in SQL on the
covering index `ix_lead_queue` (see migrations/versions/0003_workspace.py), so a page costs a
few index entries at 1,000,000 leads and the least selective filter one pass over the open
leads' index entries. Pages get plain dataclasses, never ORM objects.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, false, func, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlmodel import Session, col, select

from crm import audit, catalog, clinic_settings, sla
from crm.access import Actor, Perm, require
from crm.clinic_settings import ClinicConfig
from crm.concurrency import bump, lock_lead
from crm.enums import OPEN_STAGES, Role, Stage
from crm.errors import InvalidInput, NotFound
from crm.models import Contact, Lead, Service, ServiceArea, User
from crm.timeutil import as_utc, utcnow
from crm.validation import normalize_phone

__all__ = [
    "AREA_OUT",
    "OWNER_ANYONE",
    "OWNER_MINE",
    "OWNER_UNASSIGNED",
    "QueueFilters",
    "QueuePage",
    "QueueRow",
    "Search",
    "TeamMember",
    "assign",
    "assign_round_robin",
    "claim",
    "parse_search",
    "queue_page",
    "set_away",
    "sla_state",
    "stage_counts",
    "team",
]

OWNER_ANYONE = "anyone"
OWNER_MINE = "mine"
OWNER_UNASSIGNED = "unassigned"
AREA_OUT = "out_of_area"

# Beyond this many matches the queue says "10,000+" instead of counting every one.
TOTAL_CAP = 10_000
# A name prefix shared by more people than this is searched among open leads only.
NAME_PROBE = 2_000
# A first response this late is shown in calendar days; counting business minutes across
# months of closed nights and weekends would cost more than the answer is worth.
_BUSINESS_CLOCK_DAYS = 3
_PHONE_CHARS = re.compile(r"[0-9\s().+\-]+")


# What the coordinator chose to see. Empty or None means "any".
@dataclass(frozen=True)
class QueueFilters:
    stages: tuple[str, ...] = ()
    owner: str | int = OWNER_ANYONE  # OWNER_MINE / OWNER_UNASSIGNED / OWNER_ANYONE / a user id
    area: int | str | None = None  # a service area id, or AREA_OUT
    service_id: int | None = None
    source: str | None = None
    overdue_only: bool = False
    urgent_only: bool = False
    search: str = ""

    @property
    def is_default(self) -> bool:
        return self == QueueFilters()


# One line of the queue, ready to show.
@dataclass(frozen=True)
class QueueRow:
    lead_id: int
    reference: str
    created_at: datetime
    age: str
    name: str
    service: str
    area: str
    stage: str
    stage_label: str
    is_open: bool
    owner_id: int | None
    owner: str
    attempts: int
    next_action: str
    due_at: datetime | None
    sla: str
    sla_late: bool
    urgent: bool
    overdue: bool
    badges: tuple[str, ...]


# A search box entry, read as what it most likely is.
@dataclass(frozen=True)
class Search:
    kind: str  # "name", "email", "phone", "reference" or "invalid_phone"
    value: str


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int | None  # None: more than TOTAL_CAP matches
    stage_counts: dict[str, int] = field(default_factory=dict)
    search: Search | None = None  # how the search box was read
    open_only: bool = False  # a name search too broad to include closed leads


@dataclass(frozen=True)
class TeamMember:
    id: int
    label: str
    role: str
    away: bool


# --- Search ------------------------------------------------------------------------------------


def parse_search(text: str) -> Search | None:
    """What the search box holds: an email, a phone number in any format, a reference or a name."""
    from crm.intake import REFERENCE_PREFIX  # the reference format is intake's

    raw = unicodedata.normalize("NFC", text or "").strip()
    if not raw:
        return None
    if "@" in raw:
        return Search("email", raw.lower())
    if raw.upper().startswith(REFERENCE_PREFIX) and " " not in raw:
        return Search("reference", raw.upper())
    digits = re.sub(r"\D", "", raw)
    if _PHONE_CHARS.fullmatch(raw) and len(digits) >= 3:
        try:
            phone = normalize_phone(raw)
        except ValueError:
            return Search("invalid_phone", raw)
        return Search("phone", phone or raw)
    return Search("name", " ".join(raw.lower().split()))


def _prefix(column: Any, prefix: str, dialect: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, in a form the column's index can serve.

    SQLite: a range (its LIKE ignores case and skips a BINARY index) plus an exact check.
    PostgreSQL: LIKE, which is exact under any collation (it uses the index under "C").
    """
    if dialect == "sqlite":
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return (
            (column >= prefix) & (column < upper) & (func.substr(column, 1, len(prefix)) == prefix)
        )
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")


class _NoIndex(FunctionElement[Any]):
    """A column SQLite must not pick an index for (rendered `+col`; plain elsewhere).

    Searching by phone, email or reference finds one or two people: the plan must start from
    that person, not walk the queue index in order looking for them.
    """

    inherit_cache = True


@compiles(_NoIndex)
def _no_index_default(element: _NoIndex, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(list(element.clauses)[0], **kw))


@compiles(_NoIndex, "sqlite")
def _no_index_sqlite(element: _NoIndex, compiler: Any, **kw: Any) -> str:
    return "+" + str(compiler.process(list(element.clauses)[0], **kw))


def _search_condition(search: Search, dialect: str, broad: bool) -> ColumnElement[bool]:
    if broad:
        # Checked lead by lead while walking the queue index: the first page is found in a
        # few hundred steps, without first listing every contact the prefix matches.
        named = (
            select(Contact.id)
            .where(col(Contact.id) == col(Lead.contact_id))
            .where(_prefix(col(Contact.name_key), search.value, dialect))
        )
        return named.exists()
    if search.kind == "reference":
        return col(Lead.reference) == search.value
    if search.kind == "invalid_phone":
        return false()
    if search.kind == "phone":
        contacts = select(Contact.id).where(Contact.phone == search.value)
    elif search.kind == "email":
        contacts = select(Contact.id).where(_prefix(col(Contact.email_key), search.value, dialect))
    else:
        contacts = select(Contact.id).where(_prefix(col(Contact.name_key), search.value, dialect))
    return col(Lead.contact_id).in_(contacts)


# --- The queue ---------------------------------------------------------------------------------


def _order() -> list[Any]:
    # The same expressions, in the same order, as ix_lead_queue: the index hands rows over sorted.
    return [
        col(Lead.urgent).desc(),
        col(Lead.due_at).is_(None),
        col(Lead.due_at).asc(),
        col(Lead.id).asc(),
    ]


def _conditions(
    filters: QueueFilters, *, actor: Actor, now: datetime, dialect: str, broad: bool = False
) -> tuple[list[ColumnElement[bool]], bool]:
    """The WHERE terms for `filters`, and whether they reach closed leads too.

    A search finds the person whatever their stage, closed leads included (to reopen one),
    starting from the matching contacts. A `broad` name search (a prefix that thousands of
    people share) looks among open leads only, in queue order, which stays quick.
    """
    search = parse_search(filters.search)
    selective = search is not None and search.kind != "name"

    def c(column: Any) -> Any:
        return _NoIndex(column) if selective else column

    terms: list[ColumnElement[bool]] = []
    every_stage = search is not None and not broad
    if not every_stage:
        terms.append(col(Lead.is_open) == true())
    if search is not None:
        terms.append(_search_condition(search, dialect, broad))
    if filters.stages:
        stages = [Stage(s).value for s in filters.stages]
        terms.append(c(Lead.stage) == stages[0] if len(stages) == 1 else c(Lead.stage).in_(stages))
    if filters.owner == OWNER_MINE:
        terms.append(c(Lead.owner_id) == actor.id)
    elif filters.owner == OWNER_UNASSIGNED:
        terms.append(c(Lead.owner_id).is_(None))
    elif isinstance(filters.owner, int):
        terms.append(c(Lead.owner_id) == filters.owner)
    if filters.area == AREA_OUT:
        terms.append(c(Lead.out_of_area) == true())
    elif isinstance(filters.area, int):
        terms.append(c(Lead.service_area_id) == filters.area)
    if filters.service_id is not None:
        terms.append(c(Lead.service_id) == filters.service_id)
    if filters.source:
        terms.append(c(Lead.source) == filters.source)
    if filters.overdue_only:
        terms.append(c(Lead.due_at) < now)
    if filters.urgent_only:
        terms.append(c(Lead.urgent) == true())
    return terms, every_stage


def page_statement(
    filters: QueueFilters,
    *,
    actor: Actor,
    now: datetime,
    dialect: str,
    page: int,
    page_size: int,
    broad: bool = False,
) -> Any:
    """The one SELECT behind a queue page.

    The inner query picks the page's lead ids from the index alone (ORDER BY + LIMIT/OFFSET);
    the outer query joins just those rows to contact, service, area and owner.
    """
    terms, every_stage = _conditions(filters, actor=actor, now=now, dialect=dialect, broad=broad)
    order = ([col(Lead.is_open).desc()] if every_stage else []) + _order()
    ids = (
        select(Lead.id)
        .where(*terms)
        .order_by(*order)
        .limit(page_size)
        .offset((max(1, page) - 1) * page_size)
        .subquery("page")
    )
    return (
        select(  # type: ignore[call-overload, misc]
            Lead.id,
            Lead.reference,
            Lead.created_at,
            Lead.stage,
            Lead.is_open,
            Lead.urgent,
            Lead.owner_id,
            Lead.attempts,
            Lead.next_action,
            Lead.due_at,
            Lead.first_response_due_at,
            Lead.first_response_at,
            Lead.resubmitted,
            Lead.possible_duplicate_of_id,
            Lead.out_of_area,
            Contact.first_name,
            Contact.last_name,
            Service.name,
            ServiceArea.name,
            User.name,
            User.email,
        )
        .join(ids, ids.c.id == Lead.id)
        .join(Contact, col(Contact.id) == Lead.contact_id)
        .outerjoin(Service, col(Service.id) == Lead.service_id)
        .outerjoin(ServiceArea, col(ServiceArea.id) == Lead.service_area_id)
        .outerjoin(User, col(User.id) == Lead.owner_id)
        .order_by(*order)
    )


def counts_statement() -> Any:
    """Open leads per stage (an index-only pass over ix_lead_stage)."""
    return (
        select(Lead.stage, func.count())
        .where(col(Lead.stage).in_([s.value for s in OPEN_STAGES]))
        .group_by(Lead.stage)
    )


def total_statement(
    filters: QueueFilters, *, actor: Actor, now: datetime, dialect: str, broad: bool = False
) -> Any:
    """How many leads match, counted up to TOTAL_CAP + 1."""
    terms, _ = _conditions(filters, actor=actor, now=now, dialect=dialect, broad=broad)
    capped = select(Lead.id).where(*terms).limit(TOTAL_CAP + 1).subquery("matches")
    return select(func.count()).select_from(capped)


def stage_counts(*, session: Session, actor: Actor) -> dict[str, int]:
    """Open leads per stage, every open stage present (zero when empty)."""
    require(actor, Perm.LEADS_READ)
    found = {stage: int(n) for stage, n in session.exec(counts_statement()).all()}
    return {s.value: found.get(s.value, 0) for s in OPEN_STAGES}


def queue_page(
    *,
    session: Session,
    actor: Actor,
    filters: QueueFilters,
    page: int = 1,
    page_size: int = 50,
    now: datetime | None = None,
    config: ClinicConfig | None = None,
) -> QueuePage:
    """One page of the queue with the total that matches and the open leads per stage."""
    require(actor, Perm.LEADS_READ)
    now = now or utcnow()
    config = config or clinic_settings.load(session)
    dialect = session.get_bind().dialect.name
    counts = stage_counts(session=session, actor=actor)
    search = parse_search(filters.search)
    if search is not None and search.kind == "invalid_phone":
        return QueuePage(rows=[], total=0, stage_counts=counts, search=search)
    broad = search is not None and search.kind == "name" and _is_broad(session, search, dialect)
    statement = page_statement(
        filters, actor=actor, now=now, dialect=dialect, page=page, page_size=page_size, broad=broad
    )
    rows = [_row(r, now, config) for r in session.exec(statement).all()]
    total: int | None
    if page <= 1 and len(rows) < page_size:
        total = len(rows)
    elif filters.is_default:
        total = sum(counts.values())
    elif broad:
        total = None  # thousands of matches: not worth counting
    else:
        capped = total_statement(filters, actor=actor, now=now, dialect=dialect, broad=broad)
        found = int(session.exec(capped).one())
        total = None if found > TOTAL_CAP else found
    return QueuePage(rows=rows, total=total, stage_counts=counts, search=search, open_only=broad)


def _is_broad(session: Session, search: Search, dialect: str) -> bool:
    """More than NAME_PROBE people's names start this way (an index-only count, capped)."""
    matches = (
        select(Contact.id)
        .where(_prefix(col(Contact.name_key), search.value, dialect))
        .limit(NAME_PROBE + 1)
        .subquery("names")
    )
    return int(session.exec(select(func.count()).select_from(matches)).one()) > NAME_PROBE


def _row(r: Any, now: datetime, config: ClinicConfig) -> QueueRow:
    (
        lead_id, reference, created_at, stage, is_open, urgent, owner_id, attempts, next_action,
        due_at, first_due, first_at, resubmitted, duplicate_of, out_of_area, first, last,
        service, area, owner_name, owner_email,
    ) = r  # fmt: skip
    due = as_utc(due_at) if due_at else None
    overdue = bool(is_open and due is not None and due < now)
    sla_text, sla_late = ("", False)
    if is_open:  # a closed lead's clock no longer matters
        sla_text, sla_late = sla_state(
            first_response_due_at=first_due, first_response_at=first_at, now=now, config=config
        )
    return QueueRow(
        lead_id=lead_id,
        reference=reference,
        created_at=as_utc(created_at),
        age=ago(now - as_utc(created_at)),
        name=f"{first} {last}".strip(),
        service=service or "",
        area=placement(area, out_of_area),
        stage=stage,
        stage_label=Stage(stage).label,
        is_open=is_open,
        owner_id=owner_id,
        owner=(owner_name or owner_email or "") if owner_id else "",
        attempts=attempts,
        next_action=next_action or "",
        due_at=due,
        sla=sla_text,
        sla_late=sla_late,
        urgent=urgent,
        overdue=overdue,
        badges=badges(
            urgent=urgent,
            resubmitted=resubmitted,
            possible_duplicate=duplicate_of is not None,
            out_of_area=out_of_area,
            overdue=overdue,
        ),
    )


# --- Small presentation rules shared with the lead page ---------------------------------------


def placement(area: str | None, out_of_area: bool) -> str:
    """The lead's service area as lists show it: the area, "Out of area" or "Unknown"."""
    if out_of_area:
        return catalog.OUT_OF_AREA
    return area or "Unknown"


def badges(
    *, urgent: bool, resubmitted: bool, possible_duplicate: bool, out_of_area: bool, overdue: bool
) -> tuple[str, ...]:
    """The badges a lead wears, most important first."""
    flags = [
        ("urgent", urgent),
        ("overdue", overdue),
        ("re-submitted", resubmitted),
        ("possible duplicate", possible_duplicate),
        ("out of area", out_of_area),
    ]
    return tuple(name for name, on in flags if on)


def ago(delta: timedelta) -> str:
    """A duration as a short age: "4 min", "3 h", "2 d", "5 mo", "2 y"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    days = hours // 24
    if days < 60:
        return f"{days} d"
    if days < 730:
        return f"{days // 30} mo"
    return f"{days // 365} y"


def _minutes(value: float) -> str:
    total = int(round(abs(value)))
    if total < 60:
        return f"{total} min"
    return f"{total // 60} h {total % 60:02d} min"


def sla_state(
    *,
    first_response_due_at: datetime | None,
    first_response_at: datetime | None,
    now: datetime,
    config: ClinicConfig,
) -> tuple[str, bool]:
    """Speed to lead as the queue shows it, and whether the first response is late.

    Time left and lateness count business minutes only (the clock stops when the clinic is
    closed); the first logged contact attempt stops the clock for good.
    """
    if first_response_at is not None:
        return "responded", False
    if first_response_due_at is None:
        return "", False
    due = as_utc(first_response_due_at)
    if now - due > timedelta(days=_BUSINESS_CLOCK_DAYS):
        return f"{(now - due).days} d late", True
    minutes = sla.business_minutes_between(now, due, config)
    if minutes > 0:
        return f"{_minutes(minutes)} left", False
    if due > now:  # due in business time that hasn't started yet: the clock is paused
        return "0 min left", False
    return f"{_minutes(minutes)} late", True


# --- Assignment --------------------------------------------------------------------------------


def team(*, session: Session) -> list[TeamMember]:
    """Active staff who can own leads, by name."""
    users = session.exec(
        select(User).where(User.active == True).order_by(User.name, User.email)  # noqa: E712
    ).all()
    return [
        TeamMember(id=u.id or 0, label=u.name or u.email, role=u.role, away=u.away) for u in users
    ]


def _owner_label(session: Session, owner_id: int | None) -> str | None:
    if owner_id is None:
        return None
    user = session.get(User, owner_id)
    return (user.name or user.email) if user else str(owner_id)


def assign(
    *,
    session: Session,
    actor: Actor,
    lead_id: int,
    owner_id: int | None,
    seen_version: int | None,
    how: str = "assign",
) -> int:
    """Give the lead to `owner_id` (None: unassign); returns the lead's new version."""
    require(actor, Perm.LEADS_WRITE)
    if owner_id is not None:
        owner = session.get(User, owner_id)
        if owner is None or not owner.active:
            raise InvalidInput("Choose an active staff member.")
    lead = lock_lead(session, lead_id=lead_id, seen_version=seen_version)
    before = lead.owner_id
    if before == owner_id:
        return lead.version
    now = utcnow()
    lead.owner_id = owner_id
    bump(session, lead, actor_id=actor.id, at=now)
    audit.record(
        session,
        actor_id=actor.id,
        action="lead.assign",
        lead_id=lead.id,
        entity="lead",
        entity_id=lead.id,
        details={
            "owner_id": [before, owner_id],
            "owner": [_owner_label(session, before), _owner_label(session, owner_id)],
            "how": how,
        },
        at=now,
    )
    session.flush()
    return lead.version


def claim(*, session: Session, actor: Actor, lead_id: int, seen_version: int | None) -> int:
    """Take the lead: its owner becomes the signed-in staff member."""
    return assign(
        session=session,
        actor=actor,
        lead_id=lead_id,
        owner_id=actor.id,
        seen_version=seen_version,
        how="claim",
    )


def assign_round_robin(
    *, session: Session, lead: Lead, config: ClinicConfig | None = None
) -> int | None:
    """Give a new lead to the next care-team member in turn, when the clinic turned it on.

    Called by intake for every new lead, in intake's transaction. The next member is the
    active, not-away care-team member who was given a lead longest ago (never first).
    Returns the new owner's id, or None when round-robin is off or nobody is available.
    """
    config = config or clinic_settings.load(session)
    if lead.owner_id is not None or not config.round_robin:
        return None
    member = session.exec(
        select(User)
        .where(User.active == True, User.away == False, User.role == Role.CARE_TEAM.value)  # noqa: E712
        .order_by(
            col(User.last_assigned_at).is_(None).desc(), col(User.last_assigned_at), col(User.id)
        )
        .limit(1)
        .with_for_update()
    ).first()
    if member is None:
        return None
    now = utcnow()
    lead.owner_id = member.id
    member.last_assigned_at = now
    session.add(lead)
    session.add(member)
    audit.record(
        session,
        actor_id=None,
        action="lead.assign",
        lead_id=lead.id,
        entity="lead",
        entity_id=lead.id,
        details={
            "owner_id": [None, member.id],
            "owner": [None, member.name or member.email],
            "how": "round_robin",
        },
        at=now,
    )
    return member.id


def set_away(*, session: Session, actor: Actor, away: bool) -> None:
    """Mark the signed-in staff member away (round-robin skips them) or back."""
    require(actor, Perm.LEADS_READ)
    user = session.get(User, actor.id)
    if user is None:
        raise NotFound("Your account no longer exists.")
    if user.away == away:
        return
    user.away = away
    session.add(user)
    audit.record(
        session,
        actor_id=actor.id,
        action="user.away",
        entity="user",
        entity_id=actor.id,
        details={"away": [not away, away]},
    )


def is_away(*, session: Session, actor: Actor) -> bool:
    user = session.get(User, actor.id)
    return bool(user and user.away)
