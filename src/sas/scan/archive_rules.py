"""Rules of the archive walker, and the path checks behind them.

Declared in one module so that the walker's parts (zip, tar, images) share them without importing each other.
"""

from __future__ import annotations

from sas.scan.rules import rule
from sas.taxonomy import Severity, Threat

ARCHIVE_BOMB = rule(
    "SAS-ARC-001",
    "Archive bomb: content exceeds the scan's limits",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "An archive or compressed file expands beyond the configured limits (uncompressed size, compression "
    "ratio, or overlapping zip members). Unpacked at deploy or load time it exhausts disk or memory, and "
    "whatever lies beyond the limit was not scanned.",
    "Remove the file, or raise [scan.limits] if the content is legitimately this large.",
    ("CWE-409", "OWASP Serverless Top 10 SAS-8"),
)
PATH_TRAVERSAL = rule(
    "SAS-ARC-002",
    "Archive member escapes the extraction folder",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "A member name is absolute or climbs out with '..'. Extracted by a careless tool it overwrites files "
    "outside the package (code, configuration, credentials).",
    "Rebuild the archive from a clean folder; member names must be relative and stay inside it.",
    ("CWE-22",),
)
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
CORRUPT_ARCHIVE = rule(
    "SAS-ARC-004",
    "Archive or compressed file is corrupt or truncated",
    Severity.MEDIUM,
    Threat.HOSTILE_ARCHIVE,
    "The archive or compressed stream could not be read to its end (bad checksum, truncated data, broken "
    "directory). Everything readable before the damage was scanned; the rest was not, and different tools "
    "may recover different content from it.",
    "Rebuild the archive from its sources and check the upload or download that produced it.",
    ("CWE-20",),
)
NESTED_TOO_DEEP = rule(
    "SAS-ARC-005",
    "Archives nested too deeply",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "Archives inside archives go deeper than the configured limit (scan.limits.max_depth): a recursive "
    "archive bomb or an attempt to hide content from scanners. The innermost archive was not opened.",
    "Flatten the package, or raise [scan.limits] max_depth if the nesting is intended.",
    ("CWE-409",),
)
TOO_MANY_MEMBERS = rule(
    "SAS-ARC-006",
    "Archive has too many members",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "The archive holds more entries than the configured limit (scan.limits.max_members); members past the "
    "limit were not scanned.",
    "Split the package, or raise [scan.limits] max_members.",
    ("CWE-409",),
)
DUPLICATE_MEMBER = rule(
    "SAS-ARC-007",
    "Duplicate member names in a zip",
    Severity.HIGH,
    Threat.HOSTILE_ARCHIVE,
    "The same name appears more than once in a zip. Unzip tools and loaders disagree about which copy wins, "
    "so a reviewer or scanner can be shown one file while the runtime loads another.",
    "Rebuild the zip so that every name is unique.",
    ("CWE-20",),
)
SPECIAL_MEMBER = rule(
    "SAS-ARC-008",
    "Device or FIFO in the package",
    Severity.LOW,
    Threat.HOSTILE_ARCHIVE,
    "The package contains a device node or a named pipe. A function package has no use for one; extracted "
    "as root it can give access to host devices. It was not read.",
    "Remove it from the package.",
    ("CWE-20",),
)
NOT_ANALYSED = rule(
    "SAS-ARC-009",
    "Archive content could not be analysed",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "Part of an archive or image uses a format or feature sas cannot read here (a compression library that "
    "is not installed, an unsupported zip method, a missing image layer, a sparse tar member), so it is "
    "unchecked.",
    "Install the scan extra (pip install 'serverless-ai-shield[scan]') or repackage with a common format.",
    ("CWE-20",),
)
ENCRYPTED_MEMBER = rule(
    "SAS-ARC-010",
    "Encrypted archive member",
    Severity.MEDIUM,
    Threat.INCOMPLETE_ANALYSIS,
    "A zip member is encrypted, so its content cannot be checked.",
    "Ship the file unencrypted inside the package, or scan it before encryption.",
    ("CWE-20",),
)
POLYGLOT = rule(
    "SAS-ARC-011",
    "File is also a zip archive (polyglot)",
    Severity.MEDIUM,
    Threat.HOSTILE_ARCHIVE,
    "The file starts as one format but ends with a zip directory. Loaders that check the first bytes (torch, "
    "pickle) and loaders that check the end (zipfile, keras) see different content: a way to show a scanner "
    "one file and a runtime another. Both views were scanned.",
    "Regenerate the file with the tool that owns its format; do not concatenate archives onto models.",
    ("CWE-20",),
)


def unsafe_name(name: str) -> str:
    """Why an archive member name escapes the extraction folder, or ``""``."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":" and norm[0].isalpha()):
        return "is an absolute path"
    level = 0
    for part in norm.split("/"):
        if part in ("", "."):
            continue
        level = level - 1 if part == ".." else level + 1
        if level < 0:
            return "climbs out of the archive with '..'"
    return ""


def escapes(member: str, target: str) -> bool:
    """Whether a link at ``member`` pointing to ``target`` resolves outside the archive root."""
    norm = target.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":" and norm[0].isalpha()):
        return True
    parent = member.replace("\\", "/").rstrip("/").split("/")[:-1]
    return bool(unsafe_name("/".join([*parent, norm])))
