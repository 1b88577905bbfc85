"""The ``sas`` command. Thin: parse arguments, call the library, print. ``main(argv)`` runs in-process.

A package rather than one ``cli.py``: each subcommand family lives in its own module (``scan``, ``rules``,
``manifest``, ``forensics``...) registered in ``COMMAND_MODULES``, so layers grow without one shared file.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from sas import __version__
from sas.display import visible
from sas.errors import SasError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2

COMMAND_MODULES: tuple[str, ...] = (
    "sas.cli.scan",
    "sas.cli.rules",
    "sas.cli.manifest",  # keygen, manifest build/verify
    "sas.cli.forensics",
    "sas.cli.baseline",
    "sas.cli.bench",
    "sas.cli.assess",
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own usage errors use exit 2 too, with one line of reason
        self.exit(EXIT_ERROR, f"sas: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sas", description="Serverless AI Shield: protect ML inference on FaaS platforms.")
    parser.add_argument("--version", action="version", version=f"sas {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):  # not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        code: int = args.handler(args)
    except SasError as exc:
        print(f"sas: error: {visible(str(exc))}", file=sys.stderr)  # errors quote file names and input
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("sas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    return code
