"""The byte-level BPE round-trips any Unicode, and transformers reads the same tokenizer.json.

Two tokenizers are checked: one trained here in the test on a little real stdlib text (so the
training code itself is exercised), and the one shipped in moe_core/weights/lm/.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moe_core.lm import SHIPPED, load_tokenizer
from moe_core.lm.corpus import load_corpus
from moe_core.lm.tokenizer import SPECIAL_TOKENS, decode, encode, save_tokenizer, token_bytes, train_tokenizer

pytestmark = pytest.mark.engine

AWKWARD = [
    "",
    "def f(x):\n\treturn x  # comment\r\n",
    "emoji 🤖🧠👩‍👩‍👧 flags 🇫🇷 and CJK 混合专家模型 and Hangul 전문가",
    "control \x00\x01\x07\x1b[31m\x7f\u200b\ufeff end",
    "<s> typed specials </s> <pad> and <script>alert(1)</script>",
    "   leading and trailing spaces   \n\n\n",
    "\U0010ffff\U0001f600\u0301e\u0301",  # last plane, combining accents (no NFC applied)
]


@pytest.fixture(scope="module")
def small_tokenizer():
    docs = [d.text for d in load_corpus() if not d.heldout][:25]
    return train_tokenizer(docs, vocab_size=600)


@pytest.fixture(scope="module", params=["trained-here", "shipped"])
def tok(request, small_tokenizer):
    return small_tokenizer if request.param == "trained-here" else load_tokenizer(SHIPPED)


@pytest.mark.parametrize("text", AWKWARD)
def test_awkward_text_round_trips(tok, text):
    ids = encode(tok, text)
    assert decode(tok, ids) == text
    # Every byte is covered: the byte lengths of the tokens add up to the UTF-8 length (bits/byte uses it).
    lengths = token_bytes(tok)
    if "<s>" not in text:
        assert sum(lengths[i] for i in ids) == len(text.encode("utf-8"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_arbitrary_unicode_round_trips(small_tokenizer, text):
    assert decode(small_tokenizer, encode(small_tokenizer, text)) == text


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_shipped_tokenizer_round_trips_arbitrary_unicode(text):
    tok = _shipped()
    assert decode(tok, encode(tok, text)) == text


def _shipped(cache={}):  # noqa: B006 - a module-level memo for hypothesis' many calls
    if "tok" not in cache:
        cache["tok"] = load_tokenizer(SHIPPED)
    return cache["tok"]


def test_special_ids_match_the_mixtral_config(small_tokenizer):
    vocab = small_tokenizer.get_vocab()
    assert [vocab[s] for s in SPECIAL_TOKENS] == [0, 1, 2]  # pad, bos (<s>), eos (</s>)
    assert small_tokenizer.get_vocab_size() == 600


def test_bpe_merges_compress_real_code(small_tokenizer):
    text = next(d.text for d in load_corpus() if d.heldout and d.genre == "code")[:4000]
    assert len(encode(small_tokenizer, text)) < len(text.encode()) / 2  # >2 bytes per token


@pytest.mark.parametrize("loader", ["AutoTokenizer", "PreTrainedTokenizerFast"])
def test_transformers_loads_the_same_tokenizer(tmp_path, small_tokenizer, loader):
    import transformers

    save_tokenizer(small_tokenizer, tmp_path)
    hf = getattr(transformers, loader).from_pretrained(str(tmp_path))
    for text in AWKWARD:
        assert hf(text, add_special_tokens=False)["input_ids"] == encode(small_tokenizer, text)
        assert hf.decode(encode(small_tokenizer, text), clean_up_tokenization_spaces=False) == text
    assert (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id) == (1, 2, 0)
