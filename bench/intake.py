"""Benchmark of the HTTP intake endpoint: POST /api/leads from concurrent clients over loopback.

Not a test. By default it starts its own `streamlit run streamlit_app.py` on a throwaway
SQLite database (rate limit lifted), creates an API key, and for each concurrency level
posts N leads (each a new person) from C clients, each client a thread with its own
keep-alive connection. It prints accepted leads per second, p50/p99 latency, errors, and
whether the number of leads stored equals the number of 201 answers (nothing lost,
nothing doubled).

    python bench/intake.py                          # 3000 leads at 1, 16 and 64 clients
    python bench/intake.py -n 1000 --clients 16
    python bench/intake.py --database-url postgresql+psycopg://...   # own server on PostgreSQL
    python bench/intake.py --url http://127.0.0.1:8501 --api-key crm_...   # a running server
        (add --database-url of that server's database to check the stored count; the
         server's CRM_API_RATE_PER_MINUTE must allow the load)

Only sends traffic to loopback addresses.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass
class LevelResult:
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
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _payload(run: str, i: int) -> dict[str, object]:
    # A new person every time (unique email, no phone): each post must create one lead.
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
    """Post n leads from `clients` threads; return counts and latencies."""
    counter = iter(range(n))
    lock = threading.Lock()
    latencies: list[float] = []
    ids: set[int] = set()
    accepted = errors = 0
    first_error = ""
    start_gate = threading.Barrier(clients + 1)

    def worker() -> None:
        nonlocal accepted, errors, first_error
        mine: list[float] = []
        my_ids: list[int] = []
        ok = bad = 0
        err = ""
        with httpx.Client(base_url=url, timeout=30.0, headers={"X-API-Key": api_key}) as client:
            start_gate.wait()
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                t0 = time.perf_counter()
                try:
                    response = client.post("/api/leads", json=_payload(run, i))
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status, err = 0, err or f"{type(exc).__name__}: {exc}"
                mine.append((time.perf_counter() - t0) * 1000)
                if status == 201:
                    ok += 1
                    my_ids.append(int(response.json()["id"]))
                else:
                    bad += 1
                    if not err:
                        err = f"HTTP {status}: {response.text[:200]}"
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
def own_server(database_url: str | None) -> Iterator[tuple[str, str, str]]:
    """(base url, api key, database url) of a fresh `streamlit run` server."""
    from tests.support.server import start_streamlit

    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        key = create_key(url)
        env = {
            "DATABASE_URL": url,
            "CRM_API_RATE_PER_MINUTE": "100000000",
            "CRM_SECRET_KEY": "bench-secret-key-" + "x" * 32,
        }
        with start_streamlit(env=env, timeout=120) as server:
            yield server.base_url, key, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--leads", type=int, default=3000, help="leads per level")
    parser.add_argument("--clients", default="1,16,64", help="concurrency levels, e.g. 1,16,64")
    parser.add_argument("--url", help="a running server (loopback only) instead of our own")
    parser.add_argument("--api-key", help="the key for --url")
    parser.add_argument(
        "--database-url",
        help="with --url: that server's database (to count stored leads); "
        "without: run our own server on this database instead of a temporary SQLite file",
    )
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",") if c.strip()]
    if args.url:
        if urlsplit(args.url).hostname not in LOOPBACK:
            parser.error("--url must point at a loopback address")
        if not args.api_key:
            parser.error("--url needs --api-key")
        return report(args.url, args.api_key, args.database_url, levels, args.leads)
    with own_server(args.database_url) as (url, key, database_url):
        return report(url, key, database_url, levels, args.leads)


def report(url: str, key: str, database_url: str | None, levels: list[int], n: int) -> int:
    backend = (database_url or "unknown").split(":", 1)[0]
    print(f"POST {url}/api/leads, {n} leads per level, database: {backend}, cpus: {os.cpu_count()}")
    # Warm up (schema check, imports, first connections) outside the measurement.
    run_level(url, key, 4, 40, "warmup-" + uuid.uuid4().hex[:6])
    header = f"{'clients':>7} {'leads':>6} {'accepted/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  stored == acknowledged"
    print(header)
    print("-" * len(header))
    all_ok = True
    for clients in levels:
        before = count_leads(database_url) if database_url else None
        result = run_level(url, key, clients, n, uuid.uuid4().hex[:8])
        if database_url and before is not None:
            result.stored = count_leads(database_url) - before
            result.missing = count_missing(database_url, result.ids)
        distinct = len(result.ids) == result.accepted
        if result.stored is None:
            check = "not checked (no --database-url)"
        elif result.stored == result.accepted and result.missing == 0 and distinct:
            check = f"yes ({result.stored}, every acknowledged id found)"
        else:
            check = (
                f"NO: stored {result.stored}, acknowledged {result.accepted} "
                f"({len(result.ids)} distinct ids, {result.missing} not found)"
            )
            all_ok = False
        all_ok = all_ok and result.errors == 0
        print(
            f"{clients:>7} {n:>6} {result.rate:>10.1f} {result.percentile(50):>8.1f} "
            f"{result.percentile(99):>8.1f} {result.errors:>6}  {check}"
        )
        if result.first_error:
            print(f"        first error: {result.first_error}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
