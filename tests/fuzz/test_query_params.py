"""Whatever is typed into the URL, every page renders, and settings it cannot use are fixed up.

The URL-backed settings of each page are discovered, not listed: a clean run writes every one of
them into the URL (`lessons.course.url_state.write_url`). Hypothesis then feeds each page those keys, keys
seen in the lesson sources, and random keys, with hostile values (huge, negative, NaN, words,
markup, control characters). Properties:

- no page ever shows a traceback, and every lesson body still draws;
- every numeric setting left in the URL is a bounded number;
- a non-numeric or huge value for a numeric setting (`steps=10**9`) is replaced with a notice,
  and the URL left behind is valid: opened again, it needs no adjustment and stays the same.
"""

from __future__ import annotations

import functools
import re

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.deploy._apptest import REPO, assert_lesson_works, open_app, shown

PAGES = [None, 1, 2, 3, 4, 5]  # None: the home page
NOTICE = "Link settings adjusted"
# No shrinking: a failure is reported with the example as generated, and CI stays quick.
FUZZ = settings(max_examples=8, deadline=None, derandomize=True, database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@functools.cache
def url_settings(page: int | None) -> dict[str, str]:
    """The settings a clean run of `page` puts in its URL, with their default values."""
    at = open_app(page, {"learner": "fuzz"})
    return {k: v for k, v in at.query_params.items() if k != "learner"}


@functools.cache
def source_keys() -> tuple[str, ...]:
    """Widget and URL key names written in the lesson modules (some read the URL only on demand)."""
    text = "\n".join(p.read_text() for p in (REPO / "lessons").glob("*.py"))
    names = re.findall(r"[\"']((?:intro|router|experts|balanc\w*|scale)_[a-z0-9_]+)[\"']", text)
    return tuple(sorted(set(names)))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


HOSTILE = st.one_of(
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e309", "-0", "0x10", "1_000", "１２", "٣",
                     str(10**9), str(-(10**9)), "9" * 400, "true", "None", "[]", "{}", "1.5.2",
                     "1; DROP TABLE quiz_results; --", "<script>alert(1)</script>", "\x00", "\u202e12",
                     "a" * 5000]),
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=60),
)


def check_page(page: int | None, params: dict[str, str]) -> None:
    at = open_app(page, {**params, "learner": "fuzz"})
    if page is None:
        assert not at.exception, [e.value for e in at.exception]
    else:
        assert_lesson_works(at, page)
    # Every numeric setting the page keeps in its URL is still a plain, bounded number.
    for key, default in url_settings(page).items():
        value = at.query_params.get(key, default)
        if _is_number(default):
            assert _is_number(value) and abs(float(value)) < 1e9, (params, key, value)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: "home" if p is None else f"lesson{p}")
def test_any_query_renders_with_bounded_settings(page: int | None) -> None:
    keys = st.one_of(st.sampled_from(sorted(url_settings(page)) or ["steps"]),
                     st.sampled_from(source_keys() or ("steps",)),
                     st.sampled_from(["steps", "lesson", "page", "embed", "embed_options"]),
                     st.text(min_size=1, max_size=40))

    # Lesson 5 starts real rank processes for new settings: fewer, costlier examples there.
    @settings(FUZZ, max_examples=4 if page == 5 else FUZZ.max_examples)
    @given(params=st.dictionaries(keys, HOSTILE, max_size=6))
    def run(params: dict[str, str]) -> None:
        check_page(page, params)

    run()


# Settings a page reads from the URL but writes there only once changed.
READ_ONLY_KEYS = {1: {"intro_k": "2"}}


BAD = ("1000000000", "-1000000000", "lots", "nan", "1e309")


@pytest.mark.parametrize("page", [p for p in PAGES if p is not None], ids=lambda p: f"lesson{p}")
def test_bad_numbers_are_replaced_with_a_notice_and_a_valid_url(page: int) -> None:
    numeric = {k: v for k, v in url_settings(page).items() if _is_number(v)} | READ_ONLY_KEYS.get(page, {})
    assert numeric, f"Lesson {page} keeps no numeric setting in its URL: its view cannot be shared"
    bad = {key: BAD[i % len(BAD)] for i, key in enumerate(sorted(numeric))}
    at = open_app(page, {**bad, "learner": "fuzz"})
    assert_lesson_works(at, page)
    assert NOTICE in shown(at), f"no notice for {bad}"
    left = {key: at.query_params.get(key, numeric[key]) for key in numeric}
    for key, value in left.items():
        assert value != bad[key] and _is_number(value) and abs(float(value)) < 1e9, (key, value)
    # The URL left behind is valid: opened again, nothing needs adjusting and nothing changes.
    again = open_app(page, {**left, "learner": "fuzz"})
    assert_lesson_works(again, page)
    assert NOTICE not in shown(again), (left, shown(again))
    assert {k: again.query_params.get(k, numeric[k]) for k in left} == left


def test_steps_of_a_billion_is_clamped() -> None:
    """The issue's own example: Lesson 4's training length cannot be set to 10**9 steps."""
    steps = [k for k in url_settings(4) if "step" in k]
    assert steps, f"Lesson 4 has no steps setting in its URL ({sorted(url_settings(4))})"
    at = open_app(4, {steps[0]: str(10**9), "learner": "fuzz"})
    assert_lesson_works(at, 4)
    assert NOTICE in shown(at)
    assert int(float(at.query_params[steps[0]])) <= 100_000


def test_a_bad_setting_is_fixed_even_when_its_panel_has_nothing_to_show() -> None:
    """Found by the fuzzer: with a sentence of no words, Lesson 2's step-through panel returned
    before it wrote `router_token` back, so a bad value stayed in the URL without a notice."""
    at = open_app(2, {"router_text": "[]", "router_token": "zz", "learner": "fuzz"})
    assert_lesson_works(at, 2)
    value = at.query_params.get("router_token", "1")
    assert _is_number(value) or NOTICE in shown(at), f"router_token={value!r} left as is, unannounced"
