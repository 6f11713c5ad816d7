"""Lesson 2's trained router demo: the corpus, the tokenizer, training, weights, and specialisation.

The headline check: after training, tokens of one topic favour the same experts far more than
chance. "Chance" is measured, not assumed: the same score with the topics shuffled across tokens,
and the score of an untrained model. The score itself is checked against hand-computed cases.
"""

from __future__ import annotations

import math

import pytest
import torch

from moe_core.router import softmax_topk
from moe_core.router_demo import (
    DEFAULT_WEIGHTS,
    RouterDemo,
    TrainSettings,
    evaluate_specialisation,
    explain_token,
    load_router_demo,
    route_tokens,
    router_noise,
    save_router_demo,
    specialisation_score,
    train_router_demo,
)
from moe_core.text_data import DOMAINS, EXAMPLES, PAD, UNK, WordTokenizer, make_corpus, vocabulary

pytestmark = pytest.mark.engine


# --- corpus and tokenizer ----------------------------------------------------------------------


def test_vocabulary_is_fixed_and_unique() -> None:
    words = vocabulary()
    assert words[:2] == (PAD, UNK)
    assert len(set(words)) == len(words)
    assert vocabulary() == words  # built from code, same every time


def test_tokenizer_maps_words_case_and_plurals() -> None:
    tok = WordTokenizer()
    assert tok.split("The Chef, stirs!") == ["the", "chef", "stirs"]
    assert tok.encode("chefs bakes stirs") == [tok.index["chef"], tok.index["bake"], tok.index["stir"]]
    assert tok.encode("zebra") == [tok.unk_id]
    assert tok.encode("") == []
    assert tok.decode(tok.encode("the guitar")) == ["the", "guitar"]


def test_examples_use_only_known_words() -> None:
    tok = WordTokenizer()
    for name, sentence in EXAMPLES.items():
        assert tok.unk_id not in tok.encode(sentence), name


def test_corpus_is_seeded_balanced_and_in_vocabulary() -> None:
    a, b = make_corpus(50, seed=3), make_corpus(50, seed=3)
    assert a == b
    assert a != make_corpus(50, seed=4)
    assert [s.domain for s in a[:5]] == list(range(len(DOMAINS)))
    vocab = set(vocabulary())
    assert all(w in vocab for s in a for w in s.words)


# --- the score ---------------------------------------------------------------------------------


def test_specialisation_score_extremes_and_a_hand_computed_case() -> None:
    topics = torch.tensor([0, 0, 1, 1])
    assert specialisation_score(topics, torch.tensor([3, 3, 5, 5]), 2, 8) == pytest.approx(1.0)
    # Each topic spread evenly over the same two experts: independent, so 0.
    assert specialisation_score(topics, torch.tensor([0, 1, 0, 1]), 2, 8) == pytest.approx(0.0, abs=1e-12)
    # Topic 0 -> experts (0, 0), topic 1 -> experts (0, 1): I = H(E) - H(E|T) with
    # H(E) = H(3/4, 1/4), H(E|T) = 1/2 * log 2; H(T) = log 2.
    h_e = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    expected = (h_e - 0.5 * math.log(2)) / math.log(2)
    assert specialisation_score(topics, torch.tensor([0, 0, 0, 1]), 2, 8) == pytest.approx(expected)


# --- training and weights ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def fallback_model(tmp_path_factory: pytest.TempPathFactory) -> RouterDemo:
    """No weights file: the loader must train (the app's first start without the committed file)."""
    return load_router_demo(tmp_path_factory.mktemp("weights") / "absent.pt", seed=0)


def test_trained_router_specialises_far_above_chance(fallback_model: RouterDemo) -> None:
    report = evaluate_specialisation(fallback_model)
    torch.manual_seed(0)
    untrained = evaluate_specialisation(RouterDemo(WordTokenizer().vocab_size).eval())
    assert report.score > 0.25
    assert report.score > 50 * report.shuffled  # shuffled topics: what chance gives on these slots
    assert report.score > 5 * untrained.score
    assert report.accuracy > 0.85  # the router serves a model that learned its task
    # Every topic has a favourite expert holding well over the uniform share 1/E of its slots.
    for row in report.topic_expert_share:
        assert max(row) > 2.5 / len(row)


def test_training_is_deterministic() -> None:
    short = TrainSettings(steps=15)
    a, b = train_router_demo(seed=5, settings=short), train_router_demo(seed=5, settings=short)
    c = train_router_demo(seed=6, settings=short)
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert not torch.equal(a.moe.router.gate.weight, c.moe.router.gate.weight)


def test_committed_weights_are_small_load_without_training_and_specialise() -> None:
    assert DEFAULT_WEIGHTS.exists(), "write it: python -m moe_core.router_demo"
    assert DEFAULT_WEIGHTS.stat().st_size < 200 * 1024
    model = load_router_demo()
    saved = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)["state_dict"]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    assert evaluate_specialisation(model).score > 0.25


def test_save_load_round_trip_and_stale_file_is_ignored(tmp_path, fallback_model: RouterDemo) -> None:
    path = tmp_path / "demo.pt"
    save_router_demo(fallback_model, path, seed=0)
    loaded = load_router_demo(path)
    for name, tensor in fallback_model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    blob = torch.load(path, weights_only=True)
    blob["vocabulary"] = blob["vocabulary"][:-1]  # as if the code's vocabulary had changed
    torch.save(blob, path)
    retrained = load_router_demo(path, seed=0)  # falls back to training seed 0 from scratch
    for name, tensor in fallback_model.state_dict().items():
        assert torch.equal(tensor, retrained.state_dict()[name]), name


# --- the lesson's helpers ----------------------------------------------------------------------


def test_route_tokens_matches_softmax_topk_with_the_same_noise(fallback_model: RouterDemo) -> None:
    _, _, x = fallback_model.sentence_hidden(EXAMPLES["Music"])
    routing = route_tokens(fallback_model, x, top_k=3, temperature=0.7, noise_std=1.5, noise_seed=11)
    noisy = routing.router_logits + 1.5 * router_noise(tuple(routing.router_logits.shape), 11)
    torch.testing.assert_close(routing.router_probs, torch.softmax(noisy / 0.7, dim=-1))
    expected = softmax_topk(routing.router_logits, 3, True, 0.7, 1.5, torch.Generator().manual_seed(11))
    assert torch.equal(routing.topk_ids, expected.topk_ids)
    # Temperature alone never changes the choice.
    cold = route_tokens(fallback_model, x, top_k=2, temperature=0.2)
    hot = route_tokens(fallback_model, x, top_k=2, temperature=4.0)
    assert torch.equal(cold.topk_ids.sort(-1).values, hot.topk_ids.sort(-1).values)


@pytest.mark.parametrize("renormalize", [True, False])
def test_explain_token_weighted_sum_equals_the_engine(fallback_model: RouterDemo, renormalize: bool) -> None:
    _, _, x = fallback_model.sentence_hidden(EXAMPLES["Cooking, then music"])
    routing = route_tokens(fallback_model, x, top_k=2, renormalize=renormalize)
    step = explain_token(fallback_model, x, 3, routing, torch.zeros_like(routing.router_logits))
    # fp32 matmuls in a different order (per-expert matvec vs batched segments): 1e-5 is ample.
    torch.testing.assert_close(step.output, step.engine_output, rtol=1e-5, atol=1e-5)
    expected_total = 1.0 if renormalize else float(step.topk_probs.sum())
    assert float(step.weights.sum()) == pytest.approx(expected_total)
    assert torch.equal(step.topk_ids, routing.topk_ids[3])
    if renormalize:  # the layer itself routes top-2 with renormalisation: the same output
        with torch.no_grad():
            layer = fallback_model.moe(x).hidden_states[3]
        torch.testing.assert_close(step.output, layer, rtol=1e-5, atol=1e-5)
