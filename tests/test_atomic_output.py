"""build_beside / write_atomic: an output is complete or absent, and only an earlier output of the
same command is ever replaced."""

import os
import stat

import pytest

from ladder_jax.atomic_output import OutputError, build_beside, write_atomic

MARK = "done.json"


def write_set(folder, *names):
    for name in names:
        (folder / name).write_text(name)


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("exists", [False, True])
def test_a_missing_or_empty_output_is_built(tmp_path, exists):
    out = tmp_path / "a" / "out"
    if exists:
        out.mkdir(parents=True)
    with build_beside(out, marker=MARK) as new:
        assert new.parent == out.parent and new.name.startswith(".out.partial-") and listing(new) == []
        write_set(new, MARK, "x")
    assert listing(out) == [MARK, "x"] and listing(out.parent) == ["out"]


def test_the_new_folder_gets_the_usual_permissions(tmp_path):
    with build_beside(tmp_path / "out", marker=MARK) as new:
        write_set(new, MARK)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o777 & ~umask


def test_overwrite_swaps_in_only_when_complete(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    write_set(out, MARK, "old")
    with pytest.raises(KeyboardInterrupt):
        with build_beside(out, overwrite=True, marker=MARK) as new:
            write_set(new, "half")
            raise KeyboardInterrupt  # a crash or Ctrl-C mid-write
    assert listing(out) == [MARK, "old"] and listing(tmp_path) == ["out"]
    with build_beside(out, overwrite=True, marker=MARK) as new:
        write_set(new, MARK, "new")
        assert listing(out) == [MARK, "old"]  # untouched until the block completes
    assert listing(out) == [MARK, "new"] and listing(tmp_path) == ["out"]


@pytest.mark.parametrize("contents, overwrite, message", [
    (["x"], False, "is not empty; pass --overwrite"),
    ([MARK], False, "is not empty; pass --overwrite"),
    (["notes.txt"], True, "has no done.json, so it is not an earlier output"),
    ([".hidden"], True, "has no done.json"),
])
def test_a_non_empty_output_is_refused_before_anything_is_written(tmp_path, contents, overwrite, message):
    out = tmp_path / "out"
    out.mkdir()
    write_set(out, *contents)
    with pytest.raises(OutputError, match=message):
        with build_beside(out, overwrite=overwrite, marker=MARK):
            pytest.fail("the block must not run")
    assert listing(out) == sorted(contents) and listing(tmp_path) == ["out"]


def test_an_output_that_is_or_holds_an_input_is_refused(tmp_path):
    data = tmp_path / "data"
    (data / "deep").mkdir(parents=True)
    write_set(data, MARK)
    for out, given in [(data, data), (tmp_path, data / "deep"), (data / "deep" / "..", data)]:
        with pytest.raises(OutputError, match="holds the input"):
            with build_beside(out, overwrite=True, marker=MARK, inputs=[given]):
                pass
    with build_beside(data / "inside", marker=MARK, inputs=[data]) as new:  # an output inside an input is fine
        write_set(new, MARK)
    assert listing(data) == ["deep", MARK, "inside"]


def test_a_file_or_a_root_is_refused(tmp_path):
    (tmp_path / "f").write_text("keep")
    with pytest.raises(OutputError, match="is not a folder"):
        with build_beside(tmp_path / "f", overwrite=True, marker=MARK):
            pass
    with pytest.raises(OutputError, match="filesystem root"):
        with build_beside("/", overwrite=True, marker=MARK):
            pass
    assert (tmp_path / "f").read_text() == "keep"


def test_a_symlinked_output_replaces_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real"
    target.mkdir()
    write_set(target, MARK, "old")
    (tmp_path / "link").symlink_to(target)
    with build_beside(tmp_path / "link", overwrite=True, marker=MARK) as new:
        assert new.parent == tmp_path and new.name.startswith(".real.partial-")
        write_set(new, MARK, "new")
    assert (tmp_path / "link").is_symlink() and listing(tmp_path / "link") == [MARK, "new"]


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "report.json"
    write_atomic(path, b"old")
    with pytest.raises(TypeError):
        write_atomic(path, "not bytes")
    assert path.read_bytes() == b"old" and listing(tmp_path) == ["report.json"]
    write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
