"""notebooks/quickstart.ipynb runs top to bottom in a fresh kernel (tiny demo settings), and the
demo it runs is complete: every model scored, plots and report written, the exported folder
answering like us in transformers; started again on the same folder it trains nothing."""

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ladder_jax.demo.run import demo_config, run
from ladder_jax.train.stages import CurriculumConfigError
from tests.xla_env import xla_flags

ROOT = Path(__file__).resolve().parents[2]
TINY = ("--config.demo.scenes=16 --config.demo.vision_pretrain.steps=2 --config.stages.stage1.steps=2 --config.stages.stage2.steps=2 "
        "--config.stages.cold_start.steps=1 --config.stages.stage3.steps=1 --config.demo.grounding_items=8 "
        "--config.demo.spatial_items=8 --config.demo.hf_check_items=4 --config.stages.stage3.grpo.max_new_tokens=16")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    out = tmp_path_factory.mktemp("quickstart") / "demo"
    mp = pytest.MonkeyPatch()
    mp.setenv("LADDER_JAX_DEMO_OUT", str(out))
    mp.setenv("LADDER_JAX_DEMO_OVERRIDES", TINY)
    mp.setenv("XLA_FLAGS", xla_flags(1))  # one device, as in a Colab runtime (no 8-way partitioning to compile)
    try:
        nb = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
        NotebookClient(nb, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        mp.undo()
    return nb, out


def _text(cell) -> str:
    return "".join(o.get("text", "") + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


def test_every_cell_ran_without_error(executed):
    nb, _ = executed
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs)  # plots and the room are shown
    assert "A:" in _text(code[-2]) and "model.safetensors" in _text(code[-1])


def test_the_demo_report_is_complete(executed):
    _, out = executed
    report = json.loads((out / "report.json").read_text())
    assert list(report["models"]) == ["untrained", "stage1", "stage2", "cold_start", "stage3", "stage3_only"]
    for scores in report["models"].values():
        assert scores["grounding"]["items"] == 8 and scores["direct"]["items"] == 8
        assert 0 <= scores["reasoning"]["reward"] <= 2
    assert report["hf_export"]["check"]["status"] == "agree", report["hf_export"]["check"]
    assert {t["steps"] for t in report["training"].values()} <= {1, 2}
    for name in report["plots"].values():
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "| stage3_only |" in (out / "report.md").read_text()
    assert (out / "hf_model" / "model.safetensors").exists() and (out / "exported" / "tokenizer.json").exists()


def test_a_second_run_reuses_everything(executed):
    _, out = executed
    before = json.loads((out / "timings.json").read_text())
    report = run(demo_config(out, True, TINY.split()), out)
    after = json.loads((out / "timings.json").read_text())
    assert {k: v for k, v in after.items() if k.startswith(("train", "eval", "data"))} == \
        {k: v for k, v in before.items() if k.startswith(("train", "eval", "data"))}
    assert report["hf_export"]["check"]["status"] == "agree"


def test_another_config_for_the_same_folder_is_refused(executed):
    _, out = executed
    with pytest.raises(CurriculumConfigError, match=r"another config \(differs in config.demo.scenes\)"):
        run(demo_config(out, True, TINY.replace("scenes=16", "scenes=17").split()), out)
