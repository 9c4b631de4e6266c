"""Locate files shipped in ``resources/`` (inside the wheel) or in the source tree."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["resource_path"]

_SOURCE_TREE = Path(__file__).resolve().parents[2] / "resources"


def resource_path(name: str) -> Path:
    """Path of a resource file, for example ``resource_path("presets.json")``.

    An installed wheel carries ``resources/`` as ``explorer/resources`` (see the
    build configuration); an editable or source checkout reads the top-level folder.

    Raises
    ------
    FileNotFoundError
        If the resource exists in neither place.
    """
    packaged = resources.files("explorer").joinpath("resources", name)
    if packaged.is_file():
        return Path(str(packaged))
    candidate = _SOURCE_TREE / name
    if candidate.is_file():
        return candidate
    raise FileNotFoundError(f"resource {name!r} is not installed (looked in the package and {_SOURCE_TREE})")
