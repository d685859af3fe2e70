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
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from custseg import __version__
from custseg.config import TrackingConfig
from custseg.io.data import (
    DataValidationError,
    file_sha256,
    generate_customers,
    write_csv_atomic,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


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
        "--rows", type=_positive_int, default=200, help="number of customers (default: 200)"
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/customers.csv"),
        help="CSV file to write (default: data/customers.csv)",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the file if it already exists"
    )


def _generate(args: argparse.Namespace) -> int:
    out: Path = args.out
    if out.exists() and not args.force:
        print(f"{out} already exists; left unchanged (use --force to overwrite)")
        return 0
    table = generate_customers(args.rows, args.seed)
    write_csv_atomic(table, out)
    digest = file_sha256(out)
    print(f"wrote {out}: {len(table)} rows (seed {args.seed}), sha256 {digest[:12]}")
    return 0


# -------------------------------------------------------------------------- promote


def _promote_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = TrackingConfig()
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", help="registered model version to promote, e.g. 3")
    target.add_argument(
        "--run-id", help="run whose model to promote (registered through the gate if needed)"
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
        "--model-name",
        default=defaults.registered_model_name,
        help=f"registered model (default: {defaults.registered_model_name})",
    )
    parser.add_argument(
        "--alias", default=defaults.alias, help=f"alias to move (default: {defaults.alias})"
    )
    parser.add_argument(
        "--tracking-uri",
        default=defaults.tracking_uri,
        help=f"MLflow tracking store (default: {defaults.tracking_uri})",
    )
    parser.add_argument(
        "--data",
        help="customer CSV the model must score (default: data.path of conf/, "
        "data/customers.csv); validated like training data",
    )


def _promote(args: argparse.Namespace) -> int:
    import mlflow

    from custseg.io import registry

    try:
        registry.require_store(args.tracking_uri)
        table = _customer_table(args.data)
        mlflow.set_tracking_uri(args.tracking_uri)
        before = registry.champion_version(args.model_name, args.alias)
        after = registry.promote(
            args.model_name,
            args.alias,
            version=args.version,
            run_id=args.run_id,
            metric=args.metric,
            higher_is_better=not args.lower_is_better,
            force=args.force,
            data=table,
        )
    except DataValidationError as exc:
        print(f"custseg promote: error: {exc}", file=sys.stderr)
        return 1
    except registry.PromotionError as exc:
        print(f"custseg promote: refused: {exc}", file=sys.stderr)
        return 1
    except registry.ModelNotFoundError as exc:
        print(f"custseg promote: error: {exc}", file=sys.stderr)
        return 1
    except mlflow.exceptions.MlflowException as exc:
        print(f"custseg promote: error: {exc.message}", file=sys.stderr)
        return 1

    where = f"{args.model_name}@{args.alias}"
    new = _describe_version(after, args.metric)
    if before is not None and str(before.version) == str(after.version):
        print(f"{where} already points at {new}; nothing moved")
        return 0
    old = _describe_version(before, args.metric) if before is not None else "nothing"
    forced = after.tags.get(registry.FORCED_TAG) if args.force else None
    print(f"moved {where}: {old} -> {new}" + (f" (forced: {forced})" if forced else ""))
    return 0


def _customer_table(path: str | None):
    """The canonical customer table of ``path`` (default: the data config's path)."""
    from custseg.config import compose_settings
    from custseg.io.data import load_customers

    overrides = [f"data.path={path}"] if path is not None else []
    table, _ = load_customers(compose_settings(overrides).data)
    return table


def _describe_version(version: ModelVersion, metric: str) -> str:
    from custseg.io.registry import run_metric

    value = run_metric(version.run_id, metric)
    shown = f"{metric}={value:.4f}" if value is not None else f"no {metric}"
    return f"version {version.version} (run {version.run_id or '-'}, {shown})"


# ------------------------------------------------------------------------- registry

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

#: name -> (help text, add_arguments, run)
COMMANDS: dict[str, Command] = {
    "generate": (
        "write a synthetic Mall-Customers-like table (deterministic for a given seed)",
        _generate_arguments,
        _generate,
    ),
    "promote": (
        "move a registry alias (default: champion) to another model version or run",
        _promote_arguments,
        _promote,
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
