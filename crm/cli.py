"""The command line: a thin click wrapper over the crm services (see --help)."""

from __future__ import annotations

import click

from crm import db
from crm.errors import CRMError


@click.group()
def main() -> None:
    """Clinic CRM administration: database, demo data, users, API keys, imports, metrics."""


@main.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the newest migration (the app also does this on start)."""
    try:
        engine = db.ensure_ready(db.get_engine())
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Database at revision {db.current_revision(engine)} ({engine.url.render_as_string()})")
