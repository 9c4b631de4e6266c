"""Starting problems: presets shipped in ``resources/presets.json`` and random logits.

Pure NumPy and JSON; no Qt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from numpy.typing import NDArray

from .loaders import load_logits
from .resources import resource_path

__all__ = ["RANDOM_KINDS", "Preset", "get_preset", "presets", "random_labels", "random_logits"]

#: Distributions offered by "Randomize": name -> description.
RANDOM_KINDS: dict[str, str] = {
    "normal": "standard normal, times the scale",
    "uniform": "uniform in [-scale, scale]",
    "integer": "integers 1..99, as in the origin question",
}


@dataclass(frozen=True)
class Preset:
    """A named starting problem.

    Attributes
    ----------
    name : str
        Stable identifier (``"origin"``).
    title, description : str
    logits : ndarray (N, C) float64
        Inline in ``presets.json``, or read from the resource file an entry names (``"file"``).
    labels : ndarray (N,) int64
    settings : dict
        Overrides of the check settings (``reduction``, ``scheme``, ``eps``, ``dtype``).
    """

    name: str
    title: str
    description: str
    logits: NDArray
    labels: NDArray
    settings: dict = field(default_factory=dict)


@cache
def _load() -> tuple[Preset, ...]:
    data = json.loads(resource_path("presets.json").read_text(encoding="utf-8"))
    out = []
    for item in data["presets"]:
        if "file" in item:  # real logits shipped beside presets.json (.safetensors, .npz, ...)
            logits, file_labels = load_logits(resource_path(item["file"]))
            labels = np.asarray(file_labels, dtype=np.int64)
        else:
            logits = np.asarray(item["logits"], dtype=np.float64)
            labels = np.asarray(item["labels"], dtype=np.int64)
        out.append(
            Preset(item["name"], item["title"], item["description"], logits, labels, dict(item.get("settings", {})))
        )
    return tuple(out)


def presets() -> tuple[Preset, ...]:
    """All shipped presets, in menu order."""
    return _load()


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises
    ------
    ValueError
        If there is no such preset; the message lists the known names.
    """
    for p in _load():
        if p.name == name:
            return p
    raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(p.name for p in _load())}")


def random_logits(n: int, c: int, kind: str = "normal", seed: int | None = 0, scale: float = 1.0) -> NDArray:
    """Random logits of shape (n, c), float64.

    Examples
    --------
    >>> x = random_logits(3, 10, "integer", seed=1)
    >>> x.shape, bool(x.min() >= 1 and x.max() <= 99)
    ((3, 10), True)
    """
    if kind not in RANDOM_KINDS:
        raise ValueError(f"unknown distribution {kind!r}; expected one of {', '.join(RANDOM_KINDS)}")
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.normal(0.0, scale, (n, c))
    if kind == "uniform":
        return rng.uniform(-scale, scale, (n, c))
    return rng.integers(1, 100, (n, c)).astype(np.float64)


def random_labels(n: int, c: int, seed: int | None = 0) -> NDArray:
    """Random class indices in ``0..c-1``, shape (n,), int64."""
    return np.random.default_rng(None if seed is None else seed + 1).integers(0, c, n).astype(np.int64)
