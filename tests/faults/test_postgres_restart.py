"""PostgreSQL goes away and comes back while a learner is working; the app server keeps running.

One Streamlit replica on a real PostgreSQL (both started by deploy/cluster.sh). A learner in a
real browser has Lesson 1 open when the database stops: the quiz is still graded, the page says
the result could not be saved, and after the database is back the next page of the same session
saves it — no server restart. A quick restart between two saves is then invisible to the learner.
Every result is checked in the database with psql.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lessons.course.quiz import load_quiz
from tests.deploy._browser import (
    BrowserThread,
    answer_quiz,
    click_sidebar,
    exceptions,
    lesson_path,
    main_text,
    open_page,
    page_url,
)
from tests.deploy._cluster import Cluster, require_services
from tests.e2e.conftest import wait_for_app_idle

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
LEARNER = "Pia on PostgreSQL"
NOT_SAVED = "can't be saved"


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_services(nginx=False)
    run = Cluster(Path(tmp_path_factory.mktemp("pg-restart")) / "state", replicas=1)
    try:
        run.sh("start", "db")
        run.sh("start", "app")
        yield run
    finally:
        run.sh("clean", check=False)


def test_database_restart_while_learning(replica: Cluster, browser_thread: BrowserThread) -> None:
    (url,) = replica.replica_urls

    def learn(page) -> None:
        open_page(page, page_url(url, lesson_path(1), LEARNER))
        assert NOT_SAVED not in main_text(page)

        replica.sh("stop", "db")
        answer_quiz(page, load_quiz(1))
        page.get_by_text("Lesson passed").wait_for()  # grading never needs the database
        text = main_text(page)
        assert NOT_SAVED in text and "try to save this result again" in text, text[-1500:]
        assert not exceptions(page)

        replica.sh("start", "db")
        click_sidebar(page, 2)  # the next page of the same session retries the pending save
        assert NOT_SAVED not in main_text(page), main_text(page)[:1500]
        answer_quiz(page, load_quiz(2))
        page.get_by_text("Lesson passed").wait_for()
        assert NOT_SAVED not in main_text(page)

        # A restart between two saves: the pooled connections are dead, the learner sees nothing.
        replica.sh("stop", "db")
        replica.sh("start", "db")
        retry = page.get_by_role("button", name="Try again")
        retry.click()
        # Until the quiz's rerun ends, the passed form and the blank one are both on the page.
        retry.wait_for(state="detached")
        wait_for_app_idle(page)
        answer_quiz(page, load_quiz(2), right=False)
        page.get_by_text("You need 80%").wait_for()
        assert NOT_SAVED not in main_text(page), main_text(page)[-1500:]
        assert not exceptions(page)

    browser_thread.run(learn, name="pg-restart")
    rows = replica.psql("select q.lesson, q.passed, q.attempts from quiz_results q join learners l "
                        f"on l.id = q.learner where l.display_name = '{LEARNER}' order by q.lesson")
    assert rows == [["1", "t", "1"], ["2", "t", "2"]]
    assert replica.sh("status", check=False).stdout.count(" up ") == 2  # db and replica, no restart
