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

from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from custseg.config import CONF_DIR, Settings, to_settings
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import exit_on_user_error
from custseg.storage.data import (
    ColumnSummary,
    DataInfo,
    column_summary,
    load_customers,
    write_validated,
)
from custseg.storage.outputs import write_json_atomic

#: flat headline numbers of the table (a DVC metric)
DATA_METRICS = Path("metrics/data.json")
#: per-column detail of the table (a plain output next to the metric, not a metric)
DATA_PROFILE = Path("metrics/data_profile.json")


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


def sklearn_validate(settings: Settings) -> tuple[DataInfo, ColumnSummary]:
    """Validate with pandas; write the validated table as one Parquet file."""
    table, info = load_customers(settings.data)
    write_validated(table, info, settings.data)
    return info, column_summary(table)


def spark_validate(settings: Settings) -> tuple[DataInfo, ColumnSummary]:
    """Validate in Spark; Spark writes the validated table (a directory)."""
    from custseg.backends.spark.data import (
        spark_column_summary,
        validate_spark,
        write_validated_spark,
    )

    frame, info = validate_spark(settings.data, settings.engine)
    try:
        write_validated_spark(frame, info, settings.data)
        return info, spark_column_summary(frame)
    finally:
        frame.unpersist()  # the validated rows, cached by validate_spark


#: how ``engine.name`` validates: the one place the validate stage's engine is chosen
VALIDATORS: dict[str, Callable[[Settings], tuple[DataInfo, ColumnSummary]]] = {
    "sklearn": sklearn_validate,
    "spark": spark_validate,
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
    info, columns = VALIDATORS[settings.engine.name](settings)
    summary = data_summary(info)
    # how many categorical values were read under their allowed spelling, per column
    write_json_atomic(data_profile(columns) | {"normalised": info.normalised}, DATA_PROFILE)
    write_json_atomic(summary, DATA_METRICS)
    return summary, info


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
