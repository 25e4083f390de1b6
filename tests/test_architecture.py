"""The shape of ``shared/`` (docs/architecture.md): capability packages, none
reaching into another's internals, modules short enough to read in one sitting."""

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent / "shared"
MAX_MODULE_LINES = 400


def _modules() -> list[Path]:
    return [path for path in SHARED.rglob("*.py") if "migrations" not in path.parts]


def _package_of(path: Path) -> str:
    """``shared/handoffs/claims.py`` → ``handoffs``."""
    return path.relative_to(SHARED).parts[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """Every ``shared`` import of a module, at any depth: (module, names imported)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shared"):
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("shared")]
    return found


def test_every_module_in_shared_is_at_most_400_lines() -> None:
    long = {
        str(path.relative_to(SHARED)): lines
        for path in _modules()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_every_module_belongs_to_a_capability_package() -> None:
    loose = [path.name for path in SHARED.glob("*.py") if path.name != "__init__.py"]
    assert loose == []


def test_core_imports_no_other_package() -> None:
    reaching = {
        f"{path.relative_to(SHARED)} imports {module}"
        for path in (SHARED / "core").glob("*.py")
        for module, _ in _imports(path)
        if module.split(".")[1:2] != ["core"] and module != "shared"
    }
    assert reaching == set()


def test_no_package_imports_another_packages_internals() -> None:
    """Internals are what starts with an underscore: a ``_module`` or a ``_name``.
    A package may use its own; another package (or ``services``) may not."""
    importers = _modules() + list((SHARED.parent / "services").rglob("*.py"))
    reaching = set()
    for path in importers:
        own = _package_of(path) if SHARED in path.parents else None
        for module, names in _imports(path):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else None
            if target == own:
                continue
            private_module = any(part.startswith("_") for part in parts[2:])
            private_names = [name for name in names if name.startswith("_")]
            if private_module or private_names:
                reaching.add(f"{path.relative_to(SHARED.parent)}: {module} {private_names}")
    assert reaching == set()
