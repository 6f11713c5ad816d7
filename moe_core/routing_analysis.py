"""What do a language model's experts learn? Routing statistics on held-out text.

Mixtral's routing analysis (Jiang et al. 2024, https://arxiv.org/abs/2401.04088, §5) asked whether
experts specialise by *topic* and found no obvious assignment by domain; routing followed syntax
and token identity instead, and consecutive tokens often kept the same expert. This module measures
the same things on any MoE language model, from plain tensors and strings (no model inside):

1. `expert_share`     share of a label's tokens routed to each expert (per genre, per token class);
2. `consecutive_same_expert_rate` against `chance_same_expert_rate` (same loads, no memory);
3. `mutual_information` in bits between labels and top-1 experts, with a shuffled-label control;
4. `routing_table`    every token's experts per layer (Mixtral's Figure 8: one row per layer);
5. `summarize`        all of it per layer, in one dataclass the app renders.

NOTE: every figure needs a baseline. An *untrained* router already routes by token identity,
because it sees the token embeddings (DESIGN.md, "a tiny MoE language model"): run `summarize` on an
untrained model of the same shape too, and read the shuffled-label control beside every MI.

Shape legend: N tokens, E experts, K experts per token (top-k), L distinct labels, Y layers.
"""

from __future__ import annotations

import keyword
import math
import re
import string
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from moe_core.router import softmax_topk

# --- token classes -----------------------------------------------------------------------------

WHITESPACE = "whitespace"  # spaces, tabs, newlines: indentation in code, layout in prose
PUNCTUATION = "punctuation"  # ( ) : , . = + " ' ... and runs of them such as "):" or "=="
DIGITS = "digits"  # 0 42 3.14 1_000
IDENTIFIER = "identifier"  # Python keywords and names that look like code: snake_case, camelCase
WORD = "word"  # plain ASCII letters: English words and the pieces BPE cuts them into
OTHER = "other"  # mixtures ("self.", "'t", "1e"), non-ASCII letters, emoji, broken UTF-8 ("�")
TOKEN_CLASSES = (WHITESPACE, PUNCTUATION, DIGITS, IDENTIFIER, WORD, OTHER)  # display order

# NOTE: "for", "in", "and", "is", "if"... are keywords, so in prose they count as IDENTIFIER too:
# a class says what a token looks like, not what it means (the rule sees no context).
PYTHON_KEYWORDS = frozenset(keyword.kwlist)
_NUMBER = re.compile(r"[0-9]+(?:[._][0-9]+)*")  # 7, 3.14, 1_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an ASCII Python name
_CAMEL_HUMP = re.compile(r"[a-z][A-Z]|[A-Z][A-Z][a-z]")  # getName, ValueError, HTTPServer


def _is_punctuation(ch: str) -> bool:
    """ASCII punctuation and symbols (string.punctuation but "_"), or Unicode punctuation such as "—"."""
    return ch != "_" and (ch in string.punctuation or unicodedata.category(ch).startswith("P"))


def token_class(token_text: str) -> str:
    """Classify one decoded token by what it looks like; the first rule that matches wins.

    1. only whitespace (spaces, tabs, newlines)            -> whitespace
    Then drop the surrounding whitespace (byte-level BPE glues a leading space to a word,
    " return" -> "return") and look at what is left:
    2. only punctuation or ASCII symbols (but "_")         -> punctuation   "(", "):", "==", "—"
    3. digits, maybe split by "." or "_"                   -> digits        "42", "3.14"
    4. a Python keyword                                    -> identifier    "def", "None", "in"
    5. a Python name with "_", a digit or a camelCase hump -> identifier    "__init__", "utf8", "getName"
    6. only ASCII letters                                  -> word          "the", "Licence", "ing"
    7. anything else (and the empty string)                -> other         "self.", "'t", "café", "🙂"

    The caller decodes byte-level markers first ("Ġ" -> " ", "Ċ" -> "\\n"), e.g. with the
    tokenizer's own decoder. Pieces of a split identifier ("get" of "get_name") are words: the rule
    sees one token, never its neighbours.
    """
    if not token_text or token_text.isspace():
        return WHITESPACE if token_text else OTHER
    core = token_text.strip()
    if all(_is_punctuation(ch) for ch in core):
        return PUNCTUATION
    if _NUMBER.fullmatch(core):
        return DIGITS
    if core in PYTHON_KEYWORDS:
        return IDENTIFIER
    code_like = "_" in core or any(ch.isdigit() for ch in core) or _CAMEL_HUMP.search(core)
    if _NAME.fullmatch(core) and code_like:
        return IDENTIFIER
    if core.isascii() and core.isalpha():
        return WORD
    return OTHER


# --- shares per label --------------------------------------------------------------------------


def _check_ids(expert_ids: torch.Tensor, num_tokens: int, num_experts: int | None = None) -> torch.Tensor:
    """Expert ids [N] or [N, K] as int64, with one row per token and every id in 0..E-1."""
    if expert_ids.dim() not in (1, 2) or expert_ids.shape[0] != num_tokens:
        shape = tuple(expert_ids.shape)
        raise ValueError(f"expert ids must be [N] or [N, K] with N = {num_tokens}, got {shape}")
    ids = expert_ids.long()
    if ids.numel() and (ids.min() < 0 or (num_experts is not None and ids.max() >= num_experts)):
        raise ValueError(f"expert ids must lie in 0..{num_experts}-1, got {ids.min()}..{ids.max()}")
    return ids


def _check_top1(top1_ids: torch.Tensor, num_tokens: int, num_experts: int | None = None) -> torch.Tensor:
    """Top-1 expert ids [N] as int64 (the statistics below compare single experts, not sets)."""
    if top1_ids.dim() != 1:
        raise ValueError(f"top-1 expert ids must be [N], got {tuple(top1_ids.shape)}")
    return _check_ids(top1_ids, num_tokens, num_experts)


def expert_share(
    expert_ids: torch.Tensor,
    labels: Sequence[str],
    num_experts: int,
    label_order: Sequence[str] | None = None,
) -> tuple[list[str], torch.Tensor]:
    """Per label, the share of its tokens' routing slots that went to each expert.

    expert_ids [N] (top-1: share of the label's tokens) or [N, K] (all top-k slots, each token
    counted K times: Mixtral's Figure 7 counts "first or second choice" this way); labels [N].
    Returns (label names, shares [L, E] float64); each row sums to 1, uniform routing gives 1/E.
    Labels come in `label_order` if given (one with no tokens gets a row of NaN: there is nothing to
    share), else sorted; a label missing from `label_order` raises.
    """
    ids_NK = _check_ids(expert_ids, len(labels), num_experts).reshape(len(labels), -1)
    names = list(label_order) if label_order is not None else sorted(set(labels))
    row_of = {name: i for i, name in enumerate(names)}
    missing = set(labels) - row_of.keys()
    if missing:
        raise ValueError(f"labels not in label_order: {sorted(missing)}")
    rows_N = torch.tensor([row_of[label] for label in labels], dtype=torch.long)
    rows_NK = rows_N[:, None].expand_as(ids_NK)
    counts_LE = torch.zeros(len(names), num_experts, dtype=torch.float64)
    ones = torch.ones(ids_NK.numel(), dtype=torch.float64)
    counts_LE.index_put_((rows_NK.reshape(-1), ids_NK.reshape(-1)), ones, accumulate=True)
    return names, counts_LE / counts_LE.sum(dim=1, keepdim=True)  # 0 / 0 = NaN for empty labels


# --- does the expert stay the same from one token to the next? ----------------------------------


def _kept_tokens(num_tokens: int, doc_ids: torch.Tensor | None) -> torch.Tensor:
    """Mask [N] of tokens that count: all of them, or those with doc_id >= 0 (padding is -1)."""
    if doc_ids is None:
        return torch.ones(num_tokens, dtype=torch.bool)
    if doc_ids.shape != (num_tokens,):
        raise ValueError(f"doc_ids must be [N] with N = {num_tokens}, got {tuple(doc_ids.shape)}")
    return doc_ids >= 0


def consecutive_same_expert_rate(top1_ids: torch.Tensor, doc_ids: torch.Tensor | None = None) -> float:
    """Share of neighbouring token pairs (t, t+1) whose top-1 expert is the same.

    top1_ids [N]; doc_ids [N] (optional) says which document or sequence each token belongs to:
    a pair that straddles two documents is not a pair, and tokens with doc_id < 0 (padding) are
    skipped. Constant routing gives 1, alternating routing 0. NaN when there is no pair.
    Compare it with `chance_same_expert_rate`: a rate above chance means the router has "memory"
    (Mixtral, §5: consecutive tokens share an expert more often than chance, in later layers most).
    """
    ids = _check_top1(top1_ids, top1_ids.shape[0])
    kept = _kept_tokens(ids.shape[0], doc_ids)
    pair_ok = kept[1:] & kept[:-1]  # [N-1]: both tokens count...
    if doc_ids is not None:
        pair_ok &= doc_ids[1:] == doc_ids[:-1]  # ...and they sit in the same document
    num_pairs = int(pair_ok.sum())
    if num_pairs == 0:
        return math.nan
    return float(((ids[1:] == ids[:-1]) & pair_ok).sum()) / num_pairs


def chance_same_expert_rate(
    top1_ids: torch.Tensor, num_experts: int, doc_ids: torch.Tensor | None = None
) -> float:
    """Σ_e p_e², where p_e is the share of tokens whose top-1 expert is e.

    The rate `consecutive_same_expert_rate` would give if each token drew its expert independently
    with the same loads: a router with no memory. Uniform loads over E experts give 1/E, a router
    that sends everything to one expert gives 1 (so "same expert" is only news above this line).
    """
    ids = _check_top1(top1_ids, top1_ids.shape[0], num_experts)
    ids = ids[_kept_tokens(ids.shape[0], doc_ids)]
    if ids.numel() == 0:
        return math.nan
    p_E = torch.bincount(ids, minlength=num_experts).double() / ids.numel()
    return float((p_E * p_E).sum())


# --- how much does the expert tell about the label? ---------------------------------------------


def _codes(values: Sequence) -> torch.Tensor:
    """Integer code [N] per distinct value, in order of first appearance."""
    code_of: dict = {}
    return torch.tensor([code_of.setdefault(v, len(code_of)) for v in values], dtype=torch.long)


def _mi_from_codes(label_N: torch.Tensor, expert_N: torch.Tensor) -> float:
    num_labels, num_experts = int(label_N.max()) + 1, int(expert_N.max()) + 1
    joint_LE = torch.bincount(label_N * num_experts + expert_N, minlength=num_labels * num_experts)
    p_LE = joint_LE.reshape(num_labels, num_experts).double() / label_N.numel()
    p_L, p_E = p_LE.sum(dim=1, keepdim=True), p_LE.sum(dim=0, keepdim=True)
    nz = p_LE > 0  # 0 log 0 = 0
    return float((p_LE[nz] * torch.log2(p_LE[nz] / (p_L * p_E)[nz])).sum())


def mutual_information(labels: Sequence, expert_ids: torch.Tensor) -> float:
    """I(label; expert) in bits, the plug-in estimate from the joint counts of N tokens.

    labels [N] (strings, or anything hashable), expert_ids [N] (top-1). 0 when the expert says
    nothing about the label; H(label) when it gives the label away (code always to expert 0 and
    prose always to expert 1, half and half: 1 bit). NOTE: the plug-in estimate is biased upwards
    by about (L-1)(E-1) / (2 N ln 2) bits even for independent labels; the shuffled control
    (`shuffled_mutual_information`) measures that floor on the same data.
    """
    ids = _check_top1(expert_ids, len(labels))
    return _mi_from_codes(_codes(labels), ids) if len(labels) else 0.0


def shuffled_mutual_information(
    labels: Sequence,
    expert_ids: torch.Tensor,
    num_shuffles: int = 20,
    seed: int = 0,
    groups: Sequence | None = None,
) -> tuple[float, float]:
    """The control: MI after shuffling labels, as (mean, std) over `num_shuffles` seeded shuffles.

    Shuffling keeps the experts' loads and the label counts and destroys any link between label and
    expert, so this is what `mutual_information` reads on data with no such link (its bias floor).
    With `groups` [N] (say, a document id per token, where each document has one genre), whole
    groups swap labels instead of single tokens: a genre-shuffled control, which keeps each
    document's own routing habits.
    """
    ids = _check_top1(expert_ids, len(labels))
    label_N = _codes(labels)
    if len(labels) == 0:
        return 0.0, 0.0
    generator = torch.Generator().manual_seed(seed)
    if groups is None:
        group_N = torch.arange(len(labels))  # every token its own group
    else:
        if len(groups) != len(labels):
            raise ValueError(f"groups must have one entry per token ({len(labels)}), got {len(groups)}")
        group_N = _codes(groups)
    group_label_G = torch.full((int(group_N.max()) + 1,), -1, dtype=torch.long)
    group_label_G[group_N] = label_N
    if not torch.equal(group_label_G[group_N], label_N):
        raise ValueError("every group must carry a single label")
    values = []
    for _ in range(num_shuffles):
        perm_G = torch.randperm(group_label_G.numel(), generator=generator)
        values.append(_mi_from_codes(group_label_G[perm_G][group_N], ids))
    mi = torch.tensor(values, dtype=torch.float64)
    return float(mi.mean()), float(mi.std(unbiased=False))


# --- the routing itself, per layer ---------------------------------------------------------------


@dataclass(frozen=True)
class RoutingTable:
    """Every token's experts in every layer (Mixtral's Figure 8: row y, token n coloured top1_ids[y, n])."""

    top1_ids: torch.Tensor  # [Y, N] int64, the first choice
    topk_ids: torch.Tensor  # [Y, N, K] int64 (selected_experts), best first
    topk_weights: torch.Tensor  # [Y, N, K] float32 (routing_weights), each row sums to 1


def routing_table(router_logits_per_layer: Sequence[torch.Tensor], top_k: int) -> RoutingTable:
    """Route every layer's logits [N, E] with Mixtral's recipe: softmax in float32 -> top-k -> renormalise.

    The same recipe the model ran (`moe_core.router.softmax_topk`), recomputed from the logits the
    model returns (`.router_logits`, one [B*T, E] per layer), so the table is what the experts saw.
    """
    if not router_logits_per_layer:
        raise ValueError("router_logits_per_layer is empty: need one [N, E] tensor per layer")
    routings = [softmax_topk(logits.detach(), top_k, renormalize=True) for logits in router_logits_per_layer]
    topk_ids = torch.stack([r.topk_ids for r in routings])  # [Y, N, K]; torch.topk sorts best first
    topk_weights = torch.stack([r.topk_weights for r in routings])
    return RoutingTable(top1_ids=topk_ids[..., 0], topk_ids=topk_ids, topk_weights=topk_weights)


# --- everything, per layer ------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingSummary:
    """Routing statistics of one model on one text; every list has one entry per layer.

    Render each figure beside the same summary of an untrained model of the same shape and beside
    its `*_mi_control` (shuffled labels), or noise will read as structure.
    """

    num_experts: int
    top_k: int
    share_over: str  # "top1": shares of tokens' first choices; "topk": of all K slots
    table: RoutingTable
    token_classes: list[str]  # [N] token_class of every token
    class_labels: list[str]  # the TOKEN_CLASSES present, in display order
    class_share: torch.Tensor  # [Y, C, E] float64, rows sum to 1
    class_mi: list[float]  # bits, I(token class; top-1 expert)
    class_mi_control: list[float]  # bits, mean over shuffled token classes
    class_mi_control_std: list[float]
    genre_labels: list[str]  # sorted genres; empty when no genres were given
    genre_share: torch.Tensor | None  # [Y, G, E] float64
    genre_mi: list[float]
    genre_mi_control: list[float]  # shuffled between documents when doc_ids were given
    genre_mi_control_std: list[float]
    same_expert_rate: list[float]  # consecutive tokens, same top-1 expert
    chance_rate: list[float]  # Σ_e p_e², same loads and no memory

    def as_dict(self) -> dict:
        """Plain lists and numbers (JSON-ready)."""
        out = {}
        for name, value in self.__dict__.items():
            if isinstance(value, RoutingTable):
                value = {key: tensor.tolist() for key, tensor in value.__dict__.items()}
            out[name] = value.tolist() if isinstance(value, torch.Tensor) else value
        return out


def _mi_figures(labels: list[str], top1_YN: torch.Tensor, num_shuffles: int, seed: int, groups) -> tuple:
    """Per layer: MI, shuffled-control mean and std (three lists of Y floats)."""
    mi = [mutual_information(labels, top1_N) for top1_N in top1_YN]
    control = [shuffled_mutual_information(labels, top1_N, num_shuffles, seed, groups) for top1_N in top1_YN]
    return mi, [mean for mean, _ in control], [std for _, std in control]


def _shares_per_layer(
    ids_Y: torch.Tensor, labels: list[str], num_experts: int, order: list[str]
) -> torch.Tensor:
    """`expert_share` for each layer's ids ([Y, N] or [Y, N, K]) -> [Y, L, E]."""
    return torch.stack([expert_share(ids, labels, num_experts, order)[1] for ids in ids_Y])


def summarize(
    router_logits_per_layer: Sequence[torch.Tensor],
    tokens: Sequence[str],
    top_k: int,
    genres: Sequence[str] | None = None,
    doc_ids: torch.Tensor | None = None,
    share_over: str = "top1",
    num_shuffles: int = 20,
    seed: int = 0,
) -> RoutingSummary:
    """All routing figures, per layer, for N tokens of held-out text.

    router_logits_per_layer: one [N, E] per layer (the model's `.router_logits`); tokens [N]: decoded
    token strings (classified with `token_class`); genres [N] (optional): e.g. "code" / "prose" per
    token; doc_ids [N] (optional): the document of each token, so consecutive pairs never straddle
    two documents and the genre control swaps whole documents; doc_id < 0 marks padding, left out.
    """
    if share_over not in ("top1", "topk"):
        raise ValueError(f"share_over must be 'top1' or 'topk', got {share_over!r}")
    table = routing_table(router_logits_per_layer, top_k)
    num_experts = router_logits_per_layer[0].shape[1]
    if len(tokens) != table.top1_ids.shape[1] or (genres is not None and len(genres) != len(tokens)):
        raise ValueError("tokens, genres and router logits must all have one entry per token")
    kept_N = _kept_tokens(len(tokens), doc_ids)
    keep = kept_N.nonzero().flatten().tolist()
    classes = [token_class(t) for t in tokens]
    kept_classes = [classes[i] for i in keep]
    class_labels = [c for c in TOKEN_CLASSES if c in set(kept_classes)]
    top1_YN = table.top1_ids[:, kept_N]  # padding left out
    share_ids = top1_YN if share_over == "top1" else table.topk_ids[:, kept_N]  # [Y, N] or [Y, N, K]
    class_mi = _mi_figures(kept_classes, top1_YN, num_shuffles, seed, None)
    has_genres = genres is not None
    kept_genres = [genres[i] for i in keep] if has_genres else []
    genre_labels = sorted(set(kept_genres))
    groups = doc_ids[kept_N].tolist() if doc_ids is not None else None  # swap whole documents
    genre_mi = _mi_figures(kept_genres, top1_YN, num_shuffles, seed, groups) if has_genres else ([], [], [])
    return RoutingSummary(
        num_experts=num_experts,
        top_k=top_k,
        share_over=share_over,
        table=table,
        token_classes=classes,
        class_labels=class_labels,
        class_share=_shares_per_layer(share_ids, kept_classes, num_experts, class_labels),
        class_mi=class_mi[0],
        class_mi_control=class_mi[1],
        class_mi_control_std=class_mi[2],
        genre_labels=genre_labels,
        genre_share=_shares_per_layer(share_ids, kept_genres, num_experts, genre_labels)
        if has_genres
        else None,
        genre_mi=genre_mi[0],
        genre_mi_control=genre_mi[1],
        genre_mi_control_std=genre_mi[2],
        same_expert_rate=[consecutive_same_expert_rate(top1_N, doc_ids) for top1_N in table.top1_ids],
        chance_rate=[chance_same_expert_rate(top1_N, num_experts, doc_ids) for top1_N in table.top1_ids],
    )
