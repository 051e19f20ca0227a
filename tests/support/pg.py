"""A throwaway PostgreSQL server for tests, from Debian's ``postgresql`` package.

Usage::

    with start_postgres(tmp_dir) as pg:          # or: pg = start_postgres(); ...; pg.stop()
        engine = create_engine(pg.url)           # postgresql+psycopg://postgres@127.0.0.1:PORT/crm_test
        url = pg.create_database("crm_mod_x")    # a fresh, empty database

The server listens on 127.0.0.1 only, on a free port, with no unix socket, trust
authentication, and durability switched off (``fsync``, ``full_page_writes``,
``synchronous_commit``) for speed. ``initdb`` refuses to run as root, so when the
tests run as root the server runs as a system user (``crmtest``, created once with
``useradd``) and its data lives in a temporary directory that user owns.
``stop()`` stops the server and deletes that directory.

Missing binaries raise ``RuntimeError`` naming the apt package; nothing skips.
"""

from __future__ import annotations

import atexit
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support import die_with_parent_preexec, free_port, tail

PG_LIB_ROOT = Path("/usr/lib/postgresql")
"""Where Debian installs versioned server binaries (``<ver>/bin/initdb`` ...)."""

TEST_OS_USER = "crmtest"
"""System user that runs the server when the tests run as root."""

SUPERUSER = "postgres"
"""Database superuser created by initdb (trust auth, no password)."""

DEFAULT_DBNAME = "crm_test"
"""Database created at start; :attr:`PostgresServer.url` points at it."""

INSTALL_HINT = "install it with: apt-get install postgresql (or run scripts/test.sh, which does)"

_DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def find_pg_bin(lib_root: Path | str | None = None) -> Path:
    """The ``bin`` directory of the highest PostgreSQL version under *lib_root*.

    *lib_root* defaults to :data:`PG_LIB_ROOT`. Raises ``RuntimeError`` (naming the
    apt package) when no complete install (``initdb`` and ``postgres``) is found.
    """
    root = Path(lib_root if lib_root is not None else PG_LIB_ROOT)
    candidates: list[tuple[tuple[int, ...], Path]] = []
    if root.is_dir():
        for entry in root.iterdir():
            bin_dir = entry / "bin"
            if not ((bin_dir / "initdb").is_file() and (bin_dir / "postgres").is_file()):
                continue
            try:
                version = tuple(int(part) for part in entry.name.split("."))
            except ValueError:
                continue
            candidates.append((version, bin_dir))
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL server binaries (initdb, postgres) not found under {root}/<version>/bin; "
            + INSTALL_HINT
        )
    return max(candidates)[1]


def _ensure_os_user(name: str = TEST_OS_USER) -> pwd.struct_passwd:
    """Create the unprivileged system user *name* once (idempotent, race-tolerant)."""
    last_error = ""
    for _attempt in range(20):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        # 0: created; 9: already exists (another worker won the race); 10: passwd lock busy.
        last_error = (result.stderr or result.stdout).strip()
        if result.returncode not in (0, 9):
            time.sleep(0.25)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(
            f"could not create system user {name!r} for PostgreSQL: {last_error}"
        ) from None


def _others_can_traverse(path: Path) -> bool:
    """True when every ancestor of *path* is searchable by any user (o+x)."""
    path = path.resolve()
    for part in (path, *path.parents):
        try:
            if not part.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


STALE_AFTER_S = 3600.0


def _sweep_stale(parent: Path) -> None:
    """Remove ``crm-pg-*`` dirs left by runs that were killed hard (best effort).

    Only dirs untouched for an hour whose postmaster is gone (no ``postmaster.pid``,
    or its PID no longer exists) are removed, so a live server is never touched.
    """
    now = time.time()
    for old in parent.glob("crm-pg-*"):
        try:
            if now - old.stat().st_mtime < STALE_AFTER_S:
                continue
            pid_file = old / "data" / "postmaster.pid"
            if pid_file.exists():
                pid = int(pid_file.read_text().split()[0])
                try:
                    os.kill(pid, 0)
                    continue  # still running
                except ProcessLookupError:
                    pass
            shutil.rmtree(old, ignore_errors=True)
        except (OSError, ValueError, IndexError):
            continue


def _make_base_dir(tmp_dir: Path | str | None, as_other_user: bool) -> Path:
    """A fresh directory for the data dir and log, reachable by the server's user."""
    parents: list[Path | None] = []
    if tmp_dir is not None:
        parents.append(Path(tmp_dir))
    parents.append(None)  # the system temp dir
    parents.append(Path("/tmp"))
    for parent in parents:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        base = Path(tempfile.mkdtemp(prefix="crm-pg-", dir=parent))
        if not as_other_user or _others_can_traverse(base.parent):
            _sweep_stale(base.parent)
            return base
        base.rmdir()
    raise RuntimeError("no temporary directory reachable by the PostgreSQL test user")


class PostgresServer:
    """A running throwaway PostgreSQL server (see :func:`start_postgres`).

    Attributes: ``host`` (127.0.0.1), ``port``, ``user`` (DB superuser),
    ``dbname`` (default database), ``url`` (SQLAlchemy URL of ``dbname``),
    ``base_dir`` (temp dir holding ``data/`` and ``postgres.log``), ``data_dir``,
    ``log_path``, ``bin_dir``, ``version``, ``pid``.
    """

    host = "127.0.0.1"

    def __init__(self, base_dir: Path, bin_dir: Path, os_user: pwd.struct_passwd | None) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.log_path = base_dir / "postgres.log"
        self.bin_dir = bin_dir
        self.version = bin_dir.parent.name
        self.user = SUPERUSER
        self.dbname = DEFAULT_DBNAME
        self.port = 0
        self._os_user = os_user
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = False

    # -- URLs -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``postgresql+psycopg://postgres@127.0.0.1:PORT/crm_test``."""
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of database *dbname* on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def dsn(self, dbname: str | None = None) -> str:
        """libpq connection string for ``psycopg.connect`` (default database if None)."""
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"dbname={dbname or self.dbname} connect_timeout=5"
        )

    @property
    def pid(self) -> int | None:
        """PID of the postmaster while running."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """The server log so far ('' once stopped and removed)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- databases --------------------------------------------------------------------

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode; return its rows (``[]`` if none)."""
        import psycopg

        with psycopg.connect(self.dsn(dbname), autocommit=True) as conn:
            cur = conn.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    def create_database(self, name: str) -> str:
        """Create an empty database *name* (``[a-z_][a-z0-9_]*``) and return its URL."""
        if not _DB_NAME_RE.match(name):
            raise ValueError(
                f"invalid test database name {name!r}: use [a-z_][a-z0-9_]*, max 63 chars"
            )
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop database *name*, disconnecting any remaining sessions."""
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"invalid test database name {name!r}")
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # -- lifecycle --------------------------------------------------------------------

    def _run_as_server_user(
        self, cmd: Sequence[str], **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            check=False,
            cwd=self.base_dir,
            **self._user_kwargs(),
            **kwargs,
        )

    def _user_kwargs(self) -> dict[str, Any]:
        if self._os_user is None:
            return {}
        return {"user": self._os_user.pw_uid, "group": self._os_user.pw_gid, "extra_groups": []}

    def _initdb(self) -> None:
        result = self._run_as_server_user(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({result.returncode}):\n{tail(result.stdout + result.stderr)}"
            )

    def _start_postmaster(self, port: int) -> None:
        self.port = port
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": "",
            "fsync": "off",
            "full_page_writes": "off",
            "synchronous_commit": "off",
            "max_connections": "200",
            "shared_buffers": "64MB",
            "log_min_messages": "warning",
            "log_min_error_statement": "error",
        }
        args = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for key, value in options.items():
            args += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.base_dir,
                start_new_session=True,
                preexec_fn=die_with_parent_preexec(),
                **self._user_kwargs(),
            )

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        assert self._proc is not None
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise _EarlyExit(self._proc.returncode)
            try:
                with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError as exc:
                last_error = exc
                time.sleep(0.1)
        raise RuntimeError(
            f"PostgreSQL on port {self.port} did not accept connections within {timeout:.0f}s "
            f"({last_error}); log:\n{tail(self.log_text())}"
        )

    def start(self, timeout: float = 60.0) -> PostgresServer:
        """initdb, start the postmaster on a free port and wait until it answers."""
        self._initdb()
        for attempt in range(3):
            self._start_postmaster(free_port())
            try:
                self._wait_ready(timeout)
                break
            except _EarlyExit as exc:
                log = self.log_text()
                if attempt < 2 and "already in use" in log:
                    continue  # lost the race for the port: try another
                raise RuntimeError(
                    f"PostgreSQL exited with code {exc.code} while starting; log:\n{tail(log)}"
                ) from None
        self.create_database(self.dbname)
        atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (fast shutdown, then SIGKILL) and remove its temp directory."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)  # "fast" shutdown: roll back sessions, exit
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                _killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if proc is not None:
            _killpg(proc.pid, signal.SIGKILL)  # any backend left behind in the session
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<PostgresServer {self.version} {self.url} running={self.is_running()}>"


class _EarlyExit(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(code)
        self.code = code


def _killpg(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_postgres(tmp_dir: Path | str | None = None, *, timeout: float = 60.0) -> PostgresServer:
    """Start a throwaway PostgreSQL server and return it once it accepts connections.

    *tmp_dir*: where to create the server's temp directory (``crm-pg-XXXX``). When
    running as root and *tmp_dir* is not reachable by the ``crmtest`` user (pytest's
    ``tmp_path`` is under a 0700 directory), the system temp dir is used instead.

    The result is also a context manager (``with start_postgres(p) as pg:``) whose
    exit calls :meth:`PostgresServer.stop`; an atexit hook stops it as a last resort.
    """
    bin_dir = find_pg_bin()
    os_user = _ensure_os_user() if os.geteuid() == 0 else None
    base_dir = _make_base_dir(tmp_dir, as_other_user=os_user is not None)
    if os_user is not None:
        os.chown(base_dir, os_user.pw_uid, os_user.pw_gid)
        base_dir.chmod(0o700)
    server = PostgresServer(base_dir, bin_dir, os_user)
    try:
        return server.start(timeout=timeout)
    except BaseException:
        server.stop()
        raise
