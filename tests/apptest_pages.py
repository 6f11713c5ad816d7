"""Make AppTest keep the app's page registry from run to run, as a real session does.

A Streamlit server keeps one PagesManager per session, so a fragment-only rerun (which does
not run the entry script and so registers no pages) still resolves `st.page_link`. AppTest
builds a new PagesManager for every run; a rerun of the sidebar's fragment alone, as a quiz
result triggers, then fails with "Could not find page" although the app itself works (the
browser tests check it). `install()` swaps in a PagesManager that falls back to the pages the
last full run registered. Every test drives the same app, so one registry serves them all.
"""

from __future__ import annotations

from typing import Any

from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import app_test

_registered: dict[str, Any] = {}


class _SessionPagesManager(PagesManager):
    def set_pages_and_resolve(self, pages, fallback_page_hash=""):
        _registered.clear()
        _registered.update(pages)
        return super().set_pages_and_resolve(pages, fallback_page_hash)

    def get_pages(self):
        if self._pages is None and _registered:
            return dict(_registered)
        return super().get_pages()


def install() -> None:
    app_test.PagesManager = _SessionPagesManager
