"""The training corpus of `MoELM`: real text nobody on this project wrote, present with no download.

Two genres, labelled so routing can be analysed per genre:

* code  — the Python standard library's own `.py` sources (code, comments, docstrings), minus its
          test suites and `pydoc_data`; licence PSF-2.0 (https://docs.python.org/3/license.html).
* prose — English prose: the language reference and library documentation Python ships in
          `pydoc_data/topics.py` (one document per topic; PSF-2.0), IDLE's own prose files
          (`idlelib/*.txt`, the interpreter's `LICENSE.txt`; PSF-2.0), and Debian's
          `/usr/share/common-licenses` (the licence texts themselves; verbatim copying permitted).

The document list is deterministic (sorted), and whole documents are held out for evaluation by a
hash of their name (about 1 in 20). `manifest()` records each file, the SHA-256 of the text, the
licences and the Python version: the stdlib differs slightly between Python releases, so a rebuild
on another version gives a different hash (and `train-lm` says so).
"""

from __future__ import annotations

import hashlib
import platform
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

GENRES = ("code", "prose")
HELDOUT_ONE_IN = 20
DEBIAN_LICENSES = Path("/usr/share/common-licenses")
# Older versions nearly identical to a newer text kept beside them: dropped so a held-out licence
# is never a near-copy of a training one.
NEAR_DUPLICATES = {"LGPL-2", "GFDL-1.2"}
SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "pydoc_data", "__pycache__"}
IDLE_PROSE = (
    "idlelib/NEWS.txt",
    "idlelib/NEWS2x.txt",
    "idlelib/HISTORY.txt",
    "idlelib/README.txt",
    "idlelib/TODO.txt",
    "idlelib/extend.txt",
    "LICENSE.txt",
)
LICENCES = {
    "stdlib": "PSF-2.0 (Python Software Foundation License Version 2)",
    "pydoc_data": "PSF-2.0 (the Python documentation, as shipped in pydoc_data/topics.py)",
    "common-licenses": "each licence text's own terms: verbatim copying and distribution permitted",
}


@dataclass(frozen=True)
class Document:
    name: str  # stable id: path relative to the stdlib, 'pydoc_data/topics.py#key', or 'common-licenses/X'
    genre: str  # 'code' or 'prose'
    source: str  # key of LICENCES
    text: str

    @property
    def heldout(self) -> bool:
        digest = hashlib.sha256(self.name.encode()).digest()
        return int.from_bytes(digest[:4], "big") % HELDOUT_ONE_IN == 0


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _code_documents(lib: Path) -> list[Document]:
    docs = []
    for path in sorted(lib.rglob("*.py")):
        rel = path.relative_to(lib)
        if SKIP_DIRS.intersection(rel.parts[:-1]) or path.is_symlink():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # a few stdlib files are deliberately not UTF-8; skipping is deterministic
        if text.strip():
            docs.append(Document(rel.as_posix(), "code", "stdlib", text))
    return docs


def _prose_documents(lib: Path) -> list[Document]:
    from pydoc_data import topics

    docs = [
        Document(f"pydoc_data/topics.py#{key}", "prose", "pydoc_data", topics.topics[key])
        for key in sorted(topics.topics)
    ]
    for rel in IDLE_PROSE:
        if (lib / rel).is_file():
            docs.append(Document(rel, "prose", "stdlib", (lib / rel).read_text(encoding="utf-8")))
    if DEBIAN_LICENSES.is_dir():
        for path in sorted(DEBIAN_LICENSES.iterdir()):
            if path.is_file() and not path.is_symlink() and path.name not in NEAR_DUPLICATES:
                # (symlinks GPL -> GPL-3 etc. are skipped: each text counts once)
                docs.append(
                    Document(
                        f"common-licenses/{path.name}",
                        "prose",
                        "common-licenses",
                        path.read_text(encoding="utf-8"),
                    )
                )
    return docs


def load_corpus() -> list[Document]:
    """Every document, code first then prose, each group in sorted order."""
    lib = stdlib_dir()
    return _code_documents(lib) + _prose_documents(lib)


def corpus_sha256(docs: list[Document]) -> str:
    """SHA-256 of the documents' names and texts, concatenated in order (NUL-separated)."""
    h = hashlib.sha256()
    for d in docs:
        h.update(d.name.encode() + b"\0" + d.text.encode("utf-8") + b"\0")
    return h.hexdigest()


def manifest(docs: list[Document]) -> dict:
    """Provenance record shipped beside the checkpoint (corpus_manifest.json)."""
    genres = {}
    for g in GENRES:
        part = [d for d in docs if d.genre == g]
        genres[g] = {
            "documents": len(part),
            "bytes": sum(len(d.text.encode()) for d in part),
            "heldout_documents": sum(d.heldout for d in part),
            "heldout_bytes": sum(len(d.text.encode()) for d in part if d.heldout),
        }
    return {
        "sha256": corpus_sha256(docs),
        "python_version": platform.python_version(),
        "python_implementation": sys.implementation.name,
        "stdlib_dir": str(stdlib_dir()),
        "heldout_rule": f"sha256(name)[:4] as big-endian int % {HELDOUT_ONE_IN} == 0",
        "licences": LICENCES,
        "genres": genres,
        "documents": [
            {
                "name": d.name,
                "genre": d.genre,
                "source": d.source,
                "heldout": d.heldout,
                "sha256": hashlib.sha256(d.text.encode()).hexdigest()[:16],
            }
            for d in docs
        ],
    }


def heldout_sample(docs: list[Document], bytes_per_genre: int = 4096) -> dict:
    """A few KB of held-out text per genre, cut at line ends: for tests and the app."""
    sample: dict[str, list[dict]] = {}
    for g in GENRES:
        picked, size = [], 0
        for d in docs:
            if d.genre != g or not d.heldout or size >= bytes_per_genre:
                continue
            text = d.text[: min(len(d.text), 2048)]
            text = text[: text.rfind("\n") + 1] or text
            picked.append({"name": d.name, "text": text})
            size += len(text.encode())
        sample[g] = picked
    return sample
