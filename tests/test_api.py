"""POST /api/leads against a real `streamlit run streamlit_app.py` on a loopback port.

One server per scenario module-wide (SQLite), one with a tiny rate limit, one on PostgreSQL.
The test process shares the server's database file to set up keys and settings and to check
what was stored.
"""

from __future__ import annotations

import email
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from crm import apikeys, clinic_settings, db
from crm.models import ApiKey, Contact, IdempotencyRecord, Lead, Submission
from crm.ratelimit import RateLimiter
from crm.timeutil import utcnow
from tests.support import free_port
from tests.support.pg import PostgresServer
from tests.support.server import RunningServer, start_streamlit

ORIGIN = "https://clinic.example"
THANK_YOU = "https://clinic.example/thanks?lang=en"
MESSAGE = "Looking for help with long-standing depression; my doctor suggested ketamine."


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        self.arrived.set()
        return "250 OK"


@dataclass
class Api:
    """A running server, its database, and the keys made for it."""

    server: RunningServer
    engine: Engine
    keys: dict[str, str]
    inbox: Inbox | None = None

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, timeout=30.0)

    def count(self, model: Any = Lead) -> int:
        with Session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(model)).one())


def person(**changes: Any) -> dict[str, Any]:
    """A valid submission from a new person."""
    body: dict[str, Any] = {
        "first_name": "Dana",
        "last_name": "Whitfield",
        "email": f"dana.{uuid.uuid4().hex[:10]}@example.com",
        "preferred_contact": "email",
        "service": "Depression (incl. treatment-resistant)",
        "zip_code": "20147",
        "message": MESSAGE,
        "heard_about": "Search engine",
        "consent": True,
        "crisis": "no",
    }
    body.update(changes)
    return body


def _start(
    db_url: str, *, keys: dict[str, list[str]], env: dict[str, str] | None = None, **settings: Any
) -> Api:
    engine = db.make_engine(db_url)
    db.ensure_ready(engine)
    made: dict[str, str] = {}
    with Session(engine) as session:
        for name, origins in keys.items():
            made[name] = apikeys.create_key(
                session=session, name=name, allowed_origins=origins, actor_id=None
            )
        if settings:
            clinic_settings.save(session, actor_id=None, changes=settings)
        session.commit()
    server_env = {
        "DATABASE_URL": db_url,
        "CRM_BASE_URL": "https://crm.clinic.test",
        "CRM_SECRET_KEY": "test-secret-key-" + "s" * 32,
        **(env or {}),
    }
    server = start_streamlit(env=server_env, timeout=120)
    return Api(server=server, engine=engine, keys=made)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The main server: SQLite, a thank-you page, SMTP to a local aiosmtpd inbox."""
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    tmp = tmp_path_factory.mktemp("api")
    started = _start(
        f"sqlite:///{tmp / 'api.sqlite3'}",
        keys={"website": [ORIGIN], "partner": [], "retired": []},
        thank_you_url=THANK_YOU,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_starttls=False,
        smtp_from="crm@clinic.test",
        oncall_email="oncall@clinic.test",
    )
    with Session(started.engine) as session:
        apikeys.revoke_key(session=session, name="retired", actor_id=None)
        old = IdempotencyRecord(
            key="1:from-two-days-ago",
            created_at=utcnow() - timedelta(days=2),
            status_code=201,
            body="{}",
        )
        session.add(old)
        session.commit()
    started.inbox = inbox
    try:
        yield started
    finally:
        started.server.stop()
        started.engine.dispose()
        controller.stop()


def post(
    api: Api, body: Any = None, *, key: str | None = "website", **kwargs: Any
) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["X-API-Key"] = api.keys.get(key, key)
    with api.client() as client:
        if body is not None:
            return client.post("/api/leads", json=body, headers=headers, **kwargs)
        return client.post("/api/leads", headers=headers, **kwargs)


# --- the happy paths -------------------------------------------------------------------------


def test_health_answers_200_when_the_database_is_reachable(api: Api) -> None:
    with api.client() as client:
        response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_a_json_post_stores_a_lead_and_answers_201(api: Api) -> None:
    before = api.count()
    response = post(api, person())
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "reference", "urgent"}
    assert body["urgent"] is False and body["reference"].startswith("KC-")
    assert api.count() == before + 1
    with Session(api.engine) as session:
        lead = session.get(Lead, body["id"])
        assert lead is not None and lead.reference == body["reference"]
        submission = session.exec(select(Submission).where(Submission.lead_id == lead.id)).one()
        key_id = session.exec(select(ApiKey.id).where(ApiKey.name == "website")).one()
    assert submission.api_key_id == key_id
    assert submission.message == MESSAGE
    raw = json.loads(submission.raw)
    assert raw["crisis"] == "no" and raw["first_name"] == "Dana"
    assert api.keys["website"] not in submission.raw


def test_the_api_key_sent_in_the_body_is_not_kept_in_the_raw_submission(api: Api) -> None:
    body = person(api_key=api.keys["website"])
    response = post(api, body, key=None)
    assert response.status_code == 201, response.text
    with Session(api.engine) as session:
        raw = session.exec(
            select(Submission.raw).where(Submission.lead_id == response.json()["id"])
        ).one()
    assert "api_key" not in json.loads(raw)
    assert api.keys["website"] not in raw


def test_a_plain_html_form_post_is_accepted(api: Api) -> None:
    form = {k: str(v) for k, v in person(consent="on").items()}
    form["api_key"] = api.keys["website"]
    response = post(api, key=None, data=form)
    assert response.status_code == 201, response.text
    with Session(api.engine) as session:
        raw = session.exec(
            select(Submission.raw).where(Submission.lead_id == response.json()["id"])
        ).one()
    assert json.loads(raw)["consent"] == "on"
    assert api.keys["website"] not in raw


def test_a_form_with_raw_utf8_text_is_accepted(api: Api) -> None:
    email = f"jose.{uuid.uuid4().hex[:8]}%40example.com"
    content = f"first_name=José&last_name=Núñez&email={email}&consent=on".encode()
    response = post(
        api, content=content, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 201, response.text
    with Session(api.engine) as session:
        lead = session.get(Lead, response.json()["id"])
        assert lead is not None
        contact = session.get(Contact, lead.contact_id)
    assert contact is not None and (contact.first_name, contact.last_name) == ("José", "Núñez")


def test_a_browser_form_post_is_redirected_to_the_thank_you_page(api: Api) -> None:
    form = {k: str(v) for k, v in person(consent="on").items()}
    form["api_key"] = api.keys["website"]
    response = post(
        api,
        key=None,
        data=form,
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(THANK_YOU + "&ref=KC-")
    reference = location.rsplit("ref=", 1)[1]
    with Session(api.engine) as session:
        assert session.exec(select(Lead).where(Lead.reference == reference)).first() is not None


def test_last_used_at_is_recorded(api: Api) -> None:
    assert post(api, person(), key="partner").status_code == 201
    with Session(api.engine) as session:
        used = session.exec(select(ApiKey.last_used_at).where(ApiKey.name == "partner")).one()
    assert used is not None


def test_an_urgent_lead_alerts_on_call_without_the_persons_words(api: Api) -> None:
    assert api.inbox is not None
    words = "some days I just want to end it all"
    response = post(api, person(crisis="yes", message=words, last_name="Quill"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["urgent"] is True
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(
        body["reference"] in str(m["Subject"]) for m in api.inbox.messages
    ):
        time.sleep(0.1)
    (alert,) = [m for m in api.inbox.messages if body["reference"] in str(m["Subject"])]
    text = alert.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"https://crm.clinic.test/lead?id={body['id']}" in text
    assert words not in text and "end it all" not in text and "Quill" not in text
    assert alert["To"] == "oncall@clinic.test"


def test_a_filled_honeypot_looks_accepted_but_stores_nothing(api: Api) -> None:
    before = api.count(), api.count(Submission)
    response = post(api, person(website="http://spam.example"))
    assert response.status_code == 201
    assert set(response.json()) == {"id", "reference", "urgent"}
    form = {k: str(v) for k, v in person(website="x").items()}
    form["api_key"] = api.keys["website"]
    redirected = post(
        api, key=None, data=form, headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert redirected.status_code == 303
    assert (api.count(), api.count(Submission)) == before


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "crm_not-a-real-key", "retired"])
def test_a_missing_wrong_or_revoked_key_is_refused_with_401(api: Api, key: str | None) -> None:
    before = api.count()
    response = post(api, person(), key=key)
    assert response.status_code == 401
    assert "error" in response.json()
    assert api.count() == before


def test_a_body_over_the_limit_is_refused_with_413(api: Api) -> None:
    big = person(message="x" * 70_000)
    assert post(api, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed size is counted
        yield b'{"message": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}'

    response = post(api, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    "content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml", None]
)
def test_another_content_type_is_refused_with_415(api: Api, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = post(api, content=b"first_name=A", headers=headers)
    assert response.status_code == 415


def test_invalid_fields_are_listed_with_422(api: Api) -> None:
    response = post(
        api,
        person(email="not-an-email", zip_code="ABCDE", consent=False, preferred_contact="fax"),
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"email", "zip_code", "consent", "preferred_contact"}
    assert all(isinstance(m, str) and m for m in errors.values())


def test_a_key_used_from_an_origin_it_does_not_allow_is_refused(api: Api) -> None:
    before = api.count()
    response = post(api, person(), headers={"Origin": "https://evil.example"})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    assert api.count() == before


# --- idempotency -----------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_replays_the_first_answer(api: Api) -> None:
    body, idem = person(), {"Idempotency-Key": str(uuid.uuid4())}
    before = api.count(), api.count(Submission)
    first = post(api, body, headers=idem)
    again = post(api, body, headers=idem)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert (api.count(), api.count(Submission)) == (before[0] + 1, before[1] + 1)
    # The key is scoped to the API key: another client's same value is its own request.
    other = post(api, person(), key="partner", headers=idem)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    # Records older than a day are purged as new ones are written.
    with Session(api.engine) as session:
        assert session.get(IdempotencyRecord, "1:from-two-days-ago") is None


def test_an_idempotency_key_reused_for_another_submission_is_refused(api: Api) -> None:
    idem = {"Idempotency-Key": str(uuid.uuid4())}
    assert post(api, person(), headers=idem).status_code == 201
    before = api.count()
    reused = post(api, person(first_name="Someone", last_name="Else"), headers=idem)
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["errors"]
    assert api.count() == before


def test_simultaneous_retries_with_one_idempotency_key_store_one_lead(api: Api) -> None:
    body, idem = person(), {"Idempotency-Key": "race-" + uuid.uuid4().hex}
    before = api.count(), api.count(Submission)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(api, body, headers=idem), range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert (api.count(), api.count(Submission)) == (before[0] + 1, before[1] + 1)
    with Session(api.engine) as session:
        assert (
            session.exec(
                select(func.count()).where(
                    col(IdempotencyRecord.key).endswith(":" + idem["Idempotency-Key"])
                )
            ).one()
            == 1
        )


def test_a_malformed_idempotency_key_is_refused(api: Api) -> None:
    response = post(api, person(), headers={"Idempotency-Key": "x" * 500})
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]


# --- CORS ------------------------------------------------------------------------------------


def _preflight(api: Api, origin: str) -> httpx.Response:
    with api.client() as client:
        return client.options(
            "/api/leads",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-api-key,idempotency-key",
            },
        )


def test_a_preflight_from_an_allowed_origin_is_answered(api: Api) -> None:
    response = _preflight(api, ORIGIN)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"content-type", "x-api-key", "idempotency-key"} <= {
        h.strip() for h in allowed.split(",")
    }
    assert "POST" in response.headers["access-control-allow-methods"]
    # The POST that follows carries the grant too, so the page can read the answer.
    posted = post(api, person(), headers={"Origin": ORIGIN})
    assert posted.status_code == 201
    assert posted.headers["access-control-allow-origin"] == ORIGIN


def test_a_preflight_from_another_origin_gets_no_cors_headers(api: Api) -> None:
    response = _preflight(api, "https://evil.example")
    assert response.status_code >= 400
    assert not any(h.startswith("access-control-") for h in response.headers)
    # Same for the POST from that origin with a key that allows any origin (no grant).
    posted = post(api, person(), key="partner", headers={"Origin": "https://evil.example"})
    assert posted.status_code == 201
    assert "access-control-allow-origin" not in posted.headers


# --- hostile bodies: always a 4xx, never a 500 -----------------------------------------------

HOSTILE_JSON: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not json", b"{first_name: Dana"),
    ("array", b'[{"first_name": "Dana"}]'),
    ("string", b'"hello"'),
    ("null", b"null"),
    ("huge integer", b'{"zip_code": ' + b"9" * 5000 + b"}"),
    ("huge float", b'{"zip_code": 1e999999}'),
    ("NaN", b'{"zip_code": NaN}'),
    ("nested object", b'{"first_name": {"$ne": null}, "email": ["a@b.co"], "consent": {}}'),
    ("deep nesting", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("moderate nesting", b'{"a": ' + b'{"b": ' * 50 + b"1" + b"}" * 50 + b"}"),
    ("NUL in fields", json.dumps(person(first_name="Da\x00na", message="a\x00b")).encode()),
    ("NUL in a key", json.dumps({**person(), "\x00": "x"}).encode()),
    ("lone surrogate", b'{"first_name": "\\ud800", "last_name": "X", "email": "a@b.co"}'),
    ("non-UTF-8 bytes", b'{"first_name": "\xff\xfe", "last_name": "X"}'),
    ("wrong types", b'{"first_name": 12, "last_name": true, "email": 3.5, "consent": "maybe"}'),
    ("duplicate keys", b'{"first_name": "A", "first_name": "B"}'),
    ("control characters", json.dumps(person(last_name="\u202e\u0007\x1b[31m")).encode()),
]


@pytest.mark.parametrize(("name", "content"), HOSTILE_JSON, ids=[n for n, _ in HOSTILE_JSON])
def test_hostile_json_gets_a_4xx_never_a_500(api: Api, name: str, content: bytes) -> None:
    response = post(api, content=content, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 or response.status_code == 201, (
        name,
        response.status_code,
        response.text,
    )
    assert response.headers["content-type"].startswith("application/json")


HOSTILE_FORMS: list[tuple[str, bytes]] = [
    ("non-UTF-8 escape", b"first_name=%FF%FE&last_name=X&email=a%40b.co&consent=on"),
    ("raw 8-bit bytes", b"first_name=\xe9&last_name=X"),
    ("NUL", b"first_name=%00&last_name=X&email=a%40b.co&consent=on"),
    ("too many fields", b"&".join(b"f%d=1" % i for i in range(500))),
    ("no equals signs", b"garbage&&&;;;===="),
    ("repeated fields", b"first_name=A&first_name=B&last_name=C&email=a%40b.co&consent=on"),
]


@pytest.mark.parametrize(("name", "content"), HOSTILE_FORMS, ids=[n for n, _ in HOSTILE_FORMS])
def test_hostile_forms_get_a_4xx_never_a_500(api: Api, name: str, content: bytes) -> None:
    response = post(
        api, content=content, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert 400 <= response.status_code < 500 or response.status_code == 201, (
        name,
        response.status_code,
        response.text,
    )


def test_hostile_bodies_did_not_break_the_server(api: Api) -> None:
    assert "Traceback" not in api.server.log_text()
    assert post(api, person()).status_code == 201


# --- rate limiting ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("api-limited")
    started = _start(
        f"sqlite:///{tmp / 'limited.sqlite3'}",
        keys={"a": [], "b": []},
        env={"CRM_API_RATE_PER_MINUTE": "3"},
    )
    try:
        yield started
    finally:
        started.server.stop()
        started.engine.dispose()


def test_a_client_over_the_rate_limit_gets_429_with_retry_after(limited_api: Api) -> None:
    answers = [post(limited_api, person(), key="a").status_code for _ in range(3)]
    assert answers == [201, 201, 201]
    refused = post(limited_api, person(), key="a")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    # Another key from the same address is another client.
    assert post(limited_api, person(), key="b").status_code == 201


def test_guessing_keys_is_rate_limited_per_address(limited_api: Api) -> None:
    statuses = [post(limited_api, person(), key=f"crm_guess{i}").status_code for i in range(6)]
    assert statuses[:3] == [401, 401, 401]
    assert 429 in statuses[3:]


def test_the_token_bucket_refills_over_time() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one per second
    assert all(limiter.hit("k") is None for _ in range(60))
    wait = limiter.hit("k")
    assert wait is not None and 0 < wait <= 1.0
    now[0] += 1.0
    assert limiter.hit("k") is None
    assert limiter.hit("other") is None
    assert RateLimiter.retry_after_header(0.2) == "1"
    assert RateLimiter.retry_after_header(2.01) == "3"


def test_the_limiter_forgets_the_oldest_clients_beyond_its_size() -> None:
    limiter = RateLimiter(1, max_clients=100)
    for i in range(1000):
        limiter.hit(i)
    assert len(limiter) == 100


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_api(pg_server: PostgresServer) -> Iterator[Api]:
    url = pg_server.create_database(f"crm_api_{uuid.uuid4().hex[:8]}")
    started = _start(url, keys={"website": [ORIGIN]})
    try:
        yield started
    finally:
        started.server.stop()
        started.engine.dispose()


def test_the_api_works_on_postgresql(pg_api: Api) -> None:
    first = post(pg_api, person())
    assert first.status_code == 201, first.text
    assert post(pg_api, person(email="bad")).status_code == 422
    hostile = post(
        pg_api, content=HOSTILE_JSON[11][1], headers={"Content-Type": "application/json"}
    )
    assert hostile.status_code == 422  # NUL bytes: PostgreSQL text can't hold them
    body, idem = person(), {"Idempotency-Key": "pg-" + uuid.uuid4().hex}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(pg_api, body, headers=idem), range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    with ThreadPoolExecutor(8) as pool:
        many = list(pool.map(lambda _: post(pg_api, person()), range(40)))
    assert {a.status_code for a in many} == {201}
    assert pg_api.count() == 1 + 1 + 40
    assert "Traceback" not in pg_api.server.log_text()


def test_database_unreachable_is_a_503_with_retry_after(tmp_path: Path) -> None:
    # A server whose database is a PostgreSQL address where nothing listens.
    port = free_port()
    url = f"postgresql+psycopg://nobody@127.0.0.1:{port}/none?connect_timeout=2"
    server = start_streamlit(
        env={"DATABASE_URL": url, "CRM_SECRET_KEY": "test-secret-key-" + "s" * 32}, timeout=120
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            response = client.post("/api/leads", json=person(), headers={"X-API-Key": "crm_x"})
            health = client.get("/api/health")
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1
        assert health.status_code == 503
    finally:
        server.stop()



def test_a_bad_crisis_answer_is_reported_under_the_field_name_the_website_sent(api: Api) -> None:
    response = post(api, person(crisis="perhaps"))
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"crisis"}
