"""Entry point ``custseg-validate``: check the customer table and summarise it for DVC.

Writes the validated table as Parquet (``data.validated``): typed and columnar, the later
stages read it instead of parsing and validating the CSV text again. And two files so
``dvc metrics diff`` shows how the data moved between versions:

- ``metrics/data.json`` (:data:`DATA_METRICS`): the flat headline number (the row count),
  narrow enough for ``dvc metrics show`` next to the other metrics;
- ``metrics/data_profile.json`` (:data:`DATA_PROFILE`): min/mean/max of every numeric column
  and the counts of every categorical column, the per-column detail (not a DVC metric).

Stops with the validation errors (file, column, lines, reason) when the table breaks its
schema; nothing is written then.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from custseg.backends import backend_of
from custseg.config import CONF_DIR, Settings, to_settings
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import exit_on_user_error, known_keys
from custseg.storage.data import ColumnSummary, DataInfo
from custseg.storage.outputs import write_json_atomic
from custseg.storage.paths import DATA_METRICS, DATA_PROFILE


def data_summary(info: DataInfo) -> dict:
    """The headline number: the row count (the columns are in the profile)."""
    return {"n_rows": info.n_rows}


def data_profile(summary: ColumnSummary) -> dict:
    """Min/mean/max of every numeric column, and value counts (by value) of every other
    column with at most :data:`~custseg.storage.data.PROFILED_CATEGORIES` distinct values."""
    return {
        "numeric": {
            column: {"min": float(lo), "mean": round(float(mean), 6), "max": float(hi)}
            for column, (lo, mean, hi) in summary.numeric.items()
        },
        "categories": {
            column: {str(k): int(v) for k, v in sorted(counts.items())}
            for column, counts in summary.categories.items()
        },
    }


def run_validate(settings: Settings) -> tuple[dict, DataInfo]:
    """Validate ``data.path`` on ``engine.name``; write the validated table
    (``data.validated``, Parquet, for the later stages), :data:`DATA_PROFILE` and
    :data:`DATA_METRICS`.

    Returns
    -------
    summary : dict
        The headline numbers written to :data:`DATA_METRICS`.
    info : DataInfo
        What was read, with the categorical values normalised per column.
    """
    info, columns = backend_of(settings.engine).validate(settings)
    summary = data_summary(info)
    # how many categorical values were read under their allowed spelling, per column
    write_json_atomic(data_profile(columns) | {"normalised": info.normalised}, DATA_PROFILE)
    write_json_atomic(summary, DATA_METRICS)
    return summary, info


@known_keys("custseg-validate")
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-validate")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    quiet_console()
    settings = to_settings(cfg)
    summary, info = run_validate(settings)
    print(
        f"{summary['n_rows']} customers valid; table in {settings.data.validated}, "
        f"counts in {DATA_METRICS}, column profile in {DATA_PROFILE}"
    )
    for column, n in info.normalised.items():
        print(f"  {n} {column} values read under their allowed spelling (spaces, case, aliases)")


if __name__ == "__main__":
    main()
