"""The ``custseg`` command line.

Each subcommand is one ``(add_arguments, run)`` pair in :data:`COMMANDS`; adding a
command means writing those two functions and registering them there.

Examples
--------
>>> main(["generate", "--rows", "500", "--seed", "7", "--out", "data/customers.csv"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from custseg import __version__
from custseg.io.data import file_sha256, generate_customers, write_csv_atomic


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


# ------------------------------------------------------------------------- registry

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

#: name -> (help text, add_arguments, run)
COMMANDS: dict[str, Command] = {
    "generate": (
        "write a synthetic Mall-Customers-like table (deterministic for a given seed)",
        _generate_arguments,
        _generate,
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
