"""The course catalogue and its Markdown text, read from `lessons/content/`.

Why a loader instead of strings in the pages: lesson text is written and reviewed as Markdown
(one file per section, see `lessons/content/README.md`), and Streamlit renders display maths only
through `st.latex`. So the loader splits every `$$ ... $$` block out of the Markdown; the UI then
draws the prose with `st.markdown` and each formula with `st.latex`.

Nothing here imports Streamlit: it is plain file reading and text splitting, testable alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CONTENT_DIR = Path(__file__).resolve().parents[1] / "content"


@dataclass(frozen=True)
class LessonInfo:
    """One lesson of the course: where its page lives and what the home page says about it."""

    number: int  # 1..5, also the `lesson` key of the progress store
    title: str
    page: str  # entry file, relative to app.py
    module: str  # lessons.<module>.render_body() draws the lesson's body (its folder)
    icon: str  # Material icon shown on the home card
    summary: str  # one line for the home page's card


LESSONS: tuple[LessonInfo, ...] = (
    LessonInfo(1, "What is MoE", "pages/1_What_is_MoE.py", "lesson1_what_is_moe", ":material/lightbulb:",
               "Capacity vs compute: total and active parameters of real models, and a live router."),
    LessonInfo(2, "The Router", "pages/2_The_Router.py", "lesson2_router", ":material/alt_route:",
               "Softmax, top-k and renormalisation, step by step, on a live model."),
    LessonInfo(3, "Experts and Sparse Compute", "pages/3_Experts_and_Sparse_Compute.py", "lesson3_experts",
               ":material/memory:", "Dispatch, capacity and dropped tokens, and the grouped GEMM kernel."),
    LessonInfo(4, "Load Balancing", "pages/4_Load_Balancing.py", "lesson4_balancing", ":material/balance:",
               "Watch experts collapse, then fix it with an auxiliary loss or a bias."),
    LessonInfo(5, "MoE at Scale", "pages/5_MoE_at_Scale.py", "lesson5_scale", ":material/hub:",
               "Shared and fine-grained experts, expert parallelism and real models' sizes."),
)
NUM_LESSONS = len(LESSONS)
HOME_PAGE = "app.py"
GLOSSARY_PAGE = "pages/6_Glossary_and_References.py"


def lesson_info(number: int) -> LessonInfo:
    """The lesson numbered `number` (1-based); ValueError names the valid range."""
    if not 1 <= number <= NUM_LESSONS:
        raise ValueError(f"lesson must be between 1 and {NUM_LESSONS}, got {number!r}")
    return LESSONS[number - 1]


# --- Markdown blocks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """A piece of lesson text: `kind` is "markdown" (for st.markdown) or "latex" (for st.latex)."""

    kind: str
    text: str


_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)


def split_math(markdown: str) -> list[Block]:
    """Split Markdown into prose and display-maths blocks, in order.

    `$$ ... $$` anywhere outside a fenced code block becomes a "latex" block (its inner text,
    stripped); the prose around it stays "markdown". Inline `$...$` maths stays in the prose,
    where st.markdown renders it. Empty pieces are dropped.
    """
    blocks: list[Block] = []
    pos = 0
    for fence in _FENCE.finditer(markdown):
        blocks.extend(_split_prose(markdown[pos : fence.start()]))
        _append_markdown(blocks, fence.group(0))
        pos = fence.end()
    blocks.extend(_split_prose(markdown[pos:]))
    return _merge_markdown(blocks)


def _split_prose(text: str) -> list[Block]:
    out: list[Block] = []
    pos = 0
    for match in _DISPLAY_MATH.finditer(text):
        _append_markdown(out, text[pos : match.start()])
        formula = match.group(1).strip()
        if formula:
            out.append(Block("latex", formula))
        pos = match.end()
    _append_markdown(out, text[pos:])
    return out


def _append_markdown(blocks: list[Block], text: str) -> None:
    if text.strip():
        blocks.append(Block("markdown", text.strip("\n").rstrip()))


def _merge_markdown(blocks: list[Block]) -> list[Block]:
    """Join neighbouring prose blocks (e.g. text around a code fence) into one st.markdown call."""
    merged: list[Block] = []
    for block in blocks:
        if merged and block.kind == "markdown" and merged[-1].kind == "markdown":
            merged[-1] = Block("markdown", merged[-1].text + "\n\n" + block.text)
        else:
            merged.append(block)
    return merged


# --- Files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One section file of a lesson, e.g. `lesson1/10_why_moe.md` has slug "why_moe"."""

    slug: str
    path: Path
    blocks: tuple[Block, ...]


def lesson_dir(number: int) -> Path:
    return CONTENT_DIR / f"lesson{lesson_info(number).number}"


def read_text(path: Path) -> str | None:
    """The file's text, or None when it is missing or unreadable (the UI shows a placeholder)."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return None
    return _read_cached(path, mtime)


@lru_cache(maxsize=256)
def _read_cached(path: Path, mtime_ns: int) -> str | None:
    # Keyed on mtime so an edited lesson file shows up on the next rerun without a restart.
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def load_goals(number: int) -> str | None:
    """The lesson's learning goals (a Markdown bullet list), or None when not written yet."""
    return read_text(lesson_dir(number) / "goals.md")


def load_sections(number: int) -> list[Section]:
    """The lesson's section files `NN_slug.md`, in file-name order, split into blocks."""
    folder = lesson_dir(number)
    if not folder.is_dir():
        return []
    sections = []
    for path in sorted(folder.glob("[0-9]*_*.md")):
        text = read_text(path)
        if text is None:
            continue
        slug = path.stem.split("_", 1)[1]
        sections.append(Section(slug, path, tuple(split_math(text))))
    return sections


def load_page_text(name: str) -> str | None:
    """A top-level content file such as "glossary" or "references" (Markdown), or None."""
    return read_text(CONTENT_DIR / f"{name}.md")
