"""Train the Lesson 4 MoE and watch its experts collapse — or stay balanced.

Balancing modes (`TrainConfig.balance`):

* "none"     — task loss only. The rich-get-richer loop starves most experts (see moe_core.data).
* "aux-loss" — Switch Transformer's auxiliary loss (Fedus et al. 2021, https://arxiv.org/abs/2101.03961)
               added with coefficient `aux_coef`: loss = MSE + α · E · Σ_e f_e P_e.
* "aux-free" — auxiliary-loss-free balancing (Wang et al. 2024, https://arxiv.org/abs/2408.15664),
               as DeepSeek-V3 used it (https://arxiv.org/abs/2412.19437, §2.1.2): sigmoid scores;
               after each step every expert's selection bias moves by
               γ = `bias_rate` towards the mean load: b_e += γ · sign(mean_load − load_e).
               The bias only picks experts; the combine weights stay the unbiased scores.

Options: router z-loss (ST-MoE, https://arxiv.org/abs/2202.08906), noisy gating (Shazeer et al.
2017), a capacity factor. `train(..., state=...)` continues a run — possibly with another balancing
mode: the lesson's "recovery" switches balancing on in a collapsed run and watches experts return.

Determinism: every random draw (init, data, noise) comes from generators seeded by `seed`, never
torch's global RNG, so the same config gives the same run on CPU even with another run training
in another thread. `cli(argv)` is DESIGN.md contract 4 (`python -m moe_core collapse ...`).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from moe_core.data import DomainTask, make_task, sample_batch
from moe_core.losses import load_balancing_loss, router_z_loss
from moe_core.metrics import LoadStats, drop_rate, load_shares, load_stats, token_entropy
from moe_core.model import TinyMoE, TinyMoEConfig

BALANCE_MODES = ("none", "aux-loss", "aux-free")
EVAL_TOKENS = 2048  # a fixed held-out batch for the final load and loss


@dataclass(frozen=True)
class TrainConfig:
    balance: str = "none"  # see BALANCE_MODES
    # The smallest round α that balanced every seed 0-9 here (0.03 balanced 9 of 10, Switch's 0.01 none;
    # other machines differ by a seed or two, see bench/RESULTS.md). Larger α costs task loss: the router
    # ends less confident (token entropy rises with α), and without renormalisation a less confident
    # router scales every token's output down (mean over seeds 0-9 here: 0.88x the collapsed runs' task
    # loss at 0.05, 0.93x at 0.1, 1.13x at 0.3). NB a uniform router does not minimise the Switch loss:
    # it gives exactly α whatever the load, and some unbalanced routings give less (lessons/content/lesson4).
    aux_coef: float = 0.05
    bias_rate: float = 0.02  # γ of the aux-free bias update, in score units per step
    z_loss: bool = False
    z_coef: float = 1e-3  # ST-MoE's router z-loss coefficient
    noise: bool = False
    noise_std: float = 1.0  # std of the Gaussian added to router logits when `noise`
    capacity_factor: float | None = None  # None: no limit, nothing dropped
    num_experts: int = 8
    top_k: int = 1
    expert_hidden: int = 3  # tiny experts, so capacity matters: see TinyMoEConfig.expert_hidden
    hidden_size: int = 32
    num_domains: int = 8
    steps: int = 300
    lr: float = 0.03  # Adam; fast on purpose, so collapse shows within a few dozen steps
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        if self.balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {BALANCE_MODES}, got {self.balance!r}")
        for name in ("aux_coef", "bias_rate", "z_coef", "noise_std"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.capacity_factor is not None and not self.capacity_factor > 0:
            raise ValueError(f"capacity_factor must be > 0 or None, got {self.capacity_factor!r}")
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be a non-negative integer, got {self.steps!r}")
        if not self.lr > 0 or self.batch_size < 1:
            raise ValueError(f"lr must be > 0 and batch_size >= 1, got {self.lr!r}, {self.batch_size!r}")
        self.model_config()  # validates experts, top-k and sizes

    def model_config(self) -> TinyMoEConfig:
        return TinyMoEConfig(self.hidden_size, self.expert_hidden, self.num_experts, self.top_k)

    @property
    def scoring(self) -> str:
        return "sigmoid" if self.balance == "aux-free" else "softmax"


@dataclass
class History:
    """Per training step: task loss (MSE) and each expert's share of the batch's routed slots."""

    loss: list[float] = field(default_factory=list)
    load: list[list[float]] = field(default_factory=list)  # [steps][E]
    balance: list[str] = field(default_factory=list)  # mode in force at each step (recovery)

    def copy(self) -> History:
        return History(list(self.loss), [list(r) for r in self.load], list(self.balance))


@dataclass
class TrainState:
    """Everything needed to continue a run exactly where it stopped."""

    model: dict[str, torch.Tensor]
    optimizer: dict
    data_rng: torch.Tensor  # data generator state
    noise_rng: torch.Tensor
    seed: int  # the task's seed: a continuation trains on the same task
    step: int
    history: History


@dataclass
class Progress:
    """What a callback sees every few steps.

    `history` is the run's own record, appended to as it trains and never rewritten, so another
    thread may read its first `step` entries (e.g. `history.load[:step]`) while training goes on.
    """

    step: int  # steps done, including those of the run this one continues
    total: int  # step the run will stop at
    history: History


@dataclass
class TrainResult:
    config: TrainConfig
    stats: LoadStats  # load on a held-out batch after training
    final_loss: float  # task MSE on the held-out batch
    domain_expert: list[list[int]]  # [M][E] held-out tokens of domain m whose first choice is e
    token_entropy: float  # mean entropy of the router's scores per token (nats)
    drop_rate: float  # share of held-out slots a capacity limit dropped
    seconds: float  # wall time of the training steps only
    stopped: bool  # True when a callback stopped it early
    state: TrainState

    @property
    def history(self) -> History:
        return self.state.history

    @property
    def step(self) -> int:
        return self.state.step


Callback = Callable[[Progress], "bool | None"]  # return True to stop


class Adam:
    """Adam (Kingma & Ba, https://arxiv.org/abs/1412.6980), the same update as `torch.optim.Adam`.

    Written out because constructing any `torch.optim.Optimizer` imports `torch._dynamo`, which
    takes 1.5–3 s on this machine: longer than a whole 300-step run, paid by the first run of
    every process (the CLI, each app server). Three small tensors need no more than this.
    """

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        self.step_count += 1
        bias1, bias2 = 1 - beta1**self.step_count, 1 - beta2**self.step_count
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (v.sqrt() / math.sqrt(bias2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bias1)

    def state_dict(self) -> dict:
        return {
            "step": self.step_count,
            "exp_avg": [m.clone() for m in self.exp_avg],
            "exp_avg_sq": [v.clone() for v in self.exp_avg_sq],
        }

    def load_state_dict(self, state: dict) -> None:
        self.step_count = state["step"]
        self.exp_avg = [m.clone() for m in state["exp_avg"]]
        self.exp_avg_sq = [v.clone() for v in state["exp_avg_sq"]]


def update_expert_bias(bias_E: torch.Tensor, counts_E: torch.Tensor, rate: float) -> torch.Tensor:
    """DeepSeek-V3's update: b_e + γ·sign(mean load − load_e); over-loaded experts lose bias."""
    counts = counts_E.to(bias_E.dtype)
    return bias_E + rate * torch.sign(counts.mean() - counts)


def is_collapsed(stats: LoadStats) -> bool:
    """Issue 6's bar for collapse: one expert takes half the slots, or half the experts are dead."""
    return stats.max_load >= 0.5 or stats.dead_experts >= len(stats.load) / 2


def is_balanced(stats: LoadStats) -> bool:
    """Issue 6's bar for balance: no expert above twice its fair share, and none dead."""
    return stats.max_load <= 2 / len(stats.load) and stats.dead_experts == 0


def _generators(seed: int) -> tuple[torch.Generator, torch.Generator, torch.Generator]:
    # Separate streams, so switching noise on does not change the data a seed sees.
    return tuple(torch.Generator().manual_seed(seed * 1_000 + i) for i in (1, 2, 3))


def _batch_loss(
    model: TinyMoE, cfg: TrainConfig, x: torch.Tensor, y: torch.Tensor, noise_rng: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total loss, task MSE, counts [E]) for one training batch."""
    out = model(x, cfg.scoring, cfg.noise_std if cfg.noise else 0.0, cfg.capacity_factor, noise_rng)
    task = F.mse_loss(out.prediction, y)
    loss = task
    logits = out.routing.router_logits
    if cfg.balance == "aux-loss":
        loss = loss + cfg.aux_coef * load_balancing_loss(logits, cfg.num_experts, cfg.top_k)
    if cfg.z_loss:
        loss = loss + cfg.z_coef * router_z_loss(logits)
    return loss, task, out.tokens_per_expert


def _start(
    cfg: TrainConfig, task: DomainTask, state: TrainState | None
) -> tuple[TinyMoE, Adam, list, int, History]:
    init_rng, data_rng, noise_rng = _generators(cfg.seed if state is None else state.seed)
    shared = torch.cat([task.centres, task.shift[None]])  # what tokens share: the gate starts blind to it
    model = TinyMoE(cfg.model_config(), generator=init_rng, blind_to=shared)
    optimizer = Adam(list(model.parameters()), lr=cfg.lr)
    if state is None:
        return model, optimizer, [data_rng, noise_rng], 0, History()
    model.load_state_dict(state.model)  # raises if experts or sizes differ from the state's
    optimizer.load_state_dict(state.optimizer)  # a continuation may change the learning rate
    data_rng.set_state(state.data_rng)
    noise_rng.set_state(state.noise_rng)
    return model, optimizer, [data_rng, noise_rng], state.step, state.history.copy()


def train(
    config: TrainConfig, callback: Callback | None = None, every: int = 10, state: TrainState | None = None
) -> TrainResult:
    """Train `config.steps` steps (from scratch, or on from `state`); see the module docstring.

    `callback(progress)` runs every `every` steps and after the last; returning True stops.
    """
    seed = config.seed if state is None else state.seed
    task = make_task(config.num_domains, config.hidden_size, seed)
    model, optimizer, (data_rng, noise_rng), step, history = _start(config, task, state)
    end, stopped = step + config.steps, False
    started = time.perf_counter()
    while step < end and not stopped:
        batch = sample_batch(task, config.batch_size, data_rng)
        loss, task_loss, counts_E = _batch_loss(model, config, batch.x, batch.y, noise_rng)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if config.balance == "aux-free":
            with torch.no_grad():
                model.expert_bias.copy_(update_expert_bias(model.expert_bias, counts_E, config.bias_rate))
        step += 1
        history.loss.append(float(task_loss.detach()))
        history.load.append([float(v) for v in load_shares(counts_E)])
        history.balance.append(config.balance)
        if callback is not None and (step % every == 0 or step == end):
            stopped = bool(callback(Progress(step, end, history)))
    seconds = time.perf_counter() - started
    new_state = TrainState(
        model.state_dict(),
        optimizer.state_dict(),
        data_rng.get_state(),
        noise_rng.get_state(),
        seed,
        step,
        history,
    )
    return _evaluate(model, config, task, new_state, seconds, stopped)


@torch.no_grad()
def _evaluate(
    model: TinyMoE, cfg: TrainConfig, task: DomainTask, state: TrainState, seconds: float, stopped: bool
) -> TrainResult:
    """Load, loss and domain × expert counts on a held-out batch (no noise: the router's choice)."""
    eval_rng = torch.Generator().manual_seed(state.seed * 1_000 + 999)
    batch = sample_batch(task, EVAL_TOKENS, eval_rng)
    out = model(batch.x, cfg.scoring, 0.0, cfg.capacity_factor)
    first_choice = out.routing.topk_ids[:, 0]
    domain_expert = torch.zeros(task.num_domains, cfg.num_experts, dtype=torch.long)
    domain_expert.index_put_((batch.domain, first_choice), torch.ones_like(first_choice), accumulate=True)
    return TrainResult(
        config=cfg,
        stats=load_stats(out.tokens_per_expert),
        final_loss=float(F.mse_loss(out.prediction, batch.y)),
        domain_expert=domain_expert.tolist(),
        token_entropy=token_entropy(_as_distribution(out.routing.router_probs)),
        drop_rate=drop_rate(out.num_dropped, out.routing.topk_ids.numel()),
        seconds=seconds,
        stopped=stopped,
        state=state,
    )


def _as_distribution(scores_TE: torch.Tensor) -> torch.Tensor:
    """Softmax probabilities already sum to 1; sigmoid scores are normalised per token first, so
    the token entropy of both modes is measured on the same scale (≤ log E)."""
    return scores_TE / scores_TE.sum(dim=-1, keepdim=True)


def continue_training(
    result: TrainResult, config: TrainConfig, callback: Callback | None = None, every: int = 10
) -> TrainResult:
    """Train `config.steps` more steps from where `result` ended (e.g. with balancing switched on)."""
    return train(replace(config, seed=result.state.seed), callback, every, result.state)


def contract_json(result: TrainResult) -> dict:
    """DESIGN.md contract 4's object: load, max_load, dead_experts, cv, final_loss, seconds."""
    s = result.stats
    return {
        "load": s.load,
        "max_load": s.max_load,
        "dead_experts": s.dead_experts,
        "cv": s.cv,
        "final_loss": result.final_loss,
        "seconds": result.seconds,
    }


def cli(argv: list[str]) -> int:
    """`python -m moe_core collapse --balance {none,aux-loss,aux-free} --seed N [--steps S] --json`."""
    parser = argparse.ArgumentParser(
        prog="python -m moe_core collapse", description="Train the Lesson 4 MoE and report its expert load."
    )
    parser.add_argument("--balance", choices=BALANCE_MODES, default="none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--aux-coef", type=float, default=TrainConfig.aux_coef)
    parser.add_argument("--experts", type=int, default=TrainConfig.num_experts)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # tiny matmuls: one thread is fastest and the run is reproducible
    try:
        config = TrainConfig(
            balance=args.balance,
            seed=args.seed,
            steps=args.steps,
            aux_coef=args.aux_coef,
            num_experts=args.experts,
        )
    except ValueError as e:
        parser.error(str(e))
    result = train(config)
    if args.json:
        print(json.dumps(contract_json(result)))
        return 0
    s = result.stats
    print(f"balance={config.balance} seed={config.seed} steps={config.steps}")
    print("load per expert: " + " ".join(f"{v:.3f}" for v in s.load))
    print(
        f"max_load={s.max_load:.3f} dead_experts={s.dead_experts} cv={s.cv:.3f} "
        f"final_loss={result.final_loss:.4f} seconds={result.seconds:.2f}"
    )
    return 0
