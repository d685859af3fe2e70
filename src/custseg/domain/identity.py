"""Segment identity across model versions: ids that follow the customers, names that
follow the numbers.

KMeans numbers its clusters by chance, so a retrain can swap "segment 1" and "segment
3". Here a new model's segments get their ids from the reference model (the champion
recorded in the segment catalog) through the customers they share: on the new table,
``n_ij`` customers are in the champion's segment ``i`` and the new segment ``j``, and
their Jaccard overlap is ``n_ij / (row_i + col_j - n_ij)``. A new segment *survives* (keeps
the champion's id) when that overlap is at least ``min_overlap`` (one-to-one, the largest
total overlap first); any other segment gets a new id above every id the champion has,
so an id never changes meaning. Splits and merges are reported as such
(:func:`lineage`).

Names are facts, not identity: every version names its segments from its own numbers
(:func:`custseg.domain.profiling.naming.name_segments`). A surviving segment keeps its level words
within a hysteresis band and its persona while it still meets the persona's rule.

The catalog starts afresh (no id carried over, new ids above the old largest, the report
says "first model of this data") when the model reads other columns than the champion,
when fewer than half of the champion's segments survive, or when asked to
(``catalog.fresh``). With no reference, ids follow a deterministic order of the
centroids (:func:`custseg.domain.segment_model.canonical_order`), so they do not depend on
the row order of the table either.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from custseg.domain.agreement import adjusted_rand_of_counts
from custseg.domain.clustering import FitResult, segment_model
from custseg.domain.profiling.naming import Earlier, SegmentDescription, name_segments
from custseg.domain.profiling.profiles import SegmentProfiles, profile_columns, profile_segments
from custseg.domain.profiling.rules import NamingRules
from custseg.domain.segment_model import SegmentModel, canonical_order

#: share of an old segment's customers a new segment must take to count as a part of
#: its split, and share of each old segment a new one must take to count as a merge
SPLIT_SHARE = 0.2
MERGE_SHARE = 0.5


def comparable(model: SegmentModel, reference: SegmentModel | None) -> bool:
    """Whether ``reference`` uses the same input columns (and ``rfm_score`` on the same
    ones), so its centroids can be compared with ``model``'s in original units."""
    return (
        reference is not None
        and list(reference.numeric) == list(model.numeric)
        and list(reference.categorical) == list(model.categorical)
        # centroids of rfm_score columns are scores, not values: comparable only as scores
        and reference.score_columns == model.score_columns
    )


def same_columns(model: SegmentModel, reference: SegmentModel | None) -> bool:
    """Whether ``reference`` reads the same input columns as ``model`` (the same data
    source, as far as identity goes)."""
    return reference is not None and set(reference.columns) == set(model.columns)


def jaccard(counts: pd.DataFrame) -> pd.DataFrame:
    """Jaccard overlap of every pair of old (rows) and new (columns) segments, from
    ``counts``, the customers per pair (:func:`transitions`)."""
    n = counts.to_numpy(dtype=float)
    union = n.sum(axis=1, keepdims=True) + n.sum(axis=0, keepdims=True) - n
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = np.where(union > 0, n / union, 0.0)
    return pd.DataFrame(overlap, index=counts.index, columns=counts.columns)


def survivors(counts: pd.DataFrame, min_overlap: float) -> dict[int, int]:
    """New segment id -> the old segment it continues.

    One-to-one: among pairs whose Jaccard overlap (:func:`jaccard`) is at least
    ``min_overlap``, the assignment with the largest total overlap. A new segment with
    no such partner is absent (it is new, or a part of a split, or a merge).
    """
    overlap = jaccard(counts)
    shared = overlap.to_numpy()
    allowed = shared >= min_overlap
    if not allowed.any():
        return {}
    # imported here: scipy.optimize adds 0.15-0.3 s to the start of every stage that
    # imports this module, and only a catalog match needs it
    from scipy.optimize import linear_sum_assignment

    # pairs below the threshold count 0: the largest total overlap, not the most pairs
    rows, cols = linear_sum_assignment(np.where(allowed, shared, 0.0), maximize=True)
    return {
        int(overlap.columns[c]): int(overlap.index[r])
        for r, c in zip(rows, cols, strict=True)
        if allowed[r, c]
    }


def lineage(counts: pd.DataFrame) -> list[dict[str, Any]]:
    """Splits and merges between an old (rows) and a new (columns) segmentation.

    ``counts`` are the customers per pair of segment ids (stable ids on both sides). An
    old segment *split* when at least two new segments each took at least
    :data:`SPLIT_SHARE` of its customers and are mostly (at least half) made of them (one
    part may have kept its id); a new segment is a *merge* when it took at least
    :data:`MERGE_SHARE` of the customers of two or more old segments.

    Returns
    -------
    list of dict
        ``{"event": "split", "from": [old], "to": [new, ...]}`` and ``{"event":
        "merge", "from": [old, ...], "to": [new]}``, in id order.
    """
    n = counts.to_numpy(dtype=float)
    of_old = n / np.maximum(n.sum(axis=1, keepdims=True), 1.0)
    of_new = n / np.maximum(n.sum(axis=0, keepdims=True), 1.0)
    events = []
    for r, old in enumerate(counts.index):
        mostly_its = (of_old[r] >= SPLIT_SHARE) & (of_new[r] >= 0.5)
        parts = [int(counts.columns[c]) for c in np.flatnonzero(mostly_its)]
        if len(parts) >= 2:
            events.append({"event": "split", "from": [int(old)], "to": parts})
    for c, new in enumerate(counts.columns):
        sources = [int(counts.index[r]) for r in np.flatnonzero(of_old[:, c] >= MERGE_SHARE)]
        if len(sources) >= 2:
            events.append({"event": "merge", "from": sources, "to": [int(new)]})
    return events


@dataclass(frozen=True)
class Identity:
    """A model's segments with stable ids, names and personas.

    Attributes
    ----------
    model : SegmentModel
        Rows in ascending stable id, with names, personas and level words.
    descriptions : dict of int to SegmentDescription
        By stable id.
    survived : dict of int to float
        Stable id of every surviving segment -> its Jaccard overlap with the champion's.
    fresh : str
        Why no identity was carried over from the champion (``""`` when some was, or
        when there is no champion).
    ids : dict of int to int
        Provisional id -> stable id.
    """

    model: SegmentModel
    descriptions: dict[int, SegmentDescription]
    survived: dict[int, float]
    fresh: str
    ids: dict[int, int]

    def record(self, min_overlap: float) -> dict[str, Any]:
        """What ``models/changes.json`` says of identity (plain, deterministic data)."""
        new = sorted(set(self.ids.values()) - set(self.survived))
        return {
            "carried": bool(self.survived),
            "fresh": self.fresh or None,
            "min_overlap": min_overlap,
            "overlap": {str(s): j for s, j in sorted(self.survived.items())},
            "new_ids": new,
            "renamed_personas": {
                str(s): d.was_persona for s, d in self.descriptions.items() if d.was_persona
            },
        }


def carry_identity(
    model: SegmentModel,
    profiles: SegmentProfiles,
    rules: NamingRules,
    reference: SegmentModel | None,
    counts: Callable[[], pd.DataFrame],
    min_overlap: float = 0.5,
    fresh: bool = False,
) -> Identity:
    """Give a new model's segments their stable ids, names and personas.

    Parameters
    ----------
    model : SegmentModel
        The new model, with provisional ids (the sweep's canonical ones).
    profiles : SegmentProfiles
        Its segments' profiles on the table, by provisional id.
    rules : NamingRules
        Naming rules and persona table.
    reference : SegmentModel or None
        The champion of the catalog.
    counts : callable
        ``counts()`` gives the table's customers per (champion id, provisional id)
        (:func:`transitions`, or an engine's count); called only when identity may be
        carried over (same columns, not ``fresh``).
    min_overlap : float, default 0.5
        Jaccard overlap a segment needs to survive (:func:`survivors`).
    fresh : bool, default False
        Start a new catalog whatever the overlap (``catalog.fresh``).

    Returns
    -------
    Identity
    """
    why = _fresh_reason(model, reference, fresh)
    overlap = pd.DataFrame()
    survived: dict[int, int] = {}
    if reference is not None and not why:
        table = counts()
        overlap = jaccard(table)
        survived = survivors(table, min_overlap)
        if 2 * len(survived) < reference.k:
            why = (
                f"only {len(survived)} of the champion's {reference.k} segments share at "
                f"least {min_overlap:g} of their customers with a new segment"
            )
            survived = {}
    earlier = {
        new: Earlier(
            dict(reference.segment_levels.get(old, {})),
            reference.segment_personas.get(old, ""),
        )
        for new, old in survived.items()
    }
    names = name_segments(profiles, rules, list(model.columns), earlier)
    ids = _stable_ids(model, reference, survived)
    descriptions = {ids[s]: replace(d, segment=ids[s]) for s, d in names.items()}
    # a cluster the fit left empty has no profile: it keeps its placeholder name
    empty = {ids[s]: n for s, n in model.segment_names.items() if ids[s] not in descriptions}
    relabelled = model.relabel(
        ids,
        {i: d.name for i, d in descriptions.items()} | empty,
        {i: d.persona for i, d in descriptions.items()} | dict.fromkeys(empty, ""),
        {i: d.levels for i, d in descriptions.items()} | {i: {} for i in empty},
    )
    if reference is not None:  # ids the champion's line gave out stay given out
        relabelled = replace(relabelled, next_id=reference.first_free_id)
    kept = {old: round(float(overlap.at[old, new]), 6) for new, old in survived.items()}
    ids = {int(s): int(i) for s, i in ids.items()}
    return Identity(relabelled, dict(sorted(descriptions.items())), kept, why, ids)


def _fresh_reason(model: SegmentModel, reference: SegmentModel | None, fresh: bool) -> str:
    if reference is None:
        return ""
    if fresh:
        return "catalog.fresh is set"
    if not same_columns(model, reference):
        return f"the champion reads {sorted(reference.columns)}, this model {sorted(model.columns)}"
    return ""


def _stable_ids(
    model: SegmentModel, reference: SegmentModel | None, survived: Mapping[int, int]
) -> dict[int, int]:
    """Provisional id -> stable id: survivors keep the champion's, the others follow
    the canonical order from the champion's :attr:`~SegmentModel.first_free_id` (above
    every id its line of versions gave out; from 0 with no champion)."""
    order = [model.segments[i] for i in canonical_order(model.centroid_table())]
    next_id = reference.first_free_id if reference is not None else 0
    ids = dict(survived)
    for s in order:
        if s not in ids:
            ids[s], next_id = next_id, next_id + 1
    return ids


def compare_models(
    reference: SegmentModel | None, model: SegmentModel, table: pd.DataFrame
) -> dict[str, Any]:
    """What changed from ``reference`` (the champion) to ``model`` on the customers of
    ``table`` (see :func:`model_changes`)."""
    return model_changes(
        reference, model, table.columns, lambda: transitions(reference, model, table)
    )


def transitions(reference: SegmentModel, model: SegmentModel, table: pd.DataFrame) -> pd.DataFrame:
    """Customers per (``reference``'s segment id, ``model``'s segment id) of ``table``:
    a crosstab, ids as index and columns (only pairs some customer has count)."""
    return pd.crosstab(reference.predict(table), model.predict(table))


def moving(moved: int) -> str:
    """How many customers change segment, as a phrase: ``"1 customer changes segment"``,
    ``"1,234 customers change segment"``."""
    return (
        f"{moved:,} customer changes segment"
        if moved == 1
        else f"{moved:,} customers change segment"
    )


def model_changes(
    reference: SegmentModel | None,
    model: SegmentModel,
    columns: Collection[str],
    crosstab: Callable[[], pd.DataFrame],
) -> dict[str, Any]:
    """What changed from ``reference`` (the champion) to ``model`` on the same customers.

    ``columns`` are the table's; ``crosstab()`` counts its customers per pair of segment
    ids (:func:`transitions`, or an engine's count of a table it holds), called only when
    both models score the table.

    Returns
    -------
    dict
        Plain, deterministic data (JSON-ready):

        - ``reference``: ``"none"`` (no champion recorded), ``"same"`` (identical model),
          ``"different"`` or ``"incomparable"`` (the champion reads columns the table
          lacks);
        - ``reference_fingerprint``, ``fingerprint``;
        - ``adjusted_rand``: agreement of the two segmentations (1 = identical
          partitions, whatever the ids);
        - ``moved`` / ``moved_share``: customers whose segment id changes;
        - ``transitions``: ``{"from": [...ids], "to": [...ids], "counts": [[...]]}``,
          customers per (champion segment, new segment);
        - ``segments``: per new segment id, ``status`` (``kept``/``new``), and for kept
          ones the centroid shift in original units per numeric column;
        - ``dropped``: champion segment ids the new model no longer has.
    """
    out: dict[str, Any] = {"fingerprint": model.fingerprint}
    if reference is None:
        return out | {"reference": "none", "reference_fingerprint": None}
    out["reference_fingerprint"] = reference.fingerprint
    if reference.fingerprint == model.fingerprint:
        out["reference"] = "same"
    elif any(c not in columns for c in reference.columns):
        return out | {"reference": "incomparable"}
    else:
        out["reference"] = "different"
    counts = crosstab().sort_index().sort_index(axis=1)
    matrix = counts.to_numpy(dtype=np.int64)
    n_rows = int(matrix.sum())
    stayed = sum(int(counts.at[s, s]) for s in counts.index if s in counts.columns)
    moved = n_rows - stayed
    out |= {
        "adjusted_rand": round(adjusted_rand_of_counts(matrix), 6),
        "moved": moved,
        "moved_share": round(moved / n_rows, 6) if n_rows else 0.0,
        "transitions": {
            "from": [int(i) for i in counts.index],
            "to": [int(i) for i in counts.columns],
            "counts": matrix.tolist(),
        },
        "segments": _segment_changes(reference, model),
        "dropped": sorted(set(reference.segments) - set(model.segments)),
        "events": lineage(counts),
    }
    return out


def _segment_changes(reference: SegmentModel, model: SegmentModel) -> dict[str, Any]:
    """Per new segment: ``kept`` (with its centroid shift in original units when the
    models are :func:`comparable`, and ``was_name`` when its name changed) or ``new``.
    A persona derived again is in :meth:`Identity.record` (``renamed_personas``)."""
    old, new = reference.centroid_table(), model.centroid_table()
    shared = [c for c in model.numeric if c in reference.numeric]
    old_names, names = reference.segment_names, model.segment_names
    changes: dict[str, Any] = {}
    for seg in new.index:
        if seg not in old.index:
            changes[str(int(seg))] = {"status": "new"}
            continue
        entry: dict[str, Any] = {"status": "kept"}
        if comparable(model, reference):
            entry["centroid_shift"] = {
                c: round(float(new.at[seg, c] - old.at[seg, c]), 4) for c in shared
            }
        if old_names[seg] != names[seg]:
            entry["was_name"] = old_names[seg]
        changes[str(int(seg))] = entry
    return changes


def identify(
    result: FitResult,
    table: pd.DataFrame,
    rules: NamingRules,
    scaler: str,
    data_sha256: str,
    exclude: Sequence[str] = (),
    limits: Mapping[str, list[float | None]] | None = None,
    allowed: Mapping[str, list[str]] | None = None,
) -> tuple[SegmentModel, dict[int, int]]:
    """A fit as a :class:`SegmentModel` with generated names and personas and canonical
    ids, and the segment id of each of the fit's clusters (``result.labels``' values).

    The one path from a fit to named segments (every sweep run): profile the segments
    of ``table`` (the rows ``result`` labels) and name them
    (:func:`custseg.domain.profiling.naming.name_segments`); identity against the catalog is the
    select stage's (:func:`carry_identity`). A segment is an outlier group by its share
    of every customer (:meth:`FitResult.shares`). ``limits`` and ``allowed`` (the data
    schema's, see :attr:`SegmentModel.limits`) are checked by the model's
    :meth:`~SegmentModel.score`.
    """
    numeric, categorical = profile_columns(table, result.feature_set, exclude)
    profiles = profile_segments(table, result.labels, numeric, categorical)
    if result.sizes is not None:  # a sample's profiles: sizes and shares of every customer
        sizes = pd.Series(result.sizes, dtype="int64").reindex(profiles.segments)
        shares = result.shares().reindex(profiles.segments)
        whole = pd.DataFrame({"size": sizes, "share": shares}).rename_axis("segment")
        profiles = replace(profiles, sizes=whole)
    provisional = replace(
        segment_model(result, scaler, {}, data_sha256),
        limits=dict(limits or {}),
        allowed=dict(allowed or {}),
    )
    found = carry_identity(provisional, profiles, rules, None, pd.DataFrame)
    return found.model, found.ids
