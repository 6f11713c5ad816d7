"""No script runs from a learner name or a typed sentence, checked in a real Chromium.

Each payload would set `window.__xss` (or open a dialog) if the page ever let it become HTML.
It arrives through the URL (`?learner=`, Lesson 2's `?router_text=`) and through the home page's
name form, and is drawn on the home page, in the sidebar, on a lesson page after a quiz, and in
Lesson 2's heatmap. After every page: `window.__xss` is undefined, no dialog opened, no element
the payload would have made exists, and the name is shown literally.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy._browser import (
    BrowserThread,
    exceptions,
    lesson_path,
    main_text,
    open_page,
    page_url,
    pass_quiz,
    sidebar_text,
)
from tests.e2e.conftest import start_app

pytestmark = pytest.mark.e2e

PAYLOADS = [
    "<img src=x onerror=window.__xss=1>",
    "<svg onload=window.__xss=1>",
    '"><script>window.__xss=1</script>',
    "<iframe srcdoc='<script>parent.__xss=1</script>'>",
    "[click](javascript:window.__xss=1)",
    "<a href=javascript:window.__xss=1>x</a> <b onmouseover=window.__xss=1>b</b>",
]
MADE_BY_PAYLOAD = 'img[src="x"], svg[onload], iframe[srcdoc], a[href^="javascript"], b[onmouseover]'
# The page frame has inline scripts of its own (constants in lessons/course/page.py); a script made
# from a payload is one whose text carries the payloads' marker.
PAYLOAD_SCRIPTS = ("() => [...document.querySelectorAll('[data-testid=\"stApp\"] script:not([src])')]"
                   ".filter(s => s.textContent.includes('__xss')).length")


def assert_inert(page, dialogs: list[str], where: str) -> None:
    assert page.evaluate("() => typeof window.__xss") == "undefined", f"script ran on {where}"
    assert not dialogs, f"a dialog opened on {where}: {dialogs}"
    made = page.locator(f'[data-testid="stApp"] :is({MADE_BY_PAYLOAD})').count()
    assert made == 0, f"{made} element(s) made from a payload on {where}"
    scripts = page.evaluate(PAYLOAD_SCRIPTS)
    assert scripts == 0, f"{scripts} script(s) made from a payload on {where}"
    assert not exceptions(page), exceptions(page)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = Path(tmp_path_factory.mktemp("xss"))
    app = start_app(f"sqlite:///{tmp / 'progress.db'}", tmp)
    yield app
    app.stop()


def test_payloads_in_the_url_stay_text(server, browser_thread: BrowserThread) -> None:
    def visit(page) -> None:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        for payload in PAYLOADS:
            open_page(page, page_url(server.url, "", payload))
            assert_inert(page, dialogs, f"home as {payload!r}")
            visible = main_text(page).replace("\u200b", "")  # the app breaks ":" with a zero-width space
            assert f"Learning as {payload[:64]}" in visible, visible[:800]  # names are cut at 64
        # A lesson page after a quiz: the name in the sidebar, the result in the page.
        pass_quiz(page, server.url, PAYLOADS[0], 1)
        assert_inert(page, dialogs, "lesson 1 after a quiz")
        assert PAYLOADS[0] in sidebar_text(page).replace("\u200b", "")
        # Lesson 2 draws a typed sentence as heatmap labels and as a caption (300 characters fit).
        sentence = " ".join(PAYLOADS[:4])
        open_page(page, page_url(server.url, lesson_path(2), "xss", router_text=sentence))
        assert_inert(page, dialogs, f"lesson 2 with router_text={sentence!r}")

    browser_thread.run(visit, name="xss-url")


def test_payload_typed_as_a_name_stays_text(server, browser_thread: BrowserThread) -> None:
    def type_name(page) -> None:
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        open_page(page, server.url)
        page.get_by_label("Learner name").fill(PAYLOADS[1])
        page.get_by_role("button", name="Start learning").click()
        page.get_by_text(f"Learning as {PAYLOADS[1]}").first.wait_for()
        assert_inert(page, dialogs, "home after typing a name")

    browser_thread.run(type_name, name="xss-typed")
