"""Realistic synthetic data for demos and load tests (`python -m crm demo`).

A year of inquiries for the seeded Loudoun County clinic: busier weekdays and business hours,
a gentle growth trend, every stage of the pipeline with realistic drop-off, consult no-shows,
reopened and returning people, staff, consults, screening decisions and first infusions.

Same seed and same as-of date give the same rows. Everything is drawn from one
`random.Random(seed)`; rows are written as executemany of `insert(table)` in chunks of 10,000
leads, with primary keys assigned here (from max(id) + 1) so nothing needs a round trip per
row. A million leads take a few minutes on SQLite.
Each lead's history is simulated event by event and its derived columns are replayed from
that log exactly as `crm.pipeline.apply_stage` / `transition` would set them.
"""

from __future__ import annotations

import heapq
import json
import random
import time as _time
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, DateTime, Engine, Table, func, insert, select, text
from sqlmodel import Session, SQLModel

from crm import catalog, clinic_settings, crisis, sla
from crm import models as _models  # noqa: F401  (registers every table on the metadata)
from crm.clinic_settings import ClinicConfig
from crm.enums import (
    CLOSED_STAGES,
    Answer,
    AppointmentStatus,
    Candidate,
    Channel,
    ConsultStatus,
    ConsultTopic,
    ContactMethod,
    Outcome,
    Role,
    ScreeningOutcome,
    Source,
    Stage,
)
from crm.errors import CRMError
from crm.pipeline import NEEDS_REASON, REACHED_COLUMN

__all__ = ["DemoRefused", "DemoResult", "generate"]

MIN = 60
HOUR = 3600
DAY = 86400
CHUNK = 10_000  # leads per executemany batch
CHUNKS_PER_TRANSACTION = 10
PLANT_BEFORE_DAYS = 40  # planted leads (one per stage) start this long before the as-of date


class DemoRefused(CRMError):
    """The database already has leads; demo data is only added when asked to append."""


@dataclass(frozen=True)
class DemoResult:
    """What one run wrote: rows per table, the as-of date and the wall time."""

    counts: dict[str, int]
    as_of: date
    seed: int
    seconds: float


# --- Small fixed vocabularies (non-identifying, mixed cultures) -----------------------------

FIRST_NAMES = (
    "James", "Maria", "Wei", "Aisha", "Carlos", "Priya", "Daniel", "Fatima", "Kenji", "Olivia",
    "Mohammed", "Sofia", "David", "Mei", "Kwame", "Elena", "Raj", "Hannah", "Diego", "Amara",
    "Michael", "Leila", "Tomás", "Grace", "Yusuf", "Ana", "Samuel", "Chloe", "Hiroshi", "Zainab",
    "Robert", "Isabel", "Minh", "Nadia", "Andre", "Sarah", "Arjun", "Lucia", "Kofi", "Emily",
    "Omar", "Ingrid", "Jamal", "Rosa", "Sung-min", "Claire", "Mateo", "Anjali", "Patrick", "Yara",
    "Thomas", "Noor", "Luis", "Keiko", "Jonah", "Esther", "Ravi", "Camila", "Ethan", "Zoë",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Garcia", "Chen", "Okafor", "Patel", "Nguyen", "Johnson", "Hernandez", "Kim",
    "Williams", "Rahman", "Rossi", "Brown", "Tanaka", "Mensah", "Ivanova", "Singh", "Davis",
    "Lopez", "Haddad", "Miller", "Cohen", "Wilson", "Park", "Abdi", "Martinez", "Murphy",
    "Yamamoto", "Osei", "Kowalski", "Anderson", "Gupta", "Silva", "Tran", "Moore", "Ali",
    "Taylor", "Novak", "Thomas", "Hussain", "Jackson", "Ramírez", "White", "Sato", "Adeyemi",
    "Harris", "Khan", "Clark", "Schmidt", "Lewis", "Reyes", "Walker", "Nakamura", "Hall",
    "Eze", "Young", "Bianchi", "King", "Dubois", "Wright",
)  # fmt: skip
MESSAGES = (
    "I've been treated for depression for years and medications haven't helped much. I'd like to learn about ketamine infusions.",
    "My psychiatrist suggested I look into ketamine. What does the free consultation involve?",
    "Looking for information about cost and whether insurance covers any part of it.",
    "I have chronic pain and would like to know if infusions could help.",
    "My anxiety has been getting worse. Do you have appointments later in the day?",
    "Interested in Spravato. Is it covered by insurance?",
    "Asking for a family member who has PTSD. Can they call you directly?",
    "How many infusions are usually needed, and how long does each one take?",
    "I'd like to schedule a free consultation.",
    "What are the side effects, and can I drive myself home afterwards?",
    "I've tried several antidepressants and therapy. Would I be a candidate?",
    "Do I need a referral from my doctor before the consultation?",
    "Please call me in the afternoon if possible.",
    "Can you send me information about the treatment and pricing?",
)
CRISIS_MESSAGES = (
    "I've been having thoughts of suicide and nothing has helped so far.",
    "Some days I don't want to be alive anymore. I need help soon.",
    "I have been thinking about hurting myself. Please call me.",
)
HEARD_ABOUT = (
    "Google search", "Instagram", "Facebook", "Friend or family", "My therapist",
    "My psychiatrist", "Podcast", "Local news", None, None,
)  # fmt: skip
BEST_TIMES = ("Mornings", "Afternoons", "Evenings", "Any time", None)
CONSULT_NOTES = (
    "Discussed the protocol, common short-term side effects and cost. Sending screening forms.",
    "Good questions about the infusion series. Will gather records from psychiatrist.",
    "Explained that a driver is needed after every infusion. Interested in proceeding.",
    "Reviewed current medications; provider wants records before screening.",
)
INFUSION_DURATION_DEFAULT = 60

# Default provider availability (clinic-local wall time), cycled over the demo providers.
AVAILABILITY_TEMPLATES: tuple[tuple[tuple[int, str, str], ...], ...] = (
    tuple((d, s, e) for d in range(5) for s, e in (("09:00", "12:00"), ("13:00", "17:00"))),
    tuple((d, "08:00", "18:00") for d in (0, 2, 4)),
    ((0, "13:00", "17:00"), (1, "08:00", "18:00"), (3, "08:00", "18:00")),
)
CARE_TEAM = (
    "Maya Thompson", "Luis Ortega", "Grace Kim", "Amara Okafor", "Ben Carter", "Sana Qureshi",
)  # fmt: skip
CARE_TEAM_WEIGHTS = (1.4, 1.25, 1.1, 1.0, 0.8, 0.6)
PROVIDERS = ("Dr. Rachel Adler", "Dr. Samuel Osei", "Jordan Lee, NP")
MANAGER = "Dana Whitfield"

# Where people write from: the intended area (by name) and (ZIP, city) pairs. Pairs are kept
# only when crm.catalog.resolve_area really places them there; `None` means out of area.
AREA_PLACES: tuple[tuple[str | None, float, tuple[tuple[str | None, str], ...]], ...] = (
    ("Ashburn", 0.33, (("20147", "Ashburn"), ("20148", "Ashburn"), ("20148", "Brambleton"))),
    ("Leesburg", 0.22, (("20175", "Leesburg"), ("20176", "Leesburg"))),
    # Lansdowne's real ZIP (20176) is listed under Leesburg, which wins; the city alone places it.
    ("Lansdowne", 0.07, (("20176", "Lansdowne"), (None, "Lansdowne"))),
    (
        "Loudoun County",
        0.22,
        (
            ("20164", "Sterling"), ("20165", "Sterling"), ("20166", "Sterling"),
            ("20152", "South Riding"), ("20132", "Purcellville"), ("20141", "Round Hill"),
            ("20180", "Lovettsville"), ("20158", "Hamilton"), ("20197", "Waterford"),
            ("20105", "Aldie"), ("20117", "Middleburg"),
        ),
    ),
    (
        None,
        0.16,
        (
            ("22030", "Fairfax"), ("22101", "McLean"), ("22180", "Vienna"), ("20170", "Herndon"),
            ("20190", "Reston"), ("22201", "Arlington"), ("22314", "Alexandria"),
            ("20110", "Manassas"), ("22601", "Winchester"), ("22401", "Fredericksburg"),
            ("23219", "Richmond"), ("22903", "Charlottesville"), ("20814", "Bethesda"),
            ("20850", "Rockville"), ("20910", "Silver Spring"), ("21701", "Frederick"),
            ("21201", "Baltimore"), ("20874", "Germantown"), ("20001", "Washington"),
            ("20009", "Washington"), ("20016", "Washington"),
        ),
    ),
)  # fmt: skip
AREA_CODES = {"VA": ("571", "703"), "MD": ("301", "240"), "DC": ("202",)}

SERVICE_WEIGHTS = {
    "Depression (incl. treatment-resistant)": 34,
    "Anxiety": 14,
    "PTSD": 10,
    "OCD": 4,
    "Bipolar depression": 5,
    "Chronic pain (CRPS, fibromyalgia, neuropathic)": 10,
    "Suicidal thoughts": 3,
    "Substance use": 3,
    "Spravato nasal spray": 7,
    "Not sure yet": 10,
}
SOURCE_WEIGHTS = (
    (Source.WEB_FORM, 0.58),
    (Source.PHONE, 0.22),
    (Source.REFERRAL, 0.12),
    (Source.IMPORT, 0.08),
)
WEEKDAY_WEIGHTS = (1.25, 1.2, 1.12, 1.05, 0.92, 0.45, 0.5)
HOUR_WEIGHTS_WEEKDAY = (
    0.15, 0.1, 0.08, 0.06, 0.06, 0.1, 0.3, 0.6, 1.1, 1.5, 1.6, 1.55,
    1.3, 1.45, 1.5, 1.4, 1.25, 1.0, 0.8, 0.75, 0.7, 0.6, 0.45, 0.3,
)  # fmt: skip
HOUR_WEIGHTS_WEEKEND = (
    0.2, 0.12, 0.08, 0.06, 0.06, 0.08, 0.15, 0.3, 0.55, 0.8, 1.0, 1.0,
    0.95, 0.9, 0.9, 0.85, 0.8, 0.75, 0.7, 0.7, 0.65, 0.55, 0.4, 0.3,
)  # fmt: skip
GROWTH = 0.5  # the last day gets 1.5x the first day's volume

P_RETURNING = 0.05
P_URGENT = 0.03
P_RESUBMIT = 0.02


# --- Clinic calendar in epoch seconds ---------------------------------------------------------


class _Clock:
    """Local days and business hours as UTC epoch seconds (fast, no datetime in the hot path).

    `base[d]` is local midnight of day d computed with that day's noon UTC offset, so every
    wall time after 03:00 is exact even on daylight-saving days.
    """

    def __init__(self, tz: str, first: date, days: int, hours: dict[str, list[str] | None]) -> None:
        zone = ZoneInfo(tz)
        self.first = first
        self.base: list[int] = []
        self.weekday: list[int] = []
        self.open: list[tuple[int, int] | None] = []
        for i in range(days):
            day = first + timedelta(days=i)
            noon = datetime.combine(day, time(12), zone)
            offset = int(noon.utcoffset().total_seconds())  # type: ignore[union-attr]
            midnight = int(datetime.combine(day, time(0), UTC).timestamp()) - offset
            self.base.append(midnight)
            wd = day.weekday()
            self.weekday.append(wd)
            span = hours.get(clinic_settings.WEEKDAYS[wd])
            if span:
                self.open.append(
                    (midnight + _minutes(span[0]) * MIN, midnight + _minutes(span[1]) * MIN)
                )
            else:
                self.open.append(None)

    def day_of(self, t: int) -> int:
        return max(0, min(len(self.base) - 1, bisect_right(self.base, t) - 1))

    def at(self, day: int, minute: int) -> int:
        """Epoch of local wall time `minute` (minutes after midnight) on day index `day`."""
        return self.base[day] + minute * MIN

    def in_hours(self, t: int) -> bool:
        span = self.open[self.day_of(t)]
        return span is not None and span[0] <= t < span[1]

    def next_open(self, t: int) -> int:
        """`t` when the clinic is open then, else the next opening time."""
        d = self.day_of(t)
        last = len(self.base) - 1
        while True:
            span = self.open[d]
            if span is not None:
                if t < span[0]:
                    return span[0]
                if t < span[1]:
                    return t
            if d >= last:
                return t
            d += 1

    def add_business(self, t: int, seconds: int) -> int:
        """`t` plus `seconds` of open clinic time (the first-response deadline)."""
        t = self.next_open(t)
        last = len(self.base) - 1
        while True:
            d = self.day_of(t)
            span = self.open[d]
            if span is None or d >= last:
                return t + seconds
            room = span[1] - t
            if seconds <= room:
                return t + seconds
            seconds -= room
            t = self.next_open(span[1])


def _minutes(hhmm: str) -> int:
    hh, mm = hhmm.split(":")
    return int(hh) * 60 + int(mm)


class _Slots:
    """Distinct consult slots per provider inside their availability (the partial unique index)."""

    def __init__(
        self,
        clock: _Clock,
        providers: list[tuple[int, dict[int, list[int]]]],
        taken: set[tuple[int, int]],
    ) -> None:
        self.clock = clock
        self.providers = providers
        self.taken = taken

    def book(self, rng: random.Random, earliest: int) -> tuple[int, int] | None:
        """(provider_id, start epoch) of a free slot at or after `earliest`, or None."""
        clock = self.clock
        last = len(clock.base) - 1
        d = clock.day_of(earliest)
        count = len(self.providers)
        while count and d <= last:
            wd = clock.weekday[d]
            first = rng.randrange(count)
            for kk in range(count):
                provider_id, windows = self.providers[(first + kk) % count]
                starts = windows.get(wd)
                if not starts:
                    continue
                n = len(starts)
                offset = rng.randrange(n)
                for j in range(n):
                    start = clock.at(d, starts[(offset + j) % n])
                    if start >= earliest and (provider_id, start) not in self.taken:
                        self.taken.add((provider_id, start))
                        return provider_id, start
            d += 1
        return None


# --- One lead's simulated journey ---------------------------------------------------------------


class _Journey:
    """The events of one lead, in time order, stopped at the as-of instant."""

    __slots__ = (
        "created", "cutoff", "last", "stage", "owner", "changes", "attempts", "consults",
        "decisions", "appointments", "reopened", "candidate", "provider", "pending",
    )  # fmt: skip

    def __init__(self, created: int, cutoff: int) -> None:
        self.created = created
        self.cutoff = cutoff
        self.last = created
        self.stage = Stage.NEW
        self.owner: int | None = None
        self.changes: list[tuple[Stage, Stage, int, int | None, str | None, str | None]] = []
        self.attempts: list[tuple[int, int | None, str, str, str | None]] = []
        self.consults: list[list[Any]] = []
        self.decisions: list[tuple[str, str | None, int | None, int]] = []
        self.appointments: list[list[Any]] = []
        self.reopened = False
        self.candidate: str | None = None
        self.provider: int | None = None
        # When the next step would have happened, had the data gone on past the as-of day.
        self.pending: int | None = None

    def ok(self, at: int) -> bool:
        """True when `at` is before the as-of instant; else it is remembered as what's pending."""
        if at < self.cutoff:
            return True
        if self.pending is None:
            self.pending = at
        return False

    def move(
        self,
        to: Stage,
        at: int,
        actor: int | None,
        reason: str | None = None,
        note: str | None = None,
    ) -> bool:
        """Log a stage change at `at` (nudged past the previous one); False past the as-of time."""
        at = max(at, self.last + 1)
        if not self.ok(at):
            return False
        self.changes.append((self.stage, to, at, actor, reason, note))
        self.stage = to
        self.last = at
        return True

    def attempt(
        self,
        at: int,
        actor: int | None,
        channel: Channel,
        outcome: Outcome,
        note: str | None = None,
    ) -> bool:
        if not self.ok(at):
            return False
        self.attempts.append((at, actor, channel.value, outcome.value, note))
        return True


class _Generator:
    """Draws every value from one Random in a fixed order, so a seed replays byte for byte."""

    def __init__(
        self,
        *,
        rng: random.Random,
        clock: _Clock,
        config: ClinicConfig,
        cutoff: int,
        care_team: list[int],
        providers: list[int],
        slots: _Slots,
        services: list[tuple[int, str]],
        places: list[tuple[str | None, float, list[tuple[str | None, str, str, int | None]]]],
        first_response_due: Callable[[int], int],
    ) -> None:
        self.rng = rng
        self.clock = clock
        self.config = config
        self.cutoff = cutoff
        self.care_team = care_team
        self.care_cum = _cumulative(
            CARE_TEAM_WEIGHTS[i % len(CARE_TEAM_WEIGHTS)] for i in range(len(care_team))
        )
        self.providers = providers
        self.slots = slots
        self.services = services
        self.service_cum = _cumulative(SERVICE_WEIGHTS.get(name, 3) for _, name in services)
        self.places = places
        self.place_cum = _cumulative(w for _, w, _ in places)
        self.source_cum = _cumulative(w for _, w in SOURCE_WEIGHTS)
        self.first_response_due = first_response_due
        self.slot_seconds = max(5, config.consult_slot_minutes) * MIN
        self.infusion_seconds = (
            config.infusion_duration_minutes or INFUSION_DURATION_DEFAULT
        ) * MIN
        self.service_names = dict(services)
        self.suicidal_service = next((i for i, n in services if n == "Suicidal thoughts"), None)

    # --- small draws ---

    def pick(self, cum: list[float]) -> int:
        return bisect_right(cum, self.rng.random() * cum[-1])

    def care(self) -> int:
        return self.care_team[self.pick(self.care_cum)]

    def soon(self, t: int, lo: int, hi: int) -> int:
        """A business-hours moment between `lo` and `hi` seconds after `t` (or the next opening)."""
        x = t + self.rng.randint(lo, hi)
        y = self.clock.next_open(x)
        if y != x:
            y += self.rng.randint(0, 90 * MIN)
        return max(y, t + 1)

    def between(self, a: int, b: int) -> int:
        """A moment strictly between a and b (or just after a when they are close)."""
        if b - a > 2 * HOUR:
            return self.rng.randint(a + HOUR, b - HOUR)
        return a + self.rng.randint(1, 10 * MIN)

    def reason(self, options: list[str], weights: dict[str, float]) -> str:
        wanted = [(r, weights[r]) for r in options if r in weights]
        if not wanted:
            return self.rng.choice(options) if options else "Other"
        cum = _cumulative(w for _, w in wanted)
        return wanted[self.pick(cum)][0]

    def lost_reason(self, out_of_area: bool, extra: dict[str, float] | None = None) -> str:
        table = {"Not interested": 3.0, "Cost": 3.0, "Chose another provider": 1.5, "Other": 0.6}
        table.update(extra or {})
        if out_of_area:
            table["Out of area"] = 6.0
        return self.reason(self.config.lost_reasons, table)

    def medical_reason(self) -> str:
        table = {
            "Pregnancy": 1.0, "Substance use history": 2.0, "Cardiovascular disease": 1.5,
            "Uncontrolled hypertension": 2.5, "Psychosis or schizophrenia history": 1.5,
            "Liver or cardiac condition": 1.0, "Medication interaction": 1.5,
            "No driver available": 1.0, "Other": 0.5,
        }  # fmt: skip
        return self.reason(self.config.not_eligible_reasons, table)

    # --- the stages ---

    def run(self, j: _Journey, *, source: Source, urgent: bool, out_of_area: bool) -> None:
        """The ordinary journey: each step draws what happens next and when."""
        rng = self.rng
        c = j.created
        p_spam = {Source.WEB_FORM: 0.045, Source.IMPORT: 0.02}.get(source, 0.004)
        if not urgent and rng.random() < p_spam:
            at = self.soon(c, 2 * MIN, 5 * HOUR)
            if not j.move(Stage.SPAM, at, self.care()):
                return
            if rng.random() > 0.08:
                return
            c = self.soon(at, 30 * MIN, 2 * DAY)  # marked by mistake: back to new
            if not j.move(Stage.NEW, c, self.care(), note="Not spam after all"):
                return
        if not urgent and rng.random() < 0.01:
            at = self.soon(c, 10 * MIN, DAY)
            j.move(
                Stage.NOT_ELIGIBLE, at, self.care(), self.medical_reason(), "From the form answers"
            )
            return
        self.first_contact(j, c, source=source, urgent=urgent, out_of_area=out_of_area)

    def first_contact(
        self, j: _Journey, c: int, *, source: Source, urgent: bool, out_of_area: bool
    ) -> None:
        rng = self.rng
        clock = self.clock
        if j.owner is None:
            j.owner = self.care()
        owner = j.owner
        if source == Source.PHONE and not j.changes:
            # The inquiry was the call itself: the coordinator who answered is the first contact.
            at = c + rng.randint(30, 4 * MIN)
            if j.attempt(
                at, owner, Channel.CALL, Outcome.REACHED, "Inbound call logged at intake"
            ) and j.move(Stage.CONTACTED, at, owner):
                self.contacted(j, at, out_of_area=out_of_area)
            return
        if urgent:
            at, p_reach = c + rng.randint(MIN, 10 * MIN), 0.85
        elif clock.in_hours(c):
            r = rng.random()
            if r < 0.33:
                at, p_reach = c + rng.randint(MIN, 5 * MIN), 0.6
            elif r < 0.63:
                at, p_reach = c + rng.randint(5 * MIN, 30 * MIN), 0.5
            elif r < 0.84:
                at, p_reach = c + rng.randint(30 * MIN, 2 * HOUR), 0.42
            elif r < 0.95:
                at, p_reach = self.soon(c, 2 * HOUR, 6 * HOUR), 0.36
            else:
                at, p_reach = self.soon(c, 18 * HOUR, 30 * HOUR), 0.32
        else:
            at, p_reach = clock.next_open(c) + rng.randint(0, 90 * MIN), 0.4
        if source == Source.IMPORT:
            p_reach *= 0.6
        tries = rng.choice((3, 4, 4, 5, 6))
        for k in range(tries):
            if k:
                p_reach = 0.3 if source != Source.IMPORT else 0.18
                at = self.soon(at, 3 * HOUR, 2 * DAY)
            if rng.random() < p_reach:
                r = rng.random()
                channel = Channel.CALL if r < 0.75 else Channel.TEXT if r < 0.92 else Channel.EMAIL
                if not j.attempt(at, owner, channel, Outcome.REACHED):
                    return
                if j.move(Stage.CONTACTED, at, owner):
                    self.contacted(j, at, out_of_area=out_of_area)
                return
            r = rng.random()
            if r < 0.38:
                channel, outcome, note = (
                    Channel.VOICEMAIL,
                    Outcome.LEFT_MESSAGE,
                    "Left a voicemail with our number",
                )
            elif r < 0.78:
                channel, outcome, note = Channel.CALL, Outcome.NO_ANSWER, None
            elif r < 0.92:
                channel, outcome, note = Channel.TEXT, Outcome.NO_ANSWER, None
            elif r < 0.96:
                channel, outcome, note = Channel.EMAIL, Outcome.NO_ANSWER, None
            elif r < 0.98:
                channel, outcome, note = Channel.EMAIL, Outcome.BOUNCED, None
            else:
                channel, outcome, note = Channel.CALL, Outcome.WRONG_NUMBER, None
            if not j.attempt(at, owner, channel, outcome, note):
                return
            if outcome == Outcome.WRONG_NUMBER and rng.random() < 0.5:
                break
        if rng.random() < 0.95:
            at = self.soon(at, 2 * DAY, 7 * DAY)
            reason = self.reason(self.config.lost_reasons, {"Unreachable": 1.0})
            if j.move(Stage.LOST, at, owner, reason):
                self.maybe_reopen(j, at, out_of_area=out_of_area)
        else:
            self.stalled(j, at)

    def contacted(self, j: _Journey, t: int, *, out_of_area: bool, again: bool = False) -> None:
        rng = self.rng
        r = rng.random()
        p_book = 0.45 if again else (0.2 if out_of_area else 0.6)
        p_lost = 0.72 if out_of_area else (0.48 if again else 0.33)
        if r < p_book:
            at = (
                t + rng.randint(2 * MIN, 15 * MIN)
                if rng.random() < 0.5
                else self.soon(t, 2 * HOUR, 3 * DAY)
            )
            self.consult(j, at, out_of_area=out_of_area)
        elif r < p_book + p_lost:
            at = self.soon(t, DAY, 14 * DAY)
            reason = self.lost_reason(out_of_area, {"Unreachable": 3.0 if again else 0.5})
            if j.move(Stage.LOST, at, j.owner, reason):
                self.maybe_reopen(j, at, out_of_area=out_of_area)
        elif r < p_book + p_lost + 0.04:
            at = self.soon(t, HOUR, 5 * DAY)
            j.move(Stage.NOT_ELIGIBLE, at, j.owner, self.medical_reason())
        else:
            self.stalled(j, t)

    def consult(
        self, j: _Journey, booked: int, *, out_of_area: bool, force_future: bool = False
    ) -> bool:
        rng = self.rng
        earliest = self.soon(booked, 20 * HOUR, 6 * DAY)
        if force_future:
            earliest = max(earliest, self.cutoff + DAY)
        if not j.ok(max(booked, j.last + 1)):
            return False
        slot = self.slots.book(rng, earliest)
        if slot is None or not j.move(Stage.CONSULT_SCHEDULED, booked, j.owner):
            return False
        provider, start = slot
        booked = j.last
        row = [provider, start, ConsultStatus.BOOKED.value, j.owner, booked, booked, None, "", None]
        j.consults.append(row)
        j.provider = provider
        if force_future:
            return True
        r = rng.random()
        if r < 0.11:  # called off before the consult: lost, not eligible, or needs a new time
            at = self.between(booked, start)
            if not j.ok(at):
                return True
            row[2], row[5] = ConsultStatus.CANCELLED.value, at
            if r < 0.05:
                if j.move(
                    Stage.LOST,
                    at,
                    j.owner,
                    self.lost_reason(out_of_area, {"Chose another provider": 3.0}),
                ):
                    self.maybe_reopen(j, at, out_of_area=out_of_area)
            elif r < 0.07:
                j.move(Stage.NOT_ELIGIBLE, at, j.owner, self.medical_reason())
            elif len(j.consults) < 3:
                if j.move(Stage.CONTACTED, at, j.owner, note="Consult cancelled; needs a new time"):
                    self.contacted(j, at, out_of_area=out_of_area, again=True)
            else:
                j.move(
                    Stage.LOST, at, j.owner, self.lost_reason(out_of_area, {"Not interested": 3.0})
                )
            return True
        end = start + self.slot_seconds
        if r < 0.25:  # no-show: back to contacted to rebook
            at = start + rng.randint(20 * MIN, 3 * HOUR)
            if not j.ok(at):
                return True
            row[2], row[5] = ConsultStatus.NO_SHOW.value, end
            if len(j.consults) < 3 and j.move(
                Stage.CONTACTED, at, j.owner, note="No-show for the phone consult"
            ):
                self.contacted(j, at, out_of_area=out_of_area, again=True)
            else:
                reason = self.reason(self.config.lost_reasons, {"Unreachable": 1.0})
                j.move(Stage.LOST, at, j.owner, reason, "No-show for the phone consult")
            return True
        at = end + rng.randint(MIN, 45 * MIN)
        if not j.ok(at):
            return True
        rc = rng.random()
        j.candidate = (
            Candidate.YES if rc < 0.78 else Candidate.NEEDS_REVIEW if rc < 0.9 else Candidate.NO
        ).value
        topics = [t.value for t in ConsultTopic if rng.random() < 0.55]
        row[2], row[5], row[6], row[7], row[8] = (
            ConsultStatus.COMPLETED.value, at, j.candidate, ",".join(topics), rng.choice(CONSULT_NOTES),
        )  # fmt: skip
        if j.move(Stage.CONSULT_COMPLETED, at, provider):
            self.consult_completed(j, at, out_of_area=out_of_area)
        return True

    def consult_completed(self, j: _Journey, t: int, *, out_of_area: bool) -> None:
        rng = self.rng
        if j.candidate == Candidate.NO.value and rng.random() < 0.8:
            at = max(self.soon(t, 10 * MIN, DAY), j.last + 1)
            reason = self.medical_reason()
            self.decide(j, ScreeningOutcome.NOT_ELIGIBLE, at, reason)
            j.move(Stage.NOT_ELIGIBLE, at, j.provider, reason)
            return
        r = rng.random()
        if r < 0.74:
            at = self.soon(t, HOUR, 3 * DAY)
            if j.move(Stage.SCREENING, at, j.owner):
                self.screening(j, at, out_of_area=out_of_area)
        elif r < 0.92:
            at = self.soon(t, DAY, 10 * DAY)
            if j.move(Stage.LOST, at, j.owner, self.lost_reason(out_of_area, {"Cost": 5.0})):
                self.maybe_reopen(j, at, out_of_area=out_of_area)
        elif r < 0.975:
            at = self.soon(t, HOUR, 4 * DAY)
            j.move(Stage.NOT_ELIGIBLE, at, j.provider, self.medical_reason())
        else:
            self.stalled(j, t)

    def decide(
        self, j: _Journey, outcome: ScreeningOutcome, at: int, reason: str | None = None
    ) -> None:
        if at < self.cutoff:
            j.decisions.append(
                (outcome.value, reason, j.provider or self.rng.choice(self.providers), at)
            )

    def screening(
        self, j: _Journey, t: int, *, out_of_area: bool, second_look: bool = False
    ) -> None:
        rng = self.rng
        at = self.soon(t, 2 * DAY, 21 * DAY)
        if rng.random() < 0.15:
            self.decide(
                j, ScreeningOutcome.NEEDS_REVIEW, self.between(t, at), "Provider to review records"
            )
        r = rng.random()
        if r < (0.8 if second_look else 0.68):
            at = max(at, j.last + 1)
            if j.ok(at):
                self.decide(j, ScreeningOutcome.CLEARED, at)
                if j.move(Stage.CLEARED, at, j.provider):
                    self.cleared(j, at, out_of_area=out_of_area)
        elif r < 0.85:
            at = max(at, j.last + 1)
            reason = self.medical_reason()
            if j.ok(at):
                self.decide(j, ScreeningOutcome.NOT_ELIGIBLE, at, reason)
                if j.move(Stage.NOT_ELIGIBLE, at, j.provider, reason) and not second_look:
                    not_yet = reason in (
                        "Uncontrolled hypertension",
                        "No driver available",
                        "Medication interaction",
                    )
                    if not_yet and rng.random() < 0.25:  # "not yet" became a yes
                        again = self.soon(at, 14 * DAY, 60 * DAY)
                        if j.move(Stage.SCREENING, again, j.owner, note="Ready for a second look"):
                            j.reopened = True
                            self.screening(j, again, out_of_area=out_of_area, second_look=True)
        elif r < 0.975:
            j.move(
                Stage.LOST,
                at,
                j.owner,
                self.lost_reason(out_of_area, {"Not interested": 2.0, "Other": 2.0}),
            )
        else:
            self.stalled(j, t)

    def cleared(self, j: _Journey, t: int, *, out_of_area: bool) -> None:
        r = self.rng.random()
        if r < 0.87:
            self.infusion(j, self.soon(t, HOUR, 4 * DAY), out_of_area=out_of_area)
        elif r < 0.98:
            at = self.soon(t, DAY, 10 * DAY)
            j.move(Stage.LOST, at, j.owner, self.lost_reason(out_of_area, {"Cost": 6.0}))
        else:
            self.stalled(j, t)

    def stalled(self, j: _Journey, t: int) -> None:
        """A lead nobody moved on: most are closed at a later clean-up, the rest stay stale."""
        if self.rng.random() < 0.7:
            at = self.soon(t, 30 * DAY, 90 * DAY)
            reason = self.reason(
                self.config.lost_reasons, {"Unreachable": 2.0, "Not interested": 1.0}
            )
            if at < self.cutoff:  # not "pending": nobody planned it, so the lead shows overdue
                j.move(Stage.LOST, at, j.owner, reason, "Closed at the monthly clean-up")

    def infusion(
        self, j: _Journey, booked: int, *, out_of_area: bool, force_future: bool = False
    ) -> None:
        rng = self.rng
        if not j.move(Stage.INFUSION_SCHEDULED, booked, j.owner):
            return
        booked = j.last
        day = self.clock.day_of(self.soon(booked, 2 * DAY, 14 * DAY))
        if force_future:
            day = max(day, self.clock.day_of(self.cutoff + 2 * DAY))
        while self.clock.open[day] is None and day < len(self.clock.base) - 1:
            day += 1
        start = self.clock.at(day, rng.choice((9, 10, 11, 12, 13, 14, 15)) * 60)
        room = rng.choice(self.config.rooms) if self.config.rooms else None
        row = [start, AppointmentStatus.BOOKED.value, j.owner, booked, None, room]
        j.appointments.append(row)
        if force_future:
            return
        r = rng.random()
        end = start + self.infusion_seconds
        if r < 0.88:
            at = end + rng.randint(5 * MIN, 30 * MIN)
            if j.ok(at):
                row[1], row[4] = AppointmentStatus.COMPLETED.value, end
                j.move(Stage.INFUSION_COMPLETED, at, j.owner)
            return
        no_show = r < 0.91
        at = start + rng.randint(HOUR, 4 * HOUR) if no_show else self.between(booked, start)
        if not j.ok(at):
            return
        row[1] = (AppointmentStatus.NO_SHOW if no_show else AppointmentStatus.CANCELLED).value
        if r < 0.95 and len(j.appointments) < 3:
            if j.move(Stage.CLEARED, at, j.owner, note="First infusion needs a new date"):
                self.cleared(j, at, out_of_area=out_of_area)
        else:
            j.move(Stage.LOST, at, j.owner, self.lost_reason(out_of_area, {"Cost": 3.0}))

    def maybe_reopen(self, j: _Journey, t: int, *, out_of_area: bool) -> None:
        """Some lost people come back weeks later (to new, or straight to a conversation)."""
        rng = self.rng
        if j.reopened or rng.random() >= 0.05:
            return
        j.reopened = True
        at = self.soon(t, 14 * DAY, 120 * DAY)
        if rng.random() < 0.5:
            if j.move(Stage.NEW, at, j.owner, note="Came back"):
                self.first_contact(
                    j, at, source=Source.WEB_FORM, urgent=False, out_of_area=out_of_area
                )
        elif j.attempt(at, j.owner, Channel.CALL, Outcome.REACHED, "Called us back") and j.move(
            Stage.CONTACTED, at, j.owner
        ):
            self.contacted(j, at, out_of_area=out_of_area)

    def planted(self, j: _Journey, target: Stage, *, out_of_area: bool) -> None:
        """A short, certain path to `target`, so every stage exists even in a small demo."""
        rng = self.rng
        c = j.created
        if target == Stage.NEW:
            return
        if target == Stage.SPAM:
            j.move(Stage.SPAM, self.soon(c, 10 * MIN, 3 * HOUR), self.care())
            return
        j.owner = self.care()
        at = self.soon(c, MIN, HOUR)
        if not (
            j.attempt(at, j.owner, Channel.CALL, Outcome.REACHED)
            and j.move(Stage.CONTACTED, at, j.owner)
        ):
            return
        if target == Stage.CONTACTED:
            return
        if target == Stage.LOST:
            j.move(Stage.LOST, self.soon(at, DAY, 3 * DAY), j.owner, self.lost_reason(out_of_area))
            return
        booked = at + rng.randint(2 * MIN, 15 * MIN)
        future = target == Stage.CONSULT_SCHEDULED
        if not self.consult_fixed(j, booked, force_future=future) or future:
            return
        at = j.last
        if target == Stage.CONSULT_COMPLETED:
            return
        at = self.soon(at, HOUR, DAY)
        if not j.move(Stage.SCREENING, at, j.owner) or target == Stage.SCREENING:
            return
        at = self.soon(at, 2 * DAY, 4 * DAY)
        if target == Stage.NOT_ELIGIBLE:
            reason = self.medical_reason()
            self.decide(j, ScreeningOutcome.NOT_ELIGIBLE, max(at, j.last + 1), reason)
            j.move(Stage.NOT_ELIGIBLE, at, j.provider, reason)
            return
        self.decide(j, ScreeningOutcome.CLEARED, max(at, j.last + 1))
        if not j.move(Stage.CLEARED, at, j.provider) or target == Stage.CLEARED:
            return
        future = target == Stage.INFUSION_SCHEDULED
        self.infusion_fixed(j, self.soon(j.last, HOUR, DAY), force_future=future)

    def consult_fixed(self, j: _Journey, booked: int, *, force_future: bool) -> bool:
        """Book a consult that is held and completed (or, for a planted future one, just booked)."""
        earliest = self.soon(booked, 20 * HOUR, 2 * DAY)
        if force_future:
            earliest = max(earliest, self.cutoff + DAY)
        slot = self.slots.book(self.rng, earliest)
        if slot is None or not j.move(Stage.CONSULT_SCHEDULED, booked, j.owner):
            return False
        provider, start = slot
        j.provider = provider
        row = [provider, start, ConsultStatus.BOOKED.value, j.owner, j.last, j.last, None, "", None]
        j.consults.append(row)
        if force_future:
            return True
        end = start + self.slot_seconds
        at = end + self.rng.randint(MIN, 30 * MIN)
        if not j.ok(at):
            return False
        row[2], row[5], row[6], row[8] = (
            ConsultStatus.COMPLETED.value,
            at,
            Candidate.YES.value,
            CONSULT_NOTES[0],
        )
        return j.move(Stage.CONSULT_COMPLETED, at, provider)

    def infusion_fixed(self, j: _Journey, booked: int, *, force_future: bool) -> None:
        if not j.move(Stage.INFUSION_SCHEDULED, booked, j.owner):
            return
        booked = j.last
        day = self.clock.day_of(self.cutoff + 2 * DAY if force_future else booked + 2 * DAY)
        while self.clock.open[day] is None and day < len(self.clock.base) - 1:
            day += 1
        start = self.clock.at(day, 10 * 60)
        room = self.config.rooms[0] if self.config.rooms else None
        row = [start, AppointmentStatus.BOOKED.value, j.owner, booked, None, room]
        j.appointments.append(row)
        if force_future:
            return
        end = start + self.infusion_seconds
        if j.ok(end + 10 * MIN):
            row[1], row[4] = AppointmentStatus.COMPLETED.value, end
            j.move(Stage.INFUSION_COMPLETED, end + 10 * MIN, j.owner)


def _cumulative(weights: Iterable[float]) -> list[float]:
    out: list[float] = []
    total = 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _ascii(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _dt(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _months_before(day: date, months: int) -> date:
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    m += 1
    for d in (day.day, 30, 29, 28):
        try:
            return date(y, m, min(d, day.day))
        except ValueError:
            continue
    return date(y, m, 28)


# --- Writing ------------------------------------------------------------------------------------

TABLE_ORDER = (
    "user", "provideravailability", "contact", "lead", "submission", "note", "stagechange",
    "contactattempt", "consult", "screeningdecision", "appointment",
)  # fmt: skip


def _tables() -> dict[str, Table]:
    return dict(SQLModel.metadata.tables)


def _max_id(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.max(table.c.id))).scalar() or 0)


@dataclass
class _Rows:
    """One chunk's rows per table; timestamps are epoch seconds until written."""

    by_table: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {n: [] for n in TABLE_ORDER}
    )


class _Inserter:
    """executemany of `insert(table)` per table, timestamps turned into the column's storage.

    On SQLite the statement SQLAlchemy compiles for `insert(table)` is run with plain tuples
    whose timestamps are already in SQLAlchemy's SQLite DATETIME format, which skips the
    per-value bind processing (half the run time at a million leads). Elsewhere the rows go
    through `conn.execute(insert(table), rows)` with aware datetimes.
    """

    def __init__(self, conn: Connection, tables: dict[str, Table]) -> None:
        self.conn = conn
        self.tables = tables
        self.sqlite = conn.dialect.name == "sqlite"
        self.compiled: dict[tuple[str, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}
        self.days: dict[int, str] = {}

    def stamp(self, t: int) -> str:
        """Epoch seconds as SQLAlchemy stores a DATETIME on SQLite (UTC, microseconds)."""
        day, second = divmod(t, DAY)
        prefix = self.days.get(day)
        if prefix is None:
            prefix = self.days[day] = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d ")
        return prefix + _CLOCK_TEXT[second]

    def write(self, rows: _Rows, counts: dict[str, int]) -> None:
        for name in TABLE_ORDER:
            batch = rows.by_table[name]
            if batch:
                self.insert(name, batch)
                counts[name] = counts.get(name, 0) + len(batch)
                batch.clear()

    def insert(self, name: str, batch: list[dict[str, Any]]) -> None:
        table = self.tables[name]
        keys = tuple(batch[0])
        stamps = [k for k in keys if _is_timestamp(table, k)]
        if not self.sqlite:
            for row in batch:
                for k in stamps:
                    if row[k] is not None:
                        row[k] = datetime.fromtimestamp(row[k], UTC)
            self.conn.execute(insert(table), batch)
            return
        compiled = self.compiled.get((name, keys))
        if compiled is None:
            statement = insert(table).compile(dialect=self.conn.dialect, column_keys=list(keys))
            order = tuple(statement.positiontup or ())
            compiled = self.compiled[(name, keys)] = (str(statement), order)
        sql, order = compiled
        stamp = self.stamp
        pick = itemgetter(*order)
        values = []
        for row in batch:
            for k in stamps:
                if row[k] is not None:
                    row[k] = stamp(row[k])
            values.append(pick(row))
        self.conn.exec_driver_sql(sql, values)


# "HH:MM:SS.000000" for every second of a day: the time half of a stored SQLite DATETIME.
_CLOCK_TEXT = tuple(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.000000" for s in range(DAY))


def _is_timestamp(table: Table, column: str) -> bool:
    kind = table.c[column].type
    return isinstance(getattr(kind, "impl_instance", kind), DateTime)


def _ensure_staff(
    conn: Connection,
    tables: dict[str, Table],
    *,
    n_providers: int,
    created: datetime,
    counts: dict[str, int],
) -> tuple[list[int], list[int]]:
    """The demo care team and providers (plus a manager), created once and re-used after."""
    user = tables["user"]
    wanted: list[tuple[str, str, Role, bool]] = []
    for i, name in enumerate(CARE_TEAM, start=1):
        wanted.append((f"coordinator{i}@demo.clinic", name, Role.CARE_TEAM, False))
    for i in range(1, n_providers + 1):
        name = PROVIDERS[i - 1] if i <= len(PROVIDERS) else f"Provider {i}"
        wanted.append((f"provider{i}@demo.clinic", name, Role.PROVIDER, True))
    wanted.append(("manager1@demo.clinic", MANAGER, Role.MANAGER, False))
    emails = [w[0] for w in wanted]
    existing = {
        e: int(i)
        for e, i in conn.execute(select(user.c.email, user.c.id).where(user.c.email.in_(emails)))
    }
    next_id = _max_id(conn, user) + 1
    new_rows: list[dict[str, Any]] = []
    ids: dict[str, int] = {}
    for email, name, role, is_provider in wanted:
        if email in existing:
            ids[email] = existing[email]
            continue
        ids[email] = next_id
        new_rows.append(
            {
                "id": next_id, "email": email, "name": name, "role": role.value,
                "is_provider": is_provider, "active": True, "away": False, "password_hash": None,
                "created_at": created, "last_login_at": None, "failed_logins": 0,
                "locked_until": None, "last_assigned_at": None,
            }
        )  # fmt: skip
        next_id += 1
    availability: list[dict[str, Any]] = []
    if new_rows:
        conn.execute(insert(user), new_rows)
        counts["user"] = len(new_rows)
        next_av = _max_id(conn, tables["provideravailability"]) + 1
        created_ids = {r["id"] for r in new_rows}
        for k in range(n_providers):
            pid = ids[f"provider{k + 1}@demo.clinic"]
            if pid not in created_ids:
                continue
            for weekday, start, end in AVAILABILITY_TEMPLATES[k % len(AVAILABILITY_TEMPLATES)]:
                availability.append(
                    {
                        "id": next_av, "provider_id": pid, "weekday": weekday,
                        "start_time": time.fromisoformat(start), "end_time": time.fromisoformat(end),
                    }
                )  # fmt: skip
                next_av += 1
        if availability:
            conn.execute(insert(tables["provideravailability"]), availability)
            counts["provideravailability"] = len(availability)
    care = [ids[f"coordinator{i}@demo.clinic"] for i in range(1, len(CARE_TEAM) + 1)]
    providers = [ids[f"provider{i}@demo.clinic"] for i in range(1, n_providers + 1)]
    return care, providers


def _provider_windows(
    conn: Connection,
    tables: dict[str, Table],
    providers: list[int],
    slot_minutes: int,
    config: ClinicConfig,
) -> list[tuple[int, dict[int, list[int]]]]:
    av = tables["provideravailability"]
    rows = conn.execute(
        select(av.c.provider_id, av.c.weekday, av.c.start_time, av.c.end_time)
        .where(av.c.provider_id.in_(providers))
        .order_by(av.c.provider_id, av.c.weekday, av.c.start_time, av.c.id)
    ).all()
    windows: dict[int, dict[int, list[int]]] = {p: {} for p in providers}
    for pid, weekday, start, end in rows:
        first, last = start.hour * 60 + start.minute, end.hour * 60 + end.minute
        windows[pid].setdefault(int(weekday), []).extend(
            range(first, last - slot_minutes + 1, slot_minutes)
        )
    if not any(windows.values()):  # nobody has availability: use business hours
        for pid in providers:
            for wd, span in enumerate(clinic_settings.WEEKDAYS):
                hours = config.business_hours.get(span)
                if hours:
                    first, last = _minutes(hours[0]), _minutes(hours[1])
                    windows[pid][wd] = list(range(first, last - slot_minutes + 1, slot_minutes))
    return [
        (p, {wd: sorted(set(m)) for wd, m in windows[p].items()}) for p in providers if windows[p]
    ]


def _resolved_places(
    rules: list[catalog.AreaRule],
) -> list[tuple[str | None, float, list[tuple[str | None, str, str, int | None]]]]:
    """Each intended area's (ZIP, city, state, area id) pairs that resolve_area agrees with."""
    out: list[tuple[str | None, float, list[tuple[str | None, str, str, int | None]]]] = []
    for name, weight, pairs in AREA_PLACES:
        kept: list[tuple[str | None, str, str, int | None]] = []
        for zip_code, city in pairs:
            rule = catalog.resolve_area(rules, zip_code=zip_code, city=city)
            if (rule.name if rule else None) != name:
                continue
            place = catalog.zip_place(zip_code) if zip_code else None
            kept.append((zip_code, city, place[2] if place else "VA", rule.id if rule else None))
        if kept:
            out.append((name, weight, kept))
    return out


def _sla_function(clock: _Clock, config: ClinicConfig) -> Callable[[int], int]:
    """crm.sla.first_response_due, with its common case (well inside business hours) inlined."""
    target = max(0, config.first_response_minutes) * MIN

    def due(t: int) -> int:
        span = clock.open[clock.day_of(t)]
        if span is not None and span[0] <= t and t + target <= span[1]:
            return t + target
        return int(sla.first_response_due(_dt(t), config).timestamp())

    return due


def generate(
    *,
    engine: Engine,
    leads: int = 2000,
    seed: int = 7,
    months: int = 12,
    as_of: date | None = None,
    append: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> DemoResult:
    """Write `leads` synthetic leads covering `months` months before `as_of` (default today).

    The timeline ends at the start of the as-of day (clinic time); consults and infusions
    booked for later are in the future. Refuses (DemoRefused) to add to a database that
    already has leads unless `append` is True. Returns the rows written per table.
    """
    started = _time.perf_counter()
    if leads < 1:
        raise ValueError("leads must be at least 1")
    with Session(engine) as session:
        config = clinic_settings.load(session)
        rules = catalog.area_rules(session)
        services = catalog.services(session)
    if not services:
        raise DemoRefused("The service catalogue is empty; run `python -m crm db upgrade` first.")
    zone = ZoneInfo(config.timezone)
    as_of = as_of or datetime.now(zone).date()
    first_day = _months_before(as_of, months)
    n_days = (as_of - first_day).days
    # The calendar reaches far enough past the as-of day for every booking to find a slot.
    clock = _Clock(
        config.timezone, first_day - timedelta(days=2), n_days + 2 + 400, config.business_hours
    )
    cutoff = clock.base[n_days + 2]
    rng = random.Random(seed)
    tables = _tables()
    counts: dict[str, int] = {}
    places = _resolved_places(rules)
    if not places:
        raise DemoRefused("No demo ZIP code resolves to any service area or to out of area.")
    # Every live consult needs its own (provider, start) slot: with about 0.42 consults per lead
    # (rebookings included) and about 25 hours of availability per provider-week, a big demo
    # gets more providers so they stay near 60% booked.
    weekly_slots = 25 * 60 // max(5, config.consult_slot_minutes)
    n_providers = max(
        3, -(-int(0.42 * leads) // max(1, int(weekly_slots * 0.6 * (n_days + 60) / 7)))
    )

    with engine.connect() as conn, _bulk_mode(conn):
        with conn.begin():
            existing = int(
                conn.execute(select(func.count()).select_from(tables["lead"])).scalar() or 0
            )
            if existing and not append:
                raise DemoRefused(
                    f"The database already has {existing:,} leads. "
                    "Demo data is only added to an empty database; pass --append to add it anyway."
                )
            staff_created = _dt(clock.base[0])
            care, providers = _ensure_staff(
                conn, tables, n_providers=n_providers, created=staff_created, counts=counts
            )
            windows = _provider_windows(
                conn, tables, providers, config.consult_slot_minutes, config
            )
            consult = tables["consult"]
            taken = {
                (int(p), int(s.replace(tzinfo=s.tzinfo or UTC).timestamp()))
                for p, s in conn.execute(
                    select(consult.c.provider_id, consult.c.starts_at).where(
                        consult.c.provider_id.in_(providers),
                        consult.c.status != ConsultStatus.CANCELLED.value,
                    )
                )
            }
            ids = {name: _max_id(conn, tables[name]) + 1 for name in TABLE_ORDER[2:]}
            _bump_sequences(conn, tables)
        gen = _Generator(
            rng=rng, clock=clock, config=config, cutoff=cutoff, care_team=care,
            providers=[p for p, _ in windows] or providers, slots=_Slots(clock, windows, taken),
            services=services, places=places, first_response_due=_sla_function(clock, config),
        )  # fmt: skip
        created = _creation_times(rng, clock, leads, first=2, days=n_days)
        plan = _plan(rng, created, cutoff, services, places)
        writer = _Writer(gen, ids, plan)
        writer_db = _Inserter(conn, tables)
        done = 0
        while done < leads:
            with conn.begin():
                for _ in range(CHUNKS_PER_TRANSACTION):
                    if done >= leads:
                        break
                    stop = min(leads, done + CHUNK)
                    rows = _Rows()
                    for i in range(done, stop):
                        writer.lead(i, created[i], rows)
                    writer_db.write(rows, counts)
                    done = stop
                    if progress:
                        progress(done, leads)
                _bump_sequences(conn, tables)
        with conn.begin():
            conn.execute(
                insert(tables["auditevent"]),
                [
                    {
                        "at": datetime.now(UTC), "actor_id": None, "actor_email": None,
                        "action": "demo.generate", "lead_id": None, "entity": None, "entity_id": None,
                        "details": json.dumps({"leads": leads, "seed": seed, "as_of": as_of.isoformat(), "months": months}),
                        "ip": None,
                    }
                ],
            )  # fmt: skip
    ordered = {name: counts.get(name, 0) for name in TABLE_ORDER}
    return DemoResult(
        counts=ordered, as_of=as_of, seed=seed, seconds=_time.perf_counter() - started
    )


@contextmanager
def _bulk_mode(conn: Connection) -> Iterator[None]:
    """On SQLite, a bulk load: no fsync, a bigger page cache, no per-row foreign-key lookups
    (every id is assigned here; the tests run foreign_key_check). Restored afterwards, since
    the connection goes back to the app's pool."""
    if conn.dialect.name != "sqlite":
        yield
        return
    for pragma in ("synchronous=OFF", "cache_size=-262144", "foreign_keys=OFF"):
        conn.exec_driver_sql(f"PRAGMA {pragma}")
    conn.commit()
    try:
        yield
    finally:
        if conn.in_transaction():
            conn.rollback()
        for pragma in ("synchronous=NORMAL", "cache_size=-2000", "foreign_keys=ON"):
            conn.exec_driver_sql(f"PRAGMA {pragma}")
        conn.commit()


def _bump_sequences(conn: Connection, tables: dict[str, Table]) -> None:
    """PostgreSQL sequences don't see explicit ids: move each past the largest id written
    (in every transaction, so even an interrupted run leaves the app able to insert)."""
    if conn.dialect.name != "postgresql":
        return
    for name in TABLE_ORDER:
        quoted = conn.dialect.identifier_preparer.format_table(tables[name])
        # The table name comes from our own metadata, never from input.
        sql = f"SELECT setval(pg_get_serial_sequence(:t, 'id'), COALESCE((SELECT MAX(id) FROM {quoted}), 0) + 1, false)"  # noqa: S608
        conn.execute(text(sql), {"t": quoted})


def _creation_times(
    rng: random.Random, clock: _Clock, n: int, *, first: int, days: int
) -> list[int]:
    """`n` sorted creation instants: busier weekdays and hours, growing gently over the window."""
    day_cum = _cumulative(
        WEEKDAY_WEIGHTS[clock.weekday[first + d]] * (1.0 + GROWTH * d / max(1, days - 1))
        for d in range(days)
    )
    weekday_cum = _cumulative(HOUR_WEIGHTS_WEEKDAY)
    weekend_cum = _cumulative(HOUR_WEIGHTS_WEEKEND)
    picked = rng.choices(range(days), cum_weights=day_cum, k=n)
    out: list[int] = []
    rand = rng.random
    for d in picked:
        day = first + d
        cum = weekday_cum if clock.weekday[day] < 5 else weekend_cum
        hour = bisect_right(cum, rand() * cum[-1])
        out.append(clock.at(day, hour * 60) + int(rand() * HOUR))
    out.sort()
    return out


@dataclass
class _Plan:
    """Leads whose service, area, source or final stage is fixed, so each one appears at least once."""

    service: dict[int, int]
    place: dict[int, int]
    source: dict[int, Source]
    stage: dict[int, Stage]


def _plan(
    rng: random.Random,
    created: list[int],
    cutoff: int,
    services: list[tuple[int, str]],
    places: list[tuple[str | None, float, list[tuple[str | None, str, str, int | None]]]],
) -> _Plan:
    n = len(created)
    service = {i: k for k, i in enumerate(rng.sample(range(n), min(n, len(services))))}
    place = {i: k for k, i in enumerate(rng.sample(range(n), min(n, len(places))))}
    source = {i: s for s, i in zip(Source, rng.sample(range(n), min(n, len(Source))), strict=False)}
    stage: dict[int, Stage] = {n - 1: Stage.NEW}
    targets = [s for s in Stage if s != Stage.NEW]
    early = bisect_right(created, cutoff - PLANT_BEFORE_DAYS * DAY)
    pool = list(range(max(0, early - 4 * len(targets)), early)) or list(range(max(0, n - 1)))
    for target, i in zip(targets, rng.sample(pool, min(len(pool), len(targets))), strict=False):
        stage[i] = target
    return _Plan(service=service, place=place, source=source, stage=stage)


class _Writer:
    """Turns each lead's journey into rows with pre-assigned ids."""

    def __init__(self, gen: _Generator, ids: dict[str, int], plan: _Plan) -> None:
        self.gen = gen
        self.ids = ids
        self.plan = plan
        self.crisis_reasons: dict[tuple[str | None, str | None], str] = {}
        # Closed leads whose person may come back: (closed_at, contact_id), and their details.
        self.closed: list[tuple[int, int]] = []
        self.available: list[int] = []
        self.people: dict[int, tuple[Any, ...]] = {}

    def next_id(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def crisis_reason(self, message: str | None, answer: str | None) -> str:
        key = (message, answer)
        reason = self.crisis_reasons.get(key)
        if reason is None:
            flag = crisis.assess(message=message, crisis_answer=answer)
            reason = self.crisis_reasons[key] = "; ".join(flag.reasons) or "Flagged for review"
        return reason

    def returning(self, t: int) -> int | None:
        closed = self.closed
        while closed and closed[0][0] < t - 14 * DAY:
            self.available.append(heapq.heappop(closed)[1])
        if not self.available:
            return None
        k = self.gen.rng.randrange(len(self.available))
        self.available[k], self.available[-1] = self.available[-1], self.available[k]
        return self.available.pop()

    def lead(self, i: int, c: int, rows: _Rows) -> None:
        gen = self.gen
        rng = gen.rng
        plan = self.plan
        planted = i in plan.service or i in plan.place or i in plan.source or i in plan.stage
        contact_id = self.returning(c) if (not planted and rng.random() < P_RETURNING) else None
        returning = contact_id is not None
        created = c
        if contact_id is not None:
            person = self.people.pop(contact_id)
            zip_code, city, state, area_id, first, last, email, phone = person
        else:
            contact_id = self.next_id("contact")
            k = plan.place.get(i)
            if k is None:
                k = gen.pick(gen.place_cum)
            zip_code, city, state, area_id = rng.choice(gen.places[k][2])
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{_ascii(first)}.{_ascii(last)}.{contact_id}@example.com"
            area_code = rng.choice(AREA_CODES.get(state, ("571",)))
            phone = f"+1{area_code}555{contact_id % 10000:04d}"
            r = rng.random()
            preferred = (
                ContactMethod.CALL
                if r < 0.55
                else ContactMethod.TEXT
                if r < 0.85
                else ContactMethod.EMAIL
            ).value
            rows.by_table["contact"].append(
                {
                    "id": contact_id, "first_name": first, "last_name": last,
                    "name_key": f"{first} {last}".lower(), "email": email, "email_key": email.lower(),
                    "phone": phone, "zip_code": zip_code, "city": city, "preferred_contact": preferred,
                    "best_time": rng.choice(BEST_TIMES), "consent": True, "consent_at": created,
                    "do_not_contact": False, "created_at": created, "updated_at": created, "version": 1,
                }
            )  # fmt: skip
        out_of_area = area_id is None
        source = plan.source.get(i)
        if source is None:
            source = SOURCE_WEIGHTS[gen.pick(gen.source_cum)][0]
            if source == Source.PHONE and not gen.clock.in_hours(c):
                source = Source.WEB_FORM
        urgent = i not in plan.stage and rng.random() < P_URGENT
        k = plan.service.get(i)
        if k is not None:
            service_id = gen.services[k][0]
        elif urgent and gen.suicidal_service is not None and rng.random() < 0.5:
            service_id = gen.suicidal_service
        else:
            service_id = gen.services[gen.pick(gen.service_cum)][0]
        if urgent:
            message: str | None = (
                rng.choice(CRISIS_MESSAGES) if rng.random() < 0.7 else rng.choice(MESSAGES)
            )
            answer: str | None = Answer.YES.value if source == Source.WEB_FORM else None
            if answer is None and message in MESSAGES:
                message = rng.choice(CRISIS_MESSAGES)
            crisis_reason: str | None = self.crisis_reason(message, answer)
        else:
            message = rng.choice(MESSAGES) if rng.random() < 0.85 else None
            answer = Answer.NO.value if source == Source.WEB_FORM and rng.random() < 0.8 else None
            crisis_reason = None
        heard = rng.choice(HEARD_ABOUT)
        if source == Source.REFERRAL:
            heard = rng.choice(
                ("Referred by my psychiatrist", "Referred by my therapist", "Referred by my doctor")
            )

        lead_id = self.next_id("lead")
        j = _Journey(c, gen.cutoff)
        if source == Source.PHONE:
            j.owner = gen.care()
        target = plan.stage.get(i)
        if target is not None:
            gen.planted(j, target, out_of_area=out_of_area)
        else:
            gen.run(j, source=source, urgent=urgent, out_of_area=out_of_area)
        self.write_history(lead_id, j, rows)

        # Derived columns, replayed from the log exactly as crm.pipeline.apply_stage sets them.
        stage, changed_at, is_open = Stage.NEW, c, True
        reached: dict[str, int] = {}
        closed_at: int | None = None
        closed_reason: str | None = None
        closed_note: str | None = None
        updated_at, updated_by = c, None
        for _frm, to, at, actor, reason, note in j.changes:
            stage, changed_at, is_open = to, at, to not in CLOSED_STAGES
            column = REACHED_COLUMN.get(to)
            if column and column not in reached:
                reached[column] = at
            if is_open:
                closed_at = closed_reason = closed_note = None
            else:
                closed_at = at
            if to in NEEDS_REASON:
                closed_reason, closed_note = (reason or "").strip()[:200], note
            updated_at, updated_by = at, actor
        for at, actor, *_ in j.attempts:
            if at > updated_at:
                updated_at, updated_by = at, actor
        first_response = min((a[0] for a in j.attempts), default=None)
        due_first = gen.first_response_due(c)
        due_unanswered = c if urgent else due_first  # as intake: an urgent lead is due at once
        next_action, next_due = self.next_action(j, stage, changed_at, is_open)
        resubmitted_at: int | None = None
        if rng.random() < P_RESUBMIT:
            at = c + rng.randint(HOUR, 3 * DAY)
            if at < gen.cutoff and (closed_at is None or at < closed_at):
                resubmitted_at = at
        rows.by_table["lead"].append(
            {
                "id": lead_id, "reference": f"DEMO-{lead_id:07d}", "contact_id": contact_id,
                "source": source.value, "service_id": service_id, "service_area_id": area_id,
                "out_of_area": out_of_area, "heard_about": heard, "stage": stage.value,
                "is_open": is_open, "urgent": urgent, "crisis_reason": crisis_reason,
                "owner_id": j.owner, "created_at": created, "updated_at": updated_at,
                "updated_by_id": updated_by, "stage_changed_at": changed_at,
                "first_response_due_at": due_first,
                "first_response_at": first_response,
                "next_action": next_action, "next_action_due_at": next_due,
                "due_at": due_unanswered if first_response is None else next_due,
                "attempts": len(j.attempts), "resubmitted": resubmitted_at is not None,
                "resubmitted_at": resubmitted_at, "possible_duplicate_of_id": None,
                "closed_reason": closed_reason, "closed_note": closed_note,
                "closed_at": closed_at,
                **{col: reached.get(col) for col in REACHED_COLUMN.values()},
                "version": 1 + len(j.changes),
            }
        )  # fmt: skip
        raw = {
            "first_name": first, "last_name": last, "email": email, "phone": phone,
            "zip_code": zip_code, "service": gen.service_names[service_id], "message": message,
            "crisis_answer": answer, "consent": True, "source": source.value,
        }  # fmt: skip
        submissions = [(c, message)]
        if resubmitted_at is not None:
            submissions.append((resubmitted_at, "Following up on my earlier request."))
        for at, text_ in submissions:
            raw["message"] = text_
            rows.by_table["submission"].append(
                {
                    "id": self.next_id("submission"), "lead_id": lead_id, "contact_id": contact_id,
                    "received_at": at, "source": source.value, "service_id": service_id,
                    "message": text_, "crisis_answer": answer,
                    "crisis_reason": crisis_reason if at == c else None,
                    "raw": json.dumps(raw, ensure_ascii=False), "api_key_id": None,
                }
            )  # fmt: skip
        if source == Source.PHONE and message:
            rows.by_table["note"].append(
                {
                    "id": self.next_id("note"), "lead_id": lead_id, "actor_id": j.owner,
                    "at": created, "body": message,
                }
            )  # fmt: skip
        if (
            not returning
            and closed_at is not None
            and stage in (Stage.LOST, Stage.NOT_ELIGIBLE, Stage.INFUSION_COMPLETED)
            and rng.random() < 0.15
        ):
            heapq.heappush(self.closed, (closed_at, contact_id))
            self.people[contact_id] = (zip_code, city, state, area_id, first, last, email, phone)

    def next_action(
        self, j: _Journey, stage: Stage, changed: int, is_open: bool
    ) -> tuple[str | None, int | None]:
        """What the care team does next for an open lead, and when it is due."""
        if not is_open:
            return None, None
        clock = self.gen.clock
        if stage == Stage.NEW:
            if not j.attempts:
                return None, None
            return "Try again", j.pending or clock.add_business(j.attempts[-1][0], 4 * HOUR)
        if stage == Stage.CONSULT_SCHEDULED and j.consults:
            return "Phone consult", j.consults[-1][1]
        if stage == Stage.INFUSION_SCHEDULED and j.appointments:
            return "First infusion", j.appointments[-1][0]
        label, delay = {
            Stage.CONTACTED: ("Book the phone consult", 8 * HOUR),
            Stage.CONSULT_COMPLETED: ("Start screening", 8 * HOUR),
            Stage.SCREENING: ("Collect medical records", 24 * HOUR),
            Stage.CLEARED: ("Book the first infusion", 8 * HOUR),
        }.get(stage, ("Follow up", 8 * HOUR))
        # The step the simulation cut off at the as-of day is what the team has planned next.
        return label, j.pending or clock.add_business(changed, delay)

    def write_history(self, lead_id: int, j: _Journey, rows: _Rows) -> None:
        prev = j.created
        out = rows.by_table["stagechange"]
        # The creation row, as crm.intake writes it; every later row is an ALLOWED move.
        out.append(
            {
                "id": self.next_id("stagechange"), "lead_id": lead_id, "from_stage": None,
                "to_stage": Stage.NEW.value, "actor_id": None, "at": prev,
                "seconds_in_previous": None, "reason": None, "note": None,
            }
        )  # fmt: skip
        for frm, to, at, actor, reason, note in j.changes:
            out.append(
                {
                    "id": self.next_id("stagechange"), "lead_id": lead_id, "from_stage": frm.value,
                    "to_stage": to.value, "actor_id": actor, "at": at,
                    "seconds_in_previous": at - prev, "reason": reason, "note": note,
                }
            )  # fmt: skip
            prev = at
        for at, actor, channel, outcome, note in j.attempts:
            rows.by_table["contactattempt"].append(
                {
                    "id": self.next_id("contactattempt"), "lead_id": lead_id, "actor_id": actor,
                    "at": at, "channel": channel, "outcome": outcome, "note": note,
                }
            )  # fmt: skip
        slot = self.gen.slot_seconds
        for (
            provider,
            start,
            status,
            booked_by,
            created,
            updated,
            candidate,
            topics,
            notes,
        ) in j.consults:
            rows.by_table["consult"].append(
                {
                    "id": self.next_id("consult"), "lead_id": lead_id, "provider_id": provider,
                    "starts_at": start, "ends_at": start + slot, "status": status,
                    "booked_by_id": booked_by, "created_at": created, "updated_at": updated,
                    "outcome_notes": notes, "candidate": candidate, "topics": topics,
                }
            )  # fmt: skip
        for outcome, reason, by, at in j.decisions:
            rows.by_table["screeningdecision"].append(
                {
                    "id": self.next_id("screeningdecision"), "lead_id": lead_id, "outcome": outcome,
                    "reason": reason, "decided_by_id": by, "decided_at": at,
                }
            )  # fmt: skip
        minutes = self.gen.infusion_seconds // MIN
        for start, status, by, created, completed, room in j.appointments:
            rows.by_table["appointment"].append(
                {
                    "id": self.next_id("appointment"), "lead_id": lead_id, "number": 1,
                    "starts_at": start, "duration_minutes": minutes, "room": room,
                    "status": status, "created_by_id": by, "created_at": created,
                    "completed_at": completed,
                }
            )  # fmt: skip
