"""Rule 1 of the house: nothing below studio/ui imports Qt, pyqtgraph or sounddevice."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("PySide6", "pyqtgraph", "sounddevice", "PyQt5", "PyQt6", "shiboken6")


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def test_no_qt_below_ui():
    bad = []
    for path in (ROOT / "studio").rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[1] == "ui":
            continue
        for line, name in _imports(path):
            if name.split(".")[0] in FORBIDDEN:
                bad.append(f"{rel}:{line} imports {name}")
    assert not bad, "Qt/sounddevice outside studio/ui:\n" + "\n".join(bad)


def test_core_imports_without_qt_loaded():
    code = (
        "import sys, studio.core.document, studio.core.jobs, studio.core.project, "
        "studio.core.recovery, studio.core.settings, studio.core.model_registry\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_import_linter_contract():
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _contracts() -> list[dict]:
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def test_layers_contract_follows_design_and_covers_every_package():
    """Issue 10: the layers of DESIGN.md are enforced, and a package that lands without a
    place in them fails here (add it to the contract in pyproject.toml)."""
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    rows = [[m.strip() for m in row.split("|")] for row in layers["layers"]]
    flat = [m for row in rows for m in row]
    assert rows[0] == ["studio.cli"] and rows[1] == ["studio.ui"] and rows[-1] == ["studio.core"]
    assert flat.index("studio.train") < min(flat.index(f"studio.{p}") for p in (
        "face", "voice", "animate", "photos", "synthetic"))
    packages = {f"studio.{p.name}" for p in (ROOT / "studio").iterdir()
                if (p / "__init__.py").is_file()}
    assert packages == set(flat), (
        f"not in the layers contract: {sorted(packages - set(flat))}; "
        f"in it but missing: {sorted(set(flat) - packages)}")
    (qt,) = [c for c in _contracts() if c["type"] == "forbidden"]
    assert set(qt["source_modules"]) == packages - {"studio.ui", "studio.cli"}


def test_no_lookup_of_commands_or_panels_by_name():
    """Issue 10: command modules and dock panels are imported explicitly, so a misspelt or
    missing module fails loudly instead of being skipped or shown as 'not built yet'."""
    bad = []
    for folder in ("cli", "ui"):
        for path in (ROOT / "studio" / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "import_module" in text or "__import__(" in text:
                bad.append(str(path.relative_to(ROOT)))
    assert not bad, f"lookup of modules by name in {bad}"
    from studio.ui import main_window

    panels = {name: cls for name, _t, _a, cls in main_window.DOCKS}
    assert all(isinstance(c, type) for n, c in panels.items() if n not in ("refine", "jobs", "models"))
