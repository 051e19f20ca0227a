"""The database and clinic settings as the pages reach them, plus the signed-in actor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy import Engine
from sqlmodel import Session

from crm import clinic_settings, db
from crm.access import Actor
from crm.clinic_settings import ClinicConfig

ACTOR_KEY = "auth_actor"


@st.cache_resource(show_spinner=False)
def engine() -> Engine:
    """The process's engine, schema upgraded and defaults seeded on first use."""
    return db.ensure_ready(db.get_engine())


@contextmanager
def session() -> Iterator[Session]:
    """A unit of work: commits on success, rolls back on error."""
    with db.session_scope(engine()) as s:
        yield s


def clinic() -> ClinicConfig:
    """Clinic settings, read fresh so an admin's change applies on the next rerun."""
    with session() as s:
        return clinic_settings.load(s)


def actor() -> Actor | None:
    """The signed-in staff member, or None for an anonymous visitor."""
    value = st.session_state.get(ACTOR_KEY)
    return value if isinstance(value, Actor) else None
