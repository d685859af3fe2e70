"""Entry point ``custseg-rfm``: derive the customer table from a transaction log.

Reads the log of ``transactions.path`` (``conf/transactions/``; validated: missing ids,
dates not in ``transactions.date_format`` and non-numeric amounts are named with their
column, file lines and values), computes recency, frequency, monetary value and tenure of
every customer as of ``transactions.as_of`` (:mod:`custseg.domain.rfm`) and writes:

- the customer table to ``data.path`` (``conf/data/rfm.yaml``), which ``custseg-validate``
  and every later stage read as they read the Mall table;
- ``metrics/rfm.json`` (:data:`RFM_METRICS`): transactions read, customers, and what the
  as-of date and the return rule left out.

Runs with ``pipeline=transactions`` (the stages of ``transactions/dvc.yaml`` pass it).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from custseg.config import CONF_DIR, ConfigError, Settings, to_settings
from custseg.pipeline.console import quiet_console
from custseg.pipeline.errors import exit_on_user_error, known_keys
from custseg.storage.data import write_csv_atomic
from custseg.storage.outputs import write_json_atomic
from custseg.storage.paths import RFM_METRICS
from custseg.storage.transactions import log_customers


def run_rfm(settings: Settings) -> dict:
    """Read and validate the log, write the RFM customer table and :data:`RFM_METRICS`.

    Returns
    -------
    dict
        The counts written to :data:`RFM_METRICS`.

    Raises
    ------
    ConfigError
        Without a transaction log in the config (not ``pipeline=transactions``).
    DataValidationError
        When the log breaks its format, or no customer bought up to the as-of date.
        Nothing is written then.
    """
    config = settings.transactions
    if config is None:
        raise ConfigError(
            "custseg-rfm needs a transaction log: run it with pipeline=transactions "
            "(conf/pipeline/transactions.yaml), as transactions/dvc.yaml does"
        )
    customers = log_customers(config.path, config, settings.data, config.as_of)
    write_csv_atomic(customers.table, settings.data.path)
    summary = customers.summary()
    write_json_atomic(summary, RFM_METRICS)
    return summary


@known_keys("custseg-rfm")
@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
@exit_on_user_error("custseg-rfm")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    quiet_console()
    settings = to_settings(cfg)
    s = run_rfm(settings)
    used = s["n_transactions"] - s["after_as_of"]
    print(
        f"{s['n_customers']} customers from {used} of {s['n_transactions']} transactions (up to "
        f"{s['as_of']}); table in {settings.data.path}, counts in {RFM_METRICS}"
    )
    if s["after_as_of"] or s["without_purchase"]:
        print(
            f"  left out: {s['after_as_of']} transactions after {s['as_of']}, "
            f"{s['without_purchase']} customers with returns but no purchase"
        )


if __name__ == "__main__":
    main()
