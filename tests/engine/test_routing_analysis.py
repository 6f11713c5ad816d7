"""Routing analysis on hand-made routings whose answers are worked out by hand below."""

from __future__ import annotations

import json
import math

import pytest
import torch

from moe_core.routing_analysis import (
    DIGITS,
    IDENTIFIER,
    OTHER,
    PUNCTUATION,
    WHITESPACE,
    WORD,
    chance_same_expert_rate,
    consecutive_same_expert_rate,
    expert_share,
    mutual_information,
    routing_table,
    shuffled_mutual_information,
    summarize,
    token_class,
)


def entropy_bits(*p: float) -> float:
    return -sum(q * math.log2(q) for q in p if q > 0)


# --- token_class --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("    ", WHITESPACE),  # indentation
        ("\n", WHITESPACE),
        ("\t\n  ", WHITESPACE),
        (" (", PUNCTUATION),  # BPE's leading space is not part of the token's look
        ("):", PUNCTUATION),
        ("==", PUNCTUATION),
        ("—", PUNCTUATION),  # Unicode punctuation in prose
        (" 42", DIGITS),
        ("3.14", DIGITS),
        ("1_000", DIGITS),
        (" def", IDENTIFIER),  # keyword
        ("None", IDENTIFIER),
        (" in", IDENTIFIER),  # a keyword, even in prose: the rule sees no context
        ("__init__", IDENTIFIER),  # underscore
        ("__", IDENTIFIER),  # a piece of a dunder name, not punctuation
        ("utf8", IDENTIFIER),  # letters with a digit
        ("getName", IDENTIFIER),  # camelCase
        ("ValueError", IDENTIFIER),  # PascalCase
        ("HTTPServer", IDENTIFIER),  # an acronym, then a capitalised word
        (" the", WORD),
        ("Licence", WORD),  # capitalised but one hump only
        ("ing", WORD),  # a BPE piece of a word
        ("HTTP", WORD),  # all capitals, no hump
        ("self.", OTHER),  # name glued to punctuation
        ("'t", OTHER),
        ("café", OTHER),  # non-ASCII letter
        ("🙂", OTHER),
        ("", OTHER),
    ],
)
def test_token_class_table(text, expected):
    assert token_class(text) == expected


# --- expert_share -------------------------------------------------------------------------------


def test_code_and_prose_on_separate_experts_share_one_and_zero():
    labels = ["code", "prose", "code", "prose", "code", "prose"]
    ids = torch.tensor([0, 1, 0, 1, 0, 1])
    names, shares = expert_share(ids, labels, num_experts=2)
    assert names == ["code", "prose"]
    assert shares.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_share_counts_tokens_per_label():
    # label a: experts 0, 0, 2 -> [2/3, 0, 1/3]; label b: expert 1 once -> [0, 1, 0].
    names, shares = expert_share(torch.tensor([0, 1, 0, 2]), ["a", "b", "a", "a"], 3, label_order=["b", "a"])
    assert names == ["b", "a"]
    torch.testing.assert_close(shares, torch.tensor([[0, 1, 0], [2 / 3, 0, 1 / 3]], dtype=torch.float64))


def test_share_over_all_topk_slots():
    # Two tokens of label a choose (0, 1) and (0, 2): 4 slots, expert 0 holds 2 of them.
    _, shares = expert_share(torch.tensor([[0, 1], [0, 2]]), ["a", "a"], 3)
    torch.testing.assert_close(shares, torch.tensor([[0.5, 0.25, 0.25]], dtype=torch.float64))


def test_share_of_a_label_with_no_tokens_is_nan_and_unknown_labels_raise():
    _, shares = expert_share(torch.tensor([1]), ["a"], 2, label_order=["a", "b"])
    assert shares[0].tolist() == [0.0, 1.0] and torch.isnan(shares[1]).all()
    with pytest.raises(ValueError, match="not in label_order"):
        expert_share(torch.tensor([1]), ["c"], 2, label_order=["a"])
    with pytest.raises(ValueError, match="expert ids"):
        expert_share(torch.tensor([2]), ["a"], 2)  # expert 2 of 0..1


# --- consecutive tokens -------------------------------------------------------------------------


def test_constant_router_keeps_its_expert_and_chance_agrees():
    ids = torch.full((7,), 3)
    assert consecutive_same_expert_rate(ids) == 1.0
    assert chance_same_expert_rate(ids, num_experts=4) == 1.0  # p_3 = 1


def test_alternating_router_never_repeats():
    ids = torch.tensor([0, 1, 0, 1, 0, 1])
    assert consecutive_same_expert_rate(ids) == 0.0
    assert chance_same_expert_rate(ids, 2) == pytest.approx(0.5)  # (1/2)² + (1/2)²


@pytest.mark.parametrize("num_experts", [2, 4, 8])
def test_chance_of_uniform_loads_is_one_over_e(num_experts):
    ids = torch.arange(num_experts).repeat(3)
    assert chance_same_expert_rate(ids, num_experts) == pytest.approx(1 / num_experts)


def test_chance_of_uneven_loads_is_sum_of_squares():
    # p = (3/4, 1/4): 9/16 + 1/16.
    assert chance_same_expert_rate(torch.tensor([0, 0, 1, 0]), 2) == pytest.approx(10 / 16)


def test_pairs_across_documents_and_padding_do_not_count():
    ids = torch.tensor([0, 0, 1, 1, 2])
    # Four pairs, (0,0) (0,1) (1,1) (1,2): two repeat.
    assert consecutive_same_expert_rate(ids) == pytest.approx(2 / 4)
    # Documents [0 0] [1 1] and a padding token: the pairs left are (0,0) and (1,1).
    docs = torch.tensor([0, 0, 1, 1, -1])
    assert consecutive_same_expert_rate(ids, docs) == 1.0
    # Loads over the four real tokens only: (1/2)² + (1/2)².
    assert chance_same_expert_rate(ids, 3, docs) == pytest.approx(0.5)
    assert math.isnan(consecutive_same_expert_rate(torch.tensor([4])))
    with pytest.raises(ValueError, match=r"must be \[N\]"):
        consecutive_same_expert_rate(torch.tensor([[0, 1], [1, 0]]))  # top-k ids, not top-1


# --- mutual information -------------------------------------------------------------------------


def test_perfect_genre_router_gives_one_bit_and_constant_router_zero():
    labels = ["code"] * 4 + ["prose"] * 4
    assert mutual_information(labels, torch.tensor([0] * 4 + [1] * 4)) == pytest.approx(1.0)
    assert mutual_information(labels, torch.full((8,), 5)) == pytest.approx(0.0)


def test_mutual_information_by_hand():
    # p(a,0) = 1/2, p(b,0) = 1/4, p(b,1) = 1/4:  I = H(E) - H(E|L) = H(3/4, 1/4) - 1/2 · H(1/2, 1/2).
    expected = entropy_bits(3 / 4, 1 / 4) - 0.5 * entropy_bits(0.5, 0.5)
    assert mutual_information(["a", "a", "b", "b"], torch.tensor([0, 0, 0, 1])) == pytest.approx(expected)


def test_shuffled_control_is_near_zero_and_seeded():
    g = torch.Generator().manual_seed(1)
    n = 2000
    labels = ["code" if b else "prose" for b in torch.randint(0, 2, (n,), generator=g).tolist()]
    independent = torch.randint(0, 4, (n,), generator=g)
    # The plug-in bias is about (L-1)(E-1)/(2 N ln 2) = 3 / (4000 ln 2) ≈ 0.001 bits.
    assert mutual_information(labels, independent) < 0.01
    mean, std = shuffled_mutual_information(labels, independent, num_shuffles=10, seed=0)
    assert 0 <= mean < 0.01 and std < 0.01
    # Shuffling a perfect router's labels destroys its 1 bit.
    perfect = torch.tensor([0 if label == "code" else 1 for label in labels])
    assert shuffled_mutual_information(labels, perfect, num_shuffles=10, seed=0)[0] < 0.01
    assert shuffled_mutual_information(labels, perfect, 10, seed=3) == shuffled_mutual_information(
        labels, perfect, 10, seed=3
    )


def test_document_shuffle_keeps_what_documents_explain():
    # Two documents, each routed to its own expert: whichever document is called "code", the genre
    # still names the expert, so a document-level control keeps the whole bit -- with two
    # documents the genre figure cannot be told apart from "each document has its habits".
    labels = ["code"] * 3 + ["prose"] * 3
    ids = torch.tensor([0, 0, 0, 1, 1, 1])
    mean, std = shuffled_mutual_information(labels, ids, num_shuffles=6, seed=0, groups=[7, 7, 7, 9, 9, 9])
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0)
    with pytest.raises(ValueError, match="single label"):
        shuffled_mutual_information(labels, ids, groups=[7] * 6)


# --- routing table and summary ------------------------------------------------------------------


def test_routing_table_is_softmax_topk_renormalised():
    # Logits = log p, so the softmax gives back p exactly.
    layer0 = torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]]).log()
    layer1 = torch.tensor([[0.2, 0.2, 0.6], [0.7, 0.1, 0.2]]).log()
    table = routing_table([layer0, layer1], top_k=2)
    assert table.top1_ids.tolist() == [[0, 1], [2, 0]]
    assert table.topk_ids.tolist() == [[[0, 1], [1, 2]], [[2, 0], [0, 2]]]
    # Row (0.5, 0.3) renormalised: 0.5/0.8, 0.3/0.8; row (0.6, 0.3): 2/3, 1/3; and so on.
    expected = torch.tensor([[[0.625, 0.375], [2 / 3, 1 / 3]], [[0.75, 0.25], [7 / 9, 2 / 9]]])
    torch.testing.assert_close(table.topk_weights, expected)


def one_hot_logits(experts: list[int], num_experts: int) -> torch.Tensor:
    """Logits [N, E] whose top-1 is the given expert (10 against 0) and top-2 the next one (1)."""
    logits = torch.zeros(len(experts), num_experts)
    for n, e in enumerate(experts):
        logits[n, e] = 10.0
        logits[n, (e + 1) % num_experts] = 1.0
    return logits


def test_summary_of_a_genre_router_and_a_constant_router():
    tokens = ["pad", "def", " f", "():", "\n    ", " The", " cat", " sat", "."]
    genres = ["code"] * 5 + ["prose"] * 4
    docs = torch.tensor([-1, 0, 0, 0, 0, 1, 1, 1, 1])  # the first token is padding
    by_genre = one_hot_logits([2, 0, 0, 0, 0, 1, 1, 1, 1], 3)  # layer 0: code -> 0, prose -> 1
    constant = one_hot_logits([2] * 9, 3)  # layer 1: everything -> 2
    s = summarize([by_genre, constant], tokens, top_k=2, genres=genres, doc_ids=docs, num_shuffles=5)
    assert s.genre_labels == ["code", "prose"]
    assert s.genre_share.tolist() == [[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [0, 0, 1]]]
    assert s.genre_mi == pytest.approx([1.0, 0.0])
    # Two documents only: the document-level control keeps the bit (see the test above).
    assert s.genre_mi_control == pytest.approx([1.0, 0.0])
    # Classes: def = identifier; f, The, cat, sat = word; "():" and "." punctuation; "\n    " space.
    assert s.token_classes[1:] == [IDENTIFIER, WORD, PUNCTUATION, WHITESPACE, WORD, WORD, WORD, PUNCTUATION]
    assert s.class_labels == [WHITESPACE, PUNCTUATION, IDENTIFIER, WORD]
    # Layer 0, words: f -> 0, The/cat/sat -> 1, so [1/4, 3/4, 0].
    assert s.class_share[0, 3].tolist() == pytest.approx([0.25, 0.75, 0.0])
    assert s.class_share[1].tolist() == [[0, 0, 1]] * 4
    # Within each document the expert never changes; the pair across documents does not count.
    assert s.same_expert_rate == [1.0, 1.0]
    assert s.chance_rate == pytest.approx([0.5, 1.0])  # layer 0 loads (1/2, 1/2) over the real tokens
    json.dumps(s.as_dict())  # the app can cache or ship it as plain JSON


def test_summary_share_over_topk_slots_and_without_genres():
    # Both tokens pick (0, 1): over slots expert 0 and expert 1 hold half each.
    s = summarize([one_hot_logits([0, 0], 3)], [" the", " cat"], top_k=2, share_over="topk")
    assert s.class_share[0].tolist() == [[0.5, 0.5, 0.0]]
    assert s.genre_share is None and s.genre_mi == [] and s.genre_labels == []
    with pytest.raises(ValueError, match="one entry per token"):
        summarize([one_hot_logits([0, 0], 3)], [" the"], top_k=2)
