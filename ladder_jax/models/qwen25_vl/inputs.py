"""The batch contract: the arrays the model takes, their ranks, and the label id that carries no loss.

Everything that builds or reads a batch (the processor, the data pipeline, the SFT and GRPO steps,
the prompt batcher, the transformers check) takes these names from here.

Per sample, batch leading, every key present (vision sizes may be 0):
  input_ids, attention_mask int32 (B, L); labels int32 (B, L), IGNORE_INDEX where there is no loss;
  pixel_values float32 (B, P, patch_dim), image_grid_thw int32 (B, K, 3) (zero rows pad);
  pixel_values_videos float32 (B, Pv, patch_dim), video_grid_thw int32 (B, Kv, 3),
  second_per_grid_ts float32 (B, Kv).
A processor returns the same names in its flat layout (all images of a batch in one array;
`batching.py` converts), plus mm_token_type_ids.
"""

IGNORE_INDEX = -100  # torch's cross-entropy default, so labels read the same in transformers

# What the model's jitted core takes: name -> rank.
MODEL_KEYS = {"input_ids": 2, "attention_mask": 2, "pixel_values": 3, "image_grid_thw": 3,
              "pixel_values_videos": 3, "video_grid_thw": 3, "second_per_grid_ts": 2}
# A training batch: the model's inputs and the labels.
TRAIN_KEYS = MODEL_KEYS | {"labels": 2}
# The text arrays; prompt batches pad them on the left so every prompt ends at the last index.
TEXT_KEYS = ("input_ids", "attention_mask", "labels")
VISION_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts")
# What transformers' Qwen2.5-VL takes from a processor: transformers 5 places vision tokens in
# M-RoPE by mm_token_type_ids; without them it gives image tokens text positions (logits then
# differ by ~1e-2 on random weights, by whole units trained).
PROCESSOR_KEYS = (*MODEL_KEYS, "mm_token_type_ids")
