"""The `deepsea` command: one subcommand per pipeline stage, so every rule's job also runs by hand.

Each Snakemake rule calls exactly one of these with explicit paths and settings; the command line is logged first
so a rule's log shows how to rerun it. Errors caused by input or configuration (`DeepseaError`) are printed
without a traceback and exit with status 2. The commands live in one module per stage family (cli/data.py,
training.py, inference.py, blending.py, deploy.py, report.py), in the order of the pipeline.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence

from deepsea.cli import blending, data, deploy, inference, report, training
from deepsea.cli.common import Handler
from deepsea.errors import DeepseaError

log = logging.getLogger("deepsea")

COMMAND_GROUPS = (data, training, inference, blending, deploy, report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepsea", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    for group in COMMAND_GROUPS:
        group.add_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    log.info("$ deepsea %s", shlex.join(argv))
    try:
        args.func(args)
    except DeepseaError as err:
        print(f"deepsea {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
