"""`ladder-jax plan`: a tiny config compiled for a v5e 2x2 TPU topology (needs libtpu, from the test
extra), an oversized batch refused with the knobs that help, the path without libtpu, and the checks
that need no compile."""

import subprocess
import sys
from pathlib import Path

import pytest

from ladder_jax import config_files
from ladder_jax.cli import main as cli_main
from ladder_jax.plan import checks, report, run, targets
from ladder_jax.train import stages

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TINY = HERE / "tiny_plan_config.py"


def tiny(target="tpu-v5e-4", *overrides):
    return config_files.load(f"{TINY}:{target}", list(overrides))


def test_tiny_config_compiles_for_a_v5e_topology():
    pytest.importorskip("libtpu")
    plan = run.build(tiny(), check_paths=False, log=lambda m: None)
    assert plan.compiled and not plan.problems and plan.devices == 4 and plan.mesh == (1, 4, 1)
    by_stage = {r.name: [p.name for p in r.programs] for r in plan.stages}
    assert by_stage == {"stage1": ["sft step"], "stage3": ["grpo prefill", "grpo decode", "grpo scoring", "grpo update"]}
    for r in plan.stages:
        for p in r.programs:
            assert not p.error and 0 < p.total < plan.target.hbm_bytes, p
    sft = plan.stages[0].programs[0]
    assert sft.collectives["all-gather"] > 0  # fsdp = 4: parameters are gathered
    assert sft.arguments > 0 and sft.temporaries > 0
    assert report.exit_code(plan) == 0
    text = report.render(plan)
    assert "OK: every stage fits tpu-v5e-4" in text and "grpo update" in text and "v5e:2x2" in text


def test_oversized_batch_is_refused_with_the_knobs(capsys):
    """gpu-8xh100 compiles on the 8 CPU devices of the test process; a 262k vocabulary over 64 rows of
    8k tokens (8 rows per device) needs far more than 90% of its 79.6 GiB per device for the logits alone
    (8 x 8192 x 262144 x 4 bytes = 64 GiB, once forward and once for their gradient)."""
    code = cli_main(["plan", "--config", f"{TINY}:gpu-8xh100", "--skip-paths", "--config.order=('stage1',)",
                     "--config.tokenizer.vocab_size=262144", "--config.stages.stage1.batch_size=64",
                     "--config.stages.stage1.buckets.lengths=(8192,)"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "DOES NOT FIT: stage1" in out and "config.stages.stage1.micro_batches=N" in out
    assert "loss_chunk" in out and "--config.target=" in out
    assert "compiled on 8 CPU devices" in out  # a GPU target's memory is an estimate


def test_fsdp_steps_keep_each_device_on_its_own_rows_without_splash():
    """With attention='xla' nothing but the decoder's batch constraint (`sharding.constrain_batch`)
    pins the batch to the data axes; without it XLA:CPU replicated the batch and sharded the model
    dimension instead, all-reducing activations (the 3B SFT step planned for gpu-8xh100 held 87 GiB
    per device instead of 25, and all-reduced 586 GiB a step instead of 14). Here the step's only
    all-reduce is its float32 gradients, once. Stage 2 and cold start with the same settings run one
    compiled step, and the plan says so."""
    import copy  # noqa: PLC0415
    import math  # noqa: PLC0415

    import jax  # noqa: PLC0415
    from ladder_jax.models.qwen25_vl.api import abstract_model  # noqa: PLC0415

    cfg = tiny("gpu-8xh100")
    cfg.stages.stage2, cfg.stages.cold_start = copy.deepcopy(cfg.stages.stage1), copy.deepcopy(cfg.stages.stage1)
    cfg.order = ("stage2", "cold_start")
    plan = run.build(cfg, check_paths=False, log=lambda m: None)
    stage2, cold_start = plan.stages
    step = stage2.programs[0]
    params = sum(math.prod(x.shape) for x in jax.tree.leaves(abstract_model(run.model_config(cfg)[0])[1]))
    assert plan.mesh == (1, 8, 1) and not step.error
    assert step.collectives["all-reduce"] <= 1.01 * 4 * params, (step.collectives, params)
    assert cold_start.programs == [step] and (stage2.same_as, cold_start.same_as) == ("", "stage2")
    assert "compiles as stage2 does" in report.render(plan)


def test_without_libtpu_it_says_how_to_install_and_still_checks():
    """libtpu hidden from the import system: no compile, the install line, and the mesh check still runs."""
    code = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'libtpu': raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "from ladder_jax.cli import main\n"
        f"sys.exit(main(['plan', '--config', '{TINY}:tpu-v5e-4', '--skip-paths', '--config.mesh.fsdp=3']))\n")
    env = {"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr
    assert 'pip install "ladder-jax[tpu]"' in done.stdout
    assert "mesh vs tpu-v5e-4 (4 devices, 1 hosts)" in done.stdout and "does not divide the 4 devices" in done.stdout


def test_checks_without_compiling(tmp_path):
    cfg = tiny("gpu-8xh100", "--config.model.attention=splash", "--config.model.init=params",
               "--config.model.path=gs://bucket/ckpt", f"--config.data.root={tmp_path / 'missing'}",
               "--config.stages.stage1.max_pixels=100000000")
    plans = stages.check_static(cfg)
    model, _ = run.model_config(cfg, "3b")
    found = checks.problems(cfg, plans, targets.get("gpu-8xh100"), 8, model, check_paths=True)
    text = "\n".join(found)
    assert "attention='splash' does not run on gpu" in text
    assert "config.data.root" in text and "config.model.path" not in text  # remote URLs are accepted
    assert "stage1.max_pixels=100000000" in text and "largest image bucket" in text
    assert not checks.problems(tiny("gpu-8xh100"), stages.check_static(tiny("gpu-8xh100")), targets.get("gpu-8xh100"),
                               8, run.model_config(tiny("gpu-8xh100"))[0], check_paths=False)


def test_an_argument_the_program_does_not_read_still_counts():
    """jit drops unread arguments from the executable (GRPO scoring reads the reference, not the
    policy passed beside it); the run still holds them, so the plan counts them."""
    import jax  # noqa: PLC0415
    from ladder_jax.plan import programs  # noqa: PLC0415

    used, unused = jax.ShapeDtypeStruct((256, 256), "float32"), jax.ShapeDtypeStruct((1024, 1024), "float32")
    program, compiled = programs.compile_program("f", lambda: jax.jit(lambda x, y: x * 2).trace(used, unused),
                                                 inputs=(used, unused))
    assert compiled.memory_analysis().argument_size_in_bytes < 4 * 1024 * 1024  # XLA's figure leaves y out
    assert program.arguments == 4 * (256 * 256 + 1024 * 1024)


def test_splash_needs_multiples_of_128():
    cfg = tiny("tpu-v5e-4", "--config.stages.stage3.grpo.max_new_tokens=100")
    found = checks.problems(cfg, stages.check_static(cfg), targets.get("tpu-v5e-4"), 4, run.model_config(cfg)[0], False)
    assert any("prompt + completion length 228" in p for p in found)


@pytest.mark.parametrize("size,variant", [(size, v) for size, v5e in (("3b", "tpu-v5e-16"), ("7b", "tpu-v5e-32"))
                                          for v in ("gpu-8xh100", "tpu-v5p-32", v5e, f"{v5e}-grpo16")])
def test_shipped_variants_name_their_target_and_pass_the_checks(size, variant):
    cfg = config_files.load(f"{ROOT}/configs/qwen25vl_{size}_spatialladder.py:{variant}")
    plan = run.build(cfg, check_paths=False, compile_programs=False)
    assert plan.target.name == variant.removesuffix("-grpo16") and not plan.problems
    assert plan.model_note == f"preset '{size}' ({cfg.model.path} is not here)"
    assert all(r.flops > 0 and r.tokens > 0 for r in plan.stages)
    assert [r.name for r in plan.stages] == ["stage1", "stage2", "stage3"] and plan.skipped == ["cold_start"]
    assert "cold_start: not planned (steps=0" in report.render(plan)


def test_train_dry_run_prints_the_plan(capsys):
    code = cli_main(["train", "--config", f"{TINY}:tpu-v5e-4", "--dry-run", "--no-compile", "--skip-paths"])
    out = capsys.readouterr().out
    assert code == 0 and "target tpu-v5e-4" in out and "not compiled: --no-compile" in out
