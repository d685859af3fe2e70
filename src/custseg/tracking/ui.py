"""Links into the MLflow UI: the one place that builds them.

The MLflow 3 UI has two modes, GenAI and model training, switched by the toggle at the
top of its side bar. A page takes its mode from the ``workflowType`` parameter of its URL,
else from what the browser last chose (local storage), else GenAI, whatever the
experiment holds: MLflow 3.17 opens an experiment of training runs on its traces overview
even with the ``mlflow.experimentKind`` tag set. Every link built here therefore carries
``workflowType=machine_learning``, which opens the runs table with **Models** in the menu
(checked in headless Chromium against MLflow 3.17.2 for the experiment, run, model version
and experiment-list pages).

Run as ``python -m custseg.tracking.ui`` (``make ui`` does) to print the link to the
configured experiment.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

log = logging.getLogger(__name__)

#: the experiment tag MLflow reads for the kind of work an experiment holds, and custseg's
#: value; the 3.17 UI consults it only without its GenAI / model-training toggle
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

#: the UI mode for training runs, as the ``workflowType`` URL parameter spells it
WORKFLOW_TYPE = "machine_learning"


def _link(ui_base: str, route: str) -> str:
    """``{ui_base}/#{route}?workflowType=machine_learning`` (trailing slashes of the base dropped)."""
    return f"{str(ui_base).strip().rstrip('/')}/#{route}?workflowType={WORKFLOW_TYPE}"


def _part(value: object) -> str:
    """One URL path segment (``/`` and ``?`` in names escaped)."""
    return quote(str(value), safe="")


def experiments_url(ui_base: str) -> str:
    """The experiment list, in model-training mode.

    Parameters
    ----------
    ui_base : str
        Base URL of the MLflow UI, e.g. ``http://127.0.0.1:5000``.

    Returns
    -------
    str
        ``{ui_base}/#/experiments?workflowType=machine_learning``
    """
    return _link(ui_base, "/experiments")


def experiment_url(ui_base: str, experiment_id: str) -> str:
    """An experiment's runs table, in model-training mode.

    Parameters
    ----------
    ui_base : str
        Base URL of the MLflow UI, e.g. ``http://127.0.0.1:5000``.
    experiment_id : str
        The experiment's id (not its name).

    Returns
    -------
    str
        ``{ui_base}/#/experiments/{experiment_id}?workflowType=machine_learning``
    """
    return _link(ui_base, f"/experiments/{_part(experiment_id)}")


def run_url(ui_base: str, experiment_id: str, run_id: str) -> str:
    """A run's page, in model-training mode.

    Parameters
    ----------
    ui_base : str
        Base URL of the MLflow UI.
    experiment_id : str
        The id of the run's experiment.
    run_id : str
        The run's id.

    Returns
    -------
    str
        ``{ui_base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning``
    """
    return _link(ui_base, f"/experiments/{_part(experiment_id)}/runs/{_part(run_id)}")


def model_url(ui_base: str, name: str, version: str | int) -> str:
    """A registered model version's page, in model-training mode.

    Parameters
    ----------
    ui_base : str
        Base URL of the MLflow UI.
    name : str
        Registered model name, e.g. ``customer-segmentation``.
    version : str or int
        Model version number.

    Returns
    -------
    str
        ``{ui_base}/#/models/{name}/versions/{version}?workflowType=machine_learning``
    """
    return _link(ui_base, f"/models/{_part(name)}/versions/{_part(version)}")


def find_experiment_url(tracking_uri: str, experiment_name: str, ui_base: str) -> str:
    """The link to ``experiment_name``, or to the experiment list if it cannot be found.

    Looks the experiment up without creating anything: a ``sqlite`` store that does not
    exist yet, an unknown or deleted experiment, or a store that cannot be read give the
    experiment list.

    Parameters
    ----------
    tracking_uri : str
        MLflow tracking URI, e.g. ``sqlite:///mlflow.db`` (relative to the current directory).
    experiment_name : str
        Name of the experiment.
    ui_base : str
        Base URL of the MLflow UI.

    Returns
    -------
    str
        :func:`experiment_url` or :func:`experiments_url`.
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme == "sqlite":
        path = unquote(tracking_uri.removeprefix("sqlite:///"))
        if path != ":memory:" and not Path(path).is_file():
            return experiments_url(ui_base)
    from mlflow.tracking import MlflowClient

    try:
        experiment = MlflowClient(tracking_uri).get_experiment_by_name(experiment_name)
    except Exception as error:  # any store problem: fall back to the list
        log.debug("cannot look up experiment %r in %s: %s", experiment_name, tracking_uri, error)
        experiment = None
    if experiment is None or experiment.lifecycle_stage == "deleted":
        return experiments_url(ui_base)
    return experiment_url(ui_base, experiment.experiment_id)


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server listens on ``host:port``: a bind with ``SO_REUSEADDR`` fails (so a
    port whose old connections sit in TIME_WAIT reads as free, as it is for a server)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    """Print the link to the configured experiment, or with ``--free-port`` the port
    ``make ui`` serves this pipeline's store on, refusing one in use (exit status 1)."""
    parser = argparse.ArgumentParser(
        prog="python -m custseg.tracking.ui",
        description="Print the MLflow UI link to the experiment (runs table, model training).",
    )
    parser.add_argument(
        "--free-port",
        action="store_true",
        help="print tracking.ui_port instead, or fail when something already listens there",
    )
    parser.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. tracking.tracking_uri=sqlite:///x.db"
    )
    args = parser.parse_args(argv)
    from custseg.config import compose_settings

    settings = compose_settings(args.overrides)
    tracking = settings.tracking
    if args.free_port:
        if port_in_use(tracking.ui_port):
            print(
                f"make ui: error: port {tracking.ui_port} on 127.0.0.1 is in use (another "
                f"`make ui`?): {tracking.local_ui} may be another store's UI; stop that one, or "
                "set tracking.ui_port in conf/ to a free port",
                file=sys.stderr,
            )
            return 1
        print(tracking.ui_port)
        return 0
    print(find_experiment_url(tracking.tracking_uri, tracking.experiment_name, settings.mlflow_ui))
    return 0


if __name__ == "__main__":
    sys.exit(main())
