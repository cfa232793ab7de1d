"""Progress bars: library loops pass their iterables through untouched unless a command turned the
bars on; `import-hf` and `export-hf` show one over the tensors, `synth` one over the scenes."""

import argparse
import json


from ladder_jax import progress


def test_track_is_a_pass_through_unless_bars_are_on(capsys):
    items = [1, 2, 3]
    assert progress.track(items, "read") is items
    with progress.bars():
        assert list(progress.track(items, "read")) == items
        with progress.bars(False):
            assert progress.track(items, "read") is items
    assert progress.track(items, "read") is items
    assert "read: 100%" in capsys.readouterr().err


def _verb(verb, *argv):
    from ladder_jax.models.qwen25_vl import convert_cli  # noqa: PLC0415
    parser = argparse.ArgumentParser()
    convert_cli.configure(verb, parser)
    return convert_cli.main(verb, parser.parse_args([str(a) for a in argv]))


def test_import_and_export_show_a_bar_over_the_tensors(tmp_path, capsys):
    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel  # noqa: PLC0415
    from ladder_jax.models.qwen25_vl.config import preset  # noqa: PLC0415
    from ladder_jax.parallel.mesh import make_mesh  # noqa: PLC0415

    import jax  # noqa: PLC0415
    model = VisionLanguageModel.from_config(preset("tiny"), mesh=make_mesh(devices=jax.devices()[:1]))
    model.save_pretrained(tmp_path / "hf")
    capsys.readouterr()
    assert _verb("import-hf", tmp_path / "hf", tmp_path / "ckpt") == 0
    err = capsys.readouterr().err
    tensors = len(jax.tree.leaves(model.state))
    assert f"read: 100%" in err and f"{tensors}/{tensors}" in err
    assert _verb("export-hf", tmp_path / "ckpt", tmp_path / "out") == 0
    assert "export: 100%" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "config.json").read_text())["model_type"] == "qwen2_5_vl"


def test_synth_shows_a_bar_over_the_scenes(tmp_path, capsys):
    from ladder_jax.data.toyworld.generate import generate  # noqa: PLC0415
    from ladder_jax.synth import cli  # noqa: PLC0415

    generate(tmp_path / "world", 2, 0, size=48, views=2, video_frames=4, eval_fraction=0.0, workers=1)
    parser = argparse.ArgumentParser()
    cli.configure("synth", parser)
    args = parser.parse_args(["--scenes", str(tmp_path / "world" / "scenes"), "--out", str(tmp_path / "synth")])
    assert cli.main("synth", args) == 0
    out, err = capsys.readouterr()
    assert "synth: 100%" in err and "2/2" in err
    assert json.loads(out.splitlines()[0])["scenes_done"] == 2
