"""One benchmark: `python -m crm.bench` prints, per database size, ours beside a bare baseline.

For each size N (a throwaway database per size: SQLite files under --workdir, or PostgreSQL
databases named after --database-url with a suffix):

1. Demo data: `crm.demo.generate(leads=N, seed=7, as_of=--as-of)` into an empty database,
   timed (schema creation not included). Baseline: the very rows it wrote (every table:
   staff, contacts, leads, submissions, history, consults...), read back outside the clock in
   chunks of 10,000 and inserted with the bare driver (sqlite3 / psycopg `executemany` of
   ready tuples) in ONE transaction into empty tables WITH THE SAME INDEXES, on the same
   bulk-load settings the demo uses (SQLite: synchronous=OFF, no foreign-key checks).
2. Intake over HTTP: the real `streamlit run streamlit_app.py` (headless, fileWatcherType
   none, 127.0.0.1, a free port) on a copy of that database, an API key, then POST
   /api/leads with 1, 16 and 64 concurrent clients (threads with keep-alive connections),
   --intake-n new people per level: accepted leads/s, p50/p99 latency, and every
   acknowledged lead id looked up in the database. Baseline: in one process, the same
   number of Contact + Lead + Submission rows inserted with the bare driver, each lead
   committed on its own (as the API acknowledges each one), WAL + synchronous=NORMAL as the
   app, into the baseline copy of step 1 (same size, same indexes).
3. Page data (the server has no HTTP route for page data, so these run in child processes
   of the benchmark against the same database file the server uses, before its load):
   the triage queue's first page, a search by phone number typed in national format, a
   search by name prefix, one lead page (header, timeline, team) and the whole dashboard
   (every crm.metrics call the page makes, default period "last 30 days"), each with every
   data call its page makes on a run. "cold" = the first call in a fresh child process on a
   new engine (SQLite page cache and SQLAlchemy statement cache empty; the OS file cache is
   not dropped, it is warm from the earlier steps; on PostgreSQL shared_buffers stay warm).
   "warm" = the median of the 2nd to 4th calls in the same process. "cache hit" (dashboard)
   = what a repeat view within st.cache_data's 60 s costs, measured as the dict lookup plus
   unpickling of the stored results (st.cache_data returns an unpickled copy; hashing the
   arguments is not included). Baseline: the SQL statements our call sent, captured from
   the driver with their parameters, replayed through sqlite3 / psycopg on a connection of
   their own (cold: a new connection; warm: its median of 3 further replays).
4. Peak memory (VmHWM in /proc/PID/status, reset to the current RSS through
   /proc/PID/clear_refs once start-up is over, so it shows the work's peak rather than the
   imports'): the server's after its intake load (baseline: right after start), and the
   dashboard child's (baseline: the same process, imports done, before its first query);
   "flat" = at most 1.25x the smallest size's figure.

The clock for every page figure is the as-of instant (the start of the as-of day, clinic
time, where the demo's timeline ends), so the default period always holds data.

    python -m crm.bench                                     # 10,000 and 100,000 leads, SQLite
    python -m crm.bench --sizes 10000,100000,1000000 --reuse --json out.json
    python -m crm.bench --database-url postgresql+psycopg://postgres@127.0.0.1:5432/crm

--reuse takes, instead of generating, a demo database of the right size, seed and as-of
date: WORKDIR/demo-N.sqlite3 from an earlier run, else /tmp/demo100k.sqlite3 and
/tmp/demo1m.sqlite3 (opened read-only and copied with SQLite's backup API; never written
to); on PostgreSQL a kept (--keep) database. A reused database's generation isn't timed
unless an earlier run of this command recorded it (WORKDIR/demo-N.json).
Only sends traffic to loopback addresses. The client side of the intake load is shared
with bench/intake.py.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from crm.settings import ROOT

if TYPE_CHECKING:
    from tests.support.server import RunningServer

SEED = 7
DEFAULT_AS_OF = date(2026, 11, 20)
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
KNOWN_DEMOS = {100_000: Path("/tmp/demo100k.sqlite3"), 1_000_000: Path("/tmp/demo1m.sqlite3")}
CHUNK = 10_000
WARM_RUNS = 3
QUEUE_PAGE_SIZE = 50  # pages/queue.py PAGE_SIZE

TARGET_INTAKE_PER_S = 250.0  # at 16 clients, SQLite
TARGET_INTAKE_CLIENTS = 16
TARGET_QUEUE_MS = 100.0  # at 1,000,000 leads; checked at every size
TARGET_DASHBOARD_MS = 1000.0
FLAT_FACTOR = 1.25


# --- Intake load (shared with bench/intake.py) -------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass
class LevelResult:
    """One concurrency level of the intake load."""

    clients: int
    sent: int
    accepted: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    stored: int | None
    first_error: str
    ids: set[int]
    missing: int | None = None

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    @property
    def stored_ok(self) -> bool | None:
        """Every acknowledged lead stored exactly once (None: not checked)."""
        if self.stored is None:
            return None
        return self.stored == self.accepted and self.missing == 0 and len(self.ids) == self.accepted

    def check_text(self) -> str:
        ok = self.stored_ok
        if ok is None:
            return "not checked (no database url)"
        if ok:
            return f"yes ({self.stored}, every acknowledged id found)"
        return (
            f"NO: stored {self.stored}, acknowledged {self.accepted} "
            f"({len(self.ids)} distinct ids, {self.missing} not found)"
        )


def payload(run: str, i: int) -> dict[str, object]:
    """A new person every time (unique email, no phone): each post must create one lead."""
    return {
        "first_name": "Bench",
        "last_name": f"Person {i}",
        "email": f"bench.{run}.{i}@example.com",
        "preferred_contact": "email",
        "service": "Depression (incl. treatment-resistant)",
        "zip_code": "20147",
        "message": "I'd like to learn whether ketamine infusions could help with my depression.",
        "heard_about": "Search",
        "consent": True,
        "crisis": "no",
    }


def run_level(url: str, api_key: str, clients: int, n: int, run: str) -> LevelResult:
    """Post n leads from `clients` threads (one keep-alive connection each).

    The client is the standard library's http.client: it costs a fraction of the CPU of a
    full-featured client, so on a 2-core machine the load generator steals less from the
    server it measures.
    """
    import http.client
    from urllib.parse import urlsplit

    target = urlsplit(url)
    counter = iter(range(n))
    lock = threading.Lock()
    latencies: list[float] = []
    ids: set[int] = set()
    accepted = errors = 0
    first_error = ""
    start_gate = threading.Barrier(clients + 1)
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}

    def worker() -> None:
        nonlocal accepted, errors, first_error
        mine: list[float] = []
        my_ids: list[int] = []
        ok = bad = 0
        err = ""
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        start_gate.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            t0 = time.perf_counter()
            status, body = 0, b""
            try:
                conn.request("POST", "/api/leads", json.dumps(payload(run, i)), headers)
                response = conn.getresponse()
                status, body = response.status, response.read()
            except (OSError, http.client.HTTPException) as exc:
                err = err or f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
            mine.append((time.perf_counter() - t0) * 1000)
            if status == 201:
                ok += 1
                my_ids.append(int(json.loads(body)["id"]))
            else:
                bad += 1
                if not err and status:
                    err = f"HTTP {status}: {body[:200]!r}"
        conn.close()
        with lock:
            latencies.extend(mine)
            ids.update(my_ids)
            accepted += ok
            errors += bad
            first_error = first_error or err

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - t0
    return LevelResult(clients, n, accepted, errors, seconds, latencies, None, first_error, ids)


def count_leads(database_url: str) -> int:
    from sqlalchemy import func
    from sqlmodel import Session, select

    from crm import db
    from crm.models import Lead

    engine = db.make_engine(database_url)
    try:
        with Session(engine) as session:
            return int(session.exec(select(func.count()).select_from(Lead)).one())
    finally:
        engine.dispose()


def count_missing(database_url: str, ids: set[int]) -> int:
    """How many acknowledged lead ids are not in the database."""
    from sqlmodel import Session, col, select

    from crm import db
    from crm.models import Lead

    engine = db.make_engine(database_url)
    found: set[int] = set()
    wanted = sorted(ids)
    try:
        with Session(engine) as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found.update(
                    int(i or 0)
                    for i in session.exec(select(Lead.id).where(col(Lead.id).in_(chunk)))
                )
    finally:
        engine.dispose()
    return len(ids - found)


def create_key(database_url: str) -> str:
    """A new API key (no allowed origins) in that database; its plaintext."""
    from sqlmodel import Session

    from crm import apikeys, db

    engine = db.make_engine(database_url)
    try:
        db.ensure_ready(engine)
        with Session(engine) as session:
            key = apikeys.create_key(
                session=session,
                name=f"bench-{uuid.uuid4().hex[:8]}",
                allowed_origins=[],
                actor_id=None,
            )
            session.commit()
        return key
    finally:
        engine.dispose()


@contextmanager
def server(database_url: str) -> Iterator[RunningServer]:
    """`streamlit run streamlit_app.py` on that database, the API rate limit lifted."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.support.server import start_streamlit

    env = {
        "DATABASE_URL": database_url,
        "CRM_API_RATE_PER_MINUTE": "100000000",
        "CRM_SECRET_KEY": "bench-secret-key-" + "x" * 32,
    }
    with start_streamlit(env=env, cwd=ROOT, timeout=180) as running:
        yield running


def measure_intake(
    url: str, key: str, database_url: str | None, levels: list[int], n: int
) -> list[LevelResult]:
    """A warm-up (not counted), then each level; stored/missing filled when the db is known."""
    run_level(url, key, 4, 40, "warmup-" + uuid.uuid4().hex[:6])
    results = []
    for clients in levels:
        before = count_leads(database_url) if database_url else None
        result = run_level(url, key, clients, n, uuid.uuid4().hex[:8])
        if database_url and before is not None:
            result.stored = count_leads(database_url) - before
            result.missing = count_missing(database_url, result.ids)
        results.append(result)
    return results


# --- Machine facts and memory --------------------------------------------------------------------


def vm_hwm_mb(pid: int | str = "self") -> float | None:
    """Peak resident memory (VmHWM) of a process, in MB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def reset_hwm(pid: int | str = "self") -> bool:
    """Reset a process's VmHWM to its current RSS (Linux: 5 > /proc/PID/clear_refs).

    Start-up (imports) is a process's biggest moment; without the reset, VmHWM after a load
    would mostly show the start-up peak, not the load's.
    """
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def machine_facts(pg_version: str | None) -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
    }


# --- Databases -----------------------------------------------------------------------------------


def _backend(url: str) -> str:
    return make_url(url).get_backend_name()


def _sqlite_file(url: str) -> Path:
    return Path(make_url(url).database or "")


def _pg_conninfo(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def _with_database(url: str, database: str) -> str:
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def dbapi_connect(url: str) -> Any:
    """A bare driver connection (sqlite3 / psycopg) to the database of a SQLAlchemy url."""
    if _backend(url) == "sqlite":
        conn = sqlite3.connect(_sqlite_file(url), timeout=10)
        # The app's per-connection settings (crm.db), so a write costs what the app's costs.
        for pragma in ("synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
            conn.execute(f"PRAGMA {pragma}")
        return conn
    import psycopg

    return psycopg.connect(_pg_conninfo(url))


def _execute(conn: Any, sql: str, params: Any = None) -> list[Any]:
    cursor = conn.cursor()
    if params is None:
        cursor.execute(sql)
    else:
        cursor.execute(sql, params)
    rows = cursor.fetchall() if cursor.description else []
    cursor.close()
    return rows


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def demo_info(url: str) -> dict[str, Any] | None:
    """Leads stored and the demo.generate audit details of a database, None if unreadable."""
    try:
        if _backend(url) == "sqlite":
            path = _sqlite_file(url)
            if not path.exists():
                return None
            conn: Any = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        else:
            import psycopg

            conn = psycopg.connect(_pg_conninfo(url))
        try:
            leads = _execute(conn, "SELECT count(*) FROM lead")[0][0]
            rows = _execute(
                conn,
                "SELECT details FROM auditevent WHERE action = 'demo.generate' ORDER BY id",
            )
        finally:
            conn.close()
    except Exception:  # noqa: BLE001 - anything unreadable is "not reusable"
        return None
    details = [json.loads(r[0]) for r in rows if r[0]]
    return {"leads": int(leads), "generations": details}


def _matches(info: dict[str, Any] | None, size: int, as_of: date) -> bool:
    return bool(
        info
        and info["leads"] == size
        and len(info["generations"]) == 1
        and info["generations"][0].get("leads") == size
        and info["generations"][0].get("seed") == SEED
        and info["generations"][0].get("as_of") == as_of.isoformat()
    )


@dataclass
class Place:
    """Where one size's databases live."""

    size: int
    backend: str
    demo_url: str  # the demo data as generated (read-only afterwards; kept for --reuse)
    run_url: str  # a copy: the server and the page-data measurements use it
    base_url: str  # the baseline's database (SQLite: a file; PostgreSQL: the run database)
    sidecar: Path | None  # SQLite: the recorded generation time of demo_url
    base_schema: str = ""  # PostgreSQL: the schema the baseline writes into


def place_for(size: int, args: argparse.Namespace) -> Place:
    workdir = Path(args.workdir)
    if args.database_url:
        name = make_url(args.database_url).database or "crm"
        demo_db = f"{name}_bench_{size}"
        return Place(
            size=size,
            backend="postgresql",
            demo_url=_with_database(args.database_url, demo_db),
            run_url=_with_database(args.database_url, demo_db + "_run"),
            base_url=_with_database(args.database_url, demo_db + "_run"),
            sidecar=None,
            base_schema="bench_base",
        )
    return Place(
        size=size,
        backend="sqlite",
        demo_url=f"sqlite:///{workdir / f'demo-{size}.sqlite3'}",
        run_url=f"sqlite:///{workdir / f'run-{size}.sqlite3'}",
        base_url=f"sqlite:///{workdir / f'base-{size}.sqlite3'}",
        sidecar=workdir / f"demo-{size}.json",
    )


@contextmanager
def _pg_admin(url: str) -> Iterator[Any]:
    import psycopg

    conn = psycopg.connect(_pg_conninfo(url), autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


def _pg_drop(admin: Any, name: str) -> None:
    admin.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")


def _db_name(url: str) -> str:
    return make_url(url).database or ""


@dataclass
class DemoStep:
    seconds: float | None  # generation time; None when reused without a recorded time
    source: str  # what was generated or reused
    counts: dict[str, int] = field(default_factory=dict)
    schema_seconds: float = 0.0  # schema creation / upgrade, not in `seconds`


def prepare_demo(place: Place, args: argparse.Namespace, admin_url: str | None) -> DemoStep:
    """The demo database of this size: reused when asked and it matches, else generated."""
    from crm import db, demo

    as_of: date = args.as_of
    if args.reuse:
        candidates = [place.demo_url]
        known = KNOWN_DEMOS.get(place.size)
        if place.backend == "sqlite" and known is not None:
            candidates.append(f"sqlite:///{known}")
        for url in candidates:
            if _matches(demo_info(url), place.size, as_of):
                recorded: dict[str, Any] = {}
                if url == place.demo_url and place.sidecar and place.sidecar.exists():
                    recorded = json.loads(place.sidecar.read_text())
                place.demo_url = url
                return DemoStep(
                    seconds=recorded.get("seconds"),
                    source=f"reused {_describe(url)}",
                    counts=recorded.get("counts", {}),
                )
        _log(f"--reuse: no demo database of {place.size:,} leads (seed {SEED}, as of {as_of})")
    if place.backend == "sqlite":
        _remove_sqlite(_sqlite_file(place.demo_url))
        if place.sidecar:
            place.sidecar.unlink(missing_ok=True)
    else:
        assert admin_url is not None
        with _pg_admin(admin_url) as admin:
            _pg_drop(admin, _db_name(place.demo_url))
            admin.execute(f"CREATE DATABASE {_quote(_db_name(place.demo_url))}")
    engine = db.make_engine(place.demo_url)
    try:
        started = time.perf_counter()
        db.ensure_ready(engine)
        schema_seconds = time.perf_counter() - started
        _log(f"generating {place.size:,} demo leads (seed {SEED}, as of {as_of})")
        result = demo.generate(engine=engine, leads=place.size, seed=SEED, as_of=as_of)
    finally:
        engine.dispose()
    if place.sidecar:
        place.sidecar.write_text(
            json.dumps({"seconds": result.seconds, "counts": result.counts, "as_of": str(as_of)})
        )
    return DemoStep(
        seconds=result.seconds,
        source=f"generated {_describe(place.demo_url)}",
        counts=result.counts,
        schema_seconds=schema_seconds,
    )


def _describe(url: str) -> str:
    if _backend(url) == "sqlite":
        return str(_sqlite_file(url))
    return f"database {_db_name(url)}"


def copy_for_run(place: Place, admin_url: str | None) -> float:
    """Copy the demo database to the run database, bring it to the newest schema; seconds."""
    from crm import db

    started = time.perf_counter()
    if place.backend == "sqlite":
        target = _sqlite_file(place.run_url)
        _remove_sqlite(target)
        source = sqlite3.connect(
            _sqlite_file(place.demo_url).resolve().as_uri() + "?mode=ro", uri=True
        )
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            source.close()
            copy.close()
    else:
        assert admin_url is not None
        with _pg_admin(admin_url) as admin:
            _pg_drop(admin, _db_name(place.run_url))
            admin.execute(
                f"CREATE DATABASE {_quote(_db_name(place.run_url))} "
                f"TEMPLATE {_quote(_db_name(place.demo_url))}"
            )
    engine = db.make_engine(place.run_url)
    try:
        db.ensure_ready(engine)
    finally:
        engine.dispose()
    return time.perf_counter() - started


# --- Baselines: bulk load and per-lead inserts with the bare driver ----------------------------


def _tables(conn: Any, backend: str) -> list[str]:
    """The app's tables in a database (alembic's bookkeeping left out)."""
    if backend == "sqlite":
        found = _execute(
            conn,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
    else:
        found = _execute(
            conn,
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
    return sorted(r[0] for r in found if r[0] != "alembic_version")


def _columns(conn: Any, backend: str, table: str) -> list[str]:
    if backend == "sqlite":
        return [r[1] for r in _execute(conn, f"PRAGMA table_info({_quote(table)})")]
    return [
        r[0]
        for r in _execute(
            conn,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
    ]


def _placeholders(backend: str, n: int) -> str:
    return ", ".join(["?" if backend == "sqlite" else "%s"] * n)


def _make_base_tables(place: Place, tables: list[str]) -> Any:
    """Empty copies of the app's tables with the same indexes; an open connection to them.

    SQLite: the run database's own CREATE TABLE / CREATE INDEX statements (no triggers).
    PostgreSQL: `CREATE TABLE ... (LIKE public.t INCLUDING ALL)` in a schema of its own:
    the same columns, defaults, constraints and indexes, no foreign keys.
    """
    if place.backend == "sqlite":
        target = _sqlite_file(place.base_url)
        _remove_sqlite(target)
        source = sqlite3.connect(_sqlite_file(place.run_url))
        ddl = _execute(
            source,
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND type IN ('table', 'index') AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type = 'index', name",
        )
        source.close()
        conn = sqlite3.connect(target, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        for (sql,) in ddl:
            conn.execute(sql)
        return conn
    import psycopg

    pg = psycopg.connect(_pg_conninfo(place.base_url), autocommit=True)
    schema = _quote(place.base_schema)
    pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    pg.execute(f"CREATE SCHEMA {schema}")
    for table in tables:
        pg.execute(
            f"CREATE TABLE {schema}.{_quote(table)} (LIKE public.{_quote(table)} INCLUDING ALL)"
        )
    pg.autocommit = False
    return pg


def bulk_baseline(place: Place) -> tuple[float, int]:
    """Seconds to insert every row the demo wrote, bare executemany in one transaction; rows.

    The tables the demo doesn't write (the service catalogue, settings...) are copied too,
    outside the clock, so the baseline database is a full copy for the intake baseline.
    """
    from crm import demo

    if place.backend == "sqlite":
        uri = _sqlite_file(place.demo_url).resolve().as_uri() + "?mode=ro"
        source: Any = sqlite3.connect(uri, uri=True)
    else:
        source = dbapi_connect(place.demo_url)
    tables = _tables(source, place.backend)
    timed = set(demo.TABLE_ORDER)
    target = _make_base_tables(place, tables)
    prefix = "" if place.backend == "sqlite" else _quote(place.base_schema) + "."
    seconds = 0.0
    rows = 0
    try:
        if place.backend == "sqlite":
            # The demo's bulk-load settings (crm.demo._bulk_mode).
            for pragma in ("synchronous=OFF", "cache_size=-262144", "foreign_keys=OFF"):
                target.execute(f"PRAGMA {pragma}")
            target.execute("BEGIN")
        # The demo's table order; the untimed tables first.
        order = [t for t in tables if t not in timed] + [t for t in demo.TABLE_ORDER if t in tables]
        for table in order:
            columns = _columns(source, place.backend, table)
            names = ", ".join(_quote(c) for c in columns)
            insert = (
                f"INSERT INTO {prefix}{_quote(table)} ({names}) "  # noqa: S608 - our own names
                f"VALUES ({_placeholders(place.backend, len(columns))})"
            )
            if place.backend == "sqlite":
                read = source.cursor()
            else:
                read = source.cursor(name=f"read_{table}")
            read.execute(f"SELECT {names} FROM {_quote(table)}")  # noqa: S608
            write = target.cursor()
            while True:
                chunk = read.fetchmany(CHUNK)
                if not chunk:
                    break
                started = time.perf_counter()
                write.executemany(insert, chunk)
                if table in timed:
                    seconds += time.perf_counter() - started
                    rows += len(chunk)
            read.close()
        started = time.perf_counter()
        if place.backend == "sqlite":
            target.execute("COMMIT")
        else:
            target.commit()
        seconds += time.perf_counter() - started
    finally:
        source.close()
        target.close()
    return seconds, rows


@dataclass
class InsertBaseline:
    n: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.n / self.seconds if self.seconds else 0.0


def intake_baseline(place: Place, n: int) -> InsertBaseline:
    """n x (Contact, Lead, Submission) with the bare driver, one commit per lead, one process."""
    conn = dbapi_connect(place.base_url)
    sqlite = place.backend == "sqlite"
    prefix = "" if sqlite else _quote(place.base_schema) + "."
    templates: dict[str, tuple[list[str], list[Any]]] = {}
    try:
        if not sqlite:
            conn.autocommit = False
        for table in ("contact", "lead", "submission"):
            cursor = conn.cursor()
            cursor.execute(f"SELECT * FROM {prefix}{_quote(table)} ORDER BY id LIMIT 1")  # noqa: S608
            names = [d[0] for d in cursor.description]
            templates[table] = (names, list(cursor.fetchone()))
            cursor.close()
        if not sqlite:
            conn.commit()
        run = uuid.uuid4().hex[:8]

        def statement(table: str) -> tuple[str, list[str]]:
            names = [c for c in templates[table][0] if c != "id"]
            sql = (
                f"INSERT INTO {prefix}{_quote(table)} ({', '.join(_quote(c) for c in names)}) "  # noqa: S608
                f"VALUES ({_placeholders(place.backend, len(names))})"
                + ("" if sqlite else " RETURNING id")
            )
            return sql, names

        statements = {t: statement(t) for t in templates}

        def values(table: str, **changes: Any) -> list[Any]:
            names, row = templates[table]
            record = dict(zip(names, row, strict=True)) | changes
            return [record[c] for c in statements[table][1]]

        def insert(cursor: Any, table: str, **changes: Any) -> int:
            cursor.execute(statements[table][0], values(table, **changes))
            return int(cursor.lastrowid if sqlite else cursor.fetchone()[0])

        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(n):
            t0 = time.perf_counter()
            cursor = conn.cursor()
            email = f"base.{run}.{i}@example.com"
            contact_id = insert(cursor, "contact", email=email, email_key=email)
            lead_id = insert(cursor, "lead", contact_id=contact_id, reference=f"B{run}{i:07d}"[:20])
            insert(cursor, "submission", contact_id=contact_id, lead_id=lead_id)
            conn.commit()
            cursor.close()
            latencies.append((time.perf_counter() - t0) * 1000)
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    return InsertBaseline(n=n, seconds=seconds, latencies_ms=latencies)


def drop_baseline(place: Place) -> None:
    if place.backend == "sqlite":
        _remove_sqlite(_sqlite_file(place.base_url))
        return
    with _pg_admin(place.base_url) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {_quote(place.base_schema)} CASCADE")


# --- Page data, measured in a child process --------------------------------------------------

DATA_KINDS = ("queue", "search_phone", "search_name", "lead", "dashboard")


@dataclass(frozen=True)
class Subjects:
    """What the page-data figures look at, chosen before any of them runs."""

    lead_id: int  # the lead page: the newest lead that completed a first infusion
    phone: str  # an open lead's phone, as typed in national format
    prefix: str  # the first three letters of that person's first name


def pick_subjects(url: str) -> Subjects:
    from crm.enums import Stage
    from crm.validation import format_phone_national

    conn = dbapi_connect(url)
    mark = "?" if _backend(url) == "sqlite" else "%s"
    try:
        lead = _execute(
            conn,
            f"SELECT id FROM lead WHERE stage = {mark} ORDER BY id DESC LIMIT 1",  # noqa: S608
            (Stage.INFUSION_COMPLETED.value,),
        ) or _execute(conn, "SELECT id FROM lead ORDER BY id DESC LIMIT 1")
        person = _execute(
            conn,
            "SELECT c.phone, c.first_name FROM lead l JOIN contact c ON c.id = l.contact_id "
            "WHERE l.is_open AND c.phone IS NOT NULL ORDER BY l.id DESC LIMIT 1",
        )
    finally:
        conn.close()
    phone, first = person[0] if person else ("+15715550100", "Mar")
    return Subjects(
        lead_id=int(lead[0][0]), phone=format_phone_national(phone), prefix=(first or "Mar")[:3]
    )


def _as_of_clock(as_of: date, tz: str) -> datetime:
    from crm import metrics

    return metrics.local_midnight_utc(as_of, tz)


def child_measure(kind: str, url: str, as_of: date, subjects: Subjects) -> dict[str, Any]:
    """In a fresh process: one page's data calls cold, warm (and cached), beside bare SQL."""
    from sqlalchemy import event
    from sqlmodel import Session, col, select

    from crm import catalog, clinic_settings, db, leads, metrics, timeline, triage
    from crm.access import Actor
    from crm.enums import Role
    from crm.models import User
    from crm.triage import QueueFilters

    reset_hwm()
    hwm_start = vm_hwm_mb()
    # Who is looking: a coordinator (set up on an engine of its own, then thrown away).
    setup = db.make_engine(url)
    with Session(setup) as session:
        user = (
            session.exec(
                select(User).where(User.role == Role.CARE_TEAM.value).order_by(col(User.id))
            ).first()
            or session.exec(select(User).order_by(col(User.id))).first()
        )
        tz = clinic_settings.load(session).timezone
    setup.dispose()
    actor = Actor(
        id=int(user.id or 1) if user else 1,
        email=user.email if user else "bench@clinic.test",
        name=user.name if user else "Bench",
        role=Role.CARE_TEAM,
    )
    now = _as_of_clock(as_of, tz)
    start, end = metrics.period_dates(metrics.Period.LAST_30_DAYS, as_of)
    filters = metrics.Filters(start=start, end=end, tz=tz)

    engine = db.make_engine(url)
    captured: list[tuple[str, Any]] = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, params, _ctx, _many: captured.append((statement, params)),
    )
    calls = {"n": 0}

    def queue(search: str) -> Callable[[Session], Any]:
        def run(session: Session) -> Any:
            # pages/queue.py on a run: settings, team, areas, services, away flag, the page.
            config = clinic_settings.load(session)
            triage.team(session=session)
            catalog.areas(session)
            catalog.services(session, active_only=False)
            triage.is_away(session=session, actor=actor)
            page = triage.queue_page(
                session=session,
                actor=actor,
                filters=QueueFilters(search=search),
                page=1,
                page_size=QUEUE_PAGE_SIZE,
                now=now,
                config=config,
            )
            total = "over 10,000" if page.total is None else f"{page.total:,}"
            return f"{len(page.rows)} rows shown, {total} matching"

        return run

    def lead_page(session: Session) -> Any:
        # pages/lead.py on a run: settings, the header (the first visit records the view),
        # the timeline, the team.
        config = clinic_settings.load(session)
        view = leads.get_lead(
            session=session,
            actor=actor,
            lead_id=subjects.lead_id,
            record_view=calls["n"] == 0,
            now=now,
            config=config,
        )
        items = timeline.timeline(session=session, actor=actor, lead_id=subjects.lead_id)
        triage.team(session=session)
        return f"stage {view.stage}, {len(items)} timeline items"

    def dashboard_parts(session: Session) -> list[tuple[str, Callable[[], Any]]]:
        by = metrics.By
        return [  # pages/dashboard.py, in its order, each one of its cached functions
            (
                "options",
                lambda: {
                    "areas": metrics.groups(session, by.SERVICE_AREA),
                    "services": metrics.groups(session, by.SERVICE),
                    "sources": metrics.groups(session, by.SOURCE),
                    "owners": metrics.owners(session),
                },
            ),
            (
                "headline",
                lambda: (
                    metrics.headline(session, filters),
                    metrics.headline(session, filters.previous()),
                ),
            ),
            ("funnel", lambda: metrics.funnel(session, filters, by.SERVICE_AREA)),
            ("trend", lambda: metrics.trend(session, filters, today=as_of)),
            ("stage_times", lambda: metrics.time_in_stage(session, filters)),
            ("reasons", lambda: metrics.leave_reasons(session, filters)),
            ("team", lambda: metrics.team(session, filters, now=now)),
        ]

    results: dict[str, Any] = {}

    def dashboard(session: Session) -> Any:
        clinic_settings.load(session)  # the page reads the clinic's time zone on every run
        for name, fn in dashboard_parts(session):
            results[name] = fn()
        return f"{results['headline'][0].inquiries:,} inquiries in the period"

    body: Callable[[Session], Any] = {
        "queue": queue(""),
        "search_phone": queue(subjects.phone),
        "search_name": queue(subjects.prefix),
        "lead": lead_page,
        "dashboard": dashboard,
    }[kind]

    def ours() -> Any:
        with db.session_scope(engine) as session:  # as ui.context.session(): commits
            out = body(session)
        calls["n"] += 1
        return out

    def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
        started = time.perf_counter()
        out = fn()
        return (time.perf_counter() - started) * 1000, out

    cold_ms, summary = timed(ours)
    cold_statements = list(captured)
    captured.clear()
    warm = []
    warm_statements: list[tuple[str, Any]] = []
    for i in range(WARM_RUNS):
        ms, _ = timed(ours)
        warm.append(ms)
        if i == 0:
            warm_statements = list(captured)
        captured.clear()
    engine.dispose()
    hwm_after = vm_hwm_mb()

    raw: Any = None

    def replay(statements: list[tuple[str, Any]]) -> Callable[[], int]:
        def run() -> int:
            nonlocal raw
            if raw is None:  # the cold replay opens its connection on the clock, as ours does
                raw = dbapi_connect(url)
            fetched = 0
            for sql, params in statements:
                fetched += len(_execute(raw, sql, params))
            raw.commit()
            return fetched

        return run

    base_cold_ms, _ = timed(replay(cold_statements))
    base_warm = [timed(replay(warm_statements))[0] for _ in range(WARM_RUNS)]
    raw.close()

    out: dict[str, Any] = {
        "kind": kind,
        "cold_ms": cold_ms,
        "warm_ms": statistics.median(warm),
        "base_cold_ms": base_cold_ms,
        "base_warm_ms": statistics.median(base_warm),
        "statements": len(cold_statements),
        "summary": summary,
        "hwm_start_mb": hwm_start,
        "hwm_mb": hwm_after,
    }
    if kind == "dashboard":
        stored = {name: pickle.dumps(value) for name, value in results.items()}
        hits = []
        for _ in range(5):
            started = time.perf_counter()
            for name in stored:
                pickle.loads(stored[name])  # noqa: S301 - our own bytes, just made
            hits.append((time.perf_counter() - started) * 1000)
        out["cache_hit_ms"] = statistics.median(hits)
        out["calls"] = len(results)
    return out


def measure_data(place: Place, as_of: date, subjects: Subjects) -> dict[str, dict[str, Any]]:
    """Each page's figures, each in a fresh child process."""
    out = {}
    for kind in DATA_KINDS:
        _log(f"page data: {kind}")
        child = subprocess.run(
            [
                sys.executable, "-m", "crm.bench", "--child", kind,
                "--child-url", place.run_url, "--as-of", as_of.isoformat(),
                "--child-subjects", json.dumps(asdict(subjects)),
            ],
            cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        if child.returncode != 0:
            raise RuntimeError(f"page data child {kind} failed:\n{child.stderr[-4000:]}")
        out[kind] = json.loads(child.stdout.strip().splitlines()[-1])
    return out


# --- One size, end to end --------------------------------------------------------------------


@dataclass
class SizeResult:
    size: int
    backend: str
    demo: DemoStep
    copy_seconds: float
    bulk_seconds: float
    bulk_rows: int
    subjects: Subjects
    data: dict[str, dict[str, Any]]
    intake: list[LevelResult]
    intake_base: InsertBaseline
    server_idle_mb: float | None
    server_peak_mb: float | None
    run_database: str


def bench_size(place: Place, args: argparse.Namespace, levels: list[int]) -> SizeResult:
    admin = args.database_url
    _log(f"== {place.size:,} leads ({place.backend})")
    demo_step = prepare_demo(place, args, admin)
    _log("copying the demo database for this run")
    copy_seconds = copy_for_run(place, admin)
    _log("baseline: bulk insert of the same rows")
    bulk_seconds, bulk_rows = bulk_baseline(place)
    _log(f"baseline: {args.intake_n} single-lead inserts")
    intake_base = intake_baseline(place, args.intake_n)
    drop_baseline(place)
    subjects = pick_subjects(place.run_url)
    data = measure_data(place, args.as_of, subjects)
    _log(f"server on {_describe(place.run_url)}")
    key = create_key(place.run_url)
    with server(place.run_url) as running:
        reset_hwm(running.pid)
        idle = vm_hwm_mb(running.pid)
        _log(f"intake load: {args.intake_n} leads at {levels} clients")
        intake = measure_intake(running.base_url, key, place.run_url, levels, args.intake_n)
        peak = vm_hwm_mb(running.pid)
    return SizeResult(
        size=place.size,
        backend=place.backend,
        demo=demo_step,
        copy_seconds=copy_seconds,
        bulk_seconds=bulk_seconds,
        bulk_rows=bulk_rows,
        subjects=subjects,
        data=data,
        intake=intake,
        intake_base=intake_base,
        server_idle_mb=idle,
        server_peak_mb=peak,
        run_database=_describe(place.run_url),
    )


def cleanup(place: Place, keep: bool, admin_url: str | None) -> None:
    """Drop what this size made (SQLite's demo-N file stays in the workdir for --reuse)."""
    if keep:
        return
    if place.backend == "sqlite":
        _remove_sqlite(_sqlite_file(place.run_url))
        _remove_sqlite(_sqlite_file(place.base_url))
        return
    assert admin_url is not None
    with _pg_admin(admin_url) as admin:
        _pg_drop(admin, _db_name(place.run_url))
        if place.demo_url != place.run_url:
            _pg_drop(admin, _db_name(place.demo_url))


# --- The report ----------------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    ours: float | str | None
    baseline: float | str | None
    unit: str  # "/s", "ms", "MB" or ""
    target: str = ""
    status: str = ""  # "", "ok" or "MISSED by ..."

    @property
    def ratio(self) -> float | None:
        if isinstance(self.ours, float) and isinstance(self.baseline, float) and self.baseline:
            return self.ours / self.baseline
        return None


def _fmt(value: float | str | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if unit == "/s":
        return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"
    if unit == "ms":
        if value < 1:
            return f"{value:.3f} ms"
        return f"{value:,.1f} ms" if value < 1000 else f"{value:,.0f} ms"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value}"


def _ratio(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.2f}x" if value < 10 else f"{value:,.0f}x"


def _below(value: float, limit: float, unit: str) -> str:
    if value < limit:
        return "ok"
    return f"MISSED by {_fmt(value - limit, unit)} ({(value - limit) / limit:.0%})"


def rows_for(result: SizeResult, flat_ref: dict[str, float] | None, first_size: int) -> list[Row]:
    """The table of one size."""
    n = result.size
    rows = [
        Row(
            "demo data, leads/s (crm.demo.generate)",
            n / result.demo.seconds if result.demo.seconds else "not timed (reused)",
            n / result.bulk_seconds if result.bulk_seconds else None,
            "/s",
        )
    ]
    base = result.intake_base
    for level in result.intake:
        c = level.clients
        name = "client" if c == 1 else "clients"
        rate = Row(f"intake, {c} {name}: leads/s", level.rate, base.rate, "/s")
        if c == TARGET_INTAKE_CLIENTS:
            if result.backend == "sqlite":
                rate.target = f">= {TARGET_INTAKE_PER_S:.0f}/s"
                rate.status = (
                    "ok"
                    if level.rate >= TARGET_INTAKE_PER_S
                    else f"MISSED by {TARGET_INTAKE_PER_S - level.rate:,.1f}/s "
                    f"({(TARGET_INTAKE_PER_S - level.rate) / TARGET_INTAKE_PER_S:.0%})"
                )
            else:
                rate.target = f"(>= {TARGET_INTAKE_PER_S:.0f}/s is for SQLite)"
        rows += [
            rate,
            Row(f"intake, {c} {name}: p50", level.percentile(50), percentile(base.latencies_ms, 50), "ms"),
            Row(f"intake, {c} {name}: p99", level.percentile(99), percentile(base.latencies_ms, 99), "ms"),
        ]  # fmt: skip
    stored_ok = all(level.stored_ok for level in result.intake)
    errors = sum(level.errors for level in result.intake)
    acknowledged = sum(level.accepted for level in result.intake)
    stored = sum(level.stored or 0 for level in result.intake)
    rows.append(
        Row(
            "intake: stored == acknowledged",
            f"{'yes' if stored_ok else 'NO'} ({stored:,}/{acknowledged:,}, {errors} errors)",
            "",
            "",
            status="" if stored_ok and not errors else "FAILED",
        )
    )
    s = result.subjects
    labels = {
        "queue": "queue, first page data",
        "search_phone": f"search, phone {s.phone}",
        "search_name": f"search, name prefix '{s.prefix}'",
        "lead": f"lead page data (lead {s.lead_id})",
        "dashboard": "dashboard, whole page",
    }
    limits = {"queue": TARGET_QUEUE_MS, "dashboard": TARGET_DASHBOARD_MS}
    for kind in DATA_KINDS:
        d = result.data[kind]
        for when, ours, bare in (
            ("cold", d["cold_ms"], d["base_cold_ms"]),
            ("warm", d["warm_ms"], d["base_warm_ms"]),
        ):
            row = Row(f"{labels[kind]}, {when}", ours, bare, "ms")
            if kind in limits:
                row.target = f"< {limits[kind]:,.0f} ms"
                row.status = _below(ours, limits[kind], "ms")
            rows.append(row)
        if kind == "dashboard":
            rows.append(
                Row(f"{labels[kind]}, cache hit", d["cache_hit_ms"], d["base_warm_ms"], "ms")
            )
    memory = [
        (
            "server",
            "server peak RSS (VmHWM) during the load",
            result.server_peak_mb,
            result.server_idle_mb,
        ),
        (
            "dashboard",
            "dashboard process peak RSS (VmHWM)",
            result.data["dashboard"]["hwm_mb"],
            result.data["dashboard"]["hwm_start_mb"],
        ),
    ]
    for key, label, peak, before in memory:
        row = Row(label, peak, before, "MB")
        if flat_ref is not None and key in flat_ref and peak is not None:
            limit = flat_ref[key] * FLAT_FACTOR
            row.target = f"<= {limit:,.0f} MB (flat: {FLAT_FACTOR}x at {first_size:,})"
            row.status = (
                "ok"
                if peak <= limit
                else f"MISSED by {peak - limit:,.0f} MB ({peak / limit - 1:.0%})"
            )
        elif flat_ref is None:
            row.target = "reference for 'flat'"
        rows.append(row)
    return rows


def render(rows: list[Row]) -> str:
    head = ("figure", "ours", "baseline", "ratio (ours/baseline)", "target")
    body = [
        (
            r.figure,
            _fmt(r.ours, r.unit),
            _fmt(r.baseline, r.unit) if r.baseline != "" else "",
            _ratio(r.ratio),
            " ".join(x for x in (r.target, r.status) if x),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(5)]
    right = (False, True, True, True, False)

    def line(cells: tuple[str, ...]) -> str:
        parts = [
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":" if r else "-" * (w + 2))
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(head), rule, *(line(b) for b in body)])


def notes(result: SizeResult) -> list[str]:
    demo = result.demo
    timed = f"{demo.seconds:,.1f} s" if demo.seconds else "not timed"
    data = result.data
    return [
        f"demo data: {demo.source} ({timed}); measured on a copy, {result.run_database} "
        f"(copy + schema check {result.copy_seconds:,.1f} s)",
        f"baseline bulk load: the same {result.bulk_rows:,} rows (all tables) in "
        f"{result.bulk_seconds:,.2f} s, bare executemany, one transaction, same indexes"
        + (
            " (CREATE TABLE ... LIKE ... INCLUDING ALL: no foreign keys)"
            if result.backend == "postgresql"
            else ""
        ),
        f"baseline intake: {result.intake_base.n:,} x (contact, lead, submission) inserts, "
        "one commit per lead, one connection",
        f"queue first page: {data['queue']['statements']} statements, "
        f"{data['queue']['summary']}; phone search: {data['search_phone']['summary']}; "
        f"name search: {data['search_name']['summary']}",
        f"lead page: {data['lead']['summary']} (its cold call is a first visit: it writes the "
        f"lead.view audit event and commits, as the page does); dashboard: {data['dashboard']['calls']} "
        f"cached page functions, {data['dashboard']['statements']} statements cold, "
        f"{data['dashboard']['summary']}",
    ]


def across_sizes(results: list[tuple[SizeResult, list[Row]]]) -> list[str]:
    """The figures that matter for the targets, one line per size, and every miss."""
    head = "| leads | intake leads/s | queue page cold / warm | dashboard cold / warm | server peak | dashboard process peak |"
    lines = [head, "|---:|---:|---:|---:|---:|---:|"]
    misses = []
    for result, rows in results:
        intake = next(
            (lv for lv in result.intake if lv.clients == TARGET_INTAKE_CLIENTS),
            result.intake[-1] if result.intake else None,
        )
        rate = f"{intake.rate:,.0f}/s at {intake.clients}" if intake else "n/a"
        q, d = result.data["queue"], result.data["dashboard"]
        lines.append(
            f"| {result.size:,} | {rate} | {_fmt(q['cold_ms'], 'ms')} / {_fmt(q['warm_ms'], 'ms')} "
            f"| {_fmt(d['cold_ms'], 'ms')} / {_fmt(d['warm_ms'], 'ms')} "
            f"| {_fmt(result.server_peak_mb, 'MB')} | {_fmt(d['hwm_mb'], 'MB')} |"
        )
        misses += [
            f"{result.size:,} leads: {r.figure}: {r.status}"
            for r in rows
            if r.status.startswith(("MISSED", "FAILED"))
        ]
    lines.append("")
    lines += [f"- {m}" for m in misses] or ["- every target met"]
    return lines


# --- Command line --------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _sizes(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        scale = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        out.append(int(float(part[:-1] if scale > 1 else part) * scale))
    return out


def _pg_version(url: str) -> str:
    with _pg_admin(url) as conn:
        return str(_execute(conn, "SHOW server_version")[0][0])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m crm.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--sizes", type=_sizes, default=_sizes("10000,100000"),
                   help="lead counts, e.g. 10000,100000,1000000 (10k, 1m work too)")  # fmt: skip
    p.add_argument("--clients", default="1,16,64", help="intake concurrency levels")
    p.add_argument("--intake-n", type=int, default=3000, help="leads posted per level")
    p.add_argument("--database-url", help="postgresql+psycopg://... : run on PostgreSQL, "
                   "throwaway databases <name>_bench_<N>[_run]")  # fmt: skip
    p.add_argument("--workdir", default="/tmp/crm-bench", help="SQLite files go here")
    p.add_argument("--reuse", action="store_true", help="reuse a demo database of the right size")
    p.add_argument("--keep", action="store_true", help="keep the run databases afterwards")
    p.add_argument("--as-of", type=date.fromisoformat, default=DEFAULT_AS_OF,
                   help=f"the demo's as-of date and the pages' clock (default {DEFAULT_AS_OF})")  # fmt: skip
    p.add_argument("--json", help="also write every figure to this file")
    p.add_argument("--child", choices=DATA_KINDS, help=argparse.SUPPRESS)
    p.add_argument("--child-url", help=argparse.SUPPRESS)
    p.add_argument("--child-subjects", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        subjects = Subjects(**json.loads(args.child_subjects))
        print(
            json.dumps(child_measure(args.child, args.child_url, args.as_of, subjects), default=str)
        )
        return 0
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    if args.database_url and _backend(args.database_url) != "postgresql":
        raise SystemExit(
            "--database-url must be a postgresql+psycopg:// url (SQLite is the default)"
        )
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    pg_version = _pg_version(args.database_url) if args.database_url else None
    facts = machine_facts(pg_version)
    print(
        f"Machine: {facts['cpu']}, {facts['cores']} cores, {facts['ram_gb']} GB RAM, "
        f"load {facts['load_avg_at_start']}; {facts['os']}; Python {facts['python']}, "
        f"SQLite {facts['sqlite']}" + (f", PostgreSQL {pg_version}" if pg_version else "")
    )
    print(
        "Page data runs in child processes of the benchmark on the server's database, before "
        "the intake load (the server has no HTTP route for page data). cold = first call in a fresh process on a "
        "new engine (OS file cache not dropped); warm = median of the next 3 calls; cache "
        "hit = dict lookup + unpickling of the dashboard's stored results. Baselines: bare "
        "sqlite3/psycopg; for page data, the SQL our call sent, captured and replayed. "
        "ratio = ours/baseline: under 1 for a rate, or over 1 for a time or memory, means "
        "ours is slower or bigger.",
        flush=True,
    )
    report: dict[str, Any] = {"machine": facts, "args": {k: str(v) for k, v in vars(args).items()}, "sizes": []}  # fmt: skip
    flat_ref: dict[str, float] | None = None
    failed = False
    done: list[tuple[SizeResult, list[Row]]] = []
    sizes = sorted(args.sizes)  # the smallest is the reference for "flat" memory
    for size in sizes:
        place = place_for(size, args)
        try:
            result = bench_size(place, args, levels)
        finally:
            cleanup(place, args.keep, args.database_url)
        rows = rows_for(result, flat_ref, sizes[0])
        done.append((result, rows))
        if flat_ref is None:
            flat_ref = {
                k: v
                for k, v in (
                    ("server", result.server_peak_mb),
                    ("dashboard", result.data["dashboard"]["hwm_mb"]),
                )
                if v is not None
            }
        backend = "SQLite" if result.backend == "sqlite" else "PostgreSQL"
        print(f"\n## {size:,} leads, {backend}\n")
        print(render(rows))
        print()
        for line in notes(result):
            print(f"- {line}")
        for level in result.intake:
            if level.first_error:
                print(f"- intake at {level.clients} clients, first error: {level.first_error}")
        sys.stdout.flush()
        failed = failed or any(r.status == "FAILED" for r in rows)
        report["sizes"].append(
            {
                "size": size,
                "backend": result.backend,
                "rows": [asdict(r) | {"ratio": r.ratio} for r in rows],
                "demo": asdict(result.demo),
                "bulk": {"seconds": result.bulk_seconds, "rows": result.bulk_rows},
                "intake": [
                    {
                        "clients": lv.clients,
                        "sent": lv.sent,
                        "accepted": lv.accepted,
                        "errors": lv.errors,
                        "seconds": lv.seconds,
                        "rate": lv.rate,
                        "p50_ms": lv.percentile(50),
                        "p99_ms": lv.percentile(99),
                        "stored": lv.stored,
                        "missing": lv.missing,
                        "stored_ok": lv.stored_ok,
                        "first_error": lv.first_error,
                    }
                    for lv in result.intake
                ],  # fmt: skip
                "intake_baseline": {
                    "n": result.intake_base.n,
                    "seconds": result.intake_base.seconds,
                    "rate": result.intake_base.rate,
                },
                "data": result.data,
                "subjects": asdict(result.subjects),
                "server_idle_mb": result.server_idle_mb,
                "server_peak_mb": result.server_peak_mb,
            }
        )
    print("\n## Across sizes\n")
    print("\n".join(across_sizes(done)))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
