"""Backups under load: while 8 website clients post leads to a real server, `python -m crm
backup PATH` runs beside it; restored into a fresh database with `python -m crm restore --yes
PATH`, the copy holds every lead acknowledged (201 received) before the backup started,
each exactly once. SQLite (online backup API) and PostgreSQL (pg_dump / pg_restore).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from crm import backup, db
from crm.models import Lead
from tests.reliability.support import (
    Load,
    check_exactly_once,
    count,
    fresh_url,
    prepare,
    serve,
    server_env,
    stored,
)
from tests.support import REPO_ROOT

CLIENTS = 8
ACKED_BEFORE_BACKUP = 150


def crm_command(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m crm ARGS` against `db_url`, as an operator runs it next to the app."""
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        cwd=REPO_ROOT,
        env={**os.environ, **server_env(db_url)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_backup_taken_under_load_restores_every_lead_acknowledged_before_it(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = fresh_url(backend, request, tmp_path, "live")
    engine, key = prepare(url)
    target = tmp_path / "crm.backup"
    server = serve(url)
    load = Load(server.base_url, key, clients=CLIENTS)
    try:
        load.start()
        deadline = time.monotonic() + 120
        while len(load.acknowledged()) < ACKED_BEFORE_BACKUP and time.monotonic() < deadline:
            time.sleep(0.05)
        backup_started = time.monotonic()
        made = crm_command(url, "backup", str(target))
        backup_finished = time.monotonic()
        time.sleep(0.3)  # the load goes on after the backup too
    finally:
        load.stop()
        load.join(120)
        server.stop()
    assert made.returncode == 0, made.stdout + made.stderr
    before = load.acknowledged(before=backup_started)
    during = [
        a for a in load.acknowledged().values() if backup_started <= a.answered < backup_finished
    ]
    print(
        f"\n[{backend}] backup took {backup_finished - backup_started:.1f}s; "
        f"{len(before)} leads acknowledged before it, {len(during)} while it ran, "
        f"{len(load.acknowledged())} in all"
    )
    assert len(before) >= ACKED_BEFORE_BACKUP
    assert during, "no lead was acknowledged while the backup ran: it was not under load"
    assert load.statuses() == {201: len(load.attempts)}
    check_exactly_once(load, engine, must_ack_all=True)

    restored_url = fresh_url(backend, request, tmp_path, "restored")
    restored = crm_command(restored_url, "restore", "--yes", str(target))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    copy = db.make_engine(restored_url)
    try:
        in_copy = stored(copy, load.tag)
        missing = [n for n in before if n not in in_copy]
        assert not missing, f"{len(missing)} leads acknowledged before the backup are missing"
        for n, ack in before.items():
            assert in_copy[n].leads == [(ack.lead_id, ack.reference)], n
            assert in_copy[n].submissions == 1, n
        # A consistent snapshot: whatever else it holds is whole, and nothing from the future.
        assert all(len(rows.leads) == 1 and rows.submissions == 1 for rows in in_copy.values())
        assert len(before) <= count(copy, Lead) <= count(engine, Lead)
        assert db.current_revision(copy) == db.current_revision(engine)
        if backend == "sqlite":
            assert backup.integrity_check(Path(make_url(restored_url).database or "")) == "ok"
    finally:
        copy.dispose()
        engine.dispose()
