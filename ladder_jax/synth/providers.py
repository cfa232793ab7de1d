"""Perception providers: what turns a photo into a scene (metric depth, detections with region
labels, masks). Ground truth reads a scene folder; the transformers adapters load a model from a
LOCAL folder the user supplies (`local_files_only`: nothing is downloaded, the hub is never asked).

A providers config is a JSON file:
    {"depth": {"path": "DIR"}, "detector": {"path": "DIR", "labels": ["chair", ...], "threshold": 0.3},
     "segmenter": {"path": "DIR"}, "fov_deg": 60}
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pathlib
from typing import Protocol

import numpy as np
from PIL import Image

from ladder_jax.data.scene_folder import Scene, load_scene


@dataclasses.dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # absolute pixel xyxy
    label: str  # the region label (an open-vocabulary detector's text query)
    score: float


class DepthProvider(Protocol):
    def depth(self, rgb: np.ndarray) -> np.ndarray: ...  # (H, W) metres, z-depth


class Detector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[Detection]: ...


class Segmenter(Protocol):
    def masks(self, rgb: np.ndarray, detections: list[Detection]) -> np.ndarray: ...  # (N, H, W) bool


class GroundTruth:
    """All three providers from a scene folder (the toy world's, or a user's RGB-D capture)."""

    def __init__(self, folder: str | pathlib.Path):
        self.scene = load_scene(folder)
        self.ids = sorted(i for i in self.scene.labels if (self.scene.instances == i).any())

    def depth(self, rgb: np.ndarray) -> np.ndarray:
        return self.scene.depth

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        out = []
        for i in self.ids:
            rows, cols = np.nonzero(self.scene.instances == i)
            out.append(Detection((cols.min(), rows.min(), cols.max(), rows.max()), self.scene.labels[i], 1.0))
        return out

    def masks(self, rgb: np.ndarray, detections: list[Detection]) -> np.ndarray:
        return np.stack([self.scene.instances == i for i in self.ids]) if self.ids else np.zeros((0, *rgb.shape[:2]), bool)


def perceive(name: str, rgb: np.ndarray, depth: DepthProvider, detector: Detector, segmenter: Segmenter,
             intrinsics: np.ndarray | None = None) -> Scene:
    """A scene from a photo; overlapping masks go to the higher-scoring detection."""
    dets = sorted(detector.detect(rgb), key=lambda d: -d.score)
    masks = segmenter.masks(rgb, dets) if dets else np.zeros((0, *rgb.shape[:2]), bool)
    instances = np.zeros(rgb.shape[:2], np.int32)
    taken = np.zeros(rgb.shape[:2], bool)
    for i, m in enumerate(masks, start=1):  # per detection, not per pixel
        instances[m & ~taken] = i
        taken |= m
    labels = {i: d.label for i, d in enumerate(dets, start=1)}
    return Scene(name, rgb, np.asarray(depth.depth(rgb), np.float32), instances, labels, intrinsics)


class TransformersDepth:
    """A metric depth model (e.g. Depth Anything V2 metric) through AutoModelForDepthEstimation.

    Relative-depth models are refused: rescaling their output by a guessed factor is the defect
    SPEC.md section 5 warns about.
    """

    def __init__(self, path: str | pathlib.Path, device: str = "cpu"):
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.processor = AutoImageProcessor.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForDepthEstimation.from_pretrained(path, local_files_only=True).to(device).eval()
        kind = getattr(self.model.config, "depth_estimation_type", None)
        if kind != "metric":
            raise ValueError(f"depth model {path}: config depth_estimation_type is {kind!r}; a metric model is required")
        self.device = device

    def depth(self, rgb: np.ndarray) -> np.ndarray:
        import torch

        inputs = self.processor(images=Image.fromarray(rgb), return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.model(**inputs)
        depth = self.processor.post_process_depth_estimation(out, target_sizes=[rgb.shape[:2]])[0]["predicted_depth"]
        return depth.float().cpu().numpy()


class OwlDetector:
    """Open-vocabulary detection (OWLv2): the text queries are the region labels."""

    def __init__(self, path: str | pathlib.Path, labels: list[str], threshold: float = 0.3, device: str = "cpu"):
        from transformers import Owlv2ForObjectDetection, Owlv2Processor

        if not labels:
            raise ValueError(f"detector {path}: 'labels' (the text queries) must not be empty")
        self.processor = Owlv2Processor.from_pretrained(path, local_files_only=True)
        self.model = Owlv2ForObjectDetection.from_pretrained(path, local_files_only=True).to(device).eval()
        self.labels, self.threshold, self.device = list(labels), threshold, device

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        import torch

        h, w = rgb.shape[:2]
        inputs = self.processor(text=[self.labels], images=Image.fromarray(rgb), return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.model(**inputs)
        side = max(h, w)  # OWLv2 pads to a square before resizing, so boxes are relative to it
        res = self.processor.post_process_grounded_object_detection(out, threshold=self.threshold, target_sizes=[(side, side)])[0]
        boxes = res["boxes"].cpu().numpy().clip(0, [w - 1, h - 1, w - 1, h - 1])
        return [Detection(tuple(map(float, b)), self.labels[int(l)], float(s))
                for b, l, s in zip(boxes, res["labels"].tolist(), res["scores"].tolist())]


class SamSegmenter:
    """Masks from SAM prompted with each detection's box."""

    def __init__(self, path: str | pathlib.Path, device: str = "cpu"):
        from transformers import SamModel, SamProcessor

        self.processor = SamProcessor.from_pretrained(path, local_files_only=True)
        self.model = SamModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.device = device

    def masks(self, rgb: np.ndarray, detections: list[Detection]) -> np.ndarray:
        import torch

        boxes = [[list(d.box) for d in detections]]
        inputs = self.processor(images=Image.fromarray(rgb), input_boxes=boxes, return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.model(**inputs, multimask_output=False)
        masks = self.processor.image_processor.post_process_masks(
            out.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())[0]
        return masks[:, 0].numpy().astype(bool)


def load_providers(config_path: str | pathlib.Path, device: str = "cpu"):
    """(depth, detector, segmenter, fov_deg) from a providers JSON config (see module docstring).

    Every model path must be a folder on disk: a name that is not would be looked up on the model
    hub and downloaded, which a config must never do implicitly.
    """
    path = pathlib.Path(config_path)
    try:
        cfg = json.loads(path.read_text())
        paths = {role: pathlib.Path(cfg[role]["path"]) for role in ("depth", "detector", "segmenter")}
        det = cfg["detector"]
        labels, threshold = det["labels"], float(det.get("threshold", 0.3))
    except OSError as e:
        raise ValueError(f"providers config {path}: cannot be read ({e.strerror}); give the path of a JSON file") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"providers config {path}: not valid JSON ({e})") from e
    except (KeyError, TypeError) as e:
        raise ValueError(f"providers config {path}: missing or malformed field {e}") from e
    for role, folder in paths.items():
        if not folder.is_dir():
            raise FileNotFoundError(f"providers config {path}: {role} path {folder} is not a folder on disk; "
                                    f"give a local model folder (nothing is downloaded)")
    if importlib.util.find_spec("torch") is None:
        raise RuntimeError(f"providers config {path}: the perception providers run PyTorch models in transformers, "
                           f"and torch is not installed; install it with pip install 'ladder-jax[pytorch]'")
    depth = TransformersDepth(paths["depth"], device)
    detector = OwlDetector(paths["detector"], labels, threshold, device)
    segmenter = SamSegmenter(paths["segmenter"], device)
    return depth, detector, segmenter, cfg.get("fov_deg")
