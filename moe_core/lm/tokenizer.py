"""A byte-level BPE tokenizer for `MoELM`, trained with Hugging Face `tokenizers` (no transformers).

Byte-level (GPT-2, Radford et al. 2019): text is UTF-8 bytes mapped to 256 printable symbols before
BPE, so every string — emoji, CJK, control characters — encodes, and decodes back to itself exactly.
No normaliser (NFC would change the text) and no automatic BOS/EOS, so `decode(encode(s)) == s`.
Ids 0, 1, 2 are `<pad>`, `<s>`, `</s>`, matching the Mixtral config's pad/bos/eos ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>")


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096):
    """Train a byte-level BPE on `texts`; returns a `tokenizers.Tokenizer`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def save_tokenizer(tok, path) -> None:
    """tokenizer.json plus a tokenizer_config.json so `AutoTokenizer` picks the fast tokenizer."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok.save(str(path / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "pad_token": "<pad>",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 2048,
    }
    (path / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def load_tokenizer(path):
    """The `tokenizers.Tokenizer` in `path/tokenizer.json` (or `path` itself if it is the file)."""
    from tokenizers import Tokenizer

    path = Path(path)
    return Tokenizer.from_file(str(path / "tokenizer.json" if path.is_dir() else path))


def encode(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


def decode(tok, ids: Iterable[int]) -> str:
    """Exact inverse of `encode`: special tokens typed as text come back as typed."""
    return tok.decode(list(ids), skip_special_tokens=False)


def token_bytes(tok) -> list[int]:
    """UTF-8 byte length of every token id (specials count 0): for bits-per-byte."""
    from tokenizers import pre_tokenizers

    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    lengths = [0] * tok.get_vocab_size()
    for piece, idx in tok.get_vocab().items():
        if piece not in SPECIAL_TOKENS and all(ch in alphabet for ch in piece):
            lengths[idx] = len(piece)  # one byte-level symbol per byte
    return lengths
