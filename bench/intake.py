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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The one implementation of the load (clients, checks, server) is crm.bench's.
from crm.bench import LOOPBACK, create_key, measure_intake, server  # noqa: E402


@contextmanager
def own_server(database_url: str | None) -> Iterator[tuple[str, str, str]]:
    """(base url, api key, database url) of a fresh `streamlit run` server."""
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        key = create_key(url)
        with server(url) as running:
            yield running.base_url, key, url


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
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
    header = f"{'clients':>7} {'leads':>6} {'accepted/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}  stored == acknowledged"
    print(header)
    print("-" * len(header))
    all_ok = True
    # A warm-up (schema check, imports, first connections) runs first, outside the figures.
    for result in measure_intake(url, key, database_url, levels, n):
        all_ok = all_ok and result.stored_ok is not False and result.errors == 0
        print(
            f"{result.clients:>7} {n:>6} {result.rate:>10.1f} {result.percentile(50):>8.1f} "
            f"{result.percentile(99):>8.1f} {result.errors:>6}  {result.check_text()}"
        )
        if result.first_error:
            print(f"        first error: {result.first_error}")
    return 0 if all_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
