"""The dashboard's ES modules as static files (dagstream_app/static/dagstream_app/dashboard).

No build step: the browser loads the modules as they are, so every relative import
must name a file that exists, every module must be reached from main.js, scripts.html
must load main.js as a module after htmx and its ws extension, and ``collectstatic``
with manifest storage must leave imports that resolve: to the unhashed copies by
default, to hashed names with the storage docs/dashboard.md shows.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path, PurePosixPath

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.template.loader import render_to_string
from django.test import override_settings

from tests.servers import ROOT

STATIC = ROOT / "dagstream_app" / "static"
DASHBOARD = STATIC / "dagstream_app" / "dashboard"
# Static import and re-export lines (the modules are prettier-formatted: one statement
# ends with `from "..."; `).
IMPORT = re.compile(r"""^(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["'];""", re.M | re.S)


def _imports(module: Path) -> list[str]:
    return IMPORT.findall(module.read_text())


def _reached(entry: Path) -> set[Path]:
    """Every module `entry` loads, itself included, failing on an import that names nothing."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for name in _imports(module):
            assert name.startswith(("./", "../")), f"{module.name}: {name} (a bare specifier)"
            target = (module.parent / name).resolve()
            assert target.is_file(), f"{module.name} imports {name}, which does not exist"
            todo.append(target)
    return seen


def test_main_reaches_every_dashboard_module_and_the_shared_backoff() -> None:
    reached = _reached(DASHBOARD / "main.js")
    assert set(DASHBOARD.glob("*.js")) <= reached  # no module left out
    assert {p.relative_to(STATIC).as_posix() for p in reached - set(DASHBOARD.glob("*.js"))} == {
        "dagstream_app/client/backoff.js"
    }
    # The client shares it: the one reconnect policy.
    assert "./backoff.js" in _imports(STATIC / "dagstream_app" / "client" / "client.js")


def test_scripts_load_main_as_a_module_after_htmx_and_its_ws_extension() -> None:
    html = render_to_string("dagstream_app/scripts.html", {"dagstream_config": {"a": 1}})
    scripts = re.findall(r"<script\b[^>]*>", html)
    sources = [re.search(r'src="([^"]+)"', tag) for tag in scripts]
    names = [found.group(1) if found else "" for found in sources]
    main = next(i for i, name in enumerate(names) if name.endswith("dashboard/main.js"))
    assert 'type="module"' in scripts[main]
    assert any("htmx-2" in name for name in names[:main])
    assert any("hx-ws-2" in name for name in names[:main])
    assert all(" defer" in tag for tag in scripts[:main] if "src=" in tag)
    assert '<script id="ds-config" type="application/json">' in html


def _collected_imports_resolve(root: Path) -> set[str]:
    """From the stored name of main.js, every import resolves under STATIC_ROOT; the names."""
    names: set[str] = set()
    todo = [PurePosixPath(staticfiles_storage.stored_name("dagstream_app/dashboard/main.js"))]
    while todo:
        name = todo.pop()
        if name in names:
            continue
        names.add(str(name))
        for imported in _imports(root / name):
            target = PurePosixPath(
                Path(root / name.parent / imported).resolve().relative_to(root.resolve())
            )
            assert (root / target).is_file(), f"{name} imports {imported}: not collected"
            todo.append(target)
    return names


def _collectstatic(root: Path, backend: str) -> set[str]:
    """``collectstatic`` into ``root`` with ``backend``; what main.js loads from there."""
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": backend},
    }
    with override_settings(STATIC_ROOT=str(root), STORAGES=storages):
        call_command("collectstatic", "--noinput", verbosity=0)
        return _collected_imports_resolve(root)


HASHED = re.compile(r"\.[0-9a-f]{12}\.js$")


def test_manifest_storage_works_with_the_unhashed_copies_it_keeps(tmp_path: Path) -> None:
    names = _collectstatic(
        tmp_path, "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
    )
    main = [n for n in names if "/main." in n]
    assert len(main) == 1 and HASHED.search(main[0])
    assert not any(HASHED.search(n) for n in names - set(main))  # imports left as written
    assert "dagstream_app/client/backoff.js" in names


def _doc_storage() -> str:
    doc = (ROOT / "docs" / "dashboard.md").read_text()
    [block] = [b for b in re.findall(r"^```python\n(.*?)^```", doc, re.S | re.M) if "patterns" in b]
    return block


def test_the_documented_storage_rewrites_the_imports_to_hashed_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("dagstream_doc_storage")
    exec(_doc_storage(), module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    names = _collectstatic(tmp_path, f"{module.__name__}.StaticStorage")
    assert len(names) == len(list(DASHBOARD.glob("*.js"))) + 1  # the modules and backoff.js
    assert all(HASHED.search(name) for name in names), sorted(names)
