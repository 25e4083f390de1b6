"""The repository's layout holds: benchmarks and testkit stand on their own. No file under
bench/ or testkit/ imports from tests/ (what both need lives in testkit/) or edits sys.path
(benchmarks run as ``python -m bench.NAME`` from the root; docs/benchmarks.md)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BENCH_MODULES = {path.stem for path in (ROOT / "bench").glob("*.py")} - {"__init__"}


def problems(source: str) -> list[str]:
    """What in ``source`` leans on tests/ or on sys.path, one line each."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "sys" and any(alias.name == "path" for alias in node.names):
                found.append((line, "imports sys.path"))
        else:
            modules = []
        for module in modules:
            top = module.split(".")[0]
            if top == "tests":
                found.append((line, f"imports {module}"))
            elif top in BENCH_MODULES:  # works only with bench/ itself on sys.path
                found.append((line, f"imports {module}, not bench.{module}"))
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            found.append((line, "touches sys.path"))
        if isinstance(node, ast.Constant) and str(node.value).split(".")[0] == "tests":
            found.append((line, f"names the module {node.value!r}"))  # python -m tests.x
    return [f"line {line}: {what}" for line, what in sorted(found)]


def _files() -> list[Path]:
    return sorted([*(ROOT / "bench").rglob("*.py"), *(ROOT / "testkit").rglob("*.py")])


@pytest.mark.parametrize("path", _files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_bench_and_testkit_neither_import_tests_nor_edit_sys_path(path: Path) -> None:
    assert problems(path.read_text()) == [], f"{path.relative_to(ROOT)}"


def test_the_check_catches_each_way_of_leaning_on_tests() -> None:
    source = "\n".join(
        [
            "import sys",
            "from pathlib import Path",
            "sys.path.insert(0, str(Path(__file__).parents[1]))",
            "from sys import path",
            "from tests.pg import fresh_database",
            "import tests.samples",
            "import soak_checks",
            "argv = ['python', '-m', 'tests.stubs.openai_stub']",
            "from bench import soak_checks",
            "from testkit.pg import fresh_database",
        ]
    )
    assert problems(source) == [
        "line 3: touches sys.path",
        "line 4: imports sys.path",
        "line 5: imports tests.pg",
        "line 6: imports tests.samples",
        "line 7: imports soak_checks, not bench.soak_checks",
        "line 8: names the module 'tests.stubs.openai_stub'",
    ]
