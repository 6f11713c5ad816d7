"""The direction of imports (shared/DESIGN.md): pages -> lessons -> moe_core, never back up, and a
lesson folder never imports another lesson — so whoever picks up one lesson knows what they may touch.

Read from the source with `ast` (imports inside functions count too), not by importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
LESSON_DIRS = sorted(p for p in (REPO / "lessons").iterdir() if p.is_dir() and p.name.startswith("lesson"))


def imported_modules(path: Path) -> set[str]:
    """Every module name a Python file imports, at any depth of its syntax tree."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def offending(folder: Path, forbidden) -> list[str]:
    return sorted(
        f"{path.relative_to(REPO)} imports {name}"
        for path in folder.rglob("*.py")
        for name in imported_modules(path)
        if forbidden(name)
    )


def test_there_are_five_lesson_folders() -> None:
    assert [p.name.split("_")[0] for p in LESSON_DIRS] == [f"lesson{n}" for n in range(1, 6)]


@pytest.mark.parametrize("folder", LESSON_DIRS, ids=lambda p: p.name)
def test_a_lesson_imports_no_other_lesson(folder: Path) -> None:
    own = f"lessons.{folder.name}"
    others = [f"lessons.{p.name}" for p in LESSON_DIRS if p != folder]

    def sideways(name: str) -> bool:
        return not name.startswith(own) and any(name == o or name.startswith(o + ".") for o in others)

    assert offending(folder, sideways) == []


def test_the_course_frame_imports_no_lesson() -> None:
    def into_a_lesson(name: str) -> bool:
        return any(name == f"lessons.{p.name}" or name.startswith(f"lessons.{p.name}.") for p in LESSON_DIRS)

    assert offending(REPO / "lessons" / "course", into_a_lesson) == []


def test_moe_core_imports_no_course_code_and_no_ui_library() -> None:
    def upward(name: str) -> bool:
        return name.split(".")[0] in {"lessons", "pages", "app", "streamlit", "plotly"}

    assert offending(REPO / "moe_core", upward) == []


def test_the_checker_sees_a_sideways_import(tmp_path: Path) -> None:
    # The rule must be able to fail: a file that reaches into another lesson is reported.
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from lessons.lesson2_router import figures\n", encoding="utf-8")
    assert "lessons.lesson2_router" in imported_modules(bad)


def test_every_chart_goes_through_show_chart() -> None:
    """A chart drawn with st.plotly_chart directly has no text alternative and may show the toolbar
    (issue 18): only lessons/course/charts.py may call it; every lesson calls show_chart."""
    calls = sorted(
        f"{path.relative_to(REPO)}:{node.lineno}"
        for folder in (REPO / "lessons", REPO / "pages")
        for path in folder.rglob("*.py")
        if path != REPO / "lessons" / "course" / "charts.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "plotly_chart"
    )
    assert calls == [], f"draw these with lessons.course.charts.show_chart: {calls}"
