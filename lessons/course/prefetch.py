"""Load the lessons' browser code while the learner reads, not when they click.

Streamlit's frontend fetches each element's code the first time a page shows that element: the
first lesson a learner opens pulled in Plotly (a 4.7 MB module), the data grid, sliders and
select boxes, and spent 1.2 s of a 2.8 s first visit compiling and running them (measured in
Chromium on 2 cores, bench/RESULTS.md). Browsers keep one copy of each module per tab, so
importing those modules once the page is idle makes the later import by Streamlit instant: the
standard "prefetch the next page's code" technique, in a small script every page carries.

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
  const next = i => {
    if (i >= files.length) {
      Object.assign(window.__moePrefetch, {state: "done", doneAt: performance.now()});
      return;
    }
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
    return (_SCRIPT.replace("FILES", json.dumps(list(files)))
            .replace("START_AFTER_MS", str(START_AFTER_MS)))  # fmt: skip
