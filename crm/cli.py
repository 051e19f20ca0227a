"""The command line: a thin click wrapper over the crm services (see --help)."""

from __future__ import annotations

from typing import Any

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


@main.command("demo")
@click.option("--leads", default=2000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 60))
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day the data leads up to (default: today); same seed and date, same rows.",
)
@click.option("--database-url", default=None, help="Write here instead of DATABASE_URL.")
@click.option("--append", is_flag=True, help="Add demo data even though the database has leads.")
def demo_command(
    leads: int, seed: int, months: int, as_of: Any, database_url: str | None, append: bool
) -> None:
    """Fill the database with realistic synthetic leads (refuses a database with leads)."""
    import time

    from crm import demo

    started = time.perf_counter()
    if database_url and database_url.startswith(("postgres://", "postgresql://")):
        database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]

    def progress(done: int, total: int) -> None:
        if total >= 50_000 and (done % 100_000 == 0 or done == total):
            click.echo(
                f"  {done:,} / {total:,} leads ({time.perf_counter() - started:.0f} s)", err=True
            )

    try:
        engine = db.ensure_ready(db.get_engine(database_url))
        result = demo.generate(
            engine=engine,
            leads=leads,
            seed=seed,
            months=months,
            as_of=as_of.date() if as_of else None,
            append=append,
            progress=progress,
        )
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Demo data as of {result.as_of} (seed {seed}) in {engine.url.render_as_string()}:")
    for table, count in result.counts.items():
        click.echo(f"  {table:<20} {count:>10,}")
    click.echo(f"Done in {time.perf_counter() - started:.1f} s.")


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


@main.group("user")
def user_group() -> None:
    """Staff accounts (the shell acts as an administrator; every change is audited)."""


def _new_password(prompt: str) -> str:
    """The password from CRM_PASSWORD, else a hidden prompt asked twice (never an argument)."""
    import os

    from_env = os.environ.get("CRM_PASSWORD")
    if from_env:
        return from_env
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=True))


@user_group.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["care_team", "provider", "manager", "admin"]), required=True)
@click.option("--name", default="", help="The person's name as staff see it.")
@click.option("--provider", is_flag=True, help="Holds consults and may make the screening decision.")
def user_add(email: str, role: str, name: str, provider: bool) -> None:
    """Add a staff account; the password comes from CRM_PASSWORD or a hidden prompt."""
    from crm import users
    from crm.enums import Role

    password = _new_password("Password")
    try:
        engine = db.ensure_ready(db.get_engine())
        with db.session_scope(engine) as session:
            user = users.add_user(session=session, actor=users.SHELL, email=email, password=password,
                                  role=Role(role), name=name, is_provider=provider)
            address = user.email
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Added {address} ({role}).")


@user_group.command("disable")
@click.argument("email")
def user_disable(email: str) -> None:
    """Disable an account; its open sessions end at once."""
    from crm import users

    try:
        engine = db.ensure_ready(db.get_engine())
        with db.session_scope(engine) as session:
            row = users.find_user(session=session, actor=users.SHELL, email=email)
            users.disable_user(session=session, actor=users.SHELL, user_id=row.id)
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Disabled {row.email}.")


@user_group.command("reset-password")
@click.argument("email")
def user_reset_password(email: str) -> None:
    """Set a new password (CRM_PASSWORD or a hidden prompt), clear a lockout, end sessions."""
    from crm import users

    password = _new_password("New password")
    try:
        engine = db.ensure_ready(db.get_engine())
        with db.session_scope(engine) as session:
            row = users.find_user(session=session, actor=users.SHELL, email=email)
            users.reset_password(session=session, actor=users.SHELL, user_id=row.id, password=password)
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"Password reset for {row.email}.")


@user_group.command("list")
def user_list() -> None:
    """Every account: email, name, role, provider, state, last sign-in."""
    from crm import users

    try:
        engine = db.ensure_ready(db.get_engine())
        with db.session_scope(engine) as session:
            rows = users.list_users(session=session, actor=users.SHELL)
    except CRMError as err:
        raise click.ClickException(str(err)) from err
    if not rows:
        click.echo("No accounts yet.")
        return
    for row in rows:
        state = "active" if row.active else "disabled"
        last = f"{row.last_login_at:%Y-%m-%d %H:%M} UTC" if row.last_login_at else "never"
        flags = " provider" if row.is_provider else ""
        click.echo(f"{row.email}\t{row.name}\t{row.role.value}{flags}\t{state}\tlast sign-in {last}")



@main.command("metrics")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]),
              help="First inquiry day, clinic time (default: 29 days before --to).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]),
              help="Last inquiry day, inclusive (default: today).")
@click.option("--by", type=click.Choice(["service_area", "service", "source"]),
              default="service_area", show_default=True, help="Funnel breakdown.")
@click.option("--area", "areas", multiple=True, metavar="NAME|ID",
              help='Only this service area ("out" = out of area); repeatable.')
@click.option("--service", "services", multiple=True, metavar="NAME|ID",
              help='Only this service ("none" = not given); repeatable.')
@click.option("--source", "sources", multiple=True, metavar="SOURCE",
              help="Only this source (web_form, phone, referral, import); repeatable.")
@click.option("--owner", "owners", multiple=True, metavar="EMAIL|ID",
              help='Only leads owned by this staff member ("unassigned"); repeatable.')
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the dashboard's figures).")
@click.option("--database-url", default=None, help="Database to read (default: DATABASE_URL).")
def metrics_command(
    start: object, end: object, by: str, areas: tuple[str, ...], services: tuple[str, ...],
    sources: tuple[str, ...], owners: tuple[str, ...], as_json: bool, database_url: str | None,
) -> None:
    """The dashboard's headline figures and funnel for the inquiries of a period."""
    import json
    from datetime import datetime, timedelta

    from crm import clinic_settings, metrics

    try:
        engine = db.ensure_ready(db.get_engine(database_url))
        with db.session_scope(engine) as session:
            tz = clinic_settings.load(session).timezone
            last = end.date() if isinstance(end, datetime) else metrics.local_today(tz)
            first = start.date() if isinstance(start, datetime) else last - timedelta(days=29)
            filters = metrics.resolve_filters(
                session, start=first, end=last, tz=tz, areas=areas, services=services,
                sources=sources, owners=owners,
            )
            data = metrics.report(session, filters, by)
    except (CRMError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(data, indent=2) if as_json else metrics.report_text(data))
