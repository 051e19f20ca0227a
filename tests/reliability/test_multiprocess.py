"""Several app processes on one PostgreSQL database (the deployment the README describes:
app processes behind a reverse proxy, the same CRM_SECRET_KEY in each).

Two `streamlit run` processes on two ports share one database: a lead created through one
is the lead the other finds; an Idempotency-Key used on one is honoured by the other; a load
through both at once is stored exactly once.

Consult bookings are a staff UI action (a button on the lead page), not an HTTP endpoint, so
the double-booking test drives them through the domain service, crm.scheduling.book_consult,
from two separate OS processes against the shared database, released at the same moment
slot after slot: which is what two app processes do when two coordinators click at once.
"""

from __future__ import annotations

import multiprocessing
import queue
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from crm import clinic_settings, scheduling
from crm.enums import Role, Stage
from crm.models import Consult, Lead, StageChange, Submission
from tests.factories import actor_of, make_lead, make_user
from tests.reliability.booking_worker import book_in_step
from tests.reliability.support import Load, check_exactly_once, person, prepare, serve
from tests.support.pg import PostgresServer
from tests.support.server import RunningServer

SLOTS = 30
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIRST_SLOT = datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
ALL_DAY = [(d, time(0), time(23, 59)) for d in range(7)]


@dataclass
class TwoApps:
    a: RunningServer
    b: RunningServer
    engine: Engine
    key: str
    url: str

    def post(self, server: RunningServer, body: dict[str, Any], **headers: str) -> httpx.Response:
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            return client.post("/api/leads", json=body, headers={"X-API-Key": self.key, **headers})


@pytest.fixture(scope="module")
def apps(pg_server: PostgresServer) -> Iterator[TwoApps]:
    url = pg_server.create_database(f"rel_multi_{uuid.uuid4().hex[:8]}")
    engine, key = prepare(url)
    a = serve(url)
    try:
        b = serve(url)
    except BaseException:
        a.stop()
        raise
    try:
        yield TwoApps(a, b, engine, key, url)
    finally:
        a.stop()
        b.stop()
        engine.dispose()


def test_a_lead_created_through_one_process_is_found_through_the_other(apps: TwoApps) -> None:
    assert apps.a.port != apps.b.port and apps.a.pid != apps.b.pid
    for server in (apps.a, apps.b):
        health = httpx.get(server.url("/api/health"), timeout=30)
        assert health.status_code == 200 and health.json()["database"] == "ok"
    body = person(uuid.uuid4().hex[:8], 0)
    first = apps.post(apps.a, body)
    assert first.status_code == 201, first.text
    again = apps.post(apps.b, {**body, "message": "Writing again through the other server."})
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["reference"] == first.json()["reference"]
    with Session(apps.engine) as session:
        lead = session.get(Lead, first.json()["id"])
        assert lead is not None and lead.resubmitted
        submissions = session.exec(
            select(func.count()).where(Submission.lead_id == first.json()["id"])
        ).one()
    assert submissions == 2


def test_an_idempotency_key_used_on_one_process_is_honoured_by_the_other(apps: TwoApps) -> None:
    body = person(uuid.uuid4().hex[:8], 0)
    key = {"Idempotency-Key": f"multi-{uuid.uuid4().hex}"}
    first = apps.post(apps.a, body, **key)
    retry = apps.post(apps.b, body, **key)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    # The same key sent to both at the same moment, many times: one lead each time.
    bodies = [(person(uuid.uuid4().hex[:8], 0), f"twin-{uuid.uuid4().hex}") for _ in range(20)]

    def both(item: tuple[dict[str, Any], str]) -> set[int]:
        payload, idem = item
        with ThreadPoolExecutor(2) as pair:
            answers = list(
                pair.map(
                    lambda server: apps.post(server, payload, **{"Idempotency-Key": idem}),
                    (apps.a, apps.b),
                )
            )
        assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
        return {r.json()["id"] for r in answers}

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(both, bodies))
    assert all(len(lead_ids) == 1 for lead_ids in ids)
    with Session(apps.engine) as session:
        for lead_ids in ids:
            count = session.exec(
                select(func.count()).where(Submission.lead_id == next(iter(lead_ids)))
            ).one()
            assert count == 1


@pytest.mark.slow
def test_a_load_through_both_processes_is_stored_exactly_once(apps: TwoApps) -> None:
    loads = [
        Load(server.base_url, apps.key, clients=8, total=300, retry_every=10, twin_every=10)
        for server in (apps.a, apps.b)
    ]
    for load in loads:
        load.start()
    for load in loads:
        load.join(300)
    for load in loads:
        assert load.statuses() == {201: len(load.attempts)}
        check_exactly_once(load, apps.engine, must_ack_all=True)
    for server in (apps.a, apps.b):
        assert "Traceback" not in server.log_text()


@pytest.mark.slow
def test_two_processes_booking_the_same_slots_at_the_same_moment_never_double_book(
    apps: TwoApps,
) -> None:
    with Session(apps.engine, expire_on_commit=False) as setup:
        clinic_settings.save(setup, actor_id=None, changes={"timezone": "America/New_York"})
        admin = actor_of(make_user(setup, role=Role.ADMIN))
        doctor = make_user(setup, role=Role.PROVIDER, name="Dr. Shared")
        scheduling.set_availability(
            session=setup, actor=admin, provider_id=doctor.id or 0, windows=ALL_DAY
        )
        setup.commit()
        coordinators = [actor_of(make_user(setup, name=f"Coordinator {i}")) for i in range(2)]
        slots = [FIRST_SLOT + timedelta(minutes=15 * i) for i in range(SLOTS)]
        plans = [[(make_lead(setup).id or 0, slot) for slot in slots] for _ in range(2)]
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no shared connections
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [
        context.Process(
            target=book_in_step,
            args=(apps.url, coordinators[i], doctor.id, plans[i], NOW, barrier, results),
            name=f"booking-{i}",
        )
        for i in range(2)
    ]
    for worker in workers:
        worker.start()
    outcomes: dict[int, list[tuple[str, str, str]]] = {}
    try:
        for _ in workers:
            actor_id, done = results.get(timeout=240)
            outcomes[actor_id] = done
    except queue.Empty:
        pytest.fail(f"a booking process gave no answer; got {list(outcomes)}")
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    assert [w.exitcode for w in workers] == [0, 0]
    errors = [o for done in outcomes.values() for o in done if o[0] == "error"]
    assert not errors, errors
    per_slot: dict[str, list[str]] = {}
    for done in outcomes.values():
        for result, when, _detail in done:
            per_slot.setdefault(when, []).append(result)
    assert len(per_slot) == SLOTS
    assert all(sorted(r) == ["booked", "taken"] for r in per_slot.values()), per_slot
    wins = {actor: sum(r == "booked" for r, _s, _d in done) for actor, done in outcomes.items()}
    print(f"\n[two processes] {SLOTS} slots, bookings won per process: {wins}")
    with Session(apps.engine) as check:
        for slot in slots:
            booked = check.exec(
                select(Consult.lead_id).where(
                    Consult.provider_id == doctor.id, Consult.starts_at == slot
                )
            ).all()
            assert len(booked) == 1, (slot, booked)
        for plan in plans:
            for lead_id, _slot in plan:
                lead = check.get(Lead, lead_id)
                assert lead is not None
                consults = check.exec(
                    select(Consult.starts_at).where(Consult.lead_id == lead_id)
                ).all()
                moves = check.exec(select(func.count()).where(StageChange.lead_id == lead_id)).one()
                if consults:  # the winner: scheduled, with both steps logged
                    assert lead.stage == Stage.CONSULT_SCHEDULED and moves == 2
                else:  # the loser: untouched
                    assert lead.stage == Stage.NEW and moves == 0 and lead.version == 1
