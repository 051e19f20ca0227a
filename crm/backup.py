"""Consistent backups while the app runs, and restores: SQLite online backup API, pg_dump."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from crm.errors import CRMError


class BackupError(CRMError):
    """A backup or restore could not be made."""


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("This SQLite database has no file to back up.")
    return Path(database)


def _libpq_url(url: str) -> str:
    """The URL pg_dump/pg_restore understand (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)),
        None,
    )
    if not found:
        raise BackupError(f"{name} not found: install the PostgreSQL client (apt-get install postgresql-client)")
    return found


def integrity_check(path: Path) -> str:
    """SQLite's own verdict on a database file ("ok" when sound)."""
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def backup(*, url: str, target: Path) -> Path:
    """Write a consistent copy of the database at `url` to `target` while it is in use."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() == "sqlite":
        source_path = _sqlite_path(url)
        if not source_path.exists():
            raise BackupError(f"No database at {source_path}")
        tmp = target.with_suffix(target.suffix + ".partial")
        tmp.unlink(missing_ok=True)
        # The online backup API copies a consistent snapshot even while others write.
        with sqlite3.connect(source_path, timeout=30) as source, sqlite3.connect(tmp) as dest:
            source.backup(dest, pages=4096)
        verdict = integrity_check(tmp)
        if verdict != "ok":
            tmp.unlink(missing_ok=True)
            raise BackupError(f"The copy failed its integrity check: {verdict}")
        tmp.replace(target)
        return target
    result = subprocess.run(
        [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(target), _libpq_url(url)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()}")
    return target


def restore(*, url: str, source: Path) -> None:
    """Replace the database at `url` with the backup at `source` (stop the app first)."""
    source = Path(source)
    if not source.exists():
        raise BackupError(f"No backup at {source}")
    if make_url(url).get_backend_name() == "sqlite":
        verdict = integrity_check(source)
        if verdict != "ok":
            raise BackupError(f"The backup failed its integrity check: {verdict}")
        live = _sqlite_path(url)
        live.parent.mkdir(parents=True, exist_ok=True)
        # Copy through the backup API into the live file, so its WAL stays consistent.
        with sqlite3.connect(source) as src, sqlite3.connect(live, timeout=30) as dest:
            src.backup(dest)
        return
    result = subprocess.run(
        [
            _pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
            "--dbname", _libpq_url(url), str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()}")
