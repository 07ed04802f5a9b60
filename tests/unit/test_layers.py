"""The layering goes one way: the store and the bus import nothing from the layers above;
the HTTP application's parts (receiver/, admin/, probes.py) are siblings that import
nothing from each other, and service/web.py alone assembles them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import service

ROOT = Path(service.__file__).parent
LOW = ("store", "bus")
ABOVE = (
    "service.clients",
    "service.receiver",
    "service.admin",
    "service.automation",
    "service.worker",
    "service.runtime",
    "service.resources",
    "service.web",
)
LOW_MODULES = sorted(p for layer in LOW for p in (ROOT / layer).rglob("*.py"))
# What each part of the HTTP application must not import: its siblings, the store (the
# receiver never needs it), and the composition roots that import them.
ROOTS = ("service.web", "service.runtime")
SIBLINGS = {
    "receiver": ("service.admin", "service.probes", "service.store", *ROOTS),
    "admin": ("service.receiver", "service.probes", *ROOTS),
    "probes.py": ("service.receiver", "service.admin", *ROOTS),
}
SIBLING_MODULES = [
    pytest.param(part, path, id=str(path.relative_to(ROOT)))
    for part in SIBLINGS
    for path in sorted((ROOT / part).rglob("*.py") if (ROOT / part).is_dir() else [ROOT / part])
]
# Every module that builds on the admin routes and on the receiver routes: the one root.
ASSEMBLED_BY = {"service.admin.mount": {"web.py"}, "service.receiver.app": {"web.py"}}


def imported(tree: ast.AST) -> set[str]:
    """Every module a module imports, at any depth (in functions, under TYPE_CHECKING)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            if node.module == "service":  # `from service import worker` imports a package
                names.update(f"service.{alias.name}" for alias in node.names)
    return names


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in packages)


def above(name: str) -> bool:
    return within(name, ABOVE)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = imported(tree)
    for node in ast.walk(tree):  # `from service.receiver import app` imports a module too
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_low_layers_have_modules_to_check() -> None:
    assert {p.parent.name for p in LOW_MODULES} >= set(LOW)


@pytest.mark.parametrize("path", LOW_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_low_module_imports_nothing_from_above(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    offending = sorted(name for name in imported(tree) if above(name))
    assert not offending, f"{path.relative_to(ROOT)} imports {offending}: move it lower"


def test_an_upward_import_is_caught() -> None:
    tree = ast.parse(
        "from service.clients.base import HttpApi\n"
        "from service import worker\n"
        "import service.runtime\n"
        "from service.runs import RunState\n"
    )
    assert sorted(name for name in imported(tree) if above(name)) == [
        "service.clients.base",
        "service.runtime",
        "service.worker",
    ]


@pytest.mark.parametrize(("part", "path"), SIBLING_MODULES)
def test_a_part_of_the_http_application_imports_no_sibling(part: str, path: Path) -> None:
    offending = sorted(name for name in imports_of(path) if within(name, SIBLINGS[part]))
    assert not offending, (
        f"{path.relative_to(ROOT)} imports {offending}: move what both need lower "
        "(as service/problems.py), or let service/web.py wire it"
    )


@pytest.mark.parametrize("module", sorted(ASSEMBLED_BY))
def test_only_the_composition_root_assembles_the_http_application(module: str) -> None:
    importers = {
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if any(within(name, (module,)) for name in imports_of(path))
    }
    assert importers == ASSEMBLED_BY[module]


def test_a_sibling_import_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "app.py"
    path.write_text("from service.admin import openapi\nfrom service.receiver import app\n")
    assert within("service.admin.openapi", SIBLINGS["receiver"])
    assert {"service.admin.openapi", "service.receiver.app"} <= imports_of(path)
