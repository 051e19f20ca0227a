"""Settings come from the environment; a bad value fails at start, naming the variable."""

from __future__ import annotations

import pytest

from crm.errors import ConfigError
from crm.settings import load_settings


def test_defaults_run_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "CRM_TIMEZONE", "CRM_SESSION_IDLE_MINUTES"):
        monkeypatch.delenv(name, raising=False)
    s = load_settings()
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("data/crm.sqlite3")
    assert s.timezone == "America/New_York" and s.session_idle_minutes == 15


def test_postgres_urls_use_psycopg3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://crm@db/crm")
    assert load_settings().database_url == "postgresql+psycopg://crm@db/crm"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://x/y"),
        ("CRM_TIMEZONE", "Mars/Olympus"),
        ("CRM_SESSION_IDLE_MINUTES", "soon"),
        ("CRM_CHECK_EMAIL_DELIVERABILITY", "maybe"),
    ],
)
def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()
