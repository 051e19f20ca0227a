"""Who may do what: the services refuse by role on their own, and the router hides pages.

Service-level checks call the real crm functions (independent of any page): a page that
forgot a check still cannot reach the data. The AppTest half proves every staff page is
unreachable for an anonymous visitor and for each role that should not see it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from crm import (
    access,
    audit_view,
    clinic_admin,
    export,
    leads,
    metrics,
    scheduling,
    screening,
    triage,
    users,
)
from crm.access import Actor, Perm
from crm.enums import Role
from crm.errors import CRMError, PermissionDenied
from tests.factories import actor_of, make_lead, make_user

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
ROLES: list[Role | None] = [None, Role.CARE_TEAM, Role.PROVIDER, Role.MANAGER, Role.ADMIN]

# What each role may do, spelled out independently of crm.access (the minimum necessary).
EXPECTED: dict[Role, set[str]] = {
    Role.CARE_TEAM: {
        Perm.LEADS_READ,
        Perm.LEADS_WRITE,
        Perm.PHONE_INTAKE,
        Perm.CONSULTS,
        Perm.SCREENING_ANSWER,
    },
    Role.PROVIDER: {
        Perm.LEADS_READ,
        Perm.LEADS_WRITE,
        Perm.PHONE_INTAKE,
        Perm.CONSULTS,
        Perm.SCREENING_ANSWER,
        Perm.SCREENING_DECIDE,
    },
    Role.MANAGER: {
        Perm.LEADS_READ,
        Perm.LEADS_WRITE,
        Perm.PHONE_INTAKE,
        Perm.CONSULTS,
        Perm.SCREENING_ANSWER,
        Perm.DASHBOARD,
        Perm.EXPORT,
        Perm.IMPORT,
    },
    Role.ADMIN: {
        Perm.LEADS_READ,
        Perm.LEADS_WRITE,
        Perm.PHONE_INTAKE,
        Perm.CONSULTS,
        Perm.SCREENING_ANSWER,
        Perm.DASHBOARD,
        Perm.EXPORT,
        Perm.IMPORT,
        Perm.USERS,
        Perm.SETTINGS,
        Perm.API_KEYS,
        Perm.AUDIT,
    },
}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_has_exactly_its_permissions(role: Role) -> None:
    actor = Actor(
        id=1, email="x@clinic.test", name="X", role=role, is_provider=role == Role.PROVIDER
    )
    assert set(access.permissions(actor)) == EXPECTED[role]


def test_the_provider_flag_adds_only_the_screening_decision() -> None:
    manager = Actor(id=1, email="m@clinic.test", name="M", role=Role.MANAGER, is_provider=True)
    assert set(access.permissions(manager)) == EXPECTED[Role.MANAGER] | {Perm.SCREENING_DECIDE}


def test_an_anonymous_visitor_may_do_nothing() -> None:
    assert access.permissions(None) == frozenset()
    with pytest.raises(PermissionDenied, match="sign in"):
        access.require(None, Perm.LEADS_READ)


# --- Services, role by role ------------------------------------------------------------------

Call = Callable[[Session, Actor | None, int], Any]

# (what, the permission it needs, a call of the real service). `lead_id` is an existing lead.
SERVICES: list[tuple[str, str, Call]] = [
    (
        "read the queue",
        Perm.LEADS_READ,
        lambda s, a, lead: triage.queue_page(session=s, actor=a, filters=triage.QueueFilters()),
    ),  # type: ignore[arg-type]
    (
        "open a lead",
        Perm.LEADS_READ,
        lambda s, a, lead: leads.get_lead(session=s, actor=a, lead_id=lead, record_view=True),
    ),  # type: ignore[arg-type]
    (
        "note on a lead",
        Perm.LEADS_WRITE,
        lambda s, a, lead: leads.add_note(session=s, actor=a, lead_id=lead, body="called back"),
    ),  # type: ignore[arg-type]
    (
        "read the screening checklist",
        Perm.LEADS_READ,
        lambda s, a, lead: screening.get_checklist(session=s, actor=a, lead_id=lead),
    ),  # type: ignore[arg-type]
    (
        "make the screening decision",
        Perm.SCREENING_DECIDE,
        lambda s, a, lead: screening.decide(session=s, actor=a, lead_id=lead, outcome="cleared"),
    ),  # type: ignore[arg-type]
    ("view the dashboard", Perm.DASHBOARD, lambda s, a, lead: metrics.authorize(a)),
    (
        "export a CSV",
        Perm.EXPORT,
        lambda s, a, lead: export.record_download(
            session=s, actor=a, what="leads", rows=1, filters={}
        ),
    ),  # type: ignore[arg-type]
    (
        "read the audit trail",
        Perm.AUDIT,
        lambda s, a, lead: audit_view.page(session=s, actor=a, filters=audit_view.AuditFilter()),
    ),  # type: ignore[arg-type]
    (
        "export the audit trail",
        Perm.AUDIT,
        lambda s, a, lead: audit_view.export_csv(
            session=s, actor=a, filters=audit_view.AuditFilter()
        ),
    ),  # type: ignore[arg-type]
    ("list staff accounts", Perm.USERS, lambda s, a, lead: users.list_users(session=s, actor=a)),  # type: ignore[arg-type]
    (
        "add a staff account",
        Perm.USERS,
        lambda s, a, lead: users.add_user(
            session=s,
            actor=a,
            email="new@clinic.test",  # type: ignore[arg-type]
            password="correct horse battery 42",
            role=Role.ADMIN,
        ),
    ),
    (
        "read clinic settings",
        Perm.SETTINGS,
        lambda s, a, lead: clinic_admin.view_settings(session=s, actor=a),
    ),  # type: ignore[arg-type]
    (
        "change clinic settings",
        Perm.SETTINGS,
        lambda s, a, lead: clinic_admin.update_settings(
            session=s, actor=a, changes={"first_response_minutes": 10}
        ),
    ),  # type: ignore[arg-type]
    (
        "change a service area",
        Perm.SETTINGS,
        lambda s, a, lead: clinic_admin.save_area(
            session=s,
            actor=a,
            area_id=None,
            name="Sterling",  # type: ignore[arg-type]
            counties=[],
            cities=["Sterling"],
            zip_codes=[],
        ),
    ),
    (
        "set a provider's hours",
        Perm.SETTINGS,
        lambda s, a, lead: scheduling.set_availability(
            session=s,
            actor=a,
            provider_id=_PROVIDER_ID[0],  # type: ignore[arg-type]
            windows=[(0, time(9), time(12))],
        ),
    ),
    (
        "create an API key",
        Perm.API_KEYS,
        lambda s, a, lead: clinic_admin.create_api_key(
            session=s, actor=a, name="site", allowed_origins=[]
        ),
    ),  # type: ignore[arg-type]
]
_PROVIDER_ID: list[int] = [0]


def _outcome(call: Call, session: Session, actor: Actor | None, lead_id: int) -> str:
    try:
        call(session, actor, lead_id)
    except PermissionDenied:
        return "denied"
    except CRMError:
        return "allowed"  # got past the permission check to a domain rule
    finally:
        session.rollback()
    return "allowed"


@pytest.mark.parametrize("role", ROLES, ids=lambda r: "anonymous" if r is None else r.value)
def test_services_refuse_what_the_role_may_not_do(
    sqlite_session: Session, role: Role | None
) -> None:
    provider = make_user(sqlite_session, role=Role.PROVIDER, name="Dr Other")
    _PROVIDER_ID[0] = provider.id or 0
    lead = make_lead(sqlite_session)
    actor = None if role is None else actor_of(make_user(sqlite_session, role=role))
    allowed = set() if role is None else EXPECTED[role]
    results = {
        what: _outcome(call, sqlite_session, actor, lead.id or 0) for what, _perm, call in SERVICES
    }
    expected = {what: "allowed" if perm in allowed else "denied" for what, perm, _call in SERVICES}
    assert results == expected


def test_a_provider_sets_their_own_hours_but_not_anothers(sqlite_session: Session) -> None:
    me = make_user(sqlite_session, role=Role.PROVIDER)
    other = make_user(sqlite_session, role=Role.PROVIDER)
    scheduling.set_availability(
        session=sqlite_session,
        actor=actor_of(me),
        provider_id=me.id or 0,
        windows=[(1, time(9), time(11))],
    )
    with pytest.raises(PermissionDenied):
        scheduling.set_availability(
            session=sqlite_session,
            actor=actor_of(me),
            provider_id=other.id or 0,
            windows=[(1, time(9), time(11))],
        )


def test_the_care_team_can_work_a_lead_on_both_backends(session: Session) -> None:
    care = actor_of(make_user(session, role=Role.CARE_TEAM))
    lead = make_lead(session)
    leads.get_lead(session=session, actor=care, lead_id=lead.id or 0, record_view=True)
    leads.add_note(session=session, actor=care, lead_id=lead.id or 0, body="left a voicemail")
    session.commit()
    with pytest.raises(PermissionDenied):
        export.record_download(session=session, actor=care, what="leads", rows=1, filters={})
    with pytest.raises(PermissionDenied):
        audit_view.count(session=session, actor=care, filters=audit_view.AuditFilter())


# --- Pages, role by role (AppTest) -----------------------------------------------------------


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    from crm.settings import get_settings

    get_settings.cache_clear()
    st.cache_resource.clear()  # ui.context caches the engine of whichever test ran first
    yield url
    get_settings.cache_clear()
    st.cache_resource.clear()


@pytest.fixture
def router_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the router on every AppTest run, as the real server does.

    AppTest resets Streamlit's pages/ folder detection before each run, so from the second run
    on it would execute pages/x.py directly (old-style multipage app) and skip the router; the
    server sets the detection off at start (streamlit_app.py). Here the fallback runs the router.
    """
    from streamlit.runtime.scriptrunner import script_runner

    def run_router(path: str) -> None:
        exec(
            compile(Path(path).read_text(), path, "exec"),
            {"__name__": "__main__", "__file__": path},
        )  # noqa: S102

    monkeypatch.setattr(script_runner, "_mpa_v1", run_router)


def _app(url: str, role: Role | None, *, with_admin: bool = True) -> AppTest:
    from crm import db

    actor = None
    with db.session_scope(db.ensure_ready(db.get_engine(url))) as s:
        if with_admin:
            make_user(s, role=Role.ADMIN, email="boss@clinic.test")
        if role is not None:
            actor = actor_of(make_user(s, role=role))
    at = AppTest.from_file(APP, default_timeout=60)
    if actor is not None:
        at.session_state["auth_actor"] = actor
    return at.run()


STAFF = [row[0] for row in access.STAFF_PAGES]


@pytest.mark.parametrize("role", ROLES, ids=lambda r: "anonymous" if r is None else r.value)
def test_each_role_reaches_only_its_pages(app_db: str, role: Role | None) -> None:
    at = _app(app_db, role)
    assert not at.exception
    allowed = (
        set()
        if role is None
        else {p for p, _t, _i, perm in access.STAFF_PAGES if perm in EXPECTED[role]}
    )
    for path in STAFF:
        if path in allowed:
            at.switch_page(path)  # registered: no error
        else:
            with pytest.raises(ValueError, match="Could not find a navigation page"):
                at.switch_page(path)
    at.switch_page(access.PUBLIC_FORM_PAGE)  # everyone can reach the public form
    if role is None:
        at.switch_page(access.LOGIN_PAGE)


def test_the_router_lists_every_staff_page_file() -> None:
    """Near release every page in the registry exists (the router no longer filters missing files)."""
    root = Path(APP).parent
    missing = [p for p in STAFF if not (root / p).exists()]
    assert missing == [], f"page files still missing: {missing}"


def test_a_new_installation_offers_only_the_first_administrator_screen(app_db: str) -> None:
    at = _app(app_db, None, with_admin=False)
    assert [t.value for t in at.title] == ["Create the first administrator"]
    for path in [*STAFF, access.PUBLIC_FORM_PAGE]:
        with pytest.raises(ValueError):
            at.switch_page(path)


@pytest.mark.parametrize(
    "path", ["pages/admin_users.py", "pages/admin_settings.py", "pages/admin_audit.py"]
)
def test_the_admin_pages_render_for_an_administrator(app_db: str, path: str) -> None:
    at = _app(app_db, Role.ADMIN)
    at.switch_page(path).run()
    assert not at.exception


@pytest.mark.usefixtures("router_every_run")
def test_a_disabled_user_is_signed_out_on_the_next_action(app_db: str) -> None:
    from crm import db
    from crm.models import User

    at = _app(app_db, Role.CARE_TEAM)
    at.switch_page("pages/queue.py").run()
    assert not at.exception
    actor = at.session_state["auth_actor"]
    with db.session_scope(db.get_engine(app_db)) as s:
        user = s.get(User, actor.id)
        assert user is not None
        user.active = False
        s.add(user)
    at.run()
    assert "auth_actor" not in at.session_state
    assert [i.value for i in at.info] == ["You have been signed out."]
    assert [t.value for t in at.title] == ["Staff sign-in"]  # told why, ready to sign in again
    with pytest.raises(ValueError):
        at.switch_page("pages/queue.py")


def test_an_actor_for_an_unknown_account_is_not_signed_in(app_db: str) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    from crm import db

    with db.session_scope(db.ensure_ready(db.get_engine(app_db))) as s:
        make_user(s, role=Role.ADMIN)
    at.session_state["auth_actor"] = Actor(
        id=999, email="ghost@clinic.test", name="Ghost", role=Role.ADMIN
    )
    at.run()
    with pytest.raises(ValueError):
        at.switch_page("pages/admin_users.py")


@pytest.mark.usefixtures("router_every_run")
def test_a_role_change_applies_on_the_next_run(app_db: str) -> None:
    from crm import db
    from crm.models import User

    at = _app(app_db, Role.CARE_TEAM)
    with pytest.raises(ValueError):
        at.switch_page("pages/dashboard.py")
    with db.session_scope(db.get_engine(app_db)) as s:
        user = s.get(User, at.session_state["auth_actor"].id)
        assert user is not None
        user.role = Role.MANAGER.value
        s.add(user)
    at.run()
    at.switch_page("pages/dashboard.py").run()
    assert not at.exception
