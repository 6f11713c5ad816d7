"""Learner names from the URL (old `?learner=NAME` links): markup, SQL, control characters, 10 kB,
any Unicode.

Every page must render, never hand the name to Markdown with HTML allowed, take the name out of
the address, and cut a long name to 64 characters with a notice. Hostile names are then *stored*
(a quiz passed through AppTest) and read back with sqlite3: the name is kept verbatim as the
learner's display name (the expected canonical form written out by hand here), the progress under
the browser's private id, and the same URL in another session opens nothing. (Script execution in
a real browser is checked in test_xss_browser.py.)
"""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from lessons.course.render import md_escape
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
    assert "learner" not in at.query_params  # read once; the address never keeps a name
    learner = at.session_state["learner_current"].display  # short, printable, composed
    assert 0 < len(learner) <= 64
    assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in learner)
    assert unicodedata.is_normalized("NFC", learner)
    assert f"Learning as **{md_escape(learner)}**" in shown(at)
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
def test_hostile_names_are_kept_verbatim_as_display_names_and_open_nothing(
        raw: str, key: str, module_db: Path) -> None:
    at = open_app(None, {"learner": raw})
    assert (CUT_NOTICE in shown(at)) == (len(raw) > 64)  # said once, where the name arrives
    at.switch_page("pages/1_What_is_MoE.py").run()
    at = take_quiz(at, 1)
    assert not at.exception, [e.value for e in at.exception]
    assert "Lesson passed" in shown(at)
    assert not [w.value for w in at.warning if "saved" in str(w.value)]
    learner = at.session_state["learner_current"].key
    with sqlite3.connect(module_db) as conn:
        stored = [row[0] for row in conn.execute("select learner from quiz_results where lesson = 1")]
        names = dict(conn.execute("select id, display_name from learners").fetchall())
        tables = {row[0] for row in conn.execute("select name from sqlite_master where type = 'table'")}
    assert learner in stored and key not in stored  # progress is keyed by the private id ...
    assert names[learner] == key  # ... and the name is kept verbatim, only to be shown
    assert {"quiz_results", "lesson_visits", "predictions", "learners"} <= tables  # nobody's SQL ran
    # The same raw URL in another browser is another learner: the name alone opens nothing.
    again = open_app(None, {"learner": raw})
    assert "0 / 5 completed" in shown(again)
    assert again.session_state["learner_current"].key != learner
