"""Entry point ``custseg-validate``: check the customer table and summarise it for DVC.

Writes ``metrics/data.json`` (rows, columns and per-column ranges) so ``dvc metrics diff``
shows how the data moved between versions. Stops with the validation errors (file,
column, lines, reason) when the table breaks its schema.
"""

from __future__ import annotations

from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from custseg.config import CONF_DIR, Settings, to_settings
from custseg.io.data import DataInfo, load_customers
from custseg.io.outputs import write_json_atomic
from custseg.stages.errors import exit_on_user_error

DATA_METRICS = Path("metrics/data.json")


def data_summary(table: pd.DataFrame, info: DataInfo) -> dict:
    """Row count and min/mean/max of every numeric column, plus category counts."""
    numeric = table.select_dtypes("number")
    summary: dict = {"n_rows": info.n_rows, "n_columns": info.n_columns}
    summary["numeric"] = {
        column: {
            "min": float(numeric[column].min()),
            "mean": round(float(numeric[column].mean()), 6),
            "max": float(numeric[column].max()),
        }
        for column in numeric.columns
    }
    categorical = table.select_dtypes(exclude="number").columns
    summary["categories"] = {
        column: {str(k): int(v) for k, v in table[column].value_counts().sort_index().items()}
        for column in categorical
        if table[column].nunique() <= 20
    }
    return summary


def run_validate(settings: Settings) -> dict:
    table, info = load_customers(settings.data)
    summary = data_summary(table, info)
    write_json_atomic(summary, DATA_METRICS)
    return summary


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-validate")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    summary = run_validate(to_settings(cfg))
    print(f"{summary['n_rows']} customers valid; summary in {DATA_METRICS}")


if __name__ == "__main__":
    main()
