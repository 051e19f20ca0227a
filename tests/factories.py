"""Small factories for tests: make_user, make_contact, make_lead."""

from __future__ import annotations

import itertools
from datetime import datetime

from sqlmodel import Session

from crm.access import Actor
from crm.enums import Role, Source, Stage
from crm.models import Contact, Lead, User
from crm.pipeline import apply_stage
from crm.timeutil import utcnow

_seq = itertools.count(1)


def make_user(
    session: Session, *, role: Role = Role.CARE_TEAM, is_provider: bool = False, name: str = "", email: str | None = None
) -> User:
    n = next(_seq)
    user = User(
        email=email or f"staff{n}@clinic.test",
        name=name or f"Staff {n}",
        role=role.value,
        is_provider=is_provider or role == Role.PROVIDER,
    )
    session.add(user)
    session.commit()
    return user


def actor_of(user: User) -> Actor:
    return Actor(id=user.id or 0, email=user.email, name=user.name, role=Role(user.role), is_provider=user.is_provider)


def make_contact(session: Session, **fields: object) -> Contact:
    n = next(_seq)
    values: dict[str, object] = {
        "first_name": "Pat",
        "last_name": f"Tester{n}",
        "email": f"pat{n}@example.com",
        "email_key": f"pat{n}@example.com",
        "phone": f"+1571555{n % 10000:04d}",
        "zip_code": "20147",
        "consent": True,
    }
    values.update(fields)
    values["name_key"] = f"{values['first_name']} {values['last_name']}".lower()
    contact = Contact(**values)  # type: ignore[arg-type]
    session.add(contact)
    session.commit()
    return contact


def make_lead(
    session: Session,
    *,
    stage: Stage = Stage.NEW,
    created_at: datetime | None = None,
    contact: Contact | None = None,
    **fields: object,
) -> Lead:
    contact = contact or make_contact(session)
    created = created_at or utcnow()
    n = next(_seq)
    lead = Lead(
        reference=f"T{n:07d}",
        contact_id=contact.id,  # type: ignore[arg-type]
        source=Source.WEB_FORM.value,
        stage=Stage.NEW.value,
        created_at=created,
        updated_at=created,
        stage_changed_at=created,
        **fields,  # type: ignore[arg-type]
    )
    if stage != Stage.NEW:
        apply_stage(lead, stage, created)
    session.add(lead)
    session.commit()
    return lead
