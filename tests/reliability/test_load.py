"""Load, nothing lost: 5,000 website submissions from 50 concurrent clients against a real
`streamlit run` server, a tenth of them sent again with the same Idempotency-Key (half as a
sequential retry, half as two simultaneous requests); every acknowledged submission is
stored exactly once, and every retry got the first answer back. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from crm.models import IdempotencyRecord, Lead, Submission
from tests.reliability.support import Load, check_exactly_once, count, fresh_url, prepare, serve

SUBMISSIONS = 5_000
CLIENTS = 50
RETRY_EVERY = 20  # 5% retried one after the other with the same Idempotency-Key
TWIN_EVERY = 20  # 5% sent twice at the same moment with the same Idempotency-Key


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_acknowledged_submission_is_stored_exactly_once(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = fresh_url(backend, request, tmp_path, "load")
    engine, key = prepare(url)
    server = serve(url)
    try:
        load = Load(
            server.base_url,
            key,
            clients=CLIENTS,
            total=SUBMISSIONS,
            retry_every=RETRY_EVERY,
            twin_every=TWIN_EVERY,
        ).run()
    finally:
        server.stop()
    with capsys.disabled():  # information for whoever runs the suite, not asserted
        print(
            f"\n[{backend}] {SUBMISSIONS} submissions ({len(load.attempts)} requests) from {CLIENTS} "
            f"clients in {load.finished - load.started:.1f}s: "
            f"{load.accepted_per_second():.0f} accepted/s; statuses {load.statuses()}"
        )
    try:
        assert load.statuses() == {201: len(load.attempts)}, [
            a for a in load.attempts if a.status != 201
        ][:5]
        check_exactly_once(load, engine, must_ack_all=True)
        assert count(engine, Lead) == SUBMISSIONS
        assert count(engine, Submission) == SUBMISSIONS
        # One idempotency record per keyed submission; a retry is a replay of the first answer.
        keyed = {a.idempotency_key for a in load.attempts if a.idempotency_key}
        assert count(engine, IdempotencyRecord) == len(keyed)
        fresh_answers: dict[int, int] = defaultdict(int)
        for attempt in load.attempts:
            fresh_answers[attempt.n] += not attempt.replayed
        repeated = {a.n for a in load.attempts if a.kind != "once"}
        assert len(repeated) == SUBMISSIONS // RETRY_EVERY + SUBMISSIONS // TWIN_EVERY
        assert all(fresh_answers[n] == 1 for n in repeated), "a repeat was stored again"
        assert "Traceback" not in server.log_text()
    finally:
        engine.dispose()
