"""Backups taken while leads keep arriving hold every lead committed before they started."""

from __future__ import annotations

import threading
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from crm import backup, db
from crm.cli import main
from crm.intake import submit_form
from crm.models import Lead


def _submit(engine: Engine, n: int) -> int:
    with db.session_scope(engine) as s:
        result = submit_form(
            session=s,
            values={
                "first_name": "Backup", "last_name": f"Person{n}", "email": f"b{n}@example.com",
                "consent": True, "zip_code": "20147",
            },
            mode="api",
        )
    return result.lead_id


def _lead_ids(engine: Engine) -> set[int]:
    with Session(engine) as s:
        return set(s.exec(select(Lead.id)).all())  # type: ignore[arg-type]


def test_backup_under_load_restores_every_lead_acknowledged_before_it(engine: Engine, tmp_path: Path) -> None:
    acknowledged = {_submit(engine, n) for n in range(20)}
    stop = threading.Event()
    counter = iter(range(1000, 100000))

    def writer() -> None:
        while not stop.is_set():
            _submit(engine, next(counter))

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        before_backup = _lead_ids(engine)  # every lead committed before the backup starts
        target = backup.backup(url=engine.url.render_as_string(hide_password=False), target=tmp_path / "crm.backup")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert acknowledged <= before_backup
    total_after = len(_lead_ids(engine))
    assert total_after > len(before_backup), "the writers kept writing during the backup"

    # Restore into a brand-new database and find every lead from before the backup.
    if engine.dialect.name == "sqlite":
        restored_url = f"sqlite:///{tmp_path / 'restored.sqlite3'}"
    else:
        restored_url = str(engine.url.set(database=engine.url.database + "_restored").render_as_string(hide_password=False))
        with db.make_engine(engine.url.set(database="postgres").render_as_string(hide_password=False)).connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                f'CREATE DATABASE "{engine.url.database}_restored"'
            )
    backup.restore(url=restored_url, source=target)
    restored = db.make_engine(restored_url)
    assert before_backup <= _lead_ids(restored)
    with Session(restored) as s:
        assert s.exec(select(func.count()).select_from(Lead)).one() < total_after + 1
    if restored.dialect.name == "sqlite":
        assert backup.integrity_check(Path(restored.url.database or "")) == "ok"
    restored.dispose()


def test_cli_backup_and_restore_round_trip(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'live.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    from crm.settings import get_settings

    get_settings.cache_clear()
    engine = db.ensure_ready(db.make_engine(url))
    first = _submit(engine, 1)
    runner = CliRunner()
    out = runner.invoke(main, ["backup", str(tmp_path / "copy.db")])
    assert out.exit_code == 0, out.output
    second = _submit(engine, 2)
    out = runner.invoke(main, ["restore", "--yes", str(tmp_path / "copy.db")])
    assert out.exit_code == 0, out.output
    ids = _lead_ids(engine)
    assert first in ids and second not in ids
    get_settings.cache_clear()
    engine.dispose()


def test_restore_refuses_a_damaged_backup(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    try:
        backup.restore(url=url, source=bad)
    except backup.BackupError as err:
        assert "integrity" in str(err) or "file is not a database" in str(err)
    except Exception as err:  # sqlite3.DatabaseError is acceptable too: nothing was replaced
        assert not (tmp_path / "x.sqlite3").exists() or "not a database" in str(err)
    else:
        raise AssertionError("a damaged backup was restored")
