"""Every third-party module the package imports is declared in its runtime dependencies ([project].dependencies
itself, not brought by another dependency or an extra): tests/helpers/dependencies.py says how it is checked."""

from __future__ import annotations

import ast

from .helpers.dependencies import package_imports, pyproject, required_imports, runtime_requirements, undeclared


def test_every_third_party_import_is_a_declared_dependency():
    """The tree's pyproject.toml (what its wheel will declare), read directly: an install made before an edit of it
    (the editable one of a shared environment) does not hide a dropped line. scripts/smoke.sh checks the wheel's own
    metadata (importlib.metadata.requires) the same way."""
    problems = undeclared(pyproject(), package_imports())
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
