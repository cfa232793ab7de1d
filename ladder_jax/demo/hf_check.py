"""Export the trained model as a Hugging Face folder and check that PyTorch agrees with us.

The folder (safetensors, config, tokenizer, chat template, preprocessor config) is loaded by
`transformers` — model, tokenizer and our processor read back from the folder's own files — and
answers held-out questions greedily; the answers must equal ours token for token.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ladder_jax.data.processor import Processor
from ladder_jax.demo.evaluate import BATCH
from ladder_jax.eval import media as media_lib
from ladder_jax.eval import runner
from ladder_jax.eval.benchmarks import Item
from ladder_jax.generate import greedy_texts
from ladder_jax.models.qwen25_vl.inputs import PROCESSOR_KEYS


def export(model, processor: Processor, folder: Path) -> Path:
    """model.safetensors + config.json + generation_config.json + tokenizer and processor files."""
    model.save_pretrained(folder)
    processor.save_pretrained(str(folder))
    return folder


def compare_with_transformers(folder: Path, model, items: Sequence[Item], max_new_tokens: int) -> dict[str, Any]:
    """Greedy answers of `model` (ours) and of the folder loaded in transformers, item by item."""
    if importlib.util.find_spec("torch") is None:
        return {"status": "skipped: torch is not installed (pip install 'ladder-jax[pytorch]' to run this check)"}
    import torch  # noqa: PLC0415 (optional dependency)
    import transformers  # noqa: PLC0415

    processor = Processor.from_pretrained(str(folder))
    hf_model = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
    cfg = model.config
    encoded = [runner.encode(processor, item, media_lib.load(item.media)) for item in items]
    ours = []
    for start in range(0, len(encoded), BATCH):
        ours += greedy_texts(model, processor, encoded[start:start + BATCH], BATCH, max_new_tokens)
    rows = []
    for item, inputs, our_text in zip(items, encoded, ours):
        tensors = {k: torch.from_numpy(np.asarray(inputs[k])) for k in PROCESSOR_KEYS if k in inputs}
        with torch.no_grad():
            out = hf_model.generate(**tensors, max_new_tokens=max_new_tokens, do_sample=False,
                                    eos_token_id=cfg.eos_token_id, pad_token_id=cfg.pad_token_id)
        new = [t for t in out[0, inputs["input_ids"].shape[1]:].tolist() if t != cfg.eos_token_id]
        theirs = tokenizer.decode(new, skip_special_tokens=True)
        rows.append({"id": item.id, "ours": our_text, "transformers": theirs, "equal": our_text == theirs})
    agree = sum(r["equal"] for r in rows)
    return {"status": "agree" if agree == len(rows) else "differ", "agree": agree, "items": len(rows),
            "differences": [r for r in rows if not r["equal"]], "examples": rows[:3]}
