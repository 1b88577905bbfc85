"""Walkers behind :func:`sas.scan.artifact.walk`: folders, single files and (TODO) archives.

Folder walking never follows symlinks: a link is reported when it leaves the tree, and directory links
cannot loop.
"""

from __future__ import annotations

import os
from pathlib import Path

from sas.scan.artifact import Visit, file_from_path
from sas.scan.context import ScanContext
from sas.scan.findings import make_finding
from sas.scan.rules import rule
from sas.taxonomy import Severity, Threat

LINK_OUTSIDE = rule(
    "SAS-ARC-003",
    "Link points outside the package",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "A symbolic or hard link in the package resolves outside it. Deployed, it can expose or overwrite files "
    "of the host (/proc, credentials, other code).",
    "Replace the link with the file it should contain, or remove it.",
    ("CWE-59",),
)


def walk_target(root: Path, ctx: ScanContext, visit: Visit) -> str:
    if root.is_dir() and not root.is_symlink():
        _walk_folder(root, ctx, visit)
        return root.name or str(root)
    display = root.name
    try:
        file = file_from_path(root, display)
    except OSError as exc:
        ctx.error(display, f"cannot read: {exc.strerror or exc}")
        return display
    visit(file)
    return display


def _walk_folder(root: Path, ctx: ScanContext, visit: Visit) -> None:
    real_root = os.path.realpath(root)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            ctx.error(_rel(folder, root) or ".", f"cannot list folder: {exc.strerror or exc}")
            continue
        for entry in entries:
            path = Path(entry.path)
            display = _rel(path, root)
            try:
                if entry.is_symlink():
                    target = os.path.realpath(path)
                    if os.path.commonpath([real_root, target]) != real_root:
                        ctx.add(
                            make_finding(
                                LINK_OUTSIDE,
                                display,
                                f"symlink {display} points outside the package to {os.readlink(path)}",
                                evidence=os.readlink(path),
                            )
                        )
                    continue  # never followed: inside targets are scanned where they live
                if entry.is_dir(follow_symlinks=False):
                    stack.append(path)
                elif entry.is_file(follow_symlinks=False):
                    visit(file_from_path(path, display))
            except OSError as exc:
                ctx.error(display, f"cannot read: {exc.strerror or exc}")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else ""
