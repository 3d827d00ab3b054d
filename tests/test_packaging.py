"""The built wheel: the reusable app with its files, and nothing of the example project."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagstream_app import __version__
from tests.servers import ROOT

INFO = f"dagstream-{__version__}.dist-info"

# What a fresh clone does not have: a build must not pick up leftovers from the tree.
NOT_IN_A_CLONE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".*_cache"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """``pip wheel . --no-deps`` of a clean copy of the repository."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_IN_A_CLONE)
    # Without build isolation: the pinned setuptools of this venv, and no index needed.
    command = ["pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist")]
    built = subprocess.run(
        [sys.executable, "-m", *command, "--quiet"],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [path] = (tmp / "dist").glob("dagstream-*.whl")
    with zipfile.ZipFile(path) as built_wheel:
        yield built_wheel


def _app_files() -> set[str]:
    app = ROOT / "dagstream_app"
    return {
        path.relative_to(ROOT).as_posix()
        for path in app.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_wheel_has_no_demo_and_no_example_project(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert [n for n in names if "demo" in n.lower()] == []
    top = {n.split("/", 1)[0] for n in names}
    assert top == {"dagstream_app", INFO}
    commands = sorted(
        Path(n).name for n in names if n.startswith("dagstream_app/management/commands/")
    )
    assert commands == [
        "__init__.py",
        "dagstream_grant.py",
        "dagstream_notify.py",
        "dagstream_prune.py",
        "dagstream_schema.py",
        "dagstream_token.py",
    ]


def test_wheel_has_every_file_of_the_app(wheel: zipfile.ZipFile) -> None:
    in_app = {n for n in wheel.namelist() if n.startswith("dagstream_app/")}
    assert in_app == _app_files()
    for kind in ("templates/dagstream_app/", "static/dagstream_app/", "migrations/0001"):
        assert any(n.startswith(f"dagstream_app/{kind}") for n in in_app), kind
    assert "dagstream_app/py.typed" in in_app


def test_wheel_declares_license_classifiers_and_urls(wheel: zipfile.ZipFile) -> None:
    assert wheel.read(f"{INFO}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
    metadata = wheel.read(f"{INFO}/METADATA").decode()
    for line in (
        "License-Expression: MIT",
        "Classifier: Framework :: Django :: 5.2",
        "Classifier: Typing :: Typed",
        "Project-URL: Source, https://github.com/dagstream/dagstream",
    ):
        assert line in metadata.splitlines(), line
