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

from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from custseg.config import CONF_DIR, Settings, to_settings
from custseg.io.data import DataInfo, load_customers, write_validated
from custseg.io.outputs import write_json_atomic
from custseg.stages.console import quiet_console
from custseg.stages.errors import exit_on_user_error

#: flat headline numbers of the table (a DVC metric)
DATA_METRICS = Path("metrics/data.json")
#: per-column detail of the table (a plain output next to the metric, not a metric)
DATA_PROFILE = Path("metrics/data_profile.json")


def data_summary(info: DataInfo) -> dict:
    """The headline number: the row count (the columns are in the profile)."""
    return {"n_rows": info.n_rows}


def data_profile(table: pd.DataFrame) -> dict:
    """Min/mean/max of every numeric column, and value counts of every categorical column
    with at most 20 distinct values."""
    numeric = table.select_dtypes("number")
    profile: dict = {}
    profile["numeric"] = {
        column: {
            "min": float(numeric[column].min()),
            "mean": round(float(numeric[column].mean()), 6),
            "max": float(numeric[column].max()),
        }
        for column in numeric.columns
    }
    categorical = table.select_dtypes(exclude="number").columns
    profile["categories"] = {
        column: {str(k): int(v) for k, v in table[column].value_counts().sort_index().items()}
        for column in categorical
        if table[column].nunique() <= 20
    }
    return profile


def run_validate(settings: Settings) -> tuple[dict, DataInfo]:
    """Validate ``data.path``; write the validated table (``data.validated``, Parquet, for
    the later stages), :data:`DATA_PROFILE` and :data:`DATA_METRICS`.

    Returns
    -------
    summary : dict
        The headline numbers written to :data:`DATA_METRICS`.
    info : DataInfo
        What was read, with the categorical values normalised per column.
    """
    table, info = load_customers(settings.data)
    summary = data_summary(info)
    write_validated(table, info, settings.data)
    # how many categorical values were read under their allowed spelling, per column
    write_json_atomic(data_profile(table) | {"normalised": info.normalised}, DATA_PROFILE)
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
