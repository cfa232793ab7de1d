"""transformers' Qwen2.5-VL as the reference: tiny random models and multimodal inputs."""

from __future__ import annotations

import numpy as np
import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from ladder_jax.models.qwen25_vl.config import ModelConfig, to_hf_dict


def hf_model(cfg: ModelConfig, seed: int = 0) -> Qwen2_5_VLForConditionalGeneration:
    torch.manual_seed(seed)
    hf = to_hf_dict(cfg)
    hf_cfg = Qwen2_5_VLConfig(**{k: v for k, v in hf.items() if k not in ("architectures", "model_type")})
    model = Qwen2_5_VLForConditionalGeneration(hf_cfg).eval()
    with torch.no_grad():  # random init leaves norms at 1 and biases at 0: perturb so they are tested
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name or "ln_q" in name:
                p.add_(0.1 * torch.randn_like(p))
    return model


def build_sample(cfg: ModelConfig, rng: np.random.Generator, pieces, pad_left: int = 0, pad_right: int = 0):
    """pieces: list of ("text", n) | ("image", (h, w)) | ("video", (t, h, w)) in patch units.

    Returns input_ids (1-D), mm types, image grids, video grids, and per-item patch counts."""
    ids, types, img, vid = [], [], [], []
    merge = cfg.vision.merge_unit
    for kind, arg in pieces:
        if kind == "text":
            ids += list(rng.integers(0, 400, size=arg)); types += [0] * arg
        else:
            grid = (1, *arg) if kind == "image" else arg
            n = int(np.prod(grid)) // merge
            tok = cfg.image_token_id if kind == "image" else cfg.video_token_id
            ids += [cfg.vision_start_token_id] + [tok] * n + [cfg.vision_end_token_id]
            types += [0] + [1 if kind == "image" else 2] * n + [0]
            (img if kind == "image" else vid).append(grid)
    pad = cfg.pad_token_id
    ids = [pad] * pad_left + ids + [pad] * pad_right
    types = [0] * pad_left + types + [0] * pad_right
    mask = [0] * pad_left + [1] * (len(ids) - pad_left - pad_right) + [0] * pad_right
    return np.array(ids), np.array(types), np.array(mask), img, vid


def batch_inputs(cfg: ModelConfig, samples, seed: int = 0):
    """Stacks build_sample outputs (same length) into processor-style arrays with random pixels."""
    rng = np.random.default_rng(seed)
    out = {"input_ids": np.stack([s[0] for s in samples]), "mm_token_type_ids": np.stack([s[1] for s in samples]),
           "attention_mask": np.stack([s[2] for s in samples])}
    for key, grid_key, grids in (("pixel_values", "image_grid_thw", [g for s in samples for g in s[3]]),
                                 ("pixel_values_videos", "video_grid_thw", [g for s in samples for g in s[4]])):
        if grids:
            n = sum(int(np.prod(g)) for g in grids)
            out[key] = rng.standard_normal((n, cfg.vision.patch_dim)).astype(np.float32)
            out[grid_key] = np.array(grids, dtype=np.int64)
    return out


def hf_logits(model, inputs) -> np.ndarray:
    with torch.no_grad():
        t = {k: torch.from_numpy(np.asarray(v)) for k, v in inputs.items()}
        return model(**t).logits.float().numpy()
