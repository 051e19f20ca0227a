"""crm.crisis: what is flagged urgent, what is not, and that it never breaks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.crisis import MAX_SCAN_CHARS, CrisisFlag, assess, scan

POSITIVES = [
    # (message, the phrase the reason should name)
    ("I don't want to be alive anymore", "don't want to be alive"),
    ("i dont wanna live like this", "dont wanna live"),
    ("Sometimes I just want to end it all.", "want to end it all"),
    ("I have thought about how to end my life", "end my life"),
    ("I want to kill myself", "kill myself"),
    ("I WANT TO KILL MYSELF", "kill myself"),
    ("i feel like killing myself most days", "killing myself"),
    ("I kil myself in my head every night", "kil myself"),
    ("thinking i should just kill my self", "kill my self"),
    ("History of suicide attempts", "suicide"),
    ("I have been Suicidal for months", "suicidal"),
    ("suicidal thoughts since college", "suicidal"),
    ("having suicde thoughts", "suicde"),
    ("sucide ideation", "sucide"),
    ("thinking about suiside", "suiside"),
    ("i feel sucidal", "sucidal"),
    ("I self-harm when it gets bad", "self-harm"),
    ("struggling with self harm", "self harm"),
    ("selfharm since I was 15", "selfharm"),
    ("I've been cutting myself again", "been cutting myself"),
    ("afraid I will hurt myself", "hurt myself"),
    ("Honestly I'd be better off dead", "better off dead"),
    ("I have no reason to live", "no reason to live"),
    ("I want to die", "want to die"),
    ("i just wanna die", "wanna die"),
    ("Some days I want to take my own life", "take my own life"),
    ("I thought about how to overdose on purpose", "overdose on purpose"),
    ("I'd rather not be here anymore", "not be here anymore"),
    ("I can't go on like this", "can't go on"),
    ("I cannot go on", "cannot go on"),
    ("Cant go on", "cant go on"),
    ("I can’t take it anymore", "can't take it anymore"),  # curly apostrophe
    ("I don’t want to live", "don't want to live"),
    ("I  want   to\n\tdie", "want to die"),  # extra whitespace, tabs, newlines
    ("I want to k\u200bill my\u200dself", "kill myself"),  # zero-width characters
    ("\u202eI want to kill myself\u202c", "kill myself"),  # bidi override marks
    ("ＩＷＡＮＴ ｔｏ ｋｉｌｌ ｍｙｓｅｌｆ", "kill myself"),  # full-width, folded by NFKC
    ("I want to ki\u0301ll myself", "kíll myself"),  # combining accent, shown as typed
    ("my family would be better without me", "be better without me"),
    ("there is nothing to live for", "nothing to live for"),
    ("life is not worth living", "is not worth living"),
    ("I wish I was dead", "wish i was dead"),
    ("I hope I don't wake up tomorrow", "hope i don't wake up"),
    ("I've lost the will to live", "lost the will to live"),
    ("want to unalive myself", "unalive myself"),
    ("I keep thinking of slitting my wrists", "slitting my wrists"),
    ("I was going to take all my pills", "take all my pills"),
    ("I wanted to jump off a bridge", "jump off a bridge"),
    ("I'm not suicidal, just exhausted", "suicidal"),  # negation is flagged on purpose
    ("I never had suicidal thoughts", "suicidal"),
]

NEGATIVES = [
    "I take a pain killer for my back, and painkillers barely help",
    "I'm killing it at work but feel flat at home",
    "This commute kills me, can we do evenings?",
    "Looking for help with treatment-resistant depression",
    "My anxiety is through the roof before meetings",
    "The deadline is killing me",
    "I killed the spider myself",
    "I cut my hair myself during lockdown",
    "I can't go on vacation until June",
    "I'm dying to know whether insurance covers this",
    "Suite 200, Ashburn VA 20147",
    "I sussed out the parking situation",
    "Can I drive myself home after the infusion?",
    "Chronic pain from CRPS; self-care hasn't worked",
    "I'd like to end my subscription to the newsletter",
    "I taught myself to meditate, it helps a bit",
    "Is the nasal spray an option? I live in Leesburg.",
    "",
]


@pytest.mark.parametrize(("message", "phrase"), POSITIVES)
def test_crisis_language_is_flagged_with_its_phrase(message: str, phrase: str) -> None:
    flag = assess(message=message, crisis_answer=None)
    assert flag.urgent
    assert phrase in scan(message)
    assert f'message mentions "{phrase}"' in flag.reasons


@pytest.mark.parametrize("message", NEGATIVES)
def test_everyday_wording_is_not_flagged(message: str) -> None:
    assert scan(message) == []
    assert assess(message=message, crisis_answer="no") == CrisisFlag(urgent=False, reasons=())


def test_yes_to_the_crisis_question_is_urgent_without_a_message() -> None:
    flag = assess(message=None, crisis_answer="yes")
    assert flag == CrisisFlag(urgent=True, reasons=('answered "yes" to the crisis question',))


@pytest.mark.parametrize("answer", ["no", "unsure", None, ""])
def test_other_answers_alone_are_not_urgent(answer: str | None) -> None:
    assert assess(message="Please call me after 5pm", crisis_answer=answer) == CrisisFlag(
        urgent=False, reasons=()
    )


def test_answer_and_message_both_become_reasons() -> None:
    flag = assess(message="I feel suicidal and want to die", crisis_answer="yes")
    assert flag.urgent
    assert flag.reasons == (
        'answered "yes" to the crisis question',
        'message mentions "suicidal"',
        'message mentions "want to die"',
    )


def test_unsure_still_flags_on_the_message() -> None:
    flag = assess(message="I think about suicide", crisis_answer="unsure")
    assert flag.reasons == ('message mentions "suicide"',)


def test_a_repeated_phrase_is_one_reason_and_case_does_not_matter() -> None:
    assert scan("Suicide. SUICIDE. suicide") == ["suicide"]


def test_a_phrase_inside_a_longer_match_is_not_repeated() -> None:
    assert scan("I want to kill myself") == ["kill myself"]
    assert scan("i don't want to live") == ["don't want to live"]


def test_reasons_stay_short_enough_to_store() -> None:
    text = " ".join(m for m, _ in POSITIVES) + " s" + "u" * 5000 + "icide"
    flag = assess(message=text, crisis_answer="yes")
    assert len("; ".join(flag.reasons)) <= 1000


def test_text_beyond_the_scan_cap_is_ignored_but_the_start_is_read() -> None:
    assert scan("x " * MAX_SCAN_CHARS + "suicide") == []
    assert scan("suicide " + "x" * 10_000_000) == ["suicide"]


@pytest.mark.parametrize(
    "text",
    [
        "\x00" * 1000,
        "kill\x00myself",
        "😀" * 5000 + " want to die 🙏",
        "\u200f\u200e\u202b\u2066\u2069" * 1000,
        "\ud800\udfff lone surrogates",
        "ß" * 30_000,
        "\ufdfa" * 25_000,  # expands 18x under NFKC
    ],
)
def test_hostile_input_never_raises(text: str) -> None:
    flag = assess(message=text, crisis_answer="yes")
    assert flag.urgent


def test_nul_bytes_separate_words() -> None:
    assert scan("kill\x00myself") == ["kill myself"]


@settings(max_examples=300, deadline=None)
@given(message=st.one_of(st.none(), st.text()), answer=st.one_of(st.none(), st.text()))
def test_random_text_never_raises(message: str | None, answer: str | None) -> None:
    flag = assess(message=message, crisis_answer=answer)
    assert isinstance(flag.urgent, bool)
    assert flag.urgent == bool(flag.reasons)
    assert all(isinstance(r, str) for r in flag.reasons)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_crisis_phrase_is_found_inside_any_surrounding_text(noise: str) -> None:
    assert scan(f"{noise}\n I want to kill myself.\n{noise}")
