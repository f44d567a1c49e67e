"""Every third-party module the package imports is declared in its runtime dependencies.

Each module of gradient_jupyter/ is parsed with `ast` (imports inside functions included); an import inside
`try: ... except ImportError` is optional and left out. Each third-party top-level module is mapped to the
distributions that provide it (importlib.metadata.packages_distributions()) and one of them must be named in
`[project].dependencies` itself: a dependency of a dependency (pathspec came with hatchling and mypy, the test extra's)
is not enough.

Run as a script (`python tests/test_dependencies.py`) it checks the installed distribution's own requirements,
importlib.metadata.requires("gradient-jupyter") without extras: scripts/smoke.sh runs it in the venv of the wheel.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gradient_jupyter"
OPTIONAL = {"ImportError", "ModuleNotFoundError"}


def _name(requirement: str) -> str:
    """The normalized distribution name of a requirement string (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot read the requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_requirements(requires: list[str]) -> set[str]:
    """Names of the requirements that are not behind an extra."""
    return {_name(r) for r in requires if not re.search(r"\bextra\s*==", r.partition(";")[2])}


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(k, ast.Name) and k.id in OPTIONAL for k in kinds)


def required_imports(tree: ast.AST) -> set[str]:
    """Top-level names of the absolute imports in tree, except those inside a try that catches ImportError."""
    found: set[str] = set()

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Try | getattr(ast, "TryStar", ast.Try)):
            guarded = optional or any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, guarded)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, optional)
            return
        if not optional:
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return found


def package_imports(package: Path = PACKAGE) -> dict[str, list[str]]:
    """Third-party top-level module -> the package's files that import it."""
    where: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for module in required_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if module not in sys.stdlib_module_names and module != package.name:
                where.setdefault(module, []).append(str(path.relative_to(package.parent)))
    return where


def undeclared(declared: set[str], package: Path = PACKAGE) -> list[str]:
    """One line per third-party module whose distribution is not declared directly."""
    providers = metadata.packages_distributions()
    problems = []
    for module, files in sorted(package_imports(package).items()):
        dists = sorted({_name(d) for d in providers.get(module, [])})
        if not dists:
            problems.append(f"{module} (imported by {', '.join(files)}) is not installed: no distribution provides it")
        elif not declared & set(dists):
            problems.append(
                f"{module} (imported by {', '.join(files)}) comes from {' or '.join(dists)}, "
                "which is not in [project].dependencies"
            )
    return problems


def pyproject_requirements(pyproject: Path = PACKAGE.parent / "pyproject.toml") -> set[str]:
    import tomllib

    return runtime_requirements(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"])


def test_every_third_party_import_is_a_declared_dependency():
    """The tree's pyproject.toml (what its wheel will declare), read directly: an install made before an edit of it
    (the editable one of a shared environment) does not hide a dropped line."""
    problems = undeclared(pyproject_requirements())
    assert not problems, "Undeclared runtime dependencies:\n" + "\n".join(problems)


def test_the_parser_sees_imports_in_functions_and_leaves_optional_ones_out():
    tree = ast.parse(
        "import os, a.b\n"
        "from c.d import e\n"
        "from . import f\n"
        "def g():\n    import h\n"
        "class K:\n    def m(self):\n        from i import j\n"
        "try:\n    import opt\nexcept (ValueError, ImportError):\n    import fallback\n"
        "try:\n    import notguarded\nexcept ValueError:\n    pass\n"
    )
    assert required_imports(tree) == {"os", "a", "c", "h", "i", "fallback", "notguarded"}


def test_requirements_behind_an_extra_do_not_count():
    requires = ["boto3>=1.36", "PyYAML>=6", 'pytest>=8; extra == "test"', 'x_y.z; python_version < "3.11"']
    assert runtime_requirements(requires) == {"boto3", "pyyaml", "x-y-z"}


if __name__ == "__main__":  # the installed distribution's own requirements (scripts/smoke.sh, in the wheel's venv)
    problems = undeclared(runtime_requirements(metadata.requires("gradient-jupyter") or []))
    print("\n".join(problems) or "every third-party import is a declared runtime dependency")
    sys.exit(1 if problems else 0)
