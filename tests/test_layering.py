"""The package layering of DESIGN.md ("A module imports only what stands above it in this list").

Every module under ``src/handx`` is parsed with :mod:`ast`; every ``import x`` and ``from x import y`` counts,
at module level and inside functions (lazy imports are dependencies too), with relative imports resolved
against the importing module's package. ``from handx import eval`` is an import of ``handx.eval``.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: (rule, modules it constrains (a package or a module, with everything under it), forbidden imports)
RULES = (
    ("sampling/ and pipelines/ never import train/", ("handx.sampling", "handx.pipelines"), ("handx.train",)),
    ("train/ never imports eval/", ("handx.train",), ("handx.eval",)),
    ("models/ holds networks only", ("handx.models",),
     ("handx.train", "handx.eval", "handx.sampling", "handx.cli", "handx.viz", "handx.io")),
    ("runs.py stands above sampling/, train/, eval/, cli/, viz/", ("handx.runs",),
     ("handx.train", "handx.eval", "handx.cli", "handx.viz")),
    ("eval/ reaches generators only through pipelines/ (no family's module)", ("handx.eval",),
     ("handx.sampling.generate", "handx.pipelines.diffusion", "handx.train")),
    ("cli/ and viz/ reach generators only through pipelines/ (no family's module)", ("handx.cli", "handx.viz"),
     ("handx.sampling.generate", "handx.pipelines.diffusion")),
    ("what train/ and eval/ share stands above both", ("handx.representations", "handx.retrieval", "handx.evaluator"),
     ("handx.train", "handx.eval", "handx.cli", "handx.viz")),
)


def module_name(path: Path, root: Path) -> str:
    """``root/handx/eval/metrics.py`` → ``handx.eval.metrics``; a package's ``__init__.py`` → the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str, root: Path) -> bool:
    """Whether ``name`` is a module or package in the tree under ``root``."""
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports(path: Path, root: Path) -> list[tuple[str, int]]:
    """The modules ``path`` imports, anywhere in the file: ``(absolute module name, line)``, in source order.

    ``from M import a`` names ``M.a`` when that is a module of the tree (``from handx import eval``), else ``M``.
    """
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if alias.name != "*" and is_module(sub, root) else base, node.lineno))
    return sorted(set(found), key=lambda item: (item[1], item[0]))


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path) -> list[str]:
    """Every import under ``root/handx`` that breaks one of :data:`RULES`: ``"module -> imported (line N)"``."""
    out = []
    for path in sorted((root / "handx").rglob("*.py")):
        name = module_name(path, root)
        for rule, scope, forbidden in RULES:
            if not any(within(name, s) for s in scope):
                continue
            for target, line in imports(path, root):
                if any(within(target, f) for f in forbidden):
                    out.append(f"{name} -> {target} (line {line})  [{rule}]")
    return out


def test_the_package_respects_the_layering():
    found = violations(SRC)
    assert not found, "imports against the layering of DESIGN.md:\n" + "\n".join(found)


def test_the_walker_finds_imports_of_every_form(tmp_path):
    pkg = tmp_path / "handx"
    for sub in ("train", "eval", "sampling", "models"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "runs.py").write_text("import json\n")
    (pkg / "eval" / "metrics.py").write_text("")
    (pkg / "train" / "loop.py").write_text(
        "import numpy as np\n"
        "from handx.eval.metrics import r_precision\n"          # absolute, top level (line 2)
        "def check():\n"
        "    from ..eval import metrics\n"                      # relative, in a function (line 4)
        "    import handx.eval\n"                               # plain import, in a function (line 5)
        "    from . import loop\n"                              # relative, allowed
        "    return metrics\n")
    (pkg / "sampling" / "ddim.py").write_text("from handx import train\n")  # package imported by name
    (pkg / "models" / "net.py").write_text("from .. import runs, eval\n")
    assert imports(pkg / "train" / "loop.py", tmp_path) == [
        ("numpy", 1), ("handx.eval.metrics", 2), ("handx.eval.metrics", 4), ("handx.eval", 5),
        ("handx.train.loop", 6)]
    found = [v.split("  [")[0] for v in violations(tmp_path)]
    assert found == ["handx.models.net -> handx.eval (line 1)",
                     "handx.sampling.ddim -> handx.train (line 1)",
                     "handx.train.loop -> handx.eval.metrics (line 2)",
                     "handx.train.loop -> handx.eval.metrics (line 4)",
                     "handx.train.loop -> handx.eval (line 5)"]


def test_the_walker_reads_the_real_tree():
    """The real tree is walked (a wrong ``SRC`` would make the layering test pass vacuously)."""
    assert len(list((SRC / "handx").rglob("*.py"))) > 50
    assert ("handx.runs" in [name for name, _ in imports(SRC / "handx" / "train" / "diffusion.py", SRC)])
