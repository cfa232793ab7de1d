"""A TFDS dataset over the prepared shards, in array_record format (TensorFlow is not needed).

The builder copies the records of `ladder-jax prepare` into TFDS's own layout, so TFDS tooling
(`tfds.data_source`, `tfds.builder_from_directory`, dataset cards) sees the same records; read it
back with `TfdsSource`. TFDS orders examples by a hash of their id, not in release order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from ladder_jax.data.schema import record_from_json, record_to_json
from ladder_jax.data.shards import ShardExample, ShardSource

_VERSION = "1.0.0"


def _features() -> tfds.features.FeaturesDict:
    text = tfds.features.Text
    return tfds.features.FeaturesDict(
        {
            "id": text(),
            "kind": text(),
            "data_type": text(),
            "question_type": text(),  # "" where the record has none
            "record": text(doc="the record as ladder_jax.data.schema.record_to_json, JSON-encoded"),
            "images": tfds.features.Sequence(tfds.features.Tensor(shape=(), dtype=np.object_)),
        }
    )


class LadderRecords(tfds.core.GeneratorBasedBuilder):
    """SpatialLadder-style records with their encoded images, one split: "train"."""

    VERSION = tfds.core.Version(_VERSION)
    RELEASE_NOTES = {_VERSION: "Records and embedded images from `ladder-jax prepare`."}
    # TFDS looks beside a packaged builder's source for checksums and metadata files, through
    # `importlib_resources`, which it does not declare as a dependency on Python >= 3.9. We
    # download nothing and keep no such files, so there is no code path to look in.
    code_path = None

    def __init__(self, *, shards_dir: Path | None = None, **kwargs):
        self._shards_dir = shards_dir
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(builder=self, description=__doc__.splitlines()[0], features=_features())

    def _split_generators(self, dl_manager):
        if self._shards_dir is None:
            raise ValueError("LadderRecords needs shards_dir (the output folder of `ladder-jax prepare`)")
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        source = ShardSource.from_dir(self._shards_dir)
        for i in range(len(source)):
            example = source[i]
            record = example.record
            yield record.id, {
                "id": record.id,
                "kind": record.kind,
                "data_type": record.data_type,
                "question_type": record.question_type or "",
                "record": json.dumps(record_to_json(record), ensure_ascii=False),
                "images": list(example.images),
            }


def build_tfds(shards_dir: Path, data_dir: Path) -> Path:
    """Build the TFDS dataset from prepared shards under `data_dir`; return the dataset folder."""
    builder = LadderRecords(shards_dir=Path(shards_dir), data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare()
    return Path(builder.data_dir)


class TfdsSource:
    """Random access to a built TFDS dataset folder; item i is a ShardExample, as in ShardSource."""

    def __init__(self, dataset_dir: Path, split: str = "train"):
        self._source = tfds.builder_from_directory(str(dataset_dir)).as_data_source()[split]

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> ShardExample:
        item = self._source[index]
        return ShardExample(record_from_json(json.loads(item["record"])), tuple(item["images"]))
