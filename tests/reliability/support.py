"""What the reliability tests share: a real intake server, a load of website clients, and the
check that every acknowledged submission is stored exactly once.

Every submission carries a unique marker (its email address, `TAG.N@example.com`), so the
database can be asked, per submission, how many leads and submissions it produced.
"""

from __future__ import annotations

import http.client
import itertools
import json
import select as io_select
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from crm import apikeys, db
from crm.models import Contact, Lead, Submission
from tests.support.pg import PostgresServer
from tests.support.server import RunningServer, start_streamlit

SECRET_KEY = "reliability-secret-key-" + "r" * 32
# The limiter counts per API key and address; the load comes from one key on one address.
UNLIMITED = "10000000"


def server_env(db_url: str, **extra: str) -> dict[str, str]:
    """The environment of an app process on `db_url` (same secret key for every process)."""
    return {
        "DATABASE_URL": db_url,
        "CRM_SECRET_KEY": SECRET_KEY,
        "CRM_BASE_URL": "https://crm.clinic.test",
        "CRM_API_RATE_PER_MINUTE": UNLIMITED,
        **extra,
    }


def prepare(db_url: str, key_name: str = "website") -> tuple[Engine, str]:
    """Migrate and seed the database, create an API key; (engine, plaintext key)."""
    engine = db.make_engine(db_url)
    db.ensure_ready(engine)
    with Session(engine) as session:
        key = apikeys.create_key(session=session, name=key_name, allowed_origins=[], actor_id=None)
        session.commit()
    return engine, key


def fresh_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    """An empty database on `backend`: a file under tmp_path, or a new PostgreSQL database."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / (name + '.sqlite3')}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database(f"rel_{name}_{uuid.uuid4().hex[:8]}")


def serve(db_url: str, **extra_env: str) -> RunningServer:
    """`streamlit run streamlit_app.py` on a free loopback port, serving `db_url`."""
    return start_streamlit(env=server_env(db_url, **extra_env), timeout=120)


def new_tag(prefix: str) -> str:
    """A marker prefix unique to one run (lower case: emails are compared lower-cased)."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def email_of(tag: str, n: int) -> str:
    return f"{tag}.{n}@example.com"


def person(tag: str, n: int, **changes: Any) -> dict[str, Any]:
    """Submission number `n` of run `tag`: a new person, marked by a unique email."""
    body: dict[str, Any] = {
        "first_name": "Load",
        "last_name": f"Client {tag} {n}",
        "email": email_of(tag, n),
        "preferred_contact": "email",
        "service": "Depression (incl. treatment-resistant)",
        "zip_code": "20147",
        "message": f"Submission {n}: looking for help with depression. " + "More. " * (n % 7),
        "heard_about": "Search engine",
        "consent": True,
        "crisis": "no",
    }
    body.update(changes)
    return body


# One HTTP request of a load and what came back (status None: no answer at all).
@dataclass
class Attempt:
    n: int
    kind: str  # once | retry | twin | resend
    idempotency_key: str | None
    status: int | None
    lead_id: int | None
    reference: str | None
    replayed: bool
    sent: float
    answered: float
    error: str = ""


class Connection:
    """One keep-alive HTTP/1.1 connection from the standard library.

    A sixth of httpx's CPU per request, which counts when 50 client threads share this
    machine's two cores with the server they measure.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(
        self, path: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, lower-cased headers, body); OSError or HTTPException when no answer came."""
        if self._conn is not None and self._closed_by_peer(self._conn):
            self.close()
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self._conn.request("POST", path, body=body, headers=dict(headers))
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if response.will_close:
            self.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    @staticmethod
    def _closed_by_peer(conn: http.client.HTTPConnection) -> bool:
        """An idle keep-alive connection that is readable has been closed by the server."""
        sock = conn.sock
        return sock is not None and bool(io_select.select([sock], [], [], 0)[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class Load:
    """`clients` threads, each with its own connection, posting leads to one server.

    Submissions are numbered; by number, a share is retried sequentially with the same
    Idempotency-Key (`retry_every`), a share is sent twice at the same moment with the same
    key from two connections (`twin_every`), and every other one carries a key of its own.
    With `total` the load ends after that many submissions; without, at `stop()`.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        clients: int,
        total: int | None = None,
        retry_every: int = 0,
        twin_every: int = 0,
        tag: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.clients = clients
        self.total = total
        self.retry_every = retry_every
        self.twin_every = twin_every
        self.tag = tag or new_tag("ld")
        self.timeout = timeout
        self.attempts: list[Attempt] = []
        self.started = 0.0
        self.finished = 0.0
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._failures: list[BaseException] = []

    # -- running ------------------------------------------------------------------------------

    def start(self) -> Load:
        self.started = time.monotonic()
        self._threads = [
            threading.Thread(target=self._worker, name=f"load-{i}", daemon=True)
            for i in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float = 600.0) -> Load:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        self.finished = time.monotonic()
        if self._failures:
            raise AssertionError(f"a load client failed: {self._failures[0]!r}")
        assert not alive, f"load clients still running after {timeout:.0f}s: {alive}"
        return self

    def run(self, timeout: float = 600.0) -> Load:
        return self.start().join(timeout)

    def _next(self) -> int | None:
        with self._lock:
            n = next(self._numbers)
        if self.total is not None and n >= self.total:
            return None
        return n

    def kind_of(self, n: int) -> str:
        if self.retry_every and n % self.retry_every == 1:
            return "retry"
        if self.twin_every and n % self.twin_every == 2:
            return "twin"
        return "once"

    def _worker(self) -> None:
        try:
            with self._client() as client, self._client() as twin:
                while not self._stop.is_set():
                    n = self._next()
                    if n is None:
                        return
                    self._submit(n, client, twin)
        except BaseException as err:  # noqa: BLE001 - reported by join()
            self._failures.append(err)

    def _client(self) -> Connection:
        return Connection(self.base_url, self.timeout)

    def idempotency_key(self, n: int) -> str | None:
        """Repeated submissions, and every other one, carry an Idempotency-Key."""
        return f"{self.tag}-{n}" if self.kind_of(n) != "once" or n % 2 == 0 else None

    def body(self, n: int) -> bytes:
        return json.dumps(person(self.tag, n)).encode()

    def resend(self, numbers: list[int], base_url: str) -> list[Attempt]:
        """Send these submissions again, as they were, one by one (a client retrying)."""
        with Connection(base_url, self.timeout) as client:
            return [
                self._post(client, n, "resend", self.idempotency_key(n), self.body(n))
                for n in numbers
            ]

    def _submit(self, n: int, client: Connection, twin: Connection) -> None:
        kind = self.kind_of(n)
        idem = self.idempotency_key(n)
        body = self.body(n)
        if kind == "twin":
            barrier = threading.Barrier(2, timeout=30)

            def other() -> None:
                barrier.wait()
                self._post(twin, n, kind, idem, body)

            thread = threading.Thread(target=other, daemon=True)
            thread.start()
            barrier.wait()
            self._post(client, n, kind, idem, body)
            thread.join(self.timeout + 5)
            return
        first = self._post(client, n, kind, idem, body)
        if kind == "retry" and first.status is not None and not self._stop.is_set():
            self._post(client, n, kind, idem, body)

    def _post(
        self, client: Connection, n: int, kind: str, idem: str | None, body: bytes
    ) -> Attempt:
        headers = {"Content-Type": "application/json", "X-API-Key": self.api_key}
        if idem is not None:
            headers["Idempotency-Key"] = idem
        sent = time.monotonic()
        try:
            status, response_headers, content = client.post("/api/leads", body, headers)
        except (OSError, http.client.HTTPException) as err:
            attempt = Attempt(
                n, kind, idem, None, None, None, False, sent, time.monotonic(), repr(err)
            )
            time.sleep(0.02)  # a dead server refuses at once: don't spin
        else:
            answered = time.monotonic()
            ok = status == 201
            data: Mapping[str, Any] = json.loads(content) if ok else {}
            attempt = Attempt(
                n,
                kind,
                idem,
                status,
                int(data["id"]) if ok else None,
                str(data["reference"]) if ok else None,
                response_headers.get("idempotent-replayed") == "true",
                sent,
                answered,
                "" if ok else content[:300].decode(errors="replace"),
            )
        with self._lock:
            self.attempts.append(attempt)
        return attempt

    # -- results ------------------------------------------------------------------------------

    def acknowledged(self, before: float | None = None) -> dict[int, Attempt]:
        """The first 201 per submission (answered before `before`, a monotonic time, if given)."""
        firsts: dict[int, Attempt] = {}
        for attempt in sorted(self.attempts, key=lambda a: a.answered):
            if attempt.status == 201 and (before is None or attempt.answered < before):
                firsts.setdefault(attempt.n, attempt)
        return firsts

    def statuses(self) -> dict[int | None, int]:
        counts: dict[int | None, int] = defaultdict(int)
        for attempt in self.attempts:
            counts[attempt.status] += 1
        return dict(counts)

    def sent_numbers(self) -> set[int]:
        return {a.n for a in self.attempts}

    def accepted_per_second(self) -> float:
        elapsed = (self.finished or time.monotonic()) - self.started
        return len(self.acknowledged()) / elapsed if elapsed > 0 else 0.0


# What the database holds for one submission's marker.
@dataclass
class Stored:
    leads: list[tuple[int, str]] = field(default_factory=list)  # (id, reference)
    submissions: int = 0


def stored(engine: Engine, tag: str) -> dict[int, Stored]:
    """Per submission number of run `tag`: its leads and how many submissions they hold."""
    prefix = f"{tag}."
    found: dict[int, Stored] = defaultdict(Stored)
    with Session(engine) as session:
        rows = session.exec(
            select(Contact.email_key, Lead.id, Lead.reference, func.count(col(Submission.id)))
            .join(Lead, col(Lead.contact_id) == col(Contact.id))
            .outerjoin(Submission, col(Submission.lead_id) == col(Lead.id))
            .where(col(Contact.email_key).startswith(prefix))
            .group_by(col(Contact.email_key), col(Lead.id), col(Lead.reference))
        ).all()
    for email, lead_id, reference, submissions in rows:
        n = int(str(email).removeprefix(prefix).split("@", 1)[0])
        found[n].leads.append((int(lead_id or 0), str(reference)))
        found[n].submissions += int(submissions)
    return dict(found)


def count(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def check_exactly_once(load: Load, engine: Engine, *, must_ack_all: bool) -> dict[int, Stored]:
    """Assert every acknowledged submission is stored exactly once, with the id it was given.

    Every 201 for one submission (retries, simultaneous duplicates) carried the same id. A
    submission never acknowledged (the server died first) is stored at most once.
    """
    acked = load.acknowledged()
    in_db = stored(engine, load.tag)
    problems: list[str] = []
    answers: dict[int, set[tuple[int | None, str | None]]] = defaultdict(set)
    for attempt in load.attempts:
        if attempt.status == 201:
            answers[attempt.n].add((attempt.lead_id, attempt.reference))
    for n, ids in answers.items():
        if len(ids) != 1:
            problems.append(f"submission {n} was answered with different leads: {sorted(ids)}")
    for n, first in acked.items():
        rows = in_db.get(n)
        if rows is None:
            problems.append(f"submission {n} got 201 (lead {first.lead_id}) but is not stored")
            continue
        if rows.leads != [(first.lead_id, first.reference)] or rows.submissions != 1:
            problems.append(
                f"submission {n} (201, lead {first.lead_id}) is stored as {rows.leads} with "
                f"{rows.submissions} submissions"
            )
    for n, rows in in_db.items():
        if n not in acked and (len(rows.leads) > 1 or rows.submissions > 1):
            problems.append(f"unacknowledged submission {n} is stored more than once: {rows}")
    if must_ack_all:
        missing = sorted(load.sent_numbers() - acked.keys())
        if missing:
            bad = [a for a in load.attempts if a.n in set(missing[:5])]
            problems.append(f"{len(missing)} submissions never got a 201, e.g. {bad[:5]}")
    assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} problems)"
    return in_db
