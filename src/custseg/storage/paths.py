"""Every file the pipeline writes: the one catalog of output paths.

Fixed paths are stated here; the paths a user may move are conf keys (``data.validated``,
``sweep.output_dir``, ``report.output_dir``, ``report.metrics_file``, ``catalog.path``).
:func:`stage_outputs` puts both together per DVC stage; ``tests/test_outputs.py`` checks
that both ``dvc.yaml`` files declare exactly these outputs.
"""

from __future__ import annotations

from pathlib import Path

from custseg.config import Settings

#: the table's row count (a DVC metric), written by ``custseg-validate``
DATA_METRICS = Path("metrics/data.json")
#: per-column detail of the table (a plain output next to the metric, not a metric)
DATA_PROFILE = Path("metrics/data_profile.json")
#: what ``custseg-rfm`` read of a transaction log (a DVC metric)
RFM_METRICS = Path("metrics/rfm.json")
#: the final model's description (:class:`SegmentModel` JSON) that ``custseg-select``
#: writes and the report, ``custseg-publish`` and ``custseg-predict`` read
MODEL_FILE = Path("models/segmentation.json")
#: the selection record (chosen k and why, data, fingerprint, segment names) next to it
SELECTION_RECORD = Path("models/selection.json")
#: the model's reference profile (what its training customers looked like), which
#: ``custseg-publish`` registers with it and ``custseg-monitor`` compares batches with
REFERENCE_FILE = Path("models/reference.json")
#: what changed since the catalog's champion (transitions, ARI, centroid shifts)
CHANGES_FILE = Path("models/changes.json")
#: the chosen k and its scores (a DVC metric)
SELECTION_METRICS = Path("metrics/selection.json")
#: untracked (gitignored) registry status: versions, run ids, aliases, UI links
STATUS_FILE = Path("status/registry.json")
#: DVC's output of the publish stage: the fingerprints published (no ids, no times)
PUBLISHED_FILE = Path("status/published.json")
#: each feature set's per-k curve and fitted models in ``sweep.output_dir/<feature set>/``
CURVE_FILE = "curve.csv"
SWEEP_MODELS_FILE = "models.json"
#: the report's files in ``report.output_dir``, by kind
REPORT_FILES = {
    "html": "segments.html",
    "markdown": "segments.md",
    "assignments": "segment_assignments.csv",
    "sizes": "segment_sizes.csv",
}


def stage_outputs(settings: Settings) -> dict[str, set[str]]:
    """Each DVC stage's outputs (``outs``, ``metrics`` and ``plots``) under ``settings``;
    ``rfm`` only for a pipeline of transaction logs."""
    report = Path(settings.report.output_dir)
    outputs = {
        "validate": {settings.data.validated, DATA_PROFILE, DATA_METRICS},
        "sweep": {settings.sweep.output_dir},
        "select": {MODEL_FILE, SELECTION_RECORD, CHANGES_FILE, SELECTION_METRICS, REFERENCE_FILE},
        "report": {report / name for name in REPORT_FILES.values()}
        | {settings.report.metrics_file},
        "publish": {PUBLISHED_FILE},
    }
    if settings.transactions is not None:
        outputs = {"rfm": {Path(settings.data.path).parent, RFM_METRICS}} | outputs
    return {stage: {Path(p).as_posix() for p in paths} for stage, paths in outputs.items()}
