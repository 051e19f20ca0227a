"""The command line: a thin click wrapper over the crm services (see --help)."""

from __future__ import annotations

import click

from crm import db
from crm.errors import CRMError


@click.group()
def main() -> None:
    """Clinic CRM administration: database, demo data, users, API keys, imports, metrics."""


@main.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
def backup_command(path: str) -> None:
    """Write a consistent copy of the database to PATH (safe while the app runs)."""
    from pathlib import Path

    from crm import backup
    from crm.settings import get_settings

    try:
        target = backup.backup(url=get_settings().database_url, target=Path(path))
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Backup written to {target} ({target.stat().st_size:,} bytes)")


@main.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Don't ask for confirmation.")
def restore_command(path: str, yes: bool) -> None:
    """Replace the database with the backup at PATH (stop the app first)."""
    from pathlib import Path

    from crm import backup
    from crm.settings import get_settings

    url = get_settings().database_url
    if not yes:
        click.confirm(f"Replace the database at {url} with {path}?", abort=True)
    try:
        backup.restore(url=url, source=Path(path))
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Restored {path}")


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_command(path: str) -> None:
    """Import leads from the CSV file at PATH; rejected rows go to PATH.rejected.csv."""
    from pathlib import Path

    from crm import importer

    source = Path(path)
    try:
        with db.session_scope(db.ensure_ready(db.get_engine())) as session:
            report = importer.import_csv(session=session, data=source.read_bytes(), actor_id=None)
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(report.summary())
    for row_number, errors in report.rejected:
        click.echo(f"  row {row_number}: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
    if report.rejected:
        rejected = source.with_name(source.stem + ".rejected.csv")
        rejected.write_bytes(importer.rejected_csv(report))
        click.echo(f"Rejected rows written to {rejected}")


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


@main.group("apikey")
def apikey_group() -> None:
    """API keys for the clinic website's form posts to POST /api/leads."""


@apikey_group.command("create")
@click.argument("name")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    metavar="URL",
    help="A website origin allowed to call the API from a browser, e.g. https://www.clinic.com "
    "(repeatable).",
)
def apikey_create(name: str, origins: tuple[str, ...]) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    from crm import apikeys

    try:
        engine = db.ensure_ready(db.get_engine())
        with db.session_scope(engine) as session:
            key = apikeys.create_key(
                session=session, name=name, allowed_origins=list(origins), actor_id=None
            )
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(key)
    click.echo(
        f"API key {name!r} created. Copy it now: it is not stored and cannot be shown again.",
        err=True,
    )


@apikey_group.command("revoke")
@click.argument("name")
def apikey_revoke(name: str) -> None:
    """Refuse every further request made with the key NAME."""
    from crm import apikeys

    try:
        engine = db.ensure_ready(db.get_engine())
        with db.session_scope(engine) as session:
            apikeys.revoke_key(session=session, name=name, actor_id=None)
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"API key {name!r} revoked.")


@apikey_group.command("list")
def apikey_list() -> None:
    """Every key with its prefix, allowed origins, last use and state (never the key)."""
    from crm import apikeys

    try:
        engine = db.ensure_ready(db.get_engine())
        with db.session_scope(engine) as session:
            rows = apikeys.list_keys(session=session)
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    if not rows:
        click.echo("No API keys.")
        return
    for row in rows:
        state = "active" if row["active"] else f"revoked {row['revoked_at']:%Y-%m-%d %H:%M} UTC"
        used = f"{row['last_used_at']:%Y-%m-%d %H:%M} UTC" if row["last_used_at"] else "never"
        origins = " ".join(row["allowed_origins"]) or "(any origin, no browser CORS)"
        click.echo(f"{row['name']}\t{row['prefix']}...\t{state}\tlast used {used}\t{origins}")
