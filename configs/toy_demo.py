"""The demo's curriculum (`ladder-jax demo`, default size) as a config for `ladder-jax train`:
the `demo` preset (random init, a demo tokenizer trained on the data) on 112x112 toy-world rooms.
Generate the data first:

    ladder-jax toyworld --out runs/toyworld --scenes 800 --size 112 --views 2 --video-frames 4
    ladder-jax train --config configs/toy_demo.py

Images are 112x112 (64 patches, 16 tokens); video frames are shrunk to 56x56 so a 4-frame
video is 32 patches. The settings live in ladder_jax/demo/settings.py.
"""

from ladder_jax.demo.settings import DEFAULT, curriculum_config


def get_config():
    return curriculum_config(DEFAULT, "runs/toy_demo", "runs/toyworld")
