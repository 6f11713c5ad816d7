"""A keyboard-only learner in Chromium: Lesson 1 with Tab, Space, Enter and the arrow keys, no mouse.

What is counted is what a learner presses. The path: Tab through the sidebar to the lesson's
"Skip to the quiz" link, Enter, then answer every question of `lessons/content/lesson1/quiz.toml`
(whatever it holds) and submit with Enter. Along the way the test checks that every control it
lands on shows a focus ring, and that no Tab stop is inside a chart (Plotly's toolbar once put
56 buttons between a learner and Lesson 2's quiz).
"""

from __future__ import annotations

import pytest

from lessons.course.quiz import Question, format_number, load_quiz
from lessons.course.text import LESSONS
from tests.e2e.conftest import AppServer, assert_no_exception, goto, wait_for_app_idle

pytestmark = pytest.mark.e2e
FIRST_VISIT_MS = 180_000
MAX_PRESSES = 60  # "a few dozen": measured 45 for Lesson 1's 11 questions (2026-12-03)
# Tab alone, top of the page to Submit, without the skip link, not counting links in the text
# (glossary terms, the layer diagram's parts: content a reader may follow, and lessons add more):
# 65 at 1400x900 at first, 74 once Lesson 1 gained a prediction form and a text box; 93 with the
# text's links. A loose guard: Lesson 2 took 103 before issue 18, 56 of them Plotly's toolbar.
MAX_CONTROL_TABS_TO_SUBMIT = 100

# What the focused element is, where it sits, and whether a focus ring is drawn on it (or, for
# inputs that are visually hidden - slider, radio, checkbox - on the thumb or label that shows it).
FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  // A data grid (st.dataframe) draws its own focus ring on its canvas, for its cells too.
  const grid = !!e.closest('[data-testid="stDataFrame"]');
  const ring = e.matches('[data-testid="stSlider"] input') ? e.parentElement.parentElement
    : e.matches('input[type=radio], input[type=checkbox]') ? e.closest('label') : e;
  const style = getComputedStyle(ring);
  const shadow = style.boxShadow !== 'none';
  return {
    tag: e.tagName, label: (e.getAttribute('aria-label') || e.innerText || '').trim().slice(0, 60),
    testid: (e.closest('[data-testid]') || {getAttribute: () => ''}).getAttribute('data-testid'),
    inChart: !!e.closest('[data-testid="stPlotlyChart"]'),
    inText: !!e.closest('[data-testid="stMarkdownContainer"]'),
    ring: grid || (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2) || shadow,
    focusVisible: e.matches(':focus-visible'),
  };
}"""


class Keyboard:
    """The learner's keyboard: counts every press and remembers every control focused."""

    def __init__(self, page) -> None:
        self.page, self.presses, self.visited = page, 0, []

    def press(self, key: str, times: int = 1) -> dict | None:
        for _ in range(times):
            self.page.keyboard.press(key)
            self.presses += 1
        focused = self.page.evaluate(FOCUSED)
        if focused:
            self.visited.append(focused)
        return focused

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)
        self.presses += len(text)

    def tab_until(self, predicate, limit: int = 150) -> dict:
        for _ in range(limit):
            focused = self.press("Tab")
            if focused and predicate(focused):
                return focused
        raise AssertionError(f"not reached in {limit} Tab presses; last: {self.visited[-3:]}")


def answer(keys: Keyboard, q: Question) -> None:
    """Answer `q` correctly from the keyboard; the focus is on its first control when called."""
    if q.kind in ("single", "truefalse"):
        index = q.answer if q.kind == "single" else (0 if q.answer else 1)  # "True" is listed first
        keys.press("Space") if index == 0 else keys.press("ArrowDown", index)  # arrows select
    elif q.kind == "multi":
        for i in range(len(q.choices)):
            if i in q.answer:
                keys.press("Space")
            if i < len(q.choices) - 1:
                keys.press("Tab")
    else:
        keys.type(format_number(q.answer, q.decimals).replace(",", ""))


def open_lesson1(page, app_server: AppServer) -> None:
    goto(page, f"{app_server.url}/{LESSONS[0].page.split('_', 1)[1].removesuffix('.py')}", FIRST_VISIT_MS)
    assert_no_exception(page)
    page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for()


def test_keyboard_learner_passes_lesson1(page, app_server: AppServer) -> None:
    quiz = load_quiz(1)
    open_lesson1(page, app_server)
    keys = Keyboard(page)
    keys.tab_until(lambda f: f["label"] == "Skip to the quiz")
    keys.press("Enter")
    first = keys.press("Tab")
    assert first and first["testid"] in ("stRadioOption", "stNumberInputField", "stCheckbox"), first
    for i, q in enumerate(quiz.questions):
        answer(keys, q)
        if i < len(quiz.questions) - 1:
            keys.press("Tab")
    submit = keys.press("Tab")
    assert submit and submit["label"] == "Submit answers", submit
    keys.press("Enter")
    wait_for_app_idle(page)
    page.get_by_text("Lesson passed").wait_for()
    assert keys.presses <= MAX_PRESSES, f"{keys.presses} key presses for Lesson 1's quiz"
    unringed = [f for f in keys.visited if f["focusVisible"] and not f["ring"]]
    assert not unringed, f"focused without a visible focus ring: {unringed}"


def test_tab_order_skips_charts_and_shows_focus(page, app_server: AppServer) -> None:
    """Plain Tab from the top of Lesson 1 to its Submit button: no stop inside a chart, a ring
    on every stop (sidebar links and sliders included), and few enough controls on the way."""
    open_lesson1(page, app_server)
    keys = Keyboard(page)
    keys.tab_until(lambda f: f["label"] == "Submit answers")
    assert not [f for f in keys.visited if f["inChart"]], "a Tab stop inside a Plotly chart"
    kinds = {f["testid"] for f in keys.visited}
    assert {"stPageLink-NavLink", "stSlider"} <= kinds, kinds  # the rings below cover these
    unringed = [f for f in keys.visited if f["focusVisible"] and not f["ring"]]
    assert not unringed, f"focused without a visible focus ring: {unringed}"
    assert not [f for f in keys.visited if f["label"] == "Link to heading"], "heading anchors as Tab stops"
    controls = [f for f in keys.visited if not (f["tag"].upper() == "A" and f["inText"])]
    assert len(controls) <= MAX_CONTROL_TABS_TO_SUBMIT, f"{len(controls)} Tab stops (besides text links)"
