"""The user's path end to end, through the CLI only, each step reading only what the previous one
wrote: `toyworld` → `prepare` → `train` (stages 1 and 2, reading the prepared shards) →
`export-hf` → transformers loads the export and generates → `ladder-jax eval` on the export, and
on the stage's `final/` itself (a checkpoint is enough on its own: same predictions).

transformers' `AutoProcessor` for Qwen2.5-VL needs torchvision for its video processor, which
cannot be installed beside this machine's torch (ENV_NOTES.md); where torchvision is missing the
test loads the folder's image processor and tokenizer directly (the two parts AutoProcessor
would combine for an image prompt), from the same files."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.xla_env import xla_flags

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), XLA_FLAGS=xla_flags(1),
               JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-m", "ladder_jax.cli", *map(str, args)], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"ladder-jax {args[0]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done.stdout


def _stage(name):
    return [f"--config.stages.{name}.{k}={v}" for k, v in
            dict(steps=2, batch_size=4, log_every=1, checkpoint_every=2, progress=False, tensorboard=False).items()]


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("user_path")
    world, prepared, run, export = tmp / "world", tmp / "prepared", tmp / "run", tmp / "export"
    cli("toyworld", "--out", world, "--scenes", 4, "--size", 112, "--views", 2, "--video-frames", 4,
        "--eval-fraction", 0.25, "--workers", 1)
    cli("prepare", "--data", world, "--out", prepared, "--shards", 2, "--workers", 1)
    out = cli("train", "--config", ROOT / "configs" / "toy_demo.py", f"--config.workdir={run}",
              f"--config.data.root={prepared}", "--config.model.preset=tiny", "--config.order=('stage1', 'stage2')",
              *_stage("stage1"), *_stage("stage2"))
    cli("export-hf", run / "stage2" / "final", export)
    return dict(world=world, prepared=prepared, run=run, export=export, train_out=out)


def test_training_read_the_prepared_shards_and_saved_self_contained_finals(path):
    info = json.loads((path["prepared"] / "dataset_info.json").read_text())
    assert info["frame_shards"] and info["num_frames"] < info["image_uses"]  # shared frames stored once
    lines = [json.loads(line) for line in path["train_out"].splitlines() if line.startswith("{")]
    assert [(o["stage"], o["status"]) for o in lines] == [("stage1", "trained"), ("stage2", "trained")]
    for stage in ("stage1", "stage2"):
        final = path["run"] / stage / "final"
        for name in ("model_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                     "preprocessor_config.json", "video_preprocessor_config.json"):
            assert (final / name).is_file(), (stage, name)
    trained = path["run"] / "tokenizer"  # the trained tokenizer, saved once for every stage and restart
    assert (trained / "tokenizer.json").read_bytes() == (path["run"] / "stage2" / "final" / "tokenizer.json").read_bytes()


def test_transformers_loads_the_export_and_generates(path):
    import torch
    import transformers

    folder = path["export"]
    config = json.loads((folder / "config.json").read_text())
    assert config["rope_scaling"]["mrope_section"] == config["text_config"]["rope_parameters"]["mrope_section"]
    try:
        import torchvision  # noqa: F401

        processor = transformers.AutoProcessor.from_pretrained(folder)
        tokenizer, image_processor = processor.tokenizer, processor.image_processor
    except ImportError:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        image_processor = transformers.Qwen2VLImageProcessorPil.from_pretrained(folder)
    model = transformers.Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=torch.float32).eval()
    from PIL import Image

    image = Image.open(next((path["world"] / "images").rglob("*.*")))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Where is the chair?"}]}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    vision = image_processor(images=[image], return_tensors="pt")
    pads = int(vision["image_grid_thw"].prod()) // image_processor.merge_size ** 2
    ids = tokenizer(text.replace("<|image_pad|>", "<|image_pad|>" * pads), return_tensors="pt")
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    inputs = dict(ids, **vision, mm_token_type_ids=(ids["input_ids"] == image_pad).long())
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=6, do_sample=False)
    new = out[0, ids["input_ids"].shape[1]:]
    assert 0 < len(new) <= 6 and isinstance(tokenizer.decode(new), str)

    from ladder_jax import VisionLanguageModel  # and our model gives transformers' logits on that input

    ours = VisionLanguageModel.from_pretrained(folder)
    with torch.no_grad():
        theirs = model(**inputs).logits.numpy()
    np.testing.assert_allclose(ours(**{k: v.numpy() for k, v in inputs.items()}), theirs, atol=1e-4, rtol=0)


def test_eval_reads_the_export_and_the_final_alike(path, tmp_path):
    common = ["--benchmark", "toyworld", "--data", path["world"] / "eval", "--limit", 3, "--batch-size", 3,
              "--max-new-tokens", 8]
    cli("eval", "--model", path["export"], "--out", tmp_path / "export_eval", *common)
    cli("eval", "--model", path["run"] / "stage2" / "final", "--out", tmp_path / "final_eval", *common)

    def predictions(folder):
        rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
        assert len(rows) == 3
        return [{k: v for k, v in row.items() if "time" not in k} for row in rows]

    assert predictions(tmp_path / "export_eval") == predictions(tmp_path / "final_eval")
    cli("eval", "--model", path["export"], "--out", tmp_path / "bf16_eval", "--dtype", "bfloat16", *common)
    assert len(predictions(tmp_path / "bf16_eval")) == 3
