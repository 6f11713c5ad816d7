"""Learner names from the URL: markup, SQL, control characters, 10 kB, any Unicode.

Every page must render, never hand the name to Markdown with HTML allowed, and cut a long name to
64 characters with a notice. Hostile names are then *stored* (a quiz passed through AppTest) and
read back with sqlite3: the stored key is the expected canonical name, written out by hand here,
and the same URL finds the same progress again. (Script execution in a real browser is checked in
test_xss_browser.py.)
"""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.deploy._apptest import open_app, shown, take_quiz

CUT_NOTICE = "cut to its first 64 characters"

HOSTILE_NAMES = [
    "<img src=x onerror=alert(1)>",
    "<script>window.__xss=1</script>",
    "[click me](javascript:alert(1))",
    "**bold** _it_ `code` $x^2$ :material/home: <b>",
    "Robert'); DROP TABLE quiz_results;--",
    "' OR '1'='1",
    "a\x00b\x07c\nd\te",
    "\u202eevil\u200b",
    "Zoe\u0308 \U0001f469\u200d\U0001f4bb 张伟 مريم",
    "%00%3Cb%3E",
    "x" * 10_000,
]


def _markdown_with_html(at) -> list[str]:
    return [m.value for m in [*at.markdown, *at.sidebar.markdown] if m.allow_html]


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(name=st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=300),
                      st.text(alphabet=st.characters(codec="utf-8"), min_size=60, max_size=120)))
@example(name="é" * 10_000)
def test_any_name_renders_safely(name: str) -> None:
    at = open_app(None, {"learner": name})
    assert not at.exception, [e.value for e in at.exception]
    learner = at.query_params.get("learner")
    if learner is not None:  # the URL now carries the cleaned name: short, printable, composed
        assert 0 < len(learner) <= 64
        assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in learner)
        assert unicodedata.is_normalized("NFC", learner)
        if len(learner) >= 4:  # never drawn by Markdown that lets HTML through
            assert not [m for m in _markdown_with_html(at) if learner in m]
    if sum(c.isalnum() for c in name) > 64:  # letters survive cleaning: this must be cut
        assert CUT_NOTICE in shown(at)


EXPECTED_KEYS = [  # raw URL value -> the learner the progress is stored under
    ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
    ("Robert'); DROP TABLE quiz_results;--", "Robert'); DROP TABLE quiz_results;--"),
    ("[click me](javascript:alert(1))", "[click me](javascript:alert(1))"),
    ("a\x00b\x07c\nd\te", "abc d e"),
    ("\u202eevil\u200b", "evil"),
    ("Zoe\u0308 \U0001f469\u200d\U0001f4bb", "Zo\u00eb \U0001f469\u200d\U0001f4bb"),
    ("x" * 10_000, "x" * 64),
]


@pytest.mark.parametrize(("raw", "key"), EXPECTED_KEYS, ids=range(len(EXPECTED_KEYS)))
def test_hostile_names_are_stored_verbatim_and_found_again(raw: str, key: str, module_db: Path) -> None:
    at = open_app(None, {"learner": raw})
    assert (CUT_NOTICE in shown(at)) == (len(raw) > 64)  # said once, where the name arrives
    at.switch_page("pages/1_What_is_MoE.py").run()
    at = take_quiz(at, 1)
    assert not at.exception, [e.value for e in at.exception]
    assert "Lesson passed" in shown(at)
    assert not [w.value for w in at.warning if "saved" in str(w.value)]
    with sqlite3.connect(module_db) as conn:
        stored = [row[0] for row in conn.execute("select learner from quiz_results where lesson = 1")]
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
    assert key in stored
    assert {"quiz_results", "lesson_visits"} <= tables  # nobody's SQL ran
    # The same raw URL reaches the same learner again.
    again = open_app(None, {"learner": raw})
    assert "1 / 5 completed" in shown(again)
