"""The app stays in modules of one job: none over 450 lines, no class over 300.

A module that outgrows this has taken on a second job: split it along the jobs
it does (see the layout in the README), don't raise the bound.
"""

from __future__ import annotations

import ast
import functools
import json
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "dagstream_app"
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300


def _modules() -> list[Path]:
    return sorted(p for p in APP.rglob("*.py") if "migrations" not in p.parts)


def test_no_module_is_over_450_lines() -> None:
    long = {
        str(path.relative_to(APP)): lines
        for path in _modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def _shapes() -> dict[str, dict[str, object]]:
    """Each module's docstring (present or not) and its classes' line counts."""
    shapes: dict[str, dict[str, object]] = {}
    for path in _modules():
        tree = ast.parse(path.read_text())
        shapes[str(path.relative_to(APP))] = {
            "blank": not path.read_text().strip(),
            "docstring": ast.get_docstring(tree) is not None,
            "classes": {
                node.name: node.end_lineno - node.lineno + 1
                for node in ast.walk(tree)
                if isinstance(node, ast.ClassDef) and node.end_lineno is not None
            },
        }
    return shapes


@functools.cache
def _shapes_in_a_fresh_interpreter() -> dict[str, dict[str, object]]:
    """``_shapes()`` parsed in a child Python: in CPython 3.11.7 ``ast.parse`` fails
    with "AST constructor recursion depth mismatch" when another thread of the test
    process formats a traceback at the same moment (gh-106905)."""
    out = subprocess.run(
        [sys.executable, __file__], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_no_class_is_over_300_lines() -> None:
    long = {
        f"{module}:{name}": lines
        for module, shape in _shapes_in_a_fresh_interpreter().items()
        for name, lines in shape["classes"].items()  # type: ignore[attr-defined]
        if lines > MAX_CLASS_LINES
    }
    assert long == {}


def test_every_module_says_what_it_holds() -> None:
    missing = [
        module
        for module, shape in _shapes_in_a_fresh_interpreter().items()
        if not shape["blank"] and not shape["docstring"]
    ]
    assert missing == []


if __name__ == "__main__":
    print(json.dumps(_shapes()))
