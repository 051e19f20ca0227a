"""API keys: shown once, stored only as a hash, revocable, origins normalized; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from crm import apikeys, db
from crm.errors import CRMError, NotFound
from crm.models import ApiKey, AuditEvent
from crm.timeutil import utcnow
from tests.support import REPO_ROOT


def test_a_new_key_is_returned_once_and_only_its_hash_is_stored(session: Session) -> None:
    key = apikeys.create_key(session=session, name="website", allowed_origins=[], actor_id=None)
    session.commit()
    assert key.startswith("crm_") and len(key) >= 40
    row = session.exec(select(ApiKey).where(ApiKey.name == "website")).one()
    assert row.key_hash == apikeys.hash_key(key)
    stored = json.dumps(row.model_dump(), default=str)
    assert key not in stored
    assert row.key_prefix == key[:12]


def test_the_right_key_authenticates_and_a_wrong_one_does_not(session: Session) -> None:
    key = apikeys.create_key(
        session=session, name="site", allowed_origins=["https://a.example"], actor_id=None
    )
    session.commit()
    info = apikeys.authenticate(session=session, key=key)
    assert info is not None and info.name == "site"
    assert info.allowed_origins == frozenset({"https://a.example"})
    assert apikeys.authenticate(session=session, key=key + "x") is None
    assert apikeys.authenticate(session=session, key=key[:-1]) is None
    assert apikeys.authenticate(session=session, key="") is None
    assert apikeys.authenticate(session=session, key="\ud800" * 10) is None
    assert apikeys.authenticate(session=session, key="k" * 10_000) is None


def test_a_revoked_key_is_refused_and_revoking_is_audited(session: Session) -> None:
    key = apikeys.create_key(session=session, name="old", allowed_origins=[], actor_id=None)
    session.commit()
    apikeys.revoke_key(session=session, name="old", actor_id=None)
    session.commit()
    assert apikeys.authenticate(session=session, key=key) is None
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.entity == "apikey")).all()
    assert sorted(actions) == ["apikey.create", "apikey.revoke"]
    apikeys.revoke_key(session=session, name="old", actor_id=None)  # again: no error
    with pytest.raises(NotFound):
        apikeys.revoke_key(session=session, name="never-made", actor_id=None)


def test_names_are_unique_and_required(session: Session) -> None:
    apikeys.create_key(session=session, name="site", allowed_origins=[], actor_id=None)
    session.commit()
    with pytest.raises(apikeys.DuplicateKeyName):
        apikeys.create_key(session=session, name=" site ", allowed_origins=[], actor_id=None)
    with pytest.raises(CRMError):
        apikeys.create_key(session=session, name="   ", allowed_origins=[], actor_id=None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://Clinic.Example/", "https://clinic.example"),
        ("https://clinic.example:443", "https://clinic.example"),
        ("http://localhost:8080", "http://localhost:8080"),
        (" https://www.clinic.example ", "https://www.clinic.example"),
    ],
)
def test_origins_are_normalized_as_browsers_send_them(given: str, expected: str) -> None:
    assert apikeys.normalize_origin(given) == expected


@pytest.mark.parametrize(
    "bad",
    ["clinic.example", "ftp://clinic.example", "https://clinic.example/form", "https://", "*"],
)
def test_an_origin_with_a_path_or_without_a_scheme_is_refused(bad: str) -> None:
    with pytest.raises(apikeys.InvalidOrigin):
        apikeys.normalize_origin(bad)


def test_list_shows_prefix_and_state_never_the_hash(session: Session) -> None:
    apikeys.create_key(
        session=session, name="b", allowed_origins=["https://b.example"], actor_id=None
    )
    apikeys.create_key(session=session, name="a", allowed_origins=[], actor_id=None)
    session.commit()
    apikeys.revoke_key(session=session, name="b", actor_id=None)
    session.commit()
    rows = apikeys.list_keys(session=session)
    assert [r["name"] for r in rows] == ["a", "b"]
    assert [r["active"] for r in rows] == [True, False]
    assert rows[1]["allowed_origins"] == ["https://b.example"]
    assert all("key_hash" not in r for r in rows)


def test_last_used_is_written_at_most_once_a_minute(session: Session) -> None:
    key = apikeys.create_key(session=session, name="k", allowed_origins=[], actor_id=None)
    session.commit()
    info = apikeys.authenticate(session=session, key=key)
    assert info is not None and info.last_used_at is None
    now = utcnow()
    apikeys.touch(session=session, key=info, now=now)
    session.commit()
    info = apikeys.authenticate(session=session, key=key)
    assert info is not None and info.last_used_at is not None
    assert abs(info.last_used_at - now) < timedelta(seconds=1)
    apikeys.touch(session=session, key=info, now=now + timedelta(seconds=30))
    session.commit()
    again = apikeys.authenticate(session=session, key=key)
    assert again is not None and again.last_used_at == info.last_used_at


def _cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "crm", "apikey", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_creates_lists_and_revokes_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    created = _cli(url, "create", "website", "--origin", "https://Clinic.example/")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("crm_") and "\n" not in key
    assert "cannot be shown again" in created.stderr

    listed = _cli(url, "list")
    assert listed.returncode == 0, listed.stderr
    assert "website" in listed.stdout and "https://clinic.example" in listed.stdout
    assert key not in listed.stdout and key[:12] in listed.stdout

    assert _cli(url, "create", "website").returncode != 0  # duplicate name
    assert _cli(url, "create", "bad", "--origin", "clinic.example").returncode != 0

    revoked = _cli(url, "revoke", "website")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in _cli(url, "list").stdout
    assert _cli(url, "revoke", "nope").returncode != 0

    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            assert apikeys.authenticate(session=session, key=key) is None
    finally:
        engine.dispose()
