"""Our INFO lines print once, even after grain / orbax set the root logger to WARNING with a
handler of their own (a fresh interpreter, as `ladder-jax` starts)."""

import io
import logging
import subprocess
import sys
from pathlib import Path

from ladder_jax import log_setup

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import logging
import grain, orbax.checkpoint  # noqa: F401  (they configure the root logger)
logging.getLogger("ladder_jax.train.curriculum").info("before setup")
from ladder_jax import log_setup
log_setup.setup()
log_setup.setup()
logging.getLogger("ladder_jax.train.curriculum").info("stage1: 5 steps from config.model")
logging.getLogger("ladder_jax.demo").debug("not at INFO")
logging.getLogger("somebody.else").info("another library's info")
'''


def test_stage_messages_print_once_after_grain_and_orbax():
    done = subprocess.run([sys.executable, "-c", SCRIPT], env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "ladder_jax" in line or "info" in line]
    assert len(lines) == 1 and lines[0].endswith("ladder_jax.train.curriculum: stage1: 5 steps from config.model")
    assert "before setup" not in done.stderr  # what the bug looked like: dropped
    assert "another library" not in done.stderr and "not at INFO" not in done.stderr


def test_level_and_stream_change_without_a_second_handler():
    out = io.StringIO()
    try:
        logger = log_setup.setup(logging.WARNING, stream=out)
        logging.getLogger("ladder_jax.x").info("quiet")
        logging.getLogger("ladder_jax.x").warning("loud")
        log_setup.setup(logging.INFO, stream=out)
        logging.getLogger("ladder_jax.x").info("now heard")
        assert [h for h in logger.handlers if getattr(h, "ladder_jax_handler", False)].__len__() == 1
    finally:
        log_setup.setup()
    text = out.getvalue()
    assert "quiet" not in text and "x: loud" in text and "x: now heard" in text
