"""Config files, typed overrides, the `train` verb's argument handling, and every bad-config error
(each raised before any compute, naming the field to change)."""

import argparse
from pathlib import Path

import pytest

from ladder_jax import config_files
from ladder_jax.train import cli, curriculum, stages
from ladder_jax.train.stages import CurriculumConfigError, grpo_stage, sft_stage

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# The hardware each size ships on (configs/spatialladder_reference.py SIZES): 7B needs 32 v5e chips.
SHIPPED = {"3b": ("gpu-8xh100", "tpu-v5p-32", "tpu-v5e-16"), "7b": ("gpu-8xh100", "tpu-v5p-32", "tpu-v5e-32")}
SIZE_VARIANTS = [(size, v) for size, hardware in SHIPPED.items() for h in hardware for v in (h, f"{h}-grpo16")]
# The reference configs enable stage 3; without GRPO they are checked with it switched off.


def toy(*overrides):
    return config_files.load(CONFIGS / "toy_demo.py", list(overrides))


@pytest.mark.parametrize("size,variant", SIZE_VARIANTS)
def test_reference_configs_check_on_their_hardware(size, variant):
    cfg = config_files.load(f"{CONFIGS}/qwen25vl_{size}_spatialladder.py:{variant}")
    stages.check_static(cfg)
    devices, hosts = {"gpu-8xh100": (8, 1), "tpu-v5p-32": (16, 4), "tpu-v5e-16": (16, 4),
                      "tpu-v5e-32": (32, 8)}[variant.removesuffix("-grpo16")]
    data, fsdp, tensor = stages.check_devices(cfg, devices, hosts)
    assert data * fsdp * tensor == devices
    s = cfg.stages
    assert (s.stage1.learning_rate, s.stage1.warmup_ratio, s.stage1.batch_size) == (1e-5, 0.1, 16)
    assert (s.stage3.learning_rate, s.stage3.grpo.group_size, s.stage3.grpo.beta, s.stage3.grpo.clip_eps,
            s.stage3.grpo.temperature, s.stage3.grpo.max_new_tokens) == (1e-6, 4, 0.01, 0.2, 1.0, 1024)
    # The reference's GRPO: 1 prompt x G 4 per update (16 with -grpo16), 2,600 updates, linear decay
    # without warmup, top-k 50; its SFT loss: whole sequence, each sample's mean, then the batch mean
    assert (s.stage3.batch_size, s.stage3.steps) == (16 if variant.endswith("-grpo16") else 1, 2600)
    assert (s.stage3.decay, s.stage3.warmup_ratio, s.stage3.grpo.top_k) == ("linear", 0.0, 50)
    for name in ("stage1", "stage2", "cold_start"):
        assert (s[name].answer_only_loss, s[name].loss_average, s[name].label_video_pads) == (False, "sample", False)
    assert (cfg.model.dtype, cfg.model.remat, cfg.model.preset) == ("bfloat16", "full", "tiny")
    assert cfg.model.init == "params" and size in cfg.model.path


def _reference_module():
    import importlib.util  # noqa: PLC0415
    spec = importlib.util.spec_from_file_location("spatialladder_reference_under_test", CONFIGS / "spatialladder_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("size", ["3b", "7b"])
def test_every_variant_spans_its_target_and_splits_the_reference_batch(size):
    """Every variant a size ships, with and without -grpo16: the mesh uses exactly the target's chips
    (no -1 left to resolve), every enabled stage's batch splits over the data axes, micro-batches and
    hosts, and the SFT stages keep the reference's 16 rows per step. Hardware a size does not ship on
    is refused with the reason."""
    from ladder_jax.plan import targets  # noqa: PLC0415

    reference = _reference_module()
    assert tuple(reference.SIZES[size]) == SHIPPED[size] and set(reference.SIZES[size]) <= set(reference.VARIANTS)
    for s, variant in reference.FITS:
        assert variant.removesuffix("-grpo16") in reference.SIZES[s]
    for hardware in sorted(set(reference.VARIANTS) - set(reference.SIZES[size])):
        for variant in (hardware, f"{hardware}-grpo16"):
            with pytest.raises(ValueError) as refused:
                config_files.load(f"{CONFIGS}/qwen25vl_{size}_spatialladder.py:{variant}")
            assert reference.NOT_SHIPPED[size, hardware] in str(refused.value)
    for hardware in reference.SIZES[size]:
        for variant in (hardware, f"{hardware}-grpo16"):
            cfg = config_files.load(f"{CONFIGS}/qwen25vl_{size}_spatialladder.py:{variant}")
            target = targets.get(cfg.target)
            assert target.name == hardware
            mesh = (cfg.mesh.data, cfg.mesh.fsdp, cfg.mesh.tensor)
            assert min(mesh) >= 1 and mesh[0] * mesh[1] * mesh[2] == target.chips, (variant, mesh)
            assert stages.check_devices(cfg, target.chips, target.hosts) == mesh
            assert all(cfg.stages[n].batch_size == 16 for n in ("stage1", "stage2", "cold_start"))
            # cold_start (steps=0 until a cold-start file is given) is checked enabled too
            enabled = config_files.load(f"{CONFIGS}/qwen25vl_{size}_spatialladder.py:{variant}",
                                        ["--config.stages.cold_start.steps=10"])
            stages.check_devices(enabled, target.chips, target.hosts)


def test_unknown_variant_names_the_choices():
    with pytest.raises(ValueError, match="tpu-v5p-32"):
        config_files.load(f"{CONFIGS}/qwen25vl_3b_spatialladder.py:v4-8")
    with pytest.raises(ValueError, match="quick"):
        config_files.load(f"{CONFIGS}/toy_demo.py:fast")


def test_stage_defaults_are_the_components_defaults():
    """One source of truth: a stage's settings are its components' fields, at their defaults."""
    from ladder_jax.data.pipeline import PipelineConfig
    from ladder_jax.train.grpo import GRPOConfig
    from ladder_jax.train.optim import OptimConfig

    plan = stages.plan(toy("--config.stages.stage1.steps=3", "--config.stages.stage3.steps=2"))
    s1, s3 = plan[0], plan[-1]
    assert s1.optim.total_steps == 3 and s1.loop.total_steps == 3 and s1.pipeline.global_batch_size == 8
    assert s1.loop.workdir.endswith("stage1") and s1.pipeline.stage == "stage1" and s3.grpo.max_new_tokens == 96
    reference = config_files.load(f"{CONFIGS}/qwen25vl_3b_spatialladder.py:gpu-8xh100")
    p = {x.name: x for x in stages.plan(reference)}
    assert p["stage2"].optim == OptimConfig(learning_rate=1e-5, total_steps=p["stage2"].steps, warmup_ratio=0.1)
    assert p["stage3"].grpo == GRPOConfig() and p["stage3"].optim.learning_rate == 1e-6
    assert p["stage2"].pipeline == PipelineConfig(stage="stage2", global_batch_size=16, num_epochs=None,
                                                  answer_only_loss=False)
    assert p["stage2"].step.loss_average == "sample"


def test_a_grpo_batch_smaller_than_the_data_axes_is_accepted_whole():
    one = ("--config.stages.stage3.batch_size=1", "--config.stages.stage3.steps=2")
    assert stages.check_devices(toy(*one), 8, 1) == (8, 1, 1)
    assert stages.check_devices(toy(*one, "--config.mesh.data=1", "--config.mesh.fsdp=8"), 8, 4) == (1, 8, 1)
    with pytest.raises(CurriculumConfigError, match="grpo.micro_batches=2 must divide batch_size=3"):
        stages.check_devices(toy("--config.stages.stage3.batch_size=3", "--config.stages.stage3.steps=2",
                                 "--config.stages.stage3.grpo.micro_batches=2"), 8, 1)
    with pytest.raises(CurriculumConfigError, match="stage3.batch_size=12"):  # more than the axes: must divide
        stages.check_devices(toy("--config.stages.stage3.batch_size=12", "--config.stages.stage3.steps=2"), 8, 1)


def test_overrides_of_a_linked_field_reach_every_stage():
    cfg = toy("--config.demo.size=224", "--config.demo.video_frames=8", "--config.stages.stage2.max_pixels=60000",
              "--config.stages.stage1.num_frames=2")
    s = cfg.stages
    assert (s.stage1.min_pixels, s.stage3.max_pixels, s.cold_start.video_max_pixels) == (224 ** 2, 224 ** 2, 112 ** 2)
    assert s.stage2.max_pixels == 60000 and s.stage1.max_pixels == 224 ** 2 and s.stage2.min_pixels == 224 ** 2
    assert (s.stage1.num_frames, s.stage2.num_frames, s.stage3.num_frames) == (2, 8, 8)


def test_overrides_keep_types():
    cfg = toy("--config.stages.stage1.learning_rate=3", "--config.stages.stage2.steps=7",
              "--config.stages.stage1.freeze_vision=true", "--config.order=['stage1', 'stage2']",
              "--config.stages.stage1.buckets.lengths=[64, 128]", "--config.workdir=/tmp/x")
    s = cfg.stages
    assert s.stage1.learning_rate == 3.0 and isinstance(s.stage1.learning_rate, float)
    assert s.stage2.steps == 7 and s.stage1.freeze_vision is True
    assert cfg.order == ("stage1", "stage2") and s.stage1.buckets.lengths == (64, 128) and cfg.workdir == "/tmp/x"


def test_unknown_override_key_suggests_the_near_name():
    with pytest.raises(config_files.ConfigFileError, match="did you mean config.stages.stage1.learning_rate"):
        toy("--config.stages.stage1.learning_rat=1e-3")


def test_unknown_stage_setting_in_a_config_file():
    with pytest.raises(CurriculumConfigError, match="unknown stage setting 'lr'"):
        sft_stage(lr=1e-3)
    cfg = toy()
    cfg.stages.stage1.unlock()
    cfg.stages.stage1.lr = 1e-3
    with pytest.raises(CurriculumConfigError, match=r"config.stages.stage1: .*\['lr'\]"):
        stages.check_static(cfg)


@pytest.mark.parametrize("overrides, message", [
    (["--config.order=['stage1', 'stage9']"], "unknown stage"),
    (["--config.order=['stage1', 'stage1']"], "lists a stage twice"),
    (["--config.model.preset=13b"], "unknown preset '13b'"),
    (["--config.model.init=hub"], "model.init must be one of"),
    (["--config.model.init=hf"], "needs config.model.path"),
    (["--config.tokenizer.source=model"], "tokenizer.source='train'"),
    (["--config.stages.stage1.steps=-1"], "stages.stage1: steps must be >= 0"),
    (["--config.stages.stage2.init=stage1"], "init must be 'previous' or 'model'"),
    (["--config.distributed=slurm"], "distributed must be 'none' or 'auto'"),
    (["--config.workdir="], "workdir is empty"),
    (["--config.stages.stage1.max_grad_norm=-1."], "stage1: max_grad_norm must be > 0"),
    (["--config.stages.stage2.weight_decay=-0.1"], "stage2: weight_decay must be >= 0"),
    (["--config.stages.stage2.end_lr_ratio=5."], r"end_lr_ratio \(final lr / peak\) must be in \[0, 1\]"),
    (["--config.stages.stage1.checkpoint_every=0"], "stage1: log_every, checkpoint_every"),
    (["--config.stages.stage2.max_pixels=0"], "stage2: need 0 < min_pixels <= max_pixels"),
    (["--config.stages.stage1.micro_batches=0"], "stage1: micro_batches must be >= 1"),
    (["--config.stages.cold_start.learning_rate=0."], "cold_start: learning_rate must be > 0"),
    (["--config.model.dtype=float13"], "config.model: dtype must be one of"),
    (["--config.model.init=params", "--config.model.path=x", "--config.model.param_dtype=int8"],
     "config.model: param_dtype must be one of"),
])
def test_bad_static_settings(overrides, message):
    with pytest.raises(CurriculumConfigError, match=message):
        stages.check_static(toy(*overrides))


def test_stage_listed_in_order_but_missing():
    cfg = toy()
    del cfg.stages["cold_start"]
    with pytest.raises(CurriculumConfigError, match="config.stages has no entry for them"):
        stages.check_static(cfg)


@pytest.mark.parametrize("field, value, message", [
    ("group_size", 1, "group_size must be >= 2"),
    ("beta", -0.1, "beta must be >= 0"),
    ("clip_eps", 1.5, r"clip_eps must be in \(0, 1\)"),
    ("temperature", 0.0, "temperature must be > 0"),
    ("top_p", 0.0, "need 0 < top_p <= 1"),
    ("max_new_tokens", 0, "max_new_tokens must be >= 1"),
    ("kl", "k9", "kl must be"),
])
def test_grpo_settings_out_of_range(field, value, message):
    cfg = toy("--config.stages.stage3.steps=5")
    cfg.stages.stage3.grpo[field] = value
    with pytest.raises(CurriculumConfigError, match=f"stage3.grpo: {message}"):
        stages.check_static(cfg)


@pytest.mark.parametrize("mesh, devices, message", [
    ((3, 1, 1), 8, "does not divide the 8 devices"),
    ((-1, 3, 1), 8, "does not divide the 8 devices"),
    ((-1, -1, 1), 8, "at most one -1"),
])
def test_mesh_must_divide_the_devices(mesh, devices, message):
    cfg = toy(*(f"--config.mesh.{a}={v}" for a, v in zip(("data", "fsdp", "tensor"), mesh)))
    with pytest.raises(CurriculumConfigError, match=message):
        stages.check_devices(cfg, devices, 1)


def test_batch_must_divide_over_the_data_axes():
    assert stages.check_devices(toy("--config.mesh.tensor=2"), 8, 1) == (4, 1, 2)
    with pytest.raises(CurriculumConfigError, match="stage2.batch_size=6 .* data x fsdp = 4.*multiple of 4"):
        stages.check_devices(toy("--config.stages.stage2.batch_size=6", "--config.mesh.fsdp=2",
                                 "--config.mesh.tensor=2"), 8, 1)
    with pytest.raises(CurriculumConfigError, match="micro_batches=2 .*multiple of 16"):
        stages.check_devices(toy("--config.stages.stage1.micro_batches=2"), 8, 1)
    stages.check_devices(toy("--config.stages.stage1.batch_size=6", "--config.stages.stage1.steps=0",
                             "--config.mesh.data=2"), 2, 1)  # a stage that does not run is not checked


def test_stage_without_data():
    with pytest.raises(CurriculumConfigError, match="stages.stage1 has no data.*grounding.*stage1.steps=0"):
        stages.check_data(toy(), {"spatial": 10, "cold_start": 2})
    stages.check_data(toy("--config.stages.stage1.steps=0"), {"spatial": 10, "cold_start": 2})


def test_the_resolved_config_is_written_and_reloads(tmp_path):
    from ladder_jax.train.curriculum import record_config

    cfg = toy(f"--config.workdir={tmp_path}", "--config.demo.size=224", "--config.order=('stage1', 'stage2')")
    record_config(cfg, tmp_path / "config.json")
    again = config_files.load(tmp_path / "config.json", ["--config.stages.stage1.steps=3"])
    assert again.stages.stage2.min_pixels == 224 ** 2 and again.order == ("stage1", "stage2")
    assert again.stages.stage1.buckets.lengths == (128, 256, 512) and again.stages.stage1.steps == 3
    record_config(config_files.load(tmp_path / "config.json"), tmp_path / "config.json")  # the same run: fine
    with pytest.raises(CurriculumConfigError, match=r"another config \(differs in config.stages.stage1.steps\)"):
        record_config(again, tmp_path / "config.json")


def test_run_fails_before_compute(tmp_path):
    with pytest.raises(CurriculumConfigError, match="batch_size=5"):
        curriculum.run(toy(f"--config.workdir={tmp_path}", "--config.stages.stage1.batch_size=5"))
    with pytest.raises(CurriculumConfigError, match="data.root=.* is not a folder"):
        curriculum.run(toy(f"--config.workdir={tmp_path}", f"--config.data.root={tmp_path / 'none'}"))
    assert list(tmp_path.iterdir()) == []


def _parser():
    parser = argparse.ArgumentParser(prog="ladder-jax train")
    cli.configure("train", parser)
    return parser


def test_cli_collects_overrides_and_process_flags(capsys):
    args = _parser().parse_args(["--config", str(CONFIGS / "toy_demo.py"), "--config.stages.stage1.steps=3",
                                 "--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "1",
                                 "--dry-run", "--skip-paths", "--no-compile"])  # the plan: tests/train/test_plan.py
    assert args.overrides == ["--config.stages.stage1.steps=3"]
    assert (args.coordinator, args.num_processes, args.process_id) == ("127.0.0.1:1234", 2, 1)
    assert cli.main("train", args) == 0
    assert "steps: 3" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _parser().parse_args(["--config", "x.py", "--bogus"])


def test_cli_reports_a_bad_config(capsys):
    args = _parser().parse_args(["--config", str(CONFIGS / "toy_demo.py"), "--config.stages.stage1.stepz=3"])
    assert cli.main("train", args) == 2
    assert "did you mean config.stages.stage1.steps" in capsys.readouterr().err
