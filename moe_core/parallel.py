"""Expert parallelism (EP): experts sharded across processes, tokens exchanged with all-to-all.

GShard (https://arxiv.org/abs/2006.16668) and Switch (https://arxiv.org/abs/2101.03961) place
different experts on different devices. Every rank holds a shard of the tokens (data parallel)
and E/N of the experts; the router is replicated. One MoE layer on rank r, step by step:

    1. route     softmax top-k on the local tokens' logits (the same recipe as `fused_moe`)
    2. sort      the rank's T_r*K slots by expert id, so they are grouped by owner rank
    3. counts    all_to_all_single of the per-expert slot counts [N, E/N]: every rank learns how
                 many rows it will receive from each peer, for each of its local experts
    4. dispatch  all_to_all_single of the token rows (uneven split sizes from step 3)
    5. experts   the grouped path (`moe_experts`, backend "torch") on the received rows
    6. return    the reverse all_to_all_single sends each output row back to its token's rank
    7. combine   un-sort and sum each token's K outputs weighted by the router

Both exchanges are `_AllToAll`, an autograd Function whose backward is the same exchange with
the split sizes swapped, so gradients reach the inputs, the router logits and the local experts.
Gloo (CPU) supports no all-to-all other than `all_to_all_single`, which is why only that is used.

`launch` runs a function on N local processes joined in one group (Gloo on CPU, NCCL when there is
a GPU per rank); `cli` is `python -m moe_core ep-demo`, which prints the traffic matrix as JSON.

Shape legend: T tokens (T_r on rank r), D hidden, F expert FFN, E experts (E_l = E/N per rank),
K top-k, N ranks, M rows a rank receives. Slot s = t*K + k.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from moe_core.ops import fused_moe, moe_experts
from moe_core.router import softmax_topk

# --- autograd-aware exchange ---------------------------------------------------------------


class _AllToAll(torch.autograd.Function):
    """all_to_all_single whose backward sends the gradient rows back the way they came."""

    @staticmethod
    def forward(ctx, rows, output_splits: list[int], input_splits: list[int], group):
        ctx.splits, ctx.group = (output_splits, input_splits), group
        out = rows.new_empty((sum(output_splits), *rows.shape[1:]))
        dist.all_to_all_single(out, rows.contiguous(), output_splits, input_splits, group=group)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        output_splits, input_splits = ctx.splits
        grad_in = grad_out.new_empty((sum(input_splits), *grad_out.shape[1:]))
        dist.all_to_all_single(grad_in, grad_out.contiguous(), input_splits, output_splits, group=ctx.group)
        return grad_in, None, None, None


def all_to_all(rows: torch.Tensor, output_splits: list[int], input_splits: list[int], group=None
               ) -> torch.Tensor:
    """Send rows[sum(input_splits[:j]) : ...] to rank j; receive output_splits[i] rows from rank i."""
    return _AllToAll.apply(rows, output_splits, input_splits, group)


# --- the expert-parallel layer ---------------------------------------------------------------


@dataclass
class EPOutput:
    hidden_states: torch.Tensor  # [T_r, D] this rank's tokens, combined
    send_counts: list[int]  # [N] slots this rank sent to each rank (its row of the traffic matrix)
    recv_counts: list[int]  # [N] slots this rank received from each rank (its column)
    tokens_per_expert: torch.Tensor  # [E] slots of this rank's tokens per global expert


def _local_experts(x_MD: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, ids_M: torch.Tensor
                   ) -> torch.Tensor:
    if x_MD.shape[0] == 0:
        # NOTE: moe_experts returns a fresh zero tensor for zero rows, which would cut this rank's
        # return-trip exchange out of the backward pass while its peers wait in theirs (a hang).
        # An empty matmul keeps the graph linked to the input and the weights.
        gate, up = F.linear(x_MD, w1[0]).chunk(2, dim=-1)
        return F.linear(F.silu(gate) * up, w2[0])
    ones_M1 = x_MD.new_ones(x_MD.shape[0], 1)  # weights are applied on the token's own rank
    return moe_experts(x_MD, w1, w2, ones_M1, ids_M[:, None], backend="torch")


def expert_parallel_moe(
    hidden_states: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    gating_output: torch.Tensor,
    topk: int,
    renormalize: bool = True,
    group=None,
) -> EPOutput:
    """`fused_moe` with the experts sharded: call it on every rank of `group` at once.

    hidden_states [T_r, D] and gating_output [T_r, E] are this rank's tokens (T_r may be 0);
    w1 [E/N, 2F, D] and w2 [E/N, D, F] are this rank's experts, rank r holding r*E/N..(r+1)*E/N-1.
    """
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    num_experts, local_experts = gating_output.shape[1], w1.shape[0]
    if local_experts * world != num_experts:
        raise ValueError(f"rank {rank}: w1 holds {local_experts} experts, but E={num_experts} over "
                         f"{world} ranks needs E/N={num_experts / world:g} per rank")
    num_tokens = hidden_states.shape[0]
    routing = softmax_topk(gating_output, topk, renormalize)  # 1. route
    ids_N = routing.topk_ids.reshape(-1)
    order_N = torch.argsort(ids_N, stable=True)  # 2. slots grouped by expert, hence by owner rank
    counts_E = torch.bincount(ids_N, minlength=num_experts)

    recv_counts_NE = torch.empty_like(counts_E).view(world, local_experts)  # 3. counts first
    dist.all_to_all_single(recv_counts_NE, counts_E.view(world, local_experts).contiguous(), group=group)
    send_splits = counts_E.view(world, local_experts).sum(1).tolist()
    recv_splits = recv_counts_NE.sum(1).tolist()

    x_sorted = hidden_states[order_N // topk]  # 4. dispatch: [T_r*K, D] grouped by destination
    x_recv_MD = all_to_all(x_sorted, recv_splits, send_splits, group)
    # Rows arrive grouped by source rank, then by local expert: label each with its expert.
    local_ids = torch.arange(local_experts, device=counts_E.device).repeat(world)
    ids_M = torch.repeat_interleave(local_ids, recv_counts_NE.reshape(-1))
    y_recv_MD = _local_experts(x_recv_MD, w1, w2, ids_M)  # 5. experts

    y_sorted = all_to_all(y_recv_MD, send_splits, recv_splits, group)  # 6. return trip
    y_slots = torch.empty_like(y_sorted).index_copy(0, order_N, y_sorted)  # 7. combine: slot order
    weights_TK1 = routing.topk_weights.to(y_slots.dtype)[..., None]
    out_TD = (y_slots.view(num_tokens, topk, y_slots.shape[-1]) * weights_TK1).sum(dim=1)
    return EPOutput(out_TD.to(hidden_states.dtype), send_splits, recv_splits, counts_E)


def shard(size: int, world_size: int, rank: int) -> slice:
    """Rank's contiguous share of `size` items (sizes differ by at most one; may be empty)."""
    base, extra = divmod(size, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


# --- the routing the demo draws, and the traffic it should give -----------------------------


def zipf_popularity(num_experts: int, skew: float) -> torch.Tensor:
    """p_e proportional to (e+1)^-skew: skew 0 is uniform, larger skews favour low expert ids."""
    p = torch.arange(1, num_experts + 1, dtype=torch.float64) ** -float(skew)
    return p / p.sum()


def _count_below(r_JS: torch.Tensor, top_k: int) -> torch.Tensor:
    """Running Poisson-binomial: out[j, c, s] = P(exactly c of the first j experts beat level s)."""
    dp = torch.zeros(top_k, r_JS.shape[1], dtype=r_JS.dtype)
    dp[0] = 1
    out = [dp]
    for r_S in r_JS:
        dp = dp * (1 - r_S) + torch.cat([torch.zeros_like(dp[:1]), dp[:-1]]) * r_S
        out.append(dp)
    return torch.stack(out)  # [J + 1, K, S]


def inclusion_probabilities(p: torch.Tensor, top_k: int) -> torch.Tensor:
    """P(expert e is among a token's K experts) when K distinct experts are drawn in proportion to p.

    The demo's logits are log p_e + Gumbel noise; top-k of those is exactly such a draw
    (the Gumbel-top-k trick). With s = exp(-v), expert j beats level v with r_j(s) = 1 - exp(-p_j s),
    so  P_e = integral_0^inf  p_e exp(-p_e s) * P(fewer than K of the others beat v) ds,
    the last factor a Poisson-binomial over the other experts (prefix x suffix dynamic programme).
    Sums to K.
    """
    p = p.double()
    num_experts = p.numel()
    if top_k >= num_experts:
        return torch.ones_like(p)
    lo, hi = math.log10(1e-4 / float(p.max())), math.log10(80 / float(p.min()))
    s = torch.logspace(lo, hi, 2000, dtype=p.dtype)  # levels s = exp(-v), log-spaced
    r_ES = 1 - torch.exp(-p[:, None] * s[None, :])
    before = _count_below(r_ES, top_k)[:-1]  # rivals 0..e-1
    after = _count_below(r_ES.flip(0), top_k).flip(0)[1:]  # rivals e+1..E-1
    after_cum = after.cumsum(dim=1)  # P(at most b of them beat the level)
    fewer_than_k = sum(before[:, a] * after_cum[:, top_k - 1 - a] for a in range(top_k))  # [E, S]
    integrand = p[:, None] * torch.exp(-p[:, None] * s[None, :]) * fewer_than_k * s  # ds = s d(ln s)
    below_grid = 1 - torch.exp(-p * s[0])  # no rival beats so high a level: the factor is 1 there
    return below_grid + torch.trapezoid(integrand, torch.log(s), dim=1)


def shard_sizes(size: int, world_size: int) -> list[int]:
    return [len(range(size)[shard(size, world_size, r)]) for r in range(world_size)]


def expected_traffic(num_tokens: int, num_experts: int, top_k: int, world_size: int, skew: float
                     ) -> list[list[float]]:
    """Expected slots from rank i to rank j: T_i * sum of P_e over rank j's experts. Sums to T*K."""
    incl_E = inclusion_probabilities(zipf_popularity(num_experts, skew), top_k)
    per_rank = incl_E.view(world_size, -1).sum(dim=1)
    return [[size * float(q) for q in per_rank] for size in shard_sizes(num_tokens, world_size)]


# --- launching N local processes -------------------------------------------------------------


def _choose_backend(world_size: int) -> tuple[str, str]:
    """(process-group backend, start method). NCCL needs one GPU per rank and a CUDA-safe spawn.

    On CPU a rank forked from a process that has already imported torch starts in well under a
    second, while a spawned rank re-imports torch (seconds each on a small machine). Forking is only
    safe from a single-threaded process; a threaded one uses the forkserver (a clean process,
    started once with torch and this module preloaded, that forks the ranks). Like spawn, the
    forkserver imports the caller's `__main__` in every rank: call `launch` under an
    `if __name__ == "__main__":` guard, and from a web app run `python -m moe_core ep-demo` in a
    subprocess instead (Streamlit makes each page script `__main__`).
    """
    if torch.cuda.is_available() and torch.cuda.device_count() >= world_size:
        return "nccl", "spawn"
    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return "gloo", "fork"
    if "forkserver" in methods:
        mp.set_forkserver_preload(["moe_core.parallel"])  # takes effect when the server first starts
        return "gloo", "forkserver"
    return "gloo", "spawn"


RENDEZVOUS = timedelta(seconds=30)


def _rank_entry(rank: int, fn: Callable, world_size: int, ports, backend: str, queue, args: tuple
                ) -> None:
    torch.set_num_threads(1)  # N ranks share the machine's cores: one intra-op thread each
    if sys.platform == "linux":
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # stay on loopback
        os.environ.setdefault("NCCL_SOCKET_IFNAME", "lo")
    device = torch.device("cpu")
    if backend == "nccl":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    port = ports.get()  # the parent opens the store only once every rank is forked (see launch)
    # Rendezvous on loopback takes milliseconds; a rank that cannot join within RENDEZVOUS fails
    # (and with it the run, with a message) instead of leaving the others waiting for minutes.
    store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=RENDEZVOUS)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=RENDEZVOUS)
    try:
        result = fn(rank, world_size, device, *args)
        queue.put((rank, pickle.dumps(result)))  # by value: the rank exits right after
    finally:
        dist.destroy_process_group()


def launch(fn: Callable[..., Any], world_size: int, *args: Any, timeout: float = 300.0) -> list[Any]:
    """Run fn(rank, world_size, device, *args) on `world_size` local processes in one group.

    Returns the ranks' return values in rank order. The parent holds the rendezvous store on a
    port the OS picks (no free-port race). A rank that raises makes this raise
    torch.multiprocessing.ProcessRaisedException with the rank's traceback.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    backend, method = _choose_backend(world_size)
    context = mp.get_context(method)
    queue, ports = context.SimpleQueue(), context.SimpleQueue()
    procs = mp.start_processes(_rank_entry, args=(fn, world_size, ports, backend, queue, args),
                               nprocs=world_size, join=False, start_method=method)
    # NOTE: the rendezvous store runs a server thread, so it is opened only after every rank is
    # forked: a rank forked while that thread held a lock hung for good in its own TCPStore()
    # (seen in CI: one rank stuck connecting, the others waiting in init_process_group).
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    for _ in range(world_size):
        ports.put(store.port)
    results: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    while True:
        while not queue.empty():  # read while the ranks run, so a full pipe never blocks them
            rank, blob = queue.get()
            results[rank] = pickle.loads(blob)
        if procs.join(timeout=0.02):
            break
        if time.monotonic() > deadline:
            for proc in procs.processes:
                proc.kill()
                proc.join()
            raise TimeoutError(f"expert-parallel run on {world_size} processes took over {timeout:g} s")
    while not queue.empty():
        rank, blob = queue.get()
        results[rank] = pickle.loads(blob)
    return [results[r] for r in range(world_size)]


# --- python -m moe_core ep-demo --------------------------------------------------------------

DEMO_HIDDEN, DEMO_FFN = 64, 128  # D and F of the demo layer: small, the exchange is the lesson
MAX_WORLD_SIZE = 16  # every rank is a process on this machine
MAX_SKEW = 4.0


@dataclass(frozen=True)
class DemoSpec:
    world_size: int
    tokens: int = 256
    experts: int = 8
    topk: int = 2
    seed: int = 0
    skew: float = 0.0  # Zipf exponent of the experts' popularity (0 = uniform routing)

    def validate(self) -> None:
        """Raise ValueError with a message naming the option, before any process starts."""
        n, e = self.world_size, self.experts
        if not 1 <= n <= MAX_WORLD_SIZE:
            raise ValueError(f"--world-size must be between 1 and {MAX_WORLD_SIZE}, got {n}")
        if self.tokens < 1 or e < 1:
            raise ValueError(f"--tokens and --experts must be >= 1, got {self.tokens} and {e}")
        if not 1 <= self.topk <= e:
            raise ValueError(f"--topk must be between 1 and --experts ({e}), got {self.topk}")
        if e % n:
            raise ValueError(f"--experts ({e}) must be divisible by --world-size ({n}): every rank "
                             f"holds E/N whole experts, and {e}/{n} is not a whole number")
        if not 0 <= self.skew <= MAX_SKEW:
            raise ValueError(f"--skew must be between 0 and {MAX_SKEW:g}, got {self.skew}")


def demo_problem(spec: DemoSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Seeded x [T, D], w1 [E, 2F, D], w2 [E, D, F] and logits [T, E] = log p + Gumbel noise."""
    g = torch.Generator().manual_seed(spec.seed)
    t, e = spec.tokens, spec.experts
    x = torch.randn(t, DEMO_HIDDEN, generator=g)
    w1 = torch.randn(e, 2 * DEMO_FFN, DEMO_HIDDEN, generator=g) / math.sqrt(DEMO_HIDDEN)
    w2 = torch.randn(e, DEMO_HIDDEN, DEMO_FFN, generator=g) / math.sqrt(DEMO_FFN)
    gumbel = -torch.log(-torch.log(torch.rand(t, e, generator=g).clamp(1e-12, 1 - 1e-7)))
    logits = (zipf_popularity(e, spec.skew).log() + gumbel).float()
    return x, w1, w2, logits


def _demo_rank(rank: int, world: int, device: torch.device, spec: DemoSpec) -> dict | None:
    x, w1, w2, logits = demo_problem(spec)
    tok = shard(spec.tokens, world, rank)
    per_rank = spec.experts // world
    mine = slice(rank * per_rank, (rank + 1) * per_rank)
    dist.barrier()
    start = time.perf_counter()
    out = expert_parallel_moe(x[tok].to(device), w1[mine].to(device), w2[mine].to(device),
                              logits[tok].to(device), spec.topk)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    forward_s = time.perf_counter() - start
    reference = fused_moe(x, w1, w2, logits, spec.topk, backend="torch")[tok]
    diff = float((out.hidden_states.cpu() - reference).abs().max()) if reference.numel() else 0.0
    traffic = torch.zeros(world, world, dtype=torch.long, device=device)
    traffic[rank] = torch.tensor(out.send_counts, device=device)
    load = out.tokens_per_expert.clone()
    worst = torch.tensor([diff, forward_s], dtype=torch.float64, device=device)
    dist.all_reduce(traffic)
    dist.all_reduce(load)
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)
    if rank:
        return None
    return {"traffic": traffic.tolist(), "expert_load": load.tolist(),
            "max_abs_diff": float(worst[0]), "forward_seconds": float(worst[1])}


def bytes_sent(traffic: list[list[int]], hidden_size: int, element_bytes: int, local_experts: int) -> dict:
    """Bytes each rank puts on the wire; rows a rank keeps for itself (the diagonal) cost none."""
    n = len(traffic)
    row = hidden_size * element_bytes
    return {
        "dispatch": [sum(traffic[i][j] for j in range(n) if j != i) * row for i in range(n)],
        "return": [sum(traffic[i][j] for i in range(n) if i != j) * row for j in range(n)],
        "counts": [(n - 1) * local_experts * 8 for _ in range(n)],  # int64 per (peer, local expert)
    }


def run_ep_demo(spec: DemoSpec) -> dict[str, Any]:
    """Run the demo on spec.world_size processes; the dict `ep-demo --json` prints."""
    spec.validate()
    start = time.perf_counter()
    backend, _ = _choose_backend(spec.world_size)
    result = launch(_demo_rank, spec.world_size, spec)[0]
    traffic = result["traffic"]
    n = spec.world_size
    return {
        **asdict(spec), "backend": backend, "hidden_size": DEMO_HIDDEN, "dtype": "float32",
        "traffic": traffic,
        "expected_traffic": expected_traffic(spec.tokens, spec.experts, spec.topk, n, spec.skew),
        "tokens_per_rank": shard_sizes(spec.tokens, n),
        "slots_received": [sum(traffic[i][j] for i in range(n)) for j in range(n)],
        "expert_load": result["expert_load"],
        "bytes_sent": bytes_sent(traffic, DEMO_HIDDEN, 4, spec.experts // n),
        "max_abs_diff": result["max_abs_diff"],
        "forward_seconds": result["forward_seconds"],
        "seconds": time.perf_counter() - start,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m moe_core ep-demo",
                                description="A real expert-parallel MoE forward on N local processes.")
    p.add_argument("--world-size", type=int, required=True, help="number of ranks (processes)")
    p.add_argument("--tokens", type=int, default=256, help="T, tokens over all ranks (default 256)")
    p.add_argument("--experts", type=int, default=8, help="E, must divide by the world size (default 8)")
    p.add_argument("--topk", type=int, default=2, help="K experts per token (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skew", type=float, default=0.0, help="Zipf exponent of expert popularity (0 = uniform)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def _print_table(out: dict[str, Any]) -> None:
    n = out["world_size"]
    print(f"traffic (routed slots; row = sending rank, column = receiving rank), {out['backend']}:")
    print("      " + "".join(f"{'to ' + str(j):>8}" for j in range(n)))
    for i, row in enumerate(out["traffic"]):
        print(f"from {i}" + "".join(f"{v:>8}" for v in row))
    print(f"max |parallel - fused_moe| = {out['max_abs_diff']:.2e}   {out['seconds']:.2f} s")


def cli(argv: list[str]) -> int:
    """`python -m moe_core ep-demo ...`; returns the exit status (2 for bad options, 1 if the run fails)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed its message
        return int(exc.code or 0)
    spec = DemoSpec(args.world_size, args.tokens, args.experts, args.topk, args.seed, args.skew)
    try:
        spec.validate()
    except ValueError as exc:
        print(f"ep-demo: error: {exc}", file=sys.stderr)
        return 2
    try:
        out = run_ep_demo(spec)
    except Exception as exc:  # a rank failed: one line, not N tracebacks
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        print(f"ep-demo: error: the expert-parallel run failed: {last}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(out))
    else:
        _print_table(out)
    return 0
