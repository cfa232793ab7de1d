"""Configs as Python: a `.py` file whose `get_config()` returns an ml_collections ConfigDict, and
`--config.a.b=value` overrides parsed against the existing field's type. `file.py:ARG` calls
`get_config("ARG")` (the ml_collections config_flags convention), e.g. to pick a hardware variant.
A config file may import its neighbours in the same folder. A run's resolved `config.json` (written
into its work directory) loads the same way, so a run can be repeated from its folder.

Overrides never create fields: a misspelt key fails before any compute with the closest names.
`add_arguments` gives a verb `--config FILE[:ARG]` plus any number of `--config.a.b=value`.

Components describe their settings as frozen dataclasses (defaults and checks in one place);
`fields_of` turns one into config fields and `build` turns config fields back into the typed object,
running its checks.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import importlib.util
import json
import sys
from pathlib import Path

import ml_collections

from ladder_jax.atomic_output import write_atomic

OVERRIDE_PREFIX = "--config."


class ConfigFileError(ValueError):
    pass


def load(path: str | Path, overrides: list[str] = ()) -> ml_collections.ConfigDict:
    path, sep, arg = str(path).partition(":")
    path = Path(path)
    if not path.exists():
        raise ConfigFileError(f"config file {path} does not exist")
    if path.suffix == ".json":
        cfg = ml_collections.ConfigDict(_tuples(json.loads(path.read_text())))
    else:
        cfg = _get_config(path, arg if sep else None)
    for item in overrides:
        apply_override(cfg, item)
    return cfg


def _get_config(path: Path, arg: str | None) -> ml_collections.ConfigDict:
    spec = importlib.util.spec_from_file_location(f"ladder_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent.resolve()))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent.resolve()))
    if not hasattr(module, "get_config"):
        raise ConfigFileError(f"{path} defines no get_config()")
    return module.get_config(arg) if arg is not None else module.get_config()


def _tuples(node):
    """JSON lists back to the tuples a config holds."""
    if isinstance(node, dict):
        return {k: _tuples(v) for k, v in node.items()}
    return tuple(_tuples(v) for v in node) if isinstance(node, list) else node


def write_resolved(cfg: ml_collections.ConfigDict, path: Path) -> None:
    """The config with every reference resolved, as JSON that `load` reads back (written whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(cfg.copy_and_resolve_references().to_dict(), indent=1, sort_keys=True).encode())


def fields_of(cls, exclude: frozenset[str] = frozenset()) -> dict:
    """A component dataclass's settings with their defaults, as config fields (nested dataclasses
    as sub-dicts); `exclude` names the fields its caller fills in at run time."""
    return {f.name: dataclasses.asdict(v) if dataclasses.is_dataclass(v := _default(f)) else v
            for f in dataclasses.fields(cls) if f.name not in exclude}


def _default(field: dataclasses.Field):
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def build(cls, node, **runtime):
    """`cls` from the config fields of `node` that it declares (nested dataclasses rebuilt) plus
    `runtime` values: its __post_init__ checks run here."""
    kwargs = dict(runtime)
    for f in dataclasses.fields(cls):
        if f.name in node and f.name not in runtime:
            value = node[f.name]
            default = _default(f)
            if dataclasses.is_dataclass(default):
                value = type(default)(**dict(value))
            kwargs[f.name] = value
    return cls(**kwargs)


def add_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--config FILE[:ARG]` and `--config.a.b=value` overrides (collected as `args.overrides`)."""
    parser.add_argument("--config", required=default is None, default=default,
                        help="a config .py file (FILE.py:ARG passes ARG to its get_config), or a run's config.json")
    parser.epilog = "Any --config.a.b=value overrides a field of the config (its type is kept)."
    # argparse cannot declare `--config.a.b=value` options up front: collect them as overrides.
    parse_known = parser.parse_known_args

    def parse_args(args=None, namespace=None):
        ns, rest = parse_known(args, namespace)
        bad = [a for a in rest if not a.startswith(OVERRIDE_PREFIX) or "=" not in a]
        if bad:
            parser.error(f"unrecognized arguments: {' '.join(bad)} (overrides look like --config.a.b=value)")
        ns.overrides = rest
        return ns

    parser.parse_args = parse_args


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
