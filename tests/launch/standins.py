"""Stand-in programs for cluster tools (`srun`, `scontrol`, `gcloud`): each records its arguments
(and the environment variables named in STANDIN_ENV) as one JSON line in $STANDIN_LOG and exits with
$STANDIN_EXIT_<NAME> (default 0). A `--command` argument (gcloud ssh) must parse as bash."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

PROGRAM = r'''#!{python}
import json, os, subprocess, sys
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
env = {{k: os.environ.get(k) for k in os.environ.get("STANDIN_ENV", "").split(",") if k}}
syntax = None
for a in args:
    if a.startswith("--command"):
        command = a.split("=", 1)[1] if "=" in a else args[args.index(a) + 1]
        check = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        syntax = check.stderr.strip() or "ok"
with open(os.environ["STANDIN_LOG"], "a") as f:
    f.write(json.dumps({{"program": name, "args": args, "env": env, "syntax": syntax}}) + "\n")
sys.exit(int(os.environ.get("STANDIN_EXIT_" + name.upper(), "0")))
'''


def install(bin_dir: Path, names, python: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = bin_dir / name
        path.write_text(PROGRAM.format(python=python))
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def environment(bin_dir: Path, log: Path, **extra) -> dict:
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STANDIN_LOG=str(log), **extra)
