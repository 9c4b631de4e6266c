"""The wheel ships resources/ inside the package, and an installed app (not the source tree) finds them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    (found,) = out.glob("gradient_explorer-*.whl")
    return found


def test_wheel_contains_resources_and_entry_point(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        text = zf.read(entry_points).decode()
    assert {"explorer/resources/presets.json", "explorer/resources/icon.svg"} <= names
    assert "gradient-explorer = explorer.cli:main" in text
    assert not any(n.startswith("tests/") for n in names)


def test_installed_app_finds_its_resources(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)]
    subprocess.run(pip, check=True, capture_output=True)
    code = (
        "import explorer, explorer.files.resources as r, explorer.files.presets as p\n"
        "print(explorer.__file__)\n"
        "print(r.resource_path('presets.json'))\n"
        "print(len(p.presets()), p.get_preset('origin').logits.shape)\n"
    )
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    module_file, resource, counts = out.stdout.strip().splitlines()
    assert module_file.startswith(str(site))
    assert resource.startswith(str(site / "explorer" / "resources"))
    assert counts == "7 (3, 10)"
