"""Staff accounts: create (including the first administrator), change, disable, reset passwords.

Services flush but never commit: the caller's unit of work commits (ui.context.session and
crm.db.session_scope do). Every change is audited with its before and after values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func
from sqlmodel import Session, col, select

from crm import audit, auth
from crm.access import Actor, Perm, require
from crm.enums import Role
from crm.errors import CRMError, NotFound
from crm.models import User

# The command line acts with full rights; it has no account, so it is audited with no actor id.
SHELL = Actor(id=0, email="", name="command line", role=Role.ADMIN)


class AccountError(CRMError):
    """The account change is not allowed (duplicate email, last administrator, ...)."""


# One staff account as pages and the CLI show it (plain data, no password hash).
@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    role: Role
    is_provider: bool
    active: bool
    away: bool
    created_at: datetime
    last_login_at: datetime | None
    locked_until: datetime | None
    has_password: bool


def _row(user: User) -> UserRow:
    return UserRow(
        id=user.id or 0,
        email=user.email,
        name=user.name,
        role=Role(user.role),
        is_provider=user.is_provider,
        active=user.active,
        away=user.away,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        locked_until=user.locked_until,
        has_password=user.password_hash is not None,
    )


def _actor_id(actor: Actor | None) -> int | None:
    return actor.id if actor is not None and actor.id else None


def normalize_email(email: str) -> str:
    """A staff email, validated and lower-cased (raises AccountError with the reason)."""
    try:
        return validate_email(
            email.strip(), check_deliverability=False, test_environment=True
        ).normalized.lower()
    except EmailNotValidError as err:
        raise AccountError(f"The email address is not valid: {err}") from None


def has_users(session: Session) -> bool:
    """True once any account exists (before that the app only offers the first-admin screen)."""
    return session.exec(select(User.id).limit(1)).first() is not None


def create_user(
    *,
    session: Session,
    email: str,
    password: str | None,
    role: Role,
    name: str = "",
    is_provider: bool = False,
    actor_id: int | None = None,
) -> User:
    """Add a staff account (password None: single sign-on only); flushes, doesn't commit."""
    address = normalize_email(email)
    name = name.strip()
    if len(name) > 120:
        raise AccountError("The name must be at most 120 characters long.")
    role = Role(role)
    if session.exec(select(User.id).where(func.lower(User.email) == address)).first() is not None:
        raise AccountError(f"An account with the email {address} already exists.")
    if password is not None:
        auth.check_password_policy(password, email=address, name=name)
    user = User(
        email=address,
        name=name,
        role=role.value,
        is_provider=is_provider or role == Role.PROVIDER,
        password_hash=auth.hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor_id=actor_id,
        action="user.create",
        entity="user",
        entity_id=user.id,
        details={
            "email": address,
            "name": name,
            "role": role.value,
            "is_provider": user.is_provider,
        },
    )
    return user


def create_first_admin(
    *, session: Session, email: str, name: str, password: str, confirm: str
) -> User:
    """The first administrator of a new installation; refused once any account exists."""
    if has_users(session):
        raise AccountError("An administrator already exists. Please sign in.")
    if password != confirm:
        raise AccountError("The two passwords are not the same.")
    user = create_user(session=session, email=email, password=password, role=Role.ADMIN, name=name)
    audit.record(
        session,
        actor_id=user.id,
        actor_email=user.email,
        action="user.first_admin",
        entity="user",
        entity_id=user.id,
    )
    return user


def add_user(
    *,
    session: Session,
    actor: Actor,
    email: str,
    password: str | None,
    role: Role,
    name: str = "",
    is_provider: bool = False,
) -> User:
    """An administrator adds a staff account."""
    require(actor, Perm.USERS)
    return create_user(
        session=session,
        email=email,
        password=password,
        role=role,
        name=name,
        is_provider=is_provider,
        actor_id=_actor_id(actor),
    )


def list_users(*, session: Session, actor: Actor, include_disabled: bool = True) -> list[UserRow]:
    """Every staff account, active first, then by name."""
    require(actor, Perm.USERS)
    query = select(User).order_by(col(User.active).desc(), User.email)
    if not include_disabled:
        query = query.where(col(User.active).is_(True))
    return [_row(u) for u in session.exec(query).all()]


def get_user(*, session: Session, actor: Actor, user_id: int) -> UserRow:
    require(actor, Perm.USERS)
    return _row(_load(session, user_id))


def find_user(*, session: Session, actor: Actor, email: str) -> UserRow:
    """An account by email (the command line names people by email)."""
    require(actor, Perm.USERS)
    user = session.exec(select(User).where(func.lower(User.email) == email.strip().lower())).first()
    if user is None:
        raise NotFound(f"No account with the email {email.strip()}.")
    return _row(user)


def _load(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.")
    return user


def _other_active_admins(session: Session, user_id: int) -> int:
    return int(
        session.exec(
            select(func.count())
            .select_from(User)
            .where(
                User.role == Role.ADMIN.value,
                col(User.active).is_(True),
                User.id != user_id,
            )
        ).one()
    )


def update_user(
    *,
    session: Session,
    actor: Actor,
    user_id: int,
    name: str | None = None,
    role: Role | None = None,
    is_provider: bool | None = None,
    away: bool | None = None,
) -> UserRow:
    """Change an account's name, role, provider flag or away flag (audited before/after)."""
    require(actor, Perm.USERS)
    user = _load(session, user_id)
    changes: dict[str, object] = {}
    if name is not None:
        if len(name.strip()) > 120:
            raise AccountError("The name must be at most 120 characters long.")
        changes["name"] = name.strip()
    if role is not None:
        role = Role(role)
        if (
            user.role == Role.ADMIN.value
            and role != Role.ADMIN
            and user.active
            and not _other_active_admins(session, user_id)
        ):
            raise AccountError(
                "This is the last active administrator; make someone else an administrator first."
            )
        changes["role"] = role.value
    if is_provider is not None:
        changes["is_provider"] = bool(is_provider)
    if away is not None:
        changes["away"] = bool(away)
    before = {k: getattr(user, k) for k in changes}
    changed = audit.diff(before, changes)
    if changed:
        for key, (_old, new) in changed.items():
            setattr(user, key, new)
        session.add(user)
        audit.record(
            session,
            actor_id=_actor_id(actor),
            action="user.update",
            entity="user",
            entity_id=user.id,
            details={"email": user.email, **changed},
        )
        session.flush()
    return _row(user)


def set_away(*, session: Session, actor: Actor, away: bool) -> None:
    """A staff member marks themself away (no new leads assigned) or back."""
    user = _load(session, actor.id)
    if user.away != away:
        audit.record(
            session,
            actor_id=actor.id,
            action="user.update",
            entity="user",
            entity_id=user.id,
            details={"email": user.email, "away": [user.away, away]},
        )
        user.away = away
        session.add(user)
        session.flush()


def set_active(*, session: Session, actor: Actor, user_id: int, active: bool) -> UserRow:
    """Disable (ending every open session at once) or re-enable an account."""
    require(actor, Perm.USERS)
    user = _load(session, user_id)
    if user.active == active:
        return _row(user)
    if not active:
        if actor.id == user.id:
            raise AccountError("You can't disable your own account.")
        if user.role == Role.ADMIN.value and not _other_active_admins(session, user_id):
            raise AccountError("This is the last active administrator; it can't be disabled.")
    user.active = active
    session.add(user)
    audit.record(
        session,
        actor_id=_actor_id(actor),
        action="user.disable" if not active else "user.enable",
        entity="user",
        entity_id=user.id,
        details={"email": user.email, "active": [not active, active]},
    )
    if not active:
        auth.end_user_sessions(session, user_id=user_id, reason="account disabled")
    session.flush()
    return _row(user)


def disable_user(*, session: Session, actor: Actor, user_id: int) -> UserRow:
    return set_active(session=session, actor=actor, user_id=user_id, active=False)


def reset_password(*, session: Session, actor: Actor, user_id: int, password: str) -> UserRow:
    """Set a new password (policy checked), clear any lockout and end the user's sessions."""
    require(actor, Perm.USERS)
    user = _load(session, user_id)
    auth.check_password_policy(password, email=user.email, name=user.name)
    user.password_hash = auth.hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    session.add(user)
    audit.record(
        session,
        actor_id=_actor_id(actor),
        action="user.password_reset",
        entity="user",
        entity_id=user.id,
        details={"email": user.email},
    )
    auth.end_user_sessions(session, user_id=user_id, reason="password reset")
    session.flush()
    return _row(user)


def change_own_password(
    *, session: Session, actor: Actor, current: str, new: str, confirm: str
) -> None:
    """A staff member changes their own password (the current one is checked first)."""
    user = _load(session, actor.id)
    if not auth.verify_password(user.password_hash, current):
        raise AccountError("The current password is not right.")
    if new != confirm:
        raise AccountError("The two new passwords are not the same.")
    auth.check_password_policy(new, email=user.email, name=user.name)
    user.password_hash = auth.hash_password(new)
    session.add(user)
    audit.record(
        session, actor_id=actor.id, action="user.password_change", entity="user", entity_id=user.id
    )
    session.flush()
