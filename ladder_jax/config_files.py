"""Configs as Python: a `.py` file whose `get_config()` returns an ml_collections ConfigDict, and
`--config.a.b=value` overrides parsed against the existing field's type. `file.py:ARG` calls
`get_config("ARG")` (the ml_collections config_flags convention), e.g. to pick a hardware variant.

Overrides never create fields: a misspelt key fails before any compute with the closest names.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
from pathlib import Path

import ml_collections


class ConfigFileError(ValueError):
    pass


def load(path: str | Path, overrides: list[str] = ()) -> ml_collections.ConfigDict:
    path, sep, arg = str(path).partition(":")
    path = Path(path)
    if not path.exists():
        raise ConfigFileError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"ladder_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ConfigFileError(f"{path} defines no get_config()")
    cfg = module.get_config(arg) if sep else module.get_config()
    for item in overrides:
        apply_override(cfg, item)
    return cfg


def apply_override(cfg: ml_collections.ConfigDict, item: str) -> None:
    """`--config.a.b=value` (or `config.a.b=value`): value parsed as a Python literal when it is one."""
    key, sep, raw = item.removeprefix("--").partition("=")
    if not sep or not key.startswith("config."):
        raise ConfigFileError(f"override {item!r} must look like --config.a.b=value")
    *parents, leaf = key.removeprefix("config.").split(".")
    node, walked = cfg, "config"
    for name in parents + [leaf]:
        if not isinstance(node, ml_collections.ConfigDict) or name not in node:
            choices = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            near = difflib.get_close_matches(name, choices, n=3)
            hint = f"; did you mean {', '.join(f'{walked}.{n}' for n in near)}?" if near else \
                f"; {walked} has {', '.join(choices)}" if choices else ""
            raise ConfigFileError(f"unknown config key {walked}.{name}{hint}")
        if name != leaf:
            node, walked = node[name], f"{walked}.{name}"
    current = node[leaf]
    value = _parse(raw, current)
    try:
        node[leaf] = value
    except TypeError as e:
        raise ConfigFileError(f"{key}={raw!r}: {e}") from None


def _parse(raw: str, current):
    if isinstance(current, str):
        return raw
    if isinstance(current, bool):
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ConfigFileError(f"expected true or false, got {raw!r}")
        return raw.lower() in ("true", "1")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        raise ConfigFileError(f"cannot read {raw!r} as a {type(current).__name__}") from None
    if isinstance(current, float) and isinstance(value, int):
        value = float(value)
    if isinstance(current, tuple) and isinstance(value, list):
        value = tuple(value)
    return value
