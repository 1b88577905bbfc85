"""Installed distributions found in the package, and their ``*.dist-info/RECORD`` verification.

A RECORD (the wheel spec, PEP 376/627) lists every file the installer wrote, relative to the folder that holds
the ``.dist-info`` (the site folder), with ``sha256=<urlsafe base64, no padding>`` and a size; the RECORD itself
and generated ``.pyc`` files carry no hash. Parsed with the stdlib ``csv`` module, as the spec says. Hashes of
the files are computed once, streaming, while the tree is walked; here they are only compared.

Policy (why the severities differ): a changed ``.py``/native/``.pth`` file is code the publisher did not ship
(high); a changed data file is medium; a missing code module is high because it lets a same-named module
later on ``sys.path`` be imported instead, while missing tests, type stubs and byte-code are what slimming
tools (``serverless-python-requirements`` ``slim``, ``pip --no-compile``) remove (low, one finding per
distribution); an unlisted code file inside a distribution's own package folder is high, unlisted byte-code
low (interpreters write it), unlisted data medium.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import posixpath
from dataclasses import dataclass, field

CODE_SUFFIXES = (".py", ".so", ".pyd", ".pth", ".dylib", ".dll", ".pyw")
NATIVE_SUFFIXES = (".so", ".pyd")
_SLIMMED_PARTS = frozenset({"tests", "test", "testing", "__pycache__", "docs", "doc", "examples", "benchmarks"})


@dataclass(frozen=True, slots=True)
class RecordEntry:
    rel: str  # path relative to the site folder, normalised
    algorithm: str  # "sha256", other, or "" when the entry carries no hash
    digest: bytes
    size: int | None


@dataclass
class Distribution:
    """One ``*.dist-info`` folder. ``site`` is the display-path prefix of the folder that holds it."""

    dist_info: str  # display path of the .dist-info folder
    site: str
    name: str
    version: str
    entries: list[RecordEntry] = field(default_factory=list)
    has_record: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def top_dirs(self) -> set[str]:
        """The package folders this distribution installs (``requests``), not its metadata or scripts."""
        out: set[str] = set()
        for e in self.entries:
            if "/" not in e.rel or e.rel.startswith("../"):
                continue
            top = e.rel.split("/", 1)[0]
            if top.endswith((".dist-info", ".data", ".egg-info")) or top in ("__pycache__", "bin", ".."):
                continue
            out.add(top)
        return out

    @property
    def top_names(self) -> set[str]:
        """Importable top-level names this distribution provides (folders and single-file modules)."""
        out = set(self.top_dirs)
        for e in self.entries:
            if "/" not in e.rel and e.rel.endswith((".py", ".so", ".pyd", ".pyc")):
                out.add(e.rel.split(".", 1)[0])
        return out


def split_display(path: str) -> tuple[str, str]:
    """``("outer.zip!", "inner/path")`` for a member, ``("", path)`` for a plain file."""
    if "!" in path:
        container, inner = path.rsplit("!", 1)
        return container + "!", inner
    return "", path


def dist_from_dir_name(dist_info: str) -> tuple[str, str]:
    base = dist_info.rstrip("/").rsplit("/", 1)[-1].rsplit("!", 1)[-1]
    stem = base[: -len(".dist-info")] if base.endswith(".dist-info") else base
    name, _, version = stem.partition("-")
    return name, version


def parse_metadata_headers(data: bytes) -> tuple[str, str]:
    """``Name`` and ``Version`` from a METADATA file's header block."""
    name = version = ""
    for raw in data.split(b"\n"):
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key.lower() == "name" and not name:
            name = value.strip()
        elif key.lower() == "version" and not version:
            version = value.strip()
    return name, version


def parse_record(text: str, dist: Distribution) -> None:
    """Fill ``dist.entries`` from RECORD text; malformed rows become ``dist.problems``."""
    dist.has_record = True
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        dist.problems.append(f"RECORD is not valid CSV: {exc}")
        return
    for number, row in enumerate(rows, 1):
        if not row or not row[0].strip():
            continue
        rel = posixpath.normpath(row[0].replace("\\", "/"))
        hash_field = row[1].strip() if len(row) > 1 else ""
        size: int | None = None
        if len(row) > 2 and row[2].strip():
            try:
                size = int(row[2])
            except ValueError:
                dist.problems.append(f"RECORD line {number}: size {row[2]!r} is not a number")
        algorithm, digest = "", b""
        if hash_field:
            algorithm, _, value = hash_field.partition("=")
            try:
                digest = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            except (binascii.Error, ValueError):
                dist.problems.append(f"RECORD line {number}: hash {hash_field[:40]!r} is not base64")
                algorithm = ""
        dist.entries.append(RecordEntry(rel, algorithm.lower(), digest, size))


def is_code(path: str) -> bool:
    return path.lower().endswith(CODE_SUFFIXES) or ".cpython-" in path or ".abi3." in path


def is_slimmable(rel: str) -> bool:
    """Files that packaging tools routinely strip from function packages (tests, stubs, byte-code, docs)."""
    parts = rel.split("/")
    return bool(_SLIMMED_PARTS.intersection(parts[:-1])) or rel.endswith((".pyc", ".pyi", ".typed", ".md", ".txt"))
