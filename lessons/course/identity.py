"""Learner identity: private learner ids, and one canonical form for the name a learner types.

Ids (contract 5 of shared/DESIGN.md): without sign-in a learner is `browser:<token>`, where the
token is 128 random bits from `secrets` (22 URL-safe characters) kept in their browser and in
their "resume on another device" link; a signed-in learner is `sso:<account id>`. Whoever knows a
token is that learner, so a token is never derived from anything a person types or can guess.

Names: the name a learner types is only a display name, and `?learner=NAME` links from before
private ids are how old progress (stored under the name) is found once.

A name typed into a URL can carry anything: stray spaces, a decomposed "é" that looks like the
composed one, a tab, a right-to-left override that makes a name display backwards, or a thousand
characters. `normalize_learner_name` turns it into the one form the progress store keys on, so
the same person is always the same learner and nothing invisible hides in a name.

What is *not* done here: escaping. A name such as `<b>x</b>` or `'; DROP TABLE x; --` is kept
verbatim; the display layer escapes when it draws and the store uses bound parameters.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass

DEFAULT_LEARNER = "guest"  # the name shown until a learner picks one
MAX_LEARNER_CHARS = 64  # code points after NFC; the store's column is VARCHAR(64)
BROWSER_PREFIX = "browser:"  # learner ids kept in a browser
SIGNED_IN_PREFIX = "sso:"  # learner ids of signed-in accounts
TOKEN_BYTES = 16  # 128 bits: guessing one of a million learners' tokens takes ~2^108 tries
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")  # what secrets.token_urlsafe(16) returns


def new_token() -> str:
    """A fresh, unguessable learner token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def parse_token(raw: object) -> str | None:
    """`raw` if it has the form of a token (from a cookie or a link), else None."""
    return raw if isinstance(raw, str) and _TOKEN.fullmatch(raw) else None


def browser_learner(token: str) -> str:
    """The progress store's key for the learner whose browser holds `token`."""
    if parse_token(token) is None:
        raise ValueError("not a learner token")
    return BROWSER_PREFIX + token


def is_reserved(name: str) -> bool:
    """Names that look like learner ids. Old `?learner=NAME` links never reach such a key, or a
    crafted link would read or move someone's progress; nobody is shown such a name either."""
    folded = name.casefold()
    return folded.startswith(SIGNED_IN_PREFIX) or folded.startswith(BROWSER_PREFIX)

# Format characters (category Cf) that only change how text is *shown*: bidirectional overrides
# and isolates (which can make "alice" display as another name), the zero-width space, the BOM,
# the soft hyphen and invisible operators (each would make a second learner who looks the same).
# Other Cf characters stay: ZWJ/ZWNJ join emoji (👩‍💻) and Indic/Persian letters, and the tag
# characters U+E0020..E007F spell subdivision flags (🏴 of Scotland).
_INVISIBLE_CF = frozenset(
    "\u061c\u200b\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069\ufeff\u00ad"
)
_WHITESPACE_RUN = re.compile(r"\s+")
_ZWJ = "\u200d"


@dataclass(frozen=True)
class LearnerName:
    """A cleaned learner name and what cleaning had to do (so the UI can tell the learner)."""

    name: str
    was_cut: bool = False  # longer than MAX_LEARNER_CHARS: the tail was dropped
    was_empty: bool = False  # nothing usable was given: `name` is DEFAULT_LEARNER


def normalize_learner_name(raw: str | None) -> LearnerName:
    """Return the canonical form of `raw`; idempotent (normalising the result changes nothing).

    Steps: Unicode NFC (so "e" + combining acute and "é" are one learner); control characters
    (Cc) and invisible/bidi format characters removed, control *whitespace* such as a newline
    becoming a space; runs of whitespace collapsed to one space; trimmed; cut to
    MAX_LEARNER_CHARS without splitting an emoji or a letter from its accent; empty → guest.
    """
    if raw is None:
        return LearnerName(DEFAULT_LEARNER, was_empty=True)
    if not isinstance(raw, str):
        raise TypeError(f"learner name must be a string, not {type(raw).__name__}")
    text = _clean(raw)
    was_cut = len(text) > MAX_LEARNER_CHARS
    if was_cut:
        text = _clean(_cut_at_cluster(text, MAX_LEARNER_CHARS))
    if not text:
        return LearnerName(DEFAULT_LEARNER, was_cut=was_cut, was_empty=True)
    return LearnerName(text, was_cut=was_cut)


def _clean(raw: str) -> str:
    text = unicodedata.normalize("NFC", raw)
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" or ch in "\u2028\u2029":
            kept.append(" " if ch.isspace() else "")  # "Ann\nLee" -> "Ann Lee", NUL -> ""
        elif category == "Cs" or ch in _INVISIBLE_CF:
            continue  # lone surrogates cannot be stored as UTF-8; invisible marks mislead
        else:
            kept.append(ch)
    text = _WHITESPACE_RUN.sub(" ", "".join(kept)).strip()
    # Removing a control character can bring a letter next to its accent: compose again.
    return unicodedata.normalize("NFC", text)


def _extends_cluster(ch: str) -> bool:
    """True when `ch` belongs to the character before it (an accent, emoji modifier, ...)."""
    code = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Mc", "Me")  # accents, variation selectors
        or ch == _ZWJ
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters of subdivision flags
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF  # two of these make one flag: 🇫🇷


def _cut_at_cluster(text: str, limit: int) -> str:
    """Keep at most `limit` code points, backing off so no visible character is split."""
    end = limit
    # Back off while the first dropped character still belongs to the last kept one,
    # or the last kept one is a joiner waiting for its partner.
    while end > 0 and (_extends_cluster(text[end]) or text[end - 1] == _ZWJ):
        end -= 1
    # Regional indicators pair up from the start of their run; never keep half a flag.
    run = 0
    while run < end and _is_regional_indicator(text[end - 1 - run]):
        run += 1
    if run % 2 == 1 and _is_regional_indicator(text[end]):
        end -= 1
    return text[:end]
