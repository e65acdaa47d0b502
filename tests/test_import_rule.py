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
