"""lessons/course/prefetch.py: the lessons' browser modules are named from the installed Streamlit."""

from __future__ import annotations

import json
import re

from lessons.course import prefetch


def test_every_component_the_lessons_draw_has_its_module_in_this_streamlit() -> None:
    """A Streamlit upgrade that renames a module would silently undo the prefetch: fail instead."""
    files = prefetch.module_files()
    assert [f.split(".")[0] for f in files] == list(prefetch.COMPONENTS)
    assert all((prefetch.STATIC_JS / f).is_file() for f in files)


def test_the_script_carries_exactly_those_files_as_data() -> None:
    script = prefetch.prefetch_script()
    listed = json.loads(re.search(r"const files = (\[.*?\]);", script).group(1))
    assert listed == list(prefetch.module_files())
    assert "FILES" not in script and "START_AFTER_MS" not in script  # every placeholder filled


def test_no_modules_no_script(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(prefetch, "STATIC_JS", tmp_path)
    prefetch.module_files.cache_clear()
    try:
        assert prefetch.module_files() == ()
        assert prefetch.prefetch_script() == ""
    finally:
        prefetch.module_files.cache_clear()
