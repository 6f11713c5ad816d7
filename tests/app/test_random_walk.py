"""Seeded random walks over every page's widgets in AppTest: no sequence of moves may crash a page.

Issue 18: the page tests move one widget at a time from a fresh page, so a crash that needs two
moves in a row (clear Lesson 2's sentence box, then type a sentence) went unseen. Here each page
gets a walk of a few hundred moves drawn from whatever widgets it shows *now*, found in the AppTest
tree (never by importing lessons/, so the walk survives the lessons' file moves):

    set      a slider / number / select / text / toggle / ... to a random, extreme or odd value;
             open or close a keyed expander (a lesson's optional deep dive is built only when open)
    click    a button, once or several times in a row
    burst    several widgets changed before one run (moves in quick succession)
    away     switch to another page, then back
    rerun    a plain full rerun, as after the browser reconnects

After every move: no exception on the page, and no exception logged by the app (a lesson body
that failed is logged, then replaced by a one-line notice). A failure names page, seed, the moves
that led to it, and a shortened sequence that still fails (found by replaying fresh pages);
`MOE_LAB_WALK_REPLAY='<json printed in the failure>'` replays such a sequence alone.

Values mirror what a browser can send: choices are sent as the formatted option strings the
frontend sends, text is cut at a widget's `max_chars` as the browser's input does. Number inputs
also get out-of-range values, which a hand-written websocket message could carry.
Knobs: MOE_LAB_WALK_MOVES (moves per walk; try 1000, with `--timeout 0` and under `nice`),
MOE_LAB_WALK_SEEDS ("0,1"), MOE_LAB_WALK_SHRINK (replays spent shortening a failure; 0 = off).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from tests.app.conftest import new_app

REPO = next(p for p in Path(__file__).resolve().parents if (p / "app.py").exists())
PAGES = ["app.py", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "pages").glob("*.py"))]
SEEDS = [int(s) for s in os.environ.get("MOE_LAB_WALK_SEEDS", "0,1").split(",") if s.strip()]
MOVES = int(os.environ.get("MOE_LAB_WALK_MOVES", "0")) or None  # None: the defaults below
# Default moves per walk, so 7 pages x 2 seeds take about 2 minutes on the 2-core box (idle).
# Lesson 5 gets fewer: each new setting of its parallel panel starts real processes (~3 s).
DEFAULT_MOVES, FEWER_MOVES = 50, {"5_MoE_at_Scale": 12}
SHRINK = int(os.environ.get("MOE_LAB_WALK_SHRINK", "25"))
RUN_TIMEOUT_S = 180  # one run: Lesson 5 starts real processes; a loaded 2-core box took > 60 s

# Widget kinds the walk drives (at.button includes form submit buttons).
KINDS = ("slider", "select_slider", "number_input", "text_input", "text_area", "selectbox", "radio",
         "multiselect", "segmented_control", "pills", "toggle", "checkbox", "button")
CHOICE_KINDS = ("selectbox", "radio")  # one formatted option string
CHOICES_KINDS = ("select_slider", "multiselect", "segmented_control", "pills")  # a list of them

WORDS = ("the", "a", "chef", "plays", "python", "loop", "ball", "music", "score", "key", "we",
         "debug", "cooks", "team", "wins", "expert", "router", "token", "zebra", "and")
ODD_TEXT = ("", " ", "\n\t", "123 !!!", "?!", "-1", "0", "1e309", "NaN", "null", "{}", "[]",
            '{"a": 1}', "<b>bold</b><script>alert(1)</script><img src=x onerror=alert(1)>",
            "**bold** $x^2$ `code` [link](javascript:alert(1)) \\\\ {{x}} %s %(x)s",
            "Ada 🎓🧑🏽‍💻 naïve Ωμέγα 中文 עברית عربى \u200b\u200d e\u0301", "'; DROP TABLE learners; --")
UNICODE = "aé中😀🎓🧑‍🔬Ωع\u200b\u0301 !?<>&\"'$\\%{}_*`#"


# --- values ------------------------------------------------------------------------------------


def gen_text(rng: random.Random, current: str) -> str | dict:
    """A text a learner might type or paste; long ones as {"repeat", "times"} to keep moves short."""
    r = rng.random()
    if r < 0.3:
        return rng.choice(ODD_TEXT)
    if r < 0.55:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
    if r < 0.65:
        return "".join(rng.choice(UNICODE) for _ in range(rng.randint(1, 40)))
    if r < 0.72:
        return {"repeat": rng.choice(["x", "the chef ", "😀", "ab "]), "times": rng.choice([300, 10_000])}
    if r < 0.8 and current:  # edit what is there: cut a slice out
        i, j = sorted(rng.randrange(len(current) + 1) for _ in range(2))
        return current[:i] + current[j:]
    if r < 0.9 and current:  # replace a number in it by an extreme one (config.json-like text)
        digits = [i for i, ch in enumerate(current) if ch.isdigit()]
        if digits:
            i = rng.choice(digits)
            j = i
            while j < len(current) and current[j].isdigit():
                j += 1
            return current[:i] + rng.choice(["0", "-1", "1e309", "99999999999999999999", "1.5"]) + current[j:]
    return current + rng.choice([" ", "x", "the", "😀", "\n", "1"])


def decode_text(value: str | dict) -> str:
    return value["repeat"] * value["times"] if isinstance(value, dict) else value


def gen_number(rng: random.Random, proto, integer: bool, out_of_range: bool) -> float:
    lo = proto.min if getattr(proto, "has_min", True) else -1e15
    hi = proto.max if getattr(proto, "has_max", True) else 1e15
    step = proto.step or (1 if integer else 0.01)
    r = rng.random()
    if r < 0.2:
        value = lo
    elif r < 0.4:
        value = hi
    elif out_of_range and r < 0.5:
        value = rng.choice([lo - step, hi + step, lo - 1e6, hi + 1e6, 0, -1])
    elif not getattr(proto, "has_max", True) and r < 0.6:
        value = rng.choice([0, -1, 1e12, -1e12, 1.7e308, -1.7e308, 1e-300, 0.5])
    else:
        n = rng.randint(0, max(0, min(int((hi - lo) / step), 10**9)))
        value = lo + n * step
    return int(value) if integer and math.isfinite(value) and abs(value) < 2**62 else round(value, 10)


def gen_value(rng: random.Random, kind: str, w):
    """A new value for widget `w` of `kind`, JSON-serialisable; None if the walk can't drive it."""
    p = w.proto
    if kind == "expander":
        return rng.random() < 0.7  # mostly opened: what is inside is what the walk has not seen
    if kind == "slider":
        if p.data_type not in (0, 1):  # dates and times: not in the course
            return None
        one = lambda: gen_number(rng, p, p.data_type == 0, out_of_range=False)
        return sorted([one(), one()]) if isinstance(w.value, (list, tuple)) else one()
    if kind == "number_input":
        return gen_number(rng, p, p.data_type == 0, out_of_range=True)
    if kind in ("text_input", "text_area"):
        return gen_text(rng, w.value or "")
    if kind in ("toggle", "checkbox"):
        return (not w.value) if rng.random() < 0.7 else rng.random() < 0.5
    options = list(w.options)
    if not options:
        return None
    if kind in CHOICE_KINDS:
        return rng.choice(options)
    if kind == "select_slider":
        if isinstance(w.value, (list, tuple)):
            i, j = sorted(rng.randrange(len(options)) for _ in range(2))
            return [options[i], options[j]]
        return [rng.choice(options)]
    multi = kind == "multiselect" or getattr(p, "click_mode", 0) == 1
    if multi:
        return rng.sample(options, rng.randint(0, len(options)))
    if not getattr(p, "required", False) and rng.random() < 0.1:
        return []  # a second click on the selected segment clears it
    return [rng.choice(options)]


# --- the tree: find widgets, set them --------------------------------------------------------


def widgets(at: AppTest) -> list[tuple[str, str, int, object]]:
    """(kind, name, nth, widget) of every enabled widget shown; name = key, else label."""
    found, seen, count = [], set(), {}
    for kind in KINDS:
        for w in getattr(at, kind):
            if w.id in seen or getattr(w, "disabled", False):
                continue
            seen.add(w.id)
            name = w.key or getattr(w, "label", "") or w.id
            nth = count[(kind, name)] = count.get((kind, name), -1) + 1
            found.append((kind, name, nth, w))
    for w in at.expander:  # a keyed expander with on_change: opening it builds what it holds
        if w.proto.id:
            name = w.proto.id.split("-", 2)[-1]  # "$$ID-<hash>-<key>"
            found.append(("expander", name, 0, w))
    return found


def find(at: AppTest, kind: str, name: str, nth: int):
    hits = [w for k, n, i, w in widgets(at) if (k, n, i) == (kind, name, nth)]
    return hits[0] if hits else None


_RAW: dict[type, type] = {}


def send_raw(w, fill: Callable[[WidgetState], None]) -> None:
    """Send this widget's state exactly as the frontend would (formatted option strings), which
    AppTest's set_value cannot do without the page's own option objects."""
    ws = WidgetState()
    ws.id = w.id
    fill(ws)
    cls = type(w)
    if cls not in _RAW:
        _RAW[cls] = type(f"Raw{cls.__name__}", (cls,), {"_widget_state": property(lambda self: self._raw)})
    w.__class__ = _RAW[cls]
    w._raw = ws


def set_widget(w, kind: str, value) -> None:
    if kind in CHOICE_KINDS:
        send_raw(w, lambda ws: setattr(ws, "string_value", value))
    elif kind in CHOICES_KINDS:
        send_raw(w, lambda ws: ws.string_array_value.data.extend(value))
    elif kind in ("text_input", "text_area"):
        text = decode_text(value)
        limit = w.proto.max_chars
        w.input(text[:limit] if limit else text)  # the browser's input stops at max_chars
    else:
        w.set_value(value)


# --- moves -------------------------------------------------------------------------------------


def propose(rng: random.Random, at: AppTest, page: str) -> list:
    shown = widgets(at)
    r = rng.random()
    if not shown:
        return ["rerun"]
    if r < 0.05:
        return ["away", rng.choice([p for p in PAGES if p != page])]
    if r < 0.08:
        return ["rerun"]
    settable = [t for t in shown if t[0] != "button"]
    if r < 0.16 and len(settable) > 1:
        burst = []
        for kind, name, nth, w in rng.sample(settable, min(len(settable), rng.randint(2, 4))):
            if (value := gen_value(rng, kind, w)) is not None:
                burst.append(["set", kind, name, nth, value])
        return ["burst", burst]
    kind, name, nth, w = rng.choice(shown)
    if kind == "button":
        return ["click", name, nth, 1 if rng.random() < 0.75 else rng.randint(2, 4)]
    value = gen_value(rng, kind, w)
    return ["set", kind, name, nth, value] if value is not None else ["rerun"]


def merge(drawn, redrawn) -> None:
    """Lay the tree of a fragment-only run over the page as last drawn. A placeholder block (no
    proto) only leads the way to a redrawn fragment; anything else replaces what was there."""
    for idx, node in redrawn.children.items():
        old = drawn.children.get(idx)
        if getattr(node, "proto", 1) is None and hasattr(node, "children") and hasattr(old, "children"):
            merge(old, node)
        else:
            drawn.children[idx] = node


def run(at: AppTest) -> None:
    """at.run(), keeping the whole page in view. After a widget callback reruns only some
    fragments, AppTest's tree holds just those, while a browser keeps showing the rest and sends
    the state of every widget on the page with the next interaction: so we do the same."""
    at.run()
    drawn = getattr(at, "_walk_drawn", None)
    if at.title or drawn is None:  # a full run (every page draws its title outside fragments)
        at._walk_drawn = at._tree
    else:
        merge(drawn, at._tree)
        at._tree = drawn


def opener(page: str) -> Callable[[], AppTest]:
    """A function that opens `page` fresh (new session, same progress database: the `db_path`
    fixture), as tests/app/conftest.py's open_page does, with a longer time allowed per run."""

    def open_app() -> AppTest:
        at = new_app()
        at.default_timeout = max(at.default_timeout, RUN_TIMEOUT_S)
        at.run()
        if page != "app.py":
            at.switch_page(page).run()
        at._walk_drawn = at._tree
        return at

    return open_app


def switch(at: AppTest, page: str) -> None:
    at.switch_page(page)
    run(at)


def apply(at: AppTest, move: list, page: str) -> bool:
    """Perform `move`. A move whose widget is not shown (any more) is skipped, so shortened
    sequences stay replayable; returns False if any widget it names was missing."""
    op = move[0]
    if op == "rerun":
        run(at)
    elif op == "away":
        switch(at, move[1])
        check_now(at, f"while away on {move[1]}")
        switch(at, page)
    elif op == "click":
        for _ in range(move[3]):
            if (w := find(at, "button", move[1], move[2])) is None:
                return False
            w.click()
            run(at)
            check_now(at, "between repeated clicks")
    else:
        sets = move[1] if op == "burst" else [move]
        found = [(w, kind, value) for _, kind, name, nth, value in sets
                 if (w := find(at, kind, name, nth)) is not None]  # fmt: skip
        for w, kind, value in found:
            if kind == "expander":  # not a Widget in AppTest: its state is set as a click sets it
                at.session_state[w.proto.id.split("-", 2)[-1]] = value
            else:
                set_widget(w, kind, value)
        if found:
            run(at)
        return len(found) == len(sets)
    return True


class Crash(AssertionError):
    def __init__(self, signature: str, detail: str) -> None:
        super().__init__(detail)
        self.signature, self.detail = signature, detail


class _Logged(logging.Handler):
    """Exceptions the app logged (a lesson body that failed and was replaced by a notice)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.name.startswith("streamlit"):
            self.records.append(record)


_LOGGED = _Logged()


def check_now(at: AppTest, where: str = "") -> None:
    if at.exception:
        e = at.exception[0]
        first = e.message.splitlines()[0] if e.message else ""
        frames = [ln.strip().splitlines()[0] for ln in e.stack_trace if ln.strip().startswith("File ")]
        ours = [f for f in frames if str(REPO) in f and "site-packages" not in f] or frames or [""]
        where_raised = re.sub(r'File ".*?([^/"]+)", line \d+, in ', r"\1:", ours[-1])
        raise Crash(re.sub(r"\d+", "N", f"{e.proto.type}: {first[:120]} ({where_raised})"),
                    f"{e.proto.type}: {e.message[:500]} {where}\n  " + "\n  ".join(e.stack_trace[-6:]))
    if _LOGGED.records:
        rec = _LOGGED.records[0]
        exc = rec.exc_info[1]
        tb = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in tb if str(REPO) in f.filename and "site-packages" not in f.filename] or tb
        at_line = f"{Path(ours[-1].filename).name}:{ours[-1].name}" if ours else ""
        first = str(exc).splitlines()[0][:120] if str(exc) else ""
        sig = re.sub(r"\d+", "N", f"logged {type(exc).__name__}: {first} ({at_line})")
        _LOGGED.records.clear()
        trace = "".join(traceback.format_exception(exc)[-4:])
        raise Crash(sig, f"{sig}, logged by {rec.name}: {rec.getMessage()} {where}\n{trace}")


def step(at: AppTest, move: list, page: str) -> bool:
    """apply() then check_now(); anything else that goes wrong (a run that times out, a value
    AppTest refuses) is reported as a crash of this move too, with the moves that led to it."""
    try:
        found = apply(at, move, page)
    except Crash:
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise Crash(re.sub(r"\d+", "N", f"AppTest {type(exc).__name__}: {first}"),
                    "".join(traceback.format_exception(exc)[-3:])) from exc
    check_now(at)
    return found


def replay(open_app: Callable[[], AppTest], page: str, moves: list,
           strict: bool = False) -> tuple[int, Crash] | None:  # fmt: skip
    """Run `moves` on a fresh page; (index of the failing move, the crash) or None. `strict`:
    a move whose widget is missing fails too (a known sequence must keep meaning something)."""
    _LOGGED.records.clear()
    at, index = open_app(), -1
    try:
        check_now(at, "on opening the page")
        for index in range(len(moves)):
            if not step(at, moves[index], page) and strict:
                raise Crash("missing widget", "a widget of this move is not on the page any more")
    except Crash as crash:
        return index, crash
    return None


def shorten(open_app, page: str, moves: list, signature: str, budget: int) -> list:
    """Delta debugging (ddmin) over `moves`: drop chunks while the same crash still happens;
    then drop single widgets out of the bursts that are left."""

    def still_fails(candidate: list) -> list | None:
        nonlocal budget
        budget -= 1
        got = replay(open_app, page, candidate)
        return candidate[:got[0] + 1] if got and got[1].signature == signature else None

    chunks = 2
    while len(moves) > 1 and budget > 0:
        size = math.ceil(len(moves) / chunks)
        for start in range(0, len(moves), size):
            if budget <= 0:
                break
            if kept := still_fails(moves[:start] + moves[start + size:]):
                moves, chunks = kept, max(chunks - 1, 2)
                break
        else:
            if chunks >= len(moves):
                break
            chunks = min(len(moves), chunks * 2)
    budget = max(budget, 12)  # the bursts' own, smaller budget: their replays are short now
    for i in range(len(moves)):
        while moves[i][0] == "burst" and len(moves[i][1]) > 1 and budget > 0:
            for j in range(len(moves[i][1])):
                rest = moves[i][1][:j] + moves[i][1][j + 1:]
                smaller = rest[0] if len(rest) == 1 else ["burst", rest]
                if (kept := still_fails([*moves[:i], smaller, *moves[i + 1:]])) and len(kept) > i:
                    moves = kept
                    break
            else:
                break
    return moves


def short(move: list) -> str:
    text = json.dumps(move, ensure_ascii=False)
    return text if len(text) < 160 else text[:150] + "…]"


def walk(page: str, seed: int, moves: int) -> None:
    """`moves` random moves on `page`; after a crash the walk goes on from a fresh page, so one
    run reports every distinct crash (each shortened once)."""
    open_app = opener(page)
    rng = random.Random(f"{page}:{seed}")
    crashes: dict[str, str] = {}
    _LOGGED.records.clear()
    at, since = open_app(), []  # since: the moves since this page was opened
    check_now(at, "on opening the page")
    for number in range(1, moves + 1):
        since.append(propose(rng, at, page))
        try:
            step(at, since[-1], page)
        except Crash as crash:
            if crash.signature not in crashes:
                crashes[crash.signature] = report(open_app, page, seed, number, since, crash)
            _LOGGED.records.clear()
            at, since = open_app(), []
    if crashes:
        pytest.fail(f"{len(crashes)} distinct crash(es) on {page}, seed {seed}, {moves} moves:\n\n"
                    + "\n\n".join(crashes.values()), pytrace=False)


def report(open_app, page: str, seed: int, number: int, since: list, crash: Crash) -> str:
    shortest = shorten(open_app, page, since, crash.signature, SHRINK) if SHRINK else since
    return (f"* {crash.signature}\n  at move {number} of the walk (seed {seed}), {len(since)} moves "
            f"after opening the page; last moves:\n    " + "\n    ".join(map(short, since[-8:]))
            + f"\n  {crash.detail}\n  shortest sequence found ({len(shortest)} moves):\n"
            + "  MOE_LAB_WALK_REPLAY='" + json.dumps({"page": page, "moves": shortest}, ensure_ascii=False)
            + "'")


@pytest.fixture(autouse=True)
def _full_details():
    """Catch logged exceptions, and show crashes with their message and trace in AppTest (a
    learner sees a generic notice: .streamlit/config.toml sets client.showErrorDetails = "none")."""
    root = logging.getLogger()
    root.addHandler(_LOGGED)
    with patch_config_options({"client.showErrorDetails": "full"}):
        yield
    root.removeHandler(_LOGGED)
    _LOGGED.records.clear()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("page", PAGES, ids=lambda p: Path(p).stem)
def test_random_walk_never_crashes(db_path, page: str, seed: int) -> None:
    walk(page, seed, MOVES or FEWER_MOVES.get(Path(page).stem, DEFAULT_MOVES))


# Sequences the walks found, replayed exactly so each stays fixed (issue 18).
L2 = "pages/2_The_Router.py"
KNOWN = {  # each raised KeyError 'st.session_state has no key "router_token"' (issue 18)
    "lesson2-clear-then-type": (L2, [
        ["set", "text_input", "router_text", 0, ""],
        ["set", "text_input", "router_text", 0, "the chef plays"]]),
    "lesson2-no-words-then-type": (L2, [
        ["set", "text_input", "router_text", 0, "123 !!!"],
        ["set", "text_input", "router_text", 0, "the chef plays"]]),
    "lesson2-no-words-then-example": (L2, [  # found by the Chromium walk
        ["set", "text_input", "router_text", 0, "?!"],
        ["set", "selectbox", "router_example", 0, "Code"]]),
    "lesson2-clear-then-slider": (L2, [  # found by this walk, seed 0, shortened from 40 moves
        ["set", "slider", "router_noise", 0, 2.7],
        ["set", "text_input", "router_text", 0, "\n\t"],
        ["set", "slider", "router_noise", 0, 0.0]]),
}


@pytest.mark.parametrize("name", KNOWN)
def test_known_sequences_do_not_crash(db_path, name: str) -> None:
    page, moves = KNOWN[name]
    got = replay(opener(page), page, moves, strict=True)
    assert got is None, f"{name}: move {got[0]} {short(moves[got[0]])} -> {got[1].detail}"


if os.environ.get("MOE_LAB_WALK_REPLAY"):  # a debugging entry point, collected only when asked for

    def test_replay_from_env(db_path) -> None:
        spec = json.loads(os.environ["MOE_LAB_WALK_REPLAY"])
        page, moves = spec["page"], spec["moves"]
        got = replay(opener(page), page, moves)
        assert got is None, f"move {got[0]} {short(moves[got[0]])} -> {got[1].detail}"
