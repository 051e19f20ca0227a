"""Benchmark of the triage queue on big SQLite demo databases.

Not a test. For each database it brings the schema to head, then times, for a few typical
queue views, `crm.triage.queue_page` (what the page calls: the page's rows, the counts per
stage and the total, plus building the rows) side by side with the bare SQL that call sends:
the exact statements and parameters, captured from the driver and replayed through the
`sqlite3` module on a connection of its own. Figures are the median of several warm runs.

    python bench/queue_page.py                              # /tmp/demo100k.sqlite3, /tmp/demo1m.sqlite3
    python bench/queue_page.py --db 100k=/tmp/a.sqlite3 --runs 9
    python bench/queue_page.py --plans                      # also EXPLAIN QUERY PLAN of each statement

Make a database with `python -m crm demo --leads 1000000 --database-url sqlite:////tmp/demo1m.sqlite3`.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from sqlmodel import Session, col, select  # noqa: E402

from crm import clinic_settings, db, triage  # noqa: E402
from crm.access import Actor  # noqa: E402
from crm.enums import Role  # noqa: E402
from crm.models import Contact, Lead, User  # noqa: E402
from crm.triage import QueueFilters  # noqa: E402
from crm.validation import format_phone_national  # noqa: E402

DEFAULT_DBS = ["100k=/tmp/demo100k.sqlite3", "1m=/tmp/demo1m.sqlite3"]


def _cases(session: Session, actor: Actor) -> list[tuple[str, QueueFilters]]:
    """The views to time: the first page as it opens, and filtered searches a coordinator runs."""
    # A real open lead to search for, so the filtered search finds someone.
    lead, contact = session.exec(
        select(Lead, Contact)
        .join(Contact, col(Contact.id) == Lead.contact_id)
        .where(Lead.is_open == True, col(Lead.service_area_id).is_not(None))  # noqa: E712
        .where(col(Contact.phone).is_not(None))
        .order_by(col(Lead.id).desc())
        .limit(1)
    ).one()
    phone = format_phone_national(contact.phone or "")
    first_name = (contact.first_name or "a")[:3]
    return [
        ("first page", QueueFilters()),
        (
            f"stage+area+phone {phone}",
            QueueFilters(stages=(lead.stage,), area=lead.service_area_id, search=phone),
        ),
        ("phone search only", QueueFilters(search=phone)),
        (f"name prefix '{first_name}'", QueueFilters(search=first_name)),
        (
            "mine+overdue",
            QueueFilters(owner=triage.OWNER_MINE, overdue_only=True),
        ),
        (
            "stage+area+service",
            QueueFilters(
                stages=(lead.stage,), area=lead.service_area_id, service_id=lead.service_id
            ),
        ),
        ("page 20", QueueFilters()),
    ]


def _median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    fn()  # warm: SQLite's page cache and SQLAlchemy's statement cache
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def bench_database(label: str, path: str, *, runs: int, plans: bool) -> list[dict[str, Any]]:
    url = f"sqlite:///{path}"
    engine = db.make_engine(url)
    started = time.perf_counter()
    db.ensure_ready(engine)
    upgrade_s = time.perf_counter() - started
    raw = sqlite3.connect(path)
    rows: list[dict[str, Any]] = []
    with Session(engine) as session:
        total_leads = session.exec(select(Lead.id).order_by(col(Lead.id).desc()).limit(1)).one()
        user = (
            session.exec(
                select(User).where(User.role == Role.CARE_TEAM.value).order_by(col(User.id))
            ).first()
            or session.exec(select(User).order_by(col(User.id))).first()
        )
        actor = Actor(
            id=user.id if user and user.id else 1,
            email=user.email if user else "bench@clinic.test",
            name=user.name if user else "Bench",
            role=Role.CARE_TEAM,
        )
        config = clinic_settings.load(session)
        print(
            f"\n{label}: {path} ({total_leads:,} leads; schema check/upgrade {upgrade_s:.1f} s; "
            f"acting as user {actor.id})"
        )
        for name, filters in _cases(session, actor):
            page = 20 if name == "page 20" else 1
            captured: list[tuple[str, Any]] = []

            def capture(conn, cursor, statement, parameters, context, many, out=captured):  # type: ignore[no-untyped-def]
                out.append((statement, parameters))

            def service(filters: QueueFilters = filters, page: int = page) -> triage.QueuePage:
                return triage.queue_page(
                    session=session, actor=actor, filters=filters, page=page, config=config
                )

            connection = session.connection()
            event.listen(connection, "before_cursor_execute", capture)
            service()
            event.remove(connection, "before_cursor_execute", capture)
            statements = list(captured)
            service_ms, result = _median_ms(service, runs)

            def bare(statements: list[tuple[str, Any]] = statements) -> int:
                fetched = 0
                for sql, params in statements:
                    fetched += len(raw.execute(sql, params).fetchall())
                return fetched

            bare_ms, _ = _median_ms(bare, runs)
            rows.append(
                {
                    "db": label,
                    "view": name,
                    "service_ms": service_ms,
                    "bare_ms": bare_ms,
                    "statements": len(statements),
                    "rows": len(result.rows),
                    "total": result.total,
                }
            )
            if plans:
                print(f"  -- {name}")
                for sql, params in statements:
                    plan = raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                    print("     " + " | ".join(step[3] for step in plan))
            if name == "first page":
                print("  The first page's SQL (what the page runs, parameters as sent):")
                for sql, params in statements:
                    print("    " + " ".join(sql.split()) + f"   -- {params!r}")
    raw.close()
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db", action="append", help="LABEL=PATH of a SQLite database (repeatable)"
    )
    parser.add_argument("--runs", type=int, default=7, help="timed runs per view (median shown)")
    parser.add_argument("--plans", action="store_true", help="print EXPLAIN QUERY PLAN too")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    for spec in args.db or DEFAULT_DBS:
        label, _, path = spec.partition("=")
        if not Path(path).exists():
            print(
                f"\n{label}: {path} not found; make it with python -m crm demo --leads N "
                f"--database-url sqlite:///{path}"
            )
            continue
        results += bench_database(label, path, runs=args.runs, plans=args.plans)
    if not results:
        return
    print("\n| leads | view | queue_page() ms | bare SQL ms | statements | rows | total |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        total = "10,000+" if r["total"] is None else f"{r['total']:,}"
        print(
            f"| {r['db']} | {r['view']} | {r['service_ms']:.1f} | {r['bare_ms']:.1f} | "
            f"{r['statements']} | {r['rows']} | {total} |"
        )


if __name__ == "__main__":
    main()
