"""Staff sign-in: password hashing and policy, throttled login, and server-side sessions.

How a browser stays signed in: after the password checks out, `start_session` stores an
AuthSession (only the hash of a random token) and `login_ticket` signs that token for 60
seconds. The browser takes the ticket to `GET /auth/session` (crm.http), which redeems it
once and sets a signed, HttpOnly, SameSite=Strict cookie; every script run hands that cookie
to `resume_session`, which checks the signature, the session (not ended, not idle, not past
its lifetime) and the user (still active).

Idle timeout: `CRM_SESSION_IDLE_MINUTES` (default 15). Tests may set
`CRM_SESSION_IDLE_SECONDS`, which overrides it with a value in seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func
from sqlmodel import Session, col, delete, select, update

from crm import audit
from crm.access import Actor
from crm.enums import Role
from crm.errors import CRMError
from crm.models import AuthSession, LoginAttempt, User
from crm.settings import get_settings
from crm.timeutil import as_utc, utcnow

COOKIE_NAME = "crm_session"
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256  # argon2 takes any length; a cap keeps one request cheap
TICKET_SECONDS = 60

# Throttling: a failure after N consecutive failures must wait before the next try; at the
# limit the account (or address) is locked. An office shares one address, so its limit is higher.
ACCOUNT_LOCK_AFTER = 5
ADDRESS_LOCK_AFTER = 20
LOCK_MINUTES = 15
FAILURE_WINDOW = timedelta(minutes=15)
MAX_DELAY_SECONDS = 30
ATTEMPTS_KEPT = timedelta(days=30)

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# Verified against when the email is unknown, so the answer takes as long either way.
_DUMMY_HASH = _hasher.hash("not a real password, only for timing")

# Short on purpose: the length rule already removes most leaked passwords; these are the
# twelve-plus-character ones that still top breach lists, and words a clinic's staff would reach for.
COMMON_PASSWORDS = frozenset(
    """
    123456789012 1234567890123 12345678901234 123456123456 111111111111 000000000000
    123123123123 qwertyuiop12 qwertyuiop123 qwertyuiopasdfgh 1q2w3e4r5t6y 1qaz2wsx3edc
    zaq12wsxcde3 qazwsxedcrfv asdfghjkl123 password1234 password12345 password123456
    passwordpassword password1234! p@ssword1234 p@ssw0rd1234 passw0rd1234 iloveyou1234
    letmein12345 welcome12345 welcome123456 administrator admin1234567 adminadmin12
    changeme1234 trustno11234 football1234 baseball1234 princess1234 sunshine1234
    abcdefghijkl abcdefg12345 abc123abc123 aaaaaaaaaaaa monkey123456 dragon123456
    superman1234 michael12345 jennifer1234 qwerty123456 qwertyqwerty 987654321098
    ketamine1234 ketamineclinic clinic123456 infusion1234 healthcare12 nurse1234567
    doctor123456 hospital1234 springfield1 correcthorsebatterystaple
    """.split()
)
_COMMON_WORDS = (
    "password",
    "passw0rd",
    "p@ssword",
    "qwerty",
    "letmein",
    "welcome",
    "iloveyou",
    "admin",
    "changeme",
    "ketamine",
    "clinic",
    "infusion",
)


class WeakPassword(CRMError):
    """The password does not meet the policy."""


class LoginFailed(CRMError):
    """Wrong email or password (never says which)."""

    def __init__(self) -> None:
        super().__init__("Email or password is not right.")


class LoginThrottled(CRMError):
    """Too many failed tries: wait, or the account/address is locked for a while."""

    def __init__(self, retry_after: int, *, locked: bool) -> None:
        minutes = max(1, round(retry_after / 60))
        if locked:
            message = f"Too many failed sign-in attempts. Try again in about {minutes} minute(s)."
        else:
            message = f"Please wait {retry_after} second(s) before trying again."
        super().__init__(message)
        self.retry_after = retry_after
        self.locked = locked


# --- Passwords -----------------------------------------------------------------------------


def check_password_policy(password: str, *, email: str = "", name: str = "") -> None:
    """Raise WeakPassword with a message a person can act on, or return."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"The password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"The password must be at most {MAX_PASSWORD_LENGTH} characters long.")
    lowered = password.lower()
    squeezed = re.sub(r"[\s_\-.]+", "", lowered)
    if lowered in COMMON_PASSWORDS or squeezed in COMMON_PASSWORDS:
        raise WeakPassword(
            "This password is too common. Choose a longer phrase of unrelated words."
        )
    if len(set(lowered)) <= 3:
        raise WeakPassword("The password repeats too few characters. Choose a longer phrase.")
    stripped = re.sub(r"[\d\W_]+", "", lowered)
    if stripped in _COMMON_WORDS or any(
        lowered.startswith(w) and len(stripped) <= len(w) for w in _COMMON_WORDS
    ):
        raise WeakPassword(
            "This password is a common word with digits. Choose a phrase of unrelated words."
        )
    local = email.split("@", 1)[0].lower()
    for personal in (email, local, name):
        personal = re.sub(r"[\s_\-.]+", "", personal.lower())
        if len(personal) >= 4 and personal in squeezed:
            raise WeakPassword("The password must not contain your email or name.")


def hash_password(password: str) -> str:
    """The argon2id hash to store (the password itself is never stored)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches `password_hash` (an absent hash never matches)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- Login with throttling -----------------------------------------------------------------


def email_key(email: str) -> str:
    """What LoginAttempt stores for an email: a keyed hash, so a typo'd password is never kept."""
    normalized = email.strip().lower().encode()
    return hmac.new(get_settings().secret_key.encode(), normalized, hashlib.sha256).hexdigest()


def _delay_after(failures: int, *, free: int) -> int:
    """Seconds to wait after `failures` consecutive failures (the first `free` cost nothing)."""
    if failures <= free:
        return 0
    return min(2 ** (failures - free - 1), MAX_DELAY_SECONDS)


def _recent_failures(
    session: Session, *, column: object, value: str, now: datetime
) -> tuple[int, datetime | None]:
    """How many failures since the last success within the window, and when the last one was."""
    since = now - FAILURE_WINDOW
    last_ok = session.exec(
        select(func.max(LoginAttempt.at)).where(column == value, col(LoginAttempt.ok).is_(True))  # type: ignore[operator]
    ).one()
    if last_ok is not None and as_utc(last_ok) > since:
        since = as_utc(last_ok)
    count, last = session.exec(
        select(func.count(), func.max(LoginAttempt.at)).where(
            column == value,  # type: ignore[operator]
            col(LoginAttempt.ok).is_(False),
            LoginAttempt.at > since,
        )
    ).one()
    return int(count), (as_utc(last) if last is not None else None)


def _throttle(
    failures: int, last: datetime | None, *, lock_after: int, free: int, now: datetime
) -> LoginThrottled | None:
    if last is None:
        return None
    if failures >= lock_after:
        until = last + timedelta(minutes=LOCK_MINUTES)
        if now < until:
            return LoginThrottled(int((until - now).total_seconds()) + 1, locked=True)
        return None
    wait_until = last + timedelta(seconds=_delay_after(failures, free=free))
    if now < wait_until:
        return LoginThrottled(int((wait_until - now).total_seconds()) + 1, locked=False)
    return None


def _check_throttle(session: Session, *, key: str, ip: str | None, now: datetime) -> None:
    failures, last = _recent_failures(session, column=LoginAttempt.email_key, value=key, now=now)
    refusal = _throttle(failures, last, lock_after=ACCOUNT_LOCK_AFTER, free=1, now=now)
    if refusal is None and ip:
        failures, last = _recent_failures(session, column=LoginAttempt.ip, value=ip, now=now)
        refusal = _throttle(failures, last, lock_after=ADDRESS_LOCK_AFTER, free=4, now=now)
    if refusal is not None:
        raise refusal


def _user_by_email(session: Session, email: str) -> User | None:
    return session.exec(select(User).where(func.lower(User.email) == email.strip().lower())).first()


def actor_from(user: User) -> Actor:
    """The Actor services see for a user row."""
    return Actor(
        id=user.id or 0,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        is_provider=user.is_provider,
    )


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    ip: str | None = None,
    now: datetime | None = None,
) -> Actor:
    """Check an email and password; raise LoginFailed or LoginThrottled, or return the actor.

    Every try is recorded (LoginAttempt) and audited; the caller commits, also on failure.
    """
    now = now or utcnow()
    key = email_key(email)
    _check_throttle(session, key=key, ip=ip, now=now)
    user = _user_by_email(session, email)
    ok = verify_password(user.password_hash if user else None, password)
    if user is not None and ok and not user.active:
        ok = False
    session.add(LoginAttempt(at=now, email_key=key, ip=ip, ok=ok))
    if ok and user is not None:
        if _hasher.check_needs_rehash(user.password_hash or ""):
            user.password_hash = hash_password(password)
        user.last_login_at = now
        user.failed_logins = 0
        user.locked_until = None
        session.add(user)
        audit.record(
            session, actor_id=user.id, actor_email=user.email, action="auth.login", ip=ip, at=now
        )
        # Tries only matter for a window of minutes; keep a month (for questions), not forever.
        session.execute(delete(LoginAttempt).where(col(LoginAttempt.at) < now - ATTEMPTS_KEPT))
        return actor_from(user)
    reason = (
        "unknown account"
        if user is None
        else ("disabled account" if not user.active else "wrong password")
    )
    audit.record(
        session,
        actor_id=user.id if user else None,
        actor_email=user.email if user else None,
        action="auth.login_failed",
        ip=ip,
        details={"reason": reason},
        at=now,
    )
    session.flush()
    _note_lockouts(session, user=user, key=key, ip=ip, now=now)
    raise LoginFailed()


def _note_lockouts(
    session: Session, *, user: User | None, key: str, ip: str | None, now: datetime
) -> None:
    """Audit the failure that starts a lockout and mark the account row for the admin page."""
    failures, _ = _recent_failures(
        session, column=LoginAttempt.email_key, value=key, now=now + timedelta(microseconds=1)
    )
    until = now + timedelta(minutes=LOCK_MINUTES)
    if user is not None:
        user.failed_logins = failures
        if failures >= ACCOUNT_LOCK_AFTER:
            user.locked_until = until
        session.add(user)
    if failures == ACCOUNT_LOCK_AFTER:
        audit.record(
            session,
            actor_id=user.id if user else None,
            actor_email=user.email if user else None,
            action="auth.lockout",
            ip=ip,
            details={"scope": "account", "failures": failures, "until": until.isoformat()},
            at=now,
        )
    if ip:
        by_ip, _ = _recent_failures(
            session, column=LoginAttempt.ip, value=ip, now=now + timedelta(microseconds=1)
        )
        if by_ip == ADDRESS_LOCK_AFTER:
            audit.record(
                session,
                actor_id=None,
                action="auth.lockout",
                ip=ip,
                details={"scope": "address", "failures": by_ip, "until": until.isoformat()},
                at=now,
            )


# --- Sessions --------------------------------------------------------------------------------


def idle_limit() -> timedelta:
    """How long a session may sit unused (CRM_SESSION_IDLE_SECONDS overrides, for tests)."""
    raw = os.environ.get("CRM_SESSION_IDLE_SECONDS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return timedelta(seconds=int(raw))
    return timedelta(minutes=get_settings().session_idle_minutes)


def max_lifetime() -> timedelta:
    return timedelta(hours=get_settings().session_max_hours)


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(get_settings().secret_key, salt=f"crm.{purpose}")


def start_session(
    session: Session,
    *,
    actor: Actor,
    ip: str | None = None,
    via: str | None = None,
    now: datetime | None = None,
) -> str:
    """Store a new server-side session for `actor`; return its secret token (for the ticket).

    `via` names a sign-in that `authenticate` did not audit (e.g. "sso"); it is audited here.
    """
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        AuthSession(
            id=_token_id(token),
            user_id=actor.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + max_lifetime(),
            ip=ip,
        )
    )
    if via:
        audit.record(
            session,
            actor_id=actor.id,
            actor_email=actor.email,
            action="auth.login",
            ip=ip,
            details={"via": via},
            at=now,
        )
    return token


def login_ticket(token: str) -> str:
    """A signed, short-lived ticket the browser exchanges once for the session cookie."""
    return _serializer("login-ticket").dumps(token)


def redeem_ticket(session: Session, *, ticket: str, now: datetime | None = None) -> str | None:
    """The cookie value for a valid, unused ticket (marking it used), else None."""
    try:
        token = _serializer("login-ticket").loads(ticket, max_age=TICKET_SECONDS)
    except (BadSignature, SignatureExpired):
        return None
    now = now or utcnow()
    row = session.get(AuthSession, _token_id(str(token)))
    if row is None or row.ended_at is not None or row.cookie_issued_at is not None:
        return None
    if as_utc(row.expires_at) <= now:
        return None
    # Guarded update: two concurrent redemptions of one ticket cannot both win.
    result = session.execute(
        update(AuthSession)
        .where(col(AuthSession.id) == row.id, col(AuthSession.cookie_issued_at).is_(None))
        .values(cookie_issued_at=now, last_seen_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return _serializer("session").dumps(token)


@dataclass(frozen=True)
class SessionCheck:
    """The outcome of checking a session cookie: the actor, or why there is none."""

    actor: Actor | None
    reason: str  # "ok", "invalid", "ended", "idle", "expired", "disabled"
    token: str | None = None


def _token_from_cookie(cookie: str) -> str | None:
    try:
        token = _serializer("session").loads(cookie, max_age=int(max_lifetime().total_seconds()))
    except (BadSignature, SignatureExpired):
        return None
    return token if isinstance(token, str) else None


def resume_session(
    session: Session,
    *,
    cookie: str | None = None,
    token: str | None = None,
    now: datetime | None = None,
    touch: bool = True,
) -> SessionCheck:
    """Check a session cookie (or the token this tab holds); `touch` counts the run as activity."""
    now = now or utcnow()
    by_cookie = token is None
    if token is None:
        token = _token_from_cookie(cookie) if cookie else None
    if token is None:
        return SessionCheck(None, "invalid")
    row = session.get(AuthSession, _token_id(token))
    if row is None or (by_cookie and row.cookie_issued_at is None):
        return SessionCheck(None, "invalid")
    if row.ended_at is not None:
        return SessionCheck(None, "ended")
    user = session.get(User, row.user_id)
    reason = "ok"
    if user is None or not user.active:
        reason = "disabled"
    elif as_utc(row.expires_at) <= now:
        reason = "expired"
    elif now - as_utc(row.last_seen_at) > idle_limit():
        reason = "idle"
    if reason != "ok":
        _end(session, row, user=user, reason=reason, now=now)
        return SessionCheck(None, reason)
    assert user is not None
    # One write per half-minute at most, not one per click.
    if touch and now - as_utc(row.last_seen_at) >= min(timedelta(seconds=30), idle_limit() / 4):
        row.last_seen_at = now
        session.add(row)
    return SessionCheck(actor_from(user), "ok", token)


def _end(
    session: Session, row: AuthSession, *, user: User | None, reason: str, now: datetime
) -> None:
    row.ended_at = now
    session.add(row)
    audit.record(
        session,
        actor_id=row.user_id,
        actor_email=user.email if user else None,
        action="auth.logout",
        details={"reason": reason},
        ip=row.ip,
        at=now,
    )


def end_session(
    session: Session,
    *,
    cookie: str | None = None,
    token: str | None = None,
    reason: str = "signed out",
    now: datetime | None = None,
) -> bool:
    """Sign out: end the session named by its cookie or token; True if one was open."""
    token = token or (_token_from_cookie(cookie) if cookie else None)
    if token is None:
        return False
    row = session.get(AuthSession, _token_id(token))
    if row is None or row.ended_at is not None:
        return False
    _end(session, row, user=session.get(User, row.user_id), reason=reason, now=now or utcnow())
    return True


def end_user_sessions(
    session: Session, *, user_id: int, reason: str, now: datetime | None = None
) -> int:
    """End every open session of a user (disabled, password reset); returns how many."""
    now = now or utcnow()
    rows = session.exec(
        select(AuthSession).where(
            AuthSession.user_id == user_id, col(AuthSession.ended_at).is_(None)
        )
    ).all()
    user = session.get(User, user_id)
    for row in rows:
        _end(session, row, user=user, reason=reason, now=now)
    return len(rows)


def active_actor(session: Session, *, actor_id: int) -> Actor | None:
    """The current Actor for a user id if the account is still active (role read fresh)."""
    user = session.get(User, actor_id)
    if user is None or not user.active:
        return None
    return actor_from(user)


def sso_actor(session: Session, *, email: str | None) -> Actor | None:
    """The active staff account an identity provider's email belongs to, or None."""
    if not email or "@" not in email:
        return None
    user = _user_by_email(session, email)
    if user is None or not user.active:
        return None
    return actor_from(user)
