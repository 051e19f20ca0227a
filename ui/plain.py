"""Putting our own wording around names into Markdown without letting a name format anything.

Words a lead typed are shown with st.text / st.code, never through here. This is for labels
we compose that include a staff member's name (a timeline title, a caption).
"""

from __future__ import annotations

import re

# CommonMark lets any ASCII punctuation be backslash-escaped; Streamlit's extras (":red[...]",
# ":material/x:", "$latex$") are made of the same characters.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


# GitHub-flavoured Markdown also turns bare addresses ("www.x.test", "http://...", "a@b.test")
# into links, escaped or not. An invisible zero-width space inside each trigger ("www.",
# "://", "@") breaks the pattern and leaves every other character as typed.
_ZWSP = "\u200b"
_AUTOLINK_TRIGGERS = re.compile(r"(?i)(\bwww\.|:(?=//)|@)")


def md(text: str) -> str:
    """`text` escaped so Markdown shows it literally, on one line, with no link in it."""
    defused = _AUTOLINK_TRIGGERS.sub(lambda m: m.group(1) + _ZWSP, " ".join(str(text).split()))
    return _PUNCTUATION.sub(r"\\\1", defused)
