"""The LM corpus: deterministic, two genres, whole documents held out, provenance matches the shipped one."""

from __future__ import annotations

import hashlib
import json
import platform

import pytest

from moe_core.lm import SHIPPED
from moe_core.lm.corpus import HELDOUT_ONE_IN, corpus_sha256, heldout_sample, load_corpus, manifest

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def docs():
    return load_corpus()


def test_corpus_is_deterministic_and_sorted(docs):
    again = load_corpus()
    assert [d.name for d in again] == [d.name for d in docs]
    for genre in ("code", "prose"):
        names = [d.name for d in docs if d.genre == genre and d.source != "pydoc_data"]
        assert names  # both genres are present
    code = [d.name for d in docs if d.genre == "code"]
    assert code == sorted(code) and "ast.py" in code and "collections/__init__.py" in code
    assert not any(n.startswith(("test/", "pydoc_data/")) or "/test/" in n for n in code)


def test_held_out_documents_are_whole_and_about_one_in_twenty(docs):
    names = [d.name for d in docs]
    assert len(names) == len(set(names))  # a document is in exactly one split
    held = [d for d in docs if d.heldout]
    assert 0.5 / HELDOUT_ONE_IN < len(held) / len(docs) < 2 / HELDOUT_ONE_IN
    assert {d.genre for d in held} == {"code", "prose"}
    # The rule is a hash of the name alone, written out independently here.
    for d in docs[:200]:
        assert d.heldout == (int.from_bytes(hashlib.sha256(d.name.encode()).digest()[:4], "big") % 20 == 0)


def test_manifest_hash_covers_names_and_text(docs):
    m = manifest(docs)
    assert m["sha256"] == corpus_sha256(docs)
    assert m["python_version"] == platform.python_version()
    assert m["genres"]["code"]["documents"] + m["genres"]["prose"]["documents"] == len(docs)
    last = docs[-1]
    changed = [*docs[:-1], type(last)(last.name, last.genre, last.source, last.text + " ")]
    assert corpus_sha256(changed) != m["sha256"]


def test_shipped_manifest_describes_this_corpus(docs):
    shipped = json.loads((SHIPPED / "corpus_manifest.json").read_text())
    assert set(shipped["licences"]) >= {"stdlib", "pydoc_data"}
    ours = {d.name for d in docs}
    theirs = {d["name"] for d in shipped["documents"]}
    if shipped["python_version"] == platform.python_version():
        assert shipped["sha256"] == corpus_sha256(docs)  # the same bytes, so the same model can be rebuilt
    else:  # another Python release: the stdlib moved a little, the file list must still mostly agree
        assert len(ours & theirs) > 0.9 * len(theirs)
    held = {d.name for d in docs if d.heldout}
    assert {d["name"] for d in shipped["documents"] if d["heldout"]} == held & theirs


def test_heldout_sample_is_held_out_text(docs):
    by_name = {d.name: d for d in docs}
    for sample in (heldout_sample(docs), json.loads((SHIPPED / "heldout_sample.json").read_text())):
        for genre in ("code", "prose"):
            assert 1000 < sum(len(p["text"].encode()) for p in sample[genre]) < 16000
            for piece in sample[genre]:
                doc = by_name[piece["name"]]
                assert doc.heldout and doc.genre == genre and doc.text.startswith(piece["text"])
