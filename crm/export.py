"""CSV downloads: safe to open in a spreadsheet, and every download recorded in the audit trail."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlmodel import Session

from crm import audit
from crm.access import Actor, Perm, require

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection):
# "=HYPERLINK(...)" in a lead's name must reach the spreadsheet as text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value: str) -> str:
    """`value` made inert for a spreadsheet: prefixed with a single quote if it could run."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _cell(value: Any) -> Any:
    """One cell as csv writes it: numbers stay numbers, everything else is neutralized text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return value  # a number is data, not a formula (a negative one included)
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, datetime | date):
        value = value.isoformat()
    return neutralize(str(value))


def _records(rows: Any) -> tuple[list[str], Iterable[Mapping[str, Any]]]:
    """Column names and row mappings from a list of dicts or a pandas DataFrame."""
    if hasattr(rows, "to_dict") and hasattr(
        rows, "columns"
    ):  # a DataFrame, without importing pandas
        return [str(c) for c in rows.columns], rows.to_dict(orient="records")
    rows = list(rows)
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns, rows


def to_csv(rows: Any) -> bytes:
    """UTF-8 CSV of `rows` (a list of dicts, or a DataFrame) with formula cells neutralized.

    Columns are the keys in order of first appearance; a missing key is an empty cell. Header
    cells are neutralized too. No byte-order mark; no rows and no columns give b"".
    """
    columns, records = _records(rows)
    if not columns:
        return b""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralize(c) for c in columns])
    for record in records:
        writer.writerow([_cell(record.get(c)) for c in columns])
    return buffer.getvalue().encode("utf-8")


def record_download(
    *, session: Session, actor: Actor, what: str, rows: int, filters: dict[str, Any]
) -> None:
    """Audit a CSV download ("export.csv"): who, which table, how many rows, with which filters.

    Export is a privilege (Perm.EXPORT). Adds the event to the caller's transaction; the
    caller commits.
    """
    require(actor, Perm.EXPORT)
    audit.record(
        session,
        actor_id=actor.id,
        actor_email=actor.email,
        action="export.csv",
        entity="export",
        entity_id=what[:80],
        details={"what": what, "rows": rows, "filters": filters},
    )
