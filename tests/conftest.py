"""Shared fixtures: every storage test runs once on SQLite and once on a real PostgreSQL."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from crm import db
from tests.support.pg import PostgresServer, start_postgres

BACKENDS = ["sqlite", "postgresql"]
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server per test process (never skipped: a missing server fails)."""
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        server.stop()


def _fresh_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw")
    return server.create_database(f"crm_{worker}_{next(_db_counter)}")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty database on each backend."""
    return _fresh_url(request.param, request, tmp_path)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a fresh database, migrated to head and seeded (both backends)."""
    eng = db.make_engine(db_url)
    db.ensure_ready(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite engine, for tests that need no second backend."""
    eng = db.make_engine(f"sqlite:///{tmp_path / 'crm.sqlite3'}")
    db.ensure_ready(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def sqlite_session(sqlite_engine: Engine) -> Iterator[Session]:
    with Session(sqlite_engine, expire_on_commit=False) as s:
        yield s


_pg_passed = 0


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _pg_passed
    if report.when == "call" and report.passed and "postgresql" in report.nodeid:
        _pg_passed += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (CRM_REQUIRE_POSTGRES=1) a run in which no PostgreSQL test passed is a failure."""
    if os.environ.get("CRM_REQUIRE_POSTGRES") == "1" and _pg_passed == 0 and exitstatus == 0:
        if os.environ.get("PYTEST_XDIST_WORKER"):
            return  # the controller process decides, from the reports it collects
        print("\nCI FAILED: no PostgreSQL test ran; the PostgreSQL half of the suite was skipped")
        session.exitstatus = 1
