"""`python -m moe_core <command> ...` — each command lives in the module that owns it.

    collapse   train the Lesson 4 model and print load metrics   (moe_core.train)
    ep-demo    a real expert-parallel run over torch.distributed  (moe_core.parallel)
    train-lm   train the course's small MoE language model        (moe_core.lm.train)
    compare-lm gather same-budget train-lm runs into one file       (moe_core.lm.comparison)

A command module exposes `cli(argv: list[str]) -> int`; it is imported only when chosen, so
`--help` of one command never pays for another's imports.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "collapse": ("moe_core.train", "train the Lesson 4 model; print load metrics as JSON"),
    "ep-demo": ("moe_core.parallel", "expert-parallel MoE over torch.distributed; print traffic as JSON"),
    "train-lm": ("moe_core.lm.train", "train the small MoE language model on Python's stdlib and docs"),
    "compare-lm": ("moe_core.lm.comparison", "gather same-budget train-lm runs into one file (Lessons 1, 4)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m moe_core {" + ",".join(COMMANDS) + "} [options]\n", file=sys.stderr)
        for name, (_, summary) in COMMANDS.items():
            print(f"  {name:<10} {summary}", file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
