"""`python -m moe_core train-lm --smoke`: learns, writes a loadable Mixtral folder, resumes exactly."""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from moe_core.lm import MoELM, load_tokenizer
from moe_core.lm.train import cli

pytestmark = pytest.mark.engine
REPO = Path(__file__).resolve().parents[2]


def run(out: Path, *extra: str) -> dict:
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        assert cli(["--out", str(out), "--smoke", "--threads", "1", *extra]) == 0
    return json.loads(stdout.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    return out, run(out)


def test_smoke_training_lowers_the_loss(smoke):
    out, summary = smoke
    curve = json.loads((out / "loss_curve.json").read_text())
    assert [p["step"] for p in curve] == list(range(1, 41))
    first = sum(p["loss"] for p in curve[:5]) / 5
    last = sum(p["loss"] for p in curve[-5:]) / 5
    assert last < first - 0.3, (first, last)
    # A uniform guess over the vocabulary is where training starts (ln V nats per token).
    assert abs(curve[0]["loss"] - math.log(load_tokenizer(out).get_vocab_size())) < 0.3
    evals = [p["heldout_bpb"] for p in curve if "heldout_bpb" in p]
    assert evals and evals[-1]["code"] < evals[0]["code"]
    assert summary["steps"] == 40 and summary["tokens"] == 40 * 8 * 64
    assert all(0 < v < 8 for v in summary["heldout_bits_per_byte"].values())


def test_smoke_folder_is_a_complete_checkpoint(smoke):
    out, _ = smoke
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "corpus_manifest.json",
        "heldout_sample.json",
        "loss_curve.json",
        "train_summary.json",
    ):
        assert (out / name).is_file(), name
    model = MoELM.from_pretrained(out)
    tok = load_tokenizer(out)
    ids = torch.tensor([tok.encode("def main():\n    return 0\n").ids])
    assert model(ids).logits.shape == (1, ids.shape[1], tok.get_vocab_size())
    assert json.loads((out / "corpus_manifest.json").read_text())["smoke_slice"] is True


def test_resume_continues_the_same_run(smoke, tmp_path):
    """Stop after step 7 of the 40-step schedule, resume to 40: the same weights as one straight run."""
    out, _ = smoke
    run(tmp_path, "--stop-after", "7")
    assert json.loads((tmp_path / "train_summary.json").read_text())["steps"] == 7
    run(tmp_path, "--resume")
    straight, resumed = MoELM.from_pretrained(out), MoELM.from_pretrained(tmp_path)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=name)


def test_dense_and_unbalanced_baselines_are_configurable():
    from moe_core.lm.train import model_config, parse_args

    moe = model_config(parse_args(["--out", "x"]))
    active = model_config(parse_args(["--out", "x", "--dense", "active"]))
    total = model_config(parse_args(["--out", "x", "--dense", "total"]))
    assert (active.num_local_experts, active.num_experts_per_tok) == (1, 1)
    assert active.intermediate_size == moe.num_experts_per_tok * moe.intermediate_size
    assert total.intermediate_size == moe.num_local_experts * moe.intermediate_size
    assert model_config(parse_args(["--out", "x", "--aux-coef", "0"])).router_aux_loss_coef == 0


def test_cli_is_registered():
    done = subprocess.run(
        [sys.executable, "-m", "moe_core", "train-lm", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "--smoke" in done.stdout and "--resume" in done.stdout
