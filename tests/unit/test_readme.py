"""The README's handler and its test, run as a user would: the README cannot rot.

The code blocks that open with `# <path>` are written to a fresh folder; their test runs
there with pytest, and both pass `mypy --strict` without a guard.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"```python\n# (?P<path>[\w/]+\.py)\n(?P<code>.*?)```", re.DOTALL)
PYTEST_CONFIG = """\
[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
filterwarnings = ["error"]
"""


def readme_files() -> dict[str, str]:
    """The README's named code blocks: {path: code}."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return {m["path"]: m["code"] for m in BLOCK.finditer(text)}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's project: the README's files, with `service` importable from this checkout."""
    folder = tmp_path_factory.mktemp("myproject")
    for path, code in readme_files().items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(code, encoding="utf-8")
        (target.parent / "__init__.py").touch()
    (folder / "pyproject.toml").write_text(PYTEST_CONFIG, encoding="utf-8")
    return folder


def run(args: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{folder}", "MYPYPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=240
    )


def test_the_readme_names_a_handler_module_and_its_test() -> None:
    assert set(readme_files()) == {"myteam/handlers.py", "tests/test_myteam.py"}


@pytest.mark.timeout(300)
def test_the_readme_test_passes(project: Path) -> None:
    done = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_myteam.py"], project)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout


@pytest.mark.timeout(300)
def test_the_readme_handler_and_test_pass_strict_mypy(project: Path) -> None:
    cache = project / ".mypy_cache"
    args = ["-m", "mypy", "--strict", "--cache-dir", str(cache), "myteam", "tests"]
    done = run(args, project)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
