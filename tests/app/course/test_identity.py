"""Learner names: what `normalize_learner_name` keeps, drops and cuts (expected values written out);
private learner tokens: random, of one form, and nothing else passes for one."""

import unicodedata

import pytest

from lessons.course.identity import (
    DEFAULT_LEARNER,
    MAX_LEARNER_CHARS,
    LearnerName,
    browser_learner,
    is_reserved,
    new_token,
    normalize_learner_name,
    parse_token,
)

ZWJ_CODER = "\U0001f469\u200d\U0001f4bb"  # 👩‍💻: woman, zero-width joiner, laptop
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"  # tag characters
FRANCE, GERMANY = "\U0001f1eb\U0001f1f7", "\U0001f1e9\U0001f1ea"  # two regional indicators each


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  ada  ", "ada"),
        ("Ada\tLovelace", "Ada Lovelace"),  # a tab is whitespace, not part of a name
        ("Ann\n\nLee", "Ann Lee"),
        ("a  \u3000 b", "a b"),  # runs of any whitespace become one space
        ("Zoe\u0308", "Zoë"),  # NFC: e + combining diaeresis is the same learner as ë
        ("nul\x00byte", "nulbyte"),
        ("bell\x07", "bell"),
        ("\u202eevil", "evil"),  # right-to-left override would display the name backwards
        ("\ufeffbom", "bom"),
        ("al\u200bice", "alice"),  # a zero-width space would make a look-alike second learner
    ],
)
def test_cleaning(raw: str, expected: str) -> None:
    result = normalize_learner_name(raw)
    assert result == LearnerName(expected)
    assert unicodedata.is_normalized("NFC", result.name)


@pytest.mark.parametrize(
    "name",
    [
        ZWJ_CODER,
        SCOTLAND,
        FRANCE,
        "\U0001f44b\U0001f3fd",  # waving hand + skin tone
        "\u0645\u0631\u064a\u0645",  # Arabic
        "\u0928\u093f\u0930\u094d\u092e\u0932\u093e",  # Devanagari with a virama
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian with a ZWNJ, which must stay
        "\u5f20\u4f1f",  # CJK
        "O'Brien",
        'say "hi"',
        "'; DROP TABLE quiz_results; --",
        "<script>alert(1)</script>",
        "Robert'); DROP TABLE lesson_visits;--",
    ],
)
def test_ordinary_names_are_kept_verbatim(name: str) -> None:
    assert normalize_learner_name(name) == LearnerName(name)


@pytest.mark.parametrize("raw", [None, "", "   ", "\n\t", "\x00\x01", "\u202e\u200e"])
def test_empty_becomes_guest(raw: str | None) -> None:
    assert normalize_learner_name(raw) == LearnerName(DEFAULT_LEARNER, was_empty=True)
    assert DEFAULT_LEARNER == "guest"


def test_exactly_64_is_not_cut() -> None:
    name = "x" * MAX_LEARNER_CHARS
    assert normalize_learner_name(name) == LearnerName(name)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("y" * 100, "y" * 64),
        ("a" * 63 + ZWJ_CODER, "a" * 63),  # never keep half of an emoji sequence
        ("a" * 62 + ZWJ_CODER, "a" * 62),  # the joiner would be the 64th: drop the whole emoji
        ("a" * 63 + "q\u0307z", "a" * 63),  # q + combining dot (no precomposed form) stays together
        ("a" * 63 + FRANCE, "a" * 63),  # half a flag would show as a letter box
        ("a" * 62 + FRANCE + GERMANY, "a" * 62 + FRANCE),
        ("a" * 63 + " " + "b" * 10, "a" * 63),  # no trailing space after the cut
    ],
)
def test_cut_to_64_without_splitting_characters(raw: str, expected: str) -> None:
    assert normalize_learner_name(raw) == LearnerName(expected, was_cut=True)


def test_cut_of_nothing_but_accents_falls_back_to_guest() -> None:
    result = normalize_learner_name("\u0301" * 100)
    assert result == LearnerName(DEFAULT_LEARNER, was_cut=True, was_empty=True)


@pytest.mark.parametrize(
    "raw",
    ["  Zoe\u0308 ", "a\x00\u0301b", "x" * 200, "a" * 63 + ZWJ_CODER, " \u202eq\u0307" * 30, "guest"],
)
def test_idempotent(raw: str) -> None:
    once = normalize_learner_name(raw).name
    assert normalize_learner_name(once) == LearnerName(once)


def test_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        normalize_learner_name(42)  # type: ignore[arg-type]


# --- private learner ids ------------------------------------------------------------------------


def test_tokens_are_fresh_random_and_of_one_form() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000  # 128 random bits each: a repeat would mean no randomness
    assert all(parse_token(t) == t and len(t) == 22 for t in tokens)
    assert browser_learner(next(iter(tokens))).startswith("browser:")
    # Every character position varies: nothing is a counter, a time stamp or derived from a name.
    assert all(len({t[i] for t in tokens}) > 20 for i in range(21))


@pytest.mark.parametrize("raw", [None, 7, "", "short", "a" * 21, "a" * 23, "a" * 21 + "=",
                                 "a" * 21 + "\u00e9", "../../../etc/passwd", " " + "a" * 22])
def test_anything_else_is_not_a_token(raw: object) -> None:
    assert parse_token(raw) is None
    with pytest.raises(ValueError):
        browser_learner(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "reserved"), [
    ("sso:alice", True), ("SSO:Alice", True), ("browser:abc", True), ("Browser:x", True),
    ("ssoalice", False), ("my browser: firefox", False), ("ada", False),
])
def test_names_that_look_like_ids_are_reserved(name: str, reserved: bool) -> None:
    assert is_reserved(name) is reserved
