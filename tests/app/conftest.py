"""AppTest fixtures for the course pages: a throw-away SQLite progress database per test.

`MOE_LAB_DATABASE_URL` points at a file under tmp_path, so the app's cached `ProgressStore` (one
per URL) is new in every test and nothing touches ~/.moe_lab. `open_page` runs the home page
first (AppTest needs one run before `switch_page`) and then the page asked for.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lessons.course import progress
from tests import apptest_pages

apptest_pages.install()  # fragment reruns resolve page links, as in a real session

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "app.py")
TIMEOUT_S = 60  # the first Lesson 1 run imports torch and plotly


@pytest.fixture(autouse=True)
def _fresh_engines() -> Iterator[None]:
    yield
    progress.dispose()  # no pooled connection outlives its tmp_path


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "progress.db"
    monkeypatch.setenv("MOE_LAB_DATABASE_URL", f"sqlite:///{path}")
    return path


def new_app(query: dict[str, str] | None = None, user: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.query_params.update(query or {})
    if user is not None:
        at.user = user
    return at


@pytest.fixture
def open_page(db_path: Path) -> Callable[..., AppTest]:
    def _open(page: str | None = None, query: dict[str, str] | None = None,
              user: dict | None = None) -> AppTest:
        at = new_app(query, user).run()
        if page:
            at.switch_page(page).run()
        return at

    return _open


def texts(at: AppTest) -> str:
    """Everything the page wrote as Markdown/captions/alerts, main and sidebar, as one string."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    for kind in ("info", "warning", "error", "success"):
        parts += [e.value for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def sidebar_text(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in [*at.sidebar.markdown, *at.sidebar.caption])


@pytest.fixture
def open_lesson(open_page) -> Callable[..., AppTest]:
    """Open lesson `number` (1-5) after the home page, failing at once if it raised."""

    def _open(number: int, query: dict[str, str] | None = None) -> AppTest:
        from lessons.course.text import lesson_info

        at = open_page(lesson_info(number).page, query=query)
        assert not at.exception, [e.value for e in at.exception]
        return at

    return _open


def passage_html(at: AppTest) -> str:
    """The language model's coloured passage (the page has other st.html elements, e.g. scripts)."""
    return "\n".join(str(h.proto.body) for h in at.get("html") if "Layer 1" in str(h.proto.body))


def decode_plotly(value: object) -> object:
    """Plotly sends numpy arrays as {"dtype", "bdata" (base64), "shape"}: turn them back into lists."""
    if isinstance(value, dict) and "bdata" in value and "dtype" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", flat.size)).split(",")]
        return flat.reshape(shape).tolist()
    if isinstance(value, dict):
        return {k: decode_plotly(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_plotly(v) for v in value]
    return value


def chart_spec(at: AppTest, key: str) -> dict:
    """The Plotly spec of the chart drawn with `key`, arrays decoded (fails if the chart is absent)."""
    charts = at.get("plotly_chart")
    for chart in charts:
        if chart.proto.id.endswith(f"-{key}"):
            return decode_plotly(json.loads(chart.proto.spec))
    raise AssertionError(f"no chart {key!r}; have {[c.proto.id.rsplit('-', 1)[-1] for c in charts]}")
