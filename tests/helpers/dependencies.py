"""Which third-party modules code imports, and whether declared requirements cover them (standard library only).

Code is parsed with `ast` (imports inside functions included); an import inside `try: ... except ImportError` is
optional and left out. Each third-party top-level module is mapped to the distributions that provide it
(importlib.metadata.packages_distributions()) and one of them must be named in the requirements themselves: a
dependency of a dependency (pathspec came with hatchling and mypy, the test extra's) is not enough.

Run as a script (`python tests/helpers/dependencies.py`) it checks gradient_jupyter/ against the installed
distribution's own requirements, importlib.metadata.requires("gradient-jupyter") without extras: scripts/smoke.sh runs
it in the venv of the wheel.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "gradient_jupyter"
OPTIONAL = {"ImportError", "ModuleNotFoundError"}


def _name(requirement: str) -> str:
    """The normalized distribution name of a requirement string (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot read the requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def runtime_requirements(requires: list[str]) -> set[str]:
    """Names of the requirements that are not behind an extra."""
    return {_name(r) for r in requires if not re.search(r"\bextra\s*==", r.partition(";")[2])}


def pyproject(extras: tuple[str, ...] = ()) -> set[str]:
    """Names in the tree's pyproject.toml: [project].dependencies, plus those of the extras named."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pytest's own dependency there
        import tomli as tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extra = [r for e in extras for r in project["optional-dependencies"][e]]
    return {_name(r) for r in project["dependencies"] + extra}


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


def third_party(modules: set[str]) -> set[str]:
    return {m for m in modules if m not in sys.stdlib_module_names and m != PACKAGE.name}


def package_imports(package: Path = PACKAGE) -> dict[str, list[str]]:
    """Third-party top-level module -> the package's files that import it."""
    where: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for module in third_party(required_imports(ast.parse(path.read_text(encoding="utf-8"), str(path)))):
            where.setdefault(module, []).append(str(path.relative_to(package.parent)))
    return where


def undeclared(declared: set[str], imports: dict[str, list[str]]) -> list[str]:
    """One line per imported third-party module (module -> where) whose distribution is not declared directly."""
    providers = metadata.packages_distributions()
    problems = []
    for module, files in sorted(imports.items()):
        dists = sorted({_name(d) for d in providers.get(module, [])})
        if not dists:
            problems.append(f"{module} (imported by {', '.join(files)}) is not installed: no distribution provides it")
        elif not declared & set(dists):
            problems.append(
                f"{module} (imported by {', '.join(files)}) comes from {' or '.join(dists)}, "
                "which is not among the declared requirements"
            )
    return problems


if __name__ == "__main__":  # the installed distribution's own requirements (scripts/smoke.sh, in the wheel's venv)
    problems = undeclared(runtime_requirements(metadata.requires("gradient-jupyter") or []), package_imports())
    print("\n".join(problems) or "every third-party import is a declared runtime dependency")
    sys.exit(1 if problems else 0)
