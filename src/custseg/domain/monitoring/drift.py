"""Judge a batch's counts against a model's reference profile: per column, per named
segment, and a verdict (``stable``, ``watch``, ``resegment`` or ``insufficient``).

Per column, with Evidently's tests and thresholds: a test against the training customers
(all of them, or the reference's seeded sample of at most 1,000) -- Kolmogorov-Smirnov
for a numeric column with more than 5 distinct values, a Z-test of proportions for a
binary categorical column, chi-square otherwise -- *and* its effect size (the Wasserstein
distance over the reference's standard deviation, or the Jensen-Shannon distance). A
column drifts when its Holm-adjusted p-value is below ``alpha`` and its distance reaches
``distance_threshold``: a trivial shift on a large batch is not drift (the distance says
so), nor is the noise of a small batch (the test says so). PSI is reported beside them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from custseg.domain.monitoring import statistics as st
from custseg.domain.monitoring.batch import ALL, BatchCounts, GroupCounts, NumericCounts, grid
from custseg.domain.monitoring.rules import DISCRETE_MAX, EXPECTED_BEYOND, DriftRules


def _r(value: float | None, digits: int = 6) -> float | None:
    """A reported number: ``digits`` significant digits (a p-value of 4.99996e-2 stays
    below 0.05), None when undefined."""
    if value is None or not np.isfinite(value):
        return None
    return float(f"{float(value):.{digits}g}")


def psi_band(value: float, rules: DriftRules) -> str:
    """``stable``, ``moderate`` or ``major``, by the PSI bands."""
    if value >= rules.psi_resegment:
        return "major"
    return "moderate" if value >= rules.psi_watch else "stable"


# ------------------------------------------------------------------ columns


def _numeric_test(
    entry: Mapping[str, Any],
    sample: np.ndarray,
    points: np.ndarray,
    counts: NumericCounts,
) -> dict[str, Any]:
    """KS and the normalized Wasserstein distance of one numeric column."""
    reference = np.searchsorted(np.sort(sample), points, side="right") / len(sample)
    args = (counts.below, counts.at_or_below, counts.n)
    distance = st.wasserstein(points, reference, *args, counts.low_sum, counts.high_sum)
    spread = entry["std"] or 1.0
    result = {"effect": "wasserstein_norm", "distance": distance / spread}
    d = st.ks_statistic(reference, *args)
    return result | {
        "test": "ks",
        "statistic": d,
        "p_value": st.ks_pvalue(d, len(sample), counts.n),
    }


def _category_test(reference: np.ndarray, batch: np.ndarray) -> dict[str, Any]:
    """Chi-square or Z-test and the Jensen-Shannon distance of count vectors."""
    result = {"effect": "jensen_shannon", "distance": st.js_distance(reference, batch)}
    if len(reference) == 2:
        p = st.proportions_pvalue(
            int(reference[0]), int(reference.sum()), int(batch[0]), int(batch.sum())
        )
        return result | {"test": "z_test", "p_value": p}
    return result | {"test": "chi_square", "p_value": st.chi_square_pvalue(reference, batch)}


def _discrete_counts(sample: np.ndarray, points: np.ndarray, counts: NumericCounts) -> tuple:
    """A numeric column of few values as category counts (``points`` + one for others)."""
    reference = np.array([np.sum(sample == p) for p in points] + [0])
    at = counts.at_or_below - counts.below
    return reference, np.append(at, counts.n - at.sum())


def column_test(
    entry: Mapping[str, Any],
    sample: list,
    points: np.ndarray | None,
    counts: GroupCounts,
    column: str,
    whole: bool,
) -> dict[str, Any] | None:
    """One column's test on one group; None when either side has no value.

    ``sample`` holds the group's reference values; ``whole``: the group is the whole
    batch, so categories compare with the reference's whole counts.
    """
    if entry["kind"] == "numeric":
        values = np.array([v for v in sample if v is not None], dtype=float)
        batch = counts.numeric[column]
        if len(values) == 0 or batch.n == 0:
            return None
        if entry["distinct"] <= DISCRETE_MAX:
            return _category_test(*_discrete_counts(values, points, batch))
        return _numeric_test(entry, values, points, batch)
    batch = counts.categories[column]
    reference = entry["counts"] if whole else _value_counts(sample)
    values = sorted(set(reference) | set(batch))
    r = np.array([reference.get(v, 0) for v in values])
    b = np.array([batch.get(v, 0) for v in values])
    if r.sum() == 0 or b.sum() == 0:
        return None
    return _category_test(r, b)


def _value_counts(sample: list) -> dict[str, int]:
    values, counts = np.unique([v for v in sample if v is not None], return_counts=True)
    return {str(v): int(n) for v, n in zip(values, counts, strict=True)}


def _judge(results: dict[str, dict | None], rules: DriftRules) -> None:
    """Holm-adjust the family's p-values and decide ``drifted`` for each result."""
    names = [n for n, r in results.items() if r is not None]
    adjusted = st.holm([results[n].get("p_value") for n in names])
    for name, p in zip(names, adjusted, strict=True):
        result = results[name]
        far = result["distance"] >= rules.distance_threshold
        result["p_adjusted"] = p
        result["drifted"] = bool(far and p < rules.alpha)


def _column_psi(entry: Mapping[str, Any], counts: GroupCounts, column: str) -> float:
    if entry["kind"] == "numeric":
        return st.psi(entry["bin_counts"], counts.numeric[column].bins)
    batch = counts.categories[column]
    values = sorted(set(entry["counts"]) | set(batch))
    return st.psi([entry["counts"].get(v, 0) for v in values], [batch.get(v, 0) for v in values])


def _rounded(result: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _r(v) if isinstance(v, float) else v for k, v in result.items()}


def column_results(reference: Mapping[str, Any], batch: BatchCounts, rules: DriftRules) -> dict:
    """Every reference column on the whole batch: a result, ``absent`` or ``empty``."""
    counts = batch.groups[ALL]
    results: dict[str, dict | None] = {}
    for column, entry in reference["columns"].items():
        if column in batch.absent:
            continue
        points = grid(reference, column) if entry["kind"] == "numeric" else None
        sample = reference["sample"][column]
        results[column] = column_test(entry, sample, points, counts, column, True)
    _judge(results, rules)
    columns = {}
    for column, entry in reference["columns"].items():
        if column in batch.absent:
            columns[column] = {"status": "absent", "drifted": False}
            continue
        result = results[column]
        if result is None:
            columns[column] = {"status": "empty", "drifted": False}
            continue
        value = _column_psi(entry, counts, column)
        result |= {"status": "compared", "threshold": rules.distance_threshold}
        result |= {"psi": value, "psi_band": psi_band(value, rules)}
        if entry["kind"] == "numeric" and entry["distinct"] > DISCRETE_MAX:
            mean = counts.numeric[column].total / counts.numeric[column].n
            result["shift_sd"] = (mean - entry["mean"]) / (entry["std"] or 1.0)
        result["alpha"] = rules.alpha
        columns[column] = _rounded(result)
    return columns


# ------------------------------------------------------------------ segments


def _inside(
    reference: Mapping[str, Any],
    key: int,
    counts: GroupCounts,
    batch: BatchCounts,
    rules: DriftRules,
) -> list[str] | None:
    """The columns that drifted among one segment's customers (None: too few to test)."""
    if counts.n < rules.min_rows:
        return None
    in_segment = np.asarray(reference["sample"]["segment"]) == key
    results: dict[str, dict | None] = {}
    for column, entry in reference["columns"].items():
        if column in batch.absent:
            continue
        sample = [
            v for v, keep in zip(reference["sample"][column], in_segment, strict=True) if keep
        ]
        points = grid(reference, column) if entry["kind"] == "numeric" else None
        results[column] = column_test(entry, sample, points, counts, column, False)
    _judge(results, rules)
    return [c for c, r in results.items() if r is not None and r["drifted"]]


def expected_beyond(segment: Mapping[str, Any]) -> float:
    """The share of a segment's customers expected beyond its training 95th-percentile
    distance: its training share there, at least 5%."""
    return max(segment["distance"]["beyond_p95"] or 0.0, EXPECTED_BEYOND)


def _share_tests(
    reference: Mapping[str, Any], batch: BatchCounts, rules: DriftRules
) -> tuple[list, list]:
    """Holm-adjusted p-values per segment: its share, and its customers beyond p95 (in a
    segment of at least ``min_rows`` customers of the batch)."""
    n_ref, n = reference["n_rows"], batch.groups[ALL].n
    shares, beyond = [], []
    for key, segment in reference["segments"].items():
        m = batch.groups[int(key)].n
        shares.append(st.proportions_pvalue(segment["count"], n_ref, m, n))
        trained = round(segment["count"] * (segment["distance"]["beyond_p95"] or 0.0))
        tested = m >= rules.min_rows and segment["count"] > 0
        beyond.append(
            st.excess_pvalue(batch.beyond[int(key)], m, trained, segment["count"])
            if tested
            else None
        )
    return st.holm(shares), st.holm(beyond)


def _segment_entry(
    reference: Mapping[str, Any], key: int, batch: BatchCounts, p: tuple, rules: DriftRules
) -> dict[str, Any]:
    segment = reference["segments"][str(key)]
    n, m = batch.groups[ALL].n, batch.groups[key].n
    before, after = segment["count"] / reference["n_rows"], m / n
    beyond = batch.beyond[key] / m if m else None
    far = beyond is not None and beyond > rules.beyond_ratio * expected_beyond(segment)
    return {
        "name": segment["name"],
        "share_reference": before,
        "share": after,
        "share_delta": after - before,
        "customers": m,
        "p_adjusted": p[0],
        "drifted": bool(
            p[0] < rules.alpha and 100 * abs(after - before) >= rules.share_points_watch
        ),
        "beyond_p95": beyond,
        "beyond_p95_expected": expected_beyond(segment),
        "beyond_p95_flagged": bool(far and p[1] is not None and p[1] < rules.alpha),
        "columns_drifted": _inside(reference, key, batch.groups[key], batch, rules),
    }


def segment_results(
    reference: Mapping[str, Any], batch: BatchCounts, rules: DriftRules
) -> tuple[dict, dict]:
    """Per segment: shares, their test, the customers beyond the p95 distance, the
    columns drifted inside; and the shares overall (chi-square, PSI, largest change)."""
    keys = [int(k) for k in reference["segments"]]
    share_p, beyond_p = _share_tests(reference, batch, rules)
    segments = {
        str(key): _rounded(_segment_entry(reference, key, batch, p, rules))
        for key, *p in zip(keys, share_p, beyond_p, strict=True)
    }
    n_ref, n = reference["n_rows"], batch.groups[ALL].n
    before = np.array([reference["segments"][str(k)]["count"] for k in keys])
    after = np.array([batch.groups[k].n for k in keys])
    overall = {
        "p_value": st.chi_square_pvalue(before, after),
        "psi": st.psi(before, after),
        "largest_change_points": float(np.max(np.abs(100 * (after / n - before / n_ref)))),
    }
    overall["psi_band"] = psi_band(overall["psi"], rules)
    return segments, _rounded(overall)
