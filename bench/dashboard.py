"""Benchmark of the pipeline dashboard's queries on big SQLite demo databases.

Not a test. For each database it first brings the schema to head (the dashboard's indexes,
built once, timed separately), then starts a fresh Python process that runs exactly the
functions the page calls, in the page's order, for the page's default filters (inquiries of
the last 30 days, nothing narrowed):

- cold:   the first run in a new process on a new connection (SQLite's page cache empty;
          the operating system's file cache is whatever earlier runs left, not dropped),
- warm:   the same queries again on the same connection,
- cached: the page's path on a repeat view within the TTL (st.cache_data hit),

side by side with one bare `SELECT service_area_id, stage, count(*) FROM lead GROUP BY 1, 2`
over the same table, and the process's peak resident memory (getrusage ru_maxrss). A second
fresh process times the page's own path, `crm.metrics.dashboard()`, which runs the sections
side by side on separate connections (cold, warm, cached). CPU time (in parentheses) is this
process's, SQLite included: on a busy machine it is steadier than the wall clock.

    python bench/dashboard.py                          # /tmp/demo100k.sqlite3, /tmp/demo1m.sqlite3
    python bench/dashboard.py --db 100k=/tmp/a.sqlite3 --db 1m=/tmp/b.sqlite3
    python bench/dashboard.py --plans                  # also EXPLAIN QUERY PLAN of each query

Make a database with `python -m crm demo --leads 1000000 --seed 7 --database-url sqlite:////tmp/demo1m.sqlite3`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DBS = ["100k=/tmp/demo100k.sqlite3", "1m=/tmp/demo1m.sqlite3"]
DASHBOARD_INDEXES = {
    "ix_lead_cohort",
    "ix_lead_area_week",
    "ix_lead_area_first_infusion",
    "ix_stagechange_lead_stay",
}
BARE = "SELECT service_area_id, stage, count(*) FROM lead GROUP BY 1, 2"


def _queries(session: Any, f: Any, today: Any) -> list[tuple[str, Callable[[], Any]]]:
    """The page's queries, in the page's order (pages/dashboard.py)."""
    from crm import metrics
    from crm.metrics import By

    now = datetime.now(UTC)
    return [
        (
            "filter options",
            lambda: (
                metrics.groups(session, By.SERVICE_AREA),
                metrics.groups(session, By.SERVICE),
                metrics.owners(session),
            ),
        ),
        ("headline, this period", lambda: metrics.headline(session, f)),
        ("headline, previous period", lambda: metrics.headline(session, f.previous())),
        ("funnel by service area", lambda: metrics.funnel(session, f, By.SERVICE_AREA)),
        ("weekly trend, 52 weeks", lambda: metrics.trend(session, f, today=today)),
        ("time in stage", lambda: metrics.time_in_stage(session, f)),
        ("lost / not-eligible reasons", lambda: metrics.leave_reasons(session, f)),
        ("team", lambda: metrics.team(session, f, now=now)),
    ]


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def _timed_cpu(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall ms, CPU ms of this process): SQLite runs in-process, so CPU time is its work
    too, and it doesn't count time spent waiting for a busy machine's cores."""
    started, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000


def run_one(path: str, plans: bool) -> dict[str, Any]:
    """In this (fresh) process: time every query cold, warm and cached; peak RSS."""
    import logging

    import streamlit as st
    from sqlalchemy import event, text
    from sqlmodel import Session

    from crm import clinic_settings, db, metrics

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    engine = db.make_engine(f"sqlite:///{path}")
    statements: list[tuple[str, Any]] = []
    if plans:
        event.listen(
            engine,
            "before_cursor_execute",
            lambda _c, _cur, stmt, params, _ctx, _many: statements.append((stmt, params)),
        )
    out: dict[str, Any] = {"cold": {}, "warm": {}, "cached": {}, "cold_cpu": {}, "warm_cpu": {}}
    with Session(engine) as session:
        out["bare_cold"], out["bare_cold_cpu"] = _timed_cpu(
            lambda: session.connection().execute(text(BARE)).all()
        )
        out["leads"] = session.connection().execute(text("SELECT count(*) FROM lead")).scalar()
        tz = clinic_settings.load(session).timezone
        today = metrics.local_today(tz)
        start, end = metrics.period_dates(metrics.Period.LAST_30_DAYS, today)
        f = metrics.Filters(start=start, end=end, tz=tz)
        out["cohort"] = metrics.headline(session, f).inquiries if plans else None
        statements.clear()
        for name, fn in _queries(session, f, today):
            out["cold"][name], out["cold_cpu"][name] = _timed_cpu(fn)
        for name, fn in _queries(session, f, today):
            out["warm"][name], out["warm_cpu"][name] = _timed_cpu(fn)
        out["bare_warm"], out["bare_warm_cpu"] = _timed_cpu(
            lambda: session.connection().execute(text(BARE)).all()
        )
        if plans:
            raw = session.connection().connection.dbapi_connection
            assert raw is not None
            out["plans"] = [
                (stmt, [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + stmt, params)])
                for stmt, params in statements
                if "lead" in stmt
            ]
        # The page's cache: the same functions behind st.cache_data; a repeat view is a hit.
        for name, fn in _queries(session, f, today):

            def compute(_key: str, fn: Callable[[], Any] = fn) -> Any:
                return fn()

            cached = st.cache_data(ttl=60, show_spinner=False)(compute)
            cached(name)
            out["cached"][name] = _timed(partial(cached, name))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_page(path: str) -> dict[str, Any]:
    """In this (fresh) process: the page's own path, metrics.dashboard() with its sections side
    by side, cold, warm and cached; peak RSS."""
    import logging

    import streamlit as st
    from sqlmodel import Session

    from crm import clinic_settings, db, metrics

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    engine = db.make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        tz = clinic_settings.load(session).timezone
    today = metrics.local_today(tz)
    start, end = metrics.period_dates(metrics.Period.LAST_30_DAYS, today)
    f = metrics.Filters(start=start, end=end, tz=tz)

    def whole() -> Any:
        return metrics.dashboard(engine=engine, filters=f, today=today, now=datetime.now(UTC))

    out: dict[str, Any] = {}
    out["cold"], out["cold_cpu"] = _timed_cpu(whole)
    out["warm"], out["warm_cpu"] = _timed_cpu(whole)
    cached = st.cache_data(ttl=60, show_spinner=False)(lambda _f: whole())
    cached(f)
    out["cached"] = _timed(lambda: cached(f))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def prepare(path: str) -> float:
    """Upgrade the schema (builds the dashboard's indexes on an older demo file); seconds."""
    from crm import db
    from crm.models import Lead, StageChange

    started = time.perf_counter()
    engine = db.make_engine(f"sqlite:///{path}")
    db.upgrade(engine)
    # A file made while migration 0005 was still empty is stamped 0005 without its indexes.
    for table in (Lead.__table__, StageChange.__table__):  # type: ignore[attr-defined]
        for index in table.indexes:
            if index.name in DASHBOARD_INDEXES:
                index.create(bind=engine, checkfirst=True)
    engine.dispose()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db", action="append", metavar="LABEL=PATH", help="A database to measure (repeatable)."
    )
    parser.add_argument(
        "--plans", action="store_true", help="Print EXPLAIN QUERY PLAN of each query."
    )
    parser.add_argument("--one", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--page", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.plans), default=str))
        return
    if args.page:
        print(json.dumps(run_page(args.page), default=str))
        return
    results: list[tuple[str, dict[str, Any]]] = []
    for spec in args.db or DEFAULT_DBS:
        label, _, path = spec.partition("=")
        if not Path(path).exists():
            sys.exit(
                f"{path} not found: python -m crm demo --leads N --seed 7 --database-url sqlite:///{path}"
            )
        print(f"{label}: schema upgrade (index build) {prepare(path):.1f} s", flush=True)
        # Two fresh processes, so that each "cold" is a first run on a new connection.
        serial = _child("--one", path, *(["--plans"] if args.plans else []))
        serial["page"] = _child("--page", path)
        results.append((label, serial))
    report(results, args.plans)


def _child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True, cwd=ROOT
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def report(results: list[tuple[str, dict[str, Any]]], plans: bool) -> None:
    cols = "cold  (cpu)   warm  (cpu)  cached"
    head = "".join(f" | {label:>5} {cols}" for label, _ in results)
    width = 30 + 42 * len(results)
    print(f"\n{'milliseconds':<30}{head}")
    print("-" * width)

    def cells(r: dict[str, Any], name: str | None) -> str:
        if name is None:
            values = [
                sum(r[k].values()) for k in ("cold", "cold_cpu", "warm", "warm_cpu", "cached")
            ]
        else:
            values = [r[k][name] for k in ("cold", "cold_cpu", "warm", "warm_cpu", "cached")]
        return " | " + "".join(f"{v:7.1f}" for v in values[:4]) + f"{values[4]:12.2f}"

    for name in results[0][1]["cold"]:
        print(f"{name:<30}" + "".join(cells(r, name) for _, r in results))
    print("-" * width)
    print(f"{'whole, one query at a time':<30}" + "".join(cells(r, None) for _, r in results))
    print(
        f"{'whole, as the page runs it':<30}"
        + "".join(
            " | "
            + "".join(f"{r['page'][k]:7.1f}" for k in ("cold", "cold_cpu", "warm", "warm_cpu"))
            + f"{r['page']['cached']:12.2f}"
            for _, r in results
        )
    )
    print(
        f"{'bare GROUP BY area, stage':<30}"
        + "".join(
            " | "
            + "".join(
                f"{r[k]:7.1f}" for k in ("bare_cold", "bare_cold_cpu", "bare_warm", "bare_warm_cpu")
            )
            + f"{'':>12}"
            for _, r in results
        )
    )
    print(f"{'leads in the table':<30}" + "".join(f" | {r['leads']:>40,}" for _, r in results))
    print(
        f"{'peak RSS, MB (serial / page)':<30}"
        + "".join(
            f" | {r['peak_rss_mb']:>33.0f} / {r['page']['peak_rss_mb']:>4.0f}" for _, r in results
        )
    )
    if plans:
        for label, r in results:
            print(f"\n== {label}: query plans (cohort: {r['cohort']:,} leads)")
            for stmt, plan in r["plans"]:
                print("  " + " ".join(stmt.split())[:140])
                for step in plan:
                    if "SCAN" in step or "SEARCH" in step:
                        print(f"      {step}")


if __name__ == "__main__":
    main()
