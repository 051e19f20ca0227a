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
# into links, escaped or not; an invisible zero-width space after each punctuation mark
# breaks every such pattern without changing what a person reads.
_ZWSP = "\u200b"


def md(text: str) -> str:
    """`text` escaped so Markdown shows it literally, on one line, with no link in it."""
    return _PUNCTUATION.sub(r"\\\1" + _ZWSP, " ".join(str(text).split()))
