"""Human-readable text about reports and cells: the summary, the inspector, hover tips. No Qt."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from explorer.core import Report, dtype_max
from explorer.core.digest import digest
from explorer.core.explain import CellExplanation

if TYPE_CHECKING:
    from explorer.app.display import CellValues
    from explorer.usercode.runner import UserCheck

__all__ = [
    "DARK_HTML_COLORS",
    "LIGHT_HTML_COLORS",
    "PITFALL_SENTENCE",
    "SummaryParts",
    "Verdict",
    "affected_cells",
    "cell_cause",
    "cell_tooltip",
    "element_verdict",
    "explanation_html",
    "extreme_notes",
    "html_colors",
    "summary_parts",
    "use_html_colors",
    "user_cell_html",
    "user_result_html",
    "verdict_of",
    "verdict_rule",
]

PITFALL_SENTENCE = (
    "Softmax is shift-invariant: adding the same eps to every logit of a row leaves the probabilities, "
    "and so the loss, unchanged. This quotient is the derivative along the all-ones direction, which is "
    "exactly 0 (the rows of the gradient sum to 0). Perturb one element at a time to get the gradient."
)


#: Colours of the rich text (verdicts, pitfall notes, causes) on a light background: 4.5:1 on white.
LIGHT_HTML_COLORS = {"pass": "#1a7f37", "fail": "#c62828", "warn": "#8a4b00"}
#: The same on a dark background: 4.5:1 on #1e1e1e.
DARK_HTML_COLORS = {"pass": "#4ccf6e", "fail": "#ff7b72", "warn": "#f0b35a"}
_html_colors = dict(LIGHT_HTML_COLORS)


def use_html_colors(colors: dict[str, str]) -> None:
    """Set the colours every text below uses (the window's theme calls this on a change of scheme)."""
    _html_colors.clear()
    _html_colors.update(colors)


def html_colors() -> dict[str, str]:
    """The colours in use: keys ``pass``, ``fail``, ``warn``."""
    return dict(_html_colors)


def _c(key: str) -> str:
    return _html_colors[key]


def _g(v: float, digits: int = 6) -> str:
    return f"{v:.{digits}g}"


@dataclass(frozen=True)
class SummaryParts:
    """What the summary panel says: named rows, notes and the computing time.

    Attributes
    ----------
    rows : tuple of (name, html)
        "Verdict", "Checking" (when a source is named), "Loss", "Max |num − ana|", "Max relative error",
        "Worst cell", "Row sums of ∂L/∂x", "Check"; names are plain text.
    notes : tuple of str
        HTML paragraphs (pitfall mode, extreme values, blind cells).
    timing : str
        "computed in … ms" (empty when no duration is given).
    """

    rows: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    timing: str


def _distinct(a: float, b: float) -> tuple[str, str]:
    """``a`` and ``b`` with 6 significant digits, or as many more as it takes to tell them apart (up to 17)."""
    for digits in (6, 9, 12, 17):
        ta, tb = _g(a, digits), _g(b, digits)
        if ta != tb or a == b:
            return ta, tb
    return ta, tb


def summary_parts(report: Report, duration_s: float | None = None, source: str | None = None) -> SummaryParts:
    """The summary panel's content: loss, errors, worst cell, verdict, row-sum check, pitfall note.

    ``source`` names whose gradient was checked (the built-in loss when None).
    """
    s = report.settings
    cmp = report.comparison
    result = verdict_of(report)
    if result.ok:
        verdict = f"<b style='color:{_c('pass')}'>PASS</b>: every element within tolerance"
    elif not cmp.ok:
        failed = f"{cmp.n_failed:,} of {cmp.passed.size:,} elements outside tolerance"
        verdict = f"<b style='color:{_c('fail')}'>FAIL</b>: {failed}"
    else:
        verdict = f"<b style='color:{_c('warn')}'>{html.escape(result.word)}</b>: {html.escape(result.detail)}"
    worst = cmp.worst
    row_sum = float(np.max(np.abs(report.row_sums))) if report.row_sums.size else 0.0
    if worst:
        ana_w, num_w = _distinct(float(report.grad_analytic[worst]), float(report.grad_numeric[worst]))
        worst_text = f"sample {worst[0]}, class {worst[1]}: ana {ana_w}, num {num_w}"
    else:
        worst_text = "—"
    rows = [
        ("Verdict", f"{verdict}<br><small>{html.escape(verdict_rule(report))}</small>"),  # first: it matters most
        ("Loss", f"{_g(report.loss, 10)} ({s.reduction})"),
        ("Max |num − ana|", _g(cmp.max_abs_err, 3)),
        ("Max relative error", _g(cmp.max_rel_err, 3)),
        ("Worst cell", worst_text),
        (
            "Row sums of ∂L/∂x",
            f"max |Σ_j g_ij| = {_g(row_sum, 3)} (0 by shift invariance)",
        ),
        ("Check", f"{s.scheme}, eps = {s.eps:g}, {s.dtype}, perturb: {s.perturb}, re-evaluates "
                  f"{'each row' if s.evaluate == 'row' else 'the whole loss'}"),
    ]
    blind = digest(report).totals().blind
    notes = []
    if s.perturb != "element":
        what = "every logit" if s.perturb == "all" else "each whole row"
        notes.append(
            f"<p style='color:{_c('warn')}'><b>Pitfall mode</b> (perturbing {what} at once). {PITFALL_SENTENCE}</p>"
        )
    for note in extreme_notes(report):
        notes.append(f"<p style='color:{_c('fail')}'>{html.escape(note)}</p>")
    if blind:
        notes.append(
            f"<p style='color:{_c('warn')}'>In {blind:,} of {cmp.passed.size:,} cells the tolerance is as large as "
            "the gradient itself: the check cannot tell a right value from a wrong one there. A larger eps, another "
            "scheme or a wider dtype sharpens it: the Error-vs-eps panel's ★ marks the best eps for the selected "
            "cell.</p>"
        )
    if source is not None:
        rows.insert(1, ("Checking", html.escape(source)))
    timing = f"computed in {duration_s * 1e3:.1f} ms" if duration_s is not None else ""
    return SummaryParts(tuple(rows), tuple(notes), timing)


#: Every row or column.
_ALL = slice(None)


def affected_cells(report: Report, rows: slice = _ALL, cols: slice = _ALL) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of the cells ``rows x cols`` (all by default): cells with a non-finite gradient, and
    cells where the numeric gradient is exactly 0 but the analytic one is not (the perturbation did not
    register). Element by element, so any region gives the whole grid's values there."""
    ana = report.grad_analytic[rows, cols].astype(np.float64)
    num = report.grad_numeric[rows, cols].astype(np.float64)
    nonfinite = ~np.isfinite(ana) | ~np.isfinite(num)
    vanished = (num == 0) & (ana != 0) & ~nonfinite
    return nonfinite, vanished


def _cells(k: int) -> str:
    return "1 cell" if k == 1 else f"{k} cells"


def extreme_notes(report: Report) -> list[str]:
    """Plain sentences about overflow, lost steps, underflowed probabilities and the noise floor, each with
    its cause as the core classified it (:func:`explorer.core.digest.digest`, the counts of
    :attr:`explorer.core.Report.cell_flags` kept per row) and a remedy."""
    s = report.settings
    notes = []
    t = digest(report).totals()
    if t.overflowed_rows:
        top = float(dtype_max(s.dtype))
        notes.append(
            f"{t.overflowed_rows} rows hold logits beyond {s.dtype}'s range (±{top:g}) that became infinite: their "
            f"gradients are NaN ({t.nonfinite} cells, marked ×). Switch to a wider dtype."
        )
    elif t.nonfinite:
        notes.append(f"{t.nonfinite} gradient cells are not finite (marked ×).")
    if s.perturb != "element":
        return notes
    if t.lost:
        need = t.lost_need
        notes.append(
            f"In {_cells(t.lost)} (marked ○) x + eps rounds back to x in {s.dtype} (the spacing of {s.dtype} "
            f"at |x| = {t.lost_at:g} is {need:g}), so the step is lost and the numeric gradient is exactly 0. "
            f"Remedy: eps ≥ {need:g}, or a wider dtype."
        )
    if t.underflow:
        notes.append(
            f"In {_cells(t.underflow)} (marked ○) the probability p underflows to 0 in {s.dtype}, so the loss does "
            f"not change whatever the step (the true gradient is at most {t.underflow_largest:.2g}). "
            + ("A wider dtype resolves it." if s.dtype != "float64" else
               "float64 is the widest dtype: the check cannot see these cells.")
        )
    if t.floor:
        notes.append(
            f"In {_cells(t.floor)} (marked ○) the numeric gradient is exactly 0 while the analytic one is "
            f"{t.floor_largest:.2g} at most: the change of the loss is below its rounding (the noise floor). A larger "
            "eps or a wider dtype lifts it."
        )
    return notes


def cell_cause(e: CellExplanation) -> str:
    """One sentence on why this cell's numeric gradient is 0 or NaN (empty when it is neither)."""
    if e.row_overflow:
        return "The row holds an infinite logit (beyond the dtype's range): the gradient is NaN."
    if e.step_lost:
        return (f"x + eps rounds back to x in this dtype: the step is lost. Use eps ≥ {e.min_eps:g} "
                "(the spacing of the dtype at |x|), or a wider dtype.")  # fmt: skip
    if e.p_underflow:
        return "p underflows to 0 in this dtype: the loss does not change whatever the step."
    if e.noise_floor:
        return "The change of the loss is below its rounding (the noise floor): try a larger eps."
    return ""


#: A check is inconclusive when its blind cells (tolerance ≥ |gradient|) hold at least this share of the
#: gradient's total magnitude: then any gradient, a sign-flipped one included, would "pass".
BLIND_SHARE_LIMIT = 0.1


def blind_share(report: Report) -> float:
    """The share of the total |analytic gradient| in cells where the check cannot tell (0 when none)."""
    return digest(report).totals().blind_share


@dataclass(frozen=True)
class Verdict:
    """The check's verdict: ``word`` is PASS, FAIL or CANNOT TELL; ``detail`` says why (empty for PASS)."""

    ok: bool
    word: str
    detail: str = ""

    @property
    def text(self) -> str:
        """One line: ``PASS``, ``FAIL (why)`` or ``CANNOT TELL: why``."""
        if not self.detail:
            return self.word
        return f"{self.word} ({self.detail})" if self.word == "FAIL" else f"{self.word}: {self.detail}"


def verdict_of(report: Report) -> Verdict:
    """PASS only when every element passes *and* the check can tell (see :data:`BLIND_SHARE_LIMIT`);
    otherwise FAIL, or CANNOT TELL when the elements pass only because the tolerance swallows the gradient."""
    cmp = report.comparison
    if not math.isfinite(report.loss):  # named first: it is the cause of whatever the elements show
        return Verdict(False, "FAIL", "the loss is not a finite number, so its finite differences mean nothing")
    if not cmp.ok:
        return Verdict(False, "FAIL", f"{cmp.n_failed:,} of {cmp.passed.size:,} elements")
    share = blind_share(report)
    if share >= BLIND_SHARE_LIMIT:
        n = digest(report).totals().blind
        return Verdict(False, "CANNOT TELL", (
            f"in {n:,} cells holding {share:.0%} of the gradient the tolerance is as large as the "
            "gradient itself, so any value would pass; raise eps, change the scheme or widen the dtype"
        ))  # fmt: skip
    return Verdict(True, "PASS")


def verdict_rule(report: Report) -> str:
    """The per-element rule that decided the verdict, in words."""
    from explorer.core import NOISE_MULTIPLE

    if report.tolerance_mode == "noise":
        return (f"|num − ana| ≤ {NOISE_MULTIPLE:g} × the expected error of the numeric estimate (noise verdict; "
                "give atol/rtol for fixed tolerances)")  # fmt: skip
    atol, rtol = report.settings.tolerances
    return f"|num − ana| ≤ atol + rtol·|ana|, atol = {atol:g}, rtol = {rtol:g} (fixed tolerances)"


def element_verdict(passed: bool, tolerance: float, analytic: float) -> str:
    """One element's verdict in a word: "FAIL", "blind" (it passes only because its tolerance is at least
    ``|analytic| > 0``, so any value would pass: the cells the summary counts as ones the check cannot tell),
    or "pass".

    Examples
    --------
    >>> element_verdict(True, 1e-3, 1e-4), element_verdict(True, 1e-9, 1e-4), element_verdict(False, 1e-9, 1e-4)
    ('blind', 'pass', 'FAIL')
    """
    if not passed:
        return "FAIL"
    a = abs(analytic)
    return "blind" if math.isfinite(a) and 0 < a <= tolerance else "pass"


def _element_words(passed: bool, tolerance: float, analytic: float, fails: str = "FAILS") -> str:
    """The element's verdict in the words of the tooltip and the inspector."""
    word = element_verdict(passed, tolerance, analytic)
    if word == "blind":
        return "passes, but only as the tolerance is as large as the gradient: the check cannot tell here"
    return "passes" if word == "pass" else fails


def cell_tooltip(values: CellValues, gradient: str = "analytic") -> str:
    """Plain text for hovering a cell: sample, class, both gradients, both errors and the verdict.

    ``gradient`` names the gradient being checked ("analytic", or "yours" for the user's code).
    """
    i, j = values.cell
    return (
        f"sample {i}, class {j}\n"
        f"{gradient:<9} {values.analytic:.10g}\n"
        f"numeric   {values.numeric:.10g}\n"
        f"abs error {values.abs_err:.3g}\n"
        f"rel error {values.rel_err:.3g}\n"
        f"tolerance {values.tolerance:.3g}: {_element_words(values.passed, values.tolerance, values.analytic)}"
    )


def user_cell_html(values: CellValues, source: str) -> str:
    """The inspector for the user's code: the values at the cell (their code is a black box)."""
    i, j = values.cell
    return (
        f"<h3>Sample {i}, class {j}</h3><p>Checking {html.escape(source)}.</p>"
        f"<p><b>Your gradient</b>: {values.analytic:.17g}<br><b>Numeric</b> (finite differences of your loss): "
        f"{values.numeric:.17g}</p><p><b>Errors</b>: |num − yours| = {values.abs_err:.3g}, relative "
        f"{values.rel_err:.3g}; tolerance {values.tolerance:.3g}: "
        f"{_element_words(values.passed, values.tolerance, values.analytic, '<b>fails</b>')}.</p>"
        "<p><small>Your code runs as a black box, so the inspector cannot show its inner evaluations; "
        "show the built-in check to see them for the cross-entropy.</small></p>"
    )


def user_result_html(check: UserCheck) -> str:
    """The "Your code" panel after a run: verdict, largest error, labels' shape, time, the pitfall quotient."""
    report, result, code = check.report, check.result, check.code
    cmp = report.comparison
    result_of = verdict_of(report)  # the verdict the summary shows (CANNOT TELL and a non-finite loss included)
    colour = _c("pass") if result_of.ok else _c("fail") if result_of.word == "FAIL" else _c("warn")
    verdict = f"<b style='color:{colour}'>{html.escape(result_of.word)}</b>"
    if result_of.detail:
        verdict += f" ({html.escape(result_of.detail)})"
    extra = ""
    if check.builtin_difference is not None:
        extra = (
            f"<br>max |your grad − built-in gradient ({report.settings.reduction})| = {check.builtin_difference:.3g}"
        )
    worst = ", ".join(str(int(v)) for v in cmp.worst)
    return (
        f"<p>{verdict}: finite differences of <code>{html.escape(code.loss_name)}</code> vs "
        f"{html.escape(getattr(result, 'gradient', '') or code.grad_name)}; "
        f"max |num − yours| = {cmp.max_abs_err:.3g}, worst cell "
        f"({worst}).<br>Labels passed as {result.labels_shape}; ran in {result.duration_s:.2f} s.<br>"
        f"Whole-matrix quotient (L(x + eps) − L(x)) / eps = {result.whole_matrix_quotient:.3g} "
        f"(about 0: shift invariance){extra}</p><p>The maps show <b>your</b> gradient.</p>"
    )


def _tolerance_html(e: CellExplanation) -> str:
    """The expected error of this element's numeric estimate, its parts, and the tolerance that decided."""
    expected = getattr(e, "expected_error", math.nan)
    if not math.isfinite(expected):
        return ""
    parts = (f"truncation {e.truncation_error:.2g}, step rounding {e.step_error:.2g}, "
             f"rounding of the values differenced {e.rounding_error:.2g}")  # fmt: skip
    mode = "3 × the expected error" if e.tolerance_mode == "noise" else "fixed atol + rtol·|ana|"
    verdict = _element_words(e.passed, e.tolerance, e.analytic, "<b>fails</b>")
    return (f"<p><b>Expected error</b> E = {expected:.3g} ({parts}).<br><b>Tolerance</b> ({mode}) = "
            f"{e.tolerance:.3g}: {verdict}.</p>")  # fmt: skip


def explanation_html(e: CellExplanation) -> str:
    """The cell inspector: points evaluated, loss values, quotient, analytic formula with numbers."""
    i, j = e.cell
    h = e.eps
    if e.scheme == "complex":
        pts = (
            f"<tr><td>x + i·h</td><td>{e.points[0].real:.17g} + {e.points[0].imag:.3g}i</td>"
            f"<td>Im ℓ/D = {e.losses[0]:.17g}</td></tr>"
        )
        quotient = f"Im ℓ(x + i·h) / (D·h) = {e.numeric:.17g}"
    else:
        pts = "".join(
            f"<tr><td>w = {w:+.4g}</td><td>x' = {p.real:.17g}</td><td>ℓ/D = {loss:.17g}</td></tr>"
            for p, loss, w in zip(e.points, e.losses, e.weights, strict=True)
        )
        quotient = f"Σ w·ℓ(x') / (D·h) = {e.numeric:.17g}"
    on_label = j == e.label
    formula = (
        "∂L/∂x<sub>ij</sub> = (A<sub>i</sub>·p<sub>ij</sub> − a<sub>ij</sub>) / D"
        f" = ({e.big_a:.6g} · {e.p:.10g} − {e.a:.6g}) / {e.denom:g} = {e.analytic:.17g}"
    )
    plain = (
        "<small>Plain case: p<sub>ij</sub> − [j = y<sub>i</sub>]"
        f" (here j {'=' if on_label else '≠'} y<sub>i</sub> = {e.label}), divided by D for a mean.</small>"
    )
    cause = cell_cause(e)
    cause_html = f"<p style='color:{_c('fail')}'>{html.escape(cause)}</p>" if cause else ""
    perturb = ""
    loss_label = "row loss"
    if e.perturb != "element":
        what = "every logit" if e.perturb == "all" else f"all of row {i}"
        perturb = (f"<p style='color:{_c('warn')}'><b>Pitfall mode</b>: eps is added to {what} at once. "
                   f"{PITFALL_SENTENCE}</p>")  # fmt: skip
        if e.perturb == "all":
            loss_label = "loss L"
    return (
        f"<h3>Sample {i}, class {j}</h3>"
        f"<p>x<sub>ij</sub> = {e.logit:.17g}, label y<sub>i</sub> = {e.label}, scheme {e.scheme}, h = {h:g}</p>"
        f"{perturb}"
        f"<table cellspacing='4'><tr><th></th><th>point</th><th>{loss_label}</th></tr>{pts}</table>"
        f"<p><b>Numeric</b>: {quotient}</p>{cause_html}"
        f"<p><b>Analytic</b>: {formula}<br>{plain}</p>"
        f"<p><b>Errors</b>: |num − ana| = {e.abs_err:.3g}, relative {e.rel_err:.3g}</p>"
        f"{_tolerance_html(e)}"
    )
