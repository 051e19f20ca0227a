"""Field validation and normalization shared by the public form, phone intake, HTTP API and CSV import.

Normalizers return the canonical value (None for a blank optional field) or raise ValueError
with a message written for the person filling in the form. validate_intake() runs them all
and reports every problem at once in one FieldErrors.

What is stored exactly as typed: the message (only NUL bytes and lone surrogates are refused,
because PostgreSQL text and UTF-8 cannot hold them). Names are tidied (trimmed, spaces
collapsed, invisible characters removed, NFC-composed so "José" typed two ways is one name);
short text fields are trimmed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import phonenumbers
from email_validator import EmailNotValidError, EmailUndeliverableError, validate_email

from crm.enums import ContactMethod, Source
from crm.errors import CRMError

__all__ = [
    "CRISIS_ANSWERS",
    "MESSAGE_MAX",
    "Mode",
    "PREFERRED_CONTACT",
    "SHORT_TEXT_MAX",
    "SOURCES",
    "FieldErrors",
    "IntakeInput",
    "email_key",
    "format_phone_national",
    "normalize_email",
    "normalize_name",
    "normalize_phone",
    "normalize_zip",
    "validate_intake",
]

PREFERRED_CONTACT: tuple[str, ...] = tuple(m.value for m in ContactMethod)
CRISIS_ANSWERS: tuple[str, ...] = ("yes", "no", "unsure")
SOURCES: tuple[str, ...] = tuple(s.value for s in Source)

NAME_MAX = 80
SHORT_TEXT_MAX = 200
MESSAGE_MAX = 5_000

Mode = Literal["public", "phone", "import", "api"]
_MODES: tuple[str, ...] = ("public", "phone", "import", "api")
_DEFAULT_SOURCE: dict[str, str] = {
    "public": Source.WEB_FORM.value,
    "api": Source.WEB_FORM.value,
    "phone": Source.PHONE.value,
    "import": Source.IMPORT.value,
}

MSG_EMAIL = "Enter a valid email address, like name@example.com"
MSG_EMAIL_DOMAIN = "We couldn't find that email domain; check the part after the @"
MSG_PHONE = "Enter a valid phone number, like (571) 555-0100"
MSG_PHONE_EXTENSION = "Enter a phone number without an extension"
MSG_ZIP = "Enter a 5-digit ZIP code, like 20147 (or ZIP+4, like 20147-1234)"
MSG_REACH = "Give an email address or a mobile phone number so we can reach you"
MSG_CONSENT = "Please tick the box to agree that the clinic may contact you"
MSG_UNSTORABLE = "This contains characters we can't store; please remove them"
MSG_NOT_TEXT = "Enter this as plain text"

_LABELS: dict[str, str] = {
    "first_name": "First name",
    "last_name": "Last name",
    "email": "Email",
    "phone": "Phone",
    "preferred_contact": "Preferred contact",
    "best_time": "Best time to reach you",
    "service": "Service",
    "zip_code": "ZIP code",
    "message": "Message",
    "heard_about": "How you heard about us",
    "crisis_answer": "Crisis question",
    "source": "Source",
}

_TRUE = frozenset({"true", "on", "yes", "1", "y", "checked"})
_CRISIS_ALIASES: dict[str, str] = {
    "yes": "yes",
    "y": "yes",
    "true": "yes",
    "no": "no",
    "n": "no",
    "false": "no",
    "unsure": "unsure",
    "not sure": "unsure",
    "prefer not to say": "unsure",
    "prefer not to answer": "unsure",
    "rather not say": "unsure",
    "dont know": "unsure",
    "unknown": "unsure",
}
_ZIP_RE = re.compile(r"([0-9]{5})(?:[- ]?([0-9]{4}))?")
_SURROGATES = re.compile("[\ud800-\udfff]")
_T = TypeVar("_T")


class FieldErrors(CRMError):
    """One or more fields are invalid; errors maps field name to a message for the person."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{_label(f)}: {m}" for f, m in self.errors.items()))


# Validated intake, ready for crm.intake to store (blank optional fields are None).
@dataclass
class IntakeInput:
    first_name: str = ""
    last_name: str = ""
    email: str | None = None
    phone: str | None = None
    preferred_contact: str | None = None
    best_time: str | None = None
    service: str | None = None
    zip_code: str | None = None
    message: str | None = None
    heard_about: str | None = None
    consent: bool = False
    crisis_answer: str | None = None
    source: str = Source.WEB_FORM.value
    website: str | None = None


def normalize_email(value: str | None, *, check_deliverability: bool = False) -> str | None:
    """The email in normalized form (domain lower-cased), None when blank; ValueError if invalid."""
    text = (value or "").strip()
    if not text:
        return None
    if len(text) > 320:  # longer than any address can be; spare the parser
        raise ValueError(MSG_EMAIL)
    try:
        return validate_email(text, check_deliverability=check_deliverability).normalized
    except EmailUndeliverableError as err:
        raise ValueError(MSG_EMAIL_DOMAIN) from err
    except (EmailNotValidError, ValueError) as err:  # UnicodeError (bad IDNA) is a ValueError
        raise ValueError(MSG_EMAIL) from err


def email_key(email: str) -> str:
    """The form two emails are compared on to find a returning person."""
    return email.strip().lower()


def normalize_phone(value: str | None, *, region: str = "US") -> str | None:
    """The phone number in E.164 (+15715550100), None when blank; ValueError if not valid."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as err:
        raise ValueError(MSG_PHONE) from err
    if not phonenumbers.is_valid_number(number):
        raise ValueError(MSG_PHONE)
    # E.164 has no place for an extension; refuse it rather than drop it silently.
    if number.extension:
        raise ValueError(MSG_PHONE_EXTENSION)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone_national(e164: str, *, region: str = "US") -> str:
    """A stored E.164 number as people read it: "(571) 555-0100"; international if foreign."""
    try:
        number = phonenumbers.parse(e164, region)
    except phonenumbers.NumberParseException:
        return e164
    if phonenumbers.region_code_for_number(number) == region:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalize_zip(value: str | None) -> str | None:
    """A US ZIP code as "12345" or "12345-6789", None when blank; ValueError otherwise."""
    text = (value or "").strip()
    if not text:
        return None
    match = _ZIP_RE.fullmatch(text)
    if match is None:
        raise ValueError(MSG_ZIP)
    five, plus4 = match.groups()
    return f"{five}-{plus4}" if plus4 else five


def normalize_name(value: str | None, *, field: str, max_len: int = NAME_MAX) -> str:
    """A name trimmed, spaces collapsed, invisible characters removed; "" when blank."""
    if value is not None and len(value) > 10 * max_len + 1_000:  # no need to tidy a megabyte
        raise ValueError(f"{_label(field)} is too long: {max_len} characters at most")
    # Line breaks and tabs become spaces; other control, format (zero-width, bidi) and
    # lone surrogate characters are dropped. Any script's letters and marks are kept.
    chars = (" " if c.isspace() else c for c in value or "")
    text = "".join(c for c in chars if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    name = " ".join(unicodedata.normalize("NFC", text).split())
    if len(name) > max_len:
        raise ValueError(f"{_label(field)} is too long: {max_len} characters at most")
    return name


def validate_intake(
    data: Mapping[str, object],
    *,
    mode: Mode,
    check_deliverability: bool = False,
    services: Sequence[str] | None = None,
) -> IntakeInput:
    """Validate and normalize one inquiry; raises FieldErrors listing every invalid field."""
    if mode not in _MODES:
        raise ValueError(f"unknown intake mode {mode!r}")
    errors: dict[str, str] = {}

    def field(name: str, normalize: Callable[[str | None], _T]) -> _T | None:
        """The normalized value of one field, or None with its error recorded."""
        try:
            return normalize(_raw_text(data.get(name)))
        except ValueError as err:
            errors[name] = str(err)
            return None

    first_name = field("first_name", lambda v: normalize_name(v, field="first_name")) or ""
    last_name = field("last_name", lambda v: normalize_name(v, field="last_name")) or ""
    email = field("email", lambda v: normalize_email(v, check_deliverability=check_deliverability))
    phone = field("phone", normalize_phone)
    preferred_contact = field(
        "preferred_contact", lambda v: _choice(v, PREFERRED_CONTACT, "Choose call, text or email")
    )
    best_time = field("best_time", _short_text)
    service = field("service", lambda v: _service(v, services))
    zip_code = field("zip_code", normalize_zip)
    message = field("message", _message)
    heard_about = field("heard_about", _short_text)
    crisis_answer = field("crisis_answer", _crisis_answer)
    source = field("source", lambda v: _choice(v, SOURCES, "Choose one of: " + ", ".join(SOURCES)))
    consent = _truthy(data.get("consent"))
    # The honeypot never errors (that would tell a bot what to change); the caller checks it.
    honeypot = data.get("website")
    website = (_storable(honeypot).strip() or None) if isinstance(honeypot, str) else None

    if mode in ("public", "api"):
        if not first_name:
            errors.setdefault("first_name", "Enter your first name")
        if not last_name:
            errors.setdefault("last_name", "Enter your last name")
        if not consent:
            errors["consent"] = MSG_CONSENT
    elif not first_name and not last_name:
        for name in ("first_name", "last_name"):
            errors.setdefault(name, "Enter a first or last name")
    if not _given(data.get("email")) and not _given(data.get("phone")):
        for name in ("email", "phone"):
            errors.setdefault(name, MSG_REACH)

    if errors:
        order = list(_LABELS) + ["consent"]
        raise FieldErrors(dict(sorted(errors.items(), key=lambda e: order.index(e[0]))))
    return IntakeInput(
        first_name=first_name,
        last_name=last_name,
        email=email,
        phone=phone,
        preferred_contact=preferred_contact,
        best_time=best_time,
        service=service,
        zip_code=zip_code,
        message=message,
        heard_about=heard_about,
        consent=consent,
        crisis_answer=crisis_answer,
        source=source or _DEFAULT_SOURCE[mode],
        website=website,
    )


def _raw_text(value: object) -> str | None:
    """A submitted value as text; ValueError for what a text column cannot hold."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 <= value < 10**20:  # a ZIP or phone sent as a JSON number
        return str(value)
    if not isinstance(value, str):
        raise ValueError(MSG_NOT_TEXT)
    if "\x00" in value or _SURROGATES.search(value):
        raise ValueError(MSG_UNSTORABLE)
    return value


def _given(value: object) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int) and not isinstance(value, bool)


def _storable(value: str) -> str:
    return _SURROGATES.sub("", value.replace("\x00", ""))


def _short_text(value: str | None) -> str | None:
    text = (value or "").strip()
    if len(text) > SHORT_TEXT_MAX:
        raise ValueError(_too_long(SHORT_TEXT_MAX, len(text)))
    return text or None


def _message(value: str | None) -> str | None:
    """The message exactly as typed; None when it is only whitespace."""
    if value is None or not value.strip():
        return None
    if len(value) > MESSAGE_MAX:
        raise ValueError(_too_long(MESSAGE_MAX, len(value)))
    return value


def _crisis_answer(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    key = " ".join(text.lower().replace("'", "").replace("\u2019", "").replace("_", " ").split())
    answer = _CRISIS_ALIASES.get(key)
    if answer is None:
        raise ValueError("Choose yes, no or prefer not to say")
    return answer


def _label(field: str) -> str:
    return _LABELS.get(field, field.replace("_", " ").capitalize())


def _too_long(max_len: int, length: int) -> str:
    return f"Keep this to {max_len:,} characters or fewer (it has {length:,})"


def _choice(value: str | None, choices: Sequence[str], message: str) -> str | None:
    """The choice matching value ignoring case and spaces; None when blank."""
    text = (value or "").strip().lower()
    if not text:
        return None
    if text not in choices:
        raise ValueError(message)
    return text


def _service(value: str | None, services: Sequence[str] | None) -> str | None:
    """The clinic's own spelling of a service, matched ignoring case and extra spaces."""
    text = _short_text(value)
    if text is None or services is None:
        return text
    key = " ".join(text.casefold().split())
    for service in services:
        if " ".join(service.casefold().split()) == key:
            return service
    raise ValueError("Choose one of the services in the list")


def _truthy(value: object) -> bool:
    """A checkbox as HTML forms, JSON and CSV send it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in _TRUE
