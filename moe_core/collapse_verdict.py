"""One stated rule that turns a recorded training run into a verdict: collapsed, loss spike, uneven, balanced.

Why a rule over the whole run: the held-out load after the last step can look fine while the run
collapsed for most of its steps, or the loss blew up late in training (issue 18: a 2,000-step run
whose loss spiked above 5 was reported "did not collapse"). And a fixed bound does not scale: a top
share of 0.46 is almost four times fair with E = 16 but under twice fair with E = 4. So every
threshold below is a multiple of the fair share 1/E, and the verdict reads the same per-step
records the charts draw (`History.load [S][E]`, `History.loss [S]`).

Shape legend: S training steps, E experts. Steps are numbered from 1, as on the charts.
Pure Python (no torch): the lesson page, the CLI and the tests share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WINDOW = 10  # steps averaged before judging (one batch of 256 tokens alone is noisy)
DEAD_SHARE = 0.1  # × 1/E: an expert below a tenth of its fair share is dead (as moe_core.metrics)
COLLAPSE_SHARE = 4.0  # × 1/E: one expert with four times its fair share (MaxVio ≥ 3) ...
COLLAPSE_DEAD = 0.5  # ... or at least this fraction of the experts dead
BALANCED_SHARE = 1.5  # × 1/E: no expert above one and a half fair shares (MaxVio ≤ 0.5), none dead
STRETCH = 0.1  # a sustained stretch, and the final stretch, are this fraction of the run (≥ WINDOW)
SPIKE_FACTOR = 3.0  # one step's loss above 3× the lowest windowed loss so far ...
SPIKE_AFTER = 50  # ... after this step (the loss is still falling from its start before it)

VERDICTS = ("collapsed", "loss spike", "uneven", "balanced")  # in order of precedence
LOAD_STATES = ("collapsed", "uneven", "balanced")  # what the load alone did

RULE = f"""\
Every verdict is computed from the whole recorded run: each step's share of routed slots per
expert, averaged over the last {WINDOW} steps, and each step's task loss. With $E$ experts the fair
share is $1/E$; an expert is **dead** below a tenth of it.

- **Collapsed**: half or more of the experts dead, or one expert with at least $4/E$ (four times its
  fair share, MaxVio ≥ 3), for a stretch of at least a tenth of the run ({WINDOW} steps or more) or at
  the end of the run.
- **Loss spike**: after step {SPIKE_AFTER}, one step's task loss above {SPIKE_FACTOR:g} times the lowest
  {WINDOW}-step mean loss so far.
- **Balanced**: over the last tenth of the run, no expert above $1.5/E$ (MaxVio ≤ 0.5) and none dead,
  with no collapse and no spike anywhere.
- **Uneven**: none of the above.

A run that both collapsed and spiked is called collapsed, and the spike is reported with it."""


@dataclass(frozen=True)
class Verdict:
    """What a run did, by RULE. Steps are 1-based, as on the charts."""

    label: str  # one of VERDICTS
    load: str  # one of LOAD_STATES: the load alone, spikes aside
    collapse_spans: tuple[tuple[int, int], ...]  # (first, last) step of each sustained collapse
    collapsed_at_end: bool
    spikes: tuple[int, ...]  # every step whose loss spiked
    spike_peak: tuple[int, float] | None  # (step, loss) of the highest spike
    loss_floor: float | None  # the running minimum the highest spike is measured against
    end_top_share: float  # highest windowed top share over the final stretch
    end_dead: int  # most dead experts at one step of the final stretch
    num_experts: int
    stretch: int  # steps that make a sustained stretch (and the final stretch)

    @property
    def collapse_share(self) -> float:
        return COLLAPSE_SHARE / self.num_experts

    @property
    def balanced_share(self) -> float:
        return BALANCED_SHARE / self.num_experts

    def summary(self) -> str:
        """One sentence in numbers from the run, for the page and the CLI."""
        e = self.num_experts
        parts = []
        if self.collapse_spans:
            spans = ", ".join(f"{a}–{b}" for a, b in self.collapse_spans)
            parts.append(f"collapsed over steps {spans}")
        elif self.collapsed_at_end:
            parts.append("collapsed at the end")
        if self.spikes:
            step, loss = self.spike_peak
            parts.append(
                f"the loss spiked at {len(self.spikes)} step{'s' * (len(self.spikes) > 1)} "
                f"(highest {loss:.3g} at step {step}, {loss / self.loss_floor:.0f}× its running minimum "
                f"{self.loss_floor:.3g})"
            )
        parts.append(
            f"over the last {self.stretch} steps the top share reached {self.end_top_share:.2f} "
            f"(balanced ≤ 1.5/{e} = {self.balanced_share:.3f}) and "
            + (f"up to {self.end_dead} of {e} experts were dead" if self.end_dead else "none was dead")
        )
        return "; ".join(parts)


def windowed_loads(loads: Sequence[Sequence[float]], window: int = WINDOW) -> list[list[float]]:
    """[S][E] -> [S][E]: at step t, the mean share of steps t-window+1..t (fewer at the start)."""
    sums = [0.0] * (len(loads[0]) if loads else 0)
    out = []
    for t, row in enumerate(loads):
        sums = [s + v for s, v in zip(sums, row, strict=True)]
        if t >= window:
            sums = [s - v for s, v in zip(sums, loads[t - window], strict=True)]
        n = min(t + 1, window)
        out.append([s / n for s in sums])
    return out


def windowed_loss(losses: Sequence[float], window: int = WINDOW) -> list[float]:
    return [sum(losses[max(0, t - window + 1) : t + 1]) / min(t + 1, window) for t in range(len(losses))]


def _spans(flags: Sequence[bool], min_len: int) -> list[tuple[int, int]]:
    """1-based (first, last) of every run of True at least `min_len` long."""
    spans, start = [], None
    for t, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            if t - start >= min_len:
                spans.append((start + 1, t))
            start = None
    return spans


def judge(loads: Sequence[Sequence[float]], losses: Sequence[float]) -> Verdict:
    """The verdict of RULE for a run: `loads` [S][E] shares of each step's routed slots, `losses` [S].

    Raises ValueError (with what is wrong) for an empty run, ragged loads or mismatched lengths.
    """
    steps = len(loads)
    if steps == 0:
        raise ValueError("a verdict needs at least one recorded step")
    if len(losses) != steps:
        raise ValueError(f"loads has {steps} steps but losses has {len(losses)}")
    num_experts = len(loads[0])
    if num_experts < 1 or any(len(row) != num_experts for row in loads):
        raise ValueError("every step's loads must list the same number (≥ 1) of experts")
    fair = 1 / num_experts
    stretch = max(WINDOW, round(STRETCH * steps))
    shares = windowed_loads(loads)
    top = [max(row) for row in shares]
    dead = [sum(v < DEAD_SHARE * fair for v in row) for row in shares]
    collapsed = [
        tp >= COLLAPSE_SHARE * fair - 1e-12 or d >= COLLAPSE_DEAD * num_experts
        for tp, d in zip(top, dead, strict=True)
    ]
    spans = tuple(_spans(collapsed, stretch))

    floor, floors, spikes = float("inf"), [], []
    for t, (raw, smooth) in enumerate(zip(losses, windowed_loss(losses), strict=True)):
        floor = min(floor, smooth)
        floors.append(floor)
        if t + 1 > SPIKE_AFTER and raw > SPIKE_FACTOR * floor:
            spikes.append(t + 1)
    peak = max(spikes, key=lambda s: losses[s - 1] / floors[s - 1], default=None)

    final = range(max(0, steps - stretch), steps)
    end_top = max(top[t] for t in final)
    end_dead = max(dead[t] for t in final)
    if spans or collapsed[-1]:
        load = "collapsed"
    elif end_top <= BALANCED_SHARE * fair + 1e-12 and end_dead == 0:
        load = "balanced"
    else:
        load = "uneven"
    if load == "collapsed":
        label = "collapsed"
    elif spikes:
        label = "loss spike"
    else:
        label = load
    return Verdict(
        label=label,
        load=load,
        collapse_spans=spans,
        collapsed_at_end=collapsed[-1],
        spikes=tuple(spikes),
        spike_peak=(peak, losses[peak - 1]) if peak else None,
        loss_floor=floors[peak - 1] if peak else None,
        end_top_share=end_top,
        end_dead=end_dead,
        num_experts=num_experts,
        stretch=stretch,
    )
