"""The sign-in page and the administrator's screens, driven by widget key in AppTest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from crm import auth, clinic_settings, db, users
from crm.enums import Role
from crm.models import ApiKey, AuditEvent, AuthSession, ServiceArea, User
from tests.factories import actor_of

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
PASSWORD = "correct horse battery 42"


@pytest.fixture(autouse=True)
def _quick_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def app_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'app.sqlite3'}"
    monkeypatch.setenv("DATABASE_URL", url)
    from crm.settings import get_settings

    get_settings.cache_clear()
    st.cache_resource.clear()  # ui.context caches the engine of whichever test ran first
    db.ensure_ready(db.get_engine(url))
    yield url
    get_settings.cache_clear()
    st.cache_resource.clear()


def _session(url: str) -> Session:
    return Session(db.get_engine(url), expire_on_commit=False)


def _admin(url: str) -> User:
    with _session(url) as s:
        user = users.create_user(
            session=s, email="boss@clinic.test", password=PASSWORD, role=Role.ADMIN, name="Boss"
        )
        s.commit()
        return user


def _as_admin(url: str, page: str) -> AppTest:
    admin = _admin(url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["auth_actor"] = actor_of(admin)
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    return at


def _actions(url: str) -> list[str]:
    with _session(url) as s:
        return list(s.exec(select(AuditEvent.action).order_by(AuditEvent.id)).all())  # type: ignore[arg-type]


def _submit(at: AppTest, form: str, label: str) -> AppTest:
    return at.button(key=f"FormSubmitter:{form}-{label}").click().run()


# --- Sign-in and first administrator --------------------------------------------------------


def test_the_first_administrator_form_creates_the_account_then_offers_sign_in(app_db: str) -> None:
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert [t.value for t in at.title] == ["Create the first administrator"]
    at.text_input(key="setup_email").input("Boss@Clinic.test")
    at.text_input(key="setup_name").input("Blair Boss")
    at.text_input(key="setup_password").input("short")
    at.text_input(key="setup_confirm").input("short")
    _submit(at, "setup_form", "Create administrator")
    assert "at least 12 characters" in at.error[0].value
    at.text_input(key="setup_password").input(PASSWORD)
    at.text_input(key="setup_confirm").input(PASSWORD)
    _submit(at, "setup_form", "Create administrator")
    assert not at.exception
    with _session(app_db) as s:
        admin = s.exec(select(User)).one()
    assert (admin.email, admin.role) == ("boss@clinic.test", "admin")
    at.run()
    assert [t.value for t in at.title] == ["Staff sign-in"]


def test_sign_in_with_the_right_password_opens_a_session(app_db: str) -> None:
    _admin(app_db)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/login.py").run()
    at.text_input(key="login_email").input("boss@clinic.test")
    at.text_input(key="login_password").input(PASSWORD)
    _submit(at, "login_form", "Sign in")
    assert not at.exception and not at.error
    assert at.session_state["auth_actor"].email == "boss@clinic.test"
    with _session(app_db) as s:
        row = s.exec(select(AuthSession)).one()
    assert row.ended_at is None and row.cookie_issued_at is None  # the cookie comes next
    assert "auth.login" in _actions(app_db)


def test_a_wrong_password_and_an_unknown_email_read_the_same(app_db: str) -> None:
    _admin(app_db)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/login.py").run()
    seen = []
    for email, password in [("boss@clinic.test", "wrong password!"), ("who@clinic.test", PASSWORD)]:
        at.text_input(key="login_email").input(email)
        at.text_input(key="login_password").input(password)
        _submit(at, "login_form", "Sign in")
        seen.append(at.error[0].value)
    assert seen == ["Email or password is not right."] * 2
    assert _actions(app_db).count("auth.login_failed") == 2  # kept although the page errored


def test_single_sign_on_is_offered_only_when_configured(app_db: str) -> None:
    _admin(app_db)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/login.py").run()
    assert not [b for b in at.button if b.key == "login_sso"]
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
    }
    at.run()
    at.switch_page("pages/login.py").run()
    assert [b.label for b in at.button if b.key == "login_sso"] == ["Sign in with single sign-on"]


# --- Staff accounts --------------------------------------------------------------------------


def test_an_admin_adds_a_staff_member(app_db: str) -> None:
    at = _as_admin(app_db, "pages/admin_users.py")
    at.text_input(key="users_add_email").input("casey@clinic.test")
    at.text_input(key="users_add_name").input("Casey")
    at.selectbox(key="users_add_role").set_value(Role.PROVIDER)
    at.text_input(key="users_add_password").input(PASSWORD)
    at.text_input(key="users_add_confirm").input(PASSWORD + "x")
    _submit(at, "users_add_form", "Add staff member")
    assert at.error[0].value == "The two passwords are not the same."
    at.text_input(key="users_add_confirm").input(PASSWORD)
    _submit(at, "users_add_form", "Add staff member")
    assert not at.exception
    assert [s.value for s in at.success] == ["Added casey@clinic.test."]
    with _session(app_db) as s:
        casey = s.exec(select(User).where(User.email == "casey@clinic.test")).one()
    assert (casey.role, casey.is_provider) == ("provider", True)
    at.text_input(key="users_add_email").input("casey@clinic.test")
    _submit(at, "users_add_form", "Add staff member")
    assert "already exists" in at.error[0].value


def test_an_admin_changes_disables_and_resets_an_account(app_db: str) -> None:
    at = _as_admin(app_db, "pages/admin_users.py")
    with _session(app_db) as s:
        pat = users.create_user(
            session=s, email="pat@clinic.test", password=PASSWORD, role=Role.CARE_TEAM
        )
        s.commit()
        auth.start_session(s, actor=auth.actor_from(pat))
        s.commit()
    at.run()
    pick = at.selectbox(key="users_edit_pick")
    pick.select_index(pick.options.index("pat@clinic.test")).run()
    at.selectbox(key=f"users_edit_role_{pat.id}").set_value(Role.MANAGER)
    _submit(at, "users_edit_form", "Save changes")
    assert [s.value for s in at.success] == ["Saved pat@clinic.test."]
    at.text_input(key="users_reset_password").input("a freshly chosen phrase")
    _submit(at, "users_reset_form", "Reset password")
    assert [s.value for s in at.success] == ["Password reset for pat@clinic.test."]
    at.button(key="users_toggle_active").click().run()
    assert "Disabled pat@clinic.test" in at.success[0].value
    with _session(app_db) as s:
        pat_now = s.get(User, pat.id)
        assert pat_now is not None
        assert (pat_now.role, pat_now.active) == ("manager", False)
        assert auth.verify_password(pat_now.password_hash, "a freshly chosen phrase")
        assert all(r.ended_at for r in s.exec(select(AuthSession)).all())
    actions = _actions(app_db)
    assert {"user.update", "user.password_reset", "user.disable"} <= set(actions)


# --- Clinic settings -------------------------------------------------------------------------


def test_pipeline_settings_are_saved_audited_and_applied(app_db: str) -> None:
    at = _as_admin(app_db, "pages/admin_settings.py")
    at.number_input(key="settings_first_response").set_value(5)
    at.text_area(key="settings_lost").input("Unreachable\nCost\nChose another provider")
    _submit(at, "settings_pipeline_form", "Save")
    assert not at.exception and [s.value for s in at.success] == ["Saved the pipeline settings."]
    with _session(app_db) as s:
        config = clinic_settings.load(s)
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "settings.update")).one()
    assert config.first_response_minutes == 5
    assert config.lost_reasons == ["Unreachable", "Cost", "Chose another provider"]
    assert json.loads(event.details)["first_response_minutes"] == [15, 5]


def test_bad_settings_are_refused_with_a_clear_message(app_db: str) -> None:
    at = _as_admin(app_db, "pages/admin_settings.py")
    at.text_area(key="settings_not_eligible").input("   ")
    _submit(at, "settings_pipeline_form", "Save")
    assert at.error[0].value == "Keep at least one not-eligible reason."
    at.text_input(key="settings_thank_you").input("javascript:alert(1)")
    _submit(at, "settings_website_form", "Save")
    assert "must be a full web address" in at.error[0].value


def test_a_service_area_is_added_and_edited(app_db: str) -> None:
    at = _as_admin(app_db, "pages/admin_settings.py")
    at.text_input(key="settings_area_name_new").input("Sterling")
    at.text_area(key="settings_area_cities_new").input("Sterling\nPotomac Falls")
    at.text_area(key="settings_area_zips_new").input("20164, 20165\n2016")
    _submit(at, "settings_area_form_new", "Save area")
    assert "ZIP codes are five digits: 2016" in at.error[0].value
    at.text_area(key="settings_area_zips_new").input("20164, 20165")
    _submit(at, "settings_area_form_new", "Save area")
    assert [s.value for s in at.success] == ["Saved the service area Sterling."]
    with _session(app_db) as s:
        area = s.exec(select(ServiceArea).where(ServiceArea.name == "Sterling")).one()
    assert json.loads(area.zip_codes) == ["20164", "20165"]
    assert "area.create" in _actions(app_db)


def test_the_smtp_password_is_never_sent_back_and_blank_keeps_it(app_db: str) -> None:
    at = _as_admin(app_db, "pages/admin_settings.py")
    at.text_input(key="settings_smtp_host").input("smtp.example.com")
    at.text_input(key="settings_smtp_password").input("s3cret-smtp-pass")
    _submit(at, "settings_email_form", "Save email settings")
    assert [s.value for s in at.success] == ["Saved the email settings."]
    at.run()
    assert at.text_input(key="settings_smtp_password").value == ""
    assert "s3cret-smtp-pass" not in str(at.main)
    at.text_input(key="settings_oncall").input("oncall@clinic.test")
    _submit(at, "settings_email_form", "Save email settings")
    with _session(app_db) as s:
        config = clinic_settings.load(s)
        details = [
            e.details
            for e in s.exec(select(AuditEvent).where(AuditEvent.action == "settings.update"))
        ]
    assert (
        config.smtp_password == "s3cret-smtp-pass" and config.oncall_email == "oncall@clinic.test"
    )
    assert not any("s3cret-smtp-pass" in d for d in details)


def test_an_api_key_is_shown_once_and_can_be_revoked(app_db: str) -> None:
    at = _as_admin(app_db, "pages/admin_settings.py")
    at.text_input(key="settings_key_name").input("Website")
    at.text_area(key="settings_key_origins").input("https://www.example-clinic.com")
    _submit(at, "settings_key_form", "Create key")
    assert not at.exception
    shown = [c.value for c in at.code]
    assert len(shown) == 1 and shown[0].startswith("crm_")
    at.run()
    assert [c.value for c in at.code] == []  # gone on the next run
    at.button(key="settings_revoke").click().run()
    with _session(app_db) as s:
        key = s.exec(select(ApiKey)).one()
    assert key.revoked_at is not None and shown[0] not in key.key_hash
    assert {"apikey.create", "apikey.revoke"} <= set(_actions(app_db))


# --- Audit trail -----------------------------------------------------------------------------


def test_the_audit_page_filters_and_offers_an_export(app_db: str) -> None:
    at = _as_admin(app_db, "pages/admin_audit.py")
    assert not at.exception
    assert any("event(s)" in m.value for m in at.markdown)
    assert at.get("download_button")
    at.selectbox(key="audit_action").set_value("auth.").run()
    assert not at.exception
    at.text_input(key="audit_lead").input("NOPE-1").run()
    assert at.error[0].value == "No lead with the reference NOPE-1."


SSO_SECRETS = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32}


@pytest.mark.parametrize(
    "user, signed_in",
    [
        ({"is_logged_in": True, "email": "BOSS@clinic.test"}, True),
        ({"is_logged_in": True, "email": "stranger@clinic.test"}, False),
        ({"is_logged_in": True, "email": "boss@clinic.test", "email_verified": False}, False),
        ({"is_logged_in": False}, False),
    ],
)
def test_single_sign_on_needs_an_active_staff_account_with_that_email(
    app_db: str, user: dict, signed_in: bool
) -> None:
    _admin(app_db)
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = SSO_SECRETS
    at.user = user
    at.run()
    assert not at.exception
    if signed_in:
        at.switch_page("pages/admin_users.py")
        assert "auth.login" in _actions(app_db)
    else:
        with pytest.raises(ValueError):
            at.switch_page("pages/admin_users.py")
    if user["is_logged_in"] and not signed_in:
        assert [t.value for t in at.title] == ["Staff sign-in"]
        assert "does not match an active staff account" in at.info[0].value
        assert [b.key for b in at.button if b.key and b.key.startswith("login_sso")] == [
            "login_sso_logout"
        ]
        assert _actions(app_db).count("auth.login_failed") == 1
