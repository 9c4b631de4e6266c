"""Row-local recomputation of a gradient check: an edit of some rows redoes only those rows.

Perturbing a logit of row i changes only row i's loss, so with the "row" evaluation the
gradients, the quotients and the errors of the other rows do not change. A one-cell edit
of a 32 x 262,144 grid then costs one row (262,144 elements) instead of 8.4 million.

:func:`update_rows` returns exactly the :class:`~explorer.core.Report` that
:func:`~explorer.core.check_gradient` gives for the new problem (bit for bit: the tests
check it), or computes that full check itself when the update is not row-local:

* ``evaluate`` other than "row" (the whole loss couples every row), ``perturb="all"``;
* a change of the mean's denominator (a label or ignore mark whose weight differs);
* probability targets, a new shape or new settings.

Per-row summaries (each row's loss, its largest errors and failure count) are kept with
the report (:func:`prepare`), so the report-wide numbers (loss, worst cell, maxima,
verdict) are updated in O(N) instead of O(N C).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._dtypes import as_float_array, quiet_if_nonfinite, resolve_dtype
from .digest import _CACHE_KEY as DIGEST_KEY
from .digest import RowDigest, refresh_rows
from .errors import Comparison, RankCandidates, _abs_err, _rel_err, compare, compare_noise, tolerance_from_expected
from .losses import LossTerms, _reduce, _row_losses, _shifted, grad_rows, loss_terms
from .noise import NOISE_MULTIPLE, NoiseRows, expected_dtype, noise_floor
from .numeric import BLOCK_ELEMENTS, RowBlock, _shifted_quotient
from .report import CANDIDATES_KEY, RANK_DEPTH, Report, check_gradient, float64_row_sums
from .schemes import get_scheme
from .settings import CheckSettings

__all__ = ["RowPatch", "RowSummary", "changed_rows", "compute_rows", "prepare", "row_local_refusal", "update_rows"]

#: A block of a flattened error map: (flat start, |num - ana|, passed).
_Block = tuple[int, NDArray, NDArray]
#: Elements per block while a patched grid is ranked.
_RANK_ROWS_ELEMENTS = 1 << 16
#: Key of the per-row summary in a report's ``__dict__`` (next to its cached ``cell_flags``).
_CACHE_KEY = "_row_summary"


@dataclass(frozen=True)
class RowSummary:
    """Per-row numbers from which the report-wide ones follow in O(N).

    Attributes
    ----------
    losses : ndarray (N,)
        Each row's loss in the working precision, as :func:`~explorer.core.cross_entropy` forms it.
    arg : ndarray (N,) of int
        Column of the row's largest ``abs_err`` (its first NaN, else its first maximum).
    key : ndarray (N,)
        ``abs_err`` there (NaN when the row has a NaN error).
    max_abs, max_rel : ndarray (N,)
        The row's largest ``abs_err`` and ``rel_err``, a NaN counted as inf.
    failed : ndarray (N,) of int
        Elements of the row that fail the verdict.
    """

    losses: NDArray
    arg: NDArray
    key: NDArray
    max_abs: NDArray
    max_rel: NDArray
    failed: NDArray

    def copy(self) -> RowSummary:
        return RowSummary(*(a.copy() for a in (self.losses, self.arg, self.key, self.max_abs, self.max_rel,
                                                 self.failed)))  # fmt: skip


def _terms(shape: tuple[int, int], labels: ArrayLike, settings: CheckSettings, rows: slice | None = None) -> LossTerms:
    kw = settings.loss_kwargs
    return loss_terms(shape, labels, kw["weight"], kw["ignore_index"], kw["reduction"], kw["label_smoothing"], rows)


def _row_losses_of(x: NDArray, terms: LossTerms) -> NDArray:
    """Row losses exactly as :func:`~explorer.core.cross_entropy` forms them (row-separable)."""
    z = _shifted(x, 1)
    lse = np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return _row_losses(z, lse, terms)


def _fill_stats(summary: RowSummary, num: NDArray, ana: NDArray, passed: NDArray, rows: slice) -> None:
    """The per-row numbers of ``rows`` from the gradients and verdict of those rows (blocks of rows at a time)."""
    c = num.shape[1]
    per = max(1, 4 * BLOCK_ELEMENTS // max(c, 1))
    for r0 in range(rows.start, rows.stop, per):
        blk = slice(r0, min(rows.stop, r0 + per))
        local = slice(blk.start - rows.start, blk.stop - rows.start)
        n64, a64 = num[local].astype(np.float64), ana[local].astype(np.float64)
        abs_err = _abs_err(n64, a64)
        rel_err = _rel_err(abs_err, n64, a64)
        arg = np.argmax(abs_err, axis=1)  # the first NaN, else the first largest: as compare's argmax
        summary.arg[blk] = arg
        summary.key[blk] = abs_err[np.arange(abs_err.shape[0]), arg]
        # A NaN counts as inf (argmax found each row's first NaN); without one, plain maxima.
        nan_abs = bool(np.isnan(summary.key[blk]).any())
        summary.max_abs[blk] = np.max(np.where(np.isnan(abs_err), np.inf, abs_err) if nan_abs else abs_err, axis=1)
        rel_nan = np.isnan(rel_err)  # also inf / inf, where abs_err is inf, not NaN
        summary.max_rel[blk] = np.max(np.where(rel_nan, np.inf, rel_err) if rel_nan.any() else rel_err, axis=1)
        summary.failed[blk] = c - np.count_nonzero(passed[local], axis=1)


def prepare(report: Report) -> RowSummary:
    """The per-row summary of ``report``, computed on first use (O(N C)) and kept with the report.

    Call it in a worker thread after a full check, so that the first row-local update is fast.
    """
    cached = report.__dict__.get(_CACHE_KEY)
    if isinstance(cached, RowSummary):
        return cached
    n, c = report.logits.shape
    x = report.logits
    per = max(1, 4 * BLOCK_ELEMENTS // max(c, 1))
    blocks = []
    with quiet_if_nonfinite(x):
        for r0 in range(0, n, per):  # row-separable: blocks of rows give the whole grid's bits
            rows = slice(r0, min(n, r0 + per))
            blocks.append(_row_losses_of(x[rows], _terms(x.shape, report.labels, report.settings, rows)))
    losses = np.concatenate(blocks) if blocks else _row_losses_of(x, _terms(x.shape, report.labels, report.settings))
    summary = RowSummary(
        losses, np.zeros(n, dtype=np.intp), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n, dtype=np.int64)
    )
    cmp = report.comparison
    _fill_stats(summary, report.grad_numeric, report.grad_analytic, cmp.passed, slice(0, n))
    report.__dict__[_CACHE_KEY] = summary  # like functools.cached_property on the frozen report
    return summary


def changed_rows(report: Report, labels: ArrayLike, logit_rows: ArrayLike = ()) -> NDArray:
    """Sorted rows to recompute: ``logit_rows`` and every row whose label differs from the report's."""
    y = np.asarray(labels)
    relabelled = np.flatnonzero(y != report.labels) if y.shape == report.labels.shape else np.arange(y.shape[0])
    return np.union1d(np.asarray(logit_rows, dtype=np.intp).ravel(), relabelled).astype(np.intp)


def row_local_refusal(report: Report, shape: tuple[int, ...], labels: ArrayLike, settings: CheckSettings) -> str | None:
    """Why the new problem cannot be updated row by row from ``report`` (None when it can).

    O(N): compares settings, shapes and the mean's denominator; no logit is read.
    """
    if settings != report.settings:
        return "the settings changed"
    if getattr(settings, "evaluate", "row") != "row":
        return "evaluate='loss' couples every row"
    if settings.perturb not in ("element", "row"):
        return "perturb='all' couples every row"
    y = np.asarray(labels)
    if tuple(shape) != report.logits.shape or y.ndim != 1 or report.labels.ndim != 1:
        return "the shape or the kind of target changed"
    try:
        new = _terms(report.logits.shape, y, settings).denom
    except ValueError as exc:
        return str(exc)
    if new != _terms(report.logits.shape, report.labels, settings).denom:
        return "the mean's denominator changed"
    return None


def _runs(rows: NDArray) -> list[slice]:
    """Contiguous runs of sorted unique row indices, as slices."""
    if rows.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [rows.size]])
    return [slice(int(rows[a]), int(rows[b - 1]) + 1) for a, b in zip(starts, stops, strict=True)]


def _aligned(run: slice, block: int, n: int) -> slice:
    """``run`` widened to the row blocks the full numeric gradient uses, so the blocks are the same."""
    return slice((run.start // block) * block, min(n, -(-run.stop // block) * block))


def update_rows(
    report: Report,
    logits: ArrayLike,
    labels: ArrayLike,
    rows: ArrayLike | slice,
    settings: CheckSettings | None = None,
    progress: Callable[[float], None] | None = None,
) -> Report:
    r"""The check of a problem that differs from ``report``'s only in some rows, recomputing only those rows.

    Parameters
    ----------
    report : Report
        The check of the previous problem.
    logits : array_like
        The new logits: the whole grid (N, C), or just the rows ``rows`` (k, C) in their order.
    labels : array_like, shape (N,)
        The new labels (rows whose label changed are recomputed too).
    rows : array_like of int or slice
        Rows whose logits changed.
    settings : CheckSettings, optional
        The new settings (default: the report's). Other settings mean a full check.
    progress : callable, optional
        Called with the fraction done; it may raise to abandon the work.

    Returns
    -------
    Report
        Equal, bit for bit, to ``check_gradient(new_logits, labels, settings)``. ``report`` is not changed.

    Notes
    -----
    Row-local when :func:`row_local_refusal` is None: then for every changed row :math:`i`,
    :math:`g_a`, :math:`g_n`, the errors and the verdict of row :math:`i` are recomputed
    (the numeric gradient in the same row blocks as the full check), the per-row summary
    gives the worst cell, the maxima and :math:`\sum_i \ell_i` again in O(N), and the
    other rows are copied. Otherwise the full check runs (the grid is rebuilt from
    ``report.logits`` when only the changed rows are given).

    Examples
    --------
    >>> x, y = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), np.array([2, 0])
    >>> r = check_gradient(x, y)
    >>> x[1, 1] = 5.0
    >>> update_rows(r, x, y, [1]).grad_analytic.tolist() == check_gradient(x, y).grad_analytic.tolist()
    True
    """
    settings = report.settings if settings is None else settings
    n, c = report.logits.shape
    if isinstance(rows, slice):
        edited = np.arange(n)[rows]
    else:
        edited = np.unique(np.asarray(rows, dtype=np.intp).ravel())
    new = as_float_array(logits, "logits")
    if new.ndim != 2 or new.shape[1] != c or new.shape[0] not in (n, edited.size):
        raise ValueError(f"logits of shape {new.shape} fit neither the grid {(n, c)} nor the {edited.size} rows")
    if edited.size and (edited[0] < 0 or edited[-1] >= n):
        raise ValueError(f"rows must lie in 0..{n - 1}")
    block_given = new.shape[0] != n  # just the edited rows (a whole grid when every row was edited)
    y = np.asarray(labels)
    why = row_local_refusal(report, (n, c) if block_given else new.shape, y, settings)
    if why is None and report.expected_error is None:
        why = "the report has no expected-error map"
    if why is not None:
        if block_given:
            full = report.logits.copy()
            with np.errstate(over="ignore"):
                full[edited] = new.astype(full.dtype)
            new = full
        return check_gradient(new, y, settings, progress)
    return compute_rows(report, new if block_given else new[edited], y, edited, settings, progress).apply()


@dataclass(frozen=True)
class RowPatch:
    """The recomputed rows of a check: what :func:`compute_rows` found, to be written by :meth:`apply`.

    Attributes
    ----------
    base : Report
        The report the rows replace rows of.
    settings : CheckSettings
    labels : ndarray (N,)
    spans : list of slice
        Row ranges recomputed (the changed rows widened to the full check's row blocks).
    parts : list of dict
        For each span, the new rows of ``logits``, ``grad_analytic``, ``grad_numeric``, ``passed``,
        ``row_sums``, ``expected_error`` and ``losses`` (the error maps follow from them).
    """

    base: Report
    settings: CheckSettings
    labels: NDArray
    spans: list[slice]
    parts: list[dict[str, NDArray]]
    #: The new report's worst cells and their per-block candidates (:meth:`ranked`), kept with it by
    #: :meth:`apply` when given.
    ranking: NDArray | None = None
    candidates: RankCandidates | None = None
    #: The rows whose inputs changed (edited logits, new labels), sorted: the rest of the spans were recomputed
    #: only because they share a row block, and come out bit for bit as they were.
    changed: NDArray | None = None

    def ranked(self, depth: int = RANK_DEPTH) -> RowPatch:
        """This patch with the new report's ``depth`` worst cells ranked (call it in the worker, before
        :meth:`apply` writes the rows in): the base's per-block candidates with the edited rows' blocks
        re-ranked, O(rows x C + blocks x depth); O(N C) when the base kept none."""
        b = self.base
        n, c = b.grad_analytic.shape
        passed = b.comparison.passed

        def rows_of(rows: slice) -> tuple[NDArray, NDArray]:
            num, ana = b.grad_numeric[rows].astype(np.float64), b.grad_analytic[rows].astype(np.float64)
            ok = passed[rows].copy()
            for span, part in zip(self.spans, self.parts, strict=True):
                lo, hi = max(rows.start, span.start), min(rows.stop, span.stop)
                if lo < hi:  # these rows are new: the patch's values
                    mine, theirs = slice(lo - rows.start, hi - rows.start), slice(lo - span.start, hi - span.start)
                    num[mine] = part["grad_numeric"][theirs]
                    ana[mine] = part["grad_analytic"][theirs]
                    ok[mine] = part["passed"][theirs]
            return _abs_err(num, ana), ok

        old = b.__dict__.get(CANDIDATES_KEY)
        if isinstance(old, RankCandidates) and old.depth >= depth and old.shape == (n, c):
            per = old.rows_per_block
            touched = sorted(
                {k for s in self.spans if s.stop > s.start for k in range(s.start // per, (s.stop - 1) // per + 1)}
            )
            cands = old.updated(rows_of, touched)
        else:
            cands = RankCandidates.build(rows_of, (n, c), depth)
        return replace(self, ranking=cands.ranking(depth), candidates=cands)

    @property
    def rows(self) -> slice:
        """The smallest row range holding every recomputed row."""
        return slice(self.spans[0].start, self.spans[-1].stop) if self.spans else slice(0, 0)

    def apply(self, inplace: bool = False) -> Report:
        """The new report: the base's arrays with the recomputed rows written in, and new totals (O(N)).

        ``inplace=False`` copies the base's arrays first (the base report stays as it was).
        ``inplace=True`` writes into the base's arrays, O(rows x C): the base report then no longer
        describes its own problem and must not be used again (the app calls it on the GUI thread,
        where the base is replaced by the result at once).
        """
        b = self.base
        cmp = b.comparison
        assert b.expected_error is not None
        arrays: dict[str, NDArray] = {
            "logits": b.logits, "grad_analytic": b.grad_analytic, "grad_numeric": b.grad_numeric,
            "passed": cmp.passed, "row_sums": b.row_sums, "expected_error": b.expected_error,
        }  # fmt: skip
        # The maps the base's comparison has formed already (on first use) are kept up to date too.
        derived = {k: cmp.__dict__[k] for k in ("abs_err", "rel_err", "tolerance") if cmp.__dict__.get(k) is not None}
        # Copies unless in place; a read-only array (a broadcast view) is copied once either way.
        arrays = {k: v if inplace and v.flags.writeable else v.copy() for k, v in arrays.items()}
        derived = {k: v if inplace and v.flags.writeable else v.copy() for k, v in derived.items()}
        summary = prepare(b).copy()
        for span, part in zip(self.spans, self.parts, strict=True):
            for name, values in part.items():
                if name == "losses":
                    summary.losses[span] = values
                else:
                    arrays[name][span] = values
            _refresh_derived(derived, arrays, span, cmp)
        atol, rtol = self.settings.tolerances
        for span in self.spans:
            _fill_stats(summary, arrays["grad_numeric"][span], arrays["grad_analytic"][span], arrays["passed"][span],
                        span)  # fmt: skip
        comparison = _comparison(arrays, float(atol), float(rtol), summary, cmp)
        comparison.__dict__.update(derived)  # like functools.cached_property, already formed
        x = arrays["logits"]
        all_terms = _terms(x.shape, self.labels, self.settings)
        loss = np.asarray(_reduce(summary.losses, all_terms)).astype(x.dtype, copy=False)
        total = float(np.sum(loss.astype(np.float64)))
        out = Report(self.settings, x, self.labels, total, arrays["grad_analytic"], arrays["grad_numeric"], comparison,
                     arrays["row_sums"], arrays["expected_error"])  # fmt: skip
        out.__dict__[_CACHE_KEY] = summary
        if self.ranking is not None:
            out.keep_ranking(self.ranking, candidates=self.candidates)
        old_digest = b.__dict__.get(DIGEST_KEY)
        if isinstance(old_digest, RowDigest):  # kept up to date for the summary, O(rows x C)
            refresh_rows(out, old_digest, self.spans)
        return out


def compute_rows(
    report: Report,
    block: ArrayLike,
    labels: ArrayLike,
    rows: ArrayLike,
    settings: CheckSettings | None = None,
    progress: Callable[[float], None] | None = None,
) -> RowPatch:
    """Recompute the rows of ``report`` that an edit changed; reads ``report``, changes nothing.

    Parameters
    ----------
    report : Report
        The check of the previous problem; :func:`row_local_refusal` must be None for the new one.
    block : array_like, shape (len(rows), C)
        The new logits of ``rows`` (sorted, unique).
    labels : array_like, shape (N,)
        The new labels (relabelled rows are recomputed too).
    rows : array_like of int
    settings : CheckSettings, optional
    progress : callable, optional

    Returns
    -------
    RowPatch
        O(rows x C) values; :meth:`RowPatch.apply` makes the report.
    """
    settings = report.settings if settings is None else settings
    n, c = report.logits.shape
    dtype = resolve_dtype(settings.dtype)
    y = np.asarray(labels)
    edited = np.asarray(rows, dtype=np.intp).ravel()
    if report.expected_error is None:
        raise ValueError("the report has no expected-error map; run a full check")
    new_rows = {int(r): k for k, r in enumerate(edited)}
    todo = changed_rows(report, y, edited)
    prepare(report)
    atol, rtol = settings.tolerances
    noise = settings.tolerance == "noise"
    sch = get_scheme(settings.scheme)
    all_terms = _terms((n, c), y, settings)
    per_block = max(1, BLOCK_ELEMENTS // max(c, 1))
    spans = _merge([_aligned(run, per_block, n) for run in _runs(todo)])
    src = np.asarray(block)
    parts = []
    for k, span in enumerate(spans):
        x = report.logits[span].copy()
        mine = [(r - span.start, new_rows[r]) for r in range(span.start, span.stop) if r in new_rows]
        if mine:
            local, pick = (np.array(v, dtype=np.intp) for v in zip(*mine, strict=True))
            with np.errstate(over="ignore"):  # beyond the dtype's range: inf, as check_gradient makes it
                x[local] = src[pick].astype(dtype)
        terms = _terms((n, c), y, settings, span)
        part: dict[str, NDArray] = {"logits": x}
        with quiet_if_nonfinite(x):
            part["grad_analytic"] = grad_rows(x, terms)
            part["losses"] = _row_losses_of(x, terms)
            grad_n = np.empty_like(x)
            expected = np.empty(x.shape, dtype=expected_dtype(x.dtype))
            for r0 in range(span.start, span.stop, per_block):  # the row blocks of the full check
                if progress is not None and r0 > span.start:  # a superseded run stops here (progress raises)
                    progress((k + (r0 - span.start) / (span.stop - span.start)) / len(spans))
                blk = slice(r0, min(span.stop, r0 + per_block))
                local_blk = slice(blk.start - span.start, blk.stop - span.start)
                if settings.perturb == "element":
                    grad_n[local_blk] = RowBlock(x[local_blk], all_terms, blk).quotient(sch, settings.eps)
                NoiseRows(x[local_blk], all_terms, blk, settings.scheme, settings.eps).total_into(expected[local_blk])
            if settings.perturb != "element":
                grad_n = _shifted_quotient(x, terms, settings.eps, sch, settings.perturb)
            part["grad_numeric"], part["expected_error"] = grad_n, expected
            if noise:
                cmp = compare_noise(grad_n, part["grad_analytic"], atol, rtol, expected, NOISE_MULTIPLE,
                                    noise_floor(x.dtype))  # fmt: skip
            else:
                cmp = compare(grad_n, part["grad_analytic"], atol, rtol)
        part["passed"] = cmp.passed
        part["row_sums"] = float64_row_sums(part["grad_analytic"])
        parts.append(part)
        if progress is not None:
            progress((k + 1) / len(spans))
    return RowPatch(report, settings, y, spans, parts, changed=todo)


def _merge(spans: list[slice]) -> list[slice]:
    """Sorted spans with overlapping or touching ones merged."""
    out: list[slice] = []
    for sp in spans:
        if out and sp.start <= out[-1].stop:
            out[-1] = slice(out[-1].start, max(out[-1].stop, sp.stop))
        else:
            out.append(sp)
    return out


def _refresh_derived(derived: dict[str, NDArray], arrays: dict[str, NDArray], span: slice, cmp: Comparison) -> None:
    """Write the rows ``span`` of the already formed maps (``abs_err``, ``rel_err``, ``tolerance``) anew."""
    if not derived:
        return
    num = arrays["grad_numeric"][span].astype(np.float64)
    ana = arrays["grad_analytic"][span].astype(np.float64)
    abs_err = _abs_err(num, ana)
    if "abs_err" in derived:
        derived["abs_err"][span] = abs_err
    if "rel_err" in derived:
        derived["rel_err"][span] = _rel_err(abs_err, num, ana)
    if "tolerance" in derived:
        derived["tolerance"][span] = tolerance_from_expected(arrays["expected_error"][span], cmp.noise_multiple,
                                                             cmp.noise_floor)  # fmt: skip


def _comparison(arrays: dict[str, NDArray], atol: float, rtol: float, summary: RowSummary,
                base: Comparison) -> Comparison:  # fmt: skip
    """The report-wide comparison from the per-row summary (already refreshed for the recomputed rows)."""
    nan_rows = np.flatnonzero(np.isnan(summary.key))
    r = int(nan_rows[0]) if nan_rows.size else int(np.argmax(summary.key))
    worst = (r, int(summary.arg[r]))
    n_failed = int(np.sum(summary.failed))
    noise = base.mode == "noise"
    return Comparison(arrays["grad_numeric"], arrays["grad_analytic"], arrays["passed"], atol, rtol, worst,
                      float(np.max(summary.max_abs)), float(np.max(summary.max_rel)), n_failed == 0, n_failed,
                      base.mode, arrays["expected_error"] if noise else None, base.noise_multiple,
                      base.noise_floor)  # fmt: skip
