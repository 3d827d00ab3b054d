"""The JavaScript client's toolchain (tests/js): installed from its lock file, run with node.

``npm ci`` installs exactly tests/js/package-lock.json, from npm's cache when it can
(``--prefer-offline``). Without node and npm the tests that need them are skipped
locally; in CI they fail.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import IN_CI, ROOT

JS = ROOT / "tests" / "js"
CLIENT = ROOT / "dagstream_app" / "static" / "dagstream_app" / "client"
TIMEOUT = 300


NODE_MAJOR = 20  # node --test --test-force-exit


def require_node() -> None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    problem = f"{' and '.join(missing)} not found" if missing else ""
    if not missing:
        version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
        if int(version.lstrip("v").split(".")[0]) < NODE_MAJOR:
            problem = f"node {version.strip()} is too old"
    if problem:
        message = f"{problem}: the JavaScript client's tests need Node {NODE_MAJOR}+ and npm"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def install() -> None:
    """``npm ci`` in tests/js (its node_modules is rebuilt from the lock file)."""
    require_node()
    run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"])


def run(
    command: list[str], *, cwd: Path = JS, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in tests/js; on failure (with ``check``) fail with its output."""
    done = subprocess.run(
        command, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT
    )
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def node(
    *args: str, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run(["node", *args], stdin=stdin, check=check)


def tsc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return node(str(JS / "node_modules" / "typescript" / "bin" / "tsc"), *args, check=check)
