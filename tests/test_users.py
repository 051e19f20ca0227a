"""Staff accounts: creation rules, the first administrator, changes, disabling, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from crm import auth, users
from crm.access import Actor
from crm.cli import main as cli
from crm.enums import Role
from crm.errors import NotFound, PermissionDenied
from crm.models import AuditEvent, AuthSession, User
from crm.settings import get_settings

PASSWORD = "correct horse battery 42"


@pytest.fixture(autouse=True)
def _quick_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for speed (test_auth checks the real ones)."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


def _admin(session: Session, email: str = "boss@clinic.test") -> Actor:
    user = users.create_user(
        session=session, email=email, password=PASSWORD, role=Role.ADMIN, name="Boss"
    )
    session.commit()
    return auth.actor_from(user)


def _events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.exec(select(AuditEvent).where(AuditEvent.action == action)).all())


def test_create_user_normalizes_the_email_hashes_the_password_and_audits(session: Session) -> None:
    admin = _admin(session)
    user = users.create_user(
        session=session,
        email="  Pat.Jones@Clinic.TEST ",
        password=PASSWORD,
        role=Role.PROVIDER,
        name=" Pat Jones ",
        actor_id=admin.id,
    )
    session.commit()
    assert (user.email, user.name, user.role, user.is_provider) == (
        "pat.jones@clinic.test",
        "Pat Jones",
        "provider",
        True,
    )
    assert user.password_hash and user.password_hash.startswith("$argon2id$")
    event = [e for e in _events(session, "user.create") if e.entity_id == str(user.id)][0]
    assert event.actor_id == admin.id
    assert json.loads(event.details) == {
        "email": "pat.jones@clinic.test",
        "name": "Pat Jones",
        "role": "provider",
        "is_provider": True,
    }


def test_an_email_is_one_account_whatever_its_case(session: Session) -> None:
    _admin(session)
    with pytest.raises(users.AccountError, match="already exists"):
        users.create_user(
            session=session, email="BOSS@clinic.test", password=PASSWORD, role=Role.CARE_TEAM
        )


@pytest.mark.parametrize("email", ["", "not-an-email", "two@@clinic.test", "pat@"])
def test_a_bad_email_is_refused(session: Session, email: str) -> None:
    with pytest.raises(users.AccountError, match="not valid"):
        users.create_user(session=session, email=email, password=PASSWORD, role=Role.CARE_TEAM)


def test_the_password_policy_applies_and_none_means_single_sign_on_only(session: Session) -> None:
    with pytest.raises(auth.WeakPassword):
        users.create_user(
            session=session, email="pat@clinic.test", password="short", role=Role.CARE_TEAM
        )
    sso_only = users.create_user(
        session=session, email="sso@clinic.test", password=None, role=Role.CARE_TEAM
    )
    session.commit()
    assert sso_only.password_hash is None
    with pytest.raises(auth.LoginFailed):
        auth.authenticate(session, email="sso@clinic.test", password="")


def test_the_first_administrator_only_while_no_account_exists(session: Session) -> None:
    assert not users.has_users(session)
    with pytest.raises(users.AccountError, match="not the same"):
        users.create_first_admin(
            session=session,
            email="boss@clinic.test",
            name="Boss",
            password=PASSWORD,
            confirm=PASSWORD + "x",
        )
    admin = users.create_first_admin(
        session=session, email="boss@clinic.test", name="Boss", password=PASSWORD, confirm=PASSWORD
    )
    session.commit()
    assert admin.role == Role.ADMIN.value and users.has_users(session)
    assert _events(session, "user.first_admin")[0].actor_id == admin.id
    with pytest.raises(users.AccountError, match="already exists"):
        users.create_first_admin(
            session=session,
            email="other@clinic.test",
            name="X",
            password=PASSWORD,
            confirm=PASSWORD,
        )


@pytest.mark.parametrize("role", [Role.CARE_TEAM, Role.PROVIDER, Role.MANAGER])
def test_only_an_administrator_manages_accounts(session: Session, role: Role) -> None:
    admin = _admin(session)
    other = users.create_user(session=session, email="x@clinic.test", password=PASSWORD, role=role)
    session.commit()
    actor = auth.actor_from(other)
    calls = [
        lambda: users.add_user(
            session=session, actor=actor, email="y@clinic.test", password=PASSWORD, role=Role.ADMIN
        ),
        lambda: users.list_users(session=session, actor=actor),
        lambda: users.update_user(session=session, actor=actor, user_id=actor.id, role=Role.ADMIN),
        lambda: users.disable_user(session=session, actor=actor, user_id=admin.id),
        lambda: users.reset_password(
            session=session, actor=actor, user_id=admin.id, password=PASSWORD + "!"
        ),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()


def test_changes_are_audited_with_before_and_after(session: Session) -> None:
    admin = _admin(session)
    pat = users.add_user(
        session=session,
        actor=admin,
        email="pat@clinic.test",
        password=PASSWORD,
        role=Role.CARE_TEAM,
        name="Pat",
    )
    session.commit()
    row = users.update_user(
        session=session,
        actor=admin,
        user_id=pat.id,
        name="Pat Jones",  # type: ignore[arg-type]
        role=Role.MANAGER,
        is_provider=True,
        away=False,
    )
    session.commit()
    assert (row.name, row.role, row.is_provider) == ("Pat Jones", Role.MANAGER, True)
    event = _events(session, "user.update")[0]
    assert json.loads(event.details) == {
        "email": "pat@clinic.test",
        "name": ["Pat", "Pat Jones"],
        "role": ["care_team", "manager"],
        "is_provider": [False, True],
    }
    users.update_user(session=session, actor=admin, user_id=pat.id, name="Pat Jones")  # type: ignore[arg-type]
    assert len(_events(session, "user.update")) == 1  # no change, no event


def test_the_last_active_administrator_cannot_be_demoted_or_disabled(session: Session) -> None:
    admin = _admin(session)
    with pytest.raises(users.AccountError, match="last active administrator"):
        users.update_user(session=session, actor=admin, user_id=admin.id, role=Role.MANAGER)
    with pytest.raises(users.AccountError):
        users.disable_user(session=session, actor=users.SHELL, user_id=admin.id)
    second = users.add_user(
        session=session, actor=admin, email="two@clinic.test", password=PASSWORD, role=Role.ADMIN
    )
    session.commit()
    with pytest.raises(users.AccountError, match="your own account"):
        users.disable_user(session=session, actor=admin, user_id=admin.id)
    users.disable_user(session=session, actor=admin, user_id=second.id)  # type: ignore[arg-type]
    session.commit()


def test_disabling_ends_every_open_session_and_enabling_lets_them_back(session: Session) -> None:
    admin = _admin(session)
    pat = users.add_user(
        session=session,
        actor=admin,
        email="pat@clinic.test",
        password=PASSWORD,
        role=Role.CARE_TEAM,
    )
    session.commit()
    for _ in range(2):
        auth.start_session(session, actor=auth.actor_from(pat))
    session.commit()
    row = users.disable_user(session=session, actor=admin, user_id=pat.id)  # type: ignore[arg-type]
    session.commit()
    assert not row.active
    sessions = session.exec(select(AuthSession).where(AuthSession.user_id == pat.id)).all()
    assert len(sessions) == 2 and all(s.ended_at is not None for s in sessions)
    assert [json.loads(e.details)["reason"] for e in _events(session, "auth.logout")] == [
        "account disabled"
    ] * 2
    assert _events(session, "user.disable")[0].actor_id == admin.id
    with pytest.raises(auth.LoginFailed):
        auth.authenticate(session, email="pat@clinic.test", password=PASSWORD)
    session.commit()
    users.set_active(session=session, actor=admin, user_id=pat.id, active=True)  # type: ignore[arg-type]
    session.commit()
    assert auth.authenticate(session, email="pat@clinic.test", password=PASSWORD).id == pat.id


def test_a_password_reset_ends_sessions_and_clears_a_lockout(session: Session) -> None:
    admin = _admin(session)
    pat = users.add_user(
        session=session,
        actor=admin,
        email="pat@clinic.test",
        password=PASSWORD,
        role=Role.CARE_TEAM,
    )
    pat.locked_until = pat.created_at
    pat.failed_logins = 5
    session.add(pat)
    auth.start_session(session, actor=auth.actor_from(pat))
    session.commit()
    users.reset_password(
        session=session, actor=admin, user_id=pat.id, password="a new long passphrase"
    )  # type: ignore[arg-type]
    session.commit()
    session.refresh(pat)
    assert (pat.locked_until, pat.failed_logins) == (None, 0)
    assert session.exec(select(AuthSession)).one().ended_at is not None
    assert auth.verify_password(pat.password_hash, "a new long passphrase")
    assert "a new long passphrase" not in json.dumps(
        [e.details for e in _events(session, "user.password_reset")]
    )


def test_people_change_their_own_password_and_away_flag(session: Session) -> None:
    admin = _admin(session)
    with pytest.raises(users.AccountError, match="current password"):
        users.change_own_password(
            session=session, actor=admin, current="wrong one", new="x" * 12, confirm="x" * 12
        )
    users.change_own_password(
        session=session,
        actor=admin,
        current=PASSWORD,
        new="another fine phrase",
        confirm="another fine phrase",
    )
    users.set_away(session=session, actor=admin, away=True)
    session.commit()
    user = session.get(User, admin.id)
    assert (
        user is not None
        and user.away
        and auth.verify_password(user.password_hash, "another fine phrase")
    )


def test_list_users_gives_plain_rows_without_hashes(session: Session) -> None:
    admin = _admin(session)
    rows = users.list_users(session=session, actor=admin)
    assert [r.email for r in rows] == ["boss@clinic.test"]
    assert not hasattr(rows[0], "password_hash") and rows[0].has_password
    with pytest.raises(NotFound):
        users.find_user(session=session, actor=admin, email="nobody@clinic.test")


# --- The command line ------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_the_cli_adds_lists_disables_and_resets_accounts(cli_db: str) -> None:
    runner = CliRunner()
    env = {"CRM_PASSWORD": PASSWORD}
    result = runner.invoke(
        cli, ["user", "add", "Boss@clinic.test", "--role", "admin", "--name", "Boss"], env=env
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        cli, ["user", "add", "pat@clinic.test", "--role", "provider", "--provider"], env=env
    )
    assert result.exit_code == 0, result.output
    listing = runner.invoke(cli, ["user", "list"]).output
    assert "boss@clinic.test\tBoss\tadmin\tactive" in listing and "pat@clinic.test" in listing
    assert PASSWORD not in listing
    assert runner.invoke(cli, ["user", "disable", "pat@clinic.test"]).exit_code == 0
    assert "disabled" in runner.invoke(cli, ["user", "list"]).output
    result = runner.invoke(
        cli, ["user", "reset-password", "pat@clinic.test"], env={"CRM_PASSWORD": "tiny"}
    )
    assert result.exit_code != 0 and "at least 12" in result.output
    result = runner.invoke(
        cli,
        ["user", "reset-password", "pat@clinic.test"],
        input="a replaced passphrase\na replaced passphrase\n",
        env={"CRM_PASSWORD": ""},
    )
    assert result.exit_code == 0 and "a replaced passphrase" not in result.output
    result = runner.invoke(cli, ["user", "disable", "boss@clinic.test"])
    assert result.exit_code != 0 and "last active administrator" in result.output
    assert runner.invoke(cli, ["user", "disable", "ghost@clinic.test"]).exit_code != 0


def test_the_cli_asks_for_the_password_twice_without_echo(cli_db: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["user", "add", "pat@clinic.test", "--role", "care_team"],
        input="first try phrase!\nsecond try phrase\nsame phrase twice\nsame phrase twice\n",
        env={"CRM_PASSWORD": ""},
    )
    assert result.exit_code == 0, result.output
    assert "do not match" in result.output.lower() and "same phrase twice" not in result.output
