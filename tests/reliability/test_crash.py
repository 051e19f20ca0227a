"""Crash, nothing lost: the server is killed with SIGKILL (its whole process group) in the
middle of a load; after a restart on the same database every submission that got a 201 is
there, exactly once, and the database passes its integrity check. Clients then retry what
got no answer, with the same Idempotency-Key, and still nothing is stored twice.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from crm import backup
from tests.reliability.support import (
    Load,
    check_exactly_once,
    fresh_url,
    new_tag,
    person,
    prepare,
    serve,
)

CLIENTS = 8
ACKED_BEFORE_KILL = 200


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_killed_server_loses_no_acknowledged_submission(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = fresh_url(backend, request, tmp_path, "crash")
    engine, key = prepare(url)
    server = serve(url)
    load = Load(server.base_url, key, clients=CLIENTS, retry_every=10, twin_every=10)
    try:
        load.start()
        deadline = time.monotonic() + 120
        while len(load.acknowledged()) < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.05)
        killed_at = time.monotonic()
        server.kill()  # SIGKILL to the process group, requests in flight
        assert server.proc is not None
        server.proc.wait(10)
        time.sleep(0.5)  # the clients meet the dead server
        load.stop()
        load.join(60)
    finally:
        server.stop()
    acked = load.acknowledged()
    in_flight = [a for a in load.attempts if a.status is None and a.sent < killed_at]
    print(
        f"\n[{backend}] killed after {len(acked)} acknowledged submissions; "
        f"{len(in_flight)} requests were cut off; statuses {load.statuses()}"
    )
    assert len(acked) >= ACKED_BEFORE_KILL
    assert {a.status for a in load.attempts} <= {201, None}
    assert in_flight, "the kill interrupted no request: it was not in the middle of a load"

    engine.dispose()
    if backend == "sqlite":
        path = Path(make_url(url).database or "")
        assert backup.integrity_check(path) == "ok"
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []

    restarted = serve(url)
    try:
        check_exactly_once(load, engine, must_ack_all=False)
        # Clients retry what got no answer (the keyed ones: without a key a retry is, by
        # design, a second submission of the same person).
        unanswered = sorted(
            {a.n for a in load.attempts} - acked.keys(),
        )
        keyed = [n for n in unanswered if load.idempotency_key(n) is not None]
        retried = load.resend(keyed, restarted.base_url)
        assert {a.status for a in retried} <= {201}
        check_exactly_once(load, engine, must_ack_all=False)
        assert keyed == [] or set(load.acknowledged()) >= set(keyed)
        # An acknowledged submission sent again gets its first answer back after the restart.
        again = load.resend(
            sorted(n for n in acked if load.idempotency_key(n))[:20], restarted.base_url
        )
        assert all(a.replayed and a.lead_id == acked[a.n].lead_id for a in again)
        with httpx.Client(base_url=restarted.base_url, timeout=30) as client:
            assert client.get("/api/health").status_code == 200
            fresh = client.post(
                "/api/leads", json=person(new_tag("after"), 0), headers={"X-API-Key": key}
            )
        assert fresh.status_code == 201, fresh.text
        check_exactly_once(load, engine, must_ack_all=False)
        assert "Traceback" not in restarted.log_text()
    finally:
        restarted.stop()
        engine.dispose()
