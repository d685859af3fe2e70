"""The verdicts and the rules that give them, as plain values (``conf/monitor`` fills
:class:`DriftRules`; importing this module imports no statistics library)."""

from __future__ import annotations

from dataclasses import dataclass

#: the verdicts, mildest first
VERDICTS = ("stable", "watch", "resegment")
INSUFFICIENT = "insufficient"
#: the share of a segment's training customers beyond its 95th-percentile distance
EXPECTED_BEYOND = 0.05
#: numeric columns with at most this many distinct reference values are tested as categories
DISCRETE_MAX = 5


@dataclass(kw_only=True)
class DriftRules:
    """The thresholds of the verdict (``conf/monitor/default.yaml`` states them).

    Parameters
    ----------
    alpha : float
        Significance of every test, after Holm's correction within its family.
    distance_threshold : float
        A column drifts when its test is significant and its distance reaches this
        (normalized Wasserstein, Jensen-Shannon).
    min_rows : int
        Fewer customers than this in a batch: ``insufficient``; in a segment of the
        batch: nothing is tested inside it (its columns, its customers' distances).
    resegment_columns_share : float
        ``resegment`` when at least this share of the compared columns drift.
    psi_watch, psi_resegment : float
        Bands of the segment shares' PSI.
    share_points_watch, share_points_resegment : float
        A segment whose share moves this many points (and significantly) drifts.
    beyond_ratio : float
        ``watch`` when a segment has more than this many times the expected share (5%)
        of customers beyond its training 95th-percentile distance (and significantly).
    """

    alpha: float
    distance_threshold: float
    min_rows: int
    resegment_columns_share: float
    psi_watch: float
    psi_resegment: float
    share_points_watch: float
    share_points_resegment: float
    beyond_ratio: float
