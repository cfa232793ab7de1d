"""How evaluation decodes: the checkpoint's generation_config.json, as the reference evaluator's
`model.generate(..., temperature=0.01)` applies it (SPEC.md section 4).

The released SpatialLadder-3B (and Qwen2.5-VL-Instruct) config holds repetition_penalty 1.05 and
the end tokens 151645 and 151643; temperature 0.01 on its top-k 1 / top-p 0.001 sampling, or on
greedy decoding, picks the most likely token, so the reference decodes greedily with the penalty.
"greedy" (plain greedy, the model config's one end token, no penalty) is this project's earlier way.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from pathlib import Path

DECODINGS = ("reference", "greedy")
MAX_NEW_TOKENS = {True: 1024, False: 128}  # with / without thinking (SPEC.md section 4)


@dataclasses.dataclass(frozen=True)
class Decoding:
    eos_token_ids: tuple[int, ...]
    repetition_penalty: float = 1.0
    source: str = ""

    def to_json(self) -> dict:
        return {"eos_token_ids": list(self.eos_token_ids), "repetition_penalty": self.repetition_penalty,
                "source": self.source}


def decoding_for(model_dir: Path | None, config_eos: int, mode: str = "reference") -> Decoding:
    """The decoding of `mode` for the checkpoint in `model_dir`: "reference" reads its
    generation_config.json (end tokens and repetition penalty; missing keys: the model config's end
    token, no penalty); "greedy" ignores it. A malformed file is a ValueError naming it."""
    if mode not in DECODINGS:
        raise ValueError(f"decoding must be one of {DECODINGS}; got {mode!r}")
    path = Path(model_dir) / "generation_config.json" if model_dir else None
    if mode == "greedy" or path is None or not path.is_file():
        return Decoding((config_eos,), 1.0, "greedy" if mode == "greedy" else "no generation_config.json")
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not readable JSON ({e})") from None
    eos = d.get("eos_token_id", config_eos) if isinstance(d, dict) else None
    eos = [eos] if isinstance(eos, int) else eos
    if (not isinstance(eos, list) or not eos
            or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in eos)):
        raise ValueError(f"{path}: eos_token_id must be a token id or a non-empty list of them; got {eos!r}")
    penalty = d.get("repetition_penalty", 1.0)
    if (not isinstance(penalty, numbers.Real) or isinstance(penalty, bool) or not math.isfinite(penalty)
            or penalty <= 0):
        raise ValueError(f"{path}: repetition_penalty must be a finite number > 0; got {penalty!r}")
    return Decoding(tuple(dict.fromkeys(eos)), float(penalty), str(path))
