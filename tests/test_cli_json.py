"""The command line's parity with the window (class weights, ignore_index, presets, the pitfall note),
its JSON report (against its schema and the report's values), and stderr that carries one line only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from explorer.cli import SETTING_OPTIONS, build_parser
from explorer.core import CheckSettings, check_gradient
from explorer.core.settings import FIELD_NAMES
from explorer.files.presets import get_preset, presets

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "resources" / "check_report.schema.json").read_text())


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    env.pop("DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True, text=True, env=env, cwd=cwd)


def as_json(res: subprocess.CompletedProcess) -> dict:
    assert res.stderr == ""
    data = json.loads(res.stdout)
    jsonschema.validate(data, SCHEMA)
    return data


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_json_report_matches_the_report() -> None:
    res = run("check", "--preset", "near_tie", "--format", "json", "--top", "9")
    assert res.returncode == 0
    data = as_json(res)
    p = get_preset("near_tie")
    report = check_gradient(p.logits, p.labels, CheckSettings.from_mapping(p.settings))
    assert data["verdict"] == {"ok": True, "text": "PASS", "n_failed": 0, "n_elements": 9}
    assert data["loss"]["value"] == report.loss and data["shape"] == [3, 3]
    assert data["settings"] == json.loads(json.dumps(report.settings.to_mapping()))
    assert (data["tolerances"]["atol"], data["tolerances"]["rtol"]) == report.settings.tolerances
    assert data["errors"]["max_abs"] == report.comparison.max_abs_err and data["errors"]["worst"] == list(report.worst)
    assert len(data["worst_cells"]) == 9
    for cell in data["worst_cells"]:
        i, j = cell["sample"], cell["class"]
        assert cell["analytic"] == float(report.grad_analytic[i, j])
        assert cell["numeric"] == float(report.grad_numeric[i, j])
        assert cell["abs_err"] == float(report.abs_err[i, j])
        assert cell["tolerance"] == float(report.tolerance_map[i, j])
    assert data["tolerances"]["mode"] == report.tolerance_mode == "noise"
    assert data["tolerances"]["blind"] == int(report.blind.sum())
    errs = [c["abs_err"] for c in data["worst_cells"]]
    assert errs == sorted(errs, reverse=True)
    assert data["timings"]["check_s"] >= 0 and data["user_code"] is None


def test_worst_cells_list_failing_cells_first() -> None:
    res = run("check", "--format", "json", "--perturb", "all", "--top", "30")
    assert res.returncode == 1
    data = as_json(res)
    cells = data["worst_cells"]
    passed = [c["passed"] for c in cells]
    assert passed == sorted(passed)  # all failures (False) before any pass
    n_failed = data["verdict"]["n_failed"]
    assert 0 < n_failed < 30 and passed.count(False) == n_failed
    for group in (cells[:n_failed], cells[n_failed:]):
        errs = [c["abs_err"] for c in group]
        assert errs == sorted(errs, reverse=True)
    assert any("shift-invariant" in note for note in data["notes"])


def test_pitfall_explained_in_text_output() -> None:
    res = run("check", "--perturb", "row")
    assert res.returncode == 1 and "shift-invariant" in res.stdout and "Pitfall mode" in res.stdout


def test_class_weights_and_ignore_index_match_the_core(tmp_path: Path) -> None:
    p = get_preset("near_tie")
    settings = CheckSettings.from_mapping({**p.settings, "weight": (1.0, 2.0, 0.5), "ignore_index": 1})
    expected = check_gradient(p.logits, p.labels, settings)
    (tmp_path / "w.txt").write_text("1\n2\n0.5\n")
    for weight in ("1,2,0.5", str(tmp_path / "w.txt")):
        data = as_json(run("check", "--preset", "near_tie", "--weight", weight, "--ignore-index", "1",
                           "--format", "json"))  # fmt: skip
        assert data["settings"]["weight"] == [1.0, 2.0, 0.5] and data["settings"]["ignore_index"] == 1
        assert data["loss"]["value"] == expected.loss
    plain = check_gradient(p.logits, p.labels, CheckSettings.from_mapping(p.settings))
    assert expected.loss != plain.loss  # the options did something


def test_presets_command_and_help_list_every_preset() -> None:
    res = run("presets")
    assert res.returncode == 0 and res.stderr == ""
    helps = run("check", "--help").stdout
    for p in presets():
        assert f"{p.name}: {p.title}" in res.stdout
        assert p.description.split()[0] in res.stdout
        assert p.name in " ".join(helps.split())


def test_setting_options_cover_the_settings_fields() -> None:
    parser = build_parser()
    check = parser._subparsers._group_actions[0].choices["check"]  # type: ignore[union-attr]
    flags = {a.dest for a in check._actions}
    for option in SETTING_OPTIONS:
        assert (option.field in flags) == (option.field in FIELD_NAMES)
    for field in ("eps", "scheme", "dtype", "perturb", "reduction", "label_smoothing", "weight", "ignore_index"):
        assert field in flags


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--weight", "1,2"),
        ("check", "--weight", "1,x"),
        ("check", "--weight", "/no/such/weights.txt"),
        ("check", "--weight", "1,2,3,4,5,6,7,8,9,-1"),
        ("check", "--ignore-index", "1.5"),
        ("check", "--format", "yaml"),
        ("check", "--top", "-1"),
        ("export", "x.png", "--dpi", "0"),
        ("export", "x.png", "--width", "5"),
        ("check", "--logits", "labels.csv", "--labels-column", "y"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("a,b,y\n1,2,1e300\n")
    res = run(*args, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("gradient-explorer: error:"), res.stderr


def test_numerics_print_no_numpy_warnings() -> None:
    res = run("check", "--eps", "1e300")
    assert res.returncode == 1 and res.stderr == "", res.stderr
    data = as_json(run("check", "--eps", "1e300", "--format", "json"))
    assert data["errors"]["max_abs"] is None and data["verdict"]["ok"] is False  # inf written as null


def test_worst_cells_fallback_ranks_like_the_core() -> None:
    from types import SimpleNamespace

    import numpy as np

    from explorer.cli import worst_cells
    from explorer.core import compare

    rng = np.random.default_rng(3)
    ana = rng.normal(size=(30, 40))
    num = ana + rng.normal(size=ana.shape) * rng.choice([1e-9, 1e-2], size=ana.shape, p=[0.9, 0.1])
    num[2, 3] = np.nan
    cmp = compare(num, ana, atol=1e-6, rtol=1e-4)
    bare = SimpleNamespace(comparison=SimpleNamespace(abs_err=cmp.abs_err, passed=cmp.passed))
    cells = worst_cells(bare, 200)
    assert cells[0] == (2, 3)  # NaN ranks first
    flags = [bool(cmp.passed[c]) for c in cells]
    assert flags == sorted(flags) and flags.count(False) == cmp.n_failed
    for group in (cells[: cmp.n_failed], cells[cmp.n_failed :]):
        errs = [np.inf if np.isnan(cmp.abs_err[c]) else cmp.abs_err[c] for c in group]
        assert errs == sorted(errs, reverse=True)
    if hasattr(cmp, "ranked"):
        assert worst_cells(SimpleNamespace(comparison=cmp), 200) == cells


def test_a_check_that_cannot_tell_does_not_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """At eps 1e-30 every step is lost: the numeric gradient is 0 everywhere, the noise tolerance swallows every
    gradient, and a sign-flipped gradient "passed" with exit 0 (found by review). Now: CANNOT TELL, exit 1."""
    res = run("check", "--eps", "1e-30", "--format", "json")
    assert res.returncode == 1
    data = as_json(res)
    assert data["verdict"]["ok"] is False and data["verdict"]["text"] == "CANNOT TELL"
    assert data["verdict"]["n_failed"] == 0 and data["tolerances"]["blind"] == 30
    text = run("check", "--eps", "1e-30")
    assert text.returncode == 1 and "verdict: CANNOT TELL" in text.stdout
    assert run("check").returncode == 0  # the origin question at its own eps can tell, and passes


def test_a_nan_loss_does_not_pass() -> None:
    """All class weights 0 with a mean: the loss is 0/0. It printed "loss nan" and PASS (found by review)."""
    res = run("check", "--weight", ",".join(["0"] * 10), "--reduction", "mean", "--format", "json")
    assert res.returncode == 1 and as_json(res)["verdict"]["ok"] is False
