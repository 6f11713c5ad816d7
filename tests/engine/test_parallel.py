"""Expert parallelism over real processes: same numbers as one process, forward and backward.

One launch per world size runs every scenario (processes are the slow part). The reference is
the single-process Hugging Face-style loop (`backend="loop"`), differentiated by autograd, so the
sharding, both all-to-alls and their hand-written backward are checked against code that shares
none of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from moe_core import fused_moe
from moe_core.parallel import (
    DemoSpec,
    cli,
    expected_traffic,
    expert_parallel_moe,
    inclusion_probabilities,
    launch,
    shard,
    zipf_popularity,
)

pytestmark = pytest.mark.engine
ROOT = Path(__file__).resolve().parents[2]
D, F, E = 16, 12, 8

# name: (tokens, top_k, bias on the router logits).
#   even      random routing
#   uneven    13 tokens (shards 4,3,3,3) and a router that prefers expert 0: unequal loads
#   one_rank  3 tokens, every slot goes to rank 0's experts: other ranks receive nothing,
#             and with 4 ranks rank 3 has no tokens at all
SCENARIOS = {
    "even": (32, 2, None),
    "uneven": (13, 3, [3.0, 1.5, 0.5, 0, 0, 0, -1, -2]),
    "one_rank": (3, 2, "rank0"),
}


def _problem(name: str, world: int):
    tokens, top_k, bias = SCENARIOS[name]
    g = torch.Generator().manual_seed(list(SCENARIOS).index(name))
    # float64 everywhere except the router, which computes its softmax in float32 by design.
    x = torch.randn(tokens, D, generator=g, dtype=torch.float64)
    w_gate = torch.randn(E, D, generator=g, dtype=torch.float64) * 0.5
    w1 = torch.randn(E, 2 * F, D, generator=g, dtype=torch.float64) / D**0.5
    w2 = torch.randn(E, D, F, generator=g, dtype=torch.float64) / F**0.5
    cot = torch.randn(tokens, D, generator=g, dtype=torch.float64)  # d loss / d out
    if bias == "rank0":
        bias_t = torch.full((E,), -30.0, dtype=torch.float64)
        bias_t[: max(top_k, E // world)] = 30.0  # rank 0's experts (top_k of them when N = 1)
    else:
        bias_t = torch.tensor(bias or [0.0] * E, dtype=torch.float64)
    return x, w_gate, w1, w2, cot, bias_t, top_k


def _reference(name: str, world: int) -> dict[str, torch.Tensor]:
    x, w_gate, w1, w2, cot, bias, top_k = _problem(name, world)
    leaves = [t.requires_grad_() for t in (x, w_gate, w1, w2)]
    out = fused_moe(x, w1, w2, x @ w_gate.T + bias, top_k, backend="loop")
    (out * cot).sum().backward()
    return {"out": out.detach(), "x": x.grad, "gate": w_gate.grad, "w1": w1.grad, "w2": w2.grad,
            "leaves": leaves}


def _scenarios_rank(rank: int, world: int, device: torch.device) -> dict:
    """Every scenario on this rank: its pieces of the parallel result and of the reference."""
    results = {}
    for name in SCENARIOS:
        x, w_gate, w1, w2, cot, bias, top_k = (t.to(device) if torch.is_tensor(t) else t
                                               for t in _problem(name, world))
        tok, per_rank = shard(x.shape[0], world, rank), E // world
        mine = slice(rank * per_rank, (rank + 1) * per_rank)
        x_r = x[tok].clone().requires_grad_()
        gate = w_gate.clone().requires_grad_()  # replicated router, as in expert parallelism
        w1_r, w2_r = w1[mine].clone().requires_grad_(), w2[mine].clone().requires_grad_()
        out = expert_parallel_moe(x_r, w1_r, w2_r, x_r @ gate.T + bias, top_k)
        (out.hidden_states * cot[tok]).sum().backward()
        dist.all_reduce(gate.grad)  # what data parallelism does with a replicated weight
        ref = _reference(name, world)
        got = {"out": out.hidden_states, "x": x_r.grad, "gate": gate.grad, "w1": w1_r.grad, "w2": w2_r.grad}
        want = {"out": ref["out"][tok], "x": ref["x"][tok], "gate": ref["gate"],
                "w1": ref["w1"][mine], "w2": ref["w2"][mine]}
        results[name] = {
            "pairs": {k: (got[k].detach().cpu(), want[k]) for k in got},
            "send": out.send_counts, "recv": out.recv_counts, "tokens": x_r.shape[0],
        }
    return results


@pytest.fixture(scope="module", params=[1, 2, 4], ids=lambda n: f"world{n}")
def parallel_run(request) -> tuple[int, list[dict]]:
    return request.param, launch(_scenarios_rank, request.param, timeout=240)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_single_process_forward_and_gradients(parallel_run, name):
    world, ranks = parallel_run
    for rank, result in enumerate(ranks):
        for what, (got, want) in result[name]["pairs"].items():
            # float64 experts; the float32 router softmax limits the gate's gradient to ~1e-7.
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6,
                                       msg=lambda m, r=rank, w=what: f"world {world} rank {r} {w}: {m}")


def test_traffic_bookkeeping(parallel_run):
    world, ranks = parallel_run
    for name, (tokens, top_k, _) in SCENARIOS.items():
        traffic = [r[name]["send"] for r in ranks]
        columns = [r[name]["recv"] for r in ranks]
        assert sum(map(sum, traffic)) == tokens * top_k
        assert [list(c) for c in zip(*traffic, strict=True)] == columns  # what i sends j, j receives
        assert [sum(row) for row in traffic] == [r[name]["tokens"] * top_k for r in ranks]
    one_rank = [r["one_rank"] for r in ranks]
    assert all(sum(r["recv"]) == 0 for r in one_rank[1:])  # ranks that receive no tokens
    if world == 4:
        assert one_rank[3]["tokens"] == 0  # and a rank that has no tokens of its own
        uneven = [sum(r["uneven"]["recv"]) for r in ranks]
        assert uneven[0] > max(uneven[1:])  # the favoured experts make rank 0 the straggler


def _fail_on_rank_one(rank: int, world: int, device: torch.device) -> int:
    if rank == 1:
        raise RuntimeError("boom on rank 1")
    return rank


def test_launch_reports_a_failing_rank():
    with pytest.raises(Exception, match="boom on rank 1"):
        launch(_fail_on_rank_one, 2, timeout=120)


def test_shard_covers_everything_once():
    for size, world in [(13, 4), (3, 4), (0, 2), (256, 8)]:
        pieces = [list(range(size))[shard(size, world, r)] for r in range(world)]
        assert [i for piece in pieces for i in piece] == list(range(size))
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


@pytest.mark.parametrize("experts,top_k,skew", [(8, 2, 0.0), (8, 2, 1.0), (16, 4, 2.0), (8, 1, 1.5)])
def test_inclusion_probabilities_match_sampling(experts, top_k, skew):
    p = zipf_popularity(experts, skew)
    exact = inclusion_probabilities(p, top_k)
    assert float(exact.sum()) == pytest.approx(top_k, abs=1e-6)
    if top_k == 1:
        torch.testing.assert_close(exact, p, rtol=0, atol=1e-6)
    # Independent check: draw K distinct experts per token in proportion to p, many times.
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([torch.multinomial(p, top_k, replacement=False, generator=g) for _ in range(20000)])
    sampled = torch.bincount(draws.flatten(), minlength=experts).double() / 20000
    torch.testing.assert_close(exact, sampled, rtol=0, atol=0.015)


def test_expected_traffic_sums_to_routed_slots():
    expected = expected_traffic(100, 8, 2, 4, 0.0)
    assert sum(map(sum, expected)) == pytest.approx(200)
    assert expected[0][0] == pytest.approx(25 * 2 / 4, rel=1e-6)


def test_cli_prints_valid_json():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "moe_core", "ep-demo", "--world-size", "4", "--tokens", "50",
           "--experts", "8", "--topk", "3", "--skew", "1.5", "--seed", "3", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    traffic = out["traffic"]
    assert len(traffic) == 4 and all(len(row) == 4 for row in traffic)
    assert sum(map(sum, traffic)) == 50 * 3
    assert sum(out["expert_load"]) == 150 and out["expert_load"][0] == max(out["expert_load"])
    assert out["max_abs_diff"] < 1e-5
    assert out["seconds"] > 0 and len(out["bytes_sent"]["dispatch"]) == 4
    off_diagonal = sum(traffic[i][j] for i in range(4) for j in range(4) if i != j)
    assert sum(out["bytes_sent"]["dispatch"]) == sum(out["bytes_sent"]["return"]) == off_diagonal * 64 * 4


@pytest.mark.parametrize("argv,needle", [
    (["--world-size", "3"], "--experts (8) must be divisible by --world-size (3)"),
    (["--world-size", "2", "--experts", "6", "--topk", "7"], "--topk must be between 1 and --experts"),
    (["--world-size", "0"], "--world-size must be between 1"),
])
def test_cli_rejects_bad_options_without_traceback(argv, needle, capsys):
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_demo_spec_validation_message():
    with pytest.raises(ValueError, match="must be divisible"):
        DemoSpec(world_size=4, experts=6).validate()
