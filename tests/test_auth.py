"""Sign-in: password policy and hashing, throttling and lockout, sessions and their cookie."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from crm import auth, db, session_routes, users
from crm.enums import Role
from crm.models import AuditEvent, AuthSession, LoginAttempt, User
from crm.timeutil import utcnow

PASSWORD = "correct horse battery 42"


@pytest.fixture(autouse=True)
def _quick_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for speed (test_auth checks the real ones)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def _user(session: Session, email: str = "pat@clinic.test", role: Role = Role.CARE_TEAM) -> User:
    user = users.create_user(
        session=session, email=email, password=PASSWORD, role=role, name="Pat Jones"
    )
    session.commit()
    return user


def _actions(session: Session) -> list[str]:
    return list(session.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all())  # type: ignore[arg-type]


def _fail(session: Session, email: str, *, ip: str | None = "10.0.0.1", now=None) -> Exception:  # noqa: ANN001
    """One failed try, committed as the login page does."""
    with pytest.raises((auth.LoginFailed, auth.LoginThrottled)) as info:
        auth.authenticate(session, email=email, password="wrong password here", ip=ip, now=now)
    session.commit()
    return info.value


# --- Password policy and hashing -------------------------------------------------------------


@pytest.mark.parametrize(
    "password, message",
    [
        ("short pass", "at least 12"),
        ("x" * 257, "at most 256"),
        ("password1234", "too common"),
        ("Password 1234", "too common"),
        ("qwertyuiop123", "too common"),
        ("aaaaaaaaaaaaaa", "too few characters"),
        ("abababababababab", "too few characters"),
        ("Ketamine2024!!", "common word"),
        ("pat.jones.rules.all", "email or name"),
        ("xx pat@clinic.test xx", "email or name"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, message: str) -> None:
    with pytest.raises(auth.WeakPassword, match=message):
        auth.check_password_policy(password, email="pat@clinic.test", name="Pat Jones")


@pytest.mark.parametrize("password", [PASSWORD, "Blue-Lantern-Orchard-7", "twelve chars"])
def test_a_long_uncommon_password_is_accepted(password: str) -> None:
    auth.check_password_policy(password, email="pat@clinic.test", name="Pat Jones")


def test_production_hashing_uses_the_rfc_9106_low_memory_profile() -> None:
    from argon2 import PasswordHasher

    assert "$argon2id$v=19$m=65536,t=3,p=4$" in PasswordHasher().hash("x")
    assert auth._DUMMY_HASH.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_the_hash_is_argon2id_and_verifies_only_the_right_password() -> None:
    hashed = auth.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert auth.verify_password(hashed, PASSWORD)
    assert not auth.verify_password(hashed, PASSWORD + "!")
    assert not auth.verify_password(None, PASSWORD)
    assert not auth.verify_password("not a hash", PASSWORD)
    assert not auth.verify_password(hashed, "x" * 10_000)


# --- Login -----------------------------------------------------------------------------------


def test_the_right_password_signs_in_and_is_audited(session: Session) -> None:
    user = _user(session)
    actor = auth.authenticate(session, email="  PAT@clinic.test ", password=PASSWORD, ip="10.0.0.1")
    session.commit()
    assert (actor.id, actor.role) == (user.id, Role.CARE_TEAM)
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "auth.login")).one()
    assert (event.actor_id, event.ip) == (user.id, "10.0.0.1")
    assert session.get(User, user.id).last_login_at is not None  # type: ignore[union-attr]


def test_unknown_email_wrong_password_and_disabled_account_all_say_the_same(
    session: Session,
) -> None:
    _user(session)
    _user(session, email="gone@clinic.test")
    gone = session.exec(select(User).where(User.email == "gone@clinic.test")).one()
    gone.active = False
    session.add(gone)
    session.commit()
    messages = set()
    for email, password in [
        ("nobody@clinic.test", PASSWORD),
        ("pat@clinic.test", "wrong password!"),
        ("gone@clinic.test", PASSWORD),
    ]:
        with pytest.raises(auth.LoginFailed) as info:
            auth.authenticate(session, email=email, password=password, ip=None)
        session.commit()
        messages.add(str(info.value))
    assert messages == {"Email or password is not right."}
    reasons = [
        json.loads(e.details)["reason"]
        for e in session.exec(
            select(AuditEvent)
            .where(AuditEvent.action == "auth.login_failed")
            .order_by(AuditEvent.id)
        )
    ]
    assert reasons == ["unknown account", "wrong password", "disabled account"]


def test_login_attempts_keep_a_keyed_hash_of_the_email_not_the_email(session: Session) -> None:
    _fail(session, "Someone@Example.com")
    attempt = session.exec(select(LoginAttempt)).one()
    assert "someone" not in attempt.email_key.lower() and len(attempt.email_key) == 64
    assert attempt.email_key == auth.email_key("someone@example.com ")


def test_repeated_failures_slow_down_then_lock_the_account(session: Session) -> None:
    user = _user(session)
    t0 = utcnow()
    assert isinstance(_fail(session, user.email, now=t0), auth.LoginFailed)
    assert isinstance(_fail(session, user.email, now=t0 + timedelta(seconds=1)), auth.LoginFailed)
    # After two failures the next try must wait a second; a try sooner is refused unchecked.
    early = _fail(session, user.email, now=t0 + timedelta(seconds=1, milliseconds=100))
    assert isinstance(early, auth.LoginThrottled) and not early.locked
    assert "wait" in str(early)
    t = t0 + timedelta(seconds=1)
    for step in (2, 4):  # the wait doubles
        t += timedelta(seconds=step)
        assert isinstance(_fail(session, user.email, now=t), auth.LoginFailed)
    t += timedelta(seconds=8)
    assert isinstance(_fail(session, user.email, now=t), auth.LoginFailed)  # the fifth failure
    # Locked: even the right password is refused, and the lockout is audited once.
    with pytest.raises(auth.LoginThrottled) as info:
        auth.authenticate(
            session,
            email=user.email,
            password=PASSWORD,
            ip="10.0.0.9",
            now=t + timedelta(minutes=5),
        )
    assert info.value.locked and "minute" in str(info.value)
    assert _actions(session).count("auth.lockout") == 1
    lockout = session.exec(select(AuditEvent).where(AuditEvent.action == "auth.lockout")).one()
    assert json.loads(lockout.details)["scope"] == "account" and lockout.actor_id == user.id
    session.refresh(user)
    assert user.locked_until is not None and user.failed_logins == 5
    # After the lock the right password works again, and a success resets the count.
    actor = auth.authenticate(
        session,
        email=user.email,
        password=PASSWORD,
        ip="10.0.0.9",
        now=t + timedelta(minutes=auth.LOCK_MINUTES, seconds=1),
    )
    session.commit()
    assert actor.id == user.id
    assert isinstance(_fail(session, user.email, now=t + timedelta(minutes=16)), auth.LoginFailed)


def test_an_unknown_email_is_locked_the_same_way_so_locks_reveal_nothing(session: Session) -> None:
    t = utcnow()
    for _ in range(auth.ACCOUNT_LOCK_AFTER):
        _fail(session, "nobody@clinic.test", now=t)
        t += timedelta(seconds=auth.MAX_DELAY_SECONDS)
    refusal = _fail(session, "nobody@clinic.test", now=t)
    assert isinstance(refusal, auth.LoginThrottled) and refusal.locked


def test_many_failures_from_one_address_lock_that_address_only(session: Session) -> None:
    _user(session)
    t = utcnow()
    for n in range(
        auth.ADDRESS_LOCK_AFTER
    ):  # a different email each time: only the address repeats
        _fail(session, f"guess{n}@clinic.test", ip="203.0.113.7", now=t)
        t += timedelta(seconds=auth.MAX_DELAY_SECONDS)
    with pytest.raises(auth.LoginThrottled) as info:
        auth.authenticate(
            session, email="pat@clinic.test", password=PASSWORD, ip="203.0.113.7", now=t
        )
    assert info.value.locked
    actor = auth.authenticate(
        session, email="pat@clinic.test", password=PASSWORD, ip="198.51.100.2", now=t
    )
    assert actor.email == "pat@clinic.test"
    scopes = [
        json.loads(e.details)["scope"]
        for e in session.exec(select(AuditEvent).where(AuditEvent.action == "auth.lockout"))
    ]
    assert scopes == ["address"]


# --- Sessions --------------------------------------------------------------------------------


def _signed_in(session: Session, user: User) -> str:
    """The cookie value a browser holds after signing in."""
    token = auth.start_session(session, actor=auth.actor_from(user), ip="10.0.0.1")
    session.commit()
    cookie = auth.redeem_ticket(session, ticket=auth.login_ticket(token))
    session.commit()
    assert cookie is not None
    return cookie


def test_a_ticket_gives_a_cookie_once_and_the_cookie_resumes_the_session(session: Session) -> None:
    user = _user(session)
    token = auth.start_session(session, actor=auth.actor_from(user))
    session.commit()
    ticket = auth.login_ticket(token)
    cookie = auth.redeem_ticket(session, ticket=ticket)
    session.commit()
    assert auth.redeem_ticket(session, ticket=ticket) is None  # one-time
    check = auth.resume_session(session, cookie=cookie)  # type: ignore[arg-type]
    assert check.reason == "ok" and check.actor is not None and check.actor.id == user.id


def test_a_ticket_is_refused_when_tampered_or_expired(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = _user(session)
    token = auth.start_session(session, actor=auth.actor_from(user))
    session.commit()
    ticket = auth.login_ticket(token)
    assert (
        auth.redeem_ticket(
            session, ticket=ticket[:-2] + ("A" if ticket[-2] != "A" else "B") + ticket[-1]
        )
        is None
    )
    assert auth.redeem_ticket(session, ticket=auth.login_ticket("made-up-token")) is None
    monkeypatch.setattr(auth, "TICKET_SECONDS", -1)
    assert auth.redeem_ticket(session, ticket=ticket) is None


def test_a_tampered_or_foreign_cookie_is_refused(session: Session) -> None:
    user = _user(session)
    cookie = _signed_in(session, user)
    payload, stamp, signature = cookie.split(".")
    # Flip the first character: base64's last one may carry unused bits and decode unchanged.
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert auth.resume_session(session, cookie=f"{payload}.{stamp}.{flipped}").reason == "invalid"
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer("another key entirely, 32+ characters", salt="crm.session")
    assert auth.resume_session(session, cookie=forged.dumps("any token")).reason == "invalid"
    assert auth.resume_session(session, cookie="garbage").reason == "invalid"
    # The ticket is signed for another purpose: it does not work as a cookie.
    token = auth.start_session(session, actor=auth.actor_from(user))
    assert auth.resume_session(session, cookie=auth.login_ticket(token)).reason == "invalid"


def test_an_idle_session_ends_and_is_audited(session: Session) -> None:
    user = _user(session)
    cookie = _signed_in(session, user)
    later = utcnow() + auth.idle_limit() + timedelta(seconds=1)
    check = auth.resume_session(session, cookie=cookie, now=later)
    session.commit()
    assert (check.actor, check.reason) == (None, "idle")
    assert auth.resume_session(session, cookie=cookie).reason == "ended"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "auth.logout")).one()
    assert json.loads(event.details) == {"reason": "idle"} and event.actor_id == user.id


def test_activity_keeps_a_session_alive_but_not_past_its_lifetime(session: Session) -> None:
    user = _user(session)
    cookie = _signed_in(session, user)
    now = utcnow()
    step = auth.idle_limit() - timedelta(seconds=5)
    for _ in range(3):
        now += step
        assert auth.resume_session(session, cookie=cookie, now=now).reason == "ok"
        session.commit()
    row = session.exec(select(AuthSession)).one()
    assert abs((row.last_seen_at - now).total_seconds()) < 1
    assert auth.resume_session(session, cookie=cookie, now=now + step, touch=False).reason == "ok"
    assert auth.resume_session(
        session, cookie=cookie, now=row.expires_at + timedelta(seconds=1)
    ).reason in {"expired", "idle"}


def test_the_absolute_lifetime_ends_even_an_active_session(session: Session) -> None:
    user = _user(session)
    cookie = _signed_in(session, user)
    row = session.exec(select(AuthSession)).one()
    row.last_seen_at = row.expires_at - timedelta(seconds=10)
    session.add(row)
    session.commit()
    assert (
        auth.resume_session(
            session, cookie=cookie, now=row.expires_at + timedelta(seconds=1)
        ).reason
        == "expired"
    )


def test_the_idle_limit_can_be_set_in_seconds_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SESSION_IDLE_SECONDS", "7")
    assert auth.idle_limit() == timedelta(seconds=7)
    monkeypatch.setenv("CRM_SESSION_IDLE_SECONDS", "nonsense")
    assert auth.idle_limit() == timedelta(minutes=15)


def test_a_disabled_user_is_out_on_the_next_check(session: Session) -> None:
    admin = _user(session, email="boss@clinic.test", role=Role.ADMIN)
    user = _user(session)
    cookie = _signed_in(session, user)
    users.disable_user(session=session, actor=auth.actor_from(admin), user_id=user.id)  # type: ignore[arg-type]
    session.commit()
    assert auth.resume_session(session, cookie=cookie).reason == "ended"
    assert auth.active_actor(session, actor_id=user.id) is None  # type: ignore[arg-type]


def test_a_deactivated_account_ends_the_session_even_without_disable_user(session: Session) -> None:
    user = _user(session)
    cookie = _signed_in(session, user)
    user.active = False
    session.add(user)
    session.commit()
    assert auth.resume_session(session, cookie=cookie).reason == "disabled"
    assert session.exec(select(AuthSession)).one().ended_at is not None


def test_signing_out_ends_the_session_server_side(session: Session) -> None:
    user = _user(session)
    cookie = _signed_in(session, user)
    assert auth.end_session(session, cookie=cookie) is True
    session.commit()
    assert auth.end_session(session, cookie=cookie) is False
    assert auth.resume_session(session, cookie=cookie).reason == "ended"
    assert _actions(session)[-1] == "auth.logout"


def test_the_role_is_read_fresh_on_every_check(session: Session) -> None:
    user = _user(session)
    cookie = _signed_in(session, user)
    user.role = Role.MANAGER.value
    session.add(user)
    session.commit()
    check = auth.resume_session(session, cookie=cookie)
    assert check.actor is not None and check.actor.role == Role.MANAGER


def test_single_sign_on_matches_only_an_active_staff_account(session: Session) -> None:
    user = _user(session)
    assert auth.sso_actor(session, email="PAT@clinic.test").id == user.id  # type: ignore[union-attr]
    assert auth.sso_actor(session, email="stranger@clinic.test") is None
    assert auth.sso_actor(session, email=None) is None
    assert auth.sso_actor(session, email="not an email") is None
    user.active = False
    session.add(user)
    session.commit()
    assert auth.sso_actor(session, email="pat@clinic.test") is None


# --- The cookie routes -----------------------------------------------------------------------


@pytest.fixture
def routes_client(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr(db, "get_engine", lambda url=None: sqlite_engine)
    app = Starlette(
        routes=[
            Route(session_routes.SESSION_PATH, session_routes.start),
            Route(session_routes.LOGOUT_PATH, session_routes.logout),
        ]
    )
    return TestClient(app, follow_redirects=False)


def test_the_session_route_sets_a_signed_httponly_strict_cookie_once(
    routes_client: TestClient, sqlite_session: Session
) -> None:
    user = _user(sqlite_session)
    token = auth.start_session(sqlite_session, actor=auth.actor_from(user))
    sqlite_session.commit()
    ticket = auth.login_ticket(token)
    response = routes_client.get(session_routes.SESSION_PATH, params={"ticket": ticket})
    assert response.status_code == 303 and response.headers["location"] == "/"
    header = response.headers["set-cookie"]
    assert header.startswith(f"{auth.COOKIE_NAME}=")
    for attribute in ("HttpOnly", "Path=/", "SameSite=strict", "Max-Age="):
        assert attribute.lower() in header.lower()
    assert response.headers["cache-control"] == "no-store"
    cookie = response.cookies[auth.COOKIE_NAME]
    assert auth.resume_session(sqlite_session, cookie=cookie).reason == "ok"
    again = routes_client.get(session_routes.SESSION_PATH, params={"ticket": ticket})
    assert again.status_code == 303 and again.headers["location"] == "/login"
    assert "set-cookie" not in again.headers


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/lead?id=4", "/lead?id=4"),
        ("//evil.example", "/"),
        ("https://evil.example", "/"),
        ("/\\evil", "/"),
    ],
)
def test_the_session_route_only_redirects_within_the_site(
    routes_client: TestClient, sqlite_session: Session, target: str, expected: str
) -> None:
    user = _user(sqlite_session)
    token = auth.start_session(sqlite_session, actor=auth.actor_from(user))
    sqlite_session.commit()
    response = routes_client.get(
        session_routes.SESSION_PATH, params={"ticket": auth.login_ticket(token), "next": target}
    )
    assert response.headers["location"] == expected


def test_the_logout_route_ends_the_session_and_clears_the_cookie(
    routes_client: TestClient, sqlite_session: Session
) -> None:
    user = _user(sqlite_session)
    cookie = _signed_in(sqlite_session, user)
    routes_client.cookies.set(auth.COOKIE_NAME, cookie)
    response = routes_client.get(session_routes.LOGOUT_PATH)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert (
        'crm_session=""' in response.headers["set-cookie"]
        and "Max-Age=0" in response.headers["set-cookie"]
    )
    sqlite_session.expire_all()
    assert auth.resume_session(sqlite_session, cookie=cookie).reason == "ended"


# --- Passwords never in clear ----------------------------------------------------------------


def test_passwords_are_never_stored_or_logged_in_clear(
    sqlite_engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    typo = "a password typed into the email box 99"
    with Session(sqlite_engine) as s:
        admin = users.create_user(
            session=s, email="boss@clinic.test", password=PASSWORD, role=Role.ADMIN
        )
        s.commit()
        auth.authenticate(s, email="boss@clinic.test", password=PASSWORD)
        s.commit()
        for email, password in [("boss@clinic.test", "wrong password 123"), (typo, PASSWORD)]:
            with pytest.raises(auth.LoginFailed):
                auth.authenticate(
                    s, email=email, password=password, now=utcnow() + timedelta(minutes=1)
                )
            s.commit()
        users.reset_password(
            session=s,
            actor=auth.actor_from(admin),
            user_id=admin.id,  # type: ignore[arg-type]
            password="a brand new secret phrase",
        )
        s.commit()
    sqlite_engine.dispose()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("crm.sqlite3*"))
    for secret in (PASSWORD, "wrong password 123", typo, "a brand new secret phrase"):
        assert secret.encode() not in raw
        assert secret not in caplog.text
    assert b"$argon2id$" in raw


def test_old_login_attempts_are_pruned_on_a_successful_sign_in(session: Session) -> None:
    user = _user(session)
    long_ago = utcnow() - auth.ATTEMPTS_KEPT - timedelta(days=1)
    _fail(session, user.email, now=long_ago)
    _fail(session, "other@clinic.test", now=utcnow() - timedelta(days=1))
    auth.authenticate(session, email=user.email, password=PASSWORD)
    session.commit()
    kept = session.exec(select(LoginAttempt)).all()
    assert len(kept) == 2 and all(a.at > long_ago for a in kept)
