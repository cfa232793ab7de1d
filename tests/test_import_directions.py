"""Imports point down: read from the source files (every import statement, those inside functions
too), so a layer cannot reach upward, not even lazily.

    models/, data/, parallel/   import nothing from train/, eval/, generate/, demo/
    generate/                   imports nothing from train/, eval/, demo/
    eval/                       imports nothing from train/, demo/
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ladder_jax"
FORBIDDEN = {
    "models": ("train", "eval", "generate", "demo"),
    "data": ("train", "eval", "generate", "demo"),
    "parallel": ("train", "eval", "generate", "demo"),
    "generate": ("train", "eval", "demo"),
    "eval": ("train", "demo"),
}


def _imported(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in `path`, a file under the package folder `root`."""
    package = ("ladder_jax",) + path.relative_to(root).parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else ()
            module = ".".join(base + ((node.module,) if node.module else ()))
            # `from ladder_jax import train` names a layer as well as `import ladder_jax.train`
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "ladder_jax" else None


def upward_imports(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        layer = path.relative_to(root).parts[0]
        for line, module in _imported(path, root):
            if _layer(module) in FORBIDDEN.get(layer, ()):
                problems.append(f"ladder_jax/{path.relative_to(root)}:{line} imports {module} ({layer}/ -> "
                                f"{_layer(module)}/)")
    return problems


def test_imports_point_down():
    problems = upward_imports()
    assert not problems, "imports that point up a layer:\n" + "\n".join(problems)


def test_the_check_sees_lazy_relative_and_package_imports(tmp_path):
    models = tmp_path / "models" / "qwen25_vl"
    models.mkdir(parents=True)
    (models / "api.py").write_text("def f():\n    from ladder_jax.generate import sampler\n")
    (models / "rel.py").write_text("from ...train import sft\n")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "ok.py").write_text("import ladder_jax.generate.sampler\nfrom ladder_jax import data\n")
    (tmp_path / "eval" / "bad.py").write_text("from ladder_jax import demo\n")
    found = upward_imports(tmp_path)
    assert [p.split(" imports ")[0] for p in found] == [
        "ladder_jax/eval/bad.py:1", "ladder_jax/models/qwen25_vl/api.py:2", "ladder_jax/models/qwen25_vl/rel.py:1"]
