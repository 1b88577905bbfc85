"""``sas scan PATH``: pre-deployment validation."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from sas import config as config_mod
from sas.cli.progress import Progress
from sas.errors import InputError
from sas.taxonomy import Severity


def register(sub: Any) -> None:
    p = sub.add_parser("scan", help="scan a function package, model or deployment before it ships")
    p.add_argument("path", help="folder, zip, tar, container image tarball or single file")
    p.add_argument("--format", "-f", default="table", choices=["table", "json", "sarif", "markdown", "cyclonedx"])
    p.add_argument("--output", "-o", help="write the report to this file instead of stdout")
    p.add_argument("--fail-on", help="lowest severity that makes the exit code 1 (default: high)")
    p.add_argument("--config", help="sas.toml or pyproject.toml with [tool.sas]")
    p.add_argument("--layer", action="append", default=[], metavar="LAYER", help="a Lambda layer (zip or folder)")
    p.add_argument("--vuln-db", metavar="PATH", help="OSV database: a folder or zip of OSV JSON files")
    p.add_argument("--baseline", metavar="FILE", help="suppression baseline (fingerprints with expiry dates)")
    p.add_argument("--no-progress", action="store_true", help="never draw the progress line")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sas.scan.engine import scan
    from sas.scan.report import render
    from sas.scan.settings import ScanSettings

    config_path = Path(args.config) if args.config else config_mod.discover(args.path)
    config = config_mod.load_file(config_path) if config_path else {}
    settings = ScanSettings.from_config(config)
    fail_on = settings.fail_on
    if args.fail_on:
        try:
            fail_on = Severity.parse(args.fail_on)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    settings = replace(
        settings,
        fail_on=fail_on,
        layers=tuple(args.layer),
        vuln_db=args.vuln_db or settings.vuln_db,
        baseline=args.baseline or settings.baseline,
    )
    progress = Progress() if not args.no_progress and Progress.wanted() else None
    try:
        result = scan(args.path, settings, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    text = render(result, args.format)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 1 if result.fails(settings.fail_on) else 0
