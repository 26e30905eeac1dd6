"""Drift of one segment: has its data changed since the live model was trained, and do the live
model's realized errors still match what its backtest promised? Plain pandas and scipy.

Data drift compares the periods the live model has not seen (after its training data ended,
at most ``recent`` of them) with the end of its training data (the last ``reference`` periods):
level (Mann-Whitney U), spread (Brown-Forsythe) and share of zero periods (Fisher's exact test).
A test flags only when significant *and* large enough to matter, so thousands of segments
tested every night do not drown the real changes in chance findings.

Concept drift compares the live model's realized absolute errors with the mean absolute error
of its backtest: their ratio, a one-sided CUSUM (Page, 1954) of the errors in units of that
backtest error, and a sign test for errors that lean one way. Figures that cannot be computed
(no demand in the reference window, no backtest to compare with) are null with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from jobs.core.names import CONCEPT_DRIFT_REASONS, DATA_DRIFT_REASONS


@dataclass(frozen=True)
class DriftSettings:
    """Windows (in periods) and thresholds: config ``monitor``, resolved for the horizon."""

    recent: int
    reference: int
    min_periods: int
    p_value: float
    min_change: float
    zero_share_change: float
    error_ratio: float
    cusum_k: float
    cusum_h: float
    bias: float


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _p(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def changed(ratio: float | None, min_change: float) -> bool:
    """A ratio at least ``1 + min_change`` or at most ``1 / (1 + min_change)``."""
    return ratio is not None and abs(math.log(max(ratio, 1e-12))) >= math.log1p(min_change)


def data_drift(reference: np.ndarray, recent: np.ndarray, s: DriftSettings) -> dict[str, Any]:
    """Level, spread and zero-share figures of recent vs reference demand, with their flags."""
    ref_level, new_level = float(reference.mean()), float(recent.mean())
    ref_sd, new_sd = float(reference.std(ddof=1)), float(recent.std(ddof=1))
    level_ratio, spread_ratio = _ratio(new_level, ref_level), _ratio(new_sd, ref_sd)
    level_p = _p(stats.mannwhitneyu(recent, reference, alternative="two-sided").pvalue)
    spread_p = None
    if ref_sd > 0 or new_sd > 0:
        spread_p = _p(stats.levene(recent, reference, center="median").pvalue)
    ref_zero, new_zero = int((reference == 0).sum()), int((recent == 0).sum())
    zero_p = _p(stats.fisher_exact([[new_zero, len(recent) - new_zero],
                                    [ref_zero, len(reference) - ref_zero]]).pvalue)
    share_ref, share_new = ref_zero / len(reference), new_zero / len(recent)
    significant = {"level": level_p, "spread": spread_p, "zero_share": zero_p}
    big = {
        # from no demand at all to some is a change of any size
        "level": changed(level_ratio, s.min_change) or (ref_level == 0 and new_level > 0),
        "spread": changed(spread_ratio, s.min_change) or (ref_sd == 0 and new_sd > 0),
        "zero_share": abs(share_new - share_ref) >= s.zero_share_change,
    }
    flags = [r for r in DATA_DRIFT_REASONS if significant[r] is not None and significant[r] < s.p_value and big[r]]
    notes = []
    if level_ratio is None:
        notes.append("level_ratio undefined: no demand in the reference window")
    if spread_ratio is None:
        notes.append("spread_ratio undefined: constant demand in the reference window")
    return {
        "level_reference": ref_level, "level_recent": new_level, "level_ratio": level_ratio, "level_p": level_p,
        "spread_ratio": spread_ratio, "spread_p": spread_p,
        "zero_share_reference": share_ref, "zero_share_recent": share_new, "zero_share_p": zero_p,
        "data_flags": flags, "notes": notes,
    }


def cusum(excess: np.ndarray, k: float) -> float:
    """Largest value of the one-sided CUSUM S_t = max(0, S_(t-1) + x_t - k) (Page, 1954)."""
    s, top = 0.0, 0.0
    for x in excess:
        s = max(0.0, s + x - k)
        top = max(top, s)
    return top


def concept_drift(errors: pd.DataFrame, promised_mae: float | None, s: DriftSettings) -> dict[str, Any]:
    """Realized error of the live model (``errors``: one row per period, ordered, with
    ``abs_error``, ``error`` and ``actual``) against its backtest's mean absolute error."""
    n = len(errors)
    out: dict[str, Any] = {"n_errors": n, "realized_mae": None, "promised_mae": promised_mae, "error_ratio": None,
                           "cusum": None, "bias": None, "bias_p": None, "concept_flags": [], "notes": []}
    if n < s.min_periods:
        out["notes"].append(f"errors not judged: {n} realized periods, fewer than {s.min_periods}")
        return out
    realized = float(errors["abs_error"].mean())
    out["realized_mae"] = realized
    flags = []
    if promised_mae is None or not math.isfinite(promised_mae):
        out["notes"].append("error_ratio undefined: no backtest error recorded for the live model")
    elif promised_mae == 0:
        out["notes"].append("error_ratio undefined: the backtest promised no error at all")
    else:
        out["error_ratio"] = realized / promised_mae
        out["cusum"] = cusum(errors["abs_error"].to_numpy() / promised_mae - 1.0, s.cusum_k)
        flags += ["error_ratio"] if out["error_ratio"] > s.error_ratio else []
        flags += ["cusum"] if out["cusum"] > s.cusum_h else []
    demand = float(errors["actual"].abs().mean())
    out["bias"] = _ratio(float(errors["error"].mean()), demand)
    if out["bias"] is None:
        out["notes"].append("bias undefined: no demand in the realized periods")
    signs = np.sign(errors["error"].to_numpy())
    above, below = int((signs > 0).sum()), int((signs < 0).sum())
    if above + below:
        out["bias_p"] = float(stats.binomtest(above, above + below, 0.5).pvalue)
        if out["bias"] is not None and out["bias_p"] < s.p_value and abs(out["bias"]) >= s.bias:
            flags.append("bias")
    out["concept_flags"] = [r for r in CONCEPT_DRIFT_REASONS if r in flags]
    return out


def segment_drift(history: pd.DataFrame, trained_until: Any, errors: pd.DataFrame, promised_mae: float | None,
                  s: DriftSettings) -> dict[str, Any]:
    """Every figure of one segment's gold.drift row (but its keys and the live model's ids).

    ``history``: the segment's open periods (``ds``, ``y``) up to the run date; ``trained_until``:
    the last period the live model learned from; ``errors``: its realized errors per period.
    """
    history = history.sort_values("ds")
    seen = history["ds"] <= pd.Timestamp(trained_until)
    reference = history.loc[seen, "y"].to_numpy(dtype=float)[-s.reference:]
    recent = history.loc[~seen, "y"].to_numpy(dtype=float)[-s.recent:]
    row: dict[str, Any] = {"n_reference": len(reference), "n_recent": len(recent), "status": "judged"}
    notes: list[str] = []
    flags: list[str] = []
    if len(recent) < s.min_periods or len(reference) < s.min_periods:
        row["status"] = "too_few_periods"
        notes.append(f"data not judged: {len(recent)} periods since training, {len(reference)} in the reference; "
                     f"both need {s.min_periods}")
    else:
        data = data_drift(reference, recent, s)
        flags += data.pop("data_flags")
        notes += data.pop("notes")
        row.update(data)
    recent_errors = errors.sort_values("ds").tail(s.recent)
    concept = concept_drift(recent_errors, promised_mae, s)
    flags += concept.pop("concept_flags")
    notes += concept.pop("notes")
    row.update(concept)
    row["data_drift"] = any(f in DATA_DRIFT_REASONS for f in flags)
    row["concept_drift"] = any(f in CONCEPT_DRIFT_REASONS for f in flags)
    row["retrain"] = bool(flags)
    row["reasons"] = ",".join(flags) or None
    row["note"] = "; ".join(notes) or None
    return row
