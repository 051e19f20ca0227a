"""Crisis-language detector: flags messages that mention suicidal thoughts or self-harm.

A flag is never a diagnosis: every flag is reviewed by a person, so the detector leans
towards over-inclusion. Missing a real crisis is the failure we cannot afford; a false alarm
costs a coordinator a minute.

How matching works: the text is folded to a canonical form (NFKC, accents and zero-width /
bidi characters dropped, case-folded, apostrophes removed so "don't" == "dont", every other
non-letter run turned into one space). Patterns are written against that form with word
boundaries, so "pain killer" or "killing it at work" never meet "kill myself".

Negation: deliberately *not* used to unflag. "I'm not suicidal", "never had suicidal
thoughts" and "my brother died by suicide" are flagged; many crisis phrases carry a negation
themselves ("don't want to be alive"), and a person who writes "I'm not suicidal, but ..." is
exactly the one a human should read. The reason names the phrase so the reviewer sees why.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["MAX_SCAN_CHARS", "CrisisFlag", "assess", "scan"]

# Form messages are capped at 5,000 characters; anything longer is not a form message, and
# the cap keeps the scan fast on pasted novels or hostile input.
MAX_SCAN_CHARS = 20_000
# Keeps the joined reasons within Lead.crisis_reason (1,000 characters).
MAX_PHRASES = 10
MAX_PHRASE_CHARS = 60

_APOSTROPHES = frozenset("'\u2018\u2019\u201b\u02bc\u02bb\u02b9\u0060\u00b4\u2032\uff07")
# Latin look-alikes used to dodge filters (or typed on a Cyrillic/Greek keyboard by habit).
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i",
        "ѕ": "s", "ј": "j", "к": "k", "ӏ": "l", "ο": "o", "ι": "i", "κ": "k", "ε": "e",
        "υ": "u", "ѵ": "v", "ı": "i",
    }
)  # fmt: skip

# Building blocks, in canonical form (no apostrophes, single spaces).
_MYSELF = r"(?:my ?sel(?:f|ves)|my ?slef|mself|meself|my ?selv)"
_NOT = r"(?:don ?t|dont|do not|didn ?t|did not|doesn ?t|does not|no longer|not|never)"
_CANT = r"(?:can ?t|cannot|can not|cnt|couldn ?t|could not)"
_WANT = r"(?:want|wanna|wana|wanted|wanting|wish|feel like)"
_ANYMORE = r"(?:any ?more|any longer|no more)"

_PATTERNS: tuple[str, ...] = (
    # suicide, suicidal and their usual misspellings: suicde, sucide, suiside, suecide...
    r"\b(?=su\w*i)su+[ie]{0,2}[cs]{1,2}[ie]{0,2}d+(?:e|es|al|ial|el|le|ally|ality|ed|ing)?\b",
    r"\bsewer ?slide\b",
    r"\bunaliv(?:e|ed|es|ing)\b",
    rf"\bki+l+(?:s|ed|ing|in)? ?{_MYSELF}\b",
    rf"\b(?:hurt|hurting|hurts|harm|harming|injure|injuring|cut|cutting|cuts|burn|burning"
    rf"|punish|punishing|starve|starving|hang|hanging|shoot|shooting|drown|drowning"
    rf"|poison|poisoning|stab|stabbing|suffocate|suffocating|strangle|strangling"
    rf"|off|offing|unalive|unaliving) ?{_MYSELF}\b",
    r"\bs(?:el|le)f ?(?:harm\w*|injur\w*|mutilat\w*|inflicted)",
    r"\b(?:cut|cutting|slit|slitting|slice|slicing)(?: open)? (?:my |both )?wrists?\b",
    r"\b(?:been|started|start|starting|stop|stopped|relapsed|relapse|back to|urges? to) cutting\b",
    r"\bcutting again\b",
    r"\b(?:end|ending|ended|end to|take|taking|took|takes|ends) my (?:own )?life\b",
    r"\b(?:end|ending|ended|finish|finishing) (?:it all|everything)\b",
    r"\b(?:want|wanna|going|gonna|plan|planning|thinking about|thinking of|thought about"
    r"|think about|ready)(?: to)? (?:end|ending) it\b(?! (?:with|for|between)\b)",
    rf"\b{_NOT}(?: even| really| just)? {_WANT}(?: to| 2)? (?:be alive|live|living|exist"
    r"|existing|be here|be around|wake up|go on|keep living|keep going|carry on)\b",
    rf"\bnot (?:to )?(?:be|being) (?:here|alive|around) {_ANYMORE}\b",
    rf"\bnot (?:exist|existing) {_ANYMORE}\b",
    r"\bno (?:reason|point|purpose|will|desire)(?: in)? (?:to )?(?:live|living|be alive"
    r"|being alive|go on|going on|keep going|carry on)\b",
    r"\b(?:lost|losing|lose|lack|no|without) (?:the |my |any )?(?:will|desire) to live\b",
    r"\bnothing (?:left )?to live for\b",
    r"\b(?:not|isnt|is not|aint|no longer|never) worth living\b",
    r"\b(?:tired|sick) of (?:living|being alive|life)\b",
    r"\b(?:want|wanna|wana|wanted|wanting|wish|wishing|ready|plan|planning|rather|prefer"
    r"|deserve|would like|longing) (?:to |2 )?(?:just )?die\b",
    r"\b(?:want|wanna|wish|rather|better off|better) (?:to )?(?:be )?dead\b",
    r"\bwish(?:ing)? (?:i|id)(?: \w+){0,2} dead\b",
    r"\bwish (?:i|id) (?:could|would) (?:just )?die\b",
    r"\bwish (?:i|id) (?:wasnt|werent|was not|were not|hadnt been|had not been|was never"
    r"|were never|had never been|never) (?:alive|born|here|around)\b",
    r"\b(?:want|wanna|wish|wishing|ready)(?: to)?(?: just)?(?: go to)? (?:sleep|disappear) forever\b",
    r"\b(?:better off|be better|better) without me\b",
    r"\b(?:no ?one|nobody|noone) (?:would|will|is going to|gonna) (?:even )?miss me\b",
    rf"\b{_CANT} (?:go on(?! (?:(?:a|an|the) )?(?:vacation|holiday|trip|walk|date|cruise"
    rf"|hike|run)s?\b)|keep going(?! (?:to|back)\b)|carry on|take (?:it|this) {_ANYMORE}"
    rf"|do this {_ANYMORE}|live like this|keep living|go on living)\b",
    r"\b(?:overdos(?:e|ed|es|ing)|od|oding)(?: \w+){0,3}? (?:on purpose|intentionally"
    r"|deliberately)\b",
    r"\b(?:want|wanna|plan|planning|going|gonna|thinking about|think about|thought about"
    r"|tried|try|trying|attempted|attempt)(?: to)? (?:overdose|od)\b",
    r"\b(?:take|taking|took|swallow|swallowing|swallowed) (?:all (?:of )?my|the whole bottle of"
    r"|a whole bottle of|an entire bottle of) (?:pills|meds|medications?|tablets|sleeping pills)\b",
    r"\b(?:thoughts?|thinking|think|thought|ideation) (?:of|about) (?:dying|death|ending it"
    r"|ending my life|not being here|not being alive|not waking up)\b",
    r"\b(?:hope|hoping|pray|praying|wish|wishing|want|wanting)(?: that)?(?: i| to| id)?"
    r" (?:don ?t|do not|never|won ?t|will not|would not|wouldn ?t|not|didn ?t) (?:wake|waking) up\b",
    r"\b(?:sleep|asleep) and (?:never|not) wake up\b",
    r"\bjump(?:ing)? (?:off|from) (?:a|the|this|that|my) (?:bridge|building|roof|cliff|balcony)\b",
    r"\b(?:jump|step|walk|lie|lay)(?:ing)? in front of (?:a|the) (?:train|bus|car|truck)\b",
    r"\bgun to my head\b",
    r"\bblow my (?:brains|head) (?:out|off)\b",
)
_REGEXES = tuple(re.compile(p) for p in _PATTERNS)


@dataclass(frozen=True)
class CrisisFlag:
    """Whether an inquiry needs urgent human review, and why (human readable)."""

    urgent: bool
    reasons: tuple[str, ...]


def assess(*, message: str | None, crisis_answer: str | None) -> CrisisFlag:
    """Flag an inquiry urgent when the crisis question was answered yes or the message matches."""
    reasons: list[str] = []
    if isinstance(crisis_answer, str) and crisis_answer.strip().lower() == "yes":
        reasons.append('answered "yes" to the crisis question')
    reasons.extend(f'message mentions "{phrase}"' for phrase in scan(message or ""))
    return CrisisFlag(urgent=bool(reasons), reasons=tuple(reasons))


def scan(text: str) -> list[str]:
    """The crisis phrases found in text, lower-cased as written, first occurrence first."""
    if not isinstance(text, str) or not text:
        return []
    source = unicodedata.normalize("NFKC", text[:MAX_SCAN_CHARS])
    canonical, positions = _canonicalize(source)
    phrases: list[str] = []
    for start, end in _merged(m.span() for rx in _REGEXES for m in rx.finditer(canonical)):
        phrase = _display(source[positions[start] : positions[end - 1] + 1])
        if phrase not in phrases:
            phrases.append(phrase)
        if len(phrases) == MAX_PHRASES:
            break
    return phrases


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping matches joined, so "been cutting" + "cutting again" is one phrase."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _canonicalize(source: str) -> tuple[str, list[int]]:
    """Fold text for matching; positions[i] is the index in source of canonical char i."""
    out: list[str] = []
    positions: list[int] = []
    space = True  # suppresses a leading space
    for index, char in enumerate(source):
        if char in _APOSTROPHES:
            continue
        folded = _fold(char)
        if folded is None:  # zero-width, bidi mark, combining accent: as if absent
            continue
        if folded:
            out.append(folded)
            positions.extend([index] * len(folded))
            space = False
        elif not space:
            out.append(" ")
            positions.append(index)
            space = True
    return "".join(out), positions


@lru_cache(maxsize=4096)
def _fold(char: str) -> str | None:
    """Letters/digits folded to plain lower case; "" for a separator; None to drop the char."""
    if unicodedata.category(char) in ("Cf", "Mn", "Me"):
        return None
    # casefold can itself add a combining mark ("İ" -> "i̇"), so strip marks after it.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", char).casefold())
    folded = "".join(c for c in folded if unicodedata.category(c) not in ("Mn", "Me"))
    folded = folded.translate(_HOMOGLYPHS)
    return folded if folded.isalnum() else ""


def _display(raw: str) -> str:
    """The matched words as the person wrote them, tidied to one line for the reason."""
    kept = []
    for char in raw:
        if char in _APOSTROPHES:
            kept.append("'")
        elif unicodedata.category(char) in ("Cf", "Mn", "Me"):
            continue
        elif char.isalnum() or char == "-":
            kept.append(char)
        else:
            kept.append(" ")
    phrase = " ".join("".join(kept).casefold().split())
    if len(phrase) > MAX_PHRASE_CHARS:
        phrase = phrase[: MAX_PHRASE_CHARS - 1] + "…"
    return phrase
