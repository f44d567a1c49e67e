"""List the package's functions over 60 lines and files over 500 lines (docs/architecture.md, "Habits"): the ones
to split next. Run: python3 scripts/sizes.py [FOLDER]"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_FUNCTION, MAX_FILE = 60, 500


def main(root: Path) -> int:
    found = 0
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_FILE:
            print(f"{path.relative_to(root.parent)}: {lines} lines")
            found += 1
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION:
                    print(f"{path.relative_to(root.parent)}:{node.lineno}: {node.name}, {length} lines")
                    found += 1
    return found


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "gradient_jupyter"))
