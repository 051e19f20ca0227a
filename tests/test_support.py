"""Tests of the test infrastructure itself (tests/support): PostgreSQL, Streamlit, Chromium."""

from __future__ import annotations

import os
import signal
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.support import pg as pg_mod
from tests.support import port_is_open
from tests.support.browser import ARTIFACTS_DIR, launch_browser, screenshot, wait_for_app
from tests.support.pg import find_pg_bin, start_postgres
from tests.support.server import RunningServer, start_streamlit

HELLO_APP = textwrap.dedent(
    """
    import streamlit as st

    st.write("hello")
    """
)


# -- PostgreSQL ---------------------------------------------------------------------------


def test_postgres_starts_answers_creates_database_and_stops(tmp_path: Path) -> None:
    pg = start_postgres(tmp_path)
    try:
        assert pg.is_running()
        assert pg.url == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/crm_test"
        with psycopg.connect(pg.dsn()) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        assert pg.execute("show fsync") == [("off",)]
        assert pg.execute("show unix_socket_directories") == [("",)]

        url = pg.create_database("crm_support_check")
        assert url == pg.url_for("crm_support_check")
        engine = sa.create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text("create table t (id int primary key)"))
                conn.execute(sa.text("insert into t values (1), (2)"))
            with engine.connect() as conn:
                assert conn.execute(sa.text("select current_database()")).scalar() == (
                    "crm_support_check"
                )
                assert conn.execute(sa.text("select count(*) from t")).scalar() == 2
        finally:
            engine.dispose()
        with pytest.raises(ValueError):
            pg.create_database('bad"; drop database postgres; --')
        pg.drop_database("crm_support_check")
        names = {row[0] for row in pg.execute("select datname from pg_database")}
        assert "crm_support_check" not in names
        assert "crm_test" in names
    finally:
        data_dir, base_dir, port = pg.data_dir, pg.base_dir, pg.port
        pg.stop()
    assert not pg.is_running()
    assert not data_dir.exists()
    assert not base_dir.exists()
    assert not port_is_open(port)
    pg.stop()  # idempotent


def test_postgres_context_manager_stops(tmp_path: Path) -> None:
    with start_postgres(tmp_path) as pg:
        engine = sa.create_engine(pg.url)
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar() == 1
        engine.dispose()
        base_dir = pg.base_dir
    assert not base_dir.exists()
    assert not pg.is_running()


def test_postgres_missing_binaries_name_the_apt_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(RuntimeError, match="apt-get install postgresql"):
        find_pg_bin(tmp_path / "nothing-here")
    monkeypatch.setattr(pg_mod, "PG_LIB_ROOT", tmp_path)
    with pytest.raises(RuntimeError, match="apt-get install postgresql"):
        start_postgres(tmp_path)


def test_find_pg_bin_picks_highest_version(tmp_path: Path) -> None:
    for version in ("9.6", "13", "16", "not-a-version"):
        bin_dir = tmp_path / version / "bin"
        bin_dir.mkdir(parents=True)
        for name in ("initdb", "postgres"):
            (bin_dir / name).write_text("")
    (tmp_path / "17" / "bin").mkdir(parents=True)  # incomplete install: ignored
    assert find_pg_bin(tmp_path) == tmp_path / "16" / "bin"


# -- Streamlit ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hello_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    app_dir = tmp_path_factory.mktemp("hello_app")
    (app_dir / "hello_app.py").write_text(HELLO_APP)
    with start_streamlit("hello_app.py", cwd=app_dir, env={"CRM_SUPPORT_CHECK": "1"}) as srv:
        yield srv


def test_streamlit_serves_script_and_health(hello_server: RunningServer) -> None:
    srv = hello_server
    assert srv.base_url == f"http://127.0.0.1:{srv.port}"
    assert srv.is_running() and srv.pid > 0
    assert srv.health() == "ok"
    with urllib.request.urlopen(srv.url("/_stcore/health"), timeout=5) as resp:
        assert resp.status == 200
        assert resp.read().decode().strip() == "ok"
    with urllib.request.urlopen(srv.base_url, timeout=5) as resp:
        assert resp.status == 200
        assert "<html" in resp.read().decode().lower()
    assert srv.env["CRM_SUPPORT_CHECK"] == "1"
    assert isinstance(srv.log_text(), str)


def test_streamlit_stop_kills_process_group(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(HELLO_APP)
    srv = start_streamlit(tmp_path / "app.py", cwd=tmp_path, log_dir=tmp_path / "logs")
    pid, port = srv.pid, srv.port
    srv.stop()
    assert not srv.is_running()
    assert not port_is_open(port)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert (tmp_path / "logs" / "streamlit.log").exists()
    srv.stop()  # idempotent


def test_streamlit_kill_signal(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(HELLO_APP)
    with start_streamlit("app.py", cwd=tmp_path) as srv:
        srv.kill(signal.SIGKILL)
        assert srv.proc is not None
        assert srv.proc.wait(10) == -signal.SIGKILL
        assert srv.health(timeout=1) is None
    assert isinstance(srv.log_text(), str)  # still readable after stop removed the temp dir


def test_streamlit_failure_raises_with_log(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="exited with code") as excinfo:
        start_streamlit("does_not_exist.py", cwd=tmp_path, timeout=30)
    assert "does_not_exist.py" in str(excinfo.value)


# -- Browser ------------------------------------------------------------------------------


@pytest.mark.e2e
def test_chromium_loads_app_and_saves_screenshot(hello_server: RunningServer) -> None:
    from playwright.sync_api import sync_playwright

    target = ARTIFACTS_DIR / "support_hello.png"
    target.unlink(missing_ok=True)
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.goto(hello_server.base_url)
            wait_for_app(page)
            assert page.get_by_text("hello", exact=True).is_visible()
            path = screenshot(page, "support hello")
        finally:
            browser.close()
    assert path == target
    assert path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
