"""The layering goes one way: the store and the bus import only themselves and the
foundations (errors, runs, metrics, config), which import nothing else; the HTTP
application's parts (receiver/, admin/, probes.py) are siblings that import nothing from
each other, and service/web.py alone assembles them; the core (receiver, automation,
admin, resources, runtime, web, simulators) names no platform but asks the registry, and
a platform package uses the generic toolkit and itself only, and nothing under
service/vendors/ imports the receiver."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import service

ROOT = Path(service.__file__).parent
# What each low layer may import from the service: itself and the foundations below it
# (and, through `service/__init__.py`, the public kit every import of `service.*` loads).
LOW = {
    "store": ("service.store", "service.errors", "service.runs"),
    "bus": ("service.bus", "service.errors", "service.metrics", "service.config"),
}
# The modules at the bottom: each imports only others of them, so what a low layer may
# import pulls in nothing above it either (service/settings.py, which names every
# platform, is not one: the bus keeps its own settings, service/bus/settings.py).
FOUNDATIONS = ("service.errors", "service.runs", "service.metrics", "service.config")
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
            if is_package(node.module):  # `from service import worker` imports a module
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def is_package(module: str) -> bool:
    return module.startswith("service") and (ROOT.parent / module.replace(".", "/")).is_dir()


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(f"{package}.") for package in packages)


def not_allowed(names: set[str], allowed: tuple[str, ...]) -> list[str]:
    """The service modules among `names` outside `allowed` (the bare package aside)."""
    return sorted(n for n in names if n.startswith("service.") and not within(n, allowed))


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
    offending = not_allowed(imported(tree), LOW[path.relative_to(ROOT).parts[0]])
    assert not offending, f"{path.relative_to(ROOT)} imports {offending}: move it lower"


@pytest.mark.parametrize("module", FOUNDATIONS)
def test_a_foundation_imports_only_foundations(module: str) -> None:
    path = ROOT.parent / f"{module.replace('.', '/')}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert not_allowed(imported(tree), FOUNDATIONS) == []


def test_an_upward_import_is_caught() -> None:
    tree = ast.parse(
        "from service.clients.base import HttpApi\n"
        "from service import worker\n"
        "import service.runtime\n"
        "from service.runs import RunState\n"
        "from service.settings import Settings\n"
        "from service.vendors import registry\n"
    )
    assert not_allowed(imported(tree), LOW["store"]) == [
        "service.clients.base",
        "service.runtime",
        "service.settings",
        "service.vendors",
        "service.vendors.registry",
        "service.worker",
    ]
    assert not_allowed(imported(tree), LOW["bus"]) == [
        "service.clients.base",
        "service.runs",
        "service.runtime",
        "service.settings",
        "service.vendors",
        "service.vendors.registry",
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


# --- platforms: the core asks the registry; a platform uses the toolkit only ------------------

VENDORS = ROOT / "vendors"
PLATFORM_PACKAGES = sorted(p.parent for p in VENDORS.glob("*/__init__.py"))
# What asks about platforms, and may name only the registry and the adapter interface.
CORE = ("receiver", "automation", "admin", "resources.py", "runtime.py", "web.py", "simulators")
CORE_MODULES = sorted(
    path for part in CORE for path in ((ROOT / part).rglob("*.py") if not part.endswith(".py")
                                       else [ROOT / part])
)  # fmt: skip
# The verifiers and the normaliser kit the receiver and every platform share: they live in
# service/vendors/ so that the platforms never import the receiver, which asks the registry.
SHARED_KIT = {"service.vendors.normalise", "service.vendors.runtoken", "service.vendors.signatures"}
PLATFORM_INTERFACE = {
    "service.vendors",
    "service.vendors.registry",
    "service.vendors.adapter",
    *SHARED_KIT,
}
# The generic toolkit a platform package may build on (service/vendors/adapter.py says so).
TOOLKIT = {
    "service",
    "service.callback_tokens",
    "service.clients.base",
    "service.clients.ratelimit",
    "service.cloudevent",
    "service.errors",
    *SHARED_KIT,
    "service.config",
    "service.runs",
    "service.simulators.base",
    "service.subscriptions",
    "service.vendors.adapter",
    "service.vendors.openapi",
    "service.vendors.tables",
}


def modules_of(path: Path) -> set[str]:
    """The modules `path` imports (a name imported from a module is not one)."""
    return imported(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))


def names_a_platform(name: str) -> bool:
    return name.startswith("service.vendors") and name not in PLATFORM_INTERFACE


def test_there_are_platforms_and_a_core_to_check() -> None:
    assert {p.name for p in PLATFORM_PACKAGES} >= {"leapwork", "robocorp", "uipath", "workato"}
    assert any(p.name == "sources.py" for p in CORE_MODULES)


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_names_no_platform(path: Path) -> None:
    offending = sorted(name for name in modules_of(path) if names_a_platform(name))
    assert not offending, (
        f"{path.relative_to(ROOT)} imports {offending}: ask service.vendors.registry instead"
    )


@pytest.mark.parametrize("package", PLATFORM_PACKAGES, ids=lambda p: p.name)
def test_a_platform_imports_only_the_toolkit_and_itself(package: Path) -> None:
    own = f"service.vendors.{package.name}"
    for path in sorted(package.rglob("*.py")):
        found = {n for n in modules_of(path) if n == "service" or n.startswith("service.")}
        offending = sorted(n for n in found - TOOLKIT if n != own and not n.startswith(f"{own}."))
        assert not offending, (
            f"{path.relative_to(ROOT)} imports {offending}: a platform may use only the "
            "toolkit listed in service/vendors/adapter.py"
        )


@pytest.mark.parametrize("path", sorted(VENDORS.glob("*.py")), ids=lambda p: p.name)
def test_the_registry_and_the_interface_import_no_upper_layer(path: Path) -> None:
    found = {n for n in modules_of(path) if n == "service" or n.startswith("service.")}
    offending = sorted(n for n in found - TOOLKIT if not n.startswith("service.vendors"))
    assert not offending, f"vendors/{path.name} imports {offending}"


@pytest.mark.parametrize(
    "path", sorted(VENDORS.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_nothing_under_vendors_imports_the_receiver(path: Path) -> None:
    offending = sorted(n for n in imports_of(path) if within(n, ("service.receiver",)))
    assert not offending, (
        f"{path.relative_to(ROOT)} imports {offending}: the receiver imports the registry, so "
        "what both need lives in service/vendors/ (signatures.py, runtoken.py, normalise.py)"
    )


def test_a_receiver_import_under_vendors_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "callback.py"
    path.write_text(
        "from service.receiver.signatures import Verifier\n"
        "from service import receiver\n"
        "import service.receiver.sources\n"
    )
    found = {n for n in imports_of(path) if within(n, ("service.receiver",))}
    assert {"service.receiver", "service.receiver.signatures", "service.receiver.sources"} <= found


def test_the_registry_lists_every_platform_package() -> None:
    from service.vendors import registry

    assert set(registry.names()) == {p.name for p in PLATFORM_PACKAGES}
    assert [f"service.vendors.{n}" for n in registry.names()] == list(registry.PACKAGES)


def test_a_platform_naming_import_is_caught() -> None:
    tree = ast.parse(
        "from service.vendors import registry\n"
        "from service.vendors.adapter import Platform\n"
        "from service.vendors.uipath.client import UipathClient\n"
        "from service.vendors import workato\n"
    )
    assert sorted(n for n in imported(tree) if names_a_platform(n)) == [
        "service.vendors.uipath.client",
        "service.vendors.workato",
    ]


def test_the_settings_do_not_import_prometheus_client() -> None:
    """`python -m service` loads the settings before it names prometheus_client's
    multiprocess directory (processes.prepare_metrics): the settings, which import every
    platform, must not import it first, or several receiver processes cannot start."""
    import subprocess
    import sys

    code = "import sys, service.settings, service.logs; print('prometheus_client' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "False"
