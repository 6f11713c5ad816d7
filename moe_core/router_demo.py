"""A tiny MoE trained on the synthetic topics corpus, so its router has learned something real.

Lesson 2's live model. Per token t of a sentence (shape legend of `moe_core.config`):

    e_t   = embed(word_t)                                  [D]
    c_t   = mean(e_1 .. e_t)                               running mean: a stand-in for attention,
                                                           so "key" in a music sentence differs
                                                           from "key" in a code sentence
    x_t   = LayerNorm(e_t + W_c c_t)                       [D]  what the router sees
    h_t   = SparseMoE(x_t)                                 [D]  E = 8 SwiGLU experts, top-2
    topic = head(h_t)                                      [5]  which topic the sentence is about

The head reads the MoE output alone (no residual), so the experts must do the work and the router
learns through the ratio of its renormalised top-2 weights. A Switch balancing loss (coefficient
0.01) keeps all eight experts in use. Training takes a few seconds on one CPU thread and is
deterministic for a seed; `python -m moe_core.router_demo --out moe_core/weights/router_demo.pt`
writes the committed weights (about 130 kB), and `load_router_demo` falls back to training when
that file is absent or stale.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from moe_core.config import MoEConfig
from moe_core.layer import MoEOutput, SparseMoE
from moe_core.losses import load_balancing_loss
from moe_core.ops import moe_experts
from moe_core.router import Routing, softmax_topk
from moe_core.text_data import DOMAINS, Sentence, WordTokenizer, make_corpus

DEMO_CONFIG = MoEConfig(hidden_size=32, intermediate_size=32, num_experts=8, top_k=2)
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "router_demo.pt"


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 200
    batch_sentences: int = 32
    lr: float = 0.03  # Adam; the model is tiny, a large step converges in a few hundred steps
    # Switch balancing loss. Measured (seeds 0, 1): 0 leaves an expert with under 1% of the slots;
    # 0.01 keeps every expert above 6% and specialises most (score 0.42-0.47); 0.05 flattens the
    # routing of every topic towards uniform (score 0.17).
    aux_loss_coef: float = 0.01
    corpus_sentences: int = 4000


class RouterDemo(nn.Module):
    """Embedding + running-mean context -> one SparseMoE layer -> topic head."""

    def __init__(self, vocab_size: int, num_topics: int = len(DOMAINS), config: MoEConfig = DEMO_CONFIG):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(vocab_size, config.hidden_size)
        self.context = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.norm = nn.LayerNorm(config.hidden_size)
        self.moe = SparseMoE(config)
        self.head = nn.Linear(config.hidden_size, num_topics)
        self.tokenizer = WordTokenizer()  # plain object, not a module: rebuilt from code, never saved

    def hidden(self, ids_BT: torch.Tensor, mask_BT: torch.Tensor | None = None) -> torch.Tensor:
        """Router inputs x [B, T, D] (padding positions are zeros in the running mean)."""
        if mask_BT is None:
            mask_BT = torch.ones_like(ids_BT, dtype=torch.bool)
        m_BT1 = mask_BT.unsqueeze(-1).float()
        e_BTD = self.embed(ids_BT) * m_BT1
        c_BTD = e_BTD.cumsum(1) / m_BT1.cumsum(1).clamp_min(1.0)  # causal mean over s <= t
        return self.norm(e_BTD + self.context(c_BTD))

    def forward(self, ids_BT: torch.Tensor, mask_BT: torch.Tensor) -> tuple[torch.Tensor, MoEOutput]:
        """Topic logits [N, C] and the MoE output for the N non-padding tokens (row-major order)."""
        x_ND = self.hidden(ids_BT, mask_BT)[mask_BT]
        moe_out = self.moe(x_ND)
        return self.head(moe_out.hidden_states), moe_out

    def sentence_hidden(self, text: str) -> tuple[list[str], list[int], torch.Tensor]:
        """Words, ids and router inputs x [T, D] of one sentence (T may be 0)."""
        words = self.tokenizer.split(text)
        ids = self.tokenizer.encode_words(words)
        if not ids:
            return words, ids, torch.zeros(0, self.config.hidden_size)
        with torch.no_grad():
            return words, ids, self.hidden(torch.tensor([ids]))[0]


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    # Tensors this small gain nothing from threads, and one thread makes runs bit-reproducible.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def batch_sentences(
    sentences: list[Sentence], tokenizer: WordTokenizer
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded ids [B, T], mask [B, T] and per-token topic [B, T] (-1 on padding)."""
    length = max(len(s.words) for s in sentences)
    ids = torch.full((len(sentences), length), tokenizer.pad_id, dtype=torch.long)
    topics = torch.full((len(sentences), length), -1, dtype=torch.long)
    for b, sentence in enumerate(sentences):
        ids[b, : len(sentence.words)] = torch.tensor(tokenizer.encode_words(sentence.words))
        topics[b, : len(sentence.words)] = sentence.domain
    return ids, ids != tokenizer.pad_id, topics


def train_router_demo(seed: int = 0, settings: TrainSettings = TrainSettings()) -> RouterDemo:
    """Train the demo from scratch (deterministic for a seed; a few seconds on a CPU)."""
    with _one_thread():
        torch.manual_seed(seed)
        tokenizer = WordTokenizer()
        model = RouterDemo(tokenizer.vocab_size)
        corpus = make_corpus(settings.corpus_sentences, seed=seed)
        ids, mask, topics = batch_sentences(corpus, tokenizer)
        opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
        order = torch.Generator().manual_seed(seed)
        for _ in range(settings.steps):
            pick = torch.randint(0, len(corpus), (settings.batch_sentences,), generator=order)
            logits, moe_out = model(ids[pick], mask[pick])
            task = F.cross_entropy(logits, topics[pick][mask[pick]])
            aux = load_balancing_loss(moe_out.router_logits, model.config.num_experts, model.config.top_k)
            loss = task + settings.aux_loss_coef * aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


# --- saving and loading ----------------------------------------------------------------------


def save_router_demo(model: RouterDemo, path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"state_dict": model.state_dict(), "config": asdict(model.config),
         "vocabulary": list(model.tokenizer.words), "domains": list(DOMAINS), "seed": seed},
        path,
    )  # fmt: skip


def load_router_demo(path: Path | None = None, seed: int = 0) -> RouterDemo:
    """The committed weights when they match this code's vocabulary and config, else train anew."""
    path = DEFAULT_WEIGHTS if path is None else Path(path)
    model = RouterDemo(WordTokenizer().vocab_size)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        compatible = (
            blob["vocabulary"] == list(model.tokenizer.words)
            and blob["domains"] == list(DOMAINS)
            and blob["config"] == asdict(model.config)
        )
    except (OSError, KeyError, RuntimeError, TypeError):
        compatible = False
    if not compatible:
        return train_router_demo(seed)
    model.load_state_dict(blob["state_dict"])
    return model.eval()


# --- how specialised is the router? ----------------------------------------------------------


def specialisation_score(
    topic_N: torch.Tensor, expert_N: torch.Tensor, num_topics: int, num_experts: int
) -> float:
    """I(topic; expert) / H(topic): the share of topic uncertainty the expert choice removes.

    0 when experts ignore the topic, 1 when the chosen expert names the topic. Both inputs hold
    one entry per routed slot (a token's topic repeated for each of its K experts).
    """
    joint = torch.zeros(num_topics, num_experts, dtype=torch.float64)
    joint.index_put_((topic_N.long(), expert_N.long()), torch.ones(topic_N.numel(), dtype=torch.float64),
                     accumulate=True)  # fmt: skip
    p = joint / joint.sum()
    p_topic, p_expert = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
    nz = p > 0
    mutual = (p[nz] * (p[nz] / (p_topic @ p_expert)[nz]).log()).sum()
    h_topic = -(p_topic[p_topic > 0] * p_topic[p_topic > 0].log()).sum()
    return float(mutual / h_topic) if h_topic > 0 else 0.0


@dataclass(frozen=True)
class SpecialisationReport:
    score: float  # specialisation_score of the trained router on held-out sentences
    shuffled: float  # the same with topics shuffled across tokens: what chance looks like
    topic_expert_share: list[list[float]]  # [C][E] share of each topic's slots per expert
    accuracy: float  # topic accuracy of the head (the task the router serves)


def evaluate_specialisation(
    model: RouterDemo, seed: int = 1, num_sentences: int = 500
) -> SpecialisationReport:
    """Route held-out sentences (a corpus seed the training did not use) and measure."""
    sentences = make_corpus(num_sentences, seed=10_000 + seed)
    ids, mask, topics = batch_sentences(sentences, model.tokenizer)
    with torch.no_grad():
        logits, moe_out = model(ids, mask)
    topic_N = topics[mask]
    k = moe_out.topk_ids.shape[1]
    slot_topic = topic_N.repeat_interleave(k)
    slot_expert = moe_out.topk_ids.reshape(-1)
    num_topics, num_experts = len(DOMAINS), model.config.num_experts
    shuffled = slot_topic[torch.randperm(slot_topic.numel(), generator=torch.Generator().manual_seed(seed))]
    joint = torch.zeros(num_topics, num_experts)
    joint.index_put_((slot_topic, slot_expert), torch.ones(slot_topic.numel()), accumulate=True)
    share = joint / joint.sum(1, keepdim=True)
    return SpecialisationReport(
        score=specialisation_score(slot_topic, slot_expert, num_topics, num_experts),
        shuffled=specialisation_score(shuffled, slot_expert, num_topics, num_experts),
        topic_expert_share=share.tolist(),
        accuracy=float((logits.argmax(-1) == topic_N).float().mean()),
    )


# --- inference helpers for the lesson: route with the knobs, explain one token ---------------


def router_noise(shape: tuple[int, int], noise_seed: int) -> torch.Tensor:
    """The N(0, 1) draw `softmax_topk` adds (times noise_std) for a generator seeded `noise_seed`."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(noise_seed))


def route_tokens(
    model: RouterDemo,
    x_TD: torch.Tensor,
    top_k: int,
    temperature: float = 1.0,
    noise_std: float = 0.0,
    noise_seed: int = 0,
    renormalize: bool = True,
) -> Routing:
    """The trained gate's logits, routed with the lesson's knobs (same recipe as the layer)."""
    with torch.no_grad():
        logits_TE = model.moe.router.gate(x_TD)
    generator = torch.Generator().manual_seed(noise_seed)
    return softmax_topk(logits_TE, top_k, renormalize, temperature, noise_std, generator)


@dataclass(frozen=True)
class TokenStep:
    """One token through the router and its experts, every intermediate kept for display."""

    logits: torch.Tensor  # [E] z = W_r x
    noisy_logits: torch.Tensor  # [E] z + noise_std * eps (equal to logits without noise)
    probs: torch.Tensor  # [E] softmax(noisy_logits / temperature)
    topk_ids: torch.Tensor  # [K] chosen experts, best first
    topk_probs: torch.Tensor  # [K] their probabilities before renormalising
    weights: torch.Tensor  # [K] combine weights g (renormalised or not)
    expert_outputs: torch.Tensor  # [K, D] E_e(x), computed here from the SwiGLU formula
    output: torch.Tensor  # [D] sum_k g_k E_k(x)
    engine_output: torch.Tensor  # [D] the same token through moe_core's expert path (a check)


def explain_token(
    model: RouterDemo, x_TD: torch.Tensor, t: int, routing: Routing, noise: torch.Tensor
) -> TokenStep:
    """Step token t through routing -> experts -> weighted sum. `noise` = router_noise * noise_std."""
    experts = model.moe.experts
    ffn = experts.w2.shape[2]
    with torch.no_grad():
        x_D = x_TD[t]
        ids_K = routing.topk_ids[t]
        outputs = []
        for e in ids_K.tolist():  # E_e(x) = w2_e (silu(gate_e x) * (up_e x)), the Mixtral expert
            gate, up = experts.w1[e, :ffn] @ x_D, experts.w1[e, ffn:] @ x_D
            outputs.append(experts.w2[e] @ (F.silu(gate) * up))
        expert_outputs = torch.stack(outputs)
        weights_K = routing.topk_weights[t]
        x_1D = x_TD[t : t + 1]
        engine = moe_experts(x_1D, experts.w1, experts.w2, weights_K[None], ids_K[None], "torch")[0]
    logits = routing.router_logits[t].float()
    return TokenStep(
        logits=logits,
        noisy_logits=logits + noise[t],
        probs=routing.router_probs[t],
        topk_ids=ids_K,
        topk_probs=routing.router_probs[t, ids_K],
        weights=weights_K,
        expert_outputs=expert_outputs,
        output=(weights_K[:, None] * expert_outputs).sum(0),
        engine_output=engine,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train Lesson 2's router demo and save its weights.")
    parser.add_argument("--out", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    model = train_router_demo(args.seed)
    seconds = time.perf_counter() - start
    save_router_demo(model, args.out, args.seed)
    report = evaluate_specialisation(model)
    print(f"trained in {seconds:.1f} s; wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB)")
    print(
        f"specialisation {report.score:.3f} (shuffled {report.shuffled:.4f}), "
        f"topic accuracy {report.accuracy:.3f}"
    )
    for topic, row in zip(DOMAINS, report.topic_expert_share, strict=True):
        print(f"  {topic:8s} " + " ".join(f"{v:5.2f}" for v in row))


if __name__ == "__main__":
    main()
