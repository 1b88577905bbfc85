"""Run a scan: walk the target, hand each file to the analyzers that claim it, collect a result."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from sas.errors import SasError
from sas.scan import registry, suppress
from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile, Visit, walk
from sas.scan.context import ProgressHook, ScanContext
from sas.scan.findings import ScanResult, ScanStats, make_finding
from sas.scan.rules import INCOMPLETE_FILE
from sas.scan.settings import ScanSettings


def scan(
    target: str | os.PathLike[str],
    settings: ScanSettings | None = None,
    *,
    progress: ProgressHook | None = None,
    analyzers: list[Analyzer] | None = None,
) -> ScanResult:
    """Scan ``target`` (folder, archive, image tarball or single file). Raises ``InputError`` if it is missing."""
    ctx = ScanContext(settings=settings or ScanSettings(), progress=progress)
    active = analyzers if analyzers is not None else registry.analyzers()
    started = time.perf_counter()

    def visit(file: VirtualFile) -> bool:
        consumed = False
        for analyzer in active:
            if not analyzer.claims(file):
                continue
            try:
                consumed = analyzer.analyze(file, ctx) or consumed
            except SasError:
                raise  # the user's input to the scan itself (a missing database, say): a one-line error
            except Exception as exc:
                # An analyzer bug or an unreadable stream must not hide other findings: report and go on. Any
                # type: damaged input fails deep inside zlib, zipfile or a parser with errors of its own.
                ctx.add(
                    make_finding(
                        INCOMPLETE_FILE,
                        file.path,
                        f"{analyzer.name} could not finish reading this file: {exc}",
                        evidence=f"{type(exc).__name__}",
                    )
                )
        ctx.advance(file.path, file.size)
        return consumed

    display = walk(target, ctx, visit)
    for layer in ctx.settings.layers:
        walk(layer, ctx, _layer_visit(visit, layer))
    for analyzer in active:
        try:
            analyzer.finish(ctx)
        except SasError:
            raise
        except Exception as exc:
            # cross-file checks on hostile input (a deeply nested template, say) must not lose the scan
            ctx.error(display, f"{analyzer.name} could not finish its cross-file checks: {type(exc).__name__}")
    suppress.apply(ctx, target)  # inline sas:ignore comments and the --baseline file
    stats = ScanStats(ctx.files_done, ctx.bytes_done, time.perf_counter() - started)
    findings = sorted(ctx.findings, key=lambda f: (-f.severity.rank, f.location.path, f.location.line or 0, f.rule_id))
    return ScanResult(display, tuple(findings), tuple(ctx.errors), stats, tuple(ctx.notes), tuple(ctx.components))


def _layer_visit(visit: Visit, layer: str) -> Visit:
    """Walk a Lambda layer (``--layer``) with display paths that say so: ``layer:L1.zip!python/x.py`` for a zip,
    ``layer:L1!python/x.py`` for a folder; the part after the last ``!`` is the path under ``/opt``."""
    path = Path(layer)
    prefix = f"layer:{path.name}!" if path.is_dir() else "layer:"

    def visit_layer(file: VirtualFile) -> bool:
        return visit(replace(file, path=prefix + file.path))

    return visit_layer
