"""crm.validation: each rule and its message, the accepted formats, and that it never breaks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.errors import CRMError
from crm.validation import (
    CRISIS_ANSWERS,
    MSG_CONSENT,
    MSG_EMAIL,
    MSG_PHONE,
    MSG_PHONE_EXTENSION,
    MSG_REACH,
    MSG_UNSTORABLE,
    MSG_ZIP,
    PREFERRED_CONTACT,
    SOURCES,
    FieldErrors,
    IntakeInput,
    Mode,
    email_key,
    format_phone_national,
    normalize_email,
    normalize_name,
    normalize_phone,
    normalize_zip,
    validate_intake,
)

SERVICES = ["Depression (incl. treatment-resistant)", "Anxiety", "PTSD", "Chronic pain"]
FIELDS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "preferred_contact",
    "best_time",
    "service",
    "zip_code",
    "message",
    "heard_about",
    "consent",
    "crisis_answer",
    "source",
    "website",
]


def public_form(**changes: object) -> dict[str, object]:
    """A valid public-form submission, with the given fields changed."""
    data: dict[str, object] = {
        "first_name": "Ana",
        "last_name": "Lopez",
        "email": "ana@example.com",
        "phone": "(571) 555-0100",
        "consent": "on",
    }
    data.update(changes)
    return data


def errors_of(data: dict[str, object], **kwargs: Any) -> dict[str, str]:
    with pytest.raises(FieldErrors) as caught:
        validate_intake(data, **{"mode": "public", **kwargs})
    return caught.value.errors


# --- choices --------------------------------------------------------------------------------


def test_choice_tuples_match_the_spec() -> None:
    assert PREFERRED_CONTACT == ("call", "text", "email")
    assert CRISIS_ANSWERS == ("yes", "no", "unsure")
    assert SOURCES == ("web_form", "phone", "referral", "import")


# --- email ----------------------------------------------------------------------------------


def test_email_domain_is_lower_cased_and_local_part_kept() -> None:
    assert normalize_email("  Ana.Lopez@Example.COM ") == "Ana.Lopez@example.com"


def test_email_key_is_lower_cased_for_duplicate_checks() -> None:
    assert email_key("Ana.Lopez@example.com") == "ana.lopez@example.com"
    assert email_key(normalize_email("ANA.LOPEZ@EXAMPLE.COM") or "") == email_key(
        normalize_email("ana.lopez@example.com") or ""
    )


@pytest.mark.parametrize("value", [None, "", "   "])
def test_blank_email_is_none(value: str | None) -> None:
    assert normalize_email(value) is None


@pytest.mark.parametrize(
    "value",
    ["ana", "ana@", "@example.com", "ana@example", "ana@@example.com", "ana @example.com",
     "ana@localhost", "ana@exa mple.com", "a" * 400 + "@example.com", "ana@example..com"],
)  # fmt: skip
def test_invalid_email_is_rejected_with_a_clear_message(value: str) -> None:
    with pytest.raises(ValueError, match="^Enter a valid email address, like name@example.com$"):
        normalize_email(value)


def test_international_email_is_accepted() -> None:
    assert normalize_email("josé@exämple.com") == "josé@exämple.com"


# --- phone ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["(571) 555-0100", "571.555.0100", "+1 571 555 0100", "571-555-0100", "5715550100",
     "1 (571) 555-0100", " +1-571-555-0100 "],
)  # fmt: skip
def test_us_phone_formats_become_e164(value: str) -> None:
    assert normalize_phone(value) == "+15715550100"


def test_foreign_number_with_country_code_is_kept() -> None:
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize(
    "value", ["555-0100", "123", "(111) 111-1111", "phone me", "+1 571 555 01000", "9" * 300]
)
def test_invalid_phone_is_rejected(value: str) -> None:
    with pytest.raises(ValueError, match=re.escape(MSG_PHONE)):
        normalize_phone(value)


def test_phone_extension_is_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match=MSG_PHONE_EXTENSION):
        normalize_phone("571-555-0100 ext. 12")


@pytest.mark.parametrize("value", [None, "", "  "])
def test_blank_phone_is_none(value: str | None) -> None:
    assert normalize_phone(value) is None


def test_phone_is_shown_in_national_format() -> None:
    assert format_phone_national("+15715550100") == "(571) 555-0100"
    assert format_phone_national("+442079460958") == "+44 20 7946 0958"
    assert format_phone_national("not a number") == "not a number"


# --- ZIP ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20147", "20147"), (" 20147 ", "20147"), ("20147-1234", "20147-1234"),
     ("201471234", "20147-1234"), ("20147 1234", "20147-1234"), ("", None), (None, None)],
)  # fmt: skip
def test_zip_and_zip_plus_4_are_canonical(value: str | None, expected: str | None) -> None:
    assert normalize_zip(value) == expected


@pytest.mark.parametrize("value", ["2014", "201477", "20147-12", "abcde", "٢٠١٤٧", "20147--1234"])
def test_invalid_zip_is_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="5-digit ZIP"):
        normalize_zip(value)


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["José", "Zoë", "李", "محمد", "O'Brien", "Jean-Luc", "Nguyễn Văn"])
def test_names_in_any_script_are_kept(name: str) -> None:
    assert normalize_name(name, field="first_name") == name


def test_name_is_trimmed_collapsed_and_invisible_characters_removed() -> None:
    raw = "  Mary\u200b \t\n Ann\u202e\x07  "
    assert normalize_name(raw, field="first_name") == "Mary Ann"


def test_a_huge_name_is_refused_without_tidying_it() -> None:
    with pytest.raises(ValueError, match="too long"):
        normalize_name(" " * 10_000_000, field="first_name")


def test_name_decomposed_accents_are_composed() -> None:
    assert normalize_name("Jose\u0301", field="first_name") == "José"


def test_name_length_limit_names_the_field() -> None:
    assert normalize_name("a" * 80, field="last_name") == "a" * 80
    with pytest.raises(ValueError, match="^Last name is too long: 80 characters at most$"):
        normalize_name("a" * 81, field="last_name")
    with pytest.raises(ValueError, match="10 characters"):
        normalize_name("a" * 11, field="nickname", max_len=10)


# --- validate_intake: the public form -------------------------------------------------------


def test_valid_public_form_is_normalized() -> None:
    result = validate_intake(
        public_form(
            email="Ana@Example.com",
            preferred_contact=" Text ",
            best_time="  evenings ",
            service="anxiety",
            zip_code="20147",
            message="  Hello,\n  I need help.  ",
            heard_about=" Google ",
            crisis_answer="No",
            website="",
        ),
        mode="public",
        services=SERVICES,
    )
    assert result == IntakeInput(
        first_name="Ana",
        last_name="Lopez",
        email="Ana@example.com",
        phone="+15715550100",
        preferred_contact="text",
        best_time="evenings",
        service="Anxiety",
        zip_code="20147",
        message="  Hello,\n  I need help.  ",
        heard_about="Google",
        consent=True,
        crisis_answer="no",
        source="web_form",
        website=None,
    )


def test_all_errors_are_reported_at_once() -> None:
    errors = errors_of(
        {"email": "nope", "phone": "123", "zip_code": "1", "preferred_contact": "fax"}
    )
    assert errors == {
        "first_name": "Enter your first name",
        "last_name": "Enter your last name",
        "email": MSG_EMAIL,
        "phone": MSG_PHONE,
        "zip_code": MSG_ZIP,
        "preferred_contact": "Choose call, text or email",
        "consent": MSG_CONSENT,
    }


def test_errors_are_listed_in_form_order() -> None:
    errors = errors_of({"consent": "no", "zip_code": "x", "first_name": "Ana", "email": "x"})
    assert list(errors) == ["last_name", "email", "zip_code", "consent"]


def test_field_errors_is_a_domain_error_with_a_readable_message() -> None:
    with pytest.raises(CRMError, match="First name: Enter your first name"):
        validate_intake(public_form(first_name=""), mode="public")


@pytest.mark.parametrize("mode", ["public", "api"])
def test_public_and_api_need_both_names(mode: Mode) -> None:
    assert errors_of(public_form(first_name="  ", last_name=None), mode=mode) == {
        "first_name": "Enter your first name",
        "last_name": "Enter your last name",
    }


@pytest.mark.parametrize("mode", ["public", "api"])
@pytest.mark.parametrize("value", [None, "", False, "false", "off", "no", "0", 0, "maybe"])
def test_public_and_api_need_consent(mode: Mode, value: object) -> None:
    assert errors_of(public_form(consent=value), mode=mode) == {"consent": MSG_CONSENT}


@pytest.mark.parametrize("value", [True, "true", "on", "yes", "1", 1, " ON ", "True"])
def test_consent_accepts_checkbox_spellings(value: object) -> None:
    assert validate_intake(public_form(consent=value), mode="public").consent is True


@pytest.mark.parametrize("mode", ["public", "api", "phone", "import"])
def test_email_or_phone_is_required(mode: Mode) -> None:
    errors = errors_of(public_form(email=" ", phone=None), mode=mode)
    assert errors == {"email": MSG_REACH, "phone": MSG_REACH}
    assert MSG_REACH == "Give an email address or a mobile phone number so we can reach you"


def test_email_alone_or_phone_alone_is_enough() -> None:
    assert validate_intake(public_form(phone=""), mode="public").phone is None
    assert validate_intake(public_form(email=""), mode="public").email is None


def test_an_invalid_email_is_reported_as_invalid_not_missing() -> None:
    assert errors_of(public_form(email="ana@", phone="")) == {"email": MSG_EMAIL}


# --- validate_intake: phone and import ------------------------------------------------------


@pytest.mark.parametrize("mode", ["phone", "import"])
def test_phone_and_import_need_only_one_name_and_no_consent(mode: Mode) -> None:
    result = validate_intake({"last_name": "Lopez", "phone": "571.555.0100"}, mode=mode)
    assert (result.first_name, result.last_name, result.consent) == ("", "Lopez", False)
    result = validate_intake({"first_name": "Ana", "email": "a@example.com"}, mode=mode)
    assert result.first_name == "Ana"


@pytest.mark.parametrize("mode", ["phone", "import"])
def test_phone_and_import_need_some_name(mode: Mode) -> None:
    assert errors_of({"phone": "5715550100"}, mode=mode) == {
        "first_name": "Enter a first or last name",
        "last_name": "Enter a first or last name",
    }


@pytest.mark.parametrize(
    ("mode", "source"),
    [("public", "web_form"), ("api", "web_form"), ("phone", "phone"), ("import", "import")],
)
def test_source_defaults_by_mode(mode: Mode, source: str) -> None:
    assert validate_intake(public_form(), mode=mode).source == source


def test_source_must_be_a_known_one() -> None:
    assert validate_intake(public_form(source="Referral"), mode="phone").source == "referral"
    assert "source" in errors_of(public_form(source="billboard"))


def test_unknown_mode_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown intake mode"):
        validate_intake(public_form(), mode="fax")  # type: ignore[arg-type]


# --- validate_intake: other fields ----------------------------------------------------------


def test_message_is_kept_exactly_as_typed() -> None:
    message = "  Line one\r\n\tline two 😀 \u200b\x07 <b>hi</b> ' OR 1=1 --  "
    assert validate_intake(public_form(message=message), mode="public").message == message


@pytest.mark.parametrize("message", [None, "", "  \n\t "])
def test_blank_message_is_none(message: str | None) -> None:
    assert validate_intake(public_form(message=message), mode="public").message is None


def test_message_length_limit() -> None:
    assert validate_intake(public_form(message="x" * 5000), mode="public").message == "x" * 5000
    assert errors_of(public_form(message="x" * 5001)) == {
        "message": "Keep this to 5,000 characters or fewer (it has 5,001)"
    }


@pytest.mark.parametrize("field", ["best_time", "heard_about"])
def test_short_fields_are_trimmed_and_limited_to_200(field: str) -> None:
    result = validate_intake(public_form(**{field: f" {'x' * 200} "}), mode="public")
    assert getattr(result, field) == "x" * 200
    assert errors_of(public_form(**{field: "x" * 201})) == {
        field: "Keep this to 200 characters or fewer (it has 201)"
    }


@pytest.mark.parametrize("field", [f for f in FIELDS if f not in ("consent", "website")])
def test_nul_bytes_are_refused_in_every_text_field(field: str) -> None:
    errors = errors_of(public_form(**{field: "Ana\x00"}))
    assert errors[field] == MSG_UNSTORABLE
    assert MSG_UNSTORABLE == "This contains characters we can't store; please remove them"


def test_lone_surrogates_are_refused() -> None:
    assert errors_of(public_form(message="hi \ud83d")) == {"message": MSG_UNSTORABLE}


def test_non_text_values_are_refused_and_numbers_accepted() -> None:
    assert errors_of(public_form(first_name=["Ana"], last_name={"x": 1})) == {
        "first_name": "Enter this as plain text",
        "last_name": "Enter this as plain text",
    }
    result = validate_intake(public_form(zip_code=20147, phone=5715550100), mode="api")
    assert (result.zip_code, result.phone) == ("20147", "+15715550100")
    assert errors_of(public_form(zip_code=10**5000, phone=-1, website=10**5000)) == {
        "zip_code": "Enter this as plain text",
        "phone": "Enter this as plain text",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", "yes"), ("YES", "yes"), ("no", "no"), ("unsure", "unsure"),
     ("Prefer not to say", "unsure"), ("prefer_not_to_say", "unsure"), ("", None), (None, None),
     ("  ", None)],
)  # fmt: skip
def test_crisis_answer_is_normalized(value: str | None, expected: str | None) -> None:
    result = validate_intake(public_form(crisis_answer=value), mode="public")
    assert result.crisis_answer == expected


def test_unknown_crisis_answer_is_an_error() -> None:
    assert errors_of(public_form(crisis_answer="sometimes")) == {
        "crisis_answer": "Choose yes, no or prefer not to say"
    }


def test_service_matches_the_clinic_list_ignoring_case() -> None:
    result = validate_intake(public_form(service="  ptsd "), mode="public", services=SERVICES)
    assert result.service == "PTSD"
    assert errors_of(public_form(service="Botox"), services=SERVICES) == {
        "service": "Choose one of the services in the list"
    }


def test_service_is_free_text_without_a_list_and_optional() -> None:
    assert validate_intake(public_form(service=" Anything "), mode="public").service == "Anything"
    assert validate_intake(public_form(), mode="public", services=SERVICES).service is None


def test_honeypot_is_returned_never_an_error() -> None:
    result = validate_intake(public_form(website=" http://spam.example \x00"), mode="public")
    assert result.website == "http://spam.example"


def test_names_in_other_scripts_pass_through_the_form() -> None:
    result = validate_intake(public_form(first_name="محمد", last_name="李"), mode="public")
    assert (result.first_name, result.last_name) == ("محمد", "李")


# --- properties -----------------------------------------------------------------------------

_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.just(10**5000), st.text(), st.text(max_size=6000)
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text()), _values),
    mode=st.sampled_from(["public", "phone", "import", "api"]),
)
def test_random_input_raises_nothing_but_field_errors(data: dict[str, object], mode: Any) -> None:
    try:
        result = validate_intake(data, mode=mode, services=SERVICES)
    except FieldErrors as err:
        assert err.errors
        assert all(isinstance(m, str) and m for m in err.errors.values())
    else:
        assert isinstance(result, IntakeInput)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalizers_raise_only_value_error(value: str) -> None:
    for normalize in (normalize_email, normalize_phone, normalize_zip):
        try:
            normalize(value)
        except ValueError:
            pass
    normalize_name(value, field="first_name", max_len=10_000)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=5000).filter(lambda m: m.strip() and "\x00" not in m))
def test_any_accepted_message_round_trips_exactly(message: str) -> None:
    assert validate_intake(public_form(message=message), mode="public").message == message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_normalized_names_are_stable(name: str) -> None:
    once = normalize_name(name, field="first_name")
    assert normalize_name(once, field="first_name") == once
    assert once == once.strip()
    assert "\x00" not in once and "  " not in once
