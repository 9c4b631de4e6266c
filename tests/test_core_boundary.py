"""The core stays pure NumPy: importing it loads no Qt."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_no_qt() -> None:
    code = (
        "import sys, explorer.core, explorer.files.presets\n"
        "qt = {'PySide6', 'pyqtgraph', 'PyQt5', 'PyQt6', 'shiboken6'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in qt)\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_needs_no_qt() -> None:
    code = (
        "import sys\n"
        "from explorer import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('QT' if any(m.startswith('PySide6') for m in sys.modules) else 'NOQT', file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "usage" in out.stdout.lower()
    assert out.stderr.strip().endswith("NOQT")
