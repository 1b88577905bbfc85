"""Known-vulnerable and known-malicious versions from an offline OSV database.

The database is what osv.dev exports (``gs://osv-vulnerabilities/PyPI/all.zip``): a folder or zip of OSV JSON
records. A record affects a package when one of its ``affected[]`` entries names it (ecosystem ``PyPI``) and
the version is in its ``versions`` list or inside one of its ``ranges`` (``ECOSYSTEM`` or ``SEMVER`` events
``introduced``/``fixed``/``last_affected``/``limit``, evaluated as the OSV schema describes). Records whose id
starts with ``MAL-`` are the OpenSSF malicious-packages feed. Versions are compared with ``packaging`` (PEP
440); a version it cannot parse matches only an exact ``versions`` entry. Only records that mention one of the
packages we look for are decoded, so a full PyPI export stays cheap.

Chosen over ``pip-audit``/``osv-scanner``: both query the network per package; this runs in CI offline.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from sas.errors import InputError
from sas.scan.supply.typosquat import normalize
from sas.taxonomy import Severity

MAX_RECORD_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    summary: str
    malicious: bool
    severity: Severity
    fixed: tuple[str, ...]
    aliases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Affected:
    versions: frozenset[str]
    ranges: tuple[tuple[tuple[str, str], ...], ...]  # per range: ordered (event, version) pairs


class VulnDatabase:
    """An in-memory index ``package -> [(advisory, affected)]`` for the packages asked about."""

    def __init__(self) -> None:
        self._by_package: dict[str, list[tuple[Advisory, _Affected]]] = {}
        self.records = 0
        self.unreadable = 0  # records that could not be read: damaged, or naming a package asked about but malformed

    @classmethod
    def load(cls, path: str, wanted: Iterable[str]) -> VulnDatabase:
        """Read the records of ``path`` (folder or zip) that mention one of the ``wanted`` package names."""
        names = {normalize(n) for n in wanted}
        db = cls()
        needles = [n.encode() for n in names] + [n.replace("-", "_").encode() for n in names if "-" in n]
        for raw in _raw_records(path):
            db.records += 1
            if raw is None:
                db.unreadable += 1
                continue
            lowered = raw.lower()
            if not any(needle in lowered for needle in needles):
                continue
            try:
                record = json.loads(raw)
                if not isinstance(record, dict):
                    raise TypeError("not a JSON object")
                db._add(record, names)
            except (ValueError, TypeError, AttributeError, RecursionError):
                # a record that names a package we look up but cannot be read is an advisory we may be missing
                db.unreadable += 1
        return db

    def _add(self, record: dict[str, Any], names: set[str]) -> None:
        if record.get("withdrawn"):
            return
        ident = str(record.get("id", ""))
        advisory = Advisory(
            id=ident,
            summary=str(record.get("summary") or record.get("details") or "")[:200].splitlines()[0]
            if (record.get("summary") or record.get("details"))
            else "",
            malicious=ident.startswith("MAL-"),
            severity=_severity(record),
            fixed=tuple(_fixed_versions(record)),
            aliases=tuple(str(a) for a in record.get("aliases", []) or []),
        )
        for affected in record.get("affected", []) or []:
            if not isinstance(affected, dict):
                continue
            package = affected.get("package") or {}
            if str(package.get("ecosystem", "")).split(":")[0] != "PyPI":
                continue
            name = normalize(str(package.get("name", "")))
            if name not in names:
                continue
            ranges = []
            for r in affected.get("ranges", []) or []:
                if isinstance(r, dict) and r.get("type") in ("ECOSYSTEM", "SEMVER"):
                    events = tuple(
                        (k, str(v)) for e in r.get("events", []) or [] if isinstance(e, dict) for k, v in e.items()
                    )
                    ranges.append(events)
            versions = frozenset(str(v) for v in affected.get("versions", []) or [])
            self._by_package.setdefault(name, []).append((advisory, _Affected(versions, tuple(ranges))))

    def lookup(self, name: str, version: str) -> list[Advisory]:
        """Advisories affecting ``name==version`` (each advisory once)."""
        out: dict[str, Advisory] = {}
        for advisory, affected in self._by_package.get(normalize(name), []):
            if _affects(affected, version):
                out.setdefault(advisory.id, advisory)
        return list(out.values())


def _raw_records(path: str) -> Iterator[bytes | None]:
    p = Path(path)
    if p.is_dir():
        for folder, _dirs, files in os.walk(p):
            for file in sorted(files):
                if file.endswith(".json"):
                    full = Path(folder) / file
                    if full.stat().st_size <= MAX_RECORD_BYTES:
                        yield full.read_bytes()
        return
    if not p.is_file():
        raise InputError(f"vulnerability database not found: {path}")
    try:
        with zipfile.ZipFile(p) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".json") and info.file_size <= MAX_RECORD_BYTES:
                    try:
                        yield archive.read(info)
                    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError):
                        yield None  # a damaged member: whatever package it names, its advisory is unread
    except (zipfile.BadZipFile, NotImplementedError, OSError) as exc:
        raise InputError(f"vulnerability database is neither a folder nor a readable zip: {path} ({exc})") from None


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _affects(affected: _Affected, version: str) -> bool:
    if version in affected.versions:
        return True
    v = _version(version)
    if v is None:
        return False
    for events in affected.ranges:
        # OSV evaluation: walk events in version order; "introduced" opens, "fixed"/"limit" close before,
        # "last_affected" closes after.
        keyed = []
        for kind, value in events:
            if kind == "introduced" and value == "0":
                keyed.append((Version("0"), 0, kind))
                continue
            ev = _version(value)
            if ev is not None:
                keyed.append((ev, 0 if kind == "introduced" else 1, kind))
        keyed.sort()
        inside = False
        for ev, _, kind in keyed:
            if kind == "introduced":
                if v >= ev:
                    inside = True
            elif kind in ("fixed", "limit"):
                if v >= ev:
                    inside = False
            elif kind == "last_affected" and v > ev:
                inside = False
        if inside:
            return True
    return False


def _fixed_versions(record: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for affected in record.get("affected", []) or []:
        for r in (affected or {}).get("ranges", []) or []:
            for e in (r or {}).get("events", []) or []:
                if isinstance(e, dict) and "fixed" in e and str(e["fixed"]) not in out:
                    out.append(str(e["fixed"]))
    return out


_GHSA_SEVERITY = {
    "CRITICAL": Severity.CRITICAL,
    "HIGH": Severity.HIGH,
    "MODERATE": Severity.MEDIUM,
    "LOW": Severity.LOW,
}


def _severity(record: dict[str, Any]) -> Severity:
    if str(record.get("id", "")).startswith("MAL-"):
        return Severity.CRITICAL
    specific = record.get("database_specific")
    if isinstance(specific, dict):
        label = str(specific.get("severity", "")).upper()
        if label in _GHSA_SEVERITY:
            return _GHSA_SEVERITY[label]
    return Severity.HIGH
