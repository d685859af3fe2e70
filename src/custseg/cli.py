"""The ``custseg`` command line.

Each subcommand is one ``(add_arguments, run)`` pair in :data:`COMMANDS`; adding a
command means writing those two functions and registering them there.

Examples
--------
>>> main(["generate", "--rows", "500", "--seed", "7", "--out", "data/customers.csv"])  # doctest: +SKIP
>>> main(["promote", "--version", "3"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from custseg import __version__
from custseg.config import ConfigError
from custseg.storage.data import (
    GENERATED_SEGMENTS,
    SHIFTABLE,
    DataValidationError,
    file_sha256,
    generate_customers,
    grown_shares,
    is_parquet,
    shifted,
    write_csv_atomic,
    write_parquet_atomic,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from custseg.config import Settings


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


# ------------------------------------------------------------------------- generate


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kind",
        choices=("customers", "transactions"),
        default="customers",
        help="customers: a Mall-Customers-like table (default); transactions: a transaction "
        "log of --rows customers (skewed spend, seasonality, churn, returns)",
    )
    parser.add_argument(
        "--rows", type=_positive_int, default=200, help="number of customers (default: 200)"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/customers.csv"),
        help="file to write: CSV, or Parquet when it ends in .parquet "
        "(default: data/customers.csv)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the file if it already exists"
    )
    parser.add_argument(
        "--drift",
        action="append",
        default=[],
        metavar="COLUMN=+Nsd",
        help="customers: shift a column by N of its standard deviations, e.g. income=+1sd "
        f"(columns: {', '.join(SHIFTABLE)}; repeatable): a drifted batch for custseg-monitor",
    )
    parser.add_argument(
        "--grow-segment",
        metavar="SEGMENT=+POINTS",
        help="customers: grow a generated segment's share by POINTS percentage points, e.g. "
        f"low-high=+20 (segments: {', '.join(GENERATED_SEGMENTS)})",
    )


def _drifts(args: argparse.Namespace) -> tuple[list[tuple[str, float]], tuple[str, float] | None]:
    """``--drift`` and ``--grow-segment`` as (column, sds) pairs and (segment, points)."""

    def pair(text: str, suffix: str, option: str) -> tuple[str, float]:
        name, _, amount = text.partition("=")
        try:
            if not amount.strip().endswith(suffix):
                raise ValueError(amount)
            return name.strip(), float(amount.strip().removesuffix(suffix))
        except ValueError:
            raise SystemExit(
                f"custseg generate: error: {option} {text!r}: write NAME=+N{suffix}"
            ) from None

    shifts = [pair(text, "sd", "--drift") for text in args.drift]
    grow = pair(args.grow_segment, "", "--grow-segment") if args.grow_segment else None
    return shifts, grow


def _generate(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not args.force:
        print(f"{out} already exists; left unchanged (use --force to overwrite)")
        return 0
    if args.kind == "transactions":
        from custseg.storage.transactions import generate_transactions

        table = generate_transactions(args.rows, args.seed)
        what = f"{len(table)} transactions of {args.rows} customers"
    else:
        shifts, grow = _drifts(args)
        try:
            shares = grown_shares(*grow) if grow else None
            table = generate_customers(args.rows, args.seed, shares)
            for column, sds in shifts:
                table = shifted(table, column, sds)
        except ValueError as exc:
            print(f"custseg generate: error: {exc}", file=sys.stderr)
            return 2
        drifts = [f"{c} {s:+g} sd" for c, s in shifts] + (
            [f"{grow[0]} {grow[1]:+g} points"] if grow else []
        )
        what = f"{len(table)} rows" + (f", drifted: {', '.join(drifts)}" if drifts else "")
    # a Parquet file (typed columns) when --out names one, for tables past a CSV's comfort
    (write_parquet_atomic if is_parquet(out) else write_csv_atomic)(table, out)
    digest = file_sha256(out)
    print(f"wrote {out}: {what} (seed {args.seed}), sha256 {digest[:12]}")
    return 0


# -------------------------------------------------------------------------- promote


def _promote_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", help="registered model version to promote, e.g. 3")
    target.add_argument(
        "--run-id", help="run whose model to promote (registered through the gate if needed)"
    )
    target.add_argument(
        "--rollback",
        action="store_true",
        help="point the alias back at the version it held before its last move",
    )
    parser.add_argument(
        "--metric",
        default="silhouette",
        help="run metric that must not get worse (default: silhouette)",
    )
    parser.add_argument(
        "--lower-is-better",
        action="store_true",
        help="smaller values of --metric are better (e.g. davies_bouldin)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="promote even if the candidate is worse or a metric is missing (recorded in a tag)",
    )
    parser.add_argument(
        "--pipeline",
        choices=("mall", "transactions"),
        help="the pipeline whose champion moves (conf/pipeline/): default transactions in the "
        "RFM project (transactions/, whose dvc.yaml runs pipeline=transactions), else mall",
    )
    parser.add_argument(
        "--model-name",
        help="registered model (default: tracking.registered_model_name of the pipeline)",
    )
    parser.add_argument("--alias", help="alias to move (default: tracking.alias of conf/)")
    parser.add_argument(
        "--tracking-uri",
        help="MLflow tracking store (default: tracking.tracking_uri of conf/, or "
        "$MLFLOW_TRACKING_URI with CUSTSEG_TRACKING=server)",
    )
    parser.add_argument(
        "--catalog",
        help="segment catalog rewritten when the champion moves (default: catalog.path of "
        "conf/, catalog/champion.json)",
    )
    parser.add_argument(
        "--data",
        help="customer CSV the model must score (default: data.path of conf/, "
        "data/customers.csv); validated like training data",
    )


def _promote(args: argparse.Namespace) -> int:
    import mlflow

    from custseg.pipeline.console import quiet_console
    from custseg.tracking import registry

    quiet_console()
    try:
        settings = _promote_settings(args)
        with registry.registry_permission(args.model_name):
            return _promote_checked(args, settings)
    except (ConfigError, DataValidationError, registry.ModelNotFoundError) as exc:
        print(f"custseg promote: error: {exc}", file=sys.stderr)
        return 1
    except registry.PromotionError as exc:
        print(f"custseg promote: refused: {exc}", file=sys.stderr)
        return 1
    except mlflow.exceptions.MlflowException as exc:
        from custseg.tracking.access import access_refused

        print(f"custseg promote: error: {access_refused(exc) or exc.message}", file=sys.stderr)
        return 1


def _promote_settings(args: argparse.Namespace) -> Settings:
    """The config of the pipeline ``args`` promote in (``--pipeline``, else the one the
    DVC project of the working directory runs); fills in ``args.model_name``."""
    from custseg.config import compose_settings

    pipeline = args.pipeline
    if pipeline is None:
        project = Path("dvc.yaml")
        runs_rfm = project.is_file() and "pipeline=transactions" in project.read_text()
        pipeline = "transactions" if runs_rfm else "mall"
    overrides = [f"pipeline={pipeline}"]
    overrides += [f"data.path={args.data}"] if args.data is not None else []
    settings = compose_settings(overrides)
    args.pipeline = pipeline
    args.model_name = args.model_name or settings.tracking.registered_model_name
    if args.alias is None:
        args.alias = settings.tracking.alias
    return settings


def _promote_checked(args: argparse.Namespace, settings: Settings) -> int:
    """:func:`_promote` without its error handling: move the alias, report, return 0."""
    import mlflow

    from custseg.storage.data import load_customers
    from custseg.tracking import registry

    tracking_uri = args.tracking_uri or settings.tracking.tracking_uri
    registry.require_store(tracking_uri)  # before reading the table: the store is the usual miss
    table, info = load_customers(settings.data)
    mlflow.set_tracking_uri(tracking_uri)
    before = registry.champion_version(args.model_name, args.alias)
    catalog = args.catalog or settings.catalog.path
    settings = dataclasses.replace(
        settings,
        tracking=dataclasses.replace(settings.tracking, registered_model_name=args.model_name),
    )
    version = args.version
    if args.run_id is not None:
        version = _run_version(args.run_id, args.model_name, settings, catalog, table, info)
    if args.rollback:
        version = registry.previous_holder(args.model_name, args.alias)[1]
    # the catalog stands for the champion: other aliases leave it alone; read the
    # model first, so an alias never moves to a version the catalog cannot record
    segments = (
        _segment_model(args.model_name, version) if args.alias == settings.tracking.alias
        else None
    )  # fmt: skip
    if args.rollback:
        after = registry.rollback(
            args.model_name, args.alias, data=table, to=version,
            data_sha256=info.sha256, force=args.force,
        )  # fmt: skip
    else:
        after = registry.promote(
            args.model_name,
            args.alias,
            version=version,
            metric=args.metric,
            higher_is_better=not args.lower_is_better,
            force=args.force,
            data=table,
            data_sha256=info.sha256,
        )
    catalog_changed = segments is not None and _write_catalog(segments, catalog)
    _print_promotion(args, before, after, catalog if catalog_changed else None)
    if not args.rollback and _moved_for_newer_data(args.model_name, args.alias, after):
        print(_newer_data_note(args, before, after, table, info, settings))
    if args.alias == settings.tracking.alias:  # a challenger promoted is no challenger
        challenger = settings.catalog.challenger_alias
        holder = registry.champion_version(args.model_name, challenger)
        if holder is not None and str(holder.version) == str(after.version):
            why = f"custseg promote: version {after.version} is now @{args.alias}"
            registry.remove_alias(args.model_name, challenger, why)
            print(
                f"removed {args.model_name}@{challenger} (version {after.version} is @{args.alias})"
            )
    return 0


def _print_promotion(args: argparse.Namespace, before, after, catalog: str | None) -> None:
    """What moved (or that nothing did), and what to commit when the catalog changed."""
    from custseg.tracking import registry

    where = f"{args.model_name}@{args.alias}"
    new = _describe_version(after, args.metric)
    if before is not None and str(before.version) == str(after.version):
        print(f"{where} already points at {new}; nothing moved")
    else:
        old = _describe_version(before, args.metric) if before is not None else "nothing"
        forced = after.tags.get(registry.FORCED_TAG) if args.force else None
        print(f"moved {where}: {old} -> {new}" + (f" (forced: {forced})" if forced else ""))
    if catalog is not None:
        print(
            f"updated {catalog} to the new champion's segments. Commit it, then rebuild "
            f"so models/ and the report match (and commit dvc.lock):\n"
            f"  git add {catalog} && git commit -m 'Promote {args.model_name} version "
            f"{after.version}'\n  {_make_run(args)} && git add dvc.lock metrics && git commit -m "
            "'Rebuild against the new champion'"
        )


def _moved_for_newer_data(model_name: str, alias: str, after) -> bool:
    """Whether the alias's last move to ``after`` skipped the metric comparison because
    the version was trained on newer data."""
    from custseg.tracking import registry

    moves = registry.alias_history(model_name, alias)
    last = moves[-1] if moves else {}
    return last.get("to") == str(after.version) and "newer data" in str(last.get("why"))


def _newer_data_note(args: argparse.Namespace, before, after, table, info, settings) -> str:
    """Say that the metric comparison was skipped (the two silhouettes above are of two
    different tables) and compare both models on the customer table now."""
    from custseg.backends.local import PandasTable
    from custseg.tracking import registry

    note = (
        f"note: version {after.version} was trained on newer data, so the gate did not compare "
        f"{args.metric} (the values above are of two different tables)"
    )
    scores = []
    for version in (before, after):
        try:
            model = _segment_model(args.model_name, str(version.version))
            scored = PandasTable(table, info, settings.model.random_state).scores(
                model, settings.sweep.silhouette_sample_size
            )
            scores.append(f"version {version.version} {scored.metrics['silhouette']:.4f}")
        except (registry.PromotionError, KeyError, ValueError):  # other columns: no comparison
            return note
    return f"{note}; on the customer table now, silhouette: {', '.join(scores)}"


def _make_run(args: argparse.Namespace) -> str:
    """The command that rebuilds the pipeline ``args`` promoted in."""
    from custseg.config import make_data_flag

    return f"make run{make_data_flag(args.pipeline)}"


def _run_version(run_id: str, model_name: str, settings, catalog: str, table, info) -> str:
    """The version to promote for a run: its newest version, or a new one.

    A run with no version yet (e.g. a sweep run, whose segments are numbered in
    canonical order) has its segments matched to the catalog's champion first, as the
    select stage does, so the promoted model keeps the ids and names scoring has used so
    far; it is then registered through the gate.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from custseg.backends.local import PandasTable
    from custseg.pipeline.publish import ensure_registered
    from custseg.pipeline.select import identify_segments
    from custseg.storage.outputs import read_segment_model
    from custseg.tracking import registry
    from custseg.tracking.runs import setup_experiment

    versions = MlflowClient().search_model_versions(f"name='{model_name}' and run_id='{run_id}'")
    if versions:
        return str(max(int(v.version) for v in versions))
    what = f"run {run_id}"
    run = MlflowClient().get_run(run_id)
    if run.info.status != "FINISHED":
        raise registry.PromotionError(f"{what} is {run.info.status}, not FINISHED")
    try:
        loaded = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    except Exception as exc:  # a missing model: the gate's wording
        raise registry.PromotionError(f"{what}: no loadable model: {exc}") from exc
    registry.check_model_input(loaded, table, what)
    model = registry.segment_model_of(loaded, what)
    if model.data_sha256 != info.sha256:
        raise registry.PromotionError(
            f"{what} was trained on other data (sha256 {model.data_sha256[:12]}) than the "
            f"customer table {info.path} ({info.sha256[:12]}); pass that table with --data"
        )
    reference = read_segment_model(catalog, missing_ok=True)
    customers = PandasTable(table, info, settings.model.random_state)
    model = identify_segments(customers, model, reference, settings).model
    tracking = settings.tracking
    experiment_id = setup_experiment(
        mlflow.get_tracking_uri(), tracking.experiment_name, tracking.artifact_location
    )
    registered = ensure_registered(model, customers, settings, experiment_id, source_run_id=run_id)
    return str(registered.version.version)


def _segment_model(model_name: str, version: str):
    """The segment model of a registered version (PromotionError if it has none)."""
    import mlflow

    from custseg.tracking import registry

    try:
        loaded = mlflow.pyfunc.load_model(f"models:/{model_name}/{version}")
    except Exception as exc:  # a missing version or model: the gate's wording
        raise registry.PromotionError(f"version {version}: no loadable model: {exc}") from exc
    return registry.segment_model_of(loaded, f"version {version} of {model_name!r}")


def _write_catalog(model, path: str) -> bool:
    """Write ``model`` to the catalog at ``path``; whether the file changed."""
    from custseg.storage.outputs import read_segment_model, write_segment_model

    current = read_segment_model(path, missing_ok=True)
    if current is not None and current.fingerprint == model.fingerprint:
        return False
    write_segment_model(model, path)
    return True


def _describe_version(version: ModelVersion, metric: str) -> str:
    from custseg.tracking.registry import run_metric

    value = run_metric(version.run_id, metric)
    shown = f"{metric}={value:.4f}" if value is not None else f"no {metric}"
    return f"version {version.version} (run {version.run_id or '-'}, {shown})"


# --------------------------------------------------------------------------- server


def _server_arguments(parser: argparse.ArgumentParser) -> None:
    from custseg.ops.server import ServerLayout

    defaults = ServerLayout(Path(".server"))
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument(
        "--dir",
        type=Path,
        default=defaults.root,
        help=f"folder of the server's data, logs and secrets (default: {defaults.root}/, "
        "ignored by git and DVC)",
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"MLflow port (default: the one it was started with, else {defaults.port})",
    )
    parser.add_argument(
        "--pg-port",
        type=int,
        help=f"PostgreSQL port (default: the one it was started with, else {defaults.pg_port})",
    )


def _server(args: argparse.Namespace) -> int:
    from custseg.ops import server

    layout = server.ServerLayout.at(args.dir.resolve(), args.port, args.pg_port)
    try:
        if args.action == "stop":
            stopped = server.stop(layout)
            print(f"stopped {' and '.join(stopped)}" if stopped else "nothing was running")
            return 0
        if args.action == "status":
            for name, up in server.status(layout).items():
                print(f"{name}: {'running' if up else 'stopped'}")
            print(f"MLflow on {layout.tracking_uri}, PostgreSQL on 127.0.0.1:{layout.pg_port}")
            return 0
        secrets_ = server.start(layout)
    except server.ServerError as exc:
        print(f"custseg server: error: {exc}", file=sys.stderr)
        return 1
    exports = server.export_lines(layout.tracking_uri, server.ADMIN_USER, secrets_.admin_password)
    print(
        f"MLflow server on {layout.tracking_uri} (PostgreSQL on 127.0.0.1:{layout.pg_port}, "
        f"artifacts in {layout.artifacts}, logs in {layout.root}).\n"
        "Paste these lines into your shell (you are the admin), then `make run "
        "TRACKING=server`:\n\n"
        f"{exports}\n\n"
        "Add a teammate (prints the lines for them to paste):\n"
        "  .venv/bin/custseg team add-user alice --role scientist   # sweeps, sees all\n"
        "  .venv/bin/custseg team add-user bob --role owner         # also registers, promotes\n"
        "Stop: make server-stop"
    )
    return 0


def _team_arguments(parser: argparse.ArgumentParser) -> None:
    from custseg.ops.team import ROLES

    parser.add_argument("action", choices=["add-user"])
    parser.add_argument("username")
    parser.add_argument(
        "--role",
        choices=sorted(ROLES),
        required=True,
        help="scientist: sweeps and sees everything; owner: also registers and moves @champion",
    )
    parser.add_argument("--password", help="the user's password (default: generated)")


def _team(args: argparse.Namespace) -> int:
    import os

    from custseg.config import compose_settings
    from custseg.ops.team import TeamError, add_user

    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://")):
        print(
            "custseg team: error: set MLFLOW_TRACKING_URI to the team server (and "
            "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD to its admin): see make server",
            file=sys.stderr,
        )
        return 1
    tracking = compose_settings([f"tracking.tracking_uri={uri}"]).tracking
    try:
        member = add_user(
            uri,
            args.username,
            args.role,
            tracking.experiment_name,
            tracking.registered_model_name,
            args.password,
        )
    except TeamError as exc:
        print(f"custseg team: error: {exc}", file=sys.stderr)
        return 1
    if member.password is None:
        print(f"{member.username} already exists; granted the {member.role} role")
        return 0
    from custseg.ops.server import export_lines

    print(
        f"created {member.username} ({member.role}). Send them these lines (once):\n\n"
        f"{export_lines(uri, member.username, member.password)}"
    )
    return 0


# ------------------------------------------------------------------------- registry

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

#: name -> (help text, add_arguments, run)
COMMANDS: dict[str, Command] = {
    "generate": (
        "write a synthetic Mall-Customers-like table or transaction log (deterministic for "
        "a given seed)",
        _generate_arguments,
        _generate,
    ),
    "promote": (
        "move a registry alias (default: champion) to another model version or run",
        _promote_arguments,
        _promote,
    ),
    "server": (
        "start, stop or check a team's tracking server on this machine (PostgreSQL + "
        "mlflow server with basic auth, on 127.0.0.1)",
        _server_arguments,
        _server,
    ),
    "team": (
        "add a user to the team's tracking server with a role (scientist or owner)",
        _team_arguments,
        _team,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the ``custseg`` argument parser with one subparser per command."""
    parser = argparse.ArgumentParser(
        prog="custseg", description="Reproducible customer segmentation."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_arguments, run) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(cmd)
        cmd.set_defaults(_run=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``custseg`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name; ``None`` means ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 if the command failed (the reason is printed to
        stderr). Usage errors exit with status 2 through :class:`SystemExit`.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args._run(args)
    except (OSError, ValueError) as exc:
        print(f"custseg {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
