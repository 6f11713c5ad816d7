"""Server-side time from a widget change to its re-rendered section, for every live widget of Lessons 1–3.

What it measures: the server's share of what a learner waits for after moving a widget, in the
real app. A `streamlit run` server (bench/server_runs.py: it logs every script run) serves one
Chromium tab (at nice 19, so it cannot take the server's CPU as a learner's own machine would
not); for each widget the tab makes the change a learner would (arrow key on a slider,
click an option, type and press Enter...). The time is the server's, from receiving the browser's
rerun request until the rerun has queued the last element of the re-rendered section — callbacks,
the rerun itself (only the widget's `st.fragment` where it has one; the `scope` column says
"page" if any change reran the whole page), figures and their serialisation. The browser's own
share (websocket, Plotly redraw) is bench/bench_sliders.py's.

(`AppTest` cannot do this: it always reruns the whole page, which a fragment's widget never does.)

Separately, the section's pure work is timed by calling the same lesson/`moe_core`/chart code
directly, so the table says what dominates a rerun:

    model     the numbers (router, dispatch, parameter count; cached calls cost a cache lookup)
    figure    go.Figure construction (lessons/charts/*)
    to_dict   what st.plotly_chart does first: `fig.to_dict()` (plotly.tools.return_figure_...)
    to_json   plotly.io.to_json(..., validate=False), the spec st.plotly_chart sends
    other st  the rerun minus the four above: Streamlit's script/fragment machinery, other elements

A widget's values alternate between two settings (a slider moves one step back and forth); the
first two changes of each (a warm-up, which also fills the lessons' caches) are not counted. The
benchmark button counts only its feedback: its warm-up click fills `_timed`'s cache, so the timed
clicks redraw the cached results.

    .venv/bin/python bench/bench_app.py                        # every widget, 15 changes each
    .venv/bin/python bench/bench_app.py --repeats 1 --only router_k --json /tmp/app.json --settle 0

`--settle S` (default 15) waits S seconds on the first page before timing anything: the server
warms every lesson in the background from 2 s after its first page, and moves timed meanwhile
would time that warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.chdir(REPO)
os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # "no runtime" warnings of direct calls
os.environ.setdefault("MOE_LAB_DATABASE_URL", f"sqlite:///{tempfile.mkdtemp(prefix='bench_app_')}/p.db")

import plotly.io  # noqa: E402
import torch  # noqa: E402

import lessons  # noqa: E402,F401  (sets torch's thread count, as the app does)

TARGET_MEDIAN_MS, TARGET_P95_MS = 50.0, 150.0
PAGES = {1: "pages/1_What_is_MoE.py", 2: "pages/2_The_Router.py", 3: "pages/3_Experts_and_Sparse_Compute.py"}


# --- the sections' pure work, called directly (same code and arguments as the lesson panels) ----

import plotly.graph_objects as go  # noqa: E402

from bench.load_server import niced_browser  # noqa: E402
from bench.server_runs import read_runs  # noqa: E402
from lessons import lesson1_what_is_moe as l1  # noqa: E402
from lessons import lesson2_router as l2  # noqa: E402
from lessons import lesson3_experts as l3  # noqa: E402
from lessons.course.figures import OKABE_ITO  # noqa: E402
from lessons.lesson1_what_is_moe import calculator as calc  # noqa: E402
from lessons.lesson1_what_is_moe import same_budget as sb  # noqa: E402
from lessons.lesson1_what_is_moe.figures import params_bars, training_curves  # noqa: E402
from lessons.lesson1_what_is_moe.live import live_view  # noqa: E402
from lessons.lesson2_router import figures as rch  # noqa: E402
from lessons.lesson3_experts import batch as l3v  # noqa: E402
from lessons.lesson3_experts import bench as l3b  # noqa: E402
from lessons.lesson3_experts import figures as ech  # noqa: E402
from lessons.lesson3_experts import kernel_view as l3_kernel  # noqa: E402
from moe_core.dispatch import align_block_size, apply_capacity, sort_by_expert  # noqa: E402
from moe_core.model_cards import MODEL_CARDS  # noqa: E402
from moe_core.params import count_params, dense_equivalent  # noqa: E402
from moe_core.router import expert_choice, softmax_topk  # noqa: E402
from moe_core.router_demo import explain_token, route_tokens, router_noise  # noqa: E402
from moe_core.text_data import EXAMPLES  # noqa: E402


@dataclass(frozen=True)
class Work:
    model: Callable[[], Any]  # the numbers the section computes
    figures: Callable[[Any], list[go.Figure]]  # its charts, from those numbers


def _both(*works: Work) -> Work:
    """Several panels rerun by one callback."""
    return Work(lambda: [w.model() for w in works],
                lambda ds: [f for w, d in zip(works, ds, strict=True) for f in w.figures(d)])  # fmt: skip


BARS3 = [OKABE_ITO["orange"], OKABE_ITO["blue"], OKABE_ITO["sky_blue"]]
MIXTRAL = calc.DEFAULT_PRESET
_KNOBS = calc.knobs_of(MODEL_CARDS[MIXTRAL].config)  # the calculator's defaults
# intro_calc_shared is left out: Mixtral has no shared experts, so that slider is disabled.
CALC_VALUES = {k: (v, v // 2) for k, v in _KNOBS.items() if k != "shared"}


def efficiency(pct: int) -> Work:
    def figures(numbers: tuple[float, float]) -> list[go.Figure]:
        total, active = numbers
        return [params_bars(["Dense model", "MoE: active per token", "MoE: total stored"],
                            [l1.DENSE_B * 1e9, active * 1e9, total * 1e9], BARS3[::-1],
                            title=f"8 experts, top-1, {pct} % shared")]  # fmt: skip
    return Work(lambda: l1.efficiency_numbers(pct / 100), figures)


def _calc(preset: str, knobs: dict[str, int]) -> Work:
    def model() -> tuple:
        base = MODEL_CARDS[preset].config
        config = calc.config_with(base, knobs)
        return count_params(config), dense_equivalent(config), knobs == calc.knobs_of(base)
    return Work(model, lambda r: [params_bars(["MoE: total stored", "MoE: active per token",
                                               "Dense model of equal compute"],
                                              [r[0].total, r[0].active, r[1].params], BARS3)])  # fmt: skip


def calc_preset(preset: str) -> Work:
    return _calc(preset, calc.knobs_of(MODEL_CARDS[preset].config))


def calc_knob(knob: str) -> Callable[[int], Work]:
    return lambda value: _calc(MIXTRAL, {**_KNOBS, knob: value})


B_DEFAULT = {"view": sb.VIEWS[0], "axis": sb.AXES[0], "window": sb.DEFAULT_WINDOW}


def same_budget(name: str) -> Callable[[Any], Work]:
    """Lesson 1's measured comparison: the recorded curves, smoothed, and their chart."""
    def make(value: Any) -> Work:
        s = {**B_DEFAULT, name: value}
        def model() -> dict:
            return sb.loss_curves(sb.comparison(), s["window"], gap=s["view"] == sb.VIEWS[0],
                                  by_time=s["axis"] == sb.AXES[1])  # fmt: skip
        return Work(model, lambda curves: [training_curves(curves, x_title="x", title="curves")])
    return make


def live_k(k: int) -> Work:
    return Work(lambda: live_view(k), lambda view: [view[1], view[2]])  # figures cached with the model


FIRST = next(iter(EXAMPLES.values()))
EXAMPLE_PAIR = tuple(list(EXAMPLES)[:2])
R_DEFAULT = {"text": FIRST, "view": "probabilities", "top_k": 2, "temperature": 1.0, "noise_std": 0.0,
             "noise_seed": 0, "renormalize": True, "token": 1}  # fmt: skip
_SETTINGS = ("top_k", "temperature", "noise_std", "noise_seed", "renormalize")


def _sentence(s: dict) -> tuple[list[str], torch.Tensor]:
    words, _, x = l2.encode(s["text"])
    return words, torch.from_numpy(x)


def _r_heatmap(s: dict) -> Work:
    def model() -> tuple:
        words, x = _sentence(s)
        l2.get_report()
        return words, route_tokens(l2.get_model(), x, top_k=2)
    def figures(d: tuple) -> list[go.Figure]:
        words, r = d
        probs = s["view"] == "probabilities"
        return [rch.router_heatmap((r.router_probs if probs else r.router_logits).numpy(), words,
                                   r.topk_ids.numpy(), kind="probability" if probs else "logit",
                                   title="Router scores of the trained model (top-2 outlined)")]  # fmt: skip
    return Work(model, figures)


def _r_step(s: dict) -> Work:
    def model() -> Any:
        words, x = _sentence(s)
        r = route_tokens(l2.get_model(), x, **{k: s[k] for k in _SETTINGS})
        noise = router_noise(tuple(r.router_logits.shape), s["noise_seed"]) * s["noise_std"]
        return explain_token(l2.get_model(), x, min(s["token"], len(words) - 1), r, noise)
    return Work(model, lambda t: [rch.stage_bars(t.probs.numpy(), t.topk_ids.tolist(), t.weights.tolist())])


def _r_sliders(s: dict) -> Work:
    def model() -> tuple:
        words, x = _sentence(s)
        r = route_tokens(l2.get_model(), x, **{k: s[k] for k in _SETTINGS})
        return words, r, torch.bincount(r.topk_ids.reshape(-1), minlength=r.router_probs.shape[1])
    def figures(d: tuple) -> list[go.Figure]:
        words, r, counts = d
        return [rch.router_heatmap(r.router_probs.numpy(), words, r.topk_ids.numpy(),
                                   weights=r.topk_weights.numpy(),
                                   title=f"gate weights of the top-{s['top_k']}"),
                rch.load_bars(counts.tolist(), title="Load: routed slots per expert")]  # fmt: skip
    return Work(model, figures)


def router_text_change(value: str) -> Work:
    s = {**R_DEFAULT, "text": EXAMPLES.get(value, value)}
    return _both(_r_heatmap(s), _r_step(s), _r_sliders(s))


def router_view(view: str) -> Work:
    return _r_heatmap({**R_DEFAULT, "view": view})


def router_setting(name: str) -> Callable[[Any], Work]:
    def make(value: Any) -> Work:
        s = {**R_DEFAULT, name: value}
        return _r_step(s) if name == "token" else _both(_r_sliders(s), _r_step(s))
    return make


def router_compare(cf: float) -> Work:
    def model() -> tuple:
        logits = torch.from_numpy(l2._batch_logits())
        ec = expert_choice(logits, capacity_factor=cf)
        count = lambda ids: torch.bincount(ids.flatten(), minlength=logits.shape[1]).tolist()
        loads = {"top-1": count(softmax_topk(logits, 1).topk_ids),
                 "top-2": count(softmax_topk(logits, 2).topk_ids),
                 "expert choice": ec.tokens_per_expert.tolist()}  # fmt: skip
        per_token = np.bincount(ec.experts_per_token.numpy(), minlength=3)
        return loads, {"top-2 token choice": [0, 0, logits.shape[0]], "expert choice": per_token.tolist()}
    return Work(model, lambda d: [rch.comparison_loads(d[0], title="three routers"),
                                  rch.experts_per_token_bars(d[1], title="Experts per token")])  # fmt: skip


E_DEFAULT = {"tokens": 16, "k": 2, "block": 16, "width": 128, "block_n": 32, "capacity": 2.0, "tile": 0}


def _e_batch(s: dict) -> tuple[list[str], torch.Tensor, list[str], int]:
    words, ids, labels = l3v.batch_for(s["tokens"], s["k"])
    return words, ids, labels, l3v.batch_num_experts()


def _e_dispatch(s: dict) -> tuple:
    words, ids, labels, e = _e_batch(s)
    return words, ids, labels, e, align_block_size(ids, e, s["block"])


def _e_panel(name: str, s: dict) -> Work:
    """One Lesson 3 panel: (model, figure) as in lessons/lesson3_experts/__init__.py."""
    if name == "dispatch":
        return Work(lambda: (*_e_batch(s), sort_by_expert(_e_batch(s)[1], _e_batch(s)[3])[0]),
                    lambda d: [ech.dispatch_tracks(d[1].flatten().tolist(), d[4].tolist(), d[2], d[3],
                                                   title="sorted by expert")])  # fmt: skip
    if name == "blocks":
        return Work(lambda: _e_dispatch(s), lambda d: [ech.block_grid(
            d[4].sorted_slot_ids.tolist(), d[4].block_expert_ids.tolist(), s["block"], d[4].num_slots,
            d[2], d[3],
            title="M-blocks")])  # fmt: skip
    if name == "tiles":
        return Work(lambda: (*_e_dispatch(s), l3v.valid_rows(_e_dispatch(s)[4])), lambda d: [ech.launch_grid(
            d[4].block_expert_ids.tolist(), d[5].tolist(), d[4].block_size, s["width"], s["block_n"],
            l3.GROUP_M,
            d[3], title="Launch grid")])  # fmt: skip
    if name == "capacity":
        def cap_model() -> tuple:
            _, ids, _, e = _e_batch(s)
            cap = apply_capacity(ids, e, s["capacity"])
            return (torch.bincount(ids.flatten(), minlength=e).tolist(),
                    torch.bincount(ids[cap.keep], minlength=e).tolist(), cap.capacity)
        return Work(cap_model, lambda d: [ech.capacity_bars(*d, title="capacity")])
    def kernel_model() -> tuple:  # the kernel panel
        words, ids, _, _, d = _e_dispatch(s)
        pid = min(s["tile"], d.block_expert_ids.numel() - 1)
        l3_kernel.kernel_source()
        l3_kernel._lookup_values(d, pid, ids.shape[1], words)
        return d, l3v.valid_rows(d), pid
    return Work(kernel_model, lambda d: [ech.tile_strip(
        d[0].block_expert_ids.tolist(), d[1].tolist(), d[0].block_size, d[2], title="M-blocks")])


ALL_L3 = ("dispatch", "blocks", "tiles", "capacity")  # the kernel's panel is built only in its open deep dive
E_DEPS = {"tokens": ALL_L3, "k": ALL_L3, "block": ("blocks", "tiles"), "width": ("tiles",),
          "block_n": ("tiles",), "capacity": ("capacity",), "tile": ("kernel",)}  # fmt: skip


def experts_setting(name: str) -> Callable[[Any], Work]:
    return lambda value: _both(*(_e_panel(p, {**E_DEFAULT, name: value}) for p in E_DEPS[name]))


def bench_setting(name: str) -> Callable[[Any], Work]:
    """The benchmark panel: FLOP table and stored results; after the button, the cached timings' chart."""
    def make(value: Any) -> Work:
        s = {"tokens": 64, "experts": 8, "k": 2} | ({} if name == "run" else {name: value})
        settings = (s["tokens"], s["experts"], s["k"])
        def model() -> Any:
            l3b.flops(*settings)
            l3b.stored_results()
            return [l3b._timed(b, *settings) for b in l3b.BACKENDS] if name == "run" else None
        def figures(rows: Any) -> list[go.Figure]:
            ok = [r for r in rows or [] if not r["error"] and not r["interpreted"]]
            if not ok:
                return []
            return [ech.bench_bars([r["backend"] for r in ok], [r["ms_min"] for r in ok], [""] * len(ok))]
        return Work(model, figures)
    return make



@dataclass(frozen=True)
class Case:
    lesson: int
    key: str
    kind: str  # slider, select_slider, selectbox, text_input, segmented_control, number_input, toggle, button
    values: tuple[Any, Any]  # values[0] is the page's default; the bench alternates b, a, b, ...
    work: Callable[[Any], Work]  # the section's pure work for a value
    shown: Callable[[Any], str] = str  # a selectbox option's visible label
    opens: str | None = None  # the key of a collapsed expander the widget lives in (opened first)


T1, T2 = "the drummer plays a loud song", "the chef bakes bread"
CASES = [
    Case(1, "intro_eff_shared", "slider", (33, 20), efficiency),
    Case(1, "intro_calc_preset", "selectbox", (MIXTRAL, "deepseek-ai/DeepSeek-V3"), calc_preset,
         calc._preset_label),
    *[Case(1, f"intro_calc_{k}", "slider", v, calc_knob(k)) for k, v in CALC_VALUES.items()],
    Case(1, "intro_budget_view", "segmented_control", ("gap to (b)", "loss"), same_budget("view")),
    Case(1, "intro_budget_axis", "segmented_control", ("tokens read", "training time"), same_budget("axis")),
    Case(1, "intro_budget_window", "slider", (25, 26), same_budget("window")),
    Case(1, "intro_live_k", "slider", (2, 3), live_k),
    Case(2, "router_example", "selectbox", EXAMPLE_PAIR, router_text_change),
    Case(2, "router_text", "text_input", (T1, T2), router_text_change),
    Case(2, "router_view", "segmented_control", ("probabilities", "logits"), router_view),
    Case(2, "router_token", "select_slider", (1, 3), router_setting("token")),
    Case(2, "router_k", "slider", (2, 3), router_setting("top_k")),
    Case(2, "router_temperature", "slider", (1.0, 2.0), router_setting("temperature")),
    Case(2, "router_noise", "slider", (0.0, 1.0), router_setting("noise_std")),
    Case(2, "router_seed", "number_input", (0, 7), router_setting("noise_seed")),
    Case(2, "router_renorm", "toggle", (True, False), router_setting("renormalize")),
    Case(2, "router_ec_cf", "slider", (2.0, 1.0), router_compare),
    Case(3, "experts_tokens", "slider", (16, 32), experts_setting("tokens")),
    Case(3, "experts_k", "slider", (2, 3), experts_setting("k")),
    Case(3, "experts_block", "select_slider", (16, 32), experts_setting("block")),
    Case(3, "experts_width", "select_slider", (128, 256), experts_setting("width")),
    Case(3, "experts_block_n", "select_slider", (32, 16), experts_setting("block_n")),
    Case(3, "experts_capacity", "slider", (2.0, 1.0), experts_setting("capacity")),
    Case(3, "experts_tile", "slider", (0, 3), experts_setting("tile"), opens="experts_dive_reading_kernel"),
    Case(3, "experts_bench_tokens", "select_slider", (64, 16), bench_setting("tokens")),
    Case(3, "experts_bench_experts", "select_slider", (8, 32), bench_setting("experts")),
    Case(3, "experts_bench_k", "select_slider", (2, 1), bench_setting("k")),
    Case(3, "experts_bench_run", "button", (None, None), bench_setting("run")),
]


# --- the real server, driven by a real browser --------------------------------------------------


class Lab:
    """A `streamlit run` server that logs each script run (bench/server_runs.py) and one Chromium tab."""

    def __init__(self, workdir: Path) -> None:
        from playwright.sync_api import sync_playwright

        from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, start_app

        self.log = workdir / "runs.jsonl"
        self.server = start_app(f"sqlite:///{workdir / 'progress.db'}", workdir,
                                launcher=("bench/server_runs.py",), env={"MOE_LAB_RUN_LOG": str(self.log)})
        self._pw = sync_playwright().start()
        try:  # at nice 19: see niced_browser
            self._browser = self._pw.chromium.launch(executable_path=niced_browser(CHROMIUM, workdir),
                                                     args=CHROMIUM_ARGS)
            self.page = self._browser.new_page(viewport=VIEWPORT)
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        self._pw.stop()  # closes the browser too
        self.server.stop()

    def open_lesson(self, lesson: int) -> None:
        from tests.e2e.conftest import goto

        goto(self.page, f"{self.server.url}/{Path(PAGES[lesson]).stem.split('_', 1)[1]}?learner=bench",
             timeout_ms=180_000)  # fmt: skip
        self.check(f"lesson {lesson}")

    def check(self, where: str) -> None:
        errors = self.page.locator('[data-testid="stException"]')
        if errors.count():
            raise RuntimeError(f"{where}: {errors.first.inner_text()}")

    def toggle_expander(self, key: str) -> None:
        from tests.e2e.conftest import wait_for_app_idle

        self.page.locator(f".st-key-{key} summary").first.click()
        wait_for_app_idle(self.page)
        self.check(f"expander {key}")

    def change(self, case: Case, value: Any, forward: bool) -> tuple[float, bool]:
        """Set the widget as a learner would; (server ms from request to rerun end, whole page rerun?)."""
        from tests.e2e.conftest import wait_for_app_idle

        before = len(read_runs(self.log))
        _operate(self.page.locator(f".st-key-{case.key}").first, case, value, forward)
        wait_for_app_idle(self.page)
        runs = read_runs(self.log, before)
        for _ in range(20):  # a run that ended as the idle check passed may still be writing its line
            if runs:
                break
            time.sleep(0.1)
            runs = read_runs(self.log, before)
        if not runs:
            raise RuntimeError(f"{case.key}={value!r}: the change did not rerun anything")
        self.check(f"{case.key}={value!r}")
        ms = (max(r["ended"] for r in runs) - min(r["received"] for r in runs)) * 1e3
        return ms, any(not r["fragments"] for r in runs)


def _operate(box: Any, case: Case, value: Any, forward: bool) -> None:
    """One widget change in the browser (Streamlit 1.67's DOM; `box` is the keyed element)."""
    if case.kind in ("slider", "select_slider"):
        a, b = case.values
        towards_b = b > a if forward else a > b
        box.locator('input[type="range"]').press("ArrowRight" if towards_b else "ArrowLeft")
    elif case.kind == "selectbox":
        combo = box.get_by_role("combobox")  # react-aria: ArrowDown opens the list
        combo.focus()
        combo.press("ArrowDown")
        box.page.get_by_role("option", name=case.shown(value), exact=True).click()
    elif case.kind in ("text_input", "number_input"):
        field = box.locator("input")
        field.fill(str(value))
        field.press("Enter")
    elif case.kind == "segmented_control":
        box.get_by_role("radio", name=str(value), exact=True).click()
    elif case.kind in ("toggle", "button"):
        box.locator("label" if case.kind == "toggle" else "button").first.click()
    else:
        raise ValueError(f"no browser action for widget kind {case.kind!r}")


def time_reruns(lab: Lab, case: Case, repeats: int) -> tuple[list[float], bool]:
    a, b = case.values
    if case.opens:
        lab.toggle_expander(case.opens)
    lab.change(case, b, True)  # warm-up (not counted): fills the lessons' caches
    lab.change(case, a, False)
    samples, page_rerun = [], False
    for i in range(repeats):
        ms, whole = lab.change(case, b if i % 2 == 0 else a, i % 2 == 0)
        samples.append(ms)
        page_rerun |= whole
    if repeats % 2:  # leave the page at its default for the next widget
        lab.change(case, a, False)
    if case.opens:
        lab.toggle_expander(case.opens)  # closed again, as the page starts
    return samples, page_rerun


def _ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0) * 1e3, out


def time_work(case: Case, repeats: int) -> dict[str, float]:
    """Median ms of each stage of the section's pure work, over the same alternating values."""
    stages: dict[str, list[float]] = {"model": [], "figure": [], "to_dict": [], "to_json": []}
    values = [case.values[1], case.values[0]] + [case.values[(i + 1) % 2] for i in range(repeats)]
    for i, value in enumerate(values):
        job = case.work(value)
        t_model, data = _ms(job.model)
        t_fig, figs = _ms(lambda d=data, j=job: j.figures(d))
        # Lesson 3's builders return the spec itself (course.figures.figure_spec): nothing to convert.
        t_dict, dicts = _ms(lambda f=figs: [fig if isinstance(fig, dict) else fig.to_dict() for fig in f])
        t_json, _ = _ms(lambda d=dicts: [plotly.io.to_json(x, validate=False) for x in d])
        if i >= 2:  # the first two are the warm-up, as for the reruns
            for name, t in zip(stages, (t_model, t_fig, t_dict, t_json), strict=True):
                stages[name].append(t)
    return {name: float(np.median(ts)) for name, ts in stages.items()}


def measure(cases: list[Case], repeats: int, settle_s: float = 0.0) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_app_") as tmp:
        lab = Lab(Path(tmp))
        try:
            for i, lesson in enumerate(sorted({c.lesson for c in cases})):
                lab.open_lesson(lesson)
                if i == 0:
                    # The server warms every lesson in the background from 2 s after its first page
                    # (lessons/course/warm_up.py, ~5-10 s of CPU): moves timed meanwhile time that.
                    time.sleep(settle_s)
                for case in (c for c in cases if c.lesson == lesson):
                    samples, page_rerun = time_reruns(lab, case, repeats)
                    parts = time_work(case, repeats)
                    median, p95 = float(np.median(samples)), float(np.percentile(samples, 95))
                    rows.append({"lesson": lesson, "widget": case.key, "median_ms": median, "p95_ms": p95,
                                 **parts, "other_st": median - sum(parts.values()),
                                 "scope": "page" if page_rerun else "fragment",
                                 "over": median > TARGET_MEDIAN_MS or p95 > TARGET_P95_MS,
                                 "samples_ms": samples})  # fmt: skip
                    print(_line(rows[-1]), flush=True)
        finally:
            lab.close()
    return rows


HEADER = ("lesson", "widget", "scope", "median", "p95", "model", "figure", "to_dict", "to_json", "other st",
          "")
WIDTHS = (6, 22, 8, 7, 7, 7, 7, 7, 7, 8, 4)


def _line(row: dict | None) -> str:
    if row is None:
        cells = HEADER
    else:
        nums = [row[k] for k in ("median_ms", "p95_ms", "model", "figure", "to_dict", "to_json", "other_st")]
        flag = "OVER" if row["over"] else "ok"
        cells = (str(row["lesson"]), row["widget"], row["scope"], *(f"{n:.1f}" for n in nums), flag)
    return " | ".join(str(c).ljust(w) if i < 3 else str(c).rjust(w)
                      for i, (c, w) in enumerate(zip(cells, WIDTHS, strict=True)))  # fmt: skip


def print_table(rows: list[dict], repeats: int) -> None:
    print(f"\nServer-side time from a widget change to its re-rendered section (real server, Chromium), "
          f"ms, {repeats} changes each; "
          f"target median <= {TARGET_MEDIAN_MS:g}, p95 <= {TARGET_P95_MS:g}. Stage columns are medians "
          "of the pure work; 'other st' = rerun median minus them; scope: what reran.")  # fmt: skip
    print(_line(None))
    print("-" * len(_line(None)))
    for row in rows:
        print(_line(row))
    over = [r["widget"] for r in rows if r["over"]]
    print(f"{len(over)} of {len(rows)} over target" + (f": {', '.join(over)}" if over else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed changes per widget (default 15)")
    parser.add_argument("--only", default="", help="comma-separated widget keys (default: all)")
    parser.add_argument("--json", type=Path, help="also write rows and raw samples here")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="seconds to wait after the first page, while the server warms up (default 15)")
    args = parser.parse_args(argv)
    only = {k.strip() for k in args.only.split(",") if k.strip()}
    unknown = only - {c.key for c in CASES}
    if unknown:
        parser.error(f"unknown widget keys: {', '.join(sorted(unknown))}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    cases = [c for c in CASES if not only or c.key in only]
    print(f"torch threads: {torch.get_num_threads()}; widgets: {len(cases)}", flush=True)
    rows = measure(cases, args.repeats, args.settle)
    print_table(rows, args.repeats)
    if args.json:
        args.json.write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
