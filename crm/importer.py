"""CSV import of leads: common column names mapped, every row validated, valid rows stored
through the same intake (so de-duplication and crisis flagging apply), rejected rows reported.

The whole file is decoded and read before anything is stored, so a file that can't be parsed
changes nothing. The caller commits (the CLI and the page do it once, at the end).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from crm import audit, clinic_settings, export, intake
from crm.access import Actor, Perm, require
from crm.enums import Source
from crm.errors import CRMError
from crm.timeutil import as_utc, utcnow
from crm.validation import FieldErrors, IntakeInput, validate_intake

__all__ = [
    "COLUMN_ALIASES",
    "ImportPreview",
    "ImportReport",
    "UnreadableFile",
    "import_csv",
    "map_columns",
    "preview_csv",
    "read_rows",
    "record_rejected_download",
    "rejected_csv",
]

MAX_ROWS = 50_000
MAX_BYTES = 20 * 1024 * 1024

# Header spellings we recognize, compared lower-cased with everything but letters and digits
# removed ("E-mail Address" -> "emailaddress").
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "first", "givenname", "fname", "forename"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname"),
    "full_name": ("name", "fullname", "contactname", "patientname", "leadname", "clientname"),
    "email": ("email", "emailaddress", "mail", "emailid"),
    "phone": (
        "phone",
        "phonenumber",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "cell",
        "cellphone",
        "telephone",
        "tel",
    ),
    "zip_code": ("zip", "zipcode", "postalcode", "postcode", "zip5", "postal"),
    "service": ("service", "serviceofinterest", "interest", "condition", "treatment", "reason"),
    # The lead's source is always "import"; where the file says it came from is kept as
    # "how they heard of us", the closest field.
    "heard_about": ("source", "leadsource", "heardabout", "howheard", "referralsource", "channel"),
    "created_at": (
        "created",
        "createddate",
        "createdat",
        "createdon",
        "datecreated",
        "date",
        "submitted",
        "submittedat",
        "submitteddate",
        "received",
        "inquirydate",
        "timestamp",
    ),
    "message": ("notes", "note", "message", "comments", "comment", "details"),
    "preferred_contact": ("preferredcontact", "contactmethod", "preferredcontactmethod"),
    "best_time": ("besttime", "besttimetocall", "besttimetoreach"),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in COLUMN_ALIASES.items() for alias in aliases}
_DATE_FORMATS = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y",
    "%m/%d/%y %H:%M",
    "%m/%d/%y",
    "%Y/%m/%d",
    "%d %b %Y",
    "%b %d, %Y",
)
MSG_DATE = "Enter the date like 2026-03-04, 2026-03-04 14:30 or 03/04/2026"


class UnreadableFile(CRMError):
    """The file isn't a CSV we can read (encoding, format or columns); nothing was imported."""


# What an import did: counts, plus each rejected row with its reasons (for the download).
@dataclass
class ImportReport:
    imported: int = 0
    attached: int = 0
    rejected: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    rejected_rows: list[dict[str, str]] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.imported + self.attached + len(self.rejected)

    def summary(self) -> str:
        return (
            f"{self.total} rows: {self.imported} new leads, {self.attached} added to existing "
            f"leads, {len(self.rejected)} rejected"
        )


def _header_key(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.strip().lower())


def map_columns(headers: list[str]) -> dict[str, str]:
    """Our field name -> the file's header, for each header we recognize (first one wins)."""
    mapping: dict[str, str] = {}
    for header in headers:
        name = _ALIAS_TO_FIELD.get(_header_key(header or ""))
        if name and name not in mapping:
            mapping[name] = header
    return mapping


def read_rows(data: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """Decode and parse the whole file: (headers, rows). Raises UnreadableFile."""
    if len(data) > MAX_BYTES:
        raise UnreadableFile(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnreadableFile(
            "The file isn't UTF-8 text. In your spreadsheet, save it as “CSV UTF-8”."
        ) from None
    if not text.strip():
        raise UnreadableFile("The file is empty.")
    if "\x00" in text:
        raise UnreadableFile("The file contains binary data; is it really a CSV file?")
    # Only the delimiter is guessed. Spreadsheets quote the RFC 4180 way ("" inside "..."),
    # and the sniffer's quoting guess is wrong often enough to garble cells: it reads
    # "Asked: ""is it covered?""" as Asked: "is it covered?""".
    try:
        delimiter = csv.Sniffer().sniff(text[:8192], delimiters=",;\t").delimiter
    except csv.Error:  # undecided: the one the header line uses most
        header_line = text.lstrip("\r\n").split("\n", 1)[0]
        delimiter = max(",;\t", key=header_line.count)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), csv.excel, delimiter=delimiter)
        table = [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as err:
        raise UnreadableFile(f"The file isn't valid CSV: {err}.") from None
    if not table:
        raise UnreadableFile("The file is empty.")
    headers = [h.strip() for h in table[0]]
    if len(table) - 1 > MAX_ROWS:
        raise UnreadableFile(f"The file has more than {MAX_ROWS:,} rows; split it.")
    rows = []
    for cells in table[1:]:
        row = {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(headers) if h}
        rows.append(row)
    return headers, rows


def import_csv(
    *, session: Session, data: bytes, actor_id: int | None, actor: Actor | None = None
) -> ImportReport:
    """Import every valid row of a CSV file; report the rejected ones (the caller commits)."""
    if actor is not None:
        actor_id = require(actor, Perm.IMPORT).id
    columns, rows = _parse(data)
    config = clinic_settings.load(session)
    report = ImportReport(columns=columns)
    now = utcnow()
    for row_number, row in _numbered(rows):
        checked = _check_row(row, columns, config.timezone, now)
        if isinstance(checked, dict):
            report.rejected.append((row_number, checked))
            report.rejected_rows.append(
                {"row": str(row_number), **row, "errors": _describe(checked, columns)}
            )
            continue
        validated, received_at = checked
        result = intake.submit(
            session=session,
            data=validated,
            actor_id=actor_id,
            raw={"row": row_number, **row},
            received_at=received_at,
            config=config,
        )
        if result.created:
            report.imported += 1
        else:
            report.attached += 1
    audit.record(
        session,
        actor_id=actor_id,
        action="import.csv",
        details={
            "imported": report.imported,
            "attached": report.attached,
            "rejected": len(report.rejected),
            "columns": columns,
        },
    )
    return report


# A dry run for the upload page: what the file holds and how many rows pass validation.
@dataclass
class ImportPreview:
    rows: int
    valid: int
    invalid: int
    columns: dict[str, str]


def preview_csv(*, data: bytes, timezone: str) -> ImportPreview:
    """Parse and validate the file without storing anything. Raises UnreadableFile."""
    columns, rows = _parse(data)
    now = utcnow()
    invalid = sum(
        isinstance(_check_row(row, columns, timezone, now), dict) for _n, row in _numbered(rows)
    )
    return ImportPreview(
        rows=len(rows), valid=len(rows) - invalid, invalid=invalid, columns=columns
    )


def _parse(data: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The recognized columns and the rows; UnreadableFile when the columns can't work."""
    headers, rows = read_rows(data)
    columns = map_columns(headers)
    if not ({"first_name", "last_name", "full_name"} & columns.keys()):
        raise UnreadableFile(
            "No name column found. Name one column “Name”, or “First name” and “Last name”."
        )
    if not ({"email", "phone"} & columns.keys()):
        raise UnreadableFile("No email or phone column found. Name one “Email” or “Phone”.")
    return columns, rows


def _numbered(rows: list[dict[str, str]]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows with their number as a spreadsheet shows it (the header is row 1)."""
    for index, row in enumerate(rows):
        yield index + 2, row


def _check_row(
    row: Mapping[str, str], columns: Mapping[str, str], tz: str, now: datetime
) -> tuple[IntakeInput, datetime | None] | dict[str, str]:
    """The validated row and its created date, or the errors that reject it."""
    values = _values(row, columns)
    errors: dict[str, str] = {}
    received_at = None
    try:
        received_at = _created_at(values.pop("created_at", ""), tz, now)
    except ValueError as err:
        errors["created_at"] = str(err)
    try:
        validated = validate_intake(values, mode="import")
    except FieldErrors as err:
        return {**err.errors, **errors}
    if errors:
        return errors
    validated.source = Source.IMPORT.value
    return validated, received_at


def rejected_csv(report: ImportReport) -> bytes:
    """The rejected rows with their reasons, as a CSV a spreadsheet opens safely."""
    return export.to_csv(report.rejected_rows)


def record_rejected_download(*, session: Session, actor: Actor, rows: int) -> None:
    """Audit the download of rejected rows: they hold people's details (needs Perm.EXPORT)."""
    export.record_download(
        session=session, actor=actor, what="import rejected rows", rows=rows, filters={}
    )


def _values(row: Mapping[str, str], columns: Mapping[str, str]) -> dict[str, str]:
    values = {name: row.get(header, "") for name, header in columns.items()}
    full = values.pop("full_name", "").strip()
    if (
        full
        and not values.get("first_name", "").strip()
        and not values.get("last_name", "").strip()
    ):
        values["first_name"], values["last_name"] = split_full_name(full)
    if values.get("preferred_contact"):
        values["preferred_contact"] = values["preferred_contact"].strip().lower()
    return values


def split_full_name(full: str) -> tuple[str, str]:
    """ "Last, First" or "First Middle Last" as (first, last); one word is a first name."""
    if "," in full:
        last, _, first = full.partition(",")
        return first.strip(), last.strip()
    parts = full.split()
    if len(parts) == 1:
        return parts[0], ""
    return " ".join(parts[:-1]), parts[-1]


def _created_at(value: str, tz: str, now: datetime) -> datetime | None:
    """The row's created date as aware UTC (clinic wall time when no zone is given)."""
    text = (value or "").strip()
    if not text:
        return None
    parsed = None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError(MSG_DATE)
    result = as_utc(parsed, tz)
    if result > now + timedelta(days=1):
        raise ValueError("This date is in the future")
    return result


def _describe(errors: Mapping[str, str], columns: Mapping[str, str]) -> str:
    """Errors named by the file's own column headers, so the person can find the cell."""
    names = dict(columns)
    if "full_name" in columns:
        names.setdefault("first_name", columns["full_name"])
        names.setdefault("last_name", columns["full_name"])
    described = [f"{names.get(f, f)}: {m}" for f, m in errors.items()]
    return "; ".join(dict.fromkeys(described))  # one line per distinct problem
