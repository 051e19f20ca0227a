"""The HTTP intake endpoint for the clinic's website: `POST /api/leads`.

Served by the same `streamlit run streamlit_app.py` (see crm.http). Accepts JSON and plain
HTML form posts (`application/x-www-form-urlencoded`, parsed here with the standard library),
authenticated by an API key (`X-API-Key` header or an `api_key` form field).

Answers: 201 {"id", "reference", "urgent"}; 303 to the clinic's thank-you page for a browser
form post; 400 for a body that is not a JSON object or a form; 401 without a valid key; 403
when the key may not be used from the request's Origin; 413 for a body over
CRM_API_MAX_BODY_BYTES; 415 for another content type; 422 {"errors": {field: message}};
429 with Retry-After when one client (API key + address) goes over CRM_API_RATE_PER_MINUTE;
503 with Retry-After when the database is unreachable. Nothing a client sends causes a 500.

`Idempotency-Key` (scoped by API key, kept a day): a retry gets the first answer again
(header `Idempotent-Replayed: true`) and stores nothing; the record is written in the lead's
own transaction. The same key with a different submission is refused with 422. The rate
limit is counted in this process's memory: with several server processes each counts alone.

The handler runs on the server's event loop; everything touching the database runs in a
worker thread on the process's shared engine. On SQLite, submissions from this process take
a lock first: SQLite has one writer at a time, and waiting on a Python lock is much cheaper
than SQLite's busy-retry sleeps (it also keeps two identical submissions strictly ordered).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio
import anyio.to_thread
from sqlalchemy import Engine, delete
from sqlalchemy import exc as sa_exc
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crm import apikeys, clinic_settings, db, intake
from crm.apikeys import ApiKeyInfo
from crm.models import IdempotencyRecord
from crm.ratelimit import RateLimiter
from crm.settings import get_settings
from crm.timeutil import utcnow
from crm.validation import FieldErrors, IntakeInput, validate_intake

__all__ = ["LEADS_PATH", "IntakeCorsMiddleware", "create_lead"]

log = logging.getLogger(__name__)

LEADS_PATH = "/api/leads"
JSON_TYPE = "application/json"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 100
MAX_JSON_DEPTH = 8
IDEMPOTENCY_KEY_MAX = 200
RETRY_AFTER_DB_DOWN = "5"
CORS_ALLOW_HEADERS = "Content-Type, X-API-Key, Idempotency-Key"
CORS_MAX_AGE = "600"
ORIGINS_CACHE_SECONDS = 5.0
# The form's crisis question is `crisis` on the wire and `crisis_answer` in crm.validation.
_FIELD_ALIASES = {"crisis": "crisis_answer"}
# Errors go back under the names the website sent, so its form can show each next to its field.
_WIRE_NAMES = {inner: wire for wire, inner in _FIELD_ALIASES.items()}

_limiters: tuple[RateLimiter, RateLimiter] | None = None
_limiter_lock = threading.Lock()
_ready_lock = threading.Lock()
_ready_engine: Engine | None = None
_sqlite_write_lock = threading.Lock()
_db_limiter: anyio.CapacityLimiter | None = None
# SQLite takes one writer at a time, so more threads only fight over the GIL and the write
# lock (measured: 1 thread ~236 leads/s at 16 clients, 2 ~217, 4 ~215). PostgreSQL takes
# concurrent writers and answers over a socket, so its requests may overlap.
DB_THREADS = {"sqlite": 1, "postgresql": 4}
# Clinic settings are read at most this often by the API (an admin's change applies
# within that time): the SLA clock, thank-you page and alert settings on every request.
CONFIG_CACHE_SECONDS = 2.0
_config_lock = threading.Lock()
# Retries come within minutes; a day's records answer any sane retry policy.
IDEMPOTENCY_TTL = timedelta(hours=24)
PURGE_EVERY_SECONDS = 3600.0
_purge_lock = threading.Lock()
_next_purge = 0.0
_config_cache: tuple[float, clinic_settings.ClinicConfig] | None = None


def _db_threads() -> anyio.CapacityLimiter:
    """The worker threads intake requests may use at once (created on the server's loop)."""
    global _db_limiter
    if _db_limiter is None:
        _db_limiter = anyio.CapacityLimiter(DB_THREADS.get(db.get_engine().dialect.name, 4))
    return _db_limiter


class ApiError(Exception):
    """A finished answer raised from deep in the handler (4xx for the client, 503 for us)."""

    def __init__(
        self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def _error(status: int, message: str, **headers: str) -> ApiError:
    return ApiError(status, {"error": message}, headers)


def _body_error(message: str) -> ApiError:
    return ApiError(400, {"errors": {"body": message}})


# What the database step decided; the event-loop side turns it into a response.
@dataclass
class _Outcome:
    status: int
    body: dict[str, Any]
    thank_you_url: str = ""
    headers: dict[str, str] = field(default_factory=dict)


# --- entry points ----------------------------------------------------------------------------


async def create_lead(request: Request) -> Response:
    """POST /api/leads: store one inquiry from the clinic's website."""
    try:
        return await _create_lead(request)
    except ApiError as err:
        return err.response()
    except ClientDisconnect:
        return Response(status_code=400)
    except (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError) as err:
        log.warning("Intake API: database unavailable (%s: %s)", type(err).__name__, err)
        return JSONResponse(
            {"error": "The service is temporarily unavailable; please retry shortly."},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_DB_DOWN},
        )
    except sa_exc.DataError:
        # A value the database refused (too long, out of range): validation should have
        # caught it, so log it as our bug, but it came from the client: answer 422.
        log.exception("Intake API: the database refused a value that passed validation")
        return JSONResponse(
            {"errors": {"body": "A value is too long or not in a form we can store"}}, 422
        )
    except Exception:  # noqa: BLE001 - a bug of ours: log it, answer without details
        log.exception("Intake API: unexpected failure")
        return JSONResponse({"error": "Internal error; the submission was not stored."}, 500)


async def _create_lead(request: Request) -> Response:
    settings = get_settings()
    media_type = _media_type(request.headers.get("content-type", ""))
    if media_type not in (JSON_TYPE, FORM_TYPE):
        raise _error(415, f"Send the form as {JSON_TYPE} or {FORM_TYPE}")
    body = await _read_body(request, settings.api_max_body_bytes)
    fields, raw = _parse_json(body) if media_type == JSON_TYPE else _parse_form(body)

    form_key = fields.pop("api_key", None)
    raw.pop("api_key", None)  # the raw submission is kept with the lead: never the credential
    key = request.headers.get("x-api-key") or _text(form_key) or ""
    client_ip = request.client.host if request.client else "unknown"
    limiter, failures = _rate_limiters(settings.api_rate_per_minute)
    # Per client (key + address); plus per address for failed keys, so guessing keys (each
    # a fresh bucket of its own) cannot hammer the database either.
    wait = failures.peek(client_ip) or limiter.hit((apikeys.hash_key(key), client_ip))
    if wait is not None:
        raise _too_many(wait)
    if not key:
        failures.hit(client_ip)
        raise _error(401, "An API key is required (X-API-Key header or api_key field)")
    idempotency_key = _idempotency_key(request.headers.get("idempotency-key"))
    origin = request.headers.get("origin")

    outcome = await anyio.to_thread.run_sync(
        _store, key, fields, raw, idempotency_key, origin, limiter=_db_threads()
    )
    if outcome.status == 401:
        failures.hit(client_ip)

    wants_page = media_type == FORM_TYPE and "text/html" in request.headers.get("accept", "")
    if outcome.status == 201 and wants_page and outcome.thank_you_url:
        location = _thank_you_location(outcome.thank_you_url, str(outcome.body["reference"]))
        if location:
            return RedirectResponse(location, status_code=303)
    return JSONResponse(outcome.body, status_code=outcome.status, headers=outcome.headers)


# --- reading the request ---------------------------------------------------------------------


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 when it announces or turns out to be over `limit` bytes."""
    too_large = _error(413, f"The submission is too large (limit {limit:,} bytes)")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise _body_error("Invalid Content-Length")
        if int(declared) > limit:
            raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked or lying about its length: stop reading here
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields for validation, raw submission) from a JSON object body; 400 otherwise."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise _body_error("The body is not valid UTF-8") from None
    except RecursionError:
        raise _body_error("The JSON is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError, NaN/Infinity, an integer too long to read
        raise _body_error(f"The body is not valid JSON ({_short(err)})") from None
    if not isinstance(data, dict):
        raise _body_error("Send one JSON object with the form's fields")
    if _depth(data) > MAX_JSON_DEPTH:
        raise _body_error("The JSON is nested too deeply")
    fields = {_FIELD_ALIASES.get(str(k), str(k)): v for k, v in data.items()}
    return fields, data


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(value: Any) -> int:
    """How deeply containers nest in `value` (iterative: no recursion on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            items: Any = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in items)
    return deepest


def _parse_form(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(fields, raw) from an urlencoded form; a repeated field keeps its first value."""
    try:
        # Browsers percent-encode everything; `curl -d` and friends send raw UTF-8.
        text = body.decode("utf-8")
        parsed = parse_qs(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except UnicodeDecodeError:
        raise _body_error("The form is not valid UTF-8") from None
    except ValueError:
        raise _body_error(f"Too many form fields (limit {MAX_FORM_FIELDS})") from None
    raw: dict[str, Any] = {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}
    fields = {_FIELD_ALIASES.get(k, k): v[0] for k, v in parsed.items()}
    return fields, raw


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _short(err: Exception) -> str:
    text = str(err)
    return text if len(text) <= 120 else text[:117] + "..."


def _idempotency_key(value: str | None) -> str | None:
    """The Idempotency-Key header (1-200 visible ASCII characters), or None when absent."""
    if value is None:
        return None
    if not 0 < len(value) <= IDEMPOTENCY_KEY_MAX or not all(33 <= ord(c) <= 126 for c in value):
        raise ApiError(
            400,
            {
                "errors": {
                    "Idempotency-Key": f"Use 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters"
                }
            },
        )
    return value


def _rate_limiters(per_minute: int) -> tuple[RateLimiter, RateLimiter]:
    """(per client, per address for failed keys), made once per process."""
    global _limiters
    with _limiter_lock:
        if _limiters is None or _limiters[0].capacity != per_minute:
            _limiters = (RateLimiter(per_minute), RateLimiter(per_minute))
        return _limiters


def _too_many(wait: float) -> ApiError:
    return ApiError(
        429,
        {"error": "Too many submissions; please wait a moment and retry."},
        {"Retry-After": RateLimiter.retry_after_header(wait)},
    )


def _thank_you_location(url: str, reference: str) -> str | None:
    """The thank-you page with ?ref=REFERENCE added, or None when the setting is not a URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        log.warning("Intake API: thank_you_url %r is not an http(s) URL; answering JSON", url)
        return None
    query = (parts.query + "&" if parts.query else "") + urlencode({"ref": reference})
    return parts._replace(query=query).geturl()


# --- the database step (runs in a worker thread) ---------------------------------------------


def _engine() -> Engine:
    """The shared engine, schema upgraded and seeded once per process before first use."""
    global _ready_engine
    with _ready_lock:
        if _ready_engine is None:
            _ready_engine = db.ensure_ready(db.get_engine())
        return _ready_engine


@contextmanager
def _writer(engine: Engine) -> Iterator[None]:
    lock = _sqlite_write_lock if engine.dialect.name == "sqlite" else nullcontext()
    with lock:
        yield


def _store(
    key: str,
    fields: dict[str, Any],
    raw: dict[str, Any],
    idempotency_key: str | None,
    origin: str | None,
) -> _Outcome:
    """Authenticate, replay or validate, then store and commit one submission."""
    engine = _engine()
    settings = get_settings()
    with Session(engine, expire_on_commit=False) as session:
        api_key = apikeys.authenticate(session=session, key=key)
        if api_key is None:
            return _Outcome(401, {"error": "Invalid or revoked API key"})
        if origin and api_key.allowed_origins and origin.lower() not in api_key.allowed_origins:
            return _Outcome(403, {"error": "This API key may not be used from this origin"})
        idem = None
        if idempotency_key is not None:
            # Scoped by API key: two websites may well pick the same key values.
            idem = _Idempotency(f"{api_key.id}:{idempotency_key}", _fingerprint(raw))
            replay = _replay(session, idem)
            if replay is not None:
                return replay
        config = _clinic_config(session)

        if str(fields.get("website") or "").strip():
            # Honeypot filled: answer like a success, store nothing (a bot learns nothing).
            decoy = {"id": 1000 + secrets.randbelow(90_000), "reference": intake.new_reference()}
            return _Outcome(201, {**decoy, "urgent": False}, thank_you_url=config.thank_you_url)
        try:
            data = validate_intake(
                fields, mode="api", check_deliverability=settings.check_email_deliverability
            )
        except FieldErrors as err:
            errors = {_WIRE_NAMES.get(k, k): v for k, v in err.errors.items()}
            return _Outcome(422, {"errors": errors})

        for attempt in range(2):
            try:
                return _submit(session, engine, api_key, data, raw, idem, config)
            except sa_exc.IntegrityError:
                session.rollback()
                if idem is not None:
                    # The same Idempotency-Key was committed first by another worker: replay.
                    replay = _replay(session, idem)
                    if replay is not None:
                        return replay
                if attempt == 1:
                    raise
                log.warning("Intake API: integrity conflict while storing; retrying once")
    raise AssertionError("unreachable")


def _clinic_config(session: Session) -> clinic_settings.ClinicConfig:
    """The clinic's settings, re-read every CONFIG_CACHE_SECONDS (treat as read-only)."""
    global _config_cache
    now = time.monotonic()
    with _config_lock:
        cached = _config_cache
    if cached is not None and now < cached[0]:
        return cached[1]
    config = clinic_settings.load(session)
    with _config_lock:
        _config_cache = (now + CONFIG_CACHE_SECONDS, config)
    return config


def _submit(
    session: Session,
    engine: Engine,
    api_key: ApiKeyInfo,
    data: IntakeInput,
    raw: dict[str, Any],
    idem: _Idempotency | None,
    config: clinic_settings.ClinicConfig,
) -> _Outcome:
    """Store the lead, the idempotency record and the key's use in one transaction."""
    with _writer(engine):
        result = intake.submit(
            session=session,
            data=data,
            actor_id=None,
            raw=raw,  # as sent, under the sent names; intake drops the api_key field
            api_key_id=api_key.id,
            config=config,
        )
        body = {"id": result.lead_id, "reference": result.reference, "urgent": result.urgent}
        if idem is not None:
            stored = json.dumps({"answer": body, "request": idem.fingerprint})
            session.add(IdempotencyRecord(key=idem.key, status_code=201, body=stored))
            _purge_idempotency_records(session)
        apikeys.touch(session=session, key=api_key)
        session.commit()
    return _Outcome(201, body, thank_you_url=config.thank_you_url)


# An Idempotency-Key as stored (scoped by API key) and what the request it came with said.
@dataclass(frozen=True)
class _Idempotency:
    key: str
    fingerprint: str


def _fingerprint(raw: dict[str, Any]) -> str:
    canonical = json.dumps(raw, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _replay(session: Session, idem: _Idempotency) -> _Outcome | None:
    """The first answer given for this key, or None when the key is new.

    The same key with a different submission is refused rather than replayed: a website
    that reuses keys by mistake would otherwise lose every inquiry after the first.
    """
    record = session.get(IdempotencyRecord, idem.key)
    if record is None:
        return None
    stored = json.loads(record.body)
    if stored.get("request") != idem.fingerprint:
        message = "This Idempotency-Key was already used for a different submission"
        return _Outcome(422, {"errors": {"Idempotency-Key": message}})
    return _Outcome(
        record.status_code,
        stored["answer"],
        thank_you_url=_clinic_config(session).thank_you_url,
        headers={"Idempotent-Replayed": "true"},
    )


def _purge_idempotency_records(session: Session) -> None:
    """Drop records older than IDEMPOTENCY_TTL, at most once per process per PURGE_EVERY."""
    global _next_purge
    now = time.monotonic()
    with _purge_lock:
        if now < _next_purge:
            return
        _next_purge = now + PURGE_EVERY_SECONDS
    cutoff = utcnow() - IDEMPOTENCY_TTL
    session.execute(delete(IdempotencyRecord).where(col(IdempotencyRecord.created_at) < cutoff))


# --- CORS for the website's fetch() calls ----------------------------------------------------


class _OriginCache:
    """The origins any active key allows, re-read from the database every few seconds."""

    def __init__(self, ttl: float = ORIGINS_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._value: frozenset[str] = frozenset()
        self._expires = -math.inf
        self._lock = threading.Lock()

    def get(self, now: float) -> frozenset[str]:
        with self._lock:
            if now < self._expires:
                return self._value
        try:
            with Session(_engine()) as session:
                value = apikeys.active_origins(session=session)
        except Exception:  # noqa: BLE001 - no database, no CORS grants; the POST answers 503
            log.warning("Intake API: could not read allowed origins", exc_info=True)
            value = frozenset()
        with self._lock:
            self._value, self._expires = value, now + self.ttl
        return value


_origins = _OriginCache()


class IntakeCorsMiddleware:
    """CORS for POST /api/leads, granted per API key's allowed origins.

    A preflight (OPTIONS) is answered only for an origin some active key allows (a browser
    sends no API key on a preflight); the POST itself then checks the key's own origins.
    Other origins get no CORS headers at all, so the browser keeps the answer from them.
    Every other path passes through untouched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != LEADS_PATH:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if not origin:
            await self.app(scope, receive, send)
            return
        allowed = origin.lower() in await run_in_threadpool(_origins.get, time.monotonic())
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(allowed, origin, headers)(scope, receive, send)
            return
        if not allowed:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _with_cors_headers(send, origin))

    @staticmethod
    def _preflight(allowed: bool, origin: str, headers: Headers) -> Response:
        method = headers.get("access-control-request-method", "").upper()
        if not allowed or method != "POST":
            return PlainTextResponse("CORS request not allowed", 403, headers={"Vary": "Origin"})
        return Response(
            status_code=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                "Access-Control-Max-Age": CORS_MAX_AGE,
                "Vary": "Origin",
            },
        )


def _with_cors_headers(send: Send, origin: str) -> Callable[[Message], Awaitable[None]]:
    async def send_with_cors(message: Message) -> None:
        if message["type"] == "http.response.start":
            response_headers = MutableHeaders(scope=message)
            response_headers["Access-Control-Allow-Origin"] = origin
            response_headers["Access-Control-Expose-Headers"] = "Retry-After"
            response_headers.add_vary_header("Origin")
        await send(message)

    return send_with_cors
