"""Test configuration: offscreen Qt by default, deterministic hypothesis profiles."""

from __future__ import annotations

import os

# Must happen before any QApplication exists: without a display (and without this),
# Qt aborts the whole test run. Tests that need a real window start Xvfb themselves.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Keep the tests' QSettings away from the user's own.
os.environ.setdefault("GRADIENT_EXPLORER_SETTINGS", "tests")

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
