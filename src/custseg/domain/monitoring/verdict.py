"""From a batch's counts to the monitoring report: columns, named segments, data
quality, and the verdict with its reasons written in segment and column names.

=============  ================================================================
verdict        when (any of)
=============  ================================================================
resegment      at least ``resegment_columns_share`` of the compared columns drift;
               the segment shares' PSI reaches ``psi_resegment``; a segment's share
               moves ``share_points_resegment`` points or more, significantly
watch          a column drifts; the segment shares' PSI reaches ``psi_watch``; a
               segment's share moves ``share_points_watch`` points or more,
               significantly; a segment has more than ``beyond_ratio`` times the
               expected 5% of its customers beyond its training 95th-percentile
               distance, significantly
stable         none of these
insufficient   the batch has fewer than ``min_rows`` customers (nothing is judged)
=============  ================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from custseg.domain.monitoring.batch import ALL, BatchCounts
from custseg.domain.monitoring.drift import column_results, segment_results
from custseg.domain.monitoring.rules import INSUFFICIENT, VERDICTS, DriftRules


def _column_reason(column: str, result: Mapping[str, Any]) -> str:
    shift = result.get("shift_sd")
    if shift is None:
        return f"{column}'s mix changed (Jensen-Shannon distance {result['distance']:.2f})"
    if abs(shift) < result["distance"] / 2:  # the spread or shape moved more than the mean
        return (
            f"{column}'s distribution changed (Wasserstein distance {result['distance']:.1f} "
            f"standard deviations; its mean moved {shift:+.1f})"
        )
    size = abs(shift)
    unit = "standard deviation" if f"{size:.1f}" == "1.0" else "standard deviations"
    return f"{column} drifted {'up' if shift > 0 else 'down'} by {size:.1f} {unit}"


def _segment_reason(entry: Mapping[str, Any]) -> str:
    before, after = 100 * entry["share_reference"], 100 * entry["share"]
    verb = "grew" if after > before else "shrank"
    return f"{entry['name'] or 'segment'} {verb} from {before:.0f}% to {after:.0f}% of customers"


def reasons(columns: dict, segments: dict, shares: dict, rules: DriftRules) -> list[dict]:
    """Each rule that fired, most severe first: ``{"level", "text"}``."""
    found: list[tuple[str, str]] = []
    compared = [c for c, r in columns.items() if r["status"] == "compared"]
    drifted = [c for c in compared if columns[c]["drifted"]]
    if drifted and len(drifted) >= rules.resegment_columns_share * len(compared):
        found.append(("resegment", f"{len(drifted)} of {len(compared)} columns drifted"))
    for entry in segments.values():
        if entry["drifted"]:
            big = abs(100 * entry["share_delta"]) >= rules.share_points_resegment
            found.append(("resegment" if big else "watch", _segment_reason(entry)))
    if shares["psi_band"] != "stable":
        level = "resegment" if shares["psi_band"] == "major" else "watch"
        found.append((level, f"segment shares shifted (PSI {shares['psi']:.2f})"))
    found += [("watch", _column_reason(c, columns[c])) for c in drifted]
    for entry in segments.values():
        if entry["beyond_p95_flagged"]:
            share, expected = 100 * entry["beyond_p95"], 100 * entry["beyond_p95_expected"]
            found.append(
                (
                    "watch",
                    f"{share:.0f}% of {entry['name'] or 'segment'}'s customers no longer "
                    f"fit it (beyond its training 95th-percentile distance; {expected:.0f}% "
                    "expected)",
                )
            )
    found.sort(key=lambda item: -VERDICTS.index(item[0]))
    return [{"level": level, "text": text} for level, text in found]


def _quality(reference: Mapping[str, Any], batch: BatchCounts) -> dict[str, Any]:
    counts = batch.groups[ALL]
    missing = {c: n.missing for c, n in counts.numeric.items()} | counts.missing
    unseen = {}
    for column, values in counts.categories.items():
        known = reference["columns"][column]["counts"]
        if extra := {v: n for v, n in values.items() if v not in known}:
            unseen[column] = extra
    return {
        "absent": list(batch.absent),
        "missing": {c: n for c, n in sorted(missing.items()) if n},
        "unseen": unseen,
    }


def assess(reference: Mapping[str, Any], batch: BatchCounts, rules: DriftRules) -> dict[str, Any]:
    """The monitoring report of ``batch`` against ``reference`` (JSON-ready).

    Keys: ``verdict``, ``reasons``, ``customers``, ``columns`` (``{name: {"drifted": bool,
    ...}}``), ``segments`` (``{id: {"name", "drifted", ...}}``), ``segment_shares``,
    ``quality`` and ``rules``.
    """
    n = batch.groups[ALL].n
    report: dict[str, Any] = {
        "customers": n,
        "quality": _quality(reference, batch),
        "rules": asdict(rules),
    }
    if n < rules.min_rows:
        why = f"{n} customers scored; at least {rules.min_rows} are needed to judge drift"
        return (
            {"verdict": INSUFFICIENT, "reasons": [{"level": INSUFFICIENT, "text": why}]}
            | report
            | {"columns": {}, "segments": {}, "segment_shares": {}}
        )
    columns = column_results(reference, batch, rules)
    segments, shares = segment_results(reference, batch, rules)
    found = reasons(columns, segments, shares, rules)
    verdict = found[0]["level"] if found else "stable"
    return (
        {"verdict": verdict, "reasons": found}
        | report
        | {"columns": columns, "segments": segments, "segment_shares": shares}
    )
