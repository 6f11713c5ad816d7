"""A synthetic multi-domain text corpus and a word tokenizer, generated in code (nothing downloaded).

Why synthetic: Lesson 2 needs a router that has *learned* something visible in seconds on a CPU.
Five topics with their own vocabularies, glued together by shared function words ("the", "with")
and a few words that mean different things in different topics ("key", "score", "run"), give a
router something real to specialise on, and give learners tokens whose routing depends on context.

    >>> corpus = make_corpus(num_sentences=4, seed=0)
    >>> tok = WordTokenizer()
    >>> ids = tok.encode("the chef stirs the sauce")      # list of vocabulary ids

Sentences are single-topic; `EXAMPLES` adds hand-written ones, some mixing two topics, for the
lesson's picker. Generation is seeded and uses its own `random.Random`, so it never disturbs (or
depends on) the global random state.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

DOMAINS = ("code", "maths", "cooking", "sport", "music")

# Words that belong to one topic. Roughly 25 each; order matters only for the Zipf-like sampler
# (earlier words are drawn more often, as real topic words are).
# fmt: off
TOPIC_WORDS: dict[str, tuple[str, ...]] = {
    "code": ("python", "loop", "variable", "compile", "bug", "array", "class", "debug", "print",
             "return", "string", "integer", "import", "module", "pointer", "syntax", "server",
             "git", "commit", "test", "stack", "compiler", "lambda", "thread", "parse"),
    "maths": ("equation", "proof", "integral", "matrix", "prime", "number", "vector", "theorem",
              "derivative", "sum", "angle", "triangle", "algebra", "limit", "lemma", "graph",
              "divide", "multiply", "square", "root", "fraction", "probability", "axiom",
              "geometry", "solve"),
    "cooking": ("chef", "sauce", "bake", "oven", "flour", "butter", "garlic", "onion", "stir",
                "recipe", "salt", "pepper", "bread", "soup", "pan", "boil", "roast", "sugar",
                "egg", "dough", "knife", "simmer", "spice", "kitchen", "hot"),
    "sport": ("goal", "team", "coach", "match", "player", "ball", "referee", "stadium",
              "league", "tackle", "sprint", "marathon", "tennis", "football", "win", "race",
              "medal", "keeper", "penalty", "season", "champion", "train", "kick", "court",
              "athlete"),
    "music": ("guitar", "melody", "chord", "song", "piano", "rhythm", "drum", "singer",
              "tempo", "band", "concert", "violin", "harmony", "lyrics", "album", "note",
              "orchestra", "tune", "beat", "jazz", "opera", "bass", "choir", "octave", "sing"),
}

# Words shared by two or three topics: the router can only place them from context.
AMBIGUOUS_WORDS: dict[str, tuple[str, ...]] = {
    "key": ("code", "music"),
    "score": ("sport", "music", "maths"),
    "run": ("code", "sport"),
    "table": ("maths", "cooking", "code"),
    "scale": ("music", "maths", "cooking"),
    "function": ("code", "maths"),
    "record": ("sport", "music"),
    "mix": ("cooking", "music"),
    "pitch": ("music", "sport"),
    "set": ("maths", "sport", "code"),
    "play": ("music", "sport"),
    "hit": ("music", "sport"),
}

# Function words every topic uses (shared by all experts' inputs).
FUNCTION_WORDS = ("the", "a", "of", "and", "to", "in", "is", "with", "for", "on", "it",
                  "this", "we", "then", "very", "new", "use", "read")
# fmt: on

PAD, UNK = "<pad>", "<unk>"
FUNCTION_WORD_RATE = 0.35  # share of tokens that are function words
AMBIGUOUS_RATE = 0.12  # share of topic tokens drawn from the shared, ambiguous words

EXAMPLES: dict[str, str] = {
    "Code": "we debug the python loop then commit the new module to git",
    "Maths": "the proof of this theorem uses a matrix and the integral of a prime sum",
    "Cooking": "the chef stirs the garlic sauce then bakes the bread in a hot oven",
    "Sport": "the coach and the team train for the match in the new stadium",
    "Music": "the band plays a jazz melody with piano and guitar chords",
    "Ambiguous 'key' and 'score' in music": "the singer hits the key note and the choir reads the score",
    "Ambiguous 'run' and 'key' in code": "we run the test and the key of the array is a string",
    "Cooking, then music": "the chef bakes bread with butter then the band plays a song on guitar",
}


@dataclass(frozen=True)
class Sentence:
    words: tuple[str, ...]
    domain: int  # index into DOMAINS


def _topic_pool(domain: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    own = TOPIC_WORDS[domain]
    shared = tuple(w for w, owners in AMBIGUOUS_WORDS.items() if domain in owners)
    return own, shared


def make_sentence(domain: int, rng: random.Random, min_len: int = 6, max_len: int = 12) -> Sentence:
    """One sentence of a topic: topic words (Zipf-like), ambiguous words, function words."""
    own, shared = _topic_pool(DOMAINS[domain])
    zipf = [1.0 / (rank + 1) for rank in range(len(own))]
    words = []
    for _ in range(rng.randint(min_len, max_len)):
        if rng.random() < FUNCTION_WORD_RATE:
            words.append(rng.choice(FUNCTION_WORDS))
        elif shared and rng.random() < AMBIGUOUS_RATE:
            words.append(rng.choice(shared))
        else:
            words.append(rng.choices(own, weights=zipf)[0])
    return Sentence(tuple(words), domain)


def make_corpus(num_sentences: int, seed: int = 0) -> list[Sentence]:
    """`num_sentences` sentences, topics in round-robin order (balanced), seeded."""
    rng = random.Random(seed)
    return [make_sentence(i % len(DOMAINS), rng) for i in range(num_sentences)]


def vocabulary() -> tuple[str, ...]:
    """All words, in a fixed order: PAD = 0, UNK = 1, then function, ambiguous and topic words."""
    words = list(FUNCTION_WORDS) + sorted(AMBIGUOUS_WORDS)
    for domain in DOMAINS:
        words.extend(TOPIC_WORDS[domain])
    return (PAD, UNK, *dict.fromkeys(words))


def word_domains() -> dict[str, tuple[int, ...]]:
    """Topics each word belongs to (empty for function words): for colouring token labels."""
    out: dict[str, tuple[int, ...]] = {w: () for w in FUNCTION_WORDS}
    for word, owners in AMBIGUOUS_WORDS.items():
        out[word] = tuple(DOMAINS.index(d) for d in owners)
    for d, domain in enumerate(DOMAINS):
        out.update({w: (d,) for w in TOPIC_WORDS[domain]})
    return out


_WORD = re.compile(r"[a-z]+")
# A light stemmer so "bakes", "chords" and "stirs" find "bake", "chord", "stir".
_SUFFIXES = ("es", "s", "ed", "ing")


class WordTokenizer:
    """Lower-case word tokenizer over the corpus vocabulary; unknown words map to <unk>."""

    def __init__(self) -> None:
        self.words = vocabulary()
        self.index = {w: i for i, w in enumerate(self.words)}

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    @property
    def pad_id(self) -> int:
        return self.index[PAD]

    @property
    def unk_id(self) -> int:
        return self.index[UNK]

    def split(self, text: str) -> list[str]:
        """Words of `text`: lower case, letters only (punctuation and digits dropped)."""
        return _WORD.findall(text.lower())

    def lookup(self, word: str) -> int:
        if word in self.index:
            return self.index[word]
        for suffix in _SUFFIXES:
            stem = word[: -len(suffix)]
            if word.endswith(suffix) and len(stem) >= 3:
                for candidate in (stem, stem + "e"):
                    if candidate in self.index:
                        return self.index[candidate]
        return self.unk_id

    def encode(self, text: str) -> list[int]:
        return [self.lookup(w) for w in self.split(text)]

    def encode_words(self, words: tuple[str, ...] | list[str]) -> list[int]:
        return [self.lookup(w) for w in words]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.words[i] for i in ids]
