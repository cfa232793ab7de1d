"""What a curriculum stage is built from: the release records, the processor, the starting
parameters and the stage's batch iterator."""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import jax

from ladder_jax.data import spld
from ladder_jax.config_files import build
from ladder_jax.data import pipeline
from ladder_jax.data.pipeline import Pipeline
from ladder_jax.data.processor import Processor
from ladder_jax.data.shards import INFO_FILE, ShardSource
from ladder_jax.atomic_output import build_beside
from ladder_jax.data.tokenizer import default_corpus, train_tokenizer
from ladder_jax.models.qwen25_vl.api import VisionLanguageModel, init_state
from ladder_jax.models.qwen25_vl.checkpoint import load_params, side_files_dir
from ladder_jax.models.qwen25_vl.config import for_tokenizer, preset
from ladder_jax.models.qwen25_vl.inputs import TRAIN_KEYS
from ladder_jax.paths import as_path, is_remote
from ladder_jax.train.stages import CurriculumConfigError


def read_records(cfg) -> tuple[list, Path, dict[str, int]]:
    """(records, image root, record count per kind) of the data at config.data.root: a release
    folder (JSONL + images) or a `ladder-jax prepare` output, whose image root is the prepared
    folder itself (its frames are stored in the shards; `stage_batches` reads them from there).
    In an object store (gs://, ...) the data must be a prepared set."""
    root = as_path(cfg.data.root) if cfg.data.root else None
    if root is not None and is_prepared(root):
        records = [r for r in ShardSource.from_dir(root).records() if r is not None]
        return records, root, dict(collections.Counter(r.kind for r in records))
    if root is not None and is_remote(root):
        raise CurriculumConfigError(f"config.data.root={cfg.data.root!r} holds no dataset_info.json: a data set in "
                                    "an object store must be a `ladder-jax prepare` output (run prepare, copy its "
                                    "folder there), or use a local release folder")
    if root is None or not root.is_dir():
        raise CurriculumConfigError(f"config.data.root={cfg.data.root!r} is not a folder; point it at a "
                                    f"release-layout data set (e.g. `ladder-jax toyworld` output) or a "
                                    f"`ladder-jax prepare` output")
    root = Path(root)
    image_root = Path(cfg.data.image_root) if cfg.data.image_root else spld.default_image_root(root)
    records, _ = spld.read_release(root, image_root=image_root)
    return records, image_root, dict(collections.Counter(r.kind for r in records))


def is_prepared(folder) -> bool:
    """A `ladder-jax prepare` output (record and frame shards listed in dataset_info.json)."""
    return (as_path(folder) / INFO_FILE).is_file()


def _record_texts(records) -> list[str]:
    texts = []
    for r in records:
        texts += [r.question, *(r.options or ()), r.answer or "", r.solution or "", *(b.label for b in r.boxes)]
    return texts


TOKENIZER_DIR = "tokenizer"


def build_processor(cfg, records) -> Processor:
    """The model folder's processor, or (tokenizer.source="train") a demo BPE trained on the stage
    prompts and the data's text. A trained one is saved once, in WORKDIR/tokenizer, and read from
    there when the run starts again (training is deterministic, so every process of the first start
    builds the same one; process 0 saves it)."""
    if cfg.tokenizer.source == "train":
        saved = as_path(cfg.workdir) / TOKENIZER_DIR
        if (saved / "tokenizer_config.json").is_file():
            return Processor.from_pretrained(str(saved))
        processor = Processor(train_tokenizer(default_corpus() + _record_texts(records), cfg.tokenizer.vocab_size))
        if jax.process_index() == 0:
            if is_remote(saved):  # written locally, then copied up (tokenizer_config.json last: it marks completion)
                with tempfile.TemporaryDirectory() as local:
                    processor.save_pretrained(local)
                    saved.mkdir(parents=True, exist_ok=True)
                    for file in sorted(Path(local).iterdir(), key=lambda f: f.name == "tokenizer_config.json"):
                        as_path(file).copy(saved / file.name, overwrite=True)
            else:
                with build_beside(saved, marker="tokenizer_config.json") as out:
                    processor.save_pretrained(str(out))
        return processor
    folder = side_files_dir(cfg.model.path) if cfg.model.init == "params" else as_path(cfg.model.path)
    if not (folder / "tokenizer_config.json").exists():
        raise CurriculumConfigError(f"{folder} has no tokenizer files; import the model with `ladder-jax import-hf` "
                                    f"(which keeps them) or set config.tokenizer.source='train'")
    return Processor.from_pretrained(str(folder))


def stage_processor(cfg, records, stage: str = "stage2") -> Processor:
    """`build_processor`'s processor with the pixel bounds and frame count `stage` trains at: what an
    evaluation of the curriculum's models asks them with."""
    return pipeline.stage_processor(build_processor(cfg, records), build(
        pipeline.PipelineConfig, cfg.stages[stage], stage=stage, global_batch_size=1))


def _execution(cfg) -> dict:
    m = cfg.model
    return dict(dtype=m.dtype, param_dtype=m.param_dtype, remat=m.remat, attention=m.attention)


def load_model_source(cfg, processor: Processor, mesh):
    """(model config, graphdef, state) of config.model: a random preset keyed to the tokenizer,
    an imported params checkpoint, or a Hugging Face folder."""
    m = cfg.model
    if m.init == "preset":
        model_cfg = for_tokenizer(preset(m.preset, **_execution(cfg)), processor.ids, len(processor.tokenizer))
        return (model_cfg, *init_state(model_cfg, mesh, seed=cfg.seed))
    if m.init == "params":
        return load_params(m.path, mesh, **_execution(cfg))
    execution = _execution(cfg)
    model = VisionLanguageModel.from_pretrained(m.path, mesh, dtype=execution.pop("dtype"),
                                                param_dtype=execution.pop("param_dtype"), **execution)
    return model.config, model.graphdef, model.state


def load_final(cfg, directory: Path, mesh):
    """(model config, graphdef, state) saved at the end of a stage."""
    return load_params(directory, mesh, **_execution(cfg))


class StageBatches:
    """A pipeline iterator narrowed to the keys the step takes (all keys when `keys` is None),
    keeping its checkpointable state."""

    def __init__(self, it, keys=tuple(TRAIN_KEYS)):
        self.it, self.keys = it, keys
        self.get_state, self.set_state = it.get_state, it.set_state

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = next(self.it)
        return batch if self.keys is None else {k: batch[k] for k in self.keys}


def stage_batches(plan, records, image_root: Path, processor: Processor, whole_batch: bool = False) -> StageBatches:
    """This process's rows of the stage's global batches (`plan.pipeline` repeats the data forever:
    the loop stops at the stage's step count). From a prepared set each process reads only its own
    items' records and frames out of the shards; with `whole_batch`, every process reads every row
    (a replicated batch)."""
    if is_prepared(image_root):
        source, data_root = ShardSource.from_dir(image_root), None
    else:
        source, data_root = records, image_root
    shard = (0, 1) if whole_batch else (jax.process_index(), jax.process_count())
    pipe = Pipeline(source, processor, plan.pipeline, data_root=data_root, shard_index=shard[0], shard_count=shard[1])
    return StageBatches(iter(pipe), None if plan.grpo else tuple(TRAIN_KEYS))
