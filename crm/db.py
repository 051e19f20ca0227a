"""Engines, sessions and schema upgrades for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from crm.settings import ROOT, get_settings

MIGRATIONS = ROOT / "migrations"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer; NORMAL sync is durable across process crashes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """A new engine for `url`, configured for this app (pragmas, pool, sane timeouts)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=20,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def get_engine(url: str | None = None) -> Engine:
    """The shared engine for `url` (default: DATABASE_URL), created once per process."""
    url = url or get_settings().database_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def upgrade(engine: Engine | None = None) -> None:
    """Bring the schema to the newest migration (creates it on an empty database)."""
    from alembic import command

    engine = engine or get_engine()
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def current_revision(engine: Engine | None = None) -> str | None:
    """The migration the database is at, or None when it has no schema yet."""
    from alembic.runtime.migration import MigrationContext

    with (engine or get_engine()).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


_ready: set[str] = set()
_upgrade_lock = threading.Lock()
# Any constant works: it names the lock PostgreSQL holds while one process migrates.
_PG_MIGRATION_LOCK = 7_214_001


def ensure_ready(engine: Engine | None = None) -> Engine:
    """Upgrade the schema and seed the clinic's defaults, once per process and database.

    Safe when the first page visit and the first API call arrive together, and when several
    app processes start at once on one PostgreSQL database (an advisory lock serializes them).
    """
    engine = engine or get_engine()
    key = str(engine.url)
    with _upgrade_lock:
        if key in _ready:
            return engine
        if engine.dialect.name == "postgresql":
            with engine.connect() as guard:
                guard.exec_driver_sql(f"SELECT pg_advisory_lock({_PG_MIGRATION_LOCK})")
                try:
                    _upgrade_and_seed(engine)
                finally:
                    guard.exec_driver_sql(f"SELECT pg_advisory_unlock({_PG_MIGRATION_LOCK})")
                    guard.commit()
        else:
            _upgrade_and_seed(engine)
        _ready.add(key)
    return engine


def _upgrade_and_seed(engine: Engine) -> None:
    from crm import catalog

    upgrade(engine)
    with session_scope(engine) as session:
        catalog.seed_defaults(session)
