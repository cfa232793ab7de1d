"""Progress bars: library loops pass their iterables through untouched unless a command turned the
bars on; `import-hf` and `export-hf` show one over the tensors, `synth` one over the scenes; drawn
only when stderr is a terminal (the tests make the captured stderr say it is one)."""

import argparse
import contextlib
import io
import json
import sys
from collections import namedtuple

import pytest

from ladder_jax import progress


Captured = namedtuple("Captured", "out err")


class Terminal(io.StringIO):
    """A stderr that says it is a terminal (tqdm draws only on one); readouterr() like capsys's."""

    def isatty(self):
        return True

    def readouterr(self):
        err = self.getvalue()
        self.seek(0)
        self.truncate()
        out = self.stdout.getvalue()
        self.stdout.seek(0)
        self.stdout.truncate()
        return Captured(out, err)


@contextlib.contextmanager
def terminal():
    """sys.stderr / sys.stdout replaced inside the test body (pytest re-installs its own capture
    between fixture set-up and the call)."""
    stream = Terminal()
    stream.stdout = io.StringIO()
    saved = sys.stderr, sys.stdout
    sys.stderr, sys.stdout = stream, stream.stdout
    try:
        yield stream
    finally:
        sys.stderr, sys.stdout = saved


def test_track_is_a_pass_through_unless_bars_are_on():
    items = [1, 2, 3]
    with terminal() as term:
        assert progress.track(items, "read") is items
        assert term.getvalue() == ""
        with progress.bars():
            assert list(progress.track(items, "read")) == items
    assert "read: 100%" in term.getvalue() and "3/3" in term.getvalue()
    with progress.bars(), progress.bars(False):
        assert progress.track(items, "read") is items


def _verb(verb, *argv):
    from ladder_jax.models.qwen25_vl import convert_cli  # noqa: PLC0415
    parser = argparse.ArgumentParser()
    convert_cli.configure(verb, parser)
    return convert_cli.main(verb, parser.parse_args([str(a) for a in argv]))


def test_import_and_export_show_a_bar_over_the_tensors(tmp_path):
    import jax  # noqa: PLC0415

    from ladder_jax.models.qwen25_vl.api import VisionLanguageModel  # noqa: PLC0415
    from ladder_jax.models.qwen25_vl.config import preset  # noqa: PLC0415
    from ladder_jax.parallel.mesh import make_mesh  # noqa: PLC0415

    model = VisionLanguageModel.from_config(preset("tiny"), mesh=make_mesh(devices=jax.devices()[:1]))
    model.save_pretrained(tmp_path / "hf")
    tensors = len(jax.tree.leaves(model.state))
    with terminal() as term:
        assert _verb("import-hf", tmp_path / "hf", tmp_path / "ckpt") == 0
        err = term.readouterr().err
        assert _verb("export-hf", tmp_path / "ckpt", tmp_path / "out") == 0
    assert "read: 100%" in err and f"{tensors}/{tensors}" in err
    assert "export: 100%" in term.getvalue()
    assert json.loads((tmp_path / "out" / "config.json").read_text())["model_type"] == "qwen2_5_vl"


def test_synth_shows_a_bar_over_the_scenes(tmp_path):
    from ladder_jax.data.toyworld.generate import generate  # noqa: PLC0415
    from ladder_jax.synth import cli  # noqa: PLC0415

    generate(tmp_path / "world", 2, 0, size=48, views=2, video_frames=4, eval_fraction=0.0, workers=1)
    parser = argparse.ArgumentParser()
    cli.configure("synth", parser)
    args = parser.parse_args(["--scenes", str(tmp_path / "world" / "scenes"), "--out", str(tmp_path / "synth")])
    with terminal() as term:
        assert cli.main("synth", args) == 0
    out, err = term.readouterr()
    assert "synth: 100%" in err and "2/2" in err
    assert json.loads(out.splitlines()[0])["scenes_done"] == 2


def test_no_bar_when_stderr_is_not_a_terminal(capsys):
    with progress.bars():
        assert list(progress.track([1, 2], "read")) == [1, 2]
    assert capsys.readouterr().err == ""
