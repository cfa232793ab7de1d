"""Measurement (not a test): `prepare`, `synth`, `toyworld` and `train` against hostile input (issue 16).

    PYTHONPATH=. python bench/probes/hostile_data.py [--keep DIR]

Each case runs the real CLI in a subprocess and is graded:
    well  the outcome the rules ask for: the line rejected naming its line and field, or the verb
          refusing with one line `ladder-jax VERB: ...` (exit 2), and no earlier output lost;
    weak  handled without loss, but the exit code or message is not the one asked for;
    bad   a traceback, an accepted bad value, or an earlier output changed or lost.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOOD = {"question_id": 0, "question": "How many chairs?", "image": ["a.png"], "data_type": "single_image",
        "question_type": "object count", "answer": "3"}


def good(**changes) -> str:
    return json.dumps(GOOD | changes)


# (case, JSONL line, the field its rejection must name, None for a line that is not JSON); all in one file.
LINES = [
    ("lone surrogate in the question", good(question_id=1, question="How \ud800?"), "question"),
    ("lone surrogate in an option", good(question_id=2, question_type="relative distance", answer="A",
                                         options=["A. x", "B. \udfff"]), "options"),
    ("lone surrogate as the id", good(question_id="\ud800"), "id"),
    ("rejected line with a surrogate id", good(question_id="\udc00", answer="E"), "answer"),
    ("NUL byte in an image path", good(question_id=5, image=["a\x00.png"]), "images"),
    ("surrogate in an image path", good(question_id=6, image=["\udcff.png"]), "images"),
    ("100,000 nested [", "[" * 100_000, None),
    ("50,000 nested {\"a\":", '{"a":' * 50_000, None),
    ("meta nested 900 deep", json.dumps({"id": "own/9", "kind": "spatial", "question": "q", "images": ["a.png"],
                                         "data_type": "single_image", "question_type": "object count", "answer": "1",
                                         "meta": {"m": json.loads("[" * 900 + "]" * 900)}}), "meta"),
    ("answer 1e400", good(question_id=10, answer="1e400"), "answer"),
    ("answer -1e400", good(question_id=11, question_type="object size", answer="-1e400"), "answer"),
    ("answer nan", good(question_id=12, question_type="room size", answer="nan"), "answer"),
    ("answer Infinity (JSON literal)", good(question_id=13, answer=float("inf")), "answer"),
    ("count -3", good(question_id=14, answer="-3"), "answer"),
    ("count 2.5", good(question_id=15, answer="2.5"), "answer"),
    ("count 1e-300", good(question_id=16, answer="1e-300"), "answer"),
    ("size -45", good(question_id=17, question_type="object size", answer="-45"), "answer"),
    ("distance -0.5", good(question_id=18, question_type="absolute distance", answer="-0.5"), "answer"),
    ("room size -12", good(question_id=19, question_type="room size", answer="-12"), "answer"),
    ("bbox with a 400-digit integer", json.dumps({"question_id": 20, "question": "q", "image": ["a.png"],
                                                  "data_type": "single_image", "answer": [{"bbox_2d": [0, 0, 1, 10**400], "label": "c"}]}), "boxes"),
    ("bbox with NaN", '{"question_id": 21, "question": "q", "image": ["a.png"], "data_type": "single_image",'
                      ' "answer": [{"bbox_2d": [0, 0, 1, NaN], "label": "c"}]}', "boxes"),
    ("image path ../../etc/passwd", good(question_id=22, image=["../../etc/passwd"]), "images"),
    ("image path /etc/hostname", good(question_id=23, image=["/etc/hostname"]), "images"),
    ("image path is a folder", good(question_id=24, image=["."]), "images"),
    ("zero-byte image", good(question_id=25, image=["empty.png"]), "images"),
    ("invalid UTF-8 bytes", b'{"question": "\xff\xfe"}', None),
    ("duplicate id", good(question_id=100), "id"),
    ("question_id true", good(question_id=True), "question_id"),
    ("a bare JSON number 1e999", "1e999", "record"),
    ("an integer of 5,000 digits", '{"question_id": 30, "answer": ' + "9" * 5000 + "}", None),
    ("image path is a named pipe", good(question_id=31, image=["fifo.png"]), "images"),
    ("CRLF line ending", good(question_id=32).encode() + b"\r", "accepted"),
    ("1,000 options, letters repeated", good(question_id=29, question_type="relative distance", answer="A",
                                             options=[f"A. o{i}" for i in range(1000)]), "options"),
]


def run(verb: str, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "ladder_jax.cli", verb, *map(str, args)], env=env, capture_output=True,
                          text=True, errors="backslashreplace", timeout=timeout)


def snapshot(folder: pathlib.Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def grade_refusal(verb: str, proc, code: int, intact: bool = True) -> tuple[str, str]:
    """A refusal is well handled when it exits `code`, ends on one `ladder-jax VERB:` line and keeps the old output."""
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    if "Traceback" in proc.stderr or not intact:
        return "bad", (last or "traceback") if intact else "earlier output changed"
    if proc.returncode == code and last.startswith(f"ladder-jax {verb}: ") and "[Errno" not in last:
        return "well", last  # a bare OS error names no fix
    return "weak", f"exit {proc.returncode}: {last}"


def decoys(tmp: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """A folder of someone else's files and a plain file: outputs no verb may replace."""
    foreign = tmp / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    (tmp / "a-file").write_text("keep")
    return foreign, tmp / "a-file"


def make_release(root: pathlib.Path, lines: list) -> pathlib.Path:
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (16, 16), "red").save(root / "images" / "a.png")
    (root / "images" / "empty.png").write_bytes(b"")
    os.mkfifo(root / "images" / "fifo.png")  # reading it would block for ever
    raw = [line if isinstance(line, bytes) else line.encode("utf-8", "surrogatepass") for line in lines]
    (root / "hostile.jsonl").write_bytes(b"\n".join(raw) + b"\n")  # not a release name: each row's shape sets its kind
    return root


def line_cases(tmp: pathlib.Path) -> list[tuple[str, str, str]]:
    lines = [good(question_id=100)] + [line for _, line, _ in LINES] + [good(question_id=101)]
    release = make_release(tmp / "lines", lines)
    proc = run("prepare", "--data", release, "--out", tmp / "lines-out", "--shards", "2")
    out = tmp / "lines-out"
    try:
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        info = json.loads((out / "dataset_info.json").read_text())
    except (OSError, ValueError) as e:
        return [(f"prepare: {name}", "bad", f"no complete report ({e}); exit {proc.returncode}") for name, _, _ in LINES]
    by_line = {r["line"]: r for r in report["rejections"]}
    results = []
    for i, (name, _, field) in enumerate(LINES, start=2):
        r = by_line.get(i)
        if field == "accepted":
            results.append((f"prepare: {name}", "bad" if r else "well", r["reason"] if r else "accepted"))
        elif r is None:
            results.append((f"prepare: {name}", "bad", "accepted"))
        elif field is None or r["reason"].startswith(f"{field}:"):
            results.append((f"prepare: {name}", "well", f"line {i}: {r['reason']}"))
        else:
            results.append((f"prepare: {name}", "weak", f"line {i}: {r['reason']} (expected the field {field})"))
    kept = info["num_records"] == 3 and proc.returncode == 0
    results.append(("prepare: good lines around them kept", "well" if kept else "bad", f"{info['num_records']} records"))
    return results


def prepare_cases(tmp: pathlib.Path) -> list[tuple[str, str, str]]:
    release = make_release(tmp / "rel", [good(question_id=i) for i in range(3)])
    bad = make_release(tmp / "bad", [line for _, line, _ in LINES[:6]])
    out = tmp / "prepared"
    run("prepare", "--data", release, "--out", out)
    before = snapshot(out)
    foreign, a_file = decoys(tmp)
    cases = [
        ("non-empty --out without --overwrite", ["--data", release, "--out", out], 2),
        ("--overwrite over a folder that is not a prepared set", ["--data", release, "--out", foreign, "--overwrite"], 2),
        ("--out is the --data folder", ["--data", release, "--out", release, "--overwrite"], 2),
        ("--out holds the --data folder", ["--data", release, "--out", tmp, "--overwrite"], 2),
        ("--out is a file", ["--data", release, "--out", a_file], 2),
        ("--out under /proc", ["--data", release, "--out", "/proc/ladder-jax-probe"], 2),
        ("--data does not exist", ["--data", tmp / "nope", "--out", tmp / "new"], 2),
        ("--files names a missing file", ["--data", release, "--out", tmp / "new", "--files", "x.jsonl"], 2),
        ("--shards 0", ["--data", release, "--out", tmp / "new", "--shards", "0"], 2),
        ("--workers -1", ["--data", release, "--out", tmp / "new", "--workers", "-1"], 2),
        ("--overwrite, every line rejected", ["--data", bad, "--out", out, "--overwrite"], 1),
        ("--image-root does not exist (every image missing)", ["--data", release, "--out", tmp / "new",
                                                              "--image-root", tmp / "nope"], 1),
        ("--out is the image root", ["--data", release, "--out", release / "images", "--overwrite"], 2),
        ("--data is a file", ["--data", a_file, "--out", tmp / "new"], 2),
    ]
    results = []
    for name, argv, code in cases:
        proc = run("prepare", *argv)
        intact = snapshot(out) == before and (foreign / "notes.txt").exists() and not (tmp / "new").exists()
        results.append((f"prepare: {name}", *grade_refusal("prepare", proc, code, intact)))
    results.append(killed_mid_write(tmp, out, before))
    return results


def killed_mid_write(tmp: pathlib.Path, out: pathlib.Path, before: dict) -> tuple[str, str, str]:
    """SIGKILL once an --overwrite run has begun writing shards: the earlier set must come through unchanged."""
    big = tmp / "big"
    (big / "images").mkdir(parents=True)
    for i in range(64):
        Image.effect_noise((64, 64), 40 + i).convert("RGB").save(big / "images" / f"{i}.png")
    rows = [json.dumps(GOOD | {"question_id": i, "image": [f"{i % 64}.png"]}) for i in range(20_000)]
    (big / "big.jsonl").write_text("\n".join(rows))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "ladder_jax.cli", "prepare", "--data", big, "--out", out,
                             "--overwrite", "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    writing = False
    while proc.poll() is None and not writing:
        writing = any(p.stat().st_size for p in out.parent.glob(f".{out.name}.partial-*/records-*"))
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not writing:
        return "prepare: SIGKILL mid-write with --overwrite", "weak", "the run ended before it could be killed"
    ok = snapshot(out) == before
    left = sorted(p.name.split("-")[0] for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))
    return ("prepare: SIGKILL mid-write with --overwrite", "well" if ok else "bad",
            f"earlier set {'unchanged' if ok else 'CHANGED'}; left beside it: {left}")


def synth_cases(tmp: pathlib.Path) -> list[tuple[str, str, str]]:
    from ladder_jax.data.toyworld import generate

    world = tmp / "world"
    generate(world, 2, 0, size=64, views=1, video_frames=4, eval_fraction=0.0, workers=1)
    scenes = world / "scenes"
    broken = tmp / "broken-scenes"
    (broken / "s0").mkdir(parents=True)
    (broken / "s0" / "meta.json").write_text("{not json")
    nan_scene = broken / "s1"
    nan_scene.mkdir()
    for f in (scenes / "scene_000000").iterdir():
        (nan_scene / f.name).write_bytes(f.read_bytes())
    depth = np.load(nan_scene / "depth.npy")
    np.save(nan_scene / "depth.npy", np.full_like(depth, np.nan))
    out = tmp / "synth"
    run("synth", "--scenes", scenes, "--out", out)
    (out / "images" / "stale.png").write_bytes(b"old")
    before = snapshot(out)
    providers = {}
    for name, path in [("hub name", "org/model"), ("missing folder", tmp / "nope")]:
        config = {r: {"path": str(path)} for r in ("depth", "detector", "segmenter")}
        config["detector"]["labels"] = ["chair"]
        providers[name] = tmp / f"providers-{len(providers)}.json"
        providers[name].write_text(json.dumps(config))
    (tmp / "not-json.json").write_text("{")
    cases = [
        ("non-empty --out without --overwrite", ["--scenes", scenes, "--out", out], 2),
        ("--overwrite, no scene succeeds", ["--scenes", broken, "--out", out, "--overwrite"], 1),
        ("--scenes does not exist", ["--scenes", tmp / "nope", "--out", tmp / "new"], 2),
        ("--out is the --scenes folder", ["--scenes", scenes, "--out", scenes, "--overwrite"], 2),
        ("--images without --providers", ["--images", scenes, "--out", tmp / "new"], 2),
        ("--providers with a hub name", ["--images", scenes, "--providers", providers["hub name"], "--out", tmp / "new"], 2),
        ("--providers with a missing folder", ["--images", scenes, "--providers", providers["missing folder"], "--out", tmp / "new"], 2),
        ("--providers not JSON", ["--images", scenes, "--providers", tmp / "not-json.json", "--out", tmp / "new"], 2),
        ("--providers file missing", ["--images", scenes, "--providers", tmp / "none.json", "--out", tmp / "new"], 2),
    ]
    results = []
    for name, argv, code in cases:
        proc = run("synth", *argv)
        intact = snapshot(out) == before and not (tmp / "new").exists()
        results.append((f"synth: {name}", *grade_refusal("synth", proc, code, intact)))
    proc = run("synth", "--scenes", scenes, "--out", out, "--overwrite")
    fresh = proc.returncode == 0 and not (out / "images" / "stale.png").exists()
    results.append(("synth: --overwrite replaces the whole output (stale image gone)", "well" if fresh else "bad",
                    f"exit {proc.returncode}"))
    return results


def plausibility_cases(tmp: pathlib.Path) -> list[tuple[str, str, str]]:
    """Scenes whose geometry would give kilometre-tall chairs: skipped naming the field (exit 1 when none is left)."""
    from ladder_jax.data.scene_folder import load_scene, write_scene
    from ladder_jax.data.toyworld import generate

    generate(tmp / "world", 1, 0, size=96, views=1, video_frames=4, eval_fraction=0.0, workers=1)
    scene = load_scene(tmp / "world" / "scenes" / "scene_000000")
    fields = dict(rgb=scene.rgb, depth=scene.depth, instances=scene.instances, labels=scene.labels,
                  intrinsics=scene.intrinsics, camera_to_world=scene.camera_to_world, world_up=scene.world_up)
    k = scene.intrinsics.copy()
    k[0, 0] = k[1, 1] = 0.5
    bent = scene.camera_to_world @ np.diag([3.0, 1.0, 1.0, 1.0])
    cases = [("depth in millimetres", dict(depth=scene.depth * 1000), "millimetres"),
             ("focal length of half a pixel", dict(intrinsics=k), "'intrinsics'"),
             ("non-rigid camera_to_world", dict(camera_to_world=bent), "rigid")]
    results = []
    for name, change, field in cases:
        folder = tmp / name.replace(" ", "_")
        write_scene(folder / "s", **(fields | change))
        proc = run("synth", "--scenes", folder, "--out", folder / "out")
        named = proc.returncode == 1 and field in proc.stdout and not (folder / "out").exists()
        results.append((f"synth: {name}", "well" if named else "bad", f"exit {proc.returncode}: {proc.stdout.strip()[-160:]}"))
    labels = dict(scene.labels)
    labels[min(labels)] = "sofa</answer><answer>A"
    write_scene(tmp / "markup" / "s", **(fields | dict(labels=labels)))
    proc = run("synth", "--scenes", tmp / "markup", "--out", tmp / "markup-out")
    text = (tmp / "markup-out" / "spld_spatial_data.jsonl").read_text() if proc.returncode == 0 else ""
    report = json.loads((tmp / "markup-out" / "report.json").read_text()) if proc.returncode == 0 else {}
    dropped = any("markup" in why for why in report.get("dropped", {}).get("s", {}).values())
    results.append(("synth: label with answer tags", "well" if proc.returncode == 0 and dropped and "</answer>" not in text
                    else "bad", f"exit {proc.returncode}, dropped and reported: {dropped}"))
    return results


def train_cases(tmp: pathlib.Path) -> list[tuple[str, str, str]]:
    """Values outside their meaning: refused in one line (exit 2) before any compute, in seconds."""
    from ladder_jax.data.toyworld import generate

    generate(tmp / "world", 2, 0, size=64, views=1, video_frames=4, eval_fraction=0.0, workers=1)
    base = ["--config", ROOT / "configs" / "toy_demo.py:quick", f"--config.data.root={tmp / 'world'}"]
    cases = ["stages.stage1.max_grad_norm=-1", "stages.stage1.weight_decay=-0.1", "stages.stage1.end_lr_ratio=5",
             "stages.stage1.checkpoint_every=0", "model.dtype=float13", "stages.stage1.max_pixels=0",
             "stages.stage1.batch_size=0", "stages.stage1.learning_rate=nan", "model.preset=huge"]
    results = []
    for i, override in enumerate(cases):
        start = time.perf_counter()
        try:
            proc = run("train", *base, f"--config.workdir={tmp / f'run{i}'}", f"--config.{override}", timeout=120)
        except subprocess.TimeoutExpired:
            results.append((f"train: {override}", "bad", "not refused: still running after 120 s"))
            continue
        grade, note = grade_refusal("train", proc, 2, intact=not (tmp / f"run{i}" / "stage1" / "checkpoints").exists())
        results.append((f"train: {override}", grade, f"{note} ({time.perf_counter() - start:.0f} s)"))
    return results


def toyworld_cases(tmp: pathlib.Path) -> list[tuple[str, str, str]]:
    small = ["--size", "48", "--views", "1", "--video-frames", "4", "--eval-fraction", "0", "--workers", "1"]
    out = tmp / "toy"
    run("toyworld", "--out", out, "--scenes", "1", *small)
    (out / "images" / "stale.jpg").write_bytes(b"old")
    before = snapshot(out)
    foreign, a_file = decoys(tmp)
    cases = [
        ("non-empty --out without --overwrite", ["--out", out, "--scenes", "1"], 2),
        ("--overwrite over a folder that is not a toy world", ["--out", foreign, "--scenes", "1", "--overwrite"], 2),
        ("--scenes 0", ["--out", tmp / "new", "--scenes", "0"], 2),
        ("--eval-fraction 1.5", ["--out", tmp / "new", "--scenes", "1", "--eval-fraction", "1.5"], 2),
        ("--out is a file", ["--out", a_file, "--scenes", "1"], 2),
    ]
    results = []
    for name, argv, code in cases:
        proc = run("toyworld", *small, *argv)
        intact = snapshot(out) == before and (foreign / "notes.txt").exists() and not (tmp / "new").exists()
        results.append((f"toyworld: {name}", *grade_refusal("toyworld", proc, code, intact)))
    proc = run("toyworld", *small, "--out", out, "--scenes", "1", "--seed", "5", "--overwrite")
    fresh = proc.returncode == 0 and not (out / "images" / "stale.jpg").exists()
    results.append(("toyworld: --overwrite replaces the whole output (stale image gone)", "well" if fresh else "bad",
                    f"exit {proc.returncode}"))
    return results


GROUPS = (line_cases, prepare_cases, synth_cases, plausibility_cases, toyworld_cases, train_cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=pathlib.Path, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--groups", nargs="+", choices=[g.__name__ for g in GROUPS], help="run only these groups")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or pathlib.Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        results = []
        for group in GROUPS:
            if args.groups and group.__name__ not in args.groups:
                continue
            (tmp / group.__name__).mkdir()
            results += group(tmp / group.__name__)
    for name, grade, note in results:
        print(f"{grade:5s}  {name}: {note}")
    counts = {g: sum(r[1] == g for r in results) for g in ("well", "weak", "bad")}
    print(f"{len(results)} cases: {counts['well']} well handled, {counts['weak']} weak, {counts['bad']} bad")


if __name__ == "__main__":
    main()
