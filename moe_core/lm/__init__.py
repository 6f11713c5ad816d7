"""moe_core.lm — the course's real small MoE language model (DESIGN.md contract 6).

    model = MoELM.from_pretrained(SHIPPED)          # a Hugging Face Mixtral folder
    tok = load_tokenizer(SHIPPED)                   # byte-level BPE (tokenizers)
    out = model(torch.tensor([tok.encode(text).ids]))
    out.logits [B, T, V]; out.router_logits: one [B*T, E] per layer

`corpus` builds the training text (Python's own stdlib and docs), `tokenizer` trains the BPE,
`train` is `python -m moe_core train-lm`. Nothing here imports transformers.
"""

from pathlib import Path

from moe_core.lm.model import LMConfig, LMOutput, MoELM
from moe_core.lm.tokenizer import load_tokenizer

SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "lm"

__all__ = ["SHIPPED", "LMConfig", "LMOutput", "MoELM", "load_tokenizer"]
