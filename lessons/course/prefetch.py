"""Load the lessons' browser code while the learner reads, not when they click.

Streamlit's frontend fetches each element's code the first time a page shows that element: the
first lesson a learner opens pulled in Plotly (a 4.7 MB module), the data grid, sliders and
select boxes, and spent 1.2 s of a 2.8 s first visit compiling and running them (measured in
Chromium on 2 cores, bench/RESULTS.md). Browsers keep one copy of each module per tab, so
importing those modules once the page is idle makes the later import by Streamlit instant: the
standard "prefetch the next page's code" technique, in a small script every page carries.

Loaded is not yet fast: V8 compiles a function when it first runs and optimises it once it is
hot, so the first lesson's charts ran Plotly's code cold. After the imports the script draws a
small chart of the lessons' kinds twice, off screen and hidden from screen readers, and throws it
away (`window.__moePrefetch.warmMs` holds each draw's time).

The module files carry a content hash in their names (`PlotlyChart.D9Z0_fxz.js`), which changes
with each Streamlit release, so the names are read from the installed Streamlit at start-up. A
component missing from a future release is skipped (its first use is merely slower); the tests
check every one below still exists.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import streamlit

# The frontend components the lessons draw beyond the home page (each module brings its own
# dependencies): charts, tables, sliders, select boxes, radios, metrics, segmented controls,
# number inputs, text areas, and Markdown with formulas or raw HTML.
COMPONENTS = ("PlotlyChart", "DataFrame", "Slider", "Selectbox", "Radio", "Metric", "ButtonGroup",
              "NumberInput", "TextArea", "rehype-katex", "rehype-raw")  # fmt: skip
STATIC_JS = Path(streamlit.__file__).parent / "static" / "static" / "js"
_HASHED = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.js")
START_AFTER_MS = 1500  # after the page's first draw; then one module per idle moment
# The warm-up chart: the trace kinds and layout parts the lessons' figures use (bars with text,
# a heatmap with cell text and a colour bar, lines with markers, subplots, shapes, annotations,
# a legend). Drawn WARM_ROUNDS times: the second draw runs code that V8 has begun to optimise.
WARM_ROUNDS = 2
WARM_TRACES = [
    {"type": "bar", "x": ["E0", "E1", "E2"], "y": [1, 2, 3], "text": ["1", "2", "3"],
     "textposition": "outside"},
    {"type": "heatmap", "z": [[0.1, 0.9], [0.6, 0.4]], "x": ["E0", "E1"], "y": ["a", "b"],
     "texttemplate": "%{z:.2f}", "colorbar": {"title": {"text": "p"}}, "xaxis": "x2", "yaxis": "y2"},
    {"type": "scatter", "mode": "lines+markers", "x": [0, 1, 2], "y": [2, 0.5, 1], "name": "loss",
     "xaxis": "x3", "yaxis": "y3"},
]
WARM_LAYOUT = {
    "grid": {"rows": 1, "columns": 3, "pattern": "independent"}, "showlegend": True,
    "xaxis": {"title": {"text": "expert"}, "automargin": True}, "yaxis": {"title": {"text": "tokens"}},
    "shapes": [{"type": "line", "xref": "x3", "yref": "y3", "x0": 0, "x1": 2, "y0": 1, "y1": 1}],
    "annotations": [{"text": "k", "xref": "x3", "yref": "y3", "x": 1, "y": 1.5, "showarrow": False}],
}

_SCRIPT = """
<script>
(() => {
  if (window.__moePrefetch) return;  // once per browser tab: a page switch keeps the document
  const files = FILES;
  window.__moePrefetch = {state: "waiting", files};
  const main = document.querySelector('script[type="module"][src*="/static/js/"]');
  if (!main) { window.__moePrefetch.state = "no bundle"; return; }
  const base = new URL("./", main.src);  // right behind a proxy's base path too
  const idle = window.requestIdleCallback || (f => setTimeout(f, 50));
  const done = () => Object.assign(window.__moePrefetch, {state: "done", doneAt: performance.now()});
  // Plotly's code runs slowly the first time (V8 compiles it lazily, function by function): draw a
  // small chart of the lessons' kinds, off screen, then throw it away.
  const warm = (round) => {
    const P = window.Plotly;
    if (!P || round >= WARM_ROUNDS) { done(); return; }
    idle(() => {
      const box = document.createElement("div");
      box.setAttribute("aria-hidden", "true");
      box.style.cssText = "position:absolute;left:-10000px;top:0;width:640px;height:320px;visibility:hidden";
      document.body.appendChild(box);
      const t0 = performance.now();
      P.newPlot(box, WARM_TRACES, WARM_LAYOUT, {displayModeBar: false, staticPlot: false})
        .then(() => { (window.__moePrefetch.warmMs ||= []).push(performance.now() - t0); })
        .catch(() => null)
        .finally(() => { try { P.purge(box); } catch (e) {} box.remove(); warm(round + 1); });
    }, {timeout: 5000});
  };
  const next = i => {
    if (i >= files.length) { warm(0); return; }
    idle(() => import(new URL(files[i], base).href).catch(() => null).finally(() => next(i + 1)),
         {timeout: 5000});
  };
  setTimeout(() => {
    window.__moePrefetch.state = "loading";
    window.__moePrefetch.startedAt = performance.now();
    next(0);
  }, START_AFTER_MS);
})();
</script>
"""


@lru_cache(maxsize=1)
def module_files() -> tuple[str, ...]:
    """The installed Streamlit's file name for each of COMPONENTS that it has, in that order."""
    files = []
    for name in COMPONENTS:
        found = sorted(p.name for p in STATIC_JS.glob(f"{name}.*.js") if _HASHED.fullmatch(p.name))
        files.extend(found[:1])
    return tuple(files)


def prefetch_script() -> str:
    """The script (HTML) that imports `module_files()` once the page is idle; empty without any."""
    files = module_files()
    if not files:
        return ""
    script = _SCRIPT
    values = {"FILES": list(files), "START_AFTER_MS": START_AFTER_MS, "WARM_ROUNDS": WARM_ROUNDS,
              "WARM_TRACES": WARM_TRACES, "WARM_LAYOUT": WARM_LAYOUT}
    for name, value in values.items():
        script = script.replace(name, json.dumps(value))
    return script
