"""Gradient Explorer: is my gradient right, and why does my finite-difference check say something else?

``explorer.core`` is the pure-NumPy numerics; ``explorer.gui`` is the PySide6 window.
"""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("gradient-explorer")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+src"

__all__ = ["__version__"]
