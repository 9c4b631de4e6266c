"""The real-logits preset: shipped in resources/, reproducible from tools/make_digits_preset.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from explorer.core import CheckSettings, check_gradient
from explorer.files.loaders import logits_file_dtype
from explorer.files.presets import get_preset, presets
from explorer.files.resources import resource_path

ROOT = Path(__file__).resolve().parent.parent


def test_digits_preset_holds_real_float32_logits() -> None:
    p = get_preset("digits")
    assert p in presets() and p.logits.shape == (300, 10) and p.labels.shape == (300,)
    assert set(np.unique(p.labels)) <= set(range(10))
    np.testing.assert_array_equal(p.logits.astype(np.float32).astype(np.float64), p.logits)  # float32 values
    accuracy = np.mean(np.argmax(p.logits, axis=1) == p.labels)
    assert 0.9 < accuracy < 1.0  # a real classifier: mostly right, some mistakes
    assert logits_file_dtype(resource_path("digits_logits.safetensors")) == "float32"
    settings = CheckSettings.from_mapping(p.settings)
    assert settings.evaluate == "loss" and settings.dtype == "float32"
    report = check_gradient(p.logits, p.labels, settings)
    assert report.ok and report.tolerance_mode == "noise"


def test_the_script_reproduces_the_shipped_logits(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("safetensors")
    spec = importlib.util.spec_from_file_location("make_digits_preset", ROOT / "tools" / "make_digits_preset.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    logits, labels, accuracy = module.make_logits()
    shipped = get_preset("digits")
    np.testing.assert_array_equal(labels, shipped.labels)
    np.testing.assert_array_equal(np.argmax(logits, axis=1), np.argmax(shipped.logits, axis=1))
    np.testing.assert_allclose(logits, shipped.logits, rtol=0, atol=1e-3)  # solver versions may differ slightly
    assert accuracy == pytest.approx(np.mean(np.argmax(shipped.logits, axis=1) == shipped.labels))
