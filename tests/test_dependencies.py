"""Every third-party module the package imports comes from a distribution pyproject.toml declares.

A run-time dependency that only the test extra brings in (torch pulls jinja2) passes the suite and
fails a user's `pip install -e .`; this catches direct imports, and .ci/run's bare-venv demo catches
what a library needs behind our back (transformers' chat templates need jinja2).
"""

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
OPTIONAL = ("pytorch", "wandb")  # extras whose modules may only be imported inside functions, behind a check


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group()).lower()


def _imports() -> list[tuple[str, str, bool]]:
    """(top-level module, file, imported at module level) for every import in ladder_jax/."""
    found = []
    for path in sorted((ROOT / "ladder_jax").rglob("*.py")):
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            found += [(n.split(".")[0], str(path.relative_to(ROOT)), id(node) in top) for n in names]
    return [f for f in found if f[0] not in sys.stdlib_module_names and f[0] != "ladder_jax"]


def test_every_imported_module_is_declared():
    declared = {_name(r) for r in PYPROJECT["dependencies"]}
    optional = {_name(r) for extra in OPTIONAL for r in PYPROJECT["optional-dependencies"][extra]}
    owners = importlib.metadata.packages_distributions()
    problems = []
    for module, path, top_level in _imports():
        dists = {_name(d) for d in owners.get(module, [])} or {_name(module)}  # not installed here: its own name
        if dists & declared:
            continue
        if dists & optional and not top_level:
            continue
        where = f"an optional extra {OPTIONAL}, imported at module level" if dists & optional else "no declared dependency"
        problems.append(f"{path}: import {module} (distribution {sorted(dists) or '?'}) comes from {where}")
    assert not problems, "\n".join(problems)


def test_the_chat_template_engine_is_declared():
    assert "jinja2" in {_name(r) for r in PYPROJECT["dependencies"]}
