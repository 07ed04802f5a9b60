"""The layering goes one way: the store and the bus import nothing from the layers above."""

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
)
LOW_MODULES = sorted(p for layer in LOW for p in (ROOT / layer).rglob("*.py"))


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


def above(name: str) -> bool:
    return any(name == upper or name.startswith(f"{upper}.") for upper in ABOVE)


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
